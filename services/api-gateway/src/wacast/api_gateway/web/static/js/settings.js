/* The workspace's settings: time zone, default country, opt-out keywords, daily cap, pacing. */
wacast.page('settings', async () => {
  const W = wacast;
  const form = W.$('#settings-form');
  const zones = W.$('#s-zones');
  if (Intl.supportedValuesOf) {
    zones.replaceChildren(...Intl.supportedValuesOf('timeZone').map((z) => W.h('option', { value: z })));
  }

  function show(s) {
    form.elements.name.value = s.name;
    form.elements.timezone.value = s.timezone;
    form.elements.default_region.value = s.default_region;
    form.elements.opt_out_keywords.value = s.opt_out_keywords.join(', ');
    form.elements.device_daily_cap.value = s.device_daily_cap === null ? '' : String(s.device_daily_cap);
    form.elements.min_seconds.value = String(s.pacing.min_seconds);
    form.elements.max_seconds.value = String(s.pacing.max_seconds);
    W.$('#s-updated').textContent = `Last changed ${W.when(s.updated_at)}.`;
  }
  function number(text, what) {
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n)) throw new Error(`${what}: enter a number.`);
    return n;
  }

  W.onSubmit(form, async (v) => {
    const keywords = String(v.opt_out_keywords || '').split(/[,\n]/).map((k) => k.trim()).filter(Boolean);
    const body = {
      name: v.name.trim(),
      timezone: v.timezone.trim(),
      default_region: v.default_region.trim().toUpperCase(),
      opt_out_keywords: keywords,
      device_daily_cap: v.device_daily_cap.trim() === '' ? null : number(v.device_daily_cap, 'Daily cap'),
      pacing: { min_seconds: number(v.min_seconds, 'Shortest gap'), max_seconds: number(v.max_seconds, 'Longest gap') },
    };
    const saved = await W.api('PUT', '/account/settings', { json: body });
    show(saved);
    W.toast('Settings saved.', 'ok');
  });

  show(await W.get('/account/settings'));
});
