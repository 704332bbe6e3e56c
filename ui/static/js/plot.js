// A time series plot drawn as SVG, with change events on it: a shaded
// region for each window and a marker for each point event, in a lane
// above the plot where hovering shows the event and clicking pins it.
//
// The plot element carries what it drew, for tests and tooling:
// data-series-count, data-point-count, data-marker-count and
// data-region-count.

import {h, s, clear, labelChips, metadataView, linkList} from './dom.js';
import {axisLabel, formatTime, humanDuration, timeTicks} from './time.js';
import {colorOf} from './eventset.js';
import {Tooltip} from './tooltip.js';
import {impactView, verdictOf} from './impact.js';

export const SERIES_COLORS = ['#1c7ed6', '#e8590c', '#2f9e44', '#ae3ec9', '#f08c00', '#0ca678', '#d6336c', '#4263eb', '#74b816', '#868e96'];

const LANE = 18; // height of the event lane above the plot
const M = {top: LANE + 6, right: 16, bottom: 26, left: 56};

// seriesName renders a series' labels as PromQL does: name{a="b", ...}.
export function seriesName(metric) {
  const name = metric.__name__ || '';
  const rest = Object.keys(metric).filter((k) => k !== '__name__').sort()
    .map((k) => `${k}="${metric[k]}"`);
  return rest.length ? `${name}{${rest.join(', ')}}` : name || '{}';
}

// formatValue renders a sample value compactly.
export function formatValue(v) {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e15 || a < 1e-4)) return v.toExponential(2);
  for (const [div, suffix] of [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']]) {
    if (a >= div) return trim((v / div).toFixed(2)) + suffix;
  }
  return trim(v.toPrecision(4));
}

function trim(str) {
  return str.includes('.') && !str.includes('e') ? str.replace(/\.?0+$/, '') : str;
}

// niceTicks returns about n round numbers covering [lo, hi].
function niceTicks(lo, hi, n) {
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, n);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) || 10 * mag;
  const from = Math.floor(lo / step) * step;
  const to = Math.ceil(hi / step) * step;
  const ticks = [];
  for (let v = from; v <= to + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return {lo: from, hi: to, ticks};
}

// parseSeries turns a Prometheus matrix into {metric, name, ts, vs}
// (Float64Array timestamps in ms and values).
export function parseSeries(matrix) {
  return matrix.map((r) => {
    const n = r.values ? r.values.length : 0;
    const ts = new Float64Array(n);
    const vs = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      ts[i] = r.values[i][0] * 1000;
      vs[i] = parseFloat(r.values[i][1]);
    }
    return {metric: r.metric || {}, name: seriesName(r.metric || {}), ts, vs};
  });
}

// Plot renders into el (a block element) and redraws on render(opts).
export class Plot {
  constructor(el, {height = 320, onEventClick} = {}) {
    this.el = el;
    this.height = height;
    this.onEventClick = onEventClick;
    this.hidden = new Set();
    el.classList.add('plot');
    el.dataset.testid = el.dataset.testid || 'plot';
    this.svg = s('svg', {class: 'plot-svg', role: 'img', 'aria-label': 'graph'});
    this.legend = h('div', {class: 'legend', 'data-testid': 'legend'});
    const area = h('div', {class: 'plot-area'}, this.svg);
    this.tip = new Tooltip(area);
    el.append(area, this.legend);
    this.svg.addEventListener('mousemove', (e) => this.hover(e));
    this.svg.addEventListener('mouseleave', () => this.unhover());
    this.svg.addEventListener('click', (e) => this.click(e));
  }

  // render draws opts: {series (from parseSeries), start, end, step,
  // regions, markers (from eventset.shapes), verdicts: [{t, color, label,
  // event}], title}. It returns the counts drawn.
  render(opts) {
    this.opts = opts;
    this.tip.unpin();
    const width = Math.max(320, this.el.clientWidth || 800);
    const height = this.height;
    const pw = width - M.left - M.right;
    const ph = height - M.top - M.bottom;
    const {start, end} = opts;
    const series = opts.series || [];
    const regions = opts.regions || [];
    const markers = opts.markers || [];
    const verdicts = opts.verdicts || [];
    const span = Math.max(1, end - start);
    const x = (t) => M.left + ((t - start) / span) * pw;

    let lo = Infinity;
    let hi = -Infinity;
    let points = 0;
    for (const se of series) {
      if (this.hidden.has(se.name)) continue;
      const vs = se.vs;
      points += vs.length;
      for (let i = 0; i < vs.length; i++) {
        const v = vs[i];
        if (Number.isFinite(v)) {
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      }
    }
    if (lo === Infinity) {
      lo = 0;
      hi = 1;
    }
    const yt = niceTicks(lo, hi, Math.max(2, Math.floor(ph / 50)));
    const y = (v) => M.top + ph - ((v - yt.lo) / (yt.hi - yt.lo)) * ph;
    this.geom = {x, y, start, end, span, pw, ph, width, height};

    const svg = clear(this.svg);
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.setAttribute('width', width);
    svg.setAttribute('height', height);

    // Grid and axes.
    const grid = s('g', {class: 'grid'});
    for (const v of yt.ticks) {
      const yy = y(v).toFixed(1);
      grid.append(s('line', {x1: M.left, x2: M.left + pw, y1: yy, y2: yy}),
        s('text', {class: 'tick y', x: M.left - 6, y: yy, dy: '0.32em', 'text-anchor': 'end'}, formatValue(v)));
    }
    const tt = timeTicks(start, end, pw);
    for (const t of tt.ticks) {
      const xx = x(t).toFixed(1);
      grid.append(s('line', {x1: xx, x2: xx, y1: M.top, y2: M.top + ph}),
        s('text', {class: 'tick x', x: xx, y: M.top + ph + 17, 'text-anchor': 'middle'}, axisLabel(t, tt.interval)));
    }
    grid.append(s('rect', {class: 'frame', x: M.left, y: M.top, width: pw, height: ph}));
    grid.append(s('rect', {class: 'lane', x: M.left, y: 2, width: pw, height: LANE}));
    svg.append(grid);

    // Event regions: shading over the plot, a bar in the lane.
    const shading = s('g', {class: 'regions'});
    const lane = s('g', {class: 'lane-items'});
    regions.forEach((r, i) => {
      const x0 = x(r.from);
      const w = Math.max(2, x(r.to) - x0);
      const color = r.color || colorOf(r.name);
      shading.append(s('rect', {class: r.open ? 'region open' : 'region', x: x0.toFixed(1), y: M.top, width: w.toFixed(1), height: ph, fill: color}));
      const bv = verdictOf(r.start);
      const bar = s('g', {class: (r.open ? 'region-bar open' : 'region-bar') + (bv ? ' impact-' + bv : ''), 'data-kind': 'region', 'data-index': i, 'data-testid': 'region', 'data-verdict': bv},
        s('rect', {x: x0.toFixed(1), y: 4, width: w.toFixed(1), height: LANE - 4, rx: 3, fill: color}));
      if (w > 46) {
        bar.append(s('text', {x: (x0 + 4).toFixed(1), y: 4 + (LANE - 4) / 2, dy: '0.35em', class: 'bar-label'}, r.label || r.name));
      }
      if (r.open) {
        const xe = x0 + w;
        bar.append(s('path', {class: 'open-arrow', d: `M${(xe - 6).toFixed(1)} 6 L${xe.toFixed(1)} ${4 + (LANE - 4) / 2} L${(xe - 6).toFixed(1)} ${LANE}`}));
      }
      lane.append(bar);
    });
    svg.append(shading);

    // Series.
    const lines = s('g', {class: 'series'});
    const gap = (opts.step || 0) * 1.5;
    series.forEach((se, i) => {
      if (this.hidden.has(se.name)) return;
      const parts = [];
      let pen = false;
      const {ts, vs} = se;
      for (let j = 0; j < ts.length; j++) {
        const v = vs[j];
        if (!Number.isFinite(v)) {
          pen = false;
          continue;
        }
        if (pen && gap > 0 && ts[j] - ts[j - 1] > gap) pen = false;
        parts.push((pen ? 'L' : 'M') + x(ts[j]).toFixed(1) + ' ' + y(v).toFixed(1));
        pen = true;
      }
      const color = SERIES_COLORS[i % SERIES_COLORS.length];
      if (ts.length === 1 && Number.isFinite(vs[0])) {
        lines.append(s('circle', {cx: x(ts[0]).toFixed(1), cy: y(vs[0]).toFixed(1), r: 2.5, fill: color, 'data-series': i}));
      } else {
        lines.append(s('path', {d: parts.join(''), stroke: color, 'data-series': i}));
      }
    });
    svg.append(lines);

    // Markers: a line through the plot, a handle in the lane.
    const rules = s('g', {class: 'markers'});
    markers.forEach((m, i) => {
      const xx = x(m.t).toFixed(1);
      const color = m.color || colorOf(m.name);
      rules.append(s('line', {x1: xx, x2: xx, y1: M.top, y2: M.top + ph, stroke: color}));
      const mv = verdictOf(m.event);
      lane.append(s('g', {class: 'marker' + (mv ? ' impact-' + mv : ''), 'data-kind': 'marker', 'data-index': i, 'data-testid': 'marker', 'data-verdict': mv},
        s('path', {d: `M${xx} ${LANE + 2} l-6 -10 h12 z`, fill: color}),
        s('rect', {class: 'hit', x: (+xx - 7).toFixed(1), y: 0, width: 14, height: LANE + 4})));
    });
    // Verdicts: a labelled flag in the lane.
    verdicts.forEach((v, i) => {
      const xx = x(v.t);
      rules.append(s('line', {class: 'verdict-rule', x1: xx.toFixed(1), x2: xx.toFixed(1), y1: M.top, y2: M.top + ph, stroke: v.color}));
      lane.append(s('g', {class: 'verdict', 'data-kind': 'verdict', 'data-index': i, 'data-testid': 'verdict'},
        s('rect', {x: (xx - 22).toFixed(1), y: 2, width: 44, height: LANE, rx: 4, fill: v.color}),
        s('text', {x: xx.toFixed(1), y: 2 + LANE / 2, dy: '0.35em', 'text-anchor': 'middle', class: 'verdict-label'}, v.label)));
    });
    svg.append(rules, lane);

    this.cross = s('line', {class: 'crosshair', x1: 0, x2: 0, y1: M.top, y2: M.top + ph, visibility: 'hidden'});
    svg.append(this.cross);

    this.renderLegend(series);
    const counts = {
      series: series.length, points, markers: markers.length, regions: regions.length, verdicts: verdicts.length,
    };
    const d = this.el.dataset;
    d.seriesCount = counts.series;
    d.pointCount = counts.points;
    d.markerCount = counts.markers;
    d.regionCount = counts.regions;
    d.verdictCount = counts.verdicts;
    return counts;
  }

  renderLegend(series) {
    const lg = clear(this.legend);
    const max = 100;
    series.slice(0, max).forEach((se, i) => {
      const off = this.hidden.has(se.name);
      lg.append(h('button', {
        type: 'button', class: off ? 'legend-item off' : 'legend-item', title: 'Show or hide this series',
        onclick: () => {
          if (this.hidden.has(se.name)) this.hidden.delete(se.name);
          else this.hidden.add(se.name);
          this.render(this.opts);
        },
      }, h('span', {class: 'swatch', style: {background: SERIES_COLORS[i % SERIES_COLORS.length]}}), se.name));
    });
    if (series.length > max) lg.append(h('span', {class: 'muted'}, `and ${series.length - max} more series`));
  }

  itemAt(target) {
    const g = target.closest && target.closest('[data-kind]');
    if (!g || !this.opts) return null;
    const i = Number(g.dataset.index);
    switch (g.dataset.kind) {
      case 'region': return {kind: 'region', item: this.opts.regions[i]};
      case 'marker': return {kind: 'marker', item: this.opts.markers[i]};
      case 'verdict': return {kind: 'verdict', item: this.opts.verdicts[i]};
    }
    return null;
  }

  hover(e) {
    if (this.tip.pinned || !this.geom) return;
    const hit = this.itemAt(e.target);
    if (hit) {
      this.cross.setAttribute('visibility', 'hidden');
      this.tip.show(eventTip(hit), e);
      return;
    }
    const pt = this.point(e);
    const {x, start, end, span, pw} = this.geom;
    if (pt.x < M.left || pt.x > M.left + pw || pt.y < M.top) {
      this.unhover();
      return;
    }
    const t = start + ((pt.x - M.left) / pw) * span;
    const rows = [];
    let at = null;
    (this.opts.series || []).forEach((se, i) => {
      if (this.hidden.has(se.name) || se.ts.length === 0) return;
      const j = nearest(se.ts, t);
      if (Math.abs(se.ts[j] - t) > Math.max(this.opts.step || 0, span / pw * 8)) return;
      at = at === null || Math.abs(se.ts[j] - t) < Math.abs(at - t) ? se.ts[j] : at;
      rows.push({i, name: se.name, v: se.vs[j]});
    });
    if (rows.length === 0 || at === null || at < start || at > end) {
      this.unhover();
      return;
    }
    rows.sort((a, b) => b.v - a.v);
    const xx = x(at).toFixed(1);
    this.cross.setAttribute('x1', xx);
    this.cross.setAttribute('x2', xx);
    this.cross.setAttribute('visibility', 'visible');
    const shown = rows.slice(0, 12);
    this.tip.show(h('div', null,
      h('div', {class: 'tip-title'}, formatTime(at)),
      h('table', {class: 'tip-values'}, shown.map((r) => h('tr', null,
        h('td', null, h('span', {class: 'swatch', style: {background: SERIES_COLORS[r.i % SERIES_COLORS.length]}})),
        h('td', {class: 'tip-series'}, r.name),
        h('td', {class: 'num'}, formatValue(r.v))))),
      rows.length > shown.length ? h('div', {class: 'muted'}, `and ${rows.length - shown.length} more`) : null), e);
  }

  click(e) {
    const hit = this.itemAt(e.target);
    if (!hit) {
      this.tip.unpin();
      return;
    }
    this.cross.setAttribute('visibility', 'hidden');
    this.tip.pin(eventTip(hit), e);
    if (this.onEventClick) this.onEventClick(hit);
  }

  unhover() {
    this.tip.hide();
    if (this.cross && !this.tip.pinned) this.cross.setAttribute('visibility', 'hidden');
  }

  point(e) {
    const r = this.svg.getBoundingClientRect();
    return {x: e.clientX - r.left, y: e.clientY - r.top};
  }
}

// nearest returns the index of the timestamp in sorted ts closest to t.
function nearest(ts, t) {
  let lo = 0;
  let hi = ts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ts[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(ts[lo - 1] - t) <= Math.abs(ts[lo] - t)) return lo - 1;
  return lo;
}

// eventTip is the tooltip of an event shape: what happened, when, for how
// long, its labels, metadata and links.
export function eventTip({kind, item}) {
  if (kind === 'verdict') {
    return h('div', null, h('div', {class: 'tip-title'}, item.title || item.label), item.body || null);
  }
  const ev = kind === 'region' ? item.start || item.stop : item.event;
  const other = kind === 'region' ? item.stop : item.pair;
  const rows = [];
  if (kind === 'region') {
    const from = item.start ? Date.parse(item.start.timestamp) : item.from;
    rows.push(h('div', null, 'from ', formatTime(from), ' to ', item.open ? 'now' : formatTime(item.stop ? Date.parse(item.stop.timestamp) : item.to)));
    const dur = item.open ? (Date.now() - from) / 1000 : (item.start || item.stop).duration_seconds;
    rows.push(h('div', null, item.open ? h('span', {class: 'badge open'}, 'open') : null, ' ', humanDuration(dur)));
  } else {
    rows.push(h('div', null, formatTime(item.t), ' · ', ev.event_state + (other ? ' and ' + other.event_state : '')));
  }
  const labels = Object.assign({}, ev.labels, other ? other.labels : null);
  const links = [].concat(ev.links || [], other ? other.links || [] : []);
  return h('div', {class: 'event-tip'},
    h('div', {class: 'tip-title'}, h('span', {class: 'dot', style: {background: colorOf(ev.event_name)}}), ev.event_name),
    rows,
    labelChips(labels),
    impactView(ev.impact || (other ? other.impact : null)),
    metadataView(Object.assign({}, ev.metadata, other ? other.metadata : null)),
    linkList(links, 'tooltip-link'));
}
