// Alerts: the firing and pending alerts of the organization, each with the
// change events Tidemark attached to it (the annotations change_events_json
// and change_events), when there are any, and the same ranked as suspects
// with their impact (suspected_changes_json).

import * as api from './api.js';
import {h, fill, labelChips, linkList} from './dom.js';
import {formatTime, humanDuration} from './time.js';
import {colorOf} from './eventset.js';
import {formatValue} from './plot.js';
import {suspectList} from './impact.js';

const REFRESH_MS = 15000;
const CONTEXT_JSON = 'change_events_json';
const CONTEXT_TEXT = 'change_events';
const SUSPECTS_JSON = 'suspected_changes_json';
const SUSPECTS_TEXT = 'suspected_changes';

export function mount(root) {
  let ctrl = null;
  const stateFilter = h('select', {'data-testid': 'alerts-state', 'aria-label': 'State'},
    h('option', {value: ''}, 'firing and pending'), h('option', {value: 'firing'}, 'firing'), h('option', {value: 'pending'}, 'pending'));
  stateFilter.addEventListener('change', () => draw());
  const error = h('div', {class: 'query-error', role: 'alert', 'data-testid': 'alerts-error', hidden: true});
  const summary = h('div', {class: 'stats'});
  const list = h('div', {class: 'alert-list', 'data-testid': 'alerts-list', 'data-state': 'idle'});
  root.append(h('section', {class: 'view alerts'},
    h('div', {class: 'controls'}, h('label', null, 'Show ', stateFilter),
      h('button', {type: 'button', class: 'secondary', 'data-testid': 'alerts-refresh', onclick: () => load()}, 'Refresh')),
    error, h('div', {class: 'panel'}, summary, list)));
  let alerts = [];

  async function load() {
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    list.dataset.state = 'loading';
    try {
      alerts = await api.alerts(ctrl.signal);
      error.hidden = true;
    } catch (err) {
      if (err.name === 'AbortError') return;
      error.textContent = err.message;
      error.hidden = false;
      list.dataset.state = 'error';
      return;
    }
    draw();
    list.dataset.state = 'done';
  }

  function draw() {
    const order = {firing: 0, pending: 1};
    const want = stateFilter.value;
    const shown = alerts.filter((a) => (a.state === 'firing' || a.state === 'pending') && (!want || a.state === want))
      .sort((a, b) => (order[a.state] - order[b.state]) || (Date.parse(b.activeAt) - Date.parse(a.activeAt)));
    const firing = alerts.filter((a) => a.state === 'firing').length;
    const pending = alerts.filter((a) => a.state === 'pending').length;
    list.dataset.alertCount = shown.length;
    list.dataset.firingCount = firing;
    list.dataset.pendingCount = pending;
    fill(summary, `${firing} firing · ${pending} pending`, h('span', {class: 'muted'}, ` · updated ${formatTime(Date.now())}`));
    fill(list, shown.length === 0
      ? h('p', {class: 'muted', 'data-testid': 'alerts-empty'}, 'No alert is firing or pending.')
      : shown.map(card));
  }

  function card(a) {
    const ann = a.annotations || {};
    const other = Object.keys(ann).filter((k) => ![CONTEXT_JSON, CONTEXT_TEXT, SUSPECTS_JSON, SUSPECTS_TEXT, 'summary', 'description'].includes(k)).sort();
    const since = Date.parse(a.activeAt);
    return h('article', {class: 'alert-card ' + a.state, 'data-testid': 'alert-row', 'data-state': a.state},
      h('header', null,
        h('span', {class: 'badge ' + a.state}, a.state),
        h('b', {class: 'alert-name'}, (a.labels && a.labels.alertname) || 'alert'),
        Number.isFinite(since) ? h('span', {class: 'muted'}, ` since ${formatTime(since)} (${humanDuration((Date.now() - since) / 1000)})`) : null,
        a.value !== undefined ? h('span', {class: 'muted'}, ` · value ${formatValue(parseFloat(a.value))}`) : null),
      labelChips(a.labels, ['alertname']),
      ann.summary ? h('p', {class: 'summary'}, ann.summary) : null,
      ann.description ? h('p', null, ann.description) : null,
      other.length ? h('dl', {class: 'meta'}, other.map((k) => [h('dt', null, k), h('dd', null, ann[k])])) : null,
      suspects(ann),
      changeContext(ann));
  }

  load();
  const timer = setInterval(() => {
    if (!document.hidden) load();
  }, REFRESH_MS);
  return () => {
    clearInterval(timer);
    if (ctrl) ctrl.abort();
  };
}

// suspects renders an alert's changes ranked as suspects, when it has
// them (suspected_changes_json).
function suspects(ann) {
  if (!ann[SUSPECTS_JSON]) return null;
  let sus;
  try {
    sus = JSON.parse(ann[SUSPECTS_JSON]);
  } catch {
    return ann[SUSPECTS_TEXT] ? h('pre', {'data-testid': 'alert-suspects-text'}, ann[SUSPECTS_TEXT]) : null;
  }
  return Array.isArray(sus) && sus.length ? suspectList(sus) : null;
}

// changeContext renders the change events attached to an alert.
function changeContext(ann) {
  let evs = null;
  if (ann[CONTEXT_JSON]) {
    try {
      const v = JSON.parse(ann[CONTEXT_JSON]);
      if (Array.isArray(v)) evs = v;
    } catch {
      evs = null;
    }
  }
  if (evs) {
    return h('div', {class: 'change-context'},
      h('h3', null, evs.length ? `Changes around it (${evs.length})` : 'No change around it'),
      evs.length ? h('ul', {class: 'plain'}, evs.map((e) => h('li', {'data-testid': 'alert-change-event'},
        h('span', {class: 'dot', style: {background: colorOf(e.name || '')}}),
        h('b', null, e.name), ' ', h('span', {class: 'badge ' + e.state}, e.state), ' ',
        h('span', {class: 'muted'}, e.timestamp ? formatTime(Date.parse(e.timestamp)) : ''), ' ',
        labelChips(e.labels), linkList(e.links, 'alert-change-link')))) : null);
  }
  if (ann[CONTEXT_TEXT]) {
    return h('div', {class: 'change-context'}, h('h3', null, 'Changes around it'),
      h('pre', {'data-testid': 'alert-change-text'}, ann[CONTEXT_TEXT]));
  }
  return null;
}
