/* Campaign report: summary cards that open the message list filtered by outcome, a
 * per-device table whose rows open it for one device, a delivery funnel; all live. */
wacast.page('campaign-report', async () => {
  const W = wacast;
  const { h } = W;
  const id = document.body.dataset.campaignId;
  const statusSelect = W.$('#m-status');
  const deviceSelect = W.$('#m-device');
  const messagesBody = W.$('#messages-table tbody');
  let campaign = null;
  let report = null;
  const deviceNames = new Map();

  const params = new URLSearchParams(location.search);
  statusSelect.value = params.get('status') || '';

  // -- the campaign ---------------------------------------------------------------------------

  function showCampaign(c) {
    campaign = c;
    document.title = `${c.name} · wacast`;
    W.$('#c-name').textContent = c.name;
    W.$('#c-status').replaceChildren(W.badge(c.status));
    const meta = [`Created ${W.when(c.created_at)}`];
    if (c.schedule_at && c.status === 'pending') meta.push(`scheduled for ${W.when(c.schedule_at)}`);
    if (c.started_at) meta.push(`started ${W.when(c.started_at)}`);
    if (c.completed_at) meta.push(`completed ${W.when(c.completed_at)}`);
    if (c.eta && ['triggered', 'paused'].includes(c.status)) meta.push(`ETA ${W.when(c.eta)}`);
    meta.push(`pacing ${c.pacing.min_seconds}–${c.pacing.max_seconds} s`);
    meta.push(W.audienceText(c.audience, deviceNames));
    W.$('#c-meta').textContent = meta.join(' · ');
    const failure = W.$('#c-failure');
    failure.hidden = !c.failure_reason;
    failure.textContent = c.failure_reason ? `This campaign failed: ${W.label(c.failure_reason)}.` : '';
    W.$('#c-actions').replaceChildren(W.campaignActions(c, async (reply) => showCampaign(await W.get(`/campaigns/${id}`, { after_seq: reply.seq, after_stream: 'CAMPAIGNS' }))));
    showProgress(c.counts, c.percent);
  }
  function showProgress(counts, percent) {
    const done = counts.success + counts.failed;
    W.$('#c-progress').replaceChildren(
      h('div', { class: 'progress-cell' },
        W.bar(percent, `${W.pct(percent)} of the messages have an outcome`),
        h('span', { class: 'small muted' }, `${W.pct(percent)} · ${W.num(done)} of ${W.num(counts.total)} messages have an outcome`)));
    if (!counts.total) {
      W.$('#funnel').replaceChildren(h('p', { class: 'muted' }, 'No messages yet: the funnel fills in as the campaign sends.'));
    } else W.funnelChart(W.$('#funnel'), [
      { label: 'Messages', value: counts.total, color: '#5b6863' },
      { label: 'Sent', value: counts.sent + counts.delivered + counts.read, color: '#0b7a62' },
      { label: 'Delivered', value: counts.delivered + counts.read, color: '#139a74' },
      { label: 'Read', value: counts.read, color: '#34b98a' },
    ], [
      { label: 'Failed', value: counts.failed, color: '#b3261e' },
      { label: 'Pending', value: counts.pending + counts.queued, color: '#1f5fa8' },
    ]);
    const reasons = Object.entries(counts.failed_by_reason || {}).sort((a, b) => b[1] - a[1]);
    W.$('#reasons').replaceChildren(...(reasons.length
      ? [h('h3', {}, 'Why messages failed'), h('ul', { class: 'small' }, reasons.map(([r, n]) => h('li', {}, `${W.label(r)}: ${W.num(n)}`)))]
      : []));
  }

  // -- the report (cards and devices) ------------------------------------------------------

  function showReport(r) {
    report = r;
    const t = r.totals;
    for (const key of ['total', 'pending', 'success', 'failed']) {
      W.$(`[data-count="${key}"]`).textContent = W.num(t[key]);
      const share = W.$(`[data-share="${key}"]`);
      if (share && t.total) share.textContent = `${W.pct((t[key] * 100) / t.total)} of all`;
    }
    const known = new Set(Array.from(deviceSelect.options).map((o) => o.value));
    for (const d of r.devices) {
      deviceNames.set(d.device_id, d.device_name || d.device_id);
      if (!known.has(d.device_id)) deviceSelect.append(h('option', { value: d.device_id }, d.device_name || d.device_id));
    }
    if (params.has('device_id') && !deviceSelect.value) deviceSelect.value = params.get('device_id');
    const pick = (deviceId, status) => () => filterBy(status, deviceId);
    const countButton = (d, key) => h('button', {
      type: 'button', class: 'link', onclick: pick(d.device_id, key),
      'aria-label': `${W.num(d[key])} ${key} messages of ${d.device_name || d.device_id}`,
    }, W.num(d[key]));
    W.rows(W.$('#devices-table tbody'), [
      { label: 'Device', cell: (d) => h('button', { type: 'button', class: 'link', 'data-device': d.device_id, onclick: pick(d.device_id, '') }, d.device_name || d.device_id) },
      { label: 'Total', class: 'num', cell: (d) => W.num(d.total) },
      { label: 'Pending', class: 'num', cell: (d) => countButton(d, 'pending') },
      { label: 'Success', class: 'num', cell: (d) => countButton(d, 'success') },
      { label: 'Failed', class: 'num', cell: (d) => countButton(d, 'failed') },
    ], r.devices, 'No messages yet: the audience is picked when the campaign starts.', (d) => ({
      'data-device-id': d.device_id,
      class: 'clickable',
      'aria-selected': String(deviceSelect.value === d.device_id),
      onclick: (ev) => {
        if (!ev.target.closest('button')) filterBy('', d.device_id);
      },
    }));
  }

  // -- the messages behind the counts ---------------------------------------------------------

  const STATUS_TEXT = { '': 'All', pending: 'Pending', success: 'Successful', failed: 'Failed', queued: 'Queued', sent: 'Sent', delivered: 'Delivered', read: 'Read' };
  function describeFilter() {
    const status = statusSelect.value;
    const device = deviceSelect.value;
    const what = `${STATUS_TEXT[status] || status} messages`;
    const where = device ? `from ${deviceNames.get(device) || device}` : 'across all devices';
    W.$('#messages-title').textContent = `${what} ${where}`;
    W.$('#messages-caption').textContent = `${what} ${where}`;
    W.$$('.cards .stat').forEach((b) => b.setAttribute('aria-pressed', String(!device && b.dataset.filter === status)));
    W.$$('#devices-table tbody tr[data-device-id]').forEach((tr) => tr.setAttribute('aria-selected', String(tr.dataset.deviceId === device)));
    const url = new URL(location.href);
    url.search = W.query({ status, device_id: device });  // after_seq served its purpose
    history.replaceState(null, '', url);
  }
  const columns = [
    { label: 'Lead', cell: (m) => h('a', { href: `/app/leads?lead=${encodeURIComponent(m.lead_id)}` }, m.lead_name || '(no name)') },
    { label: 'Phone', cell: (m) => m.lead_phone },
    { label: 'Device', cell: (m) => m.device_name || m.device_id },
    { label: 'Status', cell: (m) => W.badge(m.status) },
    { label: 'Reason', cell: (m) => (m.reason ? W.label(m.reason) : h('span', { class: 'muted' }, '—')) },
    { label: 'Updated', cell: (m) => W.when(m.updated_at) },
  ];
  let firstPage = true;
  const pager = W.pager(W.$('#messages nav.pager'), async (cursor) => {
    firstPage = !cursor;
    const page = await W.get(`/campaigns/${id}/messages`, {
      status: statusSelect.value, device_id: deviceSelect.value, cursor, limit: 50,
    });
    W.rows(messagesBody, columns, page.items, 'No message matches.', (m) => ({ 'data-status': m.status, 'data-message-id': m.id }));
    return page;
  });
  function filterBy(status, deviceId) {
    statusSelect.value = status;
    deviceSelect.value = deviceId;
    describeFilter();
    pager.reset().catch(W.report);
    const section = W.$('#messages');
    section.scrollIntoView({ behavior: 'smooth', block: 'start' });
    section.focus({ preventScroll: true });
  }
  W.$$('.cards .stat').forEach((b) => b.addEventListener('click', () => filterBy(b.dataset.filter, '')));
  W.$('#m-filters').addEventListener('change', () => {
    describeFilter();
    pager.reset().catch(W.report);
  });
  W.$('#m-filters').addEventListener('submit', (ev) => ev.preventDefault());

  // -- load, then follow -----------------------------------------------------------------------

  async function loadReport() {
    showReport(await W.get(`/campaigns/${id}/report`));
    describeFilter();
  }
  try {
    const seq = Number(params.get('after_seq')) || 0;
    showCampaign(await W.get(`/campaigns/${id}`, seq ? { after_seq: seq, after_stream: 'CAMPAIGNS' } : {}));
  } catch (err) {
    if (err instanceof W.ApiError && err.status === 404) {
      W.$('main').replaceChildren(h('div', { class: 'card empty-state' },
        h('h1', {}, 'No such campaign'), h('p', {}, 'It does not exist in this workspace. ', h('a', { href: '/app/campaigns' }, 'All campaigns'))));
      return;
    }
    throw err;
  }
  await loadReport();
  await pager.reset();

  const refresh = W.throttle(() => {
    loadReport().catch(W.report);
    if (firstPage) pager.reload().catch(W.report);
  }, 1500);
  W.on('campaign.progress', (u) => {
    if (u.campaign_id !== id) return;
    campaign = { ...campaign, counts: u.counts, percent: u.percent };
    showProgress(u.counts, u.percent);
    refresh();
  });
  W.on('campaign', (u) => {
    if (u.campaign_id !== id) return;
    W.get(`/campaigns/${id}`).then(showCampaign).then(refresh).catch(W.report);
  });
  W.on('open', ({ again }) => {
    if (again) W.get(`/campaigns/${id}`).then(showCampaign).then(refresh).catch(W.report);
  });
});
