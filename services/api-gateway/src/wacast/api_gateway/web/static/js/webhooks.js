/* Webhooks: endpoints (add with the secret shown once, delete) and one endpoint's delivery log with replay. */
wacast.page('webhooks', async () => {
  const W = wacast;
  const { h } = W;
  const form = W.$('#webhook-form');
  const all = W.$('#w-all');
  const types = W.$('#w-types');
  let afterSeq = 0;
  let selected = null;

  const catalog = await W.get('/webhooks/event-types');
  types.replaceChildren(
    ...catalog.items.map((t) =>
      h('label', { class: 'chip' }, h('input', { type: 'checkbox', name: 'events', value: t, 'data-multi': '' }), ` ${t}`))
  );
  all.addEventListener('change', () => {
    for (const box of W.$$('input[name=events]', types)) box.disabled = all.checked;
  });

  const columns = [
    { label: 'URL', cell: (w) => [h('span', { class: 'strong' }, w.url), w.description ? h('div', { class: 'small muted' }, w.description) : null] },
    { label: 'Events', cell: (w) => h('span', { class: 'chips' }, w.events.map((e) => h('span', { class: 'chip' }, e === '*' ? 'all' : e))) },
    { label: 'Added', cell: (w) => W.when(w.created_at) },
    {
      label: 'Actions',
      cell: (w) => h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'small secondary', onclick: () => showLog(w), 'aria-label': `Deliveries to ${w.url}` }, 'Deliveries'),
        h('button', { type: 'button', class: 'small danger-outline', onclick: () => remove(w), 'aria-label': `Delete ${w.url}` }, 'Delete')),
    },
  ];
  const pager = W.pager(W.$('#webhooks-pager'), async (cursor) => {
    const q = { cursor, limit: 50 };
    if (afterSeq) Object.assign(q, { after_seq: afterSeq, after_stream: 'WEBHOOKS' });
    const page = await W.get('/webhooks', q);
    afterSeq = 0;
    W.rows(W.$('#webhooks-table tbody'), columns, page.items,
      h('div', { class: 'empty-state' }, h('strong', {}, 'No endpoints yet.'), h('p', {}, 'Add one above.')),
      (w) => ({ 'data-id': w.id }));
    return page;
  });

  W.onSubmit(form, async (v) => {
    const events = all.checked ? ['*'] : v.events;
    if (!events.length) throw new Error('Choose at least one event type, or all.');
    const created = await W.post('/webhooks', { url: v.url.trim(), events, description: v.description.trim() });
    W.$('#secret-value').textContent = created.secret;
    W.$('#secret-panel').hidden = false;
    form.reset();
    all.dispatchEvent(new Event('change'));
    afterSeq = created.seq;
    await pager.reset();
    W.toast('Endpoint added.', 'ok');
  });
  W.$('#secret-done').addEventListener('click', () => {
    W.$('#secret-value').textContent = '';
    W.$('#secret-panel').hidden = true;
  });

  async function remove(w) {
    const ok = await W.confirm({ title: 'Delete this endpoint?', body: `${w.url} gets nothing more; what is pending is cancelled.`, confirm: 'Delete', danger: true });
    if (!ok) return;
    try {
      const done = await W.api('DELETE', `/webhooks/${encodeURIComponent(w.id)}`);
      if (selected && selected.id === w.id) W.$('#log').hidden = true;
      afterSeq = done && done.seq ? done.seq : 0;
      await pager.reset();
      W.toast('Endpoint deleted.', 'ok');
    } catch (err) {
      W.report(err);
    }
  }

  const logColumns = [
    { label: 'Event', cell: (d) => [h('span', { class: 'strong' }, d.event_type), h('div', { class: 'small muted' }, d.event_id)] },
    { label: 'Status', cell: (d) => W.badge(d.status) },
    { label: 'Tries', cell: (d) => W.num(d.attempts) },
    { label: 'Last answer', cell: (d) => [d.last_status_code ? String(d.last_status_code) : '—', d.last_error ? h('div', { class: 'small muted' }, d.last_error) : null] },
    { label: 'Queued', cell: (d) => W.when(d.queued_at) },
    { label: 'Delivered', cell: (d) => (d.delivered_at ? W.when(d.delivered_at) : '—') },
    {
      label: 'Actions',
      cell: (d) => (d.status === 'dead'
        ? h('button', { type: 'button', class: 'small secondary', onclick: () => replay(d), 'aria-label': `Replay ${d.event_type} ${d.event_id}` }, 'Replay')
        : null),
    },
  ];
  const logPager = W.pager(W.$('#deliveries-pager'), async (cursor) => {
    if (!selected) return null;
    const q = { cursor, limit: 50 };
    const status = W.$('#l-status').value;
    if (status) q.status = status;
    const page = await W.get(`/webhooks/${encodeURIComponent(selected.id)}/deliveries`, q);
    W.rows(W.$('#deliveries-table tbody'), logColumns, page.items,
      h('div', { class: 'empty-state' }, h('strong', {}, 'No deliveries here.'), h('p', {}, 'Events the endpoint takes appear as they happen.')),
      (d) => ({ 'data-id': d.id, 'data-status': d.status }));
    return page;
  });
  async function showLog(w) {
    selected = w;
    W.$('#log-title').textContent = `Delivery log of ${w.url}`;
    W.$('#log').hidden = false;
    await logPager.reset();
  }
  W.$('#log-filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    logPager.reset().catch(W.report);
  });
  W.$('#log-refresh').addEventListener('click', () => logPager.reload().catch(W.report));

  async function replay(d) {
    try {
      await W.api('POST', `/webhooks/${encodeURIComponent(selected.id)}/deliveries/${encodeURIComponent(d.id)}/replay`, { idempotent: W.uuid() });
      W.toast('Sent again from its first try.', 'ok');
      await logPager.reload();
    } catch (err) {
      W.report(err);
    }
  }

  await pager.reset();
});
