// Views are addressed by the URL fragment: #/NAME?param=value&...

// current returns {view, params} of the location's fragment.
export function current() {
  const frag = location.hash.replace(/^#\/?/, '');
  const [view, qs] = frag.split('?', 2);
  return {view: view || 'explore', params: new URLSearchParams(qs || '')};
}

// replaceParams records a view's state in the URL without reloading it,
// so that the address can be shared and survives a reload.
export function replaceParams(view, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    for (const one of Array.isArray(v) ? v : [v]) q.append(k, one);
  }
  const qs = q.toString();
  history.replaceState(null, '', '#/' + view + (qs ? '?' + qs : ''));
}
