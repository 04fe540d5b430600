// vigil's web console: reads GET /console/api/cluster (every node's
// inspector snapshot, docs/CONSOLE.md) every two seconds with the API token
// as a bearer header, and redraws the nodes. Plain DOM, no framework; every
// text from the server goes in through textContent, never as HTML.
'use strict';

(function () {
  const TOKEN_KEY = 'vigil.console.token';
  const INTERVAL_MS = 2000;
  const REQUEST_TIMEOUT_MS = 15000;

  const state = {
    // Per node id: the previous snapshot's time and processed counts by
    // actor key, from which processed/s comes.
    previous: new Map(),
    // Actor rows whose drill-down is open, by "node|actor key".
    open: new Set(),
    timer: null,
    paused: false,
    updates: 0,
    lastOk: null,
  };

  const $ = (id) => document.getElementById(id);

  /// Builds an element: attrs (class, data-*, on* handlers, other
  /// attributes) and children (nodes or strings, null skipped).
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  }

  // ---------------------------------------------------------------- format

  function num(x) {
    if (typeof x !== 'number' || !isFinite(x)) return '–';
    return Math.round(x).toLocaleString('en-US');
  }

  function rate(x) {
    if (typeof x !== 'number' || !isFinite(x)) return '–';
    if (x === 0) return '0';
    if (x < 10) return x.toFixed(1);
    return Math.round(x).toLocaleString('en-US');
  }

  /// The time of day, with the date too when it is not within a day.
  function clock(unix) {
    if (typeof unix !== 'number') return '–';
    const d = new Date(unix * 1000);
    const time = d.toLocaleTimeString('en-GB', { hour12: false });
    if (Math.abs(unix * 1000 - Date.now()) < 86400000) return time;
    return d.toLocaleDateString('en-CA') + ' ' + time;
  }

  function duration(seconds) {
    if (typeof seconds !== 'number' || !isFinite(seconds)) return '–';
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  }

  /// A window's length: "60 s", "5 min", "1 h", "1 d".
  function span(seconds) {
    if (typeof seconds !== 'number' || !isFinite(seconds)) return '–';
    if (seconds < 120) return seconds + ' s';
    if (seconds % 86400 === 0) return seconds / 86400 + ' d';
    if (seconds % 3600 === 0) return seconds / 3600 + ' h';
    if (seconds % 60 === 0) return seconds / 60 + ' min';
    return duration(seconds);
  }

  function relative(at, now) {
    if (typeof at !== 'number' || typeof now !== 'number') return '–';
    const d = at - now;
    if (d <= 0) return 'due';
    return 'in ' + (d < 10 ? d.toFixed(1) + ' s' : duration(d));
  }

  // ----------------------------------------------------------------- rates

  function actorKey(a) {
    return (a.service || '') + '/' + (a.name || '') + '/' + (a.id ?? '');
  }

  /// processed/s of each actor of `node` against the previous snapshot of
  /// the same node; remembers this one for the next. A snapshot no newer
  /// than the previous one keeps the rates already shown.
  function rates(node) {
    const id = node.node && node.node.id;
    if (!id || typeof node.time !== 'number') return new Map();
    const prev = state.previous.get(id);
    if (prev && node.time <= prev.time) return prev.rates;
    const out = new Map();
    const counts = new Map();
    for (const a of node.actors || []) {
      if (typeof a.processed !== 'number') continue;
      const key = actorKey(a);
      counts.set(key, a.processed);
      if (prev && prev.counts.has(key)) {
        const d = a.processed - prev.counts.get(key);
        // A restarted actor counts from zero again: no rate this round.
        if (d >= 0) out.set(key, d / (node.time - prev.time));
      }
    }
    state.previous.set(id, { time: node.time, counts, rates: out });
    return out;
  }

  // ---------------------------------------------------------------- render

  function section(title, body, extraClass) {
    return el('section', { class: 'panel ' + (extraClass || '') }, el('h3', null, title), body);
  }

  function table(head, rows, cls) {
    return el('table', { class: cls || '' },
      el('thead', null, el('tr', null, head.map((h) =>
        el('th', { class: h.num ? 'num' : null, scope: 'col' }, h.label || h)))),
      el('tbody', null, rows));
  }

  function empty(text) {
    return el('p', { class: 'muted' }, text);
  }

  /// used / limit as a bar; `used` below 0: no counter yet in the window.
  function usage(used, limit) {
    const counted = typeof used === 'number' && used >= 0;
    const pct = counted && limit > 0 ? Math.min(100, (100 * used) / limit) : 0;
    const level = pct >= 90 ? 'high' : pct >= 60 ? 'mid' : 'low';
    const bar = el('div', { class: 'bar ' + level });
    // Through the CSSOM: the page's Content-Security-Policy refuses inline
    // style attributes.
    bar.style.width = pct.toFixed(1) + '%';
    return el('div', { class: 'usage', title: counted ? num(used) + ' of ' + num(limit)
      : 'no counter yet in this window' }, bar,
      el('span', null, (counted ? num(used) : '–') + ' / ' + (limit > 0 ? num(limit) : '∞')));
  }

  function actorRows(node, rateOf) {
    const nodeId = node.node && node.node.id;
    const actors = (node.actors || []).slice().sort((a, b) =>
      (a.service || '').localeCompare(b.service || '')
      || (a.name || '').localeCompare(b.name || '') || (a.id || 0) - (b.id || 0));
    const rows = [];
    for (const a of actors) {
      const key = actorKey(a);
      const openKey = nodeId + '|' + key;
      const isOpen = state.open.has(openKey);
      const answering = a.answering !== false;
      const toggle = () => {
        if (state.open.has(openKey)) state.open.delete(openKey);
        else state.open.add(openKey);
        if (state.last) render(state.last, false);
      };
      rows.push(el('tr', {
        class: 'actor' + (answering ? '' : ' not-answering') + (a.errors > 0 ? ' has-errors' : '')
          + (isOpen ? ' open' : ''),
        dataset: { service: a.service || '', name: a.name || '', processed: String(a.processed ?? '') },
        onclick: toggle,
      },
      el('td', null, el('button', { class: 'expand', type: 'button', 'aria-expanded': isOpen ? 'true' : 'false',
        title: 'details', onclick: (e) => { e.stopPropagation(); toggle(); } }, isOpen ? '▾' : '▸')),
      el('td', null, a.service || '–'),
      el('td', { class: 'name' }, a.name || '–'),
      el('td', { class: 'num' }, a.id ?? '–'),
      el('td', null, answering ? el('span', { class: 'badge ok' }, 'answering')
        : el('span', { class: 'badge bad' }, 'not answering')),
      el('td', { class: 'num' }, answering ? num(a.mailbox) : '–'),
      el('td', { class: 'num processed' }, answering ? num(a.processed) : '–'),
      el('td', { class: 'num' }, answering ? rate(rateOf.get(key)) : '–'),
      el('td', { class: 'num' + (a.errors > 0 ? ' warn' : '') }, answering ? num(a.errors) : '–'),
      el('td', { class: 'num' + (a.restarts > 0 ? ' warn' : '') }, answering ? num(a.restarts) : '–')));
      if (isOpen) rows.push(actorDetail(a));
    }
    return rows;
  }

  function actorDetail(a) {
    const extra = Object.entries(a.extra || {}).sort(([x], [y]) => x.localeCompare(y));
    return el('tr', { class: 'detail' }, el('td', { colspan: 10 },
      el('div', { class: 'detail-grid' },
        el('div', null,
          el('h4', null, 'Figures'),
          extra.length ? el('dl', { class: 'figures' }, extra.map(([k, v]) =>
            [el('dt', null, k), el('dd', null, typeof v === 'object' ? JSON.stringify(v) : String(v))]))
            : empty('no figures of its own')),
        el('div', null,
          el('h4', null, 'Last error'),
          a.last_error ? el('pre', { class: 'last-error' }, a.last_error) : empty('none')))));
  }

  function queuesPanel(node) {
    const qs = node.queues || [];
    return section('Queues', qs.length ? table(
      ['Queue', 'Broker', { label: 'Ready', num: true }, { label: 'Unacked', num: true }],
      qs.map((q) => el('tr', { dataset: { queue: q.name || '' } },
        el('td', null, q.name || '–'), el('td', null, q.broker || '–'),
        el('td', { class: 'num' }, num(q.ready)), el('td', { class: 'num' }, num(q.unacked)),
        q.error ? el('td', { class: 'error' }, q.error) : null))) : empty('no queues'), 'double');
  }

  function deadLettersPanel(node) {
    const dl = node.dead_letters;
    const count = dl && typeof dl.count === 'number' ? dl.count : null;
    return section('Dead letters', el('div', { class: 'big' },
      el('span', { class: 'figure' + (count > 0 ? ' warn' : '') }, count === null ? '–' : num(count)),
      el('a', { href: '#dead-letters', class: 'dead-letters-link', onclick: (e) => {
        e.preventDefault();
        showDeadLetters();
      } }, 'list')));
  }

  function quotasPanel(node) {
    const qs = node.quotas || [];
    return section('Quotas', qs.length ? table(
      ['Project', 'Quota', 'Window', 'Usage'],
      qs.map((q) => el('tr', null,
        el('td', null, q.project ?? '–'),
        el('td', null, [q.scope, q.id].filter(Boolean).join(' ') || '–'),
        el('td', null, span(q.window)), el('td', null, usage(q.used, q.limit)))))
      : empty('no quotas in use'), 'double');
  }

  function rateLimitsPanel(node) {
    const rs = node.rate_limits || [];
    return section('Rate limits', rs.length ? table(
      ['Key', 'Window', 'Usage'],
      rs.map((r) => el('tr', null,
        el('td', { class: 'name' }, r.key || '–'), el('td', null, span(r.window)),
        el('td', null, usage(r.used, r.limit)))))
      : empty('no rate limits in use'), 'double');
  }

  function figurePanel(title, figures) {
    return section(title, el('dl', { class: 'figures' }, figures.map(([k, v]) =>
      [el('dt', null, k), el('dd', { class: 'figure' }, v)])));
  }

  function cronPanel(node) {
    const c = node.cron;
    const entries = (c.entries || []).slice().sort((a, b) => (a.next || 0) - (b.next || 0));
    return section('Cron', [
      el('p', null, 'lock holder: ', el('strong', { class: 'lock-holder' }, c.lock_holder || 'nobody')),
      entries.length ? table(['Entry', 'Task', 'Next tick'], entries.map((e) => el('tr', null,
        el('td', null, e.name || '–'), el('td', { class: 'name' }, e.task || '–'),
        el('td', null, clock(e.next) + ' (' + relative(e.next, node.time) + ')'))))
        : empty('no entries')], 'wide');
  }

  function nodeCard(node, rateOf) {
    const info = node.node || {};
    const reachable = node.reachable !== false;
    const head = el('div', { class: 'card-head' },
      el('h2', null, info.id || info.inspect || 'unknown node'),
      el('span', { class: 'badge ' + (reachable ? 'ok' : 'bad') }, reachable ? 'reachable' : 'not reachable'),
      el('span', { class: 'meta' }, [
        info.mode && 'mode ' + info.mode,
        info.version && 'v' + info.version,
        info.host && 'host ' + info.host + (info.pid ? ' pid ' + info.pid : ''),
        info.queues && info.queues.length && 'queues ' + info.queues.join(', '),
        typeof info.started === 'number' && typeof node.time === 'number'
          && 'up ' + duration(node.time - info.started),
        info.web && 'web ' + info.web,
        info.inspect && 'inspect ' + info.inspect,
      ].filter(Boolean).join(' · ')));
    const card = el('article', {
      class: 'card node' + (reachable ? '' : ' unreachable'),
      dataset: { nodeId: info.id || '', reachable: String(reachable) },
    }, head);
    if (!reachable) {
      card.append(el('p', { class: 'error' }, node.error || 'the node did not answer'));
      return card;
    }
    let total = 0;
    let seen = false;
    for (const v of rateOf.values()) { total += v; seen = true; }
    card.append(el('p', { class: 'meta' }, (node.actors || []).length + ' actors · ',
      'processed/s ', el('strong', null, seen ? rate(total) : '–'),
      ' · snapshot ' + clock(node.time)));
    card.append(table(
      ['', 'Service', 'Actor', { label: 'Id', num: true }, 'State', { label: 'Mailbox', num: true },
        { label: 'Processed', num: true }, { label: 'Processed/s', num: true },
        { label: 'Errors', num: true }, { label: 'Restarts', num: true }],
      actorRows(node, rateOf), 'actors'));
    const panels = el('div', { class: 'panels' });
    if (node.queues) panels.append(queuesPanel(node));
    if (node.dead_letters) panels.append(deadLettersPanel(node));
    if (node.buffer) panels.append(figurePanel('Buffer', [['pending keys', num(node.buffer.pending_keys)]]));
    if (node.digests) {
      panels.append(figurePanel('Digests', [['timelines', num(node.digests.timelines)],
        ['due', num(node.digests.due)]]));
    }
    if (node.quotas) panels.append(quotasPanel(node));
    if (node.rate_limits) panels.append(rateLimitsPanel(node));
    if (node.cron) panels.append(cronPanel(node));
    card.append(panels);
    return card;
  }

  /// Draws `cluster` ({"nodes": [...]}); `fresh` when it is a new answer
  /// (rates move on), not a redraw for a toggled drill-down.
  function render(cluster, fresh) {
    if (fresh) state.last = cluster;
    const nodes = Array.isArray(cluster.nodes) ? cluster.nodes : [];
    const container = $('nodes');
    const cards = nodes.map((n) => {
      // A redraw (a drill-down toggled) keeps the rates of the last answer.
      const id = n.node && n.node.id;
      const prev = id && state.previous.get(id);
      return nodeCard(n, fresh ? rates(n) : (prev ? prev.rates : new Map()));
    });
    container.replaceChildren(...(cards.length ? cards : [empty('the inspector lists no node')]));
    const up = nodes.filter((n) => n.reachable !== false).length;
    const actors = nodes.reduce((s, n) => s + (n.actors || []).length, 0);
    $('summary').textContent = nodes.length + (nodes.length === 1 ? ' node' : ' nodes')
      + ' (' + up + ' reachable) · ' + actors + ' actors';
    if (fresh) {
      state.updates += 1;
      document.body.dataset.updates = String(state.updates);
    }
  }

  // ----------------------------------------------------------------- fetch

  async function getJson(path) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), REQUEST_TIMEOUT_MS);
    try {
      const resp = await fetch(path, {
        headers: { Authorization: 'Bearer ' + token(), Accept: 'application/json' },
        cache: 'no-store',
        signal: ctl.signal,
      });
      let body = null;
      try { body = await resp.json(); } catch (e) { body = null; }
      return { status: resp.status, body };
    } finally {
      clearTimeout(timer);
    }
  }

  function setStatus(kind, text) {
    $('status-dot').className = 'dot ' + kind;
    $('status-text').textContent = text;
  }

  function notice(text) {
    const n = $('notice');
    n.hidden = !text;
    n.textContent = text || '';
  }

  async function poll() {
    state.timer = null;
    if (state.paused || !token()) return;
    try {
      const { status, body } = await getJson('api/cluster');
      if (status === 401) {
        signOut((body && body.detail) || 'the token was refused');
        return;
      }
      if (status === 200 && body) {
        state.lastOk = Date.now();
        render(body, true);
        notice('');
        setStatus('ok', 'live · updated ' + new Date().toLocaleTimeString('en-GB', { hour12: false }));
      } else {
        const detail = (body && body.detail) || ('HTTP ' + status);
        notice('The cluster view is not available: ' + detail
          + (state.last ? ' (showing the last answer)' : ''));
        setStatus('bad', 'unavailable');
      }
    } catch (e) {
      notice('vigil did not answer: ' + (e && e.name === 'AbortError' ? 'timed out' : String(e.message || e))
        + (state.last ? ' (showing the last answer)' : ''));
      setStatus('bad', 'no answer');
    }
    schedule();
  }

  function schedule() {
    if (!state.paused && token() && state.timer === null) state.timer = setTimeout(poll, INTERVAL_MS);
  }

  async function showDeadLetters() {
    const box = $('dead-letters');
    const body = $('dead-letters-body');
    box.hidden = false;
    body.replaceChildren(empty('loading…'));
    box.scrollIntoView({ block: 'nearest' });
    try {
      const { status, body: doc } = await getJson('api/dead-letters');
      if (status !== 200 || !doc) {
        body.replaceChildren(el('p', { class: 'error' }, (doc && doc.detail) || ('HTTP ' + status)));
        return;
      }
      const letters = doc.dead_letters || [];
      body.replaceChildren(
        el('p', { class: 'meta' }, num(doc.count) + ' dead letter(s)'
          + (doc.count > letters.length ? ', the newest ' + letters.length + ' shown' : '')
          + ' · replay them with ', el('code', null, 'vigil dead-letters replay')),
        letters.length ? table(['When', 'Queue', 'Task', 'Task id', 'Reason'], letters.map((d) =>
          el('tr', null, el('td', null, d.time ? new Date(d.time * 1000).toISOString().slice(0, 19).replace('T', ' ') : '–'),
            el('td', null, d.queue || '–'), el('td', { class: 'name' }, d.task || '(undecodable)'),
            el('td', { class: 'name' }, d.task_id || '–'),
            el('td', { class: 'reason' }, d.unreadable ? 'unreadable record: ' + d.unreadable : d.reason || '–')))) 
          : empty('no dead letters'));
    } catch (e) {
      body.replaceChildren(el('p', { class: 'error' }, 'vigil did not answer: ' + String(e.message || e)));
    }
  }

  // ------------------------------------------------------------- sign in

  function showLogin(message) {
    $('app').hidden = true;
    $('login').hidden = false;
    $('sign-out').hidden = true;
    $('pause').hidden = true;
    $('dead-letters-link').hidden = true;
    $('login-error').textContent = message || '';
    $('summary').textContent = '';
    setStatus('idle', 'not signed in');
    $('token').focus();
  }

  function showApp() {
    $('login').hidden = true;
    $('app').hidden = false;
    $('sign-out').hidden = false;
    $('pause').hidden = false;
    $('dead-letters-link').hidden = false;
    setStatus('idle', 'connecting…');
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    if (state.timer !== null) clearTimeout(state.timer);
    state.timer = null;
    state.last = null;
    state.previous.clear();
    $('nodes').replaceChildren();
    showLogin(message);
  }

  function start() {
    $('login-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const value = $('token').value.trim();
      if (!value) return;
      sessionStorage.setItem(TOKEN_KEY, value);
      $('token').value = '';
      showApp();
      poll();
    });
    $('sign-out').addEventListener('click', () => signOut(''));
    $('pause').addEventListener('click', () => {
      state.paused = !state.paused;
      $('pause').textContent = state.paused ? 'resume' : 'pause';
      if (state.paused) {
        if (state.timer !== null) clearTimeout(state.timer);
        state.timer = null;
        setStatus('idle', 'paused');
      } else {
        poll();
      }
    });
    $('dead-letters-close').addEventListener('click', () => { $('dead-letters').hidden = true; });
    $('dead-letters-link').addEventListener('click', (e) => {
      e.preventDefault();
      showDeadLetters();
    });
    if (token()) {
      showApp();
      poll();
      if (location.hash === '#dead-letters') showDeadLetters();
    } else {
      showLogin('');
    }
  }

  document.addEventListener('DOMContentLoaded', start);
})();
