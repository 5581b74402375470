// The live status page of hotpath (served at /). Plain JavaScript, no
// framework, nothing loaded from elsewhere: see page/mod.rs for what it
// reads and why.
'use strict';

(() => {
  const MAX_POINTS = 600;
  const MAX_DECISIONS = 200;
  const MAX_CHANGE_MARKS = 30;
  const STATUS_EVERY_MS = 2000;
  const TOKEN_KEY = 'hotpath.operator-token';
  const SVG = 'http://www.w3.org/2000/svg';
  /** Events that change what /v1/status shows beyond the counters. */
  const STATUS_EVENTS = new Set(['safe-mode-entered', 'safe-mode-exited', 'resumed',
    'rolled-back', 'baseline-set', 'restored']);
  /** The engine's own bookkeeping: shown only on request. */
  const QUIET_EVENTS = new Set(['engine', 'outcome']);

  const $ = (id) => document.getElementById(id);
  const page = {
    knobs: [],
    rows: new Map(),
    values: null,
    generation: -1,
    baseline: null,
    points: [],
    decisions: [],
    token: null,
    pending: null,
    streams: { config: false, events: false },
    statusTimer: null,
  };
  try {
    page.token = window.sessionStorage.getItem(TOKEN_KEY);
  } catch (_) {
    page.token = null;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attributes) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
    return node;
  }

  async function getJson(path) {
    const response = await fetch(path, { cache: 'no-store' });
    if (!response.ok) throw new Error(`${path} answered ${response.status}`);
    return response.json();
  }

  // ---- numbers and knobs -------------------------------------------------

  function number(x) {
    if (typeof x !== 'number') return String(x);
    if (!Number.isFinite(x)) return String(x);
    const size = Math.abs(x);
    if (size !== 0 && (size >= 1e6 || size < 1e-3)) return x.toExponential(3);
    return String(Number(x.toPrecision(4)));
  }

  function kindText(knob) {
    const base = { real: 'real', int: 'integer', choice: 'choice' }[knob.kind] || knob.kind;
    return knob.scale === 'log' ? `${base}, log scale` : base;
  }

  function boundsText(knob) {
    if (knob.kind === 'choice') return `${knob.options.length} options`;
    if (knob.min === undefined || knob.max === undefined) return 'unbounded';
    let text = `${number(knob.min)} … ${number(knob.max)}`;
    if (knob.kind === 'int' && knob.step > 1) text += `, step ${knob.step}`;
    return text;
  }

  /** Where `value` is within the knob's bounds, 0..1 (on its own scale). */
  function position(knob, value) {
    if (knob.kind === 'choice') {
      const i = knob.options.indexOf(value);
      if (i < 0) return null;
      return knob.options.length > 1 ? i / (knob.options.length - 1) : 0;
    }
    if (typeof value !== 'number' || knob.min === undefined || knob.max === undefined) return null;
    const unit = knob.scale === 'log'
      ? (Math.log(value) - Math.log(knob.min)) / (Math.log(knob.max) - Math.log(knob.min))
      : (value - knob.min) / (knob.max - knob.min);
    return Math.min(1, Math.max(0, unit));
  }

  function valueText(knob, value) {
    if (value === undefined || value === null) return '–';
    return knob.kind === 'choice' ? String(value) : number(value);
  }

  /** The typed value of a knob from the live encoding an audit event holds. */
  function typed(knob, raw) {
    if (knob.kind === 'choice') return knob.options[raw] !== undefined ? knob.options[raw] : raw;
    return raw;
  }

  function buildKnobs(knobs) {
    page.knobs = knobs;
    const body = $('knobs').tBodies[0];
    body.replaceChildren();
    for (const knob of knobs) {
      const row = el('tr');
      row.dataset.knob = knob.name;
      const name = el('th', 'name', knob.name);
      name.scope = 'row';
      const bounds = el('td', 'bounds');
      const options = [];
      if (knob.kind === 'choice') {
        const list = el('ul', 'options');
        list.setAttribute('aria-label', `options of ${knob.name}`);
        for (const option of knob.options) {
          const item = el('li', null, option);
          list.append(item);
          options.push(item);
        }
        bounds.append(list);
      } else {
        bounds.textContent = boundsText(knob);
      }
      const live = el('td', 'live', '–');
      const where = el('td', 'where');
      const meter = el('meter');
      meter.min = 0;
      meter.max = 1;
      meter.setAttribute('aria-label', `${knob.name} within its bounds${knob.scale === 'log' ? ' (log scale)' : ''}`);
      where.append(meter);
      const baseline = el('td', 'baseline', '–');
      const cells = [name, el('td', 'kind', kindText(knob)), bounds, live, where, baseline];
      const headings = $('knobs').tHead.rows[0].cells;
      cells.forEach((cell, i) => { cell.dataset.label = headings[i].textContent; });
      row.append(...cells);
      body.append(row);
      page.rows.set(knob.name, { knob, live, meter, baseline, options });
    }
    showValues();
  }

  function showValues() {
    for (const { knob, live, meter, baseline, options } of page.rows.values()) {
      const value = page.values ? page.values[knob.name] : undefined;
      live.textContent = valueText(knob, value);
      const at = position(knob, value);
      if (at === null) meter.removeAttribute('value');
      else meter.value = at;
      meter.title = at === null ? 'unknown' : `${Math.round(at * 100)} % of the way from the lower bound`;
      for (const item of options) {
        const current = item.textContent === value;
        item.classList.toggle('current', current);
        if (current) item.setAttribute('aria-current', 'true');
        else item.removeAttribute('aria-current');
      }
      baseline.textContent = page.baseline ? valueText(knob, page.baseline[knob.name]) : 'none';
    }
  }

  // ---- the objective chart -----------------------------------------------

  function addPoint(point) {
    page.points.push(point);
    if (page.points.length > MAX_POINTS) page.points.splice(0, page.points.length - MAX_POINTS);
  }

  function drawChart() {
    const chart = $('chart');
    const caption = $('chart-caption');
    // Drawn at the size it is shown, so its text stays readable.
    const shownWidth = Math.round(chart.getBoundingClientRect().width);
    const width = shownWidth > 0 ? Math.max(shownWidth, 280) : 960;
    const height = Math.round(Math.min(300, Math.max(180, width * 0.3)));
    chart.setAttribute('viewBox', `0 0 ${width} ${height}`);
    const left = 72;
    const right = 12;
    const top = 12;
    const bottom = 34;
    chart.replaceChildren();
    const points = page.points;
    if (points.length === 0) {
      caption.textContent = 'No measurement yet.';
      return;
    }
    const ys = points.map((p) => p.objective);
    let low = Math.min(...ys);
    let high = Math.max(...ys);
    if (high - low < 1e-12) {
      const pad = Math.abs(high) * 0.05 || 1;
      low -= pad;
      high += pad;
    }
    const t0 = points[0].t_us;
    const t1 = points[points.length - 1].t_us;
    const span = Math.max(t1 - t0, 1);
    const x = (t) => left + ((t - t0) / span) * (width - left - right);
    const y = (v) => top + ((high - v) / (high - low)) * (height - top - bottom);
    for (const [value, label] of [[high, number(high)], [(high + low) / 2, number((high + low) / 2)], [low, number(low)]]) {
      chart.append(svg('line', { class: 'grid', x1: left, x2: width - right, y1: y(value), y2: y(value) }));
      const text = svg('text', { class: 'axis', x: left - 6, y: y(value) + 4, 'text-anchor': 'end' });
      text.textContent = label;
      chart.append(text);
    }
    const seconds = span / 1e6;
    const axis = svg('text', { class: 'axis', x: width - right, y: height - 8, 'text-anchor': 'end' });
    axis.textContent = `now`;
    const start = svg('text', { class: 'axis', x: left, y: height - 8, 'text-anchor': 'start' });
    start.textContent = `${number(seconds)} s ago`;
    chart.append(axis, start);
    // A dotted line where the config changed, while there are few enough
    // changes in view to tell apart.
    const changes = points.filter((p, i) => i > 0 && p.generation !== points[i - 1].generation);
    if (changes.length <= MAX_CHANGE_MARKS) {
      for (const p of changes) {
        chart.append(svg('line', { class: 'generation', x1: x(p.t_us), x2: x(p.t_us), y1: top, y2: height - bottom }));
      }
    }
    const path = points.map((p) => `${x(p.t_us).toFixed(1)},${y(p.objective).toFixed(1)}`).join(' ');
    chart.append(svg('polyline', { class: 'line', points: path }));
    const last = points[points.length - 1];
    chart.append(svg('circle', { class: 'last', cx: x(last.t_us), cy: y(last.objective), r: 4 }));
    caption.textContent = `${points.length} measurements over the last ${number(seconds)} s: `
      + `latest ${number(last.objective)} (generation ${last.generation}), `
      + `lowest ${number(Math.min(...ys))}, highest ${number(Math.max(...ys))}.`;
  }

  let chartQueued = false;
  function queueChart() {
    if (chartQueued) return;
    chartQueued = true;
    window.requestAnimationFrame(() => {
      chartQueued = false;
      drawChart();
    });
  }

  // ---- decisions ---------------------------------------------------------

  const LABELS = {
    applied: 'applied',
    rejected: 'refused',
    'rolled-back': 'rolled back',
    'baseline-set': 'baseline',
    'safe-mode-entered': 'safe mode on',
    'safe-mode-exited': 'safe mode off',
    resumed: 'resumed',
    started: 'started',
    restored: 'restored',
    'events-dropped': 'dropped',
    outcome: 'outcome',
    engine: 'engine',
  };

  /** The knobs' typed values of an event's `params`, or null. */
  function typedParams(params) {
    if (!Array.isArray(params) || params.length !== page.knobs.length) return null;
    return page.knobs.map((k, i) => `${k.name} ${valueText(k, typed(k, params[i]))}`).join(', ');
  }

  /** What an event says, for people: the knobs' typed values where it
   * moved them, else its own line without the "#seq t=…µs gen=…" prefix
   * the row shows apart. */
  function eventText(event) {
    const details = event.details || {};
    const applied = details.Applied;
    const values = applied ? typedParams(applied.params) : null;
    if (values !== null) return `${applied.kind} #${applied.correlation_id} → ${values}`;
    const rolled = details.RolledBack;
    const restored = rolled ? typedParams(rolled.params) : null;
    if (restored !== null) return `rolled back (${rolled.reason}) → ${restored}`;
    return event.text.replace(/^#\d+ t=\d+µs gen=\d+ /, '');
  }

  function decisionRow(event) {
    const item = el('li', `decision kind-${event.type}`);
    item.dataset.type = event.type;
    item.append(el('span', 'badge', LABELS[event.type] || event.type));
    item.append(el('span', 'meta', `#${event.seq} · gen ${event.generation}`));
    item.append(el('span', 'text', eventText(event)));
    item.hidden = QUIET_EVENTS.has(event.type) && !$('show-engine').checked;
    return item;
  }

  function addDecision(event) {
    const list = $('decisions');
    list.prepend(decisionRow(event));
    while (list.children.length > MAX_DECISIONS) list.lastElementChild.remove();
    $('decisions-empty').hidden = list.querySelector('li:not([hidden])') !== null;
  }

  function filterDecisions() {
    const all = $('show-engine').checked;
    for (const item of $('decisions').children) item.hidden = !all && QUIET_EVENTS.has(item.dataset.type);
    $('decisions-empty').hidden = $('decisions').querySelector('li:not([hidden])') !== null;
  }

  // ---- status ------------------------------------------------------------

  /** In fleet mode: this instance's role and the leader whose decisions
   * the page shows (a standby relays the leader's feed). */
  function showFleet(fleet) {
    $('fleet').hidden = !fleet;
    if (!fleet) return;
    const leader = fleet.leader ? `${fleet.leader.instance} at ${fleet.leader.address}` : 'none (electing)';
    $('role').textContent = fleet.role === 'leader'
      ? `${fleet.instance}: leader`
      : `${fleet.instance}: standby, leader ${leader}`;
  }

  function showStatus(status) {
    showFleet(status.fleet);
    $('stage').textContent = status.engine.stage;
    $('iteration').textContent = String(status.engine.iteration);
    showConfig(status.generation, status.values);
    page.baseline = status.baseline ? status.baseline.values : null;
    showValues();
    const safe = status.safe_mode;
    const state = $('safe-state');
    state.textContent = safe.active ? 'ON: the executor refuses every change but rollbacks' : 'off: changes are judged by the guardrails';
    state.classList.toggle('on', safe.active);
    const reasons = $('reasons');
    reasons.replaceChildren();
    for (const reason of safe.reasons) {
      const item = el('li');
      item.dataset.reason = reason.reason;
      item.append(el('strong', null, reason.reason), document.createTextNode(`: ${reason.description}`));
      const exit = { timer: 'leaves by itself when its timer runs out', manual: 'leaves on resume', queue_drained: 'leaves when the audit queue drains', clock_in_range: 'leaves when the clock is back in range', coordinator: 'leaves once the leader publishes to its fleet again', never: 'stays' }[reason.exit];
      if (exit) item.append(el('span', 'hint', ` (${exit})`));
      reasons.append(item);
    }
    const counts = status.counts;
    const standby = Boolean(status.fleet) && status.fleet.role === 'standby';
    $('counts-standby').hidden = !standby;
    const rows = [
      ['applied', counts.applied], ['refused', counts.refused], ['rollbacks', counts.rollbacks],
      ['digests accepted', counts.telemetry.accepted], ['digests stale', counts.telemetry.stale],
      ['windows stepped', counts.telemetry.windows_stepped],
      ['audit events durable', standby ? 'on the leader' : status.audit.durable_seq === null ? 'none yet' : `up to #${status.audit.durable_seq}`],
      ['audit log', standby ? 'kept by the leader' : status.audit.log_failing ? 'FAILING (retrying)' : 'writing'],
    ];
    const list = $('counts');
    list.replaceChildren();
    for (const [name, value] of rows) {
      const row = el('div');
      row.append(el('dt', null, name), el('dd', null, String(value)));
      list.append(row);
    }
  }

  async function refreshStatus() {
    try {
      showStatus(await getJson('/v1/status'));
    } catch (error) {
      $('safe-state').textContent = `status unavailable: ${error.message}`;
    }
  }

  /** Refreshes the status within `delay` ms (one request however many
   * events ask for it meanwhile). */
  let statusQueued = null;
  let statusDue = Infinity;
  function queueStatus(delay) {
    const due = Date.now() + delay;
    if (statusQueued !== null && statusDue <= due) return;
    if (statusQueued !== null) window.clearTimeout(statusQueued);
    statusDue = due;
    statusQueued = window.setTimeout(() => {
      statusQueued = null;
      statusDue = Infinity;
      refreshStatus();
    }, delay);
  }

  /** The live values, unless what is shown is newer (the watch and the status race). */
  function showConfig(generation, values) {
    if (generation >= page.generation) {
      page.generation = generation;
      page.values = values;
      $('generation').textContent = String(generation);
    }
    showValues();
  }

  // ---- live streams ------------------------------------------------------

  function showConnection() {
    const open = page.streams.config && page.streams.events;
    const node = $('connection');
    node.textContent = open ? 'live' : 'reconnecting…';
    node.classList.toggle('down', !open);
  }

  function stream(name, path, handlers) {
    const source = new EventSource(path);
    source.onopen = () => {
      page.streams[name] = true;
      showConnection();
    };
    source.onerror = () => {
      page.streams[name] = false;
      showConnection();
    };
    for (const [event, handle] of Object.entries(handlers)) {
      source.addEventListener(event, (message) => {
        let data;
        try {
          data = JSON.parse(message.data);
        } catch (_) {
          return;
        }
        handle(data);
      });
    }
    return source;
  }

  function startStreams() {
    stream('config', '/v1/config/watch', {
      config: (config) => showConfig(config.generation, config.values),
    });
    stream('events', '/v1/events', {
      audit: (event) => {
        addDecision(event);
        queueStatus(STATUS_EVENTS.has(event.type) ? 100 : 1000);
      },
      objective: (point) => {
        addPoint(point);
        queueChart();
      },
      lost: (lost) => {
        const note = el('li', 'decision kind-lost');
        note.append(el('span', 'badge', 'missed'), el('span', 'text', `${lost.skipped} items went by while this page was behind`));
        $('decisions').prepend(note);
      },
    });
  }

  // ---- operator actions --------------------------------------------------

  function showResult(text, failed) {
    const node = $('action-result');
    node.textContent = text;
    node.classList.toggle('error', Boolean(failed));
  }

  function setToken(token, keep) {
    page.token = token;
    try {
      if (token !== null && keep) window.sessionStorage.setItem(TOKEN_KEY, token);
      else window.sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) {
      // Storage refused: the token stays in memory only.
    }
    $('forget-token').hidden = token === null;
  }

  function askToken(action) {
    page.pending = action;
    $('token-input').value = '';
    $('token-dialog').showModal();
    $('token-input').focus();
  }

  /** What an operator call did, in words. */
  function actionResult(action, reply) {
    if (action === 'freeze') return reply.changed ? 'Frozen: safe mode latched (Manual).' : 'Already frozen.';
    if (action === 'resume') {
      const cleared = Array.isArray(reply.cleared) ? reply.cleared.join(', ') : '';
      return reply.changed ? `Resumed: cleared ${cleared}.` : 'Nothing to resume.';
    }
    return `${action}: done.`;
  }

  async function act(action) {
    if (page.token === null) {
      askToken(action);
      return;
    }
    showResult(`${action}…`, false);
    let response;
    try {
      response = await fetch(`/v1/${action}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${page.token}` },
        cache: 'no-store',
      });
    } catch (error) {
      showResult(`${action} failed: ${error.message}`, true);
      return;
    }
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (response.status === 401 || response.status === 403) {
      setToken(null, false);
      showResult(`The server refused the token (${response.status} ${body && body.error ? body.error.code : ''}): ${action} was not done. Enter the token again.`, true);
      return;
    }
    if (!response.ok) {
      const message = body && body.error ? `${body.error.code}: ${body.error.message}` : `status ${response.status}`;
      showResult(`${action} refused: ${message}`, true);
      return;
    }
    showResult(actionResult(action, body), false);
    refreshStatus();
  }

  function wire() {
    $('freeze').addEventListener('click', () => act('freeze'));
    $('resume').addEventListener('click', () => act('resume'));
    $('forget-token').addEventListener('click', () => {
      setToken(null, false);
      showResult('The token is forgotten.', false);
    });
    $('forget-token').hidden = page.token === null;
    $('show-engine').addEventListener('change', filterDecisions);
    $('token-form').addEventListener('submit', (submitted) => {
      submitted.preventDefault();
      const token = $('token-input').value.trim();
      if (token === '') return;
      setToken(token, $('token-keep').checked);
      $('token-input').value = '';
      $('token-dialog').close();
      const action = page.pending;
      page.pending = null;
      if (action) act(action);
    });
    $('token-cancel').addEventListener('click', () => {
      page.pending = null;
      $('token-input').value = '';
      $('token-dialog').close();
      showResult('Nothing was done: no token.', false);
    });
  }

  async function start() {
    wire();
    try {
      const described = await getJson('/v1/knobs');
      buildKnobs(described.knobs);
    } catch (error) {
      showResult(`cannot read the knobs: ${error.message}`, true);
    }
    await refreshStatus();
    startStreams();
    page.statusTimer = window.setInterval(refreshStatus, STATUS_EVERY_MS);
    window.addEventListener('resize', queueChart);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
