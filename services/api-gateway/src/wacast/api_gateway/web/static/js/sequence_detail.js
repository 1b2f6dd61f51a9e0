/* A sequence: its steps, progress (percent and counts, live), enrolling leads by filter or
 * by picking them, and the enrolled leads, each removable. */
wacast.page('sequence-detail', async () => {
  const W = wacast;
  const { h } = W;
  const id = document.body.dataset.sequenceId;
  const params = new URLSearchParams(location.search);
  let sequence = null;
  let afterSeq = Number(params.get('after_seq')) || 0;

  function showSequence(s) {
    sequence = s;
    document.title = `${s.name} · wacast`;
    W.$('#s-name').textContent = s.name;
    W.$('#s-status').replaceChildren(W.badge(s.status));
    const meta = [`Created ${W.when(s.created_at)}`, `pacing ${s.pacing.min_seconds}–${s.pacing.max_seconds} s`,
      s.on_failure === 'stop' ? 'a failed step ends it for the lead' : 'a failed step is skipped',
      { end: 'a reply ends it', pause: 'a reply pauses it', ignore: 'replies are ignored' }[s.stop_on_reply]];
    for (const t of s.triggers) meta.push(`enrolls when ${t.on === 'tag_added' ? `tag “${t.tag}” is added` : t.on === 'status_changed' ? `status becomes ${t.status}` : 'a lead is added'}`);
    W.$('#s-meta').textContent = meta.join(' · ');
    W.$('#s-actions').replaceChildren(W.sequenceActions(s, async (reply) => {
      showSequence(await W.get(`/sequences/${id}`, { after_seq: reply.seq, after_stream: 'SEQUENCES' }));
      enrollments.reload().catch(W.report);
    }));
    W.$('#steps').replaceChildren(...s.steps.map((step, i) => h('li', { class: 'step' },
      h('div', { class: 'step-head' }, h('h3', {}, `Step ${i + 1}`),
        h('span', { class: 'small muted' }, `${i === 0 ? 'after enrollment' : 'after the previous step'}: ${W.delayText(step.delay_seconds)}`)),
      step.message.media_id ? h('p', { class: 'small muted' }, '📎 with an attachment') : null,
      h('p', { class: 'bubble text' }, step.message.text || ''),
      step.window ? h('p', { class: 'small muted' }, `Sends only ${W.windowText(step.window)}`) : null)));
    showProgress(s.progress);
  }
  function showProgress(p) {
    W.$('#s-progress').replaceChildren(W.sequenceProgress({ ...sequence, progress: p }));
    const cards = [['enrolled', 'Enrolled'], ['active', 'Active'], ['completed', 'Completed'], ['failed', 'Failed'], ['removed', 'Removed'], ['sent', 'Messages sent']];
    W.$('#s-counts').classList.add('six');
    W.$('#s-counts').replaceChildren(...cards.map(([k, label]) => h('div', { class: `stat t-${k === 'completed' ? 'success' : k}` },
      h('span', { class: 'k' }, label), h('span', { class: 'v', 'data-count': k }, W.num(p[k])))));
  }

  // -- enrolled leads ----------------------------------------------------------------------

  const enBody = W.$('#enrollments-table tbody');
  async function remove(e) {
    const sure = await W.confirm({
      title: `Remove ${e.lead_name || 'this lead'} from “${sequence.name}”?`,
      body: 'Messages of the sequence still waiting for them are withdrawn, and nothing more of it is sent to them.',
      confirm: 'Remove from sequence',
      danger: true,
    });
    if (!sure) return;
    try {
      const reply = await W.api('DELETE', `/sequences/${id}/enrollments/${e.lead_id}`);
      W.toast(`Removed ${e.lead_name || e.lead_id}.`, 'ok');
      afterSeq = reply.seq;
      await Promise.all([enrollments.reload(), reloadSequence()]);
    } catch (err) {
      W.report(err);
    }
  }
  const columns = [
    { label: 'Lead', cell: (e) => e.lead_name || h('span', { class: 'muted' }, e.lead_id) },
    { label: 'Status', cell: (e) => W.badge(e.status) },
    { label: 'Steps sent', class: 'num', cell: (e) => W.num(e.steps_sent) },
    {
      label: 'Next step',
      cell: (e) => (e.next_step_id && ['active', 'paused'].includes(e.status)
        ? `${stepNumber(e.next_step_id)} · ${W.when(e.next_due_at)}` : h('span', { class: 'muted' }, '—')),
    },
    { label: 'Reason', cell: (e) => (e.reason ? W.label(e.reason) : h('span', { class: 'muted' }, '—')) },
    {
      label: 'Actions',
      cell: (e) => (['active', 'paused'].includes(e.status)
        ? h('button', { type: 'button', class: 'small danger-outline', onclick: () => remove(e), 'aria-label': `Remove ${e.lead_name || e.lead_id}` }, 'Remove')
        : ''),
    },
  ];
  function stepNumber(stepId) {
    const i = sequence ? sequence.steps.findIndex((s) => s.id === stepId) : -1;
    return i >= 0 ? `step ${i + 1}` : stepId;
  }
  let firstPage = true;
  const enrollments = W.pager(W.$('nav.pager'), async (cursor) => {
    firstPage = !cursor;
    const q = { cursor, limit: 50, status: W.$('#en-status').value };
    if (afterSeq) Object.assign(q, { after_seq: afterSeq, after_stream: 'SEQUENCES' });
    const page = await W.get(`/sequences/${id}/enrollments`, q);
    W.rows(enBody, columns, page.items, 'Nobody is enrolled yet: enroll leads above.', (e) => ({ 'data-lead-id': e.lead_id, 'data-status': e.status }));
    return page;
  });
  W.$('#en-filters').addEventListener('change', () => enrollments.reset().catch(W.report));
  W.$('#en-filters').addEventListener('submit', (ev) => ev.preventDefault());

  async function reloadSequence() {
    const q = afterSeq ? { after_seq: afterSeq, after_stream: 'SEQUENCES' } : {};
    showSequence(await W.get(`/sequences/${id}`, q));
  }

  // -- enroll ---------------------------------------------------------------------------------

  const form = W.$('#enroll-form');
  form.addEventListener('change', (ev) => {
    if (ev.target.name === 'by') W.$$('[data-by]', form).forEach((el) => (el.hidden = el.dataset.by !== ev.target.value));
  });
  const picks = W.$('#e-picks');
  const picked = new Map();
  async function findLeads() {
    const page = await W.get('/leads', { search: W.$('#e-search').value.trim(), limit: 20, opted_out: 'false' });
    picks.replaceChildren(h('legend', { class: 'sr-only' }, 'Leads to enroll'));
    const shown = new Map(page.items.map((l) => [l.id, l]));
    for (const [lid, l] of picked) if (!shown.has(lid)) shown.set(lid, l);
    if (!shown.size) picks.append(h('p', { class: 'muted small' }, 'No lead matches.'));
    for (const l of shown.values()) {
      const box = h('input', { type: 'checkbox', value: l.id, checked: picked.has(l.id), 'data-lead': '' });
      box.addEventListener('change', () => (box.checked ? picked.set(l.id, l) : picked.delete(l.id)));
      picks.append(h('label', { class: 'choice' }, box, `${l.name || '(no name)'} · ${l.phone}`));
    }
  }
  let typing = null;
  W.$('#e-search').addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => findLeads().catch(W.report), 300);
  });
  W.onSubmit(form, async (v) => {
    let body;
    if (v.by === 'pick') {
      if (!picked.size) throw new Error('Tick the leads to enroll.');
      body = { lead_ids: Array.from(picked.keys()) };
    } else {
      const filter = { tags: W.tags(v.tags) };
      if (v.status) filter.status = v.status;
      if (v.device_id) filter.device_ids = [v.device_id];
      body = { filter };
    }
    const r = await W.post(`/sequences/${id}/enrollments`, body);
    const enrolled = r.enrolled ?? r.leads ?? 0;
    const notes = [];
    if (r.already) notes.push(`${W.num(r.already)} already in it`);
    if (r.skipped) notes.push(`${W.num(r.skipped)} skipped (opted out or without a device)`);
    W.toast(`${W.num(enrolled)} lead${enrolled === 1 ? '' : 's'} enrolled${notes.length ? `; ${notes.join(', ')}` : ''}.`, 'ok');
    picked.clear();
    afterSeq = r.seq;
    await Promise.all([enrollments.reset(), reloadSequence()]);
    if (v.by === 'pick') await findLeads();
  });

  // -- load, then follow -----------------------------------------------------------------------

  try {
    await reloadSequence();
  } catch (err) {
    if (err instanceof W.ApiError && err.status === 404) {
      W.$('main').replaceChildren(h('div', { class: 'card empty-state' },
        h('h1', {}, 'No such sequence'), h('p', {}, 'It does not exist in this workspace. ', h('a', { href: '/app/sequences' }, 'All sequences'))));
      return;
    }
    throw err;
  }
  await enrollments.reset();
  afterSeq = 0;
  W.deviceOptions(W.$('#e-device')).catch(W.report);
  findLeads().catch(W.report);

  const refresh = W.throttle(() => {
    if (firstPage) enrollments.reload().catch(W.report);
  }, 2000);
  W.on('sequence.progress', (u) => {
    if (u.sequence_id !== id) return;
    sequence = { ...sequence, progress: u.progress };
    showProgress(u.progress);
    refresh();
  });
  W.on('open', ({ again }) => {
    if (again) reloadSequence().then(() => enrollments.reload()).catch(W.report);
  });
});
