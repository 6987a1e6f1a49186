/**
 * The outbox (CLIENTS.md section 6): the durable queue of `ticket.open` and `ticket.send` requests
 * not yet acknowledged. It makes sending exactly once: an entry is resent with its original
 * `client_msg_id` until a reply says stored (`duplicate` true or false) or final, and the hub turns
 * every resend of a stored message into `duplicate: true`.
 */
import { backoffDelay, type Random } from "./backoff.js";
import { HubError, ConnectionLost } from "./errors.js";
import type { ErrorCode, Seq, Ticket, TicketEvent, Uuid } from "./types.js";

export type OutboxEntryState = "ready" | "in_flight" | "failed";

export interface OutboxEntry {
  /** Random v4 UUID, written before the first try and reused for every resend. */
  client_msg_id: string;
  kind: "open" | "send";
  /** Creation order; entries of one ticket go one at a time in this order. */
  order: number;
  /** The ticket; absent for an open, and for a send waiting for its ticket's open. */
  ticket_id?: Uuid;
  /** For a send to a ticket still being opened: the open's `client_msg_id`. */
  open_ref?: string;
  subject?: string;
  body: string;
  attachments?: Uuid[];
  /**
   * The app's own data about the message, stored with the entry and never sent: what it needs to
   * show the message after a restart (the attachments' names and sizes, say). Plain JSON.
   */
  meta?: unknown;
  created_at: number;
  tries: number;
  /** `internal` answers so far: after 3 the entry fails (CLIENTS.md section 6). */
  internal_errors: number;
  state: OutboxEntryState;
  error?: ErrorCode;
}

/**
 * Where entries live. The store must be durable in an app (SQLite, IndexedDB) and written in the
 * same transaction as the events and cursors; `MemoryOutboxStore` is for tests and short-lived tools.
 */
export interface OutboxStore {
  load(): Promise<OutboxEntry[]>;
  put(entry: OutboxEntry): Promise<void>;
  delete(clientMsgId: string): Promise<void>;
}

export class MemoryOutboxStore implements OutboxStore {
  private readonly entries = new Map<string, OutboxEntry>();
  async load(): Promise<OutboxEntry[]> {
    return [...this.entries.values()].map((e) => ({ ...e }));
  }
  async put(entry: OutboxEntry): Promise<void> {
    this.entries.set(entry.client_msg_id, { ...entry });
  }
  async delete(clientMsgId: string): Promise<void> {
    this.entries.delete(clientMsgId);
  }
}

/** A message's delivery state as the person sees it (CLIENTS.md section 8). */
export type Delivery =
  | { state: "pending"; client_msg_id: string; ticket_id?: Uuid }
  | {
      state: "sent";
      client_msg_id: string;
      ticket_id: Uuid;
      seq: Seq;
      duplicate: boolean;
      /** For an open: the ticket as the hub answered it. */
      ticket?: Ticket;
      /** The entry as it was, until the app holds the stored event. */
      entry: OutboxEntry;
    }
  | {
      state: "failed";
      client_msg_id: string;
      ticket_id?: Uuid;
      code: ErrorCode | "message_too_big";
      message: string;
      /** The entry as it was: the app keeps the message to show with "edit" and "delete". */
      entry: OutboxEntry;
    };

/** What the outbox needs from the connection. */
export interface OutboxTransport {
  /** Whether an entry of this ticket may go now (connected, and resumed if followed). */
  canSend(ticketId: Uuid | undefined): boolean;
  sendOpen(entry: OutboxEntry): Promise<Ticket>;
  sendMessage(entry: OutboxEntry): Promise<{ seq: Seq; duplicate: boolean }>;
}

/** Errors after which an entry is never resent unchanged (CLIENTS.md section 6). */
const FINAL: ReadonlySet<string> = new Set([
  "bad_request",
  "empty_body",
  "too_large",
  "forbidden",
  "not_found",
  "wrong_state",
  "unknown_type",
  "unauthorized",
]);

/** The hub's limit of unanswered sends per socket. */
const MAX_IN_FLIGHT = 32;

export function newClientMsgId(random?: () => number): string {
  const bytes = new Uint8Array(16);
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (!random && c?.getRandomValues) c.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor((random ?? Math.random)() * 256);
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

type Listener = (delivery: Delivery) => void;

export class Outbox {
  private entries = new Map<string, OutboxEntry>();
  private nextOrder = 1;
  private inFlight = 0;
  /** Per group (ticket or open): no try before this time, after a hint or a backoff. */
  private notBefore = new Map<string, number>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly listeners = new Set<Listener>();
  private readonly waiters = new Map<string, ((d: Delivery) => void)[]>();
  private transport: OutboxTransport | undefined;
  private loaded: Promise<void> | undefined;

  constructor(
    private readonly store: OutboxStore = new MemoryOutboxStore(),
    private readonly random: Random = Math.random,
  ) {}

  /** Reads the stored entries once; entries in flight when the app died are ready again. */
  load(): Promise<void> {
    this.loaded ??= this.store.load().then((list) => {
      for (const e of list) {
        if (e.state === "in_flight") e.state = "ready";
        this.entries.set(e.client_msg_id, e);
        this.nextOrder = Math.max(this.nextOrder, e.order + 1);
      }
    });
    return this.loaded;
  }

  attach(transport: OutboxTransport): void {
    this.transport = transport;
  }

  onDelivery(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Entries not yet acknowledged, in creation order (failed ones included until removed). */
  list(): OutboxEntry[] {
    return [...this.entries.values()].sort((a, b) => a.order - b.order).map((e) => ({ ...e }));
  }

  /** Resolves at the entry's next final state, `sent` or `failed`. */
  settled(clientMsgId: string): Promise<Delivery> {
    return new Promise((resolve) => {
      const list = this.waiters.get(clientMsgId) ?? [];
      list.push(resolve);
      this.waiters.set(clientMsgId, list);
    });
  }

  /** Queues a `ticket.open`; its first message will be seq 2. */
  async open(subject: string, body: string, attachments?: Uuid[], meta?: unknown): Promise<OutboxEntry> {
    return this.add({ kind: "open", subject, body, ...extras(attachments, meta) });
  }

  /**
   * Queues a `ticket.send`. `ticket` is a ticket id, or the `client_msg_id` of an open still in
   * the outbox: the send then waits for that open's reply.
   */
  async send(ticket: { ticket_id: Uuid } | { open_ref: string }, body: string, attachments?: Uuid[], meta?: unknown) {
    return this.add({ kind: "send", ...ticket, body, ...extras(attachments, meta) });
  }

  private async add(fields: Partial<OutboxEntry> & Pick<OutboxEntry, "kind" | "body">): Promise<OutboxEntry> {
    await this.load();
    const entry: OutboxEntry = {
      client_msg_id: newClientMsgId(),
      order: this.nextOrder++,
      created_at: Date.now(),
      tries: 0,
      internal_errors: 0,
      state: "ready",
      ...fields,
    };
    // Written before it is shown as pending and before the first try.
    await this.store.put(entry);
    this.entries.set(entry.client_msg_id, entry);
    this.emit({ state: "pending", client_msg_id: entry.client_msg_id, ...(entry.ticket_id ? { ticket_id: entry.ticket_id } : {}) });
    this.flush();
    return { ...entry };
  }

  /** Removes a failed entry (the person deleted or edited the message). */
  async remove(clientMsgId: string): Promise<void> {
    this.entries.delete(clientMsgId);
    await this.store.delete(clientMsgId);
  }

  /**
   * An own event arrived (during a resume or live): the message was stored before the reply got
   * lost, so it completes its entry as a `ticket.send.ok` would.
   */
  async ownEvent(event: TicketEvent): Promise<void> {
    if (event.kind !== "message" || event.client_msg_id === undefined) return;
    const entry = this.entries.get(event.client_msg_id);
    if (!entry || entry.state === "in_flight" || entry.kind !== "send") return;
    if (entry.ticket_id !== event.ticket_id) return;
    await this.complete(entry, { seq: event.seq, duplicate: true });
  }

  /** Drops every entry of a ticket that no longer exists (`ticket.deleted`, `not_found`). */
  async dropTicket(ticketId: Uuid): Promise<void> {
    for (const e of [...this.entries.values()]) if (e.ticket_id === ticketId) await this.remove(e.client_msg_id);
  }

  /** Sends what may go now: per group one entry at a time, in creation order. */
  flush(): void {
    const transport = this.transport;
    if (!transport) return;
    const now = Date.now();
    let wake = Infinity;
    const seen = new Set<string>();
    for (const entry of this.list()) {
      const key = groupOf(entry);
      if (seen.has(key)) continue;
      seen.add(key);
      if (entry.state === "in_flight" || entry.state === "failed") continue;
      if (this.inFlight >= MAX_IN_FLIGHT) break;
      if (entry.kind === "send" && entry.ticket_id === undefined) continue; // its open is failed or gone
      const at = this.notBefore.get(key) ?? 0;
      if (at > now) {
        wake = Math.min(wake, at);
        continue;
      }
      if (!transport.canSend(entry.ticket_id)) continue;
      void this.sendOne(this.entries.get(entry.client_msg_id)!, key);
    }
    if (wake !== Infinity) this.wakeAt(wake);
  }

  private wakeAt(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, Math.max(0, at - Date.now()));
  }

  /** Stops the retry timer (the client is shut down); entries stay. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async sendOne(entry: OutboxEntry, key: string): Promise<void> {
    const transport = this.transport!;
    entry.state = "in_flight";
    entry.tries += 1;
    this.inFlight += 1;
    try {
      if (entry.kind === "open") {
        const ticket = await transport.sendOpen(entry);
        this.inFlight -= 1;
        await this.opened(entry, ticket);
      } else {
        const ok = await transport.sendMessage(entry);
        this.inFlight -= 1;
        await this.complete(entry, ok);
      }
    } catch (err) {
      this.inFlight -= 1;
      await this.failedTry(entry, key, err);
    }
    this.flush();
  }

  private async opened(entry: OutboxEntry, ticket: Ticket): Promise<void> {
    for (const e of this.entries.values()) {
      if (e.open_ref === entry.client_msg_id) {
        e.ticket_id = ticket.id;
        await this.store.put(e);
      }
    }
    await this.remove(entry.client_msg_id);
    this.settle({ state: "sent", client_msg_id: entry.client_msg_id, ticket_id: ticket.id, seq: 2, duplicate: false, ticket, entry: { ...entry } });
  }

  private async complete(entry: OutboxEntry, ok: { seq: Seq; duplicate: boolean }): Promise<void> {
    await this.remove(entry.client_msg_id);
    this.settle({ state: "sent", client_msg_id: entry.client_msg_id, ticket_id: entry.ticket_id!, seq: ok.seq, duplicate: ok.duplicate, entry: { ...entry } });
  }

  private async failedTry(entry: OutboxEntry, key: string, err: unknown): Promise<void> {
    if (err instanceof ConnectionLost) {
      // A frame over the hard limit must never go again (close 1009).
      if (err.closeCode === 1009) return this.fail(entry, "message_too_big", "the frame is over max_frame_hard_bytes");
      entry.state = "ready";
      return; // resent after the next auth.ok
    }
    if (!(err instanceof HubError)) {
      entry.state = "ready";
      this.notBefore.set(key, Date.now() + backoffDelay(entry.tries, { random: this.random }));
      return;
    }
    const code = err.code;
    if (code === "overloaded" || code === "rate_limited") {
      entry.state = "ready";
      this.notBefore.set(key, Date.now() + (err.retryAfterMs ?? backoffDelay(entry.tries, { random: this.random })));
    } else if (code === "unavailable" || code === "internal") {
      if (code === "internal") entry.internal_errors += 1;
      if (entry.internal_errors >= 3) return this.fail(entry, code, err.message, true);
      entry.state = "ready";
      this.notBefore.set(key, Date.now() + backoffDelay(entry.tries, { random: this.random, ...(err.retryAfterMs ? { retryAfterMs: err.retryAfterMs } : {}) }));
      await this.store.put(entry);
    } else if (FINAL.has(code)) {
      await this.fail(entry, code, err.message);
    } else {
      entry.state = "ready";
      this.notBefore.set(key, Date.now() + backoffDelay(entry.tries, { random: this.random }));
    }
  }

  /**
   * Marks an entry failed. After `internal` it stays (same id, the person may retry: it may have
   * been stored); every other final error removes it.
   */
  private async fail(entry: OutboxEntry, code: ErrorCode | "message_too_big", message: string, keep = false): Promise<void> {
    if (keep) {
      entry.state = "failed";
      entry.error = code as ErrorCode;
      await this.store.put(entry);
    } else {
      await this.remove(entry.client_msg_id);
    }
    this.settle({
      state: "failed",
      client_msg_id: entry.client_msg_id,
      ...(entry.ticket_id ? { ticket_id: entry.ticket_id } : {}),
      code,
      message,
      entry: { ...entry },
    });
  }

  /** Tries a failed entry again with the same `client_msg_id` (after `internal`). */
  async retry(clientMsgId: string): Promise<void> {
    const entry = this.entries.get(clientMsgId);
    if (!entry || entry.state !== "failed") return;
    entry.state = "ready";
    entry.internal_errors = 0;
    await this.store.put(entry);
    this.flush();
  }

  private settle(delivery: Delivery): void {
    this.emit(delivery);
    const list = this.waiters.get(delivery.client_msg_id);
    this.waiters.delete(delivery.client_msg_id);
    for (const resolve of list ?? []) resolve(delivery);
  }

  private emit(delivery: Delivery): void {
    for (const l of this.listeners) l(delivery);
  }
}

function extras(attachments: Uuid[] | undefined, meta: unknown): Partial<OutboxEntry> {
  return { ...(attachments && attachments.length ? { attachments } : {}), ...(meta !== undefined ? { meta } : {}) };
}

/** Entries of one group go one at a time: a ticket, or an open and the sends waiting for it. */
function groupOf(entry: OutboxEntry): string {
  if (entry.ticket_id !== undefined) return `ticket:${entry.ticket_id}`;
  return `open:${entry.open_ref ?? entry.client_msg_id}`;
}
