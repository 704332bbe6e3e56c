// Shared controls: the time range (from, to, quick ranges) and the step.

import {h} from './dom.js';
import {autoStep, formatDuration, MAX_POINTS, parseDuration, parseTime} from './time.js';

const QUICK = ['5m', '15m', '1h', '3h', '6h', '12h', '24h', '2d', '7d'];

// RangeControls edits from/to (text as typed: "now-1h", RFC 3339...) and,
// with withStep, the step. run is called when a quick range is chosen.
export class RangeControls {
  constructor({from = 'now-1h', to = 'now', step = '', withStep = false, run}) {
    this.from = h('input', {type: 'text', class: 'time-input', value: from, 'data-testid': 'range-from', 'aria-label': 'From', spellcheck: 'false'});
    this.to = h('input', {type: 'text', class: 'time-input', value: to, 'data-testid': 'range-to', 'aria-label': 'To', spellcheck: 'false'});
    this.step = withStep
      ? h('input', {type: 'text', class: 'step-input', value: step, placeholder: 'auto', 'data-testid': 'range-step', 'aria-label': 'Step', spellcheck: 'false'})
      : null;
    const onEnter = (e) => {
      if (e.key === 'Enter') run();
    };
    for (const i of [this.from, this.to, this.step]) if (i) i.addEventListener('keydown', onEnter);
    const quick = h('div', {class: 'quick', role: 'group', 'aria-label': 'Quick ranges'}, QUICK.map((q) =>
      h('button', {type: 'button', class: 'chip-button', 'data-testid': 'quick-' + q, onclick: () => {
        this.from.value = 'now-' + q;
        this.to.value = 'now';
        run();
      }}, q)));
    this.el = h('div', {class: 'range'},
      h('label', null, 'From ', this.from),
      h('label', null, 'To ', this.to),
      this.step ? h('label', null, 'Step ', this.step) : null,
      quick);
  }

  // resolve returns {start, end, step} in milliseconds, or throws an Error
  // that names the field and what is accepted.
  resolve(now = Date.now()) {
    const start = parseTime(this.from.value, now);
    const end = parseTime(this.to.value, now);
    if (Number.isNaN(start)) throw new Error(`From "${this.from.value}" is not a time; use now, now-1h, 2026-11-25 10:00 or RFC 3339`);
    if (Number.isNaN(end)) throw new Error(`To "${this.to.value}" is not a time; use now, now-1h, 2026-11-25 10:00 or RFC 3339`);
    if (end <= start) throw new Error('To must be after From');
    let step = autoStep(end - start);
    if (this.step) {
      const v = this.step.value.trim();
      if (v !== '') {
        step = parseDuration(v);
        if (!(step > 0)) throw new Error(`Step "${v}" is not a duration; use 15s, 1m, 1h`);
      }
      this.step.placeholder = 'auto (' + formatDuration(autoStep(end - start)) + ')';
      if ((end - start) / step > MAX_POINTS) {
        throw new Error(`Step ${formatDuration(step)} gives more than ${MAX_POINTS} points per series over this range; use a larger step`);
      }
    }
    return {start, end, step};
  }

  params() {
    const p = {from: this.from.value, to: this.to.value};
    if (this.step && this.step.value) p.step = this.step.value;
    return p;
  }
}
