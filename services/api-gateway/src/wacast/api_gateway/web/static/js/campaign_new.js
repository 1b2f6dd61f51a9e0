/* New campaign: audience, message with a live preview, attachment, pacing, schedule. */
wacast.page('campaign-new', async () => {
  const W = wacast;
  const { h } = W;
  const form = W.$('#campaign-form');
  const text = W.$('#c-text');
  const previewBox = W.$('#c-preview');
  const leadSelect = W.$('#c-preview-lead');
  const sampleLeads = new Map();

  W.$('#c-placeholders').append(W.placeholderButtons(text));
  const media = W.mediaPicker(W.$('#c-media'), 'c-media', () => preview());
  const sendWindow = W.windowEditor(W.$('#c-window'), 'c');
  W.$('#c-tz').textContent = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local';

  function preview() {
    const lead = sampleLeads.get(leadSelect.value) || W.SAMPLE_LEAD;
    W.previewBubble(previewBox, { text: text.value, lead, media: media.preview() });
  }
  text.addEventListener('input', preview);
  leadSelect.addEventListener('change', preview);
  preview();

  form.addEventListener('change', (ev) => {
    if (ev.target.name === 'when') W.$('#c-schedule-field').hidden = ev.target.value !== 'later';
    if (ev.target.name === 'audience') loadSampleLeads().catch(() => {});
  });

  async function loadSampleLeads() {
    const status = W.values(form).audience;
    const page = await W.get('/leads', { limit: 20, status: status === 'all' ? '' : status, opted_out: 'false' });
    const keep = leadSelect.value;
    sampleLeads.clear();
    leadSelect.replaceChildren(h('option', { value: '' }, 'Sample lead (Alice)'));
    for (const l of page.items) {
      sampleLeads.set(l.id, l);
      leadSelect.append(h('option', { value: l.id }, `${l.name || '(no name)'} · ${l.phone}`));
    }
    leadSelect.value = sampleLeads.has(keep) ? keep : page.items.length ? page.items[0].id : '';
    preview();
  }

  async function loadDevices() {
    const page = await W.get('/devices', { limit: 500 });
    const box = W.$('#c-devices .device-list');
    box.replaceChildren();
    if (!page.items.length) {
      box.append(h('p', { class: 'warning' }, 'No devices yet: ', h('a', { href: '/app/devices' }, 'add and pair one'), ' first.'));
    }
    for (const d of page.items) {
      box.append(h('label', { class: 'choice' },
        h('input', { type: 'checkbox', name: 'device_ids', value: d.id, 'data-multi': '' }),
        d.name, ' ', W.badge(d.status)));
    }
  }
  W.onSubmit(form, async (v) => {
    const name = v.name.trim();
    if (!name) throw new Error('Give the campaign a name.');
    if (media.state.busy) throw new Error('Wait until the attachment is stored.');
    if (media.state.kind && !media.mediaId()) throw new Error('Attachment: choose a file or fetch a URL (or pick None).');
    if (!v.text.trim() && !media.mediaId()) throw new Error('Write a message, attach a file, or both.');
    const min = W.number(W.$('#c-min'), 'Min. seconds');
    const max = W.number(W.$('#c-max'), 'Max. seconds');
    if (min < 0 || max < min) throw new Error('Pacing: seconds must be 0 or more, and min no more than max.');
    const body = {
      name,
      audience: {
        status: v.audience,
        tags: W.tags(v.tags),
        tag_match: v.tag_match,
        device_ids: v.device_ids || [],
      },
      message: { text: v.text, media_id: media.mediaId() },
      pacing: { min_seconds: min, max_seconds: max },
    };
    if (v.when === 'later') {
      if (!v.schedule_at) throw new Error('Pick the date and time to send at.');
      const at = new Date(v.schedule_at);
      if (Number.isNaN(at.getTime())) throw new Error('The date and time are not valid.');
      body.schedule_at = at.toISOString();
    }
    const win = sendWindow.value();
    if (win) body.send_window = win;
    const c = await W.post('/campaigns', body);
    location.assign(`/app/campaigns/${c.id}?after_seq=${c.seq}`);
  });

  await Promise.all([loadDevices(), loadSampleLeads()]).catch(W.report);
});
