/* Monitoring: sends per minute, lanes busy, queue depth, projection lag (system-wide, from
 * the services' metrics via /app/api/monitoring), and the tenant's devices and messages. */
wacast.page('monitoring', async () => {
  const W = wacast;
  const { h } = W;
  const EVERY_MS = 3000;
  const KEEP = 60; // points per chart (3 minutes)
  const history = { sends_per_minute: [], lanes_busy: [], queue_depth: [], projection_lag: [] };

  function table(selector, entries, empty) {
    W.rows(W.$(`${selector} tbody`), [
      { label: selector === '#lag-table' ? 'Stream' : 'Status', cell: ([k]) => (selector === '#lag-table' ? k : W.badge(k)) },
      { label: 'Count', class: 'num', cell: ([, v]) => W.num(v) },
    ], entries, empty, ([k]) => ({ 'data-key': k }));
  }

  function show(m) {
    const s = m.system;
    const lag = Object.values(s.projection_lag);
    const values = {
      sends_per_minute: s.sends_per_minute,
      failures_per_minute: s.failures_per_minute,
      lanes_busy: s.lanes_busy,
      queue_depth: s.queue_depth,
      projection_lag: lag.length ? Math.max(...lag) : null,
    };
    const now = Date.now();
    for (const [k, v] of Object.entries(values)) {
      for (const el of W.$$(`[data-metric="${k}"]`)) el.textContent = v === null ? (k.endsWith('minute') ? 'measuring…' : '—') : W.num(v);
      if (history[k] && v !== null) {
        history[k].push({ t: now, v });
        if (history[k].length > KEEP) history[k].shift();
      }
    }
    for (const [k, points] of Object.entries(history)) {
      W.lineChart(W.$(`[data-chart="${k}"]`), points, { label: k.replace(/_/g, ' ') });
    }
    const down = s.sources.filter((x) => !x.ok);
    const sources = W.$('#m-sources');
    sources.hidden = !down.length;
    sources.replaceChildren(...(down.length ? [
      h('strong', {}, 'Some numbers are missing: these metrics could not be read.'),
      h('ul', {}, down.map((x) => h('li', {}, `${x.url || 'metrics'}: ${x.error}`))),
    ] : []));

    const t = m.tenant;
    table('#device-states', Object.entries(t.devices).sort(), 'No devices yet.');
    table('#gateway-states', Object.entries(s.devices).filter(([, v]) => v > 0).sort(), 'No device sessions.');
    table('#message-states', Object.entries(t.messages).sort(), 'No messages yet.');
    table('#lag-table', Object.entries(s.projection_lag).sort(), 'No projection reports yet.');
    for (const el of W.$$('[data-tenant]')) el.textContent = W.num(t[el.dataset.tenant]);
    W.$('#m-updated').textContent = `last updated ${W.time(m.at)}.`;
  }

  async function poll() {
    try {
      show(await W.api('GET', '/monitoring', { base: '/app/api' }));
    } catch (err) {
      W.$('#m-updated').textContent = `could not update: ${W.problemLines(err)[0]}`;
    }
  }
  await poll();
  let timer = setInterval(poll, EVERY_MS);
  document.addEventListener('visibilitychange', () => {
    clearInterval(timer);
    if (!document.hidden) {
      poll();
      timer = setInterval(poll, EVERY_MS);
    }
  });
  W.on('device', () => poll());
});
