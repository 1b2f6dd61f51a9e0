/* One lead: its details, opt-out / opt-in, and its conversation (newest last), which follows
 * live hints (`lead`) and campaign or sequence progress while the page is open. */
wacast.page('lead', async () => {
  const W = wacast;
  const { h } = W;
  const id = document.body.dataset.leadId;
  const chat = W.$('#chat');
  const older = W.$('#chat-older');
  let latest = [];
  let earlier = [];
  let lead = null;
  let olderCursor = null;
  let afterSeq = 0;

  function showLead(l) {
    lead = l;
    const who = l.name || l.phone;
    document.title = `${who} · wacast`;
    W.$('#l-name').textContent = who;
    W.$('#l-badges').replaceChildren(W.badge(l.status),
      ...(l.opted_out ? [' ', h('span', { class: 'badge s-failed', id: 'l-opted-out' }, 'opted out')] : []));
    W.$('#l-meta').textContent = `Added ${W.when(l.created_at)}` +
      (l.opted_out ? ` · opted out ${W.when(l.opted_out_at)}: gets nothing from any campaign or sequence` : '');
    const opt = W.$('#l-opt');
    opt.hidden = false;
    opt.textContent = l.opted_out ? 'Opt in again' : 'Opt out';
    const attrs = Object.entries(l.attributes || {});
    W.$('#l-facts').replaceChildren(
      h('dt', {}, 'Phone'), h('dd', {}, l.phone),
      h('dt', {}, 'Name'), h('dd', {}, l.name || '—'),
      h('dt', {}, 'Device'), h('dd', {}, l.device_name || l.device_id || '—'),
      h('dt', {}, 'Tags'), h('dd', {}, l.tags.length ? h('span', { class: 'chips' }, l.tags.map((t) => h('span', { class: 'chip' }, t))) : '—'),
      h('dt', {}, 'Attributes'), h('dd', {}, attrs.length ? attrs.map(([k, v]) => h('div', {}, h('code', {}, k), ` ${v}`)) : '—'),
      h('dt', {}, 'Sequences'), h('dd', {}, l.enrollments.length
        ? l.enrollments.map((e) => h('div', {}, h('a', { href: `/app/sequences/${e.sequence_id}` }, e.sequence_name || e.sequence_id), ' ', W.badge(e.status), e.reason ? ` ${W.label(e.reason)}` : ''))
        : '—'));
  }

  function origin(e) {
    if (e.campaign_id) return h('a', { href: `/app/campaigns/${e.campaign_id}` }, 'campaign');
    if (e.sequence_id) return h('a', { href: `/app/sequences/${e.sequence_id}` }, 'sequence');
    return null;
  }
  function bubble(e) {
    const out = e.direction === 'outbound';
    const media = e.media_type ? h('span', { class: 'media-note' }, `📎 ${e.media_type}`) : null;
    const meta = out
      ? [W.time(e.at), ' · ', origin(e), ' · ', W.badge(e.status), e.reason ? ` ${W.label(e.reason)}` : '']
      : [W.time(e.at), e.in_reply_to ? ' · reply' : ''];
    return h('li', { class: `msg ${out ? 'out' : 'in'}`, 'data-id': e.id, 'data-direction': e.direction, 'data-status': e.status },
      h('div', { class: `bubble ${out ? 'out' : 'in'}` },
        media,
        e.text ? h('div', { class: 'text' }, e.text) : null,
        h('div', { class: 'meta', title: W.when(e.at) }, meta)));
  }
  // Pages come in the order things were recorded (oldest first within a page): the latest
  // page as last read, after what earlier pages showed that it does not.
  function render() {
    const recent = new Set(latest.map((e) => e.id));
    const sorted = earlier.filter((e) => !recent.has(e.id)).concat(latest);
    const atBottom = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 40;
    chat.replaceChildren(...sorted.map(bubble));
    W.$('#chat-empty').hidden = sorted.length > 0;
    older.hidden = !olderCursor;
    if (atBottom) chat.scrollTop = chat.scrollHeight;
  }

  async function loadLead() {
    const q = afterSeq ? { after_seq: afterSeq, after_stream: 'LEADS' } : {};
    showLead(await W.get(`/leads/${id}`, q));
  }
  async function loadLatest() {
    const first = !latest.length && !earlier.length;
    const page = await W.get(`/leads/${id}/conversation`, { limit: 50 });
    if (first) olderCursor = page.next_cursor;
    latest = page.items;
    render();
  }
  async function refresh() {
    await Promise.all([loadLead(), loadLatest()]);
  }

  older.addEventListener('click', async () => {
    if (!olderCursor) return;
    try {
      const page = await W.get(`/leads/${id}/conversation`, { limit: 50, cursor: olderCursor });
      olderCursor = page.next_cursor;
      earlier = page.items.concat(earlier);
      const height = chat.scrollHeight;
      render();
      chat.scrollTop = chat.scrollHeight - height;
    } catch (err) {
      W.report(err);
    }
  });
  W.$('#l-refresh').addEventListener('click', () => refresh().catch(W.report));
  W.$('#l-opt').addEventListener('click', async () => {
    if (!lead) return;
    const optingOut = !lead.opted_out;
    if (optingOut) {
      const sure = await W.confirm({
        title: `Opt ${lead.name || lead.phone} out?`,
        body: 'It gets nothing more from any campaign or sequence until opted in again.',
        confirm: 'Opt out',
        danger: true,
      });
      if (!sure) return;
    }
    try {
      const r = await W.post(`/leads/${id}/${optingOut ? 'opt-out' : 'opt-in'}`);
      afterSeq = r.seq;
      await loadLead();
      afterSeq = 0;
      W.toast(optingOut ? 'Opted out: gets nothing more until opted in.' : 'Opted in again.', 'ok');
    } catch (err) {
      W.showProblem(W.$('#l-problem'), err);
    }
  });

  try {
    await refresh();
  } catch (err) {
    if (err instanceof W.ApiError && err.status === 404) {
      W.$('main').replaceChildren(h('div', { class: 'card empty-state' },
        h('h1', {}, 'No such lead'), h('p', {}, 'It does not exist in this workspace, or it was deleted. ', h('a', { href: '/app/leads' }, 'All leads'))));
      return;
    }
    throw err;
  }
  chat.scrollTop = chat.scrollHeight;

  const follow = W.throttle(() => refresh().catch(W.report), 1500);
  W.on('lead', (u) => {
    if (u.lead_id === id) follow();
  });
  const moved = W.throttle(() => loadLatest().catch(W.report), 5000);
  W.on('campaign.progress', moved);
  W.on('sequence.progress', moved);
  W.on('open', ({ again }) => {
    if (again) follow();
  });
});
