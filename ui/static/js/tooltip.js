// A tooltip inside a positioned container: shown on hover, pinned on click
// (so that its links can be clicked), closed with its × or a click elsewhere.

import {h, clear} from './dom.js';

export class Tooltip {
  constructor(container) {
    this.container = container;
    this.pinned = false;
    this.el = h('div', {class: 'tooltip', 'data-testid': 'tooltip', role: 'tooltip', hidden: true});
    this.el.addEventListener('click', (e) => {
      if (e.target.closest('.tip-close')) this.unpin();
    });
    container.append(this.el);
  }

  // show places content near the pointer event e.
  show(content, e) {
    const tip = clear(this.el);
    if (this.pinned) tip.append(h('button', {type: 'button', class: 'tip-close', 'aria-label': 'Close'}, '×'));
    tip.append(content);
    tip.hidden = false;
    const r = this.container.getBoundingClientRect();
    const x = e.clientX - r.left;
    const y = e.clientY - r.top;
    const w = tip.offsetWidth;
    const left = x + 14 + w > r.width ? Math.max(0, x - 14 - w) : x + 14;
    tip.style.left = left + 'px';
    tip.style.top = Math.max(0, y + 12) + 'px';
  }

  pin(content, e) {
    this.pinned = true;
    this.el.classList.add('pinned');
    this.show(content, e);
  }

  unpin() {
    this.pinned = false;
    this.el.classList.remove('pinned');
    this.hide();
  }

  hide() {
    if (!this.pinned) this.el.hidden = true;
  }
}
