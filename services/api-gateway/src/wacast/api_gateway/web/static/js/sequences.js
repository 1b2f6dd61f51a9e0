/* Sequences: the list with progress (live), activate, pause, archive. */
wacast.page('sequences', async () => {
  const W = wacast;
  const { h } = W;
  const tbody = W.$('#sequences-table tbody');
  const items = new Map();
  let order = [];
  let afterSeq = 0;

  const columns = [
    { label: 'Name', cell: (s) => h('a', { href: `/app/sequences/${s.id}` }, s.name) },
    { label: 'Status', cell: (s) => W.badge(s.status) },
    { label: 'Steps', class: 'num', cell: (s) => W.num(s.steps.length) },
    { label: 'Progress', cell: (s) => W.sequenceProgress(s) },
    {
      label: 'Actions',
      cell: (s) => W.sequenceActions(s, async (reply) => {
        afterSeq = reply.seq;
        await pager.reload();
      }),
    },
  ];
  const empty = h('div', { class: 'empty-state' }, h('strong', {}, 'No sequences yet.'),
    h('p', {}, h('a', { href: '/app/sequences/new' }, 'Build a sequence'), ' to follow up with leads over days.'));
  function render() {
    W.rows(tbody, columns, order.map((id) => items.get(id)), empty, (s) => ({ 'data-id': s.id, 'data-status': s.status }));
  }
  const pager = W.pager(W.$('nav.pager'), async (cursor) => {
    const q = { cursor, limit: 50 };
    if (afterSeq) Object.assign(q, { after_seq: afterSeq, after_stream: 'SEQUENCES' });
    afterSeq = 0;
    const page = await W.get('/sequences', q);
    items.clear();
    order = page.items.map((s) => s.id);
    page.items.forEach((s) => items.set(s.id, s));
    render();
    return page;
  });
  await pager.reset();

  W.on('sequence.progress', (u) => {
    const s = items.get(u.sequence_id);
    if (!s) return;
    const next = { ...s, progress: u.progress };
    items.set(s.id, next);
    const cell = tbody.querySelector(`[data-progress="${CSS.escape(s.id)}"]`);
    if (cell) cell.replaceWith(W.sequenceProgress(next));
  });
  W.on('open', ({ again }) => {
    if (again) pager.reload().catch(W.report);
  });
});
