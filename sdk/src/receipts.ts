/**
 * Receipts (CLIENTS.md section 8): the ticks of the person's own messages, raised by the marks of
 * the other participants, and the `ticket.delivered` / `ticket.read` the client sends, at most one
 * of each per second per ticket.
 */
import type { Mark, Participant, Seq, Uuid } from "./types.js";

/** A message of the local principal moved to `delivered` or `read`. */
export interface MarkChange {
  state: "delivered" | "read";
  client_msg_id: string;
  ticket_id: Uuid;
  seq: Seq;
}

interface Own {
  client_msg_id: string;
  seq: Seq;
  state: "sent" | "delivered" | "read";
}

/** One receipt per second per ticket: one frame per batch without holding a receipt back longer. */
const RECEIPT_INTERVAL_MS = 1000;

export class Receipts {
  /** Own messages still short of `read`, per ticket. */
  private readonly own = new Map<Uuid, Own[]>();
  /** Per ticket: the highest marks seen from the other participants. */
  private readonly others = new Map<Uuid, { delivered: Seq; read: Seq }>();
  /** Per ticket and kind: the mark last sent or seen for the local principal, and the timer. */
  private readonly outbound = new Map<string, { mark: Seq; wanted: Seq; at: number; timer?: ReturnType<typeof setTimeout> }>();

  constructor(
    private readonly isLocal: (p: Participant) => boolean,
    private readonly onChange: (change: MarkChange) => void,
    private readonly sendReceipt: (type: "ticket.delivered" | "ticket.read", ticketId: Uuid, seq: Seq) => Promise<void>,
  ) {}

  /** A message of ours was stored at `seq`: it shows `sent`, or more if the marks are already past it. */
  sent(ticketId: Uuid, clientMsgId: string, seq: Seq): void {
    const list = this.own.get(ticketId) ?? [];
    if (!list.some((m) => m.client_msg_id === clientMsgId)) list.push({ client_msg_id: clientMsgId, seq, state: "sent" });
    this.own.set(ticketId, list);
    this.apply(ticketId);
  }

  /** Marks from `ticket.subscribe.ok` or a `ticket.receipt`. Marks only move forward. */
  mark(ticketId: Uuid, mark: Mark): void {
    if (this.isLocal(mark.participant)) {
      // Our own marks from another device: what we need not send again.
      this.seen(ticketId, "ticket.delivered", mark.delivered_seq);
      this.seen(ticketId, "ticket.read", mark.read_seq);
      return;
    }
    const cur = this.others.get(ticketId) ?? { delivered: 0, read: 0 };
    this.others.set(ticketId, { delivered: Math.max(cur.delivered, mark.delivered_seq), read: Math.max(cur.read, mark.read_seq) });
    this.apply(ticketId);
  }

  private apply(ticketId: Uuid): void {
    const marks = this.others.get(ticketId);
    const list = this.own.get(ticketId);
    if (!marks || !list) return;
    for (const m of list) {
      if (m.state === "sent" && marks.delivered >= m.seq) {
        m.state = "delivered";
        this.onChange({ state: "delivered", client_msg_id: m.client_msg_id, ticket_id: ticketId, seq: m.seq });
      }
      if (m.state === "delivered" && marks.read >= m.seq) {
        m.state = "read";
        this.onChange({ state: "read", client_msg_id: m.client_msg_id, ticket_id: ticketId, seq: m.seq });
      }
    }
    this.own.set(ticketId, list.filter((m) => m.state !== "read"));
  }

  private seen(ticketId: Uuid, type: "ticket.delivered" | "ticket.read", seq: Seq): void {
    const key = `${type} ${ticketId}`;
    const o = this.outbound.get(key) ?? { mark: 0, wanted: 0, at: 0 };
    o.mark = Math.max(o.mark, seq);
    this.outbound.set(key, o);
  }

  /** The cursor moved: `ticket.delivered` with it, unless a mark at least as high is known. */
  delivered(ticketId: Uuid, cursor: Seq): void {
    this.want("ticket.delivered", ticketId, cursor);
  }

  /** The person saw the ticket up to `seq` (never above the cursor: the caller clamps it). */
  read(ticketId: Uuid, seq: Seq): void {
    this.want("ticket.read", ticketId, seq);
  }

  private want(type: "ticket.delivered" | "ticket.read", ticketId: Uuid, seq: Seq): void {
    const key = `${type} ${ticketId}`;
    const o = this.outbound.get(key) ?? { mark: 0, wanted: 0, at: 0 };
    this.outbound.set(key, o);
    o.wanted = Math.max(o.wanted, seq);
    if (o.wanted <= o.mark || o.timer) return;
    const wait = Math.max(0, o.at + RECEIPT_INTERVAL_MS - Date.now());
    o.timer = setTimeout(() => {
      o.timer = undefined;
      if (o.wanted <= o.mark) return;
      const seqNow = o.wanted;
      o.at = Date.now();
      // Errors are not retried: the next receipt carries the full mark.
      this.sendReceipt(type, ticketId, seqNow).then(
        () => {
          o.mark = Math.max(o.mark, seqNow);
          // A read raises the delivered mark too.
          if (type === "ticket.read") this.seen(ticketId, "ticket.delivered", seqNow);
        },
        () => {},
      );
    }, wait);
  }

  /** Drops pending receipts (the socket ended: the next resume sends them again). */
  cancel(): void {
    for (const o of this.outbound.values()) {
      if (o.timer) clearTimeout(o.timer);
      o.timer = undefined;
      o.wanted = o.mark;
    }
  }

  forget(ticketId: Uuid): void {
    this.own.delete(ticketId);
    this.others.delete(ticketId);
    this.outbound.delete(`ticket.delivered ${ticketId}`);
    this.outbound.delete(`ticket.read ${ticketId}`);
  }
}
