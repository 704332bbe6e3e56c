// Small DOM helpers. Text always goes in as text nodes, never as HTML:
// labels, metadata and messages come from users and must not run as markup.

export const SVG_NS = 'http://www.w3.org/2000/svg';

// h builds an HTML element: h('a', {href: '#', class: 'x', onclick: f}, 'text', child).
// Attributes with null, undefined or false values are left out.
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// s builds an SVG element the same way.
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k === 'style' && typeof v === 'object') {
      // CSSOM, not a style attribute: the Content-Security-Policy allows it.
      Object.assign(el.style, v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// clear removes every child of el.
export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// fill replaces the children of el; like h, it skips null, undefined and
// false, and flattens arrays.
export function fill(el, ...children) {
  append(clear(el), children);
  return el;
}

// safeHref returns href when it is an http(s) URL or a path on this server,
// and null otherwise (a javascript: or data: link from an event is not followed).
export function safeHref(href) {
  if (typeof href !== 'string' || href === '') return null;
  try {
    const u = new URL(href, location.href);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

// linkList renders an event's links ([{href, text}]) as anchors that open
// in a new tab; links that are not http(s) are shown as text.
export function linkList(links, testid) {
  if (!Array.isArray(links) || links.length === 0) return null;
  return h('ul', {class: 'links'}, links.map((l) => {
    const href = safeHref(l && l.href);
    const text = (l && (l.text || l.href)) || '';
    return h('li', null, href
      ? h('a', {href, target: '_blank', rel: 'noopener noreferrer', 'data-testid': testid || 'event-link'}, text)
      : h('span', {class: 'muted'}, text));
  }));
}

// labelChips renders labels as name="value" chips, sorted by name.
export function labelChips(labels, skip) {
  const keys = Object.keys(labels || {}).filter((k) => !(skip && skip.includes(k))).sort();
  if (keys.length === 0) return null;
  return h('span', {class: 'chips'}, keys.map((k) => h('span', {class: 'chip'}, h('b', null, k), '=', labels[k])));
}

// metadataView renders an event's metadata object as a definition list.
export function metadataView(meta) {
  if (!meta || typeof meta !== 'object' || Object.keys(meta).length === 0) return null;
  return h('dl', {class: 'meta'}, Object.keys(meta).sort().map((k) => [
    h('dt', null, k),
    h('dd', null, typeof meta[k] === 'string' ? meta[k] : JSON.stringify(meta[k])),
  ]));
}

// debounce calls f once calls have stopped for ms milliseconds.
export function debounce(f, ms) {
  let t = 0;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => f(...args), ms);
  };
}

// nextPaint resolves after the browser has painted the current DOM.
export function nextPaint() {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

// plural renders "1 event", "2 events".
export function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
