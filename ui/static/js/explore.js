// Explore: a PromQL query over a time range, drawn as a graph with the
// change events on it, and a table of the series.

import * as api from './api.js';
import {h, fill, nextPaint, debounce, plural} from './dom.js';
import {Editor} from './editor.js';
import {RangeControls} from './controls.js';
import {Plot, parseSeries, formatValue, SERIES_COLORS} from './plot.js';
import {shapes, fetchForRange} from './eventset.js';
import {replaceParams} from './router.js';

const TABLE_ROWS = 200;

export function mount(root, params) {
  let ctrl = null;
  const run = () => execute();
  const editor = new Editor({
    value: params.get('q') || '',
    placeholder: 'PromQL, e.g. sum by (code) (rate(http_requests_total[5m]))',
    onRun: run,
  });
  const range = new RangeControls({
    from: params.get('from') || 'now-1h', to: params.get('to') || 'now', step: params.get('step') || '', withStep: true, run,
  });
  const showEvents = h('input', {type: 'checkbox', 'data-testid': 'show-events'});
  showEvents.checked = params.get('events') !== '0';
  const eventFilter = h('input', {
    type: 'text', class: 'event-filter', value: params.get('ev') || '', spellcheck: 'false', 'data-testid': 'event-filter',
    placeholder: '{event_name=~"deploy.*", service="checkout"}', 'aria-label': 'Event filter',
  });
  eventFilter.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') run();
  });
  showEvents.addEventListener('change', run);
  const error = h('div', {class: 'query-error', role: 'alert', 'data-testid': 'query-error', hidden: true});
  const eventsNote = h('div', {class: 'note', 'data-testid': 'events-note', hidden: true});
  const stats = h('div', {class: 'stats', 'data-testid': 'query-stats'});
  const plotEl = h('div', {'data-testid': 'plot', 'data-state': 'idle'});
  const table = h('div', {class: 'table-wrap'});
  const runButton = h('button', {type: 'submit', class: 'primary', 'data-testid': 'query-run'}, 'Run');

  root.append(h('section', {class: 'view explore'},
    h('form', {class: 'query-bar', onsubmit: (e) => {
      e.preventDefault();
      run();
    }}, editor.el, runButton),
    error,
    h('div', {class: 'controls'}, range.el,
      h('div', {class: 'events-control'},
        h('label', {class: 'check'}, showEvents, ' Change events'),
        eventFilter)),
    eventsNote,
    h('div', {class: 'panel'}, stats, plotEl),
    h('div', {class: 'panel'}, h('h2', null, 'Series'), table)));

  const plot = new Plot(plotEl);
  let last = null;
  const redraw = debounce(() => {
    if (last) plot.render(last);
  }, 150);
  window.addEventListener('resize', redraw);

  async function execute() {
    const q = editor.value.trim();
    replaceParams('explore', {q, ...range.params(), events: showEvents.checked ? '' : '0', ev: eventFilter.value.trim()});
    error.hidden = true;
    eventsNote.hidden = true;
    if (!q) {
      showError('Enter a PromQL query.');
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
    plotEl.dataset.state = 'loading';
    runButton.disabled = true;
    const filter = eventFilter.value.trim();
    const t0 = performance.now();
    const [res, evs] = await Promise.allSettled([
      api.queryRange(q, r.start, r.end, r.step, signal),
      showEvents.checked ? fetchForRange({start: r.start, end: r.end, match: filter ? [filter] : []}, signal) : null,
    ]);
    if (signal.aborted) return;
    runButton.disabled = false;
    const loadMs = performance.now() - t0;
    if (res.status === 'rejected') {
      plotEl.dataset.state = 'error';
      showError(res.reason.message, res.reason.errorType);
      return;
    }
    let events = [];
    if (evs.status === 'rejected') {
      eventsNote.textContent = 'Change events could not be read: ' + evs.reason.message;
      eventsNote.hidden = false;
    } else if (evs.value) {
      events = evs.value.events;
      if (evs.value.truncated) {
        eventsNote.textContent = 'Showing the first ' + events.length + ' change events of this range; narrow the range or the filter to see all.';
        eventsNote.hidden = false;
      }
    }

    // Render: from the answer in hand to the page painted.
    const r0 = performance.now();
    const series = parseSeries(res.value.result || []);
    const sh = shapes(events, r.start, r.end, Date.now());
    last = {series, start: r.start, end: r.end, step: r.step, regions: sh.regions, markers: sh.markers};
    const counts = plot.render(last);
    renderTable(series);
    await nextPaint();
    const renderMs = performance.now() - r0;
    if (signal.aborted) return;
    plotEl.dataset.renderMs = renderMs.toFixed(1);
    plotEl.dataset.loadMs = loadMs.toFixed(1);
    plotEl.dataset.state = 'done';
    fill(stats,
      `${counts.series} series · ${plural(counts.points, 'point')} · ${plural(counts.markers, 'marker')} · ${plural(counts.regions, 'region')}`,
      h('span', {class: 'muted'}, ` · loaded in ${Math.round(loadMs)} ms · drawn in ${Math.round(renderMs)} ms`));
  }

  function showError(msg, type) {
    fill(error, type ? h('b', null, type + ': ') : null, msg);
    error.hidden = false;
  }

  function renderTable(series) {
    const rows = series.slice(0, TABLE_ROWS).map((se, i) => {
      let min = Infinity;
      let max = -Infinity;
      for (const v of se.vs) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const n = se.vs.length;
      return h('tr', {'data-testid': 'series-row'},
        h('td', null, h('span', {class: 'swatch', style: {background: SERIES_COLORS[i % SERIES_COLORS.length]}})),
        h('td', {class: 'mono'}, se.name),
        h('td', {class: 'num'}, n ? formatValue(se.vs[n - 1]) : ''),
        h('td', {class: 'num'}, n ? formatValue(min) : ''),
        h('td', {class: 'num'}, n ? formatValue(max) : ''),
        h('td', {class: 'num'}, n));
    });
    fill(table, h('table', {class: 'data', 'data-testid': 'series-table'},
      h('thead', null, h('tr', null, h('th'), h('th', null, 'Series'), h('th', {class: 'num'}, 'Last'),
        h('th', {class: 'num'}, 'Min'), h('th', {class: 'num'}, 'Max'), h('th', {class: 'num'}, 'Points'))),
      h('tbody', null, rows)),
    series.length > TABLE_ROWS ? h('p', {class: 'muted'}, `and ${series.length - TABLE_ROWS} more series`) : null,
    series.length === 0 ? h('p', {class: 'muted', 'data-testid': 'no-data'}, 'No data in this range.') : null);
  }

  if (editor.value.trim()) execute();
  else editor.input.focus();

  return () => {
    if (ctrl) ctrl.abort();
    window.removeEventListener('resize', redraw);
  };
}
