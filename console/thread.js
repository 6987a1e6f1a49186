// One ticket's conversation as the console shows it: the events by seq, the oldest loaded one, and
// the messages this agent sent whose stored event has not arrived yet or that the hub refused. The
// client rules (cursors, resume, the outbox, sending each message once) are the SDK's
// (hub-client.js); this file only keeps what is on screen from showing anything twice. A message's
// attachments travel in its outbox entry's `meta`, so they can be shown while it is being sent.

export class Thread {
  constructor(ticketId) {
    this.ticketId = ticketId;
    /** seq -> event */
    this.events = new Map();
    /** Highest seq kept (0: nothing yet). Events arrive in order (the SDK sees to it), and history
     *  pages are read backwards from the first one, so nothing below it is missing. */
    this.cursor = 0;
    /** Lowest seq loaded; older ones are read with `ticket.history` on demand. */
    this.oldest = Infinity;
    /** Whether older events than `oldest` exist. */
    this.more = false;
    /** True once the first page was read and the SDK follows the ticket. */
    this.loaded = false;
    /** client_msg_id -> {body, attachments, seq}: acknowledged, its event not here yet. */
    this.sent = new Map();
    /** client_msg_id -> {body, attachments, code}: refused by the hub, for the agent to edit. */
    this.failed = new Map();
    /** The user's marks, from `ticket.receipt`. */
    this.userDelivered = 0;
    this.userRead = 0;
    /** Until when the user is shown as typing (ms since the epoch). */
    this.typingUntil = 0;
    /** The highest seq this console marked read. */
    this.readSent = 0;
  }

  /** Keeps one event of the live stream. Returns true when it is new. */
  push(event) {
    if (this.events.has(event.seq)) return false;
    this.keep(event);
    this.cursor = Math.max(this.cursor, event.seq);
    return true;
  }

  /** Keeps a page of `ticket.history` (oldest first) read backwards from `oldest`. */
  prepend(events, more) {
    for (const e of events) {
      if (!this.events.has(e.seq)) this.keep(e);
    }
    if (events.length) {
      this.oldest = Math.min(this.oldest, events[0].seq);
      this.cursor = Math.max(this.cursor, events[events.length - 1].seq);
    }
    this.more = more;
  }

  keep(event) {
    this.events.set(event.seq, event);
    this.oldest = Math.min(this.oldest, event.seq);
    // The stored copy of a message this console sent replaces the one shown as sent.
    if (event.kind === 'message' && event.client_msg_id) this.sent.delete(event.client_msg_id);
  }

  /** Events in seq order. */
  ordered() {
    return [...this.events.values()].sort((a, b) => a.seq - b.seq);
  }

  /** Forgets everything loaded (the hub's copy is behind ours: a restored database). */
  reset() {
    this.events.clear();
    this.cursor = 0;
    this.oldest = Infinity;
    this.more = false;
    this.readSent = 0;
  }

  /** A message of this agent was acknowledged: shown as sent until its event arrives. */
  acknowledged(clientMsgId, entry, seq) {
    if (this.events.has(seq)) return;
    this.sent.set(clientMsgId, { body: entry.body, attachments: attachmentsOf(entry), seq });
  }

  /** The hub refused a message for good: kept to show why, with "edit". */
  refused(clientMsgId, entry, code) {
    this.failed.set(clientMsgId, { body: entry.body, attachments: attachmentsOf(entry), code });
  }

  /** Takes a failed message back for the agent to edit: its text and attachments. */
  takeBack(clientMsgId) {
    const m = this.failed.get(clientMsgId);
    if (!m) return null;
    this.failed.delete(clientMsgId);
    return { body: m.body, attachments: m.attachments };
  }
}

/** The attachments an outbox entry shows: the summaries kept in its `meta`. */
export function attachmentsOf(entry) {
  const list = entry && entry.meta && entry.meta.attachments;
  return Array.isArray(list) ? list.filter((a) => a && typeof a.id === 'string') : [];
}

/** What a message being sent keeps of an attachment: enough to show it and to name it again. */
export function attachmentSummary(a) {
  return { id: a.id, name: a.name, size: a.size ?? a.length, kind: a.kind, media_type: a.media_type };
}

export function sameParticipant(a, b) {
  return !!a && !!b && a.kind === b.kind && (a.id || null) === (b.id || null);
}
