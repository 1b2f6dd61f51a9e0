/* wacast dashboard: what every page shares.
 *
 * - the API key (sessionStorage, this tab only) and `api()`, which sends it as a bearer
 *   token and turns RFC 9457 problem details into readable errors;
 * - `live`: the `/api/v1/live` WebSocket, reconnecting with backoff, as named events;
 * - small DOM helpers (`h`, `svg`), formatting, dialogs, toasts, tables and paging.
 *
 * Page scripts register themselves with `wacast.page(name, init)`; the page's
 * `<body data-page>` picks which one runs once the document is parsed.
 */
(() => {
  'use strict';

  const KEY = 'wacast.key';
  const TENANT = 'wacast.tenant';
  const pages = {};
  const W = (window.wacast = {});

  // -- the key -------------------------------------------------------------------------

  W.key = () => sessionStorage.getItem(KEY) || '';
  W.setKey = (key, tenant) => {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(TENANT, tenant || '');
  };
  W.signOut = (why) => {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(TENANT);
    const next = encodeURIComponent(location.pathname + location.search);
    location.assign(`/app/sign-in?next=${next}${why ? `&why=${encodeURIComponent(why)}` : ''}`);
  };

  // -- the API -------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, problem) {
      super(problem.detail || problem.title || `HTTP ${status}`);
      this.status = status;
      this.problem = problem;
    }
  }
  W.ApiError = ApiError;

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v === undefined || v === null || v === '') continue;
      if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
      else q.set(k, String(v));
    }
    const s = q.toString();
    return s ? `?${s}` : '';
  }
  W.query = query;

  /** Call `/api/v1{path}`; resolves with the JSON body, rejects with an ApiError. */
  W.api = async (method, path, opts = {}) => {
    const headers = { Accept: 'application/json', Authorization: `Bearer ${W.key()}` };
    let body;
    if (opts.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.json);
    } else if (opts.form !== undefined) {
      body = opts.form;
    }
    if (opts.idempotent) headers['Idempotency-Key'] = opts.idempotent;
    const base = opts.base || '/api/v1';
    let response;
    try {
      response = await fetch(base + path + query(opts.query), { method, headers, body });
    } catch (err) {
      throw new ApiError(0, {
        title: 'The server cannot be reached',
        detail: 'Check your connection; the request was not answered.',
      });
    }
    if (response.status === 401 && !opts.noRedirect) {
      W.signOut('Your key was refused (unknown, revoked or expired): sign in again.');
      throw new ApiError(401, { title: 'Signed out' });
    }
    if (!response.ok) {
      let problem = { title: `HTTP ${response.status}`, status: response.status };
      try {
        problem = await response.json();
      } catch (err) {
        /* not JSON: keep the status line */
      }
      throw new ApiError(response.status, problem);
    }
    if (opts.raw) return response;
    if (response.status === 204) return null;
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  };
  W.get = (path, q) => W.api('GET', path, { query: q });
  W.post = (path, json) => W.api('POST', path, { json, idempotent: W.uuid() });

  W.uuid = () =>
    (crypto.randomUUID && crypto.randomUUID()) ||
    `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;

  /** A problem as lines a person can read: its title and detail, then each error. */
  W.problemLines = (err) => {
    if (!(err instanceof ApiError)) return [String((err && err.message) || err)];
    const p = err.problem || {};
    const head = p.detail && p.title ? `${p.title}: ${p.detail}` : p.detail || p.title;
    const lines = [head || err.message];
    for (const e of p.errors || []) {
      if (e && typeof e === 'object') {
        const where = e.key || e.field || e.loc || e.row || '';
        const what = e.message || e.reason || e.msg || JSON.stringify(e);
        lines.push(where !== '' ? `${where}: ${what}` : what);
      } else {
        lines.push(String(e));
      }
    }
    if (err.status === 429) lines.push('Too many requests: wait a moment and try again.');
    return lines;
  };

  /** Fill a `.problem` region (role=alert) with the error, or hide it with null. */
  W.showProblem = (region, err) => {
    if (!region) return;
    region.replaceChildren();
    if (!err) {
      region.hidden = true;
      return;
    }
    const [first, ...rest] = W.problemLines(err);
    region.append(W.h('strong', {}, first));
    if (rest.length) region.append(W.h('ul', {}, ...rest.map((l) => W.h('li', {}, l))));
    region.hidden = false;
  };

  // -- DOM -----------------------------------------------------------------------------

  function put(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.setAttribute('class', v);
      else if (k === 'text') el.textContent = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }
  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }
  /** `h('a', {href, class, onclick}, 'text', child...)`: an element (text is never HTML). */
  W.h = (tag, attrs, ...children) => {
    const el = document.createElement(tag);
    put(el, attrs);
    append(el, children);
    return el;
  };
  W.svg = (tag, attrs, ...children) => {
    const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) el.setAttribute(k, String(v));
    }
    append(el, children);
    return el;
  };
  W.$ = (sel, root) => (root || document).querySelector(sel);
  W.$$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  // -- formatting ----------------------------------------------------------------------

  const numberFmt = new Intl.NumberFormat();
  W.num = (n) => (n === null || n === undefined ? '—' : numberFmt.format(n));
  W.bytes = (n) => {
    if (n === null || n === undefined) return '—';
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  };
  W.pct = (n) => `${Math.round((n || 0) * 10) / 10}%`;
  W.when = (iso) => {
    if (!iso) return '—';
    const d = new Date(iso);
    return d.toLocaleString(undefined, {
      year: 'numeric',
      month: 'short',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
    });
  };
  W.time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '—');
  W.ago = (iso) => {
    if (!iso) return 'never';
    const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
    if (s < 45) return 'just now';
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return W.when(iso);
  };
  W.label = (s) => String(s || '').replace(/_/g, ' ');
  W.badge = (status) =>
    W.h('span', { class: `badge s-${status || 'none'}`, 'data-status': status || '' }, W.label(status));

  /** A progress bar with a text equivalent for screen readers. */
  W.bar = (percent, label) => {
    const p = Math.max(0, Math.min(100, percent || 0));
    const fill = W.h('span', { class: 'fill' });
    fill.style.width = `${p}%`;
    return W.h(
      'span',
      {
        class: 'bar',
        role: 'progressbar',
        'aria-valuemin': 0,
        'aria-valuemax': 100,
        'aria-valuenow': Math.round(p),
        'aria-label': label || 'Progress',
      },
      fill
    );
  };
  W.setBar = (bar, percent) => {
    const p = Math.max(0, Math.min(100, percent || 0));
    bar.querySelector('.fill').style.width = `${p}%`;
    bar.setAttribute('aria-valuenow', String(Math.round(p)));
  };

  // -- tables --------------------------------------------------------------------------

  /**
   * Fill `tbody` with one row per item. `columns`: [{label, cell(item) -> node|string,
   * class}]; cells carry `data-label` so narrow screens show them as labelled cards.
   * With no items the row says `empty` (a string or a node).
   */
  W.rows = (tbody, columns, items, empty, rowAttrs) => {
    tbody.replaceChildren();
    if (!items.length) {
      tbody.append(
        W.h('tr', { class: 'empty' }, W.h('td', { colspan: columns.length }, empty || 'Nothing here yet.'))
      );
      return;
    }
    for (const item of items) {
      const tr = W.h('tr', rowAttrs ? rowAttrs(item) : {});
      for (const col of columns) {
        tr.append(W.h('td', { 'data-label': col.label, class: col.class }, W.h('span', { class: 'cell' }, col.cell(item))));
      }
      tbody.append(tr);
    }
  };

  /** Cursor paging: `load(cursor)` returns a page `{items, next_cursor}`. */
  W.pager = (nav, load) => {
    const stack = [''];
    const prev = W.h('button', { type: 'button', class: 'secondary' }, '← Previous');
    const next = W.h('button', { type: 'button', class: 'secondary' }, 'Next →');
    const where = W.h('span', { class: 'muted', 'aria-live': 'polite' });
    nav.replaceChildren(prev, where, next);
    let nextCursor = null;
    async function show() {
      const page = await load(stack[stack.length - 1]);
      nextCursor = page ? page.next_cursor : null;
      prev.disabled = stack.length <= 1;
      next.disabled = !nextCursor;
      where.textContent = `Page ${stack.length}`;
      nav.hidden = stack.length <= 1 && !nextCursor;
      return page;
    }
    prev.addEventListener('click', () => {
      if (stack.length > 1) stack.pop();
      show().catch(W.report);
    });
    next.addEventListener('click', () => {
      if (nextCursor) stack.push(nextCursor);
      show().catch(W.report);
    });
    return {
      reset: () => {
        stack.length = 1;
        return show();
      },
      reload: show,
    };
  };

  // -- dialogs, toasts, forms ----------------------------------------------------------

  W.openDialog = (dialog) => {
    W.showProblem(dialog.querySelector('.problem'), null);
    if (!dialog.open) dialog.showModal();
    const first = dialog.querySelector('[autofocus], input:not([type=hidden]), select, textarea, button');
    if (first) first.focus();
  };
  document.addEventListener('click', (ev) => {
    const closer = ev.target.closest('[data-close]');
    if (closer) closer.closest('dialog').close();
  });

  /** Ask before something that cannot be undone; resolves true when confirmed. */
  W.confirm = ({ title, body, confirm = 'Confirm', cancel = 'Cancel', danger = false }) =>
    new Promise((resolve) => {
      const yes = W.h('button', { type: 'submit', class: danger ? 'danger' : 'primary', value: 'yes' }, confirm);
      const no = W.h('button', { type: 'button', class: 'secondary', value: 'no' }, cancel);
      const titleId = `confirm-${W.uuid()}`;
      const dialog = W.h('dialog', { 'aria-labelledby': titleId, class: danger ? 'danger-dialog' : '' },
        W.h('form', { method: 'dialog' },
          W.h('h2', { id: titleId }, title),
          body ? W.h('p', { class: danger ? 'warning' : '' }, body) : null,
          W.h('div', { class: 'actions' }, no, yes)));
      let answer = false;
      yes.addEventListener('click', () => (answer = true));
      no.addEventListener('click', () => dialog.close());
      dialog.addEventListener('close', () => {
        dialog.remove();
        resolve(answer);
      });
      document.body.append(dialog);
      dialog.showModal();
      no.focus();
    });

  W.toast = (message, kind) => {
    const region = document.getElementById('toasts');
    if (!region) return;
    const t = W.h('div', { class: `toast ${kind || ''}`, role: kind === 'error' ? 'alert' : 'status' }, message);
    region.append(t);
    setTimeout(() => t.remove(), kind === 'error' ? 9000 : 4000);
  };
  /** Report an error that belongs to no form. */
  W.report = (err) => {
    if (err instanceof ApiError && err.status === 401) return;
    W.toast(W.problemLines(err).join(' — '), 'error');
    console.error(err);
  };

  /**
   * Submit `form` with `handler(values, form)`; its button is disabled meanwhile and a
   * problem is shown in the form's `.problem` region.
   */
  W.onSubmit = (form, handler) => {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const region = form.querySelector('.problem');
      W.showProblem(region, null);
      const buttons = W.$$('button[type=submit]', form);
      buttons.forEach((b) => (b.disabled = true));
      form.setAttribute('aria-busy', 'true');
      try {
        await handler(W.values(form), form, ev.submitter);
      } catch (err) {
        if (region) {
          W.showProblem(region, err);
          region.setAttribute('tabindex', '-1');
          region.focus();
        } else W.report(err);
      } finally {
        buttons.forEach((b) => (b.disabled = false));
        form.removeAttribute('aria-busy');
      }
    });
  };
  W.values = (form) => {
    const out = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled) continue;
      if (el.type === 'checkbox') {
        if (el.dataset.multi !== undefined) {
          out[el.name] = out[el.name] || [];
          if (el.checked) out[el.name].push(el.value);
        } else out[el.name] = el.checked;
      } else if (el.type === 'radio') {
        if (el.checked) out[el.name] = el.value;
      } else if (el.type === 'file') {
        out[el.name] = el.files;
      } else if (el.tagName === 'SELECT' && el.multiple) {
        out[el.name] = Array.from(el.selectedOptions).map((o) => o.value);
      } else {
        out[el.name] = el.value;
      }
    }
    return out;
  };
  W.tags = (text) =>
    String(text || '')
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);

  W.throttle = (fn, ms) => {
    let timer = null;
    let again = false;
    return () => {
      if (timer) {
        again = true;
        return;
      }
      fn();
      timer = setTimeout(function tick() {
        timer = null;
        if (again) {
          again = false;
          fn();
          timer = setTimeout(tick, ms);
        }
      }, ms);
    };
  };

  /** Fill a `<select>` with the tenant's devices (first option kept). */
  W.deviceOptions = async (select, keepFirst = true) => {
    const page = await W.get('/devices', { limit: 500 });
    const first = keepFirst ? select.options[0] : null;
    select.replaceChildren(...(first ? [first] : []));
    for (const d of page.items) {
      select.append(W.h('option', { value: d.id }, `${d.name} (${W.label(d.status)})`));
    }
    return page.items;
  };

  // -- live updates ----------------------------------------------------------------------

  const handlers = {};
  W.on = (type, fn) => {
    (handlers[type] = handlers[type] || []).push(fn);
  };
  function emit(type, data) {
    for (const fn of handlers[type] || []) {
      try {
        fn(data);
      } catch (err) {
        console.error(err);
      }
    }
  }
  W.live = { socket: null, state: 'off', attempts: 0 };
  function setLive(state) {
    W.live.state = state;
    const el = document.getElementById('live-state');
    if (!el) return;
    el.dataset.state = state;
    el.querySelector('.live-text').textContent = { live: 'live', connecting: 'connecting…', off: 'offline' }[state];
  }
  function connect() {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${proto}://${location.host}/api/v1/live?access_token=${encodeURIComponent(W.key())}`;
    setLive('connecting');
    const socket = new WebSocket(url);
    W.live.socket = socket;
    let opened = false;
    socket.addEventListener('open', () => {
      opened = true;
      const again = W.live.attempts > 0;
      W.live.attempts = 0;
      setLive('live');
      emit('open', { again });
    });
    socket.addEventListener('message', (ev) => {
      let update;
      try {
        update = JSON.parse(ev.data);
      } catch (err) {
        return;
      }
      emit(update.type, update);
      emit('*', update);
    });
    socket.addEventListener('close', () => {
      setLive('off');
      emit('close', {});
      W.live.attempts += 1;
      const wait = Math.min(15000, 500 * 2 ** Math.min(W.live.attempts, 5));
      setTimeout(connect, opened ? 500 : wait);
    });
  }

  // -- boot ------------------------------------------------------------------------------

  W.page = (name, init) => {
    pages[name] = init;
  };

  document.addEventListener('DOMContentLoaded', () => {
    const name = document.body.dataset.page;
    if (name !== 'sign-in') {
      if (!W.key()) {
        W.signOut();
        return;
      }
      const tenant = document.getElementById('tenant-name');
      if (tenant) tenant.textContent = sessionStorage.getItem(TENANT) || '';
      const out = document.getElementById('sign-out');
      if (out) out.addEventListener('click', () => W.signOut());
      connect();
    }
    const init = pages[name];
    // `data-ready` tells (tests, mostly) that the page has loaded what it shows first.
    Promise.resolve(init ? init() : null)
      .catch(W.report)
      .finally(() => (document.body.dataset.ready = 'true'));
  });
})();
