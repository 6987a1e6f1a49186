// Canned replies in the reply box: typing `/` at the start of a line or after a space opens a list
// of the agent's canned replies, filtered by what follows the slash; ↑ ↓ choose, Enter or Tab
// inserts the reply's text in place of `/filter`, Esc closes. The replies themselves are the hub's
// (`canned.list`, `canned.add`, `canned.delete`); inserting one only edits the reply box, which the
// agent then sends as any message.
//
// The first two functions are pure (tests/e2e/canned.test.mjs); the picker (picker.js) owns the DOM.

import { fold } from './i18n.js';
import { Picker } from './picker.js';

/** The longest filter after a slash: beyond it the slash is just a slash. */
const MAX_QUERY = 40;

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
export class CannedPicker extends Picker {
  constructor({ textarea, box, list, replies, enabled, onInsert }) {
    super({ textarea, box, list, enabled, idPrefix: 'canned' });
    this.replies = replies;
    this.onInsert = onInsert;
    this.none = { items: replies, noMatch: 'canned.no_match', empty: 'canned.none' };
  }

  find(text, caret) {
    return slashQuery(text, caret);
  }

  candidates(query) {
    return filterReplies(this.replies(), query);
  }

  option(reply) {
    const title = document.createElement('bdi');
    title.className = 'title';
    title.textContent = reply.title;
    const preview = document.createElement('span');
    preview.className = 'preview';
    preview.dir = 'auto';
    preview.textContent = reply.body;
    return [title, preview];
  }

  /** Puts the reply's text where `/filter` is; the caret goes after it. */
  pick(reply, slash) {
    const ta = this.textarea;
    const end = slash.start + 1 + slash.query.length;
    ta.value = ta.value.slice(0, slash.start) + reply.body + ta.value.slice(end);
    return slash.start + reply.body.length;
  }

  picked() {
    this.onInsert();
  }
}
