// Canned replies in the reply box: typing `/` at the start of a line or after a space opens a list
// of the agent's canned replies, filtered by what follows the slash; ↑ ↓ choose, Enter or Tab
// inserts the reply's text in place of `/filter`, Esc closes. The replies themselves are the hub's
// (`canned.list`, `canned.add`, `canned.delete`); inserting one only edits the reply box, which the
// agent then sends as any message.
//
// The first two functions are pure (tests/e2e/canned.test.mjs); the picker owns the DOM.

import { fold, t, typed, tNodes } from './i18n.js';

/** The longest filter after a slash: beyond it the slash is just a slash. */
const MAX_QUERY = 40;
/** Replies shown at once. */
const SHOWN = 8;

/**
 * The `/filter` being typed at `caret`: `{start, query}` where `start` is the slash's index, or null.
 * The slash must begin the text or follow white space, and the filter holds no line break.
 */
export function slashQuery(text, caret) {
  const before = text.slice(0, caret);
  const slash = before.lastIndexOf('/');
  if (slash < 0) return null;
  if (slash > 0 && !/\s/.test(before[slash - 1])) return null;
  const query = before.slice(slash + 1);
  if (query.length > MAX_QUERY || /[\n\r]/.test(query) || /^\s/.test(query)) return null;
  return { start: slash, query };
}

/** The replies whose title or text contains every word of `query` (however Persian was typed),
 *  titles that start with it first. */
export function filterReplies(replies, query) {
  const words = fold(query).split(/\s+/).filter(Boolean);
  const scored = [];
  for (const r of replies) {
    const title = fold(r.title);
    const all = `${title} ${fold(r.body)}`;
    if (!words.every((w) => all.includes(w))) continue;
    const rank = words.length && title.startsWith(words[0]) ? 0 : words.every((w) => title.includes(w)) ? 1 : 2;
    scored.push([rank, r]);
  }
  return scored.sort((a, b) => a[0] - b[0]).map(([, r]) => r);
}

/** The picker under one reply box. `replies()` gives the current list; `enabled()`, when given,
 *  whether the box takes canned replies now (not while it holds a private note); `onInsert()` runs
 *  after a reply was put in the box. */
export class CannedPicker {
  constructor({ textarea, box, list, replies, enabled, onInsert }) {
    this.textarea = textarea;
    this.box = box;
    this.list = list;
    this.replies = replies;
    this.enabled = enabled || (() => true);
    this.onInsert = onInsert;
    this.shown = [];
    this.active = 0;
    this.slash = null;
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
    this.slash = ta.selectionStart === ta.selectionEnd ? slashQuery(ta.value, ta.selectionStart) : null;
    if (!this.slash || ta.disabled || !this.enabled()) {
      this.close();
      return;
    }
    const previous = this.shown[this.active];
    this.shown = filterReplies(this.replies(), this.slash.query).slice(0, SHOWN);
    this.active = Math.max(0, this.shown.indexOf(previous));
    this.render();
    this.box.hidden = false;
  }

  render() {
    const items = this.shown.map((r, i) => {
      const li = document.createElement('li');
      li.id = `canned-option-${i}`;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', String(i === this.active));
      const title = document.createElement('bdi');
      title.className = 'title';
      title.textContent = r.title;
      const preview = document.createElement('span');
      preview.className = 'preview';
      preview.dir = 'auto';
      preview.textContent = r.body;
      li.append(title, preview);
      li.addEventListener('click', () => this.insert(r));
      return li;
    });
    if (!items.length) {
      const li = document.createElement('li');
      li.className = 'none';
      li.setAttribute('role', 'option');
      li.setAttribute('aria-disabled', 'true');
      li.append(...(this.replies().length ? tNodes('canned.no_match', { query: typed(this.slash.query) }) : [t('canned.none')]));
      items.push(li);
    }
    this.list.replaceChildren(...items);
    const current = this.list.children[this.active];
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
      this.active = (this.active + step + this.shown.length) % this.shown.length;
      this.render();
    } else if ((e.key === 'Enter' || e.key === 'Tab') && !e.shiftKey && !e.isComposing) {
      if (!this.shown.length) {
        if (e.key === 'Tab') return false;
        this.close();
      } else {
        this.insert(this.shown[this.active]);
      }
    } else {
      return false;
    }
    e.preventDefault();
    return true;
  }

  /** Puts the reply's text where `/filter` is, caret after it. */
  insert(reply) {
    const ta = this.textarea;
    const slash = this.slash;
    if (!slash) return;
    const end = slash.start + 1 + slash.query.length;
    ta.value = ta.value.slice(0, slash.start) + reply.body + ta.value.slice(end);
    const caret = slash.start + reply.body.length;
    ta.setSelectionRange(caret, caret);
    this.close();
    ta.focus();
    this.onInsert();
  }

  close() {
    this.box.hidden = true;
    this.slash = null;
  }
}
