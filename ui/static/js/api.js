// The HTTP API client. The token is kept in sessionStorage (it is gone
// when the tab closes) and sent as a bearer token; the Prometheus API is
// used at the root base URL, where the organization is the token's.

const STORAGE_KEY = 'tidemark.session';

// APIError is an error answer: status, Prometheus's errorType when there is
// one, and the server's message exactly as it was sent.
export class APIError extends Error {
  constructor(status, message, errorType) {
    super(message);
    this.status = status;
    this.errorType = errorType || '';
  }
}

// session returns {token, org, scopes} or null.
export function session() {
  try {
    const s = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || 'null');
    return s && s.token ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(s) {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(s));
}

export function clearSession() {
  sessionStorage.removeItem(STORAGE_KEY);
}

// onUnauthorized is called when the server refuses the session's token.
let unauthorized = () => {};
export function onUnauthorized(f) {
  unauthorized = f;
}

async function request(path, {method = 'GET', params, body, token, signal} = {}) {
  const tok = token || (session() || {}).token;
  let url = path;
  if (params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined || v === null || v === '') continue;
      for (const one of Array.isArray(v) ? v : [v]) q.append(k, String(one));
    }
    const qs = q.toString();
    if (qs) url += '?' + qs;
  }
  const headers = {Accept: 'application/json'};
  if (tok) headers.Authorization = 'Bearer ' + tok;
  let payload;
  if (body instanceof URLSearchParams) {
    payload = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(url, {method, headers, body: payload, signal, cache: 'no-store'});
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new APIError(0, 'the server could not be reached: ' + err.message);
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok || (data && data.status === 'error')) {
    const msg = (data && data.error) || text.trim() || resp.statusText || 'request failed';
    if (resp.status === 401 && !token) unauthorized(msg);
    throw new APIError(resp.status, msg, data && data.errorType);
  }
  if (data === null) throw new APIError(resp.status, 'the answer is not JSON: ' + text.slice(0, 200));
  return data;
}

// signIn checks a token and that it may read org's event log; it returns
// the session to keep.
export async function signIn(token, org) {
  const t = await request('/api/v4/oauth/access_token', {method: 'POST', body: {refresh_token: token}, token});
  await request(`/api/v4/organizations/${encodeURIComponent(org)}/change_events`, {params: {limit: 1}, token});
  return {token, org, scopes: t.scopes || []};
}

// Prometheus API. Each returns the "data" of the answer.
export async function queryRange(query, start, end, step, signal) {
  const body = new URLSearchParams({query, start: start / 1000, end: end / 1000, step: step / 1000});
  return (await request('/api/v1/query_range', {method: 'POST', body, signal})).data;
}

export async function query(q, time, signal) {
  const body = new URLSearchParams({query: q, time: time / 1000});
  return (await request('/api/v1/query', {method: 'POST', body, signal})).data;
}

export async function labelNames(match, signal) {
  return (await request('/api/v1/labels', {params: {'match[]': match}, signal})).data || [];
}

export async function labelValues(name, match, signal) {
  return (await request(`/api/v1/label/${encodeURIComponent(name)}/values`, {params: {'match[]': match}, signal})).data || [];
}

export async function alerts(signal) {
  return (await request('/api/v1/alerts', {signal})).data.alerts || [];
}

// listEvents returns one page of the organization's event log, newest
// first: {events, next_cursor}.
export async function listEvents({start, end, name, match, limit = 1000, cursor}, signal) {
  const org = (session() || {}).org;
  return request(`/api/v4/organizations/${encodeURIComponent(org)}/change_events`, {
    params: {
      start: start !== undefined ? Math.floor(start) : undefined,
      end: end !== undefined ? Math.ceil(end) : undefined,
      event_name: name, 'match[]': match, limit, cursor,
    },
    signal,
  });
}

// allEvents follows cursors until the log is exhausted or maxPages pages
// were read; truncated tells whether events were left.
export async function allEvents(q, maxPages, signal) {
  const out = [];
  let cursor;
  for (let i = 0; i < maxPages; i++) {
    const page = await listEvents({...q, cursor}, signal);
    out.push(...page.events);
    cursor = page.next_cursor;
    if (!cursor) return {events: out, truncated: false};
  }
  return {events: out, truncated: true};
}
