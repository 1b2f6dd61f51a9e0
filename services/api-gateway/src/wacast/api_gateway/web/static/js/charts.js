/* Charts drawn as inline SVG (no library): the delivery funnel and small line charts.
 * Each has a text alternative (role=img with a label, and a <title>). */
(() => {
  'use strict';
  const W = wacast;
  const { svg } = W;

  /**
   * A funnel: `stages` [{label, value, color}] from widest to narrowest, each bar as wide
   * as its share of the first stage, joined by bands; `extras` [{label, value, color}]
   * are drawn below as plain bars on the same scale (e.g. failed, pending).
   */
  W.funnelChart = (container, stages, extras = []) => {
    const width = 440;
    const labelW = 78;
    const valueW = 78;
    const barArea = width - labelW - valueW;
    const rowH = 30;
    const gap = 10;
    const rows = stages.length + extras.length;
    const height = rows * rowH + (stages.length - 1) * gap + (extras.length ? gap * 2 : 0) + 4;
    const top = Math.max(1, stages.length ? stages[0].value : 1);
    const share = (v) => (top ? v / top : 0);
    const described = [...stages, ...extras].map((s) => `${s.label} ${s.value} (${Math.round(share(s.value) * 100)}%)`).join(', ');
    const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `Delivery funnel: ${described}`, 'data-chart': 'funnel' },
      svg('title', {}, `Delivery funnel: ${described}`));
    let y = 2;
    let prev = null;
    stages.forEach((s, i) => {
      const w = Math.max(2, barArea * share(s.value));
      const x = labelW + (barArea - w) / 2;
      if (prev) {
        chart.append(svg('polygon', {
          points: `${prev.x},${prev.y + rowH} ${prev.x + prev.w},${prev.y + rowH} ${x + w},${y} ${x},${y}`,
          fill: s.color, opacity: 0.18,
        }));
      }
      chart.append(
        svg('rect', { x, y, width: w, height: rowH, rx: 4, fill: s.color, 'data-stage': s.label }),
        svg('text', { x: 0, y: y + rowH / 2 + 4 }, s.label),
        svg('text', { x: width, y: y + rowH / 2 + 4, 'text-anchor': 'end' },
          `${W.num(s.value)}  `, svg('tspan', { class: 'muted-text' }, i ? `${Math.round(share(s.value) * 100)}%` : ''))
      );
      prev = { x, y, w };
      y += rowH + gap;
    });
    if (extras.length) {
      y += gap;
      chart.append(svg('line', { x1: labelW, x2: labelW + barArea, y1: y - gap, y2: y - gap, stroke: '#d9e0dd' }));
      for (const s of extras) {
        const w = Math.max(s.value ? 2 : 0, barArea * share(s.value));
        chart.append(
          svg('rect', { x: labelW, y, width: w, height: rowH - 8, rx: 4, fill: s.color, 'data-stage': s.label }),
          svg('text', { x: 0, y: y + rowH / 2 }, s.label),
          svg('text', { x: width, y: y + rowH / 2, 'text-anchor': 'end' },
            `${W.num(s.value)}  `, svg('tspan', { class: 'muted-text' }, `${Math.round(share(s.value) * 100)}%`))
        );
        y += rowH;
      }
    }
    container.replaceChildren(chart);
  };

  /** A small line chart of `points` ([{t, v}]) with its last value. */
  W.lineChart = (container, points, { label, color = '#0b7a62', unit = '' } = {}) => {
    const width = 300;
    const height = 70;
    const values = points.map((p) => p.v);
    const max = Math.max(1, ...values);
    const last = values.length ? values[values.length - 1] : null;
    const text = `${label}: ${last === null ? 'no data yet' : `${W.num(last)}${unit}`}, highest ${W.num(Math.max(0, ...values))}${unit}`;
    const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': text, preserveAspectRatio: 'none' },
      svg('title', {}, text));
    if (points.length > 1) {
      const t0 = points[0].t;
      const span = Math.max(1, points[points.length - 1].t - t0);
      const xy = points.map((p) => [((p.t - t0) / span) * (width - 4) + 2, height - 4 - (p.v / max) * (height - 10)]);
      const line = xy.map(([x, yy], i) => `${i ? 'L' : 'M'}${x.toFixed(1)},${yy.toFixed(1)}`).join(' ');
      chart.append(
        svg('path', { d: `${line} L${xy[xy.length - 1][0]},${height} L${xy[0][0]},${height} Z`, fill: color, opacity: 0.12 }),
        svg('path', { d: line, fill: 'none', stroke: color, 'stroke-width': 2, 'vector-effect': 'non-scaling-stroke' })
      );
    } else {
      chart.append(svg('line', { x1: 0, x2: width, y1: height - 4, y2: height - 4, stroke: '#d9e0dd' }));
    }
    container.replaceChildren(chart);
  };
})();
