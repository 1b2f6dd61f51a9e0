/* Campaigns: the list with live progress bars; trigger, pause, resume, cancel. */
wacast.page('campaigns', async () => {
  const W = wacast;
  const { h } = W;
  const tbody = W.$('#campaigns-table tbody');
  const filters = W.$('#filters');
  const campaigns = new Map();
  let order = [];
  let afterSeq = 0;
  const deviceNames = new Map();

  const params = new URLSearchParams(location.search);
  if (params.has('status')) filters.elements.status.value = params.get('status');

  async function refreshOne(id, seq) {
    const c = await W.get(`/campaigns/${id}`, seq ? { after_seq: seq, after_stream: 'CAMPAIGNS' } : {});
    campaigns.set(id, c);
    renderOne(id);
  }
  const columns = [
    { label: 'Name', cell: (c) => h('a', { href: `/app/campaigns/${c.id}` }, c.name) },
    { label: 'Status', cell: (c) => [W.badge(c.status), c.schedule_at && c.status === 'pending' ? h('div', { class: 'small muted' }, `at ${W.when(c.schedule_at)}`) : null] },
    { label: 'Progress', cell: (c) => W.campaignProgress(c) },
    { label: 'Audience', cell: (c) => h('span', { class: 'small' }, W.audienceText(c.audience, deviceNames)) },
    { label: 'Started', cell: (c) => W.when(c.started_at || c.triggered_at) },
    {
      label: 'Actions',
      cell: (c) => {
        const box = W.campaignActions(c, (reply) => refreshOne(c.id, reply.seq));
        box.prepend(h('a', { class: 'button small secondary', href: `/app/campaigns/${c.id}` }, 'Report'));
        return box;
      },
    },
  ];
  const rowAttrs = (c) => ({ 'data-id': c.id, 'data-status': c.status });
  function emptyState() {
    return h('div', { class: 'empty-state' },
      h('strong', {}, filters.elements.status.value ? 'No campaign has this status.' : 'No campaigns yet.'),
      h('p', {}, h('a', { href: '/app/campaigns/new' }, 'Create a campaign'), ' to message your leads.'));
  }
  function render() {
    W.rows(tbody, columns, order.map((id) => campaigns.get(id)), emptyState(), rowAttrs);
  }
  function renderOne(id) {
    const old = tbody.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
    if (!old) return render();
    const tmp = h('tbody');
    W.rows(tmp, columns, [campaigns.get(id)], '', rowAttrs);
    old.replaceWith(tmp.firstChild);
  }

  const pager = W.pager(W.$('nav.pager'), async (cursor) => {
    const q = { cursor, limit: 50, status: filters.elements.status.value };
    if (afterSeq) Object.assign(q, { after_seq: afterSeq, after_stream: 'CAMPAIGNS' });
    const page = await W.get('/campaigns', q);
    campaigns.clear();
    order = page.items.map((c) => c.id);
    page.items.forEach((c) => campaigns.set(c.id, c));
    render();
    return page;
  });
  filters.addEventListener('change', () => {
    const url = new URL(location.href);
    url.search = W.query({ status: filters.elements.status.value });
    history.replaceState(null, '', url);
    pager.reset().catch(W.report);
  });
  filters.addEventListener('submit', (ev) => ev.preventDefault());

  W.get('/devices', { limit: 500 })
    .then((p) => {
      p.items.forEach((d) => deviceNames.set(d.id, d.name));
      if (order.length) render();
    })
    .catch(() => {});
  await pager.reset();

  W.on('campaign.progress', (u) => {
    const c = campaigns.get(u.campaign_id);
    if (!c) return;
    const next = { ...c, counts: u.counts, percent: u.percent };
    campaigns.set(c.id, next);
    const cell = tbody.querySelector(`[data-progress="${CSS.escape(c.id)}"]`);
    if (cell) cell.replaceWith(W.campaignProgress(next));
    else renderOne(c.id);
  });
  W.on('campaign', (u) => {
    const c = campaigns.get(u.campaign_id);
    if (!c) {
      if (u.event === 'CampaignCreated') pager.reload().catch(W.report);
      return;
    }
    refreshOne(c.id).catch(W.report);
  });
  W.on('open', ({ again }) => {
    if (again) pager.reload().catch(W.report);
  });
});
