// Agents' private notes on one ticket as the console keeps them (protocol/PROTOCOL.md, "Private
// notes"): the notes by id, whether older ones remain, and the notes this agent is adding. No DOM
// here: the rules that keep a note from being shown twice or lost, and the merge of notes into the
// ticket's conversation, live in this file alone (tests/e2e/notes.test.mjs).
//
// Notes are shown in the conversation, between the messages, by time. They are not ticket events:
// they have no seq and are read a page at a time of their own (`note.list`, by id), so the
// conversation on screen starts where both streams are loaded (see `timeline`). A separate strip
// would need no such care, but it would tear a note from the messages it is about.

import { newClientMsgId } from './hub-client.js';

/** The most agents one note names (the hub refuses more). */
export const MAX_MENTIONS = 10;

/** Notes in time order: by `at`, then by id (time-ordered UUIDv7). */
export function compareNotes(a, b) {
  return a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export class NoteList {
  constructor(ticketId) {
    this.ticketId = ticketId;
    /** note id -> note */
    this.notes = new Map();
    /** Whether notes older than the oldest held one exist. */
    this.more = false;
    /** True once a page of `note.list` was taken. */
    this.loaded = false;
    /** The socket dropped since the last page: notes may have been missed; read the newest page
     *  again before trusting the list. */
    this.stale = false;
    /** client_msg_id -> {body, mentions, author, state: 'pending' | 'failed', errorCode?, inFlight} */
    this.outbox = new Map();
  }

  /**
   * Keeps one note (from `ticket.note`, `note.add.ok` or a page). Returns true when it is new: a
   * note already held, by id, is a copy. The stored copy of a note this console is adding takes the
   * place of the pending one.
   */
  add(note) {
    if (!note || typeof note.id !== 'string' || note.ticket_id !== this.ticketId) return false;
    const mine = this.outbox.get(note.client_msg_id);
    if (mine && (mine.author === undefined || mine.author === note.agent_id)) this.outbox.delete(note.client_msg_id);
    if (this.notes.has(note.id)) return false;
    this.notes.set(note.id, note);
    return true;
  }

  /** Keeps an older page (`note.list.ok` read with `before_id`), oldest first. */
  older(notes, more) {
    for (const n of notes) this.add(n);
    this.more = more;
    this.loaded = true;
  }

  /**
   * Keeps the newest page (`note.list.ok` without `before_id`): on opening the ticket, and again
   * after a reconnect. Notes held that are newer than the page arrived live and stay. When the page
   * shares no note with what is held and older notes remain, notes may be missing between the two:
   * the held ones older than the page are let go and read again on demand.
   */
  newest(notes, more) {
    const page = [...notes].sort(compareNotes);
    const first = page[0];
    const overlaps = page.some((n) => this.notes.has(n.id));
    if (more && !overlaps && first) {
      for (const [id, n] of this.notes) if (compareNotes(n, first) < 0) this.notes.delete(id);
      this.more = true;
    } else if (!this.loaded || !more) {
      // The first page says whether older notes exist; a page with none older holds them all.
      this.more = more;
    }
    for (const n of page) this.add(n);
    this.loaded = true;
    this.stale = false;
  }

  /** Notes in time order. */
  ordered() {
    return [...this.notes.values()].sort(compareNotes);
  }

  /** The id to read older notes before (`before_id`), or null. */
  oldestId() {
    const all = this.ordered();
    return all.length ? all[0].id : null;
  }

  /** Forgets the notes read (the hub's copy is behind ours); the notes being added stay. */
  reset() {
    this.notes.clear();
    this.more = false;
    this.loaded = false;
    this.stale = false;
  }

  /** Adds a note to send, naming the agents in `mentions`; returns its client_msg_id. */
  queue(body, mentions, author) {
    const id = newClientMsgId();
    this.outbox.set(id, { body, mentions: [...new Set(mentions)].slice(0, MAX_MENTIONS), author, state: 'pending', inFlight: false });
    return id;
  }

  /** Outbox items still to (re)send, oldest first. */
  unsent() {
    return [...this.outbox.entries()].filter(([, m]) => m.state === 'pending' && !m.inFlight);
  }

  /** The `note.add` request of an outbox item: the same `client_msg_id` every time it is sent, so
   *  that the hub stores it once. */
  sendFrame(clientMsgId) {
    const m = this.outbox.get(clientMsgId);
    if (!m) return null;
    const frame = { type: 'note.add', ticket_id: this.ticketId, client_msg_id: clientMsgId, body: m.body };
    if (m.mentions.length) frame.mentions = [...m.mentions];
    return frame;
  }

  /** What survives a reload of the tab: the notes still to send, as plain data. */
  stored() {
    return [...this.outbox.entries()]
      .filter(([, m]) => m.state === 'pending')
      .map(([id, m]) => ({ id, body: m.body, mentions: m.mentions, author: m.author }));
  }

  /** Puts back what `stored` kept, to be sent again with the same ids. */
  restore(items) {
    for (const m of items || []) {
      if (!m || typeof m.id !== 'string' || typeof m.body !== 'string') continue;
      const mentions = Array.isArray(m.mentions) ? m.mentions.filter((x) => typeof x === 'string').slice(0, MAX_MENTIONS) : [];
      this.outbox.set(m.id, { body: m.body, mentions, author: m.author, state: 'pending', inFlight: false });
    }
  }

  /** Takes a failed note out of the outbox for the agent to edit: its text and the agents named. */
  takeBack(clientMsgId) {
    const m = this.outbox.get(clientMsgId);
    if (!m || m.state !== 'failed') return null;
    this.outbox.delete(clientMsgId);
    return { body: m.body, mentions: m.mentions };
  }
}

/** Whether a note is addressed to agent `agentId` by someone else. */
export function mentionsMe(note, agentId) {
  return !!agentId && note.agent_id !== agentId && Array.isArray(note.mentions) && note.mentions.includes(agentId);
}

/**
 * The conversation on screen: a ticket's events (in seq order) and its notes (in time order) as
 * one list, each note after the events stored before or with it. `eventsMore` and `notesMore` say
 * whether older ones remain in either stream: the list then starts at the later of the two oldest
 * held, so that nothing is shown where the other stream has not been read yet (those wait for the
 * next older page). Items: `{key, event}` or `{key, note}`; keys are unique (`e:` seq, `n:` id).
 */
export function timeline(events, eventsMore, notes, notesMore) {
  let from = -Infinity;
  if (eventsMore && events.length) from = Math.max(from, events[0].at);
  if (notesMore && notes.length) from = Math.max(from, notes[0].at);
  const es = events.filter((e) => e.at >= from);
  const ns = notes.filter((n) => n.at >= from);
  const items = [];
  let i = 0;
  let j = 0;
  while (i < es.length || j < ns.length) {
    if (j >= ns.length || (i < es.length && es[i].at <= ns[j].at)) {
      items.push({ key: `e:${es[i].seq}`, event: es[i] });
      i++;
    } else {
      items.push({ key: `n:${ns[j].id}`, note: ns[j] });
      j++;
    }
  }
  return { items, more: eventsMore || notesMore };
}
