// The event log as a timeline: one lane per event name, a bar for each
// start→stop window (open ones run to now and end in an arrow), a diamond
// for each point event, outlined by its impact when it is degraded. Hover
// shows the event; click pins it.

import {s, clear} from './dom.js';
import {axisLabel, timeTicks} from './time.js';
import {colorOf} from './eventset.js';
import {eventTip} from './plot.js';
import {Tooltip} from './tooltip.js';
import {verdictOf} from './impact.js';

const LANE_H = 24;
const M = {top: 8, right: 16, bottom: 24, left: 170};
const MAX_LANES = 40;

export class Timeline {
  constructor(el) {
    this.el = el;
    el.classList.add('timeline');
    this.svg = s('svg', {class: 'timeline-svg', role: 'img', 'aria-label': 'event timeline'});
    el.append(this.svg);
    this.tip = new Tooltip(el);
    this.svg.addEventListener('mousemove', (e) => {
      if (this.tip.pinned) return;
      const hit = this.itemAt(e.target);
      if (hit) this.tip.show(eventTip(hit), e);
      else this.tip.hide();
    });
    this.svg.addEventListener('mouseleave', () => this.tip.hide());
    this.svg.addEventListener('click', (e) => {
      const hit = this.itemAt(e.target);
      if (hit) this.tip.pin(eventTip(hit), e);
      else this.tip.unpin();
    });
  }

  itemAt(target) {
    const g = target.closest && target.closest('[data-kind]');
    if (!g) return null;
    const i = Number(g.dataset.index);
    return g.dataset.kind === 'region' ? {kind: 'region', item: this.regions[i]} : {kind: 'marker', item: this.markers[i]};
  }

  // render draws {regions, markers} (from eventset.shapes) over [start, end].
  render({regions, markers, start, end}) {
    this.tip.unpin();
    this.regions = regions;
    this.markers = markers;
    // Lanes by name, the most recent first.
    const last = new Map();
    for (const r of regions) last.set(r.name, Math.max(last.get(r.name) || -Infinity, r.to));
    for (const m of markers) last.set(m.name, Math.max(last.get(m.name) || -Infinity, m.t));
    const names = [...last.keys()].sort((a, b) => last.get(b) - last.get(a));
    const shown = names.slice(0, MAX_LANES);
    const lane = new Map(shown.map((n, i) => [n, i]));
    const width = Math.max(480, this.el.clientWidth || 900);
    const pw = width - M.left - M.right;
    const height = M.top + M.bottom + Math.max(1, shown.length) * LANE_H;
    const span = Math.max(1, end - start);
    const x = (t) => M.left + ((t - start) / span) * pw;
    const svg = clear(this.svg);
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.setAttribute('width', width);
    svg.setAttribute('height', height);

    const grid = s('g', {class: 'grid'});
    shown.forEach((n, i) => {
      const y = M.top + i * LANE_H;
      if (i % 2 === 0) grid.append(s('rect', {class: 'lane-bg', x: 0, y, width, height: LANE_H}));
      grid.append(s('text', {class: 'lane-name', x: M.left - 8, y: y + LANE_H / 2, dy: '0.35em', 'text-anchor': 'end'},
        n.length > 26 ? n.slice(0, 25) + '…' : n));
    });
    const tt = timeTicks(start, end, pw);
    for (const t of tt.ticks) {
      const xx = x(t).toFixed(1);
      grid.append(s('line', {x1: xx, x2: xx, y1: M.top, y2: height - M.bottom}),
        s('text', {class: 'tick x', x: xx, y: height - M.bottom + 16, 'text-anchor': 'middle'}, axisLabel(t, tt.interval)));
    }
    svg.append(grid);

    const items = s('g');
    let drawnRegions = 0;
    let drawnMarkers = 0;
    regions.forEach((r, i) => {
      if (!lane.has(r.name)) return;
      const y = M.top + lane.get(r.name) * LANE_H + 4;
      const x0 = x(r.from);
      const w = Math.max(3, x(r.to) - x0);
      const g = s('g', {class: (r.open ? 'tl-region open' : 'tl-region') + verdictClass(r.start), 'data-kind': 'region', 'data-index': i, 'data-testid': 'timeline-region', 'data-verdict': verdictOf(r.start)},
        s('rect', {x: x0.toFixed(1), y, width: w.toFixed(1), height: LANE_H - 8, rx: 3, fill: colorOf(r.name)}));
      if (r.open) {
        const xe = x0 + w;
        g.append(s('path', {class: 'open-arrow', d: `M${(xe - 7).toFixed(1)} ${y} L${xe.toFixed(1)} ${y + (LANE_H - 8) / 2} L${(xe - 7).toFixed(1)} ${y + LANE_H - 8}`}));
      }
      items.append(g);
      drawnRegions++;
    });
    markers.forEach((m, i) => {
      if (!lane.has(m.name)) return;
      const cy = M.top + lane.get(m.name) * LANE_H + LANE_H / 2;
      const cx = x(m.t);
      items.append(s('g', {class: 'tl-marker' + verdictClass(m.event), 'data-kind': 'marker', 'data-index': i, 'data-testid': 'timeline-marker', 'data-verdict': verdictOf(m.event)},
        s('path', {d: `M${cx.toFixed(1)} ${cy - 7} l7 7 l-7 7 l-7 -7 z`, fill: colorOf(m.name)})));
      drawnMarkers++;
    });
    svg.append(items);
    const d = this.el.dataset;
    d.laneCount = shown.length;
    d.regionCount = drawnRegions;
    d.markerCount = drawnMarkers;
    d.hiddenLanes = names.length - shown.length;
  }
}

// verdictClass marks a shape with its event's verdict: degraded ones stand
// out.
function verdictClass(e) {
  const v = verdictOf(e);
  return v ? ' impact-' + v : '';
}
