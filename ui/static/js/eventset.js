// Turning the event log into what a graph draws: a region for each
// start→stop window (an open start runs to now), a marker for every other
// event (a stop that found no start, a start and stop at the same instant,
// a start that closed without a stop).

import * as api from './api.js';

// MAX_OPEN_MS is how long a start stays open without a stop
// (--events.max-duration): starts that old can still cover the range.
export const MAX_OPEN_MS = 24 * 3600e3;

const eventTime = (e) => Date.parse(e.timestamp);

// shapes returns {regions, markers} of the events that show in [start, end].
// A region is {from, to, open, start, stop, name}; a marker is {t, event,
// name}. Times are epoch milliseconds; regions are clipped to the range.
export function shapes(events, start, end, now) {
  const byID = new Map(events.map((e) => [e.id, e]));
  const regions = [];
  const markers = [];
  const seen = new Set();
  for (const e of events) {
    if (seen.has(e.id)) continue;
    seen.add(e.id);
    const t = eventTime(e);
    const dur = typeof e.duration_seconds === 'number' ? e.duration_seconds * 1000 : null;
    let region = null;
    if (e.event_state === 'start' && e.open) {
      region = {from: t, to: Math.max(now, t), open: true, start: e, stop: null};
    } else if (e.pair_id && dur !== null && dur > 0) {
      const other = byID.get(e.pair_id) || null;
      if (other) seen.add(other.id);
      region = e.event_state === 'start'
        ? {from: t, to: t + dur, open: false, start: e, stop: other}
        : {from: t - dur, to: t, open: false, start: other, stop: e};
    } else if (e.pair_id && byID.has(e.pair_id)) {
      // A start and its stop at the same instant: one marker.
      seen.add(e.pair_id);
      const other = byID.get(e.pair_id);
      const first = e.event_state === 'start' ? e : other;
      if (t >= start && t <= end) markers.push({t, event: first, pair: first === e ? other : e, name: e.event_name});
      continue;
    }
    if (region) {
      if (region.to < start || region.from > end) continue;
      region.name = e.event_name;
      region.from = Math.max(region.from, start);
      region.to = Math.min(region.to, end);
      regions.push(region);
    } else if (t >= start && t <= end) {
      markers.push({t, event: e, pair: null, name: e.event_name});
    }
  }
  regions.sort((a, b) => a.from - b.from);
  markers.sort((a, b) => a.t - b.t);
  return {regions, markers};
}

// fetchForRange reads the events that can show in [start, end]: those in
// the range, and the starts of the MAX_OPEN_MS before it that may still
// cover it. match is a list of selectors (match[]), name an event name.
export async function fetchForRange({start, end, match, name}, signal) {
  const sel = match && match.length ? match : undefined;
  const [inRange, before] = await Promise.all([
    api.allEvents({start, end, match: sel, name}, 10, signal),
    api.allEvents({
      start: start - MAX_OPEN_MS, end: start - 1, name,
      match: (sel || ['{}']).map((m) => andSelector(m, 'event_state="start"')),
    }, 2, signal),
  ]);
  const covering = before.events.filter((e) => e.open ||
    (typeof e.duration_seconds === 'number' && eventTime(e) + e.duration_seconds * 1000 >= start));
  return {events: inRange.events.concat(covering), truncated: inRange.truncated || before.truncated};
}

// andSelector adds a matcher to a selector "{...}" or "name{...}".
function andSelector(sel, matcher) {
  const s = sel.trim();
  if (s.endsWith('}')) {
    const inner = s.slice(s.indexOf('{') + 1, -1).trim();
    return s.slice(0, s.indexOf('{') + 1) + (inner ? inner + ', ' : '') + matcher + '}';
  }
  return s + '{' + matcher + '}';
}

// colorOf gives each event name a stable color.
const EVENT_COLORS = ['#d9480f', '#7048e8', '#0c8599', '#c2255c', '#5c940d', '#e67700', '#1971c2', '#862e9c'];
export function colorOf(name) {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return EVENT_COLORS[h % EVENT_COLORS.length];
}

// outcomeColor colors a canary verdict.
export function outcomeColor(outcome) {
  return {pass: '#2b8a3e', marginal: '#e67700', fail: '#c92a2a'}[outcome] || '#495057';
}
