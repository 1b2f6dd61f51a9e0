/* New sequence: a step builder (delay, message with attachment, send window), pacing,
 * failure and reply rules, an optional trigger; created active or as a draft. */
wacast.page('sequence-new', () => {
  const W = wacast;
  const { h } = W;
  const form = W.$('#sequence-form');
  const list = W.$('#steps');
  const previewBox = W.$('#s-preview');
  const steps = []; // {el, text, delay, unit, media, window}
  let counter = 0;
  let shown = null;

  const UNITS = [['60', 'minutes'], ['3600', 'hours'], ['86400', 'days']];

  function preview(step) {
    shown = step || shown || steps[0];
    if (!shown) return;
    W.$('#s-preview-step').textContent = `(step ${steps.indexOf(shown) + 1})`;
    W.previewBubble(previewBox, { text: shown.text.value, lead: W.SAMPLE_LEAD, media: shown.media.preview() });
  }

  function renumber() {
    steps.forEach((s, i) => {
      W.$('.step-title', s.el).textContent = `Step ${i + 1}`;
      W.$('.delay-label', s.el).textContent = i === 0 ? 'Wait after enrollment' : 'Wait after the previous step';
      W.$('[data-move="up"]', s.el).disabled = i === 0;
      W.$('[data-move="down"]', s.el).disabled = i === steps.length - 1;
      W.$('[data-remove]', s.el).disabled = steps.length === 1;
    });
    preview();
  }

  function addStep(initial) {
    counter += 1;
    const p = `step${counter}`;
    const delay = h('input', { type: 'number', id: `${p}-delay`, min: 0, step: 1, value: initial ? initial.delay : steps.length ? 1 : 0, inputmode: 'numeric', 'data-delay': '' });
    const unit = h('select', { id: `${p}-unit`, 'aria-label': 'Unit' }, UNITS.map(([v, l]) => h('option', { value: v, selected: v === (initial ? initial.unit : '86400') }, l)));
    const text = h('textarea', { id: `${p}-text`, rows: 4, maxlength: 4096, placeholder: 'Hi {name|there}, …', 'data-step-text': '' });
    text.value = initial ? initial.text : '';
    const mediaBox = h('div');
    const windowBox = h('div');
    const el = h('li', { class: 'step', 'data-step': '' },
      h('div', { class: 'step-head' },
        h('h3', { class: 'step-title' }),
        h('div', { class: 'row-actions' },
          h('button', { type: 'button', class: 'small secondary', 'data-move': 'up', 'aria-label': 'Move step up' }, '↑'),
          h('button', { type: 'button', class: 'small secondary', 'data-move': 'down', 'aria-label': 'Move step down' }, '↓'),
          h('button', { type: 'button', class: 'small danger-outline', 'data-remove': '' }, 'Remove'))),
      h('div', { class: 'inline-fields' },
        h('div', { class: 'field narrow' }, h('label', { for: `${p}-delay`, class: 'delay-label' }), delay),
        h('div', { class: 'field narrow' }, h('label', { for: `${p}-unit` }, 'Unit'), unit)),
      h('div', { class: 'field' }, h('label', { for: `${p}-text` }, 'Message'), text, W.placeholderButtons(text)),
      mediaBox,
      windowBox);
    const step = { el, text, delay, unit };
    step.media = W.mediaPicker(mediaBox, `${p}-media`, () => preview(step));
    step.window = W.windowEditor(windowBox, p);
    el.addEventListener('focusin', () => preview(step));
    text.addEventListener('input', () => preview(step));
    W.$('[data-remove]', el).addEventListener('click', () => {
      steps.splice(steps.indexOf(step), 1);
      el.remove();
      if (shown === step) shown = null;
      renumber();
      W.$('#add-step').focus();
    });
    for (const button of W.$$('[data-move]', el)) {
      button.addEventListener('click', () => {
        const i = steps.indexOf(step);
        const j = button.dataset.move === 'up' ? i - 1 : i + 1;
        if (j < 0 || j >= steps.length) return;
        [steps[i], steps[j]] = [steps[j], steps[i]];
        if (j < i) list.insertBefore(el, steps[i].el);
        else list.insertBefore(steps[i].el, el);
        renumber();
        button.focus();
      });
    }
    steps.push(step);
    list.append(el);
    renumber();
    return step;
  }

  W.$('#add-step').addEventListener('click', () => {
    const step = addStep();
    step.delay.focus();
  });
  addStep({ delay: 0, unit: '60', text: '' });

  form.addEventListener('change', (ev) => {
    if (ev.target.name === 'trigger') {
      W.$('#s-trigger-tag-field').hidden = ev.target.value !== 'tag_added';
      W.$('#s-trigger-status-field').hidden = ev.target.value !== 'status_changed';
    }
  });

  W.onSubmit(form, async (v, _form, submitter) => {
    const name = v.name.trim();
    if (!name) throw new Error('Give the sequence a name.');
    const min = W.number(W.$('#s-min'), 'Min. seconds');
    const max = W.number(W.$('#s-max'), 'Max. seconds');
    if (min < 0 || max < min) throw new Error('Pacing: seconds must be 0 or more, and min no more than max.');
    const body = {
      name,
      status: submitter && submitter.value === 'draft' ? 'draft' : 'active',
      pacing: { min_seconds: min, max_seconds: max },
      on_failure: v.on_failure,
      stop_on_reply: v.stop_on_reply,
      steps: steps.map((s, i) => {
        const amount = W.number(s.delay, `Step ${i + 1} wait`);
        if (amount < 0) throw new Error(`Step ${i + 1}: the wait cannot be negative.`);
        if (s.media.state.busy) throw new Error(`Step ${i + 1}: wait until the attachment is stored.`);
        const media_id = s.media.mediaId();
        if (!s.text.value.trim() && !media_id) throw new Error(`Step ${i + 1}: write a message or attach a file.`);
        const step = { delay_seconds: Math.round(amount * Number(s.unit.value)), message: { text: s.text.value, media_id } };
        const win = s.window.value();
        if (win) step.window = win;
        return step;
      }),
    };
    if (v.trigger) {
      const trigger = { on: v.trigger };
      if (v.trigger === 'tag_added') {
        if (!v.trigger_tag.trim()) throw new Error('Enroll automatically: name the tag.');
        trigger.tag = v.trigger_tag.trim();
      }
      if (v.trigger === 'status_changed') trigger.status = v.trigger_status;
      body.triggers = [trigger];
    }
    const s = await W.post('/sequences', body);
    location.assign(`/app/sequences/${s.id}?after_seq=${s.seq}`);
  });
});
