// What a change did to its signals (docs/impact.md): a badge with the
// verdict of an event's impact, its signals in a title and a tooltip, and
// an alert's ranked suspects.

import {h, labelChips} from './dom.js';
import {formatTime} from './time.js';
import {colorOf} from './eventset.js';

const LABELS = {degraded: 'degraded', improved: 'improved', no_change: 'no change', no_data: 'no data', unscored: 'not scored'};

// number formats a ratio or a p-value for a person.
function number(v, digits = 2) {
  if (typeof v !== 'number') return '–';
  if (v !== 0 && Math.abs(v) < 0.0001) return v.toExponential(1);
  return String(Number(v.toPrecision(digits)));
}

// signalLine is one signal: "error-ratio High ×4.1 (p=0.0003)".
export function signalLine(si) {
  const change = typeof si.effect === 'number' ? '×' + number(si.effect) :
    (typeof si.before === 'number' && typeof si.after === 'number' ? `${number(si.before, 3)} → ${number(si.after, 3)}` : '');
  const p = typeof si.p_value === 'number' ? ` (p=${number(si.p_value)})` : '';
  return `${si.name}: ${LABELS[si.verdict] || si.verdict}${change ? ' ' + change : ''}${p}`;
}

// verdictOf is the impact verdict of an event, '' before it is scored.
export function verdictOf(e) {
  return (e && e.impact && e.impact.verdict) || '';
}

// impactBadge is the badge of an event's impact, or null before it is
// scored.
export function impactBadge(impact, testid = 'impact-badge') {
  if (!impact) return null;
  const title = [`impact: ${LABELS[impact.verdict] || impact.verdict}` + (impact.provisional ? ' (so far)' : ''),
    ...(impact.signals || []).map(signalLine),
    impact.scored_at ? 'scored ' + formatTime(Date.parse(impact.scored_at)) : ''].filter(Boolean).join('\n');
  return h('span', {class: 'badge impact ' + impact.verdict, title, 'data-testid': testid, 'data-verdict': impact.verdict},
    LABELS[impact.verdict] || impact.verdict);
}

// impactView is an event's impact for a tooltip: the badge and its
// signals, degraded ones first.
export function impactView(impact) {
  if (!impact) return null;
  const order = {degraded: 0, improved: 1, no_change: 2, no_data: 3};
  const sigs = [...(impact.signals || [])].sort((a, b) => (order[a.verdict] ?? 9) - (order[b.verdict] ?? 9));
  return h('div', {class: 'impact-view', 'data-testid': 'impact-view'},
    h('div', null, 'impact ', impactBadge(impact, 'tip-impact-badge'),
      typeof impact.score === 'number' ? h('span', {class: 'muted'}, ` score ${number(impact.score, 3)}`) : null),
    h('ul', {class: 'plain impact-signals'}, sigs.map((si) => h('li', {class: 'impact-signal ' + si.verdict}, signalLine(si)))));
}

// suspectList renders an alert's suspected changes, ranked.
export function suspectList(sus) {
  return h('div', {class: 'suspects'},
    h('h3', null, sus.length ? `Suspected changes (${sus.length})` : 'No suspected change'),
    sus.length ? h('ol', {class: 'suspect-list'}, sus.map((s, i) => h('li', {'data-testid': 'alert-suspect', 'data-verdict': s.verdict, 'data-rank': i + 1},
      h('span', {class: 'dot', style: {background: colorOf(s.name || '')}}),
      h('span', {class: 'badge impact ' + s.verdict, 'data-testid': 'suspect-verdict'}, (LABELS[s.verdict] || s.verdict) + (s.provisional ? ' so far' : '')), ' ',
      h('span', {class: 'suspect-reason'}, s.reason), ' ',
      h('span', {class: 'muted'}, s.timestamp ? formatTime(Date.parse(s.timestamp)) : ''), ' ',
      labelChips(s.labels)))) : null);
}
