/* What the sequence list and a sequence's page share: progress, delays, windows, and
 * the actions a sequence allows in its status (activate, pause, archive). */
(() => {
  'use strict';
  const W = wacast;
  const { h } = W;

  const ACTIONS = { draft: ['activate', 'archive'], active: ['pause', 'archive'], paused: ['activate', 'archive'] };
  const LABELS = { activate: 'Activate', pause: 'Pause', archive: 'Archive' };
  const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

  W.delayText = (seconds) => {
    if (!seconds) return 'at once';
    if (seconds % 86400 === 0) return `${seconds / 86400} day${seconds === 86400 ? '' : 's'}`;
    if (seconds % 3600 === 0) return `${seconds / 3600} hour${seconds === 3600 ? '' : 's'}`;
    if (seconds % 60 === 0) return `${seconds / 60} min`;
    return `${seconds} s`;
  };
  W.windowText = (w) => {
    if (!w) return '';
    const days = w.days.length === 7 ? 'every day' : w.days.map((d) => DAYS[d]).join(', ');
    return `${days}, ${w.start_hour}:00–${w.end_hour}:00${w.timezone ? ` ${w.timezone}` : ''}`;
  };

  W.sequenceProgress = (s) => {
    const p = s.progress;
    const text = p.enrolled
      ? `${W.pct(p.percent)} · ${W.num(p.enrolled)} enrolled · ${W.num(p.active)} active · ${W.num(p.completed)} completed · ${W.num(p.failed)} failed · ${W.num(p.removed)} removed`
      : 'Nobody enrolled yet';
    return h('div', { class: 'progress-cell', 'data-progress': s.id },
      W.bar(p.percent, `${s.name}: ${W.pct(p.percent)} of enrollments ended`),
      h('span', { class: 'small muted' }, text));
  };

  W.sequenceActions = (s, after) => {
    const box = h('div', { class: 'row-actions' });
    for (const action of ACTIONS[s.status] || []) {
      const button = h('button', {
        type: 'button',
        class: `small ${action === 'archive' ? 'danger-outline' : action === 'activate' ? '' : 'secondary'}`,
        'data-action': action,
        'aria-label': `${LABELS[action]}: ${s.name}`,
      }, LABELS[action]);
      button.addEventListener('click', async () => {
        if (action === 'archive') {
          const sure = await W.confirm({
            title: `Archive “${s.name}”?`,
            body: 'Everyone still in it is removed and gets nothing more from it. This cannot be undone.',
            confirm: 'Archive sequence',
            cancel: 'Keep it',
            danger: true,
          });
          if (!sure) return;
        }
        button.disabled = true;
        try {
          const reply = await W.post(`/sequences/${s.id}/${action}`);
          W.toast(`${LABELS[action]}: ${s.name}`, 'ok');
          if (after) await after(reply);
        } catch (err) {
          W.report(err);
        } finally {
          button.disabled = false;
        }
      });
      box.append(button);
    }
    return box;
  };
})();
