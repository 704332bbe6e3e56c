// Rollouts: the stages of a progressive rollout (events named PREFIX...,
// e.g. sample-app-20, sample-app-40) as regions over chosen metrics, with
// the canary judge's verdicts (events named "analysis" whose window_event
// is a stage) when there are any.

import * as api from './api.js';
import {h, clear, fill, labelChips, debounce} from './dom.js';
import {RangeControls} from './controls.js';
import {Plot, parseSeries} from './plot.js';
import {shapes, fetchForRange, outcomeColor} from './eventset.js';
import {formatTime, humanDuration} from './time.js';
import {replaceParams} from './router.js';

// ANALYSIS is the name of the judge's verdict events.
const ANALYSIS = 'analysis';

// regexpQuote escapes text for a PromQL regular expression.
// A backslash of the regexp is written twice inside the PromQL string.
const regexpQuote = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\\\$&').replace(/"/g, '\\"');

export function mount(root, params) {
  let ctrl = null;
  const run = () => load();
  const prefix = h('input', {type: 'text', value: params.get('prefix') || '', placeholder: 'sample-app-', 'data-testid': 'rollout-prefix', 'aria-label': 'Event name prefix', spellcheck: 'false'});
  const metrics = h('textarea', {class: 'metrics-input', rows: 2, spellcheck: 'false', 'data-testid': 'rollout-metrics', 'aria-label': 'Metrics, one PromQL query a line',
    placeholder: 'one PromQL query a line, e.g.\nsum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))'});
  metrics.value = params.getAll('m').join('\n');
  prefix.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') run();
  });
  const range = new RangeControls({from: params.get('from') || 'now-6h', to: params.get('to') || 'now', withStep: true, step: params.get('step') || '', run});
  const error = h('div', {class: 'query-error', role: 'alert', 'data-testid': 'rollout-error', hidden: true});
  const stagesEl = h('div', {class: 'panel', 'data-testid': 'rollout-stages', 'data-state': 'idle'});
  const charts = h('div', {class: 'charts'});
  root.append(h('section', {class: 'view rollouts'},
    h('form', {class: 'controls', onsubmit: (e) => {
      e.preventDefault();
      run();
    }}, h('label', null, 'Event name prefix ', prefix), range.el,
    h('label', {class: 'grow'}, 'Metrics ', metrics),
    h('button', {type: 'submit', class: 'primary', 'data-testid': 'rollout-run'}, 'Show')),
    error, stagesEl, charts));
  let plots = [];
  const redraw = debounce(() => plots.forEach(([p, o]) => p.render(o)), 150);
  window.addEventListener('resize', redraw);

  async function load() {
    error.hidden = true;
    const pfx = prefix.value.trim();
    const queries = metrics.value.split('\n').map((q) => q.trim()).filter(Boolean);
    replaceParams('rollouts', {prefix: pfx, m: queries, ...range.params()});
    if (!pfx) {
      fill(stagesEl, h('p', {class: 'muted'}, 'Enter the prefix of the stage events, for example sample-app- for sample-app-20, sample-app-40...'));
      return;
    }
    let r;
    try {
      r = range.resolve();
    } catch (err) {
      showError(err.message);
      return;
    }
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    const signal = ctrl.signal;
    stagesEl.dataset.state = 'loading';
    const [stageRes, verdictRes, ...metricRes] = await Promise.allSettled([
      fetchForRange({start: r.start, end: r.end, match: [`{event_name=~"${regexpQuote(pfx)}.+"}`]}, signal),
      fetchForRange({start: r.start, end: r.end, name: ANALYSIS, match: [`{window_event=~"${regexpQuote(pfx)}.+"}`]}, signal),
      ...queries.map((q) => api.queryRange(q, r.start, r.end, r.step, signal)),
    ]);
    if (signal.aborted) return;
    if (stageRes.status === 'rejected') {
      showError(stageRes.reason.message);
      stagesEl.dataset.state = 'error';
      return;
    }
    const now = Date.now();
    const stages = shapes(stageRes.value.events, r.start, r.end, now);
    for (const st of stages.regions) st.label = st.name.slice(pfx.length);
    const judged = verdictRes.status === 'fulfilled' ? shapes(verdictRes.value.events, r.start, r.end, now) : {regions: [], markers: []};
    const verdicts = judged.regions.map(verdictOf).concat(judged.markers.map((m) => verdictOf({to: m.t, start: m.event, stop: m.pair})));
    verdicts.sort((a, b) => a.t - b.t);

    renderStages(stages, verdicts, pfx);
    stagesEl.dataset.stageCount = stages.regions.length;
    stagesEl.dataset.verdictCount = verdicts.length;
    stagesEl.dataset.state = 'done';

    clear(charts);
    plots = [];
    const list = queries.length ? queries : [null];
    list.forEach((q, i) => {
      const res = q ? metricRes[i] : null;
      const el = h('div', {'data-testid': 'rollout-plot'});
      const panel = h('div', {class: 'panel'}, h('h2', {class: 'mono'}, q || 'stages'));
      if (res && res.status === 'rejected') {
        panel.append(h('div', {class: 'query-error', role: 'alert', 'data-testid': 'rollout-metric-error'}, res.reason.message));
      }
      panel.append(el);
      charts.append(panel);
      const p = new Plot(el, {height: q ? 260 : 90});
      const o = {
        series: res && res.status === 'fulfilled' ? parseSeries(res.value.result || []) : [],
        start: r.start, end: r.end, step: r.step, regions: stages.regions, markers: stages.markers, verdicts,
      };
      p.render(o);
      plots.push([p, o]);
    });
  }

  function renderStages(stages, verdicts, pfx) {
    const byStage = new Map();
    for (const v of verdicts) {
      const k = v.window || '';
      if (!byStage.has(k)) byStage.set(k, []);
      byStage.get(k).push(v);
    }
    fill(stagesEl, h('h2', null, `Stages of ${pfx}…`),
      stages.regions.length === 0
        ? h('p', {class: 'muted', 'data-testid': 'rollout-empty'}, `No event named ${pfx}… in this range.`)
        : h('table', {class: 'data'},
          h('thead', null, h('tr', null, h('th', null, 'Stage'), h('th', null, 'From'), h('th', null, 'To'),
            h('th', null, 'Duration'), h('th', null, 'Labels'), h('th', null, 'Verdicts'))),
          h('tbody', null, stages.regions.map((st) => {
            const ev = st.start || st.stop;
            const from = st.start ? Date.parse(st.start.timestamp) : st.from;
            const vs = byStage.get(st.name) || [];
            return h('tr', {'data-testid': 'stage-row'},
              h('td', {class: 'mono'}, st.name),
              h('td', {class: 'nowrap'}, formatTime(from)),
              h('td', {class: 'nowrap'}, st.open ? h('span', {class: 'badge open'}, 'open') : formatTime(st.stop ? Date.parse(st.stop.timestamp) : st.to)),
              h('td', {class: 'nowrap'}, humanDuration(st.open ? (Date.now() - from) / 1000 : ev.duration_seconds)),
              h('td', null, labelChips(ev.labels)),
              h('td', null, vs.length ? vs.map((v) => h('span', {class: 'badge verdict ' + v.outcome, 'data-testid': 'verdict-badge', title: v.reason || ''}, v.label)) : h('span', {class: 'muted'}, 'none')));
          }))));
  }

  function showError(msg) {
    error.textContent = msg;
    error.hidden = false;
  }

  run();
  return () => {
    if (ctrl) ctrl.abort();
    window.removeEventListener('resize', redraw);
  };
}

// verdictOf turns an analysis window into a flag at its end.
function verdictOf(w) {
  const ev = w.start || w.stop;
  const labels = (ev && ev.labels) || {};
  const meta = (ev && ev.metadata) || {};
  const outcome = labels.outcome || meta.verdict || '?';
  const score = labels.score !== undefined ? labels.score : (meta.score !== undefined ? Math.round(meta.score) : '');
  const t = w.stop ? Date.parse(w.stop.timestamp) : w.to;
  const metrics = Array.isArray(meta.metrics) ? meta.metrics : [];
  return {
    t, outcome, window: labels.window_event || '', color: outcomeColor(outcome), label: `${outcome} ${score}`.trim(), reason: meta.reason || '',
    title: `verdict ${outcome}, score ${score}` + (labels.window_event ? ` for ${labels.window_event}` : ''),
    body: h('div', null,
      meta.reason ? h('p', null, meta.reason) : null,
      metrics.length ? h('ul', {class: 'plain'}, metrics.map((m) => h('li', null, h('b', null, m.name), ': ', m.classification, m.critical ? ' (critical)' : ''))) : null,
      labelChips(labels, ['outcome', 'score'])),
  };
}
