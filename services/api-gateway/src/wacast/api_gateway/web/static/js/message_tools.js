/* Writing a message (campaigns and sequence steps): placeholders rendered like the
 * services render them, a live preview bubble, an attachment picker (upload or URL, with
 * the stored size from the media response) and a send-window editor. */
(() => {
  'use strict';
  const W = wacast;
  const { h } = W;

  // The same rule as wacast.contracts.templates.render.
  const PLACEHOLDER = /\{(name|phone|attributes\.([A-Za-z0-9_\- ]{1,64}))(?:\|([^{}]*))?\}/g;
  W.renderTemplate = (text, lead) =>
    String(text || '').replace(PLACEHOLDER, (whole, key, attr, fallback) => {
      let found = '';
      if (key === 'name') found = lead.name || '';
      else if (key === 'phone') found = lead.phone || '';
      else found = (lead.attributes || {})[attr] || '';
      return found.trim() ? found : fallback || '';
    });
  W.SAMPLE_LEAD = { name: 'Alice', phone: '+447911123456', attributes: { city: 'Leeds' } };

  /** Buttons that insert placeholders at the cursor of `textarea`. */
  W.placeholderButtons = (textarea, extra) => {
    const box = h('div', { class: 'placeholders', role: 'group', 'aria-label': 'Insert a placeholder' });
    for (const p of ['{name|there}', '{phone}', '{attributes.city}', ...(extra || [])]) {
      box.append(
        h('button', {
          type: 'button',
          class: 'small secondary',
          onclick: () => {
            const at = textarea.selectionStart ?? textarea.value.length;
            const end = textarea.selectionEnd ?? at;
            textarea.setRangeText(p, at, end, 'end');
            textarea.dispatchEvent(new Event('input', { bubbles: true }));
            textarea.focus();
          },
        }, p)
      );
    }
    return box;
  };

  /** Draw the message as the lead would see it. `media`: {kind, src, filename, bytes}. */
  W.previewBubble = (box, { text, lead, media }) => {
    const rendered = W.renderTemplate(text, lead);
    const bubble = h('div', { class: 'bubble', 'data-preview': '' });
    if (media && media.kind === 'image' && media.src) {
      bubble.append(h('img', { src: media.src, alt: `Image attachment${media.filename ? `: ${media.filename}` : ''}` }));
    } else if (media && media.kind === 'video' && media.src) {
      bubble.append(h('video', { src: media.src, controls: true, muted: true, 'aria-label': 'Video attachment' }));
    } else if (media && media.kind) {
      bubble.append(h('div', { class: 'doc' }, h('span', { 'aria-hidden': 'true' }, '📄'),
        h('span', {}, media.filename || W.label(media.kind), media.bytes ? ` · ${W.bytes(media.bytes)}` : '')));
    }
    if (rendered.trim()) bubble.append(h('div', { class: 'text', 'data-preview-text': '' }, rendered));
    else if (!media || !media.kind) bubble.append(h('div', { class: 'text muted' }, 'Your message appears here.'));
    bubble.append(h('div', { class: 'meta' }, new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }), ' ✓✓'));
    box.replaceChildren(bubble);
    return rendered;
  };

  /**
   * An attachment: none, image, video or document, uploaded or fetched by URL. The file
   * goes to `POST /api/v1/media` as soon as it is chosen; `onChange(state)` follows.
   * state: {media (the API's media item) | null, kind, src, filename, busy}.
   */
  W.mediaPicker = (container, prefix, onChange) => {
    const state = { media: null, kind: '', src: '', filename: '', busy: false };
    const kinds = [['', 'None'], ['image', 'Image'], ['video', 'Video'], ['document', 'Document']];
    const kindBox = h('div', { class: 'inline-fields' },
      kinds.map(([value, label]) => h('label', { class: 'choice' },
        h('input', { type: 'radio', name: `${prefix}-kind`, value, checked: value === '' }), label)));
    const fileInput = h('input', { type: 'file', id: `${prefix}-file`, name: `${prefix}-file` });
    const urlInput = h('input', { type: 'url', id: `${prefix}-url`, placeholder: 'https://example.com/photo.jpg', maxlength: 2000 });
    const fetchButton = h('button', { type: 'button', class: 'secondary' }, 'Fetch');
    const sourceBox = h('div', { class: 'inline-fields' },
      h('label', { class: 'choice' }, h('input', { type: 'radio', name: `${prefix}-source`, value: 'upload', checked: true }), 'Upload a file'),
      h('label', { class: 'choice' }, h('input', { type: 'radio', name: `${prefix}-source`, value: 'url' }), 'From a URL'));
    const uploadField = h('div', { class: 'field' }, h('label', { for: `${prefix}-file` }, 'File'), fileInput);
    const urlField = h('div', { class: 'field', hidden: true },
      h('label', { for: `${prefix}-url` }, 'URL of the file'),
      h('div', { class: 'inline-fields' }, urlInput, fetchButton));
    const info = h('p', { class: 'media-info', role: 'status', 'aria-live': 'polite', 'data-media-info': '' });
    const problem = h('div', { class: 'problem', role: 'alert', hidden: true });
    const details = h('div', { hidden: true }, sourceBox, uploadField, urlField, info, problem);
    container.append(h('fieldset', {}, h('legend', {}, 'Attachment'), kindBox, details));

    function changed() {
      onChange && onChange(state);
    }
    function clear() {
      if (state.src && state.src.startsWith('blob:')) URL.revokeObjectURL(state.src);
      Object.assign(state, { media: null, src: '', filename: '' });
      info.textContent = '';
      W.showProblem(problem, null);
    }
    function describe(m) {
      const was = m.original_bytes && m.original_bytes !== m.bytes ? ` (was ${W.bytes(m.original_bytes)})` : '';
      const dims = m.width && m.height ? ` · ${m.width}×${m.height} px` : '';
      info.replaceChildren(
        h('strong', {}, 'Stored: '),
        `${W.label(m.kind)} · ${m.mime} · `,
        h('span', { 'data-final-size': String(m.bytes) }, W.bytes(m.bytes)),
        was,
        dims
      );
      if (state.kind && m.kind !== state.kind) {
        info.append(h('span', { class: 'warning', style: { display: 'block', marginTop: '0.35rem' } },
          `This file is a ${m.kind}, so it is sent as one.`));
      }
    }
    async function store(body, src, filename) {
      clear();
      state.busy = true;
      state.src = src;
      state.filename = filename;
      info.textContent = 'Uploading…';
      changed();
      try {
        const m = body instanceof FormData
          ? await W.api('POST', '/media', { form: body, idempotent: W.uuid() })
          : await W.post('/media', body);
        state.media = m;
        describe(m);
      } catch (err) {
        info.textContent = '';
        W.showProblem(problem, err);
      } finally {
        state.busy = false;
        changed();
      }
    }

    kindBox.addEventListener('change', (ev) => {
      state.kind = ev.target.value;
      details.hidden = !state.kind;
      fileInput.accept = { image: 'image/*', video: 'video/*' }[state.kind] || '';
      if (!state.kind) {
        clear();
        fileInput.value = '';
      }
      changed();
    });
    sourceBox.addEventListener('change', (ev) => {
      const url = ev.target.value === 'url';
      urlField.hidden = !url;
      uploadField.hidden = url;
    });
    fileInput.addEventListener('change', () => {
      const file = fileInput.files[0];
      if (!file) return;
      const body = new FormData();
      body.append('file', file, file.name);
      store(body, URL.createObjectURL(file), file.name);
    });
    async function fetchUrl() {
      const url = urlInput.value.trim();
      if (!/^https?:\/\//i.test(url)) {
        W.showProblem(problem, new Error('Enter an http:// or https:// address.'));
        return;
      }
      await store({ url }, url, url.split('/').pop());
    }
    fetchButton.addEventListener('click', fetchUrl);
    urlInput.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        fetchUrl();
      }
    });

    return {
      state,
      mediaId: () => (state.kind && state.media ? state.media.id : ''),
      preview: () => (state.kind ? { kind: state.media ? state.media.kind : state.kind, src: state.src, filename: state.filename, bytes: state.media && state.media.bytes } : null),
    };
  };

  const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  /** Optional send window: days of the week and hours (the tenant's time zone). */
  W.windowEditor = (container, prefix, initial) => {
    const on = h('input', { type: 'checkbox', id: `${prefix}-window-on` });
    const days = DAYS.map((d, i) =>
      h('label', { class: 'choice' }, h('input', { type: 'checkbox', value: i, checked: i < 5, 'data-day': '' }), d));
    const start = h('input', { type: 'number', id: `${prefix}-start`, min: 0, max: 23, value: 9, inputmode: 'numeric' });
    const end = h('input', { type: 'number', id: `${prefix}-end`, min: 1, max: 24, value: 18, inputmode: 'numeric' });
    const body = h('div', { hidden: true },
      h('fieldset', {}, h('legend', {}, 'Days'), h('div', { class: 'days' }, days)),
      h('div', { class: 'inline-fields' },
        h('div', { class: 'field narrow' }, h('label', { for: `${prefix}-start` }, 'From hour'), start),
        h('div', { class: 'field narrow' }, h('label', { for: `${prefix}-end` }, 'Until hour'), end)),
      h('p', { class: 'small muted' }, 'Hours in your workspace time zone; sending waits outside them.'));
    container.append(h('label', { class: 'choice', for: `${prefix}-window-on` }, on, 'Only send in a time window'), body);
    on.addEventListener('change', () => (body.hidden = !on.checked));
    if (initial) {
      on.checked = true;
      body.hidden = false;
      days.forEach((l, i) => (l.querySelector('input').checked = initial.days.includes(i)));
      start.value = initial.start_hour;
      end.value = initial.end_hour;
    }
    return {
      value: () => {
        if (!on.checked) return null;
        const picked = days.map((l) => l.querySelector('input')).filter((i) => i.checked).map((i) => Number(i.value));
        return { days: picked, start_hour: Number(start.value), end_hour: Number(end.value) };
      },
    };
  };

  /** A number input's value, or an Error naming its label. */
  W.number = (input, label) => {
    const n = Number(input.value);
    if (input.value === '' || !Number.isFinite(n)) throw new Error(`${label}: enter a number.`);
    return n;
  };
})();
