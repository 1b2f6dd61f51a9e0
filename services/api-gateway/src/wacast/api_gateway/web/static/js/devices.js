/* Devices: the board, add, pair (QR refreshed live as it rotates, or a phone code),
 * rename, delete after a warning with what goes with it. Live status without reload. */
wacast.page('devices', async () => {
  const W = wacast;
  const { h } = W;
  const tbody = W.$('#devices-table tbody');
  const devices = new Map();
  let order = [];
  let pairing = null; // {id, method} while the pair dialog shows a prompt

  const PAIRABLE = new Set(['unpaired', 'disconnected', 'logged_out', 'pairing']);

  function actions(d) {
    const cell = h('div', { class: 'row-actions' });
    if (PAIRABLE.has(d.status)) {
      cell.append(
        h('button', { type: 'button', class: 'small', 'data-action': 'pair', onclick: () => openPair(d.id) },
          d.status === 'pairing' ? 'Show pairing' : 'Pair')
      );
    }
    cell.append(
      h('button', { type: 'button', class: 'small secondary', 'data-action': 'rename', onclick: () => openRename(d.id) }, 'Rename'),
      h('button', { type: 'button', class: 'small danger-outline', 'data-action': 'delete', onclick: () => openDelete(d.id) }, 'Delete')
    );
    return cell;
  }

  const columns = [
    { label: 'Name', cell: (d) => [h('strong', {}, d.name), ' ', h('span', { class: 'muted small' }, d.driver === 'sim' ? 'simulator' : 'WhatsApp')] },
    { label: 'Status', cell: (d) => [W.badge(d.status), d.ban_reason ? h('span', { class: 'muted small' }, ` ${W.label(d.ban_reason)}`) : null] },
    { label: 'Phone', cell: (d) => d.phone || h('span', { class: 'muted' }, '—') },
    { label: 'Leads', class: 'num', cell: (d) => W.num(d.leads) },
    { label: 'Sent today', class: 'num', cell: (d) => W.num(d.sends_today) },
    { label: 'Last seen', cell: (d) => (d.status === 'connected' ? 'now' : W.ago(d.last_seen_at)) },
    { label: 'Actions', cell: actions },
  ];
  const rowAttrs = (d) => ({ 'data-id': d.id, 'data-status': d.status });
  const empty = h('div', { class: 'empty-state' },
    h('strong', {}, 'No devices yet.'),
    h('p', {}, 'Add a device, then pair it with a WhatsApp account to start sending.'));

  function render() {
    W.rows(tbody, columns, order.map((id) => devices.get(id)).filter(Boolean), empty, rowAttrs);
  }
  function renderOne(id) {
    const d = devices.get(id);
    const old = tbody.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
    if (!d || !old) return render();
    const focused = document.activeElement && old.contains(document.activeElement)
      ? document.activeElement.dataset.action : null;
    const tmp = h('tbody');
    W.rows(tmp, columns, [d], '', rowAttrs);
    const fresh = tmp.firstChild;
    old.replaceWith(fresh);
    if (focused) {
      const again = fresh.querySelector(`[data-action="${focused}"]`);
      if (again) again.focus();
    }
  }

  const pager = W.pager(W.$('nav.pager'), async (cursor) => {
    const page = await W.get('/devices', { cursor, limit: 100 });
    devices.clear();
    order = page.items.map((d) => d.id);
    page.items.forEach((d) => devices.set(d.id, d));
    render();
    return page;
  });
  // -- live ------------------------------------------------------------------------------

  W.on('device', (u) => {
    const d = devices.get(u.device_id);
    if (u.deleted) {
      if (d) {
        devices.delete(u.device_id);
        order = order.filter((id) => id !== u.device_id);
        render();
      }
      return;
    }
    if (!d) {
      pager.reload().catch(W.report);
      return;
    }
    const next = { ...d };
    if (u.status) next.status = u.status;
    if (u.name) next.name = u.name;
    if (u.phone) next.phone = u.phone;
    if (u.status === 'connected') next.last_seen_at = u.at;
    devices.set(d.id, next);
    renderOne(d.id);
    if (pairing && pairing.id === d.id) showPairStatus(next);
    if (u.status === 'connected' && d.status !== 'connected') W.toast(`${next.name} is connected.`, 'ok');
  });
  W.on('device.qr', (u) => {
    if (!pairing || pairing.id !== u.device_id) return;
    showPrompt(u);
  });
  W.on('open', ({ again }) => {
    if (again) pager.reload().catch(W.report);
  });

  // -- add -------------------------------------------------------------------------------

  const addDialog = W.$('#add-dialog');
  W.$('#add-device').addEventListener('click', () => {
    W.$('#add-form').reset();
    W.openDialog(addDialog);
  });
  W.onSubmit(W.$('#add-form'), async (v) => {
    if (!v.name.trim()) throw new Error('Give the device a name.');
    const d = await W.post('/devices', { name: v.name.trim(), driver: v.driver });
    devices.set(d.id, d);
    if (!order.includes(d.id)) order.unshift(d.id);
    render();
    addDialog.close();
    W.toast(`${d.name} added: pair it to start sending.`, 'ok');
    openPair(d.id);
  });

  // -- pair ------------------------------------------------------------------------------

  const pairDialog = W.$('#pair-dialog');
  const pairForm = W.$('#pair-form');
  const prompt = W.$('#pair-prompt');
  const qrImage = W.$('#qr-image');
  let qrUrl = null;
  let qrTimer = null;

  function showMethod(root, method) {
    W.$$('[data-method]', root).forEach((el) => (el.hidden = el.dataset.method !== method));
  }
  pairForm.addEventListener('change', (ev) => {
    if (ev.target.name === 'method') showMethod(pairForm, ev.target.value);
  });
  pairDialog.addEventListener('close', () => {
    pairing = null;
    clearInterval(qrTimer);
  });

  function showPairStatus(d) {
    W.$('#pair-status').replaceChildren(W.badge(d.status));
    if (d.status === 'connected') {
      W.$('#pair-cancel').hidden = true;
      setTimeout(() => pairDialog.open && pairing && pairing.id === d.id && pairDialog.close(), 1200);
    }
  }

  function showPrompt(p) {
    prompt.hidden = false;
    pairForm.hidden = true;
    showMethod(prompt, p.method);
    if (p.method === 'code') {
      W.$('#pair-code').textContent = p.code;
    } else if (p.png_base64) {
      setQr(`data:image/png;base64,${p.png_base64}`, p.at);
    } else {
      fetchQr().catch(() => {});
    }
  }
  function setQr(src, at) {
    if (qrUrl && qrUrl.startsWith('blob:')) URL.revokeObjectURL(qrUrl);
    qrUrl = src;
    qrImage.src = src;
    qrImage.dataset.at = at || new Date().toISOString();
    W.$('#qr-time').textContent = W.time(at || new Date().toISOString());
  }
  async function fetchQr() {
    if (!pairing) return;
    const response = await W.api('GET', `/devices/${pairing.id}/qr`, { raw: true });
    const blob = await response.blob();
    setQr(URL.createObjectURL(blob), new Date().toISOString());
  }
  /** The QR image right after pairing starts: the gateway shows it within moments. */
  async function firstQr(deadline) {
    while (pairing && Date.now() < deadline) {
      try {
        await fetchQr();
        return;
      } catch (err) {
        if (!(err instanceof W.ApiError) || err.status !== 404) throw err;
      }
      await new Promise((r) => setTimeout(r, 400));
    }
  }

  async function openPair(id) {
    const d = devices.get(id);
    if (!d) return;
    pairing = { id, method: d.pairing_method || 'qr' };
    W.$('.device-name', pairDialog).textContent = `“${d.name}”`;
    pairForm.reset();
    pairForm.hidden = false;
    prompt.hidden = true;
    W.$('#pair-cancel').hidden = false;
    showMethod(pairForm, 'qr');
    W.$('#pair-code').textContent = '';
    qrImage.removeAttribute('src');
    W.$('#pair-phone').value = d.phone || '';
    showPairStatus(d);
    W.openDialog(pairDialog);
    if (d.status === 'pairing') {
      try {
        const p = await W.get(`/devices/${id}/pairing`);
        pairing.method = p.method;
        showPrompt(p);
        startQrRefresh();
      } catch (err) {
        /* no prompt right now: offer to start again */
      }
    }
  }
  function startQrRefresh() {
    clearInterval(qrTimer);
    // Live updates replace the QR as it rotates; without the socket, ask every 5 s.
    qrTimer = setInterval(() => {
      if (pairing && pairing.method === 'qr' && W.live.state !== 'live') fetchQr().catch(() => {});
    }, 5000);
  }

  W.onSubmit(pairForm, async (v) => {
    const id = pairing && pairing.id;
    if (!id) return;
    const body = { method: v.method };
    if (v.method === 'code') {
      if (!v.phone.trim()) throw new Error('Enter the phone number of the WhatsApp account.');
      body.phone = v.phone.trim();
    }
    const r = await W.post(`/devices/${id}/pair`, body);
    pairing.method = v.method;
    const d = devices.get(id);
    if (d && d.status !== 'pairing' && d.status !== 'connected') {
      devices.set(id, { ...d, status: 'pairing' });
      renderOne(id);
      showPairStatus(devices.get(id));
    }
    if (v.method === 'code') {
      if (r.code) showPrompt({ method: 'code', code: r.code });
      else {
        const p = await W.get(`/devices/${id}/pairing`);
        showPrompt(p);
      }
    } else {
      showPrompt({ method: 'qr' });
      await firstQr(Date.now() + 10000);
      startQrRefresh();
    }
  });

  W.$('#pair-cancel').addEventListener('click', async () => {
    if (!pairing) return;
    try {
      await W.post(`/devices/${pairing.id}/pair/cancel`);
      pairDialog.close();
      W.toast('Pairing cancelled.');
    } catch (err) {
      W.report(err);
    }
  });

  // -- rename ----------------------------------------------------------------------------

  const renameDialog = W.$('#rename-dialog');
  let renaming = null;
  function openRename(id) {
    renaming = id;
    W.$('#rename-name').value = devices.get(id).name;
    W.openDialog(renameDialog);
    W.$('#rename-name').select();
  }
  W.onSubmit(W.$('#rename-form'), async (v) => {
    if (!v.name.trim()) throw new Error('The name cannot be empty.');
    const d = await W.api('PATCH', `/devices/${renaming}`, { json: { name: v.name.trim() } });
    devices.set(d.id, { ...devices.get(d.id), ...d });
    renderOne(d.id);
    renameDialog.close();
    W.toast(`Renamed to ${d.name}.`, 'ok');
  });

  // -- delete ----------------------------------------------------------------------------

  const deleteDialog = W.$('#delete-dialog');
  const confirm = W.$('#delete-confirm');
  const impactText = W.$('#delete-impact');
  let deleting = null;
  async function openDelete(id) {
    deleting = id;
    const d = devices.get(id);
    W.$('.device-name', deleteDialog).textContent = `“${d.name}”`;
    confirm.disabled = true;
    confirm.textContent = 'Delete device';
    impactText.textContent = 'Checking what goes with it…';
    W.openDialog(deleteDialog);
    W.$('button[data-close]', deleteDialog).focus();
    try {
      const impact = await W.get(`/devices/${id}/deletion-impact`);
      const leads = `${W.num(impact.leads)} lead${impact.leads === 1 ? '' : 's'}`;
      const msgs = `${W.num(impact.messages)} message${impact.messages === 1 ? '' : 's'}`;
      impactText.replaceChildren(
        'Deleting it logs the phone out and also deletes ',
        h('strong', { 'data-impact': 'leads' }, leads),
        ' and ',
        h('strong', { 'data-impact': 'messages' }, msgs),
        ' sent through it, everywhere (reports included). This cannot be undone.'
      );
      confirm.textContent = `Delete device, ${leads} and ${msgs}`;
      confirm.disabled = false;
    } catch (err) {
      W.showProblem(W.$('.problem', deleteDialog), err);
      impactText.textContent = 'What goes with it could not be checked, so it cannot be deleted now.';
    }
  }
  W.onSubmit(W.$('#delete-form'), async () => {
    const d = devices.get(deleting);
    await W.api('DELETE', `/devices/${deleting}`);
    deleteDialog.close();
    devices.delete(deleting);
    order = order.filter((id) => id !== deleting);
    render();
    W.toast(`${d ? d.name : 'The device'} is deleted, with its leads and messages.`, 'ok');
  });

  await pager.reset();
});
