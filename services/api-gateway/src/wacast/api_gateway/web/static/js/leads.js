/* Leads: filtered, paged table; add and edit; CSV import with progress and row errors. */
wacast.page('leads', async () => {
  const W = wacast;
  const { h } = W;
  const tbody = W.$('#leads-table tbody');
  const filters = W.$('#filters');
  const leads = new Map();

  // Filters live in the URL so a filtered view can be shared and survives a reload.
  const params = new URLSearchParams(location.search);
  for (const el of filters.elements) {
    if (el.name && params.has(el.name)) el.value = params.get(el.name);
  }
  const devicesLoaded = W.deviceOptions(W.$('#f-device')).then((items) => {
    if (params.has('device_id')) W.$('#f-device').value = params.get('device_id');
    for (const sel of ['#lead-device', '#import-device']) {
      const select = W.$(sel);
      for (const d of items) select.append(h('option', { value: d.id }, d.name));
    }
    return items;
  });

  function current() {
    const v = W.values(filters);
    return {
      search: v.search.trim(),
      status: v.status,
      tag: v.tag.trim(),
      device_id: v.device_id,
      opted_out: v.opted_out,
      limit: v.limit,
    };
  }

  const columns = [
    {
      label: 'Name',
      cell: (l) => [
        h('a', { class: 'strong', href: `/app/leads/${encodeURIComponent(l.id)}`, 'aria-label': `Lead page of ${l.name || l.phone}` }, l.name || '(no name)'),
        l.opted_out ? [' ', h('span', { class: 'badge s-failed' }, 'opted out')] : null,
      ],
    },
    { label: 'Phone', cell: (l) => l.phone },
    { label: 'Status', cell: (l) => W.badge(l.status) },
    { label: 'Tags', cell: (l) => h('span', { class: 'chips' }, l.tags.map((t) => h('span', { class: 'chip' }, t))) },
    { label: 'Device', cell: (l) => l.device_name || h('span', { class: 'muted' }, l.device_id ? 'unknown' : 'none') },
    { label: 'Added', cell: (l) => W.when(l.created_at) },
    {
      label: 'Actions',
      cell: (l) => h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'small secondary', onclick: () => openLead(l.id), 'aria-label': `Edit ${l.name || l.phone}` }, 'Edit')),
    },
  ];
  function emptyState() {
    const filtered = Object.entries(current()).some(([k, v]) => k !== 'limit' && v);
    return h('div', { class: 'empty-state' },
      h('strong', {}, filtered ? 'No lead matches these filters.' : 'No leads yet.'),
      h('p', {}, filtered ? 'Change or clear the filters.' : 'Add one, or import a CSV file.'));
  }

  let afterSeq = 0;
  const pager = W.pager(W.$('nav.pager'), async (cursor) => {
    const q = { ...current(), cursor };
    if (afterSeq) Object.assign(q, { after_seq: afterSeq, after_stream: 'LEADS' });
    const page = await W.get('/leads', q);
    afterSeq = 0;
    leads.clear();
    page.items.forEach((l) => leads.set(l.id, l));
    W.rows(tbody, columns, page.items, emptyState(), (l) => ({ 'data-id': l.id }));
    return page;
  });

  function applyFilters() {
    const q = current();
    const url = new URL(location.href);
    url.search = W.query(Object.fromEntries(Object.entries(q).filter(([k, v]) => !(k === 'limit' && v === '50'))));
    history.replaceState(null, '', url);
    return pager.reset();
  }
  filters.addEventListener('submit', (ev) => {
    ev.preventDefault();
    applyFilters().catch(W.report);
  });
  filters.addEventListener('change', (ev) => {
    if (ev.target.tagName === 'SELECT') applyFilters().catch(W.report);
  });
  let typing = null;
  W.$('#f-search').addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => applyFilters().catch(W.report), 350);
  });

  // -- add and edit -------------------------------------------------------------------------

  const dialog = W.$('#lead-dialog');
  const form = W.$('#lead-form');
  let editing = null;
  function attributesText(attrs) {
    return Object.entries(attrs || {}).map(([k, v]) => `${k}=${v}`).join('\n');
  }
  function parseAttributes(text) {
    const out = {};
    for (const line of String(text || '').split('\n')) {
      if (!line.trim()) continue;
      const at = line.indexOf('=');
      if (at < 1) throw new Error(`Attributes: “${line.trim()}” is not key=value.`);
      out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    return out;
  }
  function openLead(id) {
    editing = id ? leads.get(id) : null;
    form.reset();
    W.$('#lead-title').textContent = editing ? `Edit ${editing.name || editing.phone}` : 'Add a lead';
    W.$('#lead-delete').hidden = !editing;
    if (editing) {
      form.elements.phone.value = editing.phone;
      form.elements.name.value = editing.name;
      form.elements.status.value = editing.status;
      form.elements.device_id.value = editing.device_id;
      form.elements.tags.value = editing.tags.join(', ');
      form.elements.attributes.value = attributesText(editing.attributes);
    }
    W.openDialog(dialog);
  }
  W.$('#add-lead').addEventListener('click', () => openLead(null));
  W.onSubmit(form, async (v) => {
    if (!v.phone.trim()) throw new Error('Enter the phone number, with + and the country code.');
    const body = {
      phone: v.phone.trim(),
      name: v.name.trim(),
      status: v.status,
      tags: W.tags(v.tags),
      attributes: parseAttributes(v.attributes),
    };
    if (v.device_id) body.device_id = v.device_id;
    const saved = editing
      ? await W.api('PATCH', `/leads/${editing.id}`, { json: body })
      : await W.post('/leads', body);
    dialog.close();
    W.toast(editing ? `Saved ${saved.name || saved.phone}.` : `Added ${saved.name || saved.phone}.`, 'ok');
    afterSeq = saved.seq;
    await pager.reload();
  });
  W.$('#lead-delete').addEventListener('click', async () => {
    if (!editing) return;
    const who = editing.name || editing.phone;
    const sure = await W.confirm({
      title: `Delete ${who}?`,
      body: 'It gets nothing more from any campaign or sequence. This cannot be undone.',
      confirm: 'Delete lead',
      danger: true,
    });
    if (!sure) return;
    try {
      const r = await W.api('DELETE', `/leads/${editing.id}`);
      dialog.close();
      W.toast(`Deleted ${who}.`, 'ok');
      afterSeq = r.seq;
      await pager.reload();
    } catch (err) {
      W.showProblem(W.$('.problem', form), err);
    }
  });

  // -- detail: every message and enrollment of a lead ------------------------------------

  const detail = W.$('#detail-dialog');
  let shown = null;
  const messageColumns = [
    { label: 'From', cell: (m) => (m.origin === 'campaign'
      ? h('a', { href: `/app/campaigns/${m.campaign_id}` }, 'campaign')
      : h('a', { href: `/app/sequences/${m.sequence_id}` }, 'sequence')) },
    { label: 'Text', cell: (m) => h('span', { class: 'small' }, m.text || (m.media_id ? '(attachment)' : '')) },
    { label: 'Device', cell: (m) => m.device_name || m.device_id },
    { label: 'Status', cell: (m) => W.badge(m.status) },
    { label: 'Reason', cell: (m) => (m.reason ? W.label(m.reason) : '—') },
    { label: 'Updated', cell: (m) => W.when(m.updated_at) },
  ];
  async function openDetail(id) {
    W.$('#detail-body').replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    W.openDialog(detail);
    const url = new URL(location.href);
    url.searchParams.set('lead', id);
    history.replaceState(null, '', url);
    try {
      shown = await W.get(`/leads/${id}`);
    } catch (err) {
      W.showProblem(W.$('.problem', detail), err);
      return;
    }
    const l = shown;
    W.$('#detail-title').textContent = l.name || l.phone;
    W.$('#detail-page').href = `/app/leads/${encodeURIComponent(l.id)}`;
    W.$('#detail-opt').textContent = l.opted_out ? 'Opt in again' : 'Opt out';
    const attrs = Object.entries(l.attributes || {});
    const table = h('table', { class: 'data' }, h('thead', {}, h('tr', {}, messageColumns.map((c) => h('th', { scope: 'col' }, c.label)))), h('tbody'));
    W.rows(table.querySelector('tbody'), messageColumns, l.messages, 'No messages yet.', (m) => ({ 'data-status': m.status }));
    W.$('#detail-body').replaceChildren(
      h('dl', { class: 'facts' },
        h('dt', {}, 'Phone'), h('dd', {}, l.phone),
        h('dt', {}, 'Status'), h('dd', {}, W.badge(l.status), l.opted_out ? [' ', h('span', { class: 'badge s-failed' }, `opted out ${W.when(l.opted_out_at)}`)] : ''),
        h('dt', {}, 'Device'), h('dd', {}, l.device_name || '—'),
        h('dt', {}, 'Tags'), h('dd', {}, l.tags.length ? h('span', { class: 'chips' }, l.tags.map((t) => h('span', { class: 'chip' }, t))) : '—'),
        h('dt', {}, 'Attributes'), h('dd', {}, attrs.length ? attrs.map(([k, v]) => h('div', {}, h('code', {}, k), ` ${v}`)) : '—'),
        h('dt', {}, 'Sequences'), h('dd', {}, l.enrollments.length
          ? l.enrollments.map((e) => h('div', {}, h('a', { href: `/app/sequences/${e.sequence_id}` }, e.sequence_name || e.sequence_id), ' ', W.badge(e.status)))
          : '—')),
      h('h3', {}, `Messages (${l.messages.length})`),
      h('div', { class: 'table-wrap' }, table));
  }
  detail.addEventListener('close', () => {
    const url = new URL(location.href);
    url.searchParams.delete('lead');
    history.replaceState(null, '', url);
  });
  W.$('#detail-edit').addEventListener('click', () => {
    if (!shown) return;
    detail.close();
    leads.set(shown.id, shown);
    openLead(shown.id);
  });
  W.$('#detail-opt').addEventListener('click', async () => {
    if (!shown) return;
    try {
      const r = await W.post(`/leads/${shown.id}/${shown.opted_out ? 'opt-in' : 'opt-out'}`);
      W.toast(shown.opted_out ? 'Opted in again.' : 'Opted out: gets nothing more until opted in.', 'ok');
      afterSeq = r.seq;
      await pager.reload();
      shown = await W.get(`/leads/${shown.id}`, { after_seq: r.seq, after_stream: 'LEADS' });
      await openDetail(shown.id);
    } catch (err) {
      W.showProblem(W.$('.problem', detail), err);
    }
  });

  // -- CSV import ---------------------------------------------------------------------------

  const importDialog = W.$('#import-dialog');
  const importForm = W.$('#import-form');
  const run = W.$('#import-run');
  const progress = W.$('#import-progress');
  const counts = W.$('#import-counts');
  const errorsBox = W.$('#import-errors');
  const errorsBody = W.$('#import-errors-table tbody');
  const more = W.$('#import-more');
  let importing = null;

  function resetImport() {
    importForm.reset();
    importForm.hidden = false;
    run.hidden = true;
    errorsBox.hidden = true;
    errorsBody.replaceChildren();
    progress.removeAttribute('value');
    counts.textContent = '';
  }
  W.$('#import-leads').addEventListener('click', () => {
    resetImport();
    W.openDialog(importDialog);
  });
  W.$('#import-again').addEventListener('click', () => {
    resetImport();
    W.$('#import-file').focus();
  });

  function showImport(imp) {
    run.dataset.status = imp.status;
    if (imp.total_rows) {
      progress.max = imp.total_rows;
      progress.value = imp.rows_done;
    } else if (imp.status !== 'running') {
      progress.max = 1;
      progress.value = 1;
    }
    const of = imp.total_rows ? ` of ${W.num(imp.total_rows)}` : '';
    const head = { running: 'Importing…', completed: 'Done.', failed: 'The import failed.' }[imp.status];
    counts.replaceChildren(
      h('strong', {}, head), ' ',
      `${W.num(imp.rows_done)}${of} rows · `,
      h('span', { 'data-count': 'created' }, `${W.num(imp.created)} created`), ' · ',
      h('span', { 'data-count': 'updated' }, `${W.num(imp.updated)} updated`), ' · ',
      h('span', { 'data-count': 'failed' }, `${W.num(imp.failed)} failed`),
      imp.detail || imp.reason ? h('span', { class: 'problem block' }, imp.detail || W.label(imp.reason)) : ''
    );
    W.$('#import-run-title').firstChild.textContent = imp.status === 'running' ? 'Importing ' : 'Imported ';
  }
  function addErrors(imp) {
    for (const e of imp.errors) {
      errorsBody.append(h('tr', {}, h('td', { class: 'num', 'data-label': 'Row' }, String(e.row)), h('td', { 'data-label': 'Why' }, e.reason)));
    }
    errorsBox.hidden = !errorsBody.children.length;
    more.hidden = !imp.errors_next_cursor;
    more.dataset.cursor = imp.errors_next_cursor || '';
  }
  more.addEventListener('click', async () => {
    try {
      const imp = await W.get(`/leads/imports/${importing}`, { errors_cursor: more.dataset.cursor });
      addErrors(imp);
    } catch (err) {
      W.report(err);
    }
  });

  async function follow(id, seq) {
    let imp;
    let first = true;
    for (;;) {
      try {
        imp = await W.get(`/leads/imports/${id}`, first ? { after_seq: seq, after_stream: 'LEADS' } : {});
        first = false;
      } catch (err) {
        // The import is recorded moments after it is accepted.
        if (!(err instanceof W.ApiError) || err.status !== 404 || !first) throw err;
      }
      if (imp) {
        showImport(imp);
        if (imp.status !== 'running') break;
      }
      await new Promise((r) => setTimeout(r, 400));
    }
    addErrors(imp);
    return imp;
  }

  W.onSubmit(importForm, async (v) => {
    const file = v.file && v.file[0];
    if (!file) throw new Error('Choose a CSV file.');
    const body = new FormData();
    body.append('file', file, file.name);
    body.append('status', v.status);
    if (v.device_id) body.append('device_id', v.device_id);
    if (v.tags.trim()) body.append('tags', W.tags(v.tags).join(','));
    body.append('update_existing', v.update_existing ? 'true' : 'false');
    const accepted = await W.api('POST', '/leads/import', { form: body, idempotent: W.uuid() });
    importing = accepted.import_id;
    importForm.hidden = true;
    run.hidden = false;
    W.$('#import-filename').textContent = file.name;
    counts.textContent = 'Starting…';
    W.showProblem(W.$('#import-run-problem'), null);
    let imp;
    try {
      imp = await follow(accepted.import_id, accepted.seq);
    } catch (err) {
      W.showProblem(W.$('#import-run-problem'), err);
      return;
    }
    W.toast(`Import finished: ${imp.created} created, ${imp.updated} updated, ${imp.failed} failed.`, imp.failed ? '' : 'ok');
    afterSeq = 0;
    await pager.reset();
  });

  await devicesLoaded.catch(W.report);
  await pager.reset();
  if (params.get('lead')) await openDetail(params.get('lead'));
});
