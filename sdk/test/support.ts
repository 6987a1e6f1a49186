import { HubClient, type HubClientOptions } from "../src/client.js";
import { agentLogin, requestCode, signIn } from "../src/http.js";
import type { Encoding } from "../src/codec.js";
import type { Seq, TicketEvent, Uuid } from "../src/types.js";
import { newClientMsgId } from "../src/outbox.js";
import { Hub, TEST_CODE, WS, until } from "./hub.js";

/** A client and what it received, per ticket, in order. */
export interface Peer {
  client: HubClient;
  events: Map<Uuid, TicketEvent[]>;
  token: string;
}

export function watch(client: HubClient, token: string): Peer {
  const events = new Map<Uuid, TicketEvent[]>();
  client.on("ticket.event", (e) => {
    const list = events.get(e.ticket_id) ?? [];
    list.push(e);
    events.set(e.ticket_id, list);
  });
  return { client, events, token };
}

export async function signInUser(hub: Hub, encoding: Encoding, extra: Partial<HubClientOptions> = {}): Promise<Peer> {
  const phone = hub.phone();
  await requestCode(hub.url, phone);
  const session = await signIn(hub.url, phone, TEST_CODE, { id: newClientMsgId(), name: "test" });
  const client = new HubClient({
    url: hub.url,
    token: { token: session.token, expiresAt: session.expires_at, receivedAt: Date.now() },
    encoding,
    WebSocket: WS,
    ...extra,
  });
  return watch(client, session.token);
}

export async function signInAgent(hub: Hub, email: string, password: string, encoding: Encoding, extra: Partial<HubClientOptions> = {}): Promise<Peer> {
  const session = await agentLogin(hub.url, email, password);
  const client = new HubClient({ url: hub.url, token: session.token, encoding, WebSocket: WS, ...extra });
  return watch(client, session.token);
}

export async function connected(peer: Peer, ms = 15_000): Promise<void> {
  if (peer.client.state === "disconnected" || peer.client.state === "closed") await peer.client.connect();
  await until(() => peer.client.state === "connected", ms, "connected");
}

/** Every event of a ticket from `ticket.history`, oldest first, read page by page. */
export async function readHistory(client: HubClient, ticketId: Uuid): Promise<TicketEvent[]> {
  const events: TicketEvent[] = [];
  let after: Seq = 0;
  for (;;) {
    const page = await client.request({ type: "ticket.history", ticket_id: ticketId, after_seq: after, limit: 100 });
    events.push(...page.events);
    if (!page.more || page.events.length === 0) return events;
    after = page.events.at(-1)!.seq;
  }
}

/** A seeded generator (mulberry32): a failing run is replayed with the seed it printed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
