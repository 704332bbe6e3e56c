// Times and durations as people type them: "now", "now-1h", RFC 3339,
// "2026-11-25 10:00" (local time), epoch seconds; Prometheus durations
// such as "15s", "1h30m", "7d".

const UNITS = {ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3, y: 365 * 86400e3};

// parseDuration returns the milliseconds of a Prometheus duration, or NaN.
export function parseDuration(text) {
  const t = String(text).trim();
  if (!/^(\d+(ms|s|m|h|d|w|y))+$/.test(t)) return NaN;
  let ms = 0;
  for (const [, n, u] of t.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)) ms += Number(n) * UNITS[u];
  return ms;
}

// formatDuration renders milliseconds as a Prometheus duration ("1h30m").
export function formatDuration(ms) {
  if (!Number.isFinite(ms)) return '';
  if (ms === 0) return '0s';
  let rest = Math.round(ms);
  let out = '';
  for (const u of ['w', 'd', 'h', 'm', 's', 'ms']) {
    if (u === 'w' && rest % UNITS.w !== 0) continue;
    const n = Math.floor(rest / UNITS[u]);
    if (n > 0) {
      out += n + u;
      rest -= n * UNITS[u];
    }
  }
  return out;
}

// humanDuration renders seconds for reading: "42s", "5m 3s", "2h 10m", "3d 4h".
export function humanDuration(seconds) {
  if (!Number.isFinite(seconds)) return '';
  const s = Math.round(seconds);
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + (s % 60 ? ' ' + (s % 60) + 's' : '');
  if (s < 86400) return Math.floor(s / 3600) + 'h' + (s % 3600 >= 60 ? ' ' + Math.floor((s % 3600) / 60) + 'm' : '');
  return Math.floor(s / 86400) + 'd' + (s % 86400 >= 3600 ? ' ' + Math.floor((s % 86400) / 3600) + 'h' : '');
}

// parseTime returns epoch milliseconds for text relative to now (ms), or NaN.
export function parseTime(text, now) {
  const t = String(text).trim();
  if (t === '' || t === 'now') return now;
  const rel = /^now\s*([+-])\s*(\S+)$/.exec(t);
  if (rel) {
    const d = parseDuration(rel[2]);
    return Number.isNaN(d) ? NaN : now + (rel[1] === '-' ? -d : d);
  }
  if (/^\d+(\.\d+)?$/.test(t)) {
    const n = Number(t);
    return n < 1e11 ? Math.round(n * 1000) : Math.round(n);
  }
  // "2026-11-25 10:00" is local time, as datetime-local inputs are.
  const local = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$/.exec(t);
  if (local) {
    const [, y, mo, d, hh, mm, ss] = local;
    return new Date(+y, +mo - 1, +d, +hh, +mm, +(ss || 0)).getTime();
  }
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? NaN : ms;
}

// autoStep is the step Prometheus's own UI picks: about 250 points, at least 1s.
export function autoStep(rangeMs) {
  return Math.max(Math.floor(rangeMs / 250 / 1000), 1) * 1000;
}

// maxPoints is Prometheus's limit on the points of one range query's series.
export const MAX_POINTS = 11000;

const pad = (n, w = 2) => String(n).padStart(w, '0');

// formatTime renders epoch milliseconds as local "YYYY-MM-DD HH:MM:SS".
export function formatTime(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// axisLabel renders a tick's time with the precision its interval needs.
export function axisLabel(ms, intervalMs) {
  const d = new Date(ms);
  if (intervalMs >= 86400e3) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (intervalMs < 60e3) return `${hm}:${pad(d.getSeconds())}`;
  if (d.getHours() === 0 && d.getMinutes() === 0) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return hm;
}

const TICK_INTERVALS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800]
  .map((s) => s * 1000);

// timeTicks returns tick times between start and end, about every minPx
// pixels of a width px wide axis, aligned to local clock boundaries.
export function timeTicks(start, end, width, minPx = 90) {
  const want = Math.max(1, Math.floor(width / minPx));
  const span = end - start;
  const interval = TICK_INTERVALS.find((i) => span / i <= want) || TICK_INTERVALS[TICK_INTERVALS.length - 1];
  // Align to the interval in local time.
  const offset = new Date(start).getTimezoneOffset() * 60e3;
  let t = Math.ceil((start - offset) / interval) * interval + offset;
  const ticks = [];
  for (; t <= end; t += interval) ticks.push(t);
  return {ticks, interval};
}
