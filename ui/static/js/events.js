// Events: the event log as a timeline and a list, filtered by name, labels
// and time; durations, open events marked, links clickable.

import * as api from './api.js';
import {h, fill, labelChips, linkList, metadataView, debounce, plural} from './dom.js';
import {RangeControls} from './controls.js';
import {Timeline} from './timeline.js';
import {shapes, colorOf} from './eventset.js';
import {formatTime, humanDuration} from './time.js';
import {replaceParams} from './router.js';
import {impactBadge} from './impact.js';

const PAGE = 200;

export function mount(root, params) {
  let ctrl = null;
  let loaded = [];
  let cursor = '';
  let r = null;
  const run = () => load(false);
  const name = h('input', {type: 'text', value: params.get('name') || '', placeholder: 'event name', 'data-testid': 'events-name', 'aria-label': 'Event name', spellcheck: 'false'});
  const match = h('input', {type: 'text', class: 'event-filter', value: params.get('match') || '', placeholder: '{service="checkout", env=~"prod|staging"}', 'data-testid': 'events-match', 'aria-label': 'Label selector', spellcheck: 'false'});
  for (const i of [name, match]) i.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') run();
  });
  const range = new RangeControls({from: params.get('from') || 'now-24h', to: params.get('to') || 'now', run});
  const error = h('div', {class: 'query-error', role: 'alert', 'data-testid': 'events-error', hidden: true});
  const summary = h('div', {class: 'stats', 'data-testid': 'events-summary'});
  const tlEl = h('div', {'data-testid': 'events-timeline'});
  const list = h('div', {class: 'event-list', 'data-testid': 'events-list'});
  const more = h('button', {type: 'button', class: 'secondary', 'data-testid': 'events-more', hidden: true, onclick: () => load(true)}, 'Load more');

  root.append(h('section', {class: 'view events'},
    h('form', {class: 'controls', onsubmit: (e) => {
      e.preventDefault();
      run();
    }}, h('label', null, 'Name ', name), h('label', {class: 'grow'}, 'Labels ', match), range.el,
    h('button', {type: 'submit', class: 'primary', 'data-testid': 'events-run'}, 'Show')),
    error,
    h('div', {class: 'panel'}, summary, tlEl),
    h('div', {class: 'panel'}, list, more)));
  const timeline = new Timeline(tlEl);
  const redraw = debounce(() => draw(), 150);
  window.addEventListener('resize', redraw);

  async function load(append) {
    error.hidden = true;
    if (!append) {
      replaceParams('events', {name: name.value.trim(), match: match.value.trim(), ...range.params()});
      try {
        r = range.resolve();
      } catch (err) {
        showError(err.message);
        return;
      }
      loaded = [];
      cursor = '';
    }
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    tlEl.dataset.state = 'loading';
    try {
      const page = await api.listEvents({
        start: r.start, end: r.end, name: name.value.trim() || undefined,
        match: match.value.trim() ? [match.value.trim()] : undefined, limit: PAGE, cursor: cursor || undefined,
      }, ctrl.signal);
      loaded = loaded.concat(page.events);
      cursor = page.next_cursor || '';
    } catch (err) {
      if (err.name === 'AbortError') return;
      showError(err.message);
      tlEl.dataset.state = 'error';
      return;
    }
    draw();
    tlEl.dataset.state = 'done';
  }

  function draw() {
    if (!r) return;
    const sh = shapes(loaded, r.start, r.end, Date.now());
    timeline.render({...sh, start: r.start, end: r.end});
    const open = loaded.filter((e) => e.open).length;
    fill(summary, plural(loaded.length, 'event'), cursor ? ' (more to load)' : '',
      ` · ${plural(sh.regions.length, 'window')} · ${plural(sh.markers.length, 'point event')} · ${open} open`);
    tlEl.dataset.eventCount = loaded.length;
    tlEl.dataset.openCount = open;
    tlEl.dataset.degradedCount = loaded.filter((e) => e.impact && e.impact.verdict === 'degraded').length;
    fill(list, loaded.length === 0
      ? h('p', {class: 'muted', 'data-testid': 'events-empty'}, 'No change events match in this range.')
      : h('table', {class: 'data events-table'},
        h('thead', null, h('tr', null, h('th', null, 'Time'), h('th', null, 'Event'), h('th', null, 'State'),
          h('th', null, 'Duration'), h('th', null, 'Labels'), h('th', null, 'Links and metadata'))),
        h('tbody', null, loaded.map(row))));
    more.hidden = !cursor;
  }

  function row(e) {
    const dur = e.open ? (Date.now() - Date.parse(e.timestamp)) / 1000 : e.duration_seconds;
    return h('tr', {'data-testid': 'event-row', 'data-event-id': e.id},
      h('td', {class: 'nowrap'}, formatTime(Date.parse(e.timestamp))),
      h('td', {class: 'nowrap'}, h('span', {class: 'dot', style: {background: colorOf(e.event_name)}}),
        h('button', {type: 'button', class: 'link-button', title: 'Show only this event', onclick: () => {
          name.value = e.event_name;
          run();
        }}, e.event_name), e.impact ? [' ', impactBadge(e.impact)] : null),
      h('td', null, h('span', {class: 'badge ' + e.event_state}, e.event_state),
        e.open ? [' ', h('span', {class: 'badge open', 'data-testid': 'event-open'}, 'open')] : null,
        e.event_state === 'stop' && !e.pair_id ? [' ', h('span', {class: 'badge muted', title: 'No start had the same name and labels'}, 'unpaired')] : null),
      h('td', {class: 'nowrap'}, typeof dur === 'number' ? humanDuration(dur) + (e.open ? ' so far' : '') : ''),
      h('td', null, labelChips(e.labels)),
      h('td', null, linkList(e.links, 'event-link'),
        e.metadata && Object.keys(e.metadata).length ? h('details', null, h('summary', null, 'metadata'), metadataView(e.metadata)) : null));
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
