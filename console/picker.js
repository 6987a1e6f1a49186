// A list that opens under a reply box while a trigger is being typed (`/` for canned replies, `@`
// for mentions): ↑ ↓ choose, Enter or Tab picks, Esc closes, a click on an option picks it. The
// pickers say what opens the list, what it lists and what picking does; this is the DOM and keys.

import { t, typed, tNodes } from './i18n.js';

/** Options shown at once. */
const SHOWN = 8;

export class Picker {
  /**
   * `textarea`, `box` (shown while open) and `list` (the options) are the DOM; `enabled()`, when
   * given, whether the box takes this picker now. A picker defines:
   * - `find(text, caret)`: `{start, query}` of the trigger being typed, or null;
   * - `candidates(query)`: the options for the query, best first (null: close the list);
   * - `option(item)`: the nodes of one option;
   * - `none`: `{items(), noMatch, empty}`: the options there are, and the i18n keys when none match
   *   or none exist;
   * - `pick(item, found)`: puts the item in the box.
   */
  constructor({ textarea, box, list, enabled, idPrefix }) {
    this.textarea = textarea;
    this.box = box;
    this.list = list;
    this.enabled = enabled || (() => true);
    this.idPrefix = idPrefix;
    this.shown = [];
    this.current = 0;
    this.found = null;
    textarea.addEventListener('input', () => this.update());
    textarea.addEventListener('click', () => this.update());
    // Focus leaving the box closes the list a moment later (a click on an option lands first),
    // unless it came back meanwhile (the mode toggle hands it back at once).
    textarea.addEventListener('blur', () => setTimeout(() => document.activeElement !== textarea && this.close(), 150));
    list.addEventListener('mousedown', (e) => e.preventDefault());
  }

  get open() {
    return !this.box.hidden;
  }

  /** Opens, filters or closes the list after the text or the caret moved. */
  update() {
    const ta = this.textarea;
    this.found = ta.selectionStart === ta.selectionEnd ? this.find(ta.value, ta.selectionStart) : null;
    const candidates = this.found && !ta.disabled && this.enabled() ? this.candidates(this.found.query) : null;
    if (!candidates) {
      this.close();
      return;
    }
    const previous = this.shown[this.current];
    this.shown = candidates.slice(0, SHOWN);
    this.current = Math.max(0, this.shown.indexOf(previous));
    this.render();
    this.box.hidden = false;
  }

  render() {
    const items = this.shown.map((item, i) => {
      const li = document.createElement('li');
      li.id = `${this.idPrefix}-option-${i}`;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', String(i === this.current));
      li.append(...this.option(item));
      li.addEventListener('click', () => this.choose(item));
      return li;
    });
    if (!items.length) {
      const li = document.createElement('li');
      li.className = 'none';
      li.setAttribute('role', 'option');
      li.setAttribute('aria-disabled', 'true');
      const { items: all, noMatch, empty } = this.none;
      li.append(...(all().length ? tNodes(noMatch, { query: typed(this.found.query) }) : [t(empty)]));
      items.push(li);
    }
    this.list.replaceChildren(...items);
    const current = this.list.children[this.current];
    if (current && current.scrollIntoView) current.scrollIntoView({ block: 'nearest' });
  }

  /** Keys while the list is open; true when the key was the picker's. */
  key(e) {
    if (!this.open) return false;
    if (e.key === 'Escape') {
      this.close();
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      if (!this.shown.length) return true;
      const step = e.key === 'ArrowDown' ? 1 : -1;
      this.current = (this.current + step + this.shown.length) % this.shown.length;
      this.render();
    } else if ((e.key === 'Enter' || e.key === 'Tab') && !e.shiftKey && !e.isComposing) {
      if (!this.shown.length) {
        if (e.key === 'Tab') return false;
        this.close();
      } else {
        this.choose(this.shown[this.current]);
      }
    } else {
      return false;
    }
    e.preventDefault();
    return true;
  }

  /** Picks `item`: the picker edits the box, then the caret is put after it and the list closes. */
  choose(item) {
    const ta = this.textarea;
    if (!this.found) return;
    const caret = this.pick(item, this.found);
    ta.setSelectionRange(caret, caret);
    this.close();
    ta.focus();
    this.picked(item);
  }

  close() {
    this.box.hidden = true;
    this.found = null;
  }
}
