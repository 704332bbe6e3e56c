// PromQL completion: what the text before the cursor asks for (a metric or
// function, a label name, a label value) and the candidates for it, from
// /api/v1/label/__name__/values, /api/v1/labels and
// /api/v1/label/{name}/values.

import * as api from './api.js';

export const FUNCTIONS = [
  'abs', 'absent', 'absent_over_time', 'acos', 'asin', 'atan', 'avg_over_time', 'ceil', 'changes', 'clamp',
  'clamp_max', 'clamp_min', 'cos', 'count_over_time', 'day_of_month', 'day_of_week', 'day_of_year',
  'days_in_month', 'deg', 'delta', 'deriv', 'double_exponential_smoothing', 'exp', 'floor',
  'histogram_avg', 'histogram_count', 'histogram_fraction', 'histogram_quantile', 'histogram_sum',
  'hour', 'idelta', 'increase', 'irate', 'label_join', 'label_replace', 'last_over_time', 'ln', 'log10',
  'log2', 'mad_over_time', 'max_over_time', 'min_over_time', 'minute', 'month', 'predict_linear',
  'present_over_time', 'quantile_over_time', 'rad', 'rate', 'resets', 'round', 'scalar', 'sgn', 'sin',
  'sort', 'sort_by_label', 'sort_by_label_desc', 'sort_desc', 'sqrt', 'stddev_over_time',
  'stdvar_over_time', 'sum_over_time', 'tan', 'time', 'timestamp', 'vector', 'year',
];
export const AGGREGATIONS = ['avg', 'bottomk', 'count', 'count_values', 'group', 'limitk', 'limit_ratio',
  'max', 'min', 'quantile', 'stddev', 'stdvar', 'sum', 'topk'];
export const KEYWORDS = ['and', 'bool', 'by', 'group_left', 'group_right', 'ignoring', 'offset', 'on', 'or',
  'unless', 'without'];
const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

const isIdent = (c) => /[a-zA-Z0-9_:]/.test(c);

// context tells what to complete at cursor in text:
// {kind: 'metric'|'label'|'value'|null, prefix, from, to, metric, label}.
// from..to is the text the chosen item replaces.
export function context(text, cursor) {
  let braces = -1; // index of the unclosed '{' before the cursor
  let quote = -1; // index of the unclosed quote before the cursor
  let quoteChar = '';
  const parens = []; // indices of unclosed '('
  let brackets = 0;
  for (let i = 0; i < cursor; i++) {
    const c = text[i];
    if (quote >= 0) {
      if (c === '\\' && quoteChar !== '`') i++;
      else if (c === quoteChar) quote = -1;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      quote = i;
      quoteChar = c;
    } else if (c === '#') {
      while (i < cursor && text[i] !== '\n') i++;
    } else if (c === '{') braces = i;
    else if (c === '}') braces = -1;
    else if (c === '(') parens.push(i);
    else if (c === ')') parens.pop();
    else if (c === '[') brackets++;
    else if (c === ']') brackets = Math.max(0, brackets - 1);
  }
  if (brackets > 0) return {kind: null};
  let to = cursor;
  if (quote >= 0) {
    if (braces < 0) return {kind: null};
    while (to < text.length && text[to] !== quoteChar && text[to] !== '\n') to++;
    const before = text.slice(braces + 1, quote);
    const m = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*$/.exec(before);
    if (!m) return {kind: null};
    return {kind: 'value', label: m[1], metric: metricBefore(text, braces), prefix: text.slice(quote + 1, cursor), from: quote + 1, to};
  }
  let from = cursor;
  while (from > 0 && isIdent(text[from - 1])) from--;
  while (to < text.length && isIdent(text[to])) to++;
  const prefix = text.slice(from, cursor);
  if (/^\d/.test(prefix)) return {kind: null};
  if (braces >= 0) {
    return {kind: 'label', metric: metricBefore(text, braces), prefix, from, to};
  }
  const open = parens[parens.length - 1];
  if (open !== undefined) {
    const kw = /([a-z_]+)\s*$/.exec(text.slice(0, open));
    if (kw && GROUPING.has(kw[1])) return {kind: 'label', metric: '', prefix, from, to};
  }
  if (prefix === '') return {kind: null, from, to, prefix};
  return {kind: 'metric', prefix, from, to};
}

// metricBefore returns the metric name written just before a '{' at i.
function metricBefore(text, i) {
  let j = i;
  while (j > 0 && /\s/.test(text[j - 1])) j--;
  let k = j;
  while (k > 0 && isIdent(text[k - 1])) k--;
  const name = text.slice(k, j);
  return /^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name) && !KEYWORDS.includes(name) ? name : '';
}

// rank keeps the candidates that start with prefix, then those that
// contain it, at most max of them.
export function rank(items, prefix, max = 50) {
  const p = prefix.toLowerCase();
  const starts = [];
  const contains = [];
  for (const it of items) {
    const l = it.text.toLowerCase();
    if (l === p) continue;
    if (l.startsWith(p)) starts.push(it);
    else if (p && l.includes(p)) contains.push(it);
  }
  return starts.concat(contains).slice(0, max);
}

// Completer fetches and caches candidates for a minute.
export class Completer {
  constructor() {
    this.cache = new Map();
  }

  async cached(key, f) {
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < 60e3) return hit.value;
    const value = f();
    this.cache.set(key, {at: Date.now(), value});
    try {
      return await value;
    } catch (err) {
      this.cache.delete(key);
      throw err;
    }
  }

  // candidates returns [{text, kind}] for a context from context().
  async candidates(ctx) {
    switch (ctx.kind) {
      case 'metric': {
        const names = await this.cached('__name__', () => api.labelValues('__name__'));
        const items = names.map((n) => ({text: n, kind: 'metric'}))
          .concat(AGGREGATIONS.map((n) => ({text: n, kind: 'aggregation'})))
          .concat(FUNCTIONS.map((n) => ({text: n, kind: 'function'})))
          .concat(KEYWORDS.map((n) => ({text: n, kind: 'keyword'})));
        return rank(items, ctx.prefix);
      }
      case 'label': {
        const match = ctx.metric ? [ctx.metric] : undefined;
        const names = await this.cached('labels:' + ctx.metric, () => api.labelNames(match));
        return rank(names.filter((n) => n !== '__name__').map((n) => ({text: n, kind: 'label'})), ctx.prefix);
      }
      case 'value': {
        const match = ctx.metric ? [ctx.metric] : undefined;
        const values = await this.cached(`values:${ctx.label}:${ctx.metric}`, () => api.labelValues(ctx.label, match));
        return rank(values.map((v) => ({text: v, kind: 'value'})), ctx.prefix, 100);
      }
    }
    return [];
  }
}
