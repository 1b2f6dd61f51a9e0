/* What the campaign list and the report share: progress, audience, and the actions
 * (trigger, pause, resume, cancel) a campaign allows in its status. */
(() => {
  'use strict';
  const W = wacast;
  const { h } = W;

  const ACTIONS = {
    pending: ['trigger', 'cancel'],
    triggered: ['pause', 'cancel'],
    paused: ['resume', 'cancel'],
  };
  const LABELS = { trigger: 'Send now', pause: 'Pause', resume: 'Resume', cancel: 'Cancel' };

  W.campaignDone = (c) => c.counts.success + c.counts.failed;

  /** Progress bar with counts: done of total, failed, and the percent. */
  W.campaignProgress = (c) => {
    const k = c.counts;
    const text = k.total
      ? `${W.num(W.campaignDone(c))} of ${W.num(k.total)} · ${W.num(k.success)} sent · ${W.num(k.failed)} failed`
      : c.status === 'pending' ? 'Not started' : 'No messages';
    return h('div', { class: 'progress-cell', 'data-progress': c.id },
      W.bar(c.percent, `${c.name}: ${W.pct(c.percent)} done`),
      h('span', { class: 'small muted', 'data-progress-text': '' }, `${W.pct(c.percent)} · ${text}`));
  };

  W.audienceText = (a, deviceNames) => {
    const parts = [a.status === 'all' ? 'All leads' : `${W.label(a.status)}s`];
    if (a.tags.length) parts.push(`tagged ${a.tags.join(a.tag_match === 'all' ? ' and ' : ' or ')}`);
    if (a.device_ids.length) {
      const names = a.device_ids.map((id) => (deviceNames && deviceNames.get(id)) || id);
      parts.push(`of ${names.join(', ')}`);
    }
    return parts.join(' ');
  };

  /** Buttons for what the campaign allows now; `after(reply)` runs after a success. */
  W.campaignActions = (c, after) => {
    const box = h('div', { class: 'row-actions' });
    for (const action of ACTIONS[c.status] || []) {
      const button = h('button', {
        type: 'button',
        class: `small ${action === 'cancel' ? 'danger-outline' : action === 'trigger' ? '' : 'secondary'}`,
        'data-action': action,
        'aria-label': `${LABELS[action]}: ${c.name}`,
      }, LABELS[action]);
      button.addEventListener('click', async () => {
        if (action === 'cancel') {
          const sure = await W.confirm({
            title: `Cancel “${c.name}”?`,
            body: 'Messages not sent yet will not be sent (they count as failed: campaign cancelled). This cannot be undone.',
            confirm: 'Cancel campaign',
            cancel: 'Keep it',
            danger: true,
          });
          if (!sure) return;
        }
        button.disabled = true;
        try {
          const reply = await W.post(`/campaigns/${c.id}/${action}`);
          W.toast(`${LABELS[action]}: ${c.name}`, 'ok');
          if (after) await after(reply, action);
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
