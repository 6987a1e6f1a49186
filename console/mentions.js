// @mentions in a private note: typing `@` at the start of the note or after white space opens a list
// of the other enabled agents (`agent.list`), filtered by what follows the `@` however Persian was
// typed; ↑ ↓ choose, Enter or Tab puts `@Name` in place of `@filter` and names the agent in the
// note's `mentions`, Esc closes. An agent whose `@Name` is taken out of the text again is not named.
//
// The functions are pure (tests/e2e/notes.test.mjs); the picker (picker.js) owns the DOM.

import { compare, fold } from './i18n.js';
import { Picker } from './picker.js';
import { MAX_MENTIONS } from './notes.js';

/** The longest filter after `@` (an agent's name is at most 64 characters). */
const MAX_QUERY = 64;
/** What may not follow a name for `@Name` to be that name (and not the start of a longer word). */
const WORD = /[\p{L}\p{M}\p{N}_\u200c\u200d]/u;

/**
 * The `@filter` being typed at `caret`: `{start, query}` where `start` is the `@`'s index, or null.
 * The `@` must begin the text or follow white space, and the filter holds no line break and does
 * not start with white space (names have spaces inside, so the filter may).
 */
export function mentionQuery(text, caret) {
  const before = text.slice(0, caret);
  const at = before.lastIndexOf('@');
  if (at < 0) return null;
  if (at > 0 && !/\s/.test(before[at - 1])) return null;
  const query = before.slice(at + 1);
  if (query.length > MAX_QUERY || /[\n\r]/.test(query) || /^\s/.test(query)) return null;
  return { start: at, query };
}

/** The agents whose name holds `query` (however Persian was typed), except `exceptId` (the
 *  writer): names that start with it first, then names with a word that does, then the rest;
 *  alphabetical within each. A query of one word is found anywhere in a name; a query with a space
 *  only at its start, so that the words written after a finished `@Name` do not open the list
 *  again. */
export function filterAgents(agents, query, exceptId) {
  const folded = fold(query);
  const words = folded.split(/\s+/).filter(Boolean);
  const spaced = /\s/.test(folded);
  const scored = [];
  for (const a of agents) {
    if (a.id === exceptId) continue;
    const name = fold(a.name);
    if (spaced ? !name.startsWith(folded) : !words.every((w) => name.includes(w))) continue;
    const parts = name.split(/\s+/);
    const rank = !words.length || name.startsWith(words[0]) ? 0 : parts.some((p) => p.startsWith(words[0])) ? 1 : 2;
    scored.push([rank, a]);
  }
  return scored.sort((x, y) => x[0] - y[0] || compare(x[1].name, y[1].name)).map(([, a]) => a);
}

/** The text with `@Name ` in place of the `@filter` at `found` (from `mentionQuery`), and where the
 *  caret goes: after the name and one space (a space already there is reused). */
export function insertMention(text, found, name) {
  const end = found.start + 1 + found.query.length;
  const rest = text.slice(end);
  const space = /^\s/.test(rest) ? '' : ' ';
  const inserted = `@${name}${space}`;
  const caret = found.start + inserted.length + (space ? 0 : 1);
  return { text: text.slice(0, found.start) + inserted + rest, caret };
}

/** Where `@name` stands in `text` as a whole name: the index of each `@`. */
function occurrences(text, name) {
  const out = [];
  const needle = `@${name}`;
  let from = 0;
  for (;;) {
    const i = text.indexOf(needle, from);
    if (i < 0) return out;
    const next = text.slice(i + needle.length).match(/^./su);
    if (!next || !WORD.test(next[0])) out.push(i);
    from = i + 1;
  }
}

/**
 * The agents a note names: of those chosen in the picker (`chosen`: `[{id, name}]`), each whose
 * `@Name` is still in the text, in the order they first appear, at most `MAX_MENTIONS`.
 */
export function mentionedIds(text, chosen) {
  const found = [];
  for (const a of chosen) {
    const at = occurrences(text, a.name);
    if (at.length && !found.some((f) => f.id === a.id)) found.push({ id: a.id, at: at[0] });
  }
  return found
    .sort((x, y) => x.at - y.at)
    .map((f) => f.id)
    .slice(0, MAX_MENTIONS);
}

/**
 * A note's text in pieces for the screen: `{text}` as written, and `{text, id}` for each `@Name`
 * of an agent it names (`names`: agent id -> current name), so that the console can mark them.
 * Longer names are matched first, so `@Ali Reza` is not cut at `@Ali`.
 */
export function splitMentions(body, names) {
  const marks = [];
  const byLength = [...names.entries()].filter(([, n]) => n).sort((a, b) => b[1].length - a[1].length);
  for (const [id, name] of byLength) {
    for (const i of occurrences(body, name)) {
      const end = i + name.length + 1;
      if (!marks.some((m) => i < m.end && m.start < end)) marks.push({ start: i, end, id });
    }
  }
  marks.sort((a, b) => a.start - b.start);
  const out = [];
  let pos = 0;
  for (const m of marks) {
    if (m.start > pos) out.push({ text: body.slice(pos, m.start) });
    out.push({ text: body.slice(m.start, m.end), id: m.id });
    pos = m.end;
  }
  if (pos < body.length) out.push({ text: body.slice(pos) });
  return out;
}

/** The picker under the reply box in note mode. `agents()` gives the agents who may be named;
 *  `enabled()` whether the box holds a note; `onChoose(agent)` runs after `@Name` was put in. */
export class MentionPicker extends Picker {
  constructor({ textarea, box, list, agents, enabled, onChoose }) {
    super({ textarea, box, list, enabled, idPrefix: 'mention' });
    this.agents = agents;
    this.onChoose = onChoose;
    this.none = { items: agents, noMatch: 'mention.no_match', empty: 'mention.none' };
  }

  find(text, caret) {
    return mentionQuery(text, caret);
  }

  candidates(query) {
    const shown = filterAgents(this.agents(), query, null);
    // A space after a name nobody has: the agent writes on, it was no mention.
    return !shown.length && /\s/.test(query) ? null : shown;
  }

  option(agent) {
    const name = document.createElement('bdi');
    name.className = 'title';
    name.textContent = agent.name;
    return [name];
  }

  /** Puts `@Name` where `@filter` is; the caret goes after it. */
  pick(agent, found) {
    const { text, caret } = insertMention(this.textarea.value, found, agent.name);
    this.textarea.value = text;
    return caret;
  }

  picked(agent) {
    this.onChoose(agent);
  }
}
