// One ticket's conversation as the console keeps it: the events by seq, the cursor (the highest seq
// such that every event from the oldest loaded one up to it is kept), and the messages this agent
// is sending. No DOM here: the rules that keep a message from being shown twice or lost live in
// this file alone. A message may carry attachments (uploads already stored on the hub): they stay
// with its outbox entry, so that every resend names the same ids.

/** A fresh `client_msg_id`: 128 random bits as hex (works outside secure contexts too, unlike
 *  `crypto.randomUUID`). */
export function newClientMsgId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return 'c-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export class Thread {
  constructor(ticketId) {
    this.ticketId = ticketId;
    /** seq -> event */
    this.events = new Map();
    /** Highest seq kept without a gap below it (0: nothing yet). */
    this.cursor = 0;
    /** Lowest seq loaded; older ones are read with `ticket.history` on demand. */
    this.oldest = Infinity;
    /** Whether older events than `oldest` exist. */
    this.more = false;
    /** True once the first page was read and the socket follows the ticket. */
    this.loaded = false;
    /** client_msg_id -> {body, author, attachments, state: 'pending' | 'sent' | 'failed', seq?,
     *  errorCode?, inFlight}; `attachments`: summaries of stored uploads (see `attachmentSummary`). */
    this.outbox = new Map();
    /** The user's marks, from `ticket.receipt`. */
    this.userDelivered = 0;
    this.userRead = 0;
    /** Until when the user is shown as typing (ms since the epoch). */
    this.typingUntil = 0;
    /** Marks this console has sent, so that it does not repeat them. */
    this.readSent = 0;
    this.deliveredSent = 0;
  }

  /**
   * Keeps one event pushed by the socket (`ticket.event`). Returns true when it is new. Anything at
   * or below the cursor is a copy and is dropped; an event beyond a gap is refused (the caller
   * resubscribes from the cursor, and the hub fills the gap).
   */
  push(event) {
    if (event.seq <= this.cursor) return false;
    if (this.cursor > 0 && event.seq !== this.cursor + 1) return false;
    this.keep(event);
    this.cursor = event.seq;
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
    // The stored copy of a message this console sent replaces the pending one.
    if (event.kind === 'message' && event.client_msg_id && this.outbox.has(event.client_msg_id)) {
      const mine = this.outbox.get(event.client_msg_id);
      if (mine.author === undefined || sameParticipant(mine.author, event.author)) {
        this.outbox.delete(event.client_msg_id);
      }
    }
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
    this.loaded = false;
    this.readSent = 0;
    this.deliveredSent = 0;
  }

  /** Adds a message to send, with the stored uploads it carries; returns its client_msg_id. */
  queue(body, author, attachments = []) {
    const id = newClientMsgId();
    // With files, white space alone is no text: the hub takes an empty body then.
    const text = attachments.length && !body.trim() ? '' : body;
    this.outbox.set(id, { body: text, author, attachments: attachments.map(attachmentSummary), state: 'pending', inFlight: false });
    return id;
  }

  /** Outbox items still to (re)send, oldest first. */
  unsent() {
    return [...this.outbox.entries()].filter(([, m]) => m.state === 'pending' && !m.inFlight);
  }

  /** The `ticket.send` request of an outbox item: the same `client_msg_id` and attachment ids every
   *  time it is sent, so that the hub stores it once. */
  sendFrame(clientMsgId) {
    const m = this.outbox.get(clientMsgId);
    if (!m) return null;
    const frame = { type: 'ticket.send', ticket_id: this.ticketId, client_msg_id: clientMsgId, body: m.body };
    if (m.attachments && m.attachments.length) frame.attachments = m.attachments.map((a) => a.id);
    return frame;
  }

  /** What survives a reload of the tab: the messages still to send, as plain data. */
  stored() {
    return [...this.outbox.entries()]
      .filter(([, m]) => m.state === 'pending')
      .map(([id, m]) => ({ id, body: m.body, author: m.author, attachments: m.attachments || [] }));
  }

  /** Puts back what `stored` kept, to be sent again with the same ids. */
  restore(items) {
    for (const m of items || []) {
      if (!m || typeof m.id !== 'string' || typeof m.body !== 'string') continue;
      const attachments = Array.isArray(m.attachments) ? m.attachments.filter((a) => a && typeof a.id === 'string') : [];
      this.outbox.set(m.id, { body: m.body, author: m.author, attachments, state: 'pending', inFlight: false });
    }
  }

  /** Takes a failed message out of the outbox for the agent to edit: its text and attachments. */
  takeBack(clientMsgId) {
    const m = this.outbox.get(clientMsgId);
    if (!m || m.state !== 'failed') return null;
    this.outbox.delete(clientMsgId);
    return { body: m.body, attachments: m.attachments || [] };
  }
}

/** What a message being sent keeps of an attachment: enough to show it and to name it again. */
export function attachmentSummary(a) {
  return { id: a.id, name: a.name, size: a.size ?? a.length, kind: a.kind, media_type: a.media_type };
}

export function sameParticipant(a, b) {
  return !!a && !!b && a.kind === b.kind && (a.id || null) === (b.id || null);
}
