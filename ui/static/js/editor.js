// The PromQL editor: a textarea with a completion list. Enter runs the
// query (Shift+Enter adds a line); while the list is open, arrows move,
// Enter or Tab takes the item, Escape closes it. Ctrl+Space opens it.

import {h, clear} from './dom.js';
import {Completer, context} from './complete.js';

export class Editor {
  constructor({value = '', placeholder = '', onRun, testid = 'query-input'}) {
    this.onRun = onRun;
    this.completer = new Completer();
    this.items = [];
    this.sel = 0;
    this.seq = 0;
    this.input = h('textarea', {
      class: 'query-input', rows: 1, spellcheck: 'false', autocomplete: 'off', autocapitalize: 'off',
      placeholder, 'data-testid': testid, 'aria-label': 'PromQL query', 'aria-autocomplete': 'list',
    });
    this.input.value = value;
    this.list = h('ul', {class: 'completions', role: 'listbox', 'data-testid': 'completions', hidden: true});
    this.el = h('div', {class: 'editor'}, this.input, this.list);
    this.input.addEventListener('input', () => {
      this.grow();
      this.suggest(false);
    });
    this.input.addEventListener('keydown', (e) => this.key(e));
    this.input.addEventListener('blur', () => setTimeout(() => this.close(), 150));
    this.list.addEventListener('mousedown', (e) => {
      const li = e.target.closest('li');
      if (!li) return;
      e.preventDefault();
      this.accept(Number(li.dataset.index));
    });
    queueMicrotask(() => this.grow());
  }

  get value() {
    return this.input.value;
  }

  set value(v) {
    this.input.value = v;
    this.grow();
  }

  grow() {
    this.input.style.height = 'auto';
    this.input.style.height = Math.min(240, this.input.scrollHeight + 2) + 'px';
  }

  key(e) {
    const open = !this.list.hidden && this.items.length > 0;
    if (e.key === ' ' && e.ctrlKey) {
      e.preventDefault();
      this.suggest(true);
    } else if (open && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
      e.preventDefault();
      this.select(this.sel + (e.key === 'ArrowDown' ? 1 : -1));
    } else if (open && (e.key === 'Enter' || e.key === 'Tab')) {
      e.preventDefault();
      this.accept(this.sel);
    } else if (open && e.key === 'Escape') {
      e.preventDefault();
      this.close();
    } else if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      this.close();
      this.onRun();
    }
  }

  async suggest(force) {
    const seq = ++this.seq;
    const ctx = context(this.input.value, this.input.selectionStart);
    if (!ctx.kind && !(force && ctx.from !== undefined)) {
      this.close();
      return;
    }
    if (!ctx.kind) ctx.kind = 'metric';
    let items;
    try {
      items = await this.completer.candidates(ctx);
    } catch {
      items = [];
    }
    if (seq !== this.seq) return; // the text changed meanwhile
    this.ctx = ctx;
    this.items = items;
    if (items.length === 0) {
      this.close();
      return;
    }
    clear(this.list);
    items.forEach((it, i) => this.list.append(h('li', {
      role: 'option', 'data-index': i, 'data-testid': 'completion-item', 'data-kind': it.kind,
    }, h('span', {class: 'completion-text'}, it.text), h('span', {class: 'completion-kind'}, it.kind))));
    this.list.hidden = false;
    this.select(0);
  }

  select(i) {
    const n = this.items.length;
    this.sel = (i + n) % n;
    [...this.list.children].forEach((li, j) => li.setAttribute('aria-selected', j === this.sel ? 'true' : 'false'));
    const cur = this.list.children[this.sel];
    if (cur) cur.scrollIntoView({block: 'nearest'});
  }

  accept(i) {
    const it = this.items[i];
    if (!it) return;
    const {from, to} = this.ctx;
    const v = this.input.value;
    let text = it.text;
    if (it.kind === 'function' || it.kind === 'aggregation') text += '(';
    this.input.value = v.slice(0, from) + text + v.slice(to);
    const pos = from + text.length;
    this.input.setSelectionRange(pos, pos);
    this.input.focus();
    this.close();
    this.grow();
  }

  close() {
    this.list.hidden = true;
    this.items = [];
  }
}
