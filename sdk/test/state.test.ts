// The state machine against a scripted socket: close codes, subprotocol checks, gaps and the
// half-lifetime refresh, which a real hub does not produce on demand.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HubClient, type ClosedReason, type ConnectionState, type SessionToken, type WebSocketLike } from "../src/client.js";
import { until } from "./hub.js";
import type { Delivery } from "../src/outbox.js";

class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  protocol = "";
  readyState = 0;
  binaryType = "blob";
  sent: Record<string, unknown>[] = [];
  closedWith: number | undefined;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(readonly url: string, readonly protocols: string | string[]) {
    FakeSocket.all.push(this);
  }
  send(data: string | Uint8Array) {
    this.sent.push(JSON.parse(data as string));
  }
  close(code?: number) {
    this.closedWith = code;
  }
  accept(protocol = "anapars.v1.json") {
    this.protocol = protocol;
    this.readyState = 1;
    this.onopen?.({});
  }
  deliver(frame: Record<string, unknown>) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  end(code: number) {
    this.onclose?.({ code, reason: "" });
  }
  last() {
    return this.sent.at(-1)!;
  }
}

const USER = "0194f1a2-3b4c-7d5e-8f60-7182a3b4c5d6";
const TICKET = "019b76da-a800-7a1b-9c2d-3e4f5a6b7c8d";
const TOKEN = "Zk3nQ1v8x2LrT0aBcDeFgHiJkLmNoPqRsTuVwXyZ012";

async function connectedClient(token: SessionToken = { token: TOKEN }, follow: Record<string, number> = {}) {
  FakeSocket.all = [];
  const states: ConnectionState[] = [];
  const client = new HubClient({ url: "https://hub.test", token, WebSocket: FakeSocket, random: () => 0, resumeLists: false, follow });
  client.on("state", (s) => states.push(s));
  await client.connect();
  const ws = FakeSocket.all[0]!;
  assert.equal(ws.url, "wss://hub.test/v1/ws");
  assert.equal(ws.protocols, "anapars.v1.json");
  ws.accept();
  assert.deepEqual(ws.sent[0], { id: 1, type: "auth", token: token.token });
  ws.deliver({ type: "auth.ok", id: 1, user_id: USER, device_id: USER, session_expires_at: token.expiresAt ?? Date.now() + 30 * 86_400_000 });
  await until(() => client.state === "connected", 1000);
  return { client, ws, states };
}

test("auth is the first frame; auth.ok connects; revocation and 4003 close with the reason and delete the token", async () => {
  const { client, ws, states } = await connectedClient();
  assert.deepEqual(states, ["connecting", "authenticating", "connected"]);
  let token: SessionToken | null | undefined;
  client.on("token", (t) => (token = t));
  const closed = new Promise<ClosedReason>((r) => client.on("closed", r));
  ws.deliver({ type: "session.revoked", reason: "signed_in_elsewhere" });
  await new Promise((r) => setTimeout(r, 10));
  await assert.rejects(client.request({ type: "ping" }));
  ws.end(4003);
  assert.deepEqual(await closed, { kind: "session_ended", closeCode: 4003, revokeReason: "signed_in_elsewhere" });
  assert.equal(token, null);
  assert.equal(client.state, "closed");
});

test("connect called twice while the token loads opens one socket", async () => {
  FakeSocket.all = [];
  const client = new HubClient({ url: "https://hub.test", token: async () => ({ token: TOKEN }), WebSocket: FakeSocket, random: () => 0, resumeLists: false });
  try {
    await Promise.all([client.connect(), client.connect()]);
    await until(() => FakeSocket.all.length > 0, 1000);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(FakeSocket.all.length, 1);
  } finally {
    client.disconnect();
  }
});

test("close 1012 resumes from attempt 3; pending requests fail at once", async () => {
  const { client, ws } = await connectedClient();
  const pending = client.request({ type: "me" });
  ws.end(1012);
  await assert.rejects(pending, { name: "ConnectionLost" });
  assert.ok((client as unknown as { attempt: number }).attempt >= 4);
  await until(() => FakeSocket.all.length === 2, 1000, "a reconnect");
  client.disconnect();
});

test("a 101 naming another subprotocol is a failed attempt", async () => {
  FakeSocket.all = [];
  const reports: string[] = [];
  const client = new HubClient({ url: "http://hub.test", token: TOKEN, WebSocket: FakeSocket, random: () => 0.5 });
  client.on("report", (m) => reports.push(m));
  await client.connect();
  FakeSocket.all[0]!.accept("anapars.v1.msgpack");
  assert.equal(client.state, "disconnected");
  assert.equal(FakeSocket.all[0]!.closedWith, 1000);
  assert.match(reports[0]!, /subprotocol/);
  client.disconnect();
});

test("unauthorized to auth ends the session; another error to auth reconnects", async () => {
  FakeSocket.all = [];
  const client = new HubClient({ url: "http://hub.test", token: TOKEN, WebSocket: FakeSocket, random: () => 0 });
  await client.connect();
  FakeSocket.all[0]!.accept();
  FakeSocket.all[0]!.deliver({ type: "error", id: 1, code: "unavailable", message: "storage" });
  await until(() => FakeSocket.all.length === 2, 1000, "a reconnect");
  assert.equal(FakeSocket.all[0]!.closedWith, 1000);
  FakeSocket.all[1]!.accept();
  FakeSocket.all[1]!.deliver({ type: "error", id: 1, code: "unauthorized", message: "session token is not valid" });
  await until(() => client.state === "closed", 1000, "closed");
});

test("resume subscribes from the cursor; a gap re-subscribes; repeated events are ignored", async () => {
  const { client, ws } = await connectedClient({ token: TOKEN }, { [TICKET]: 4 });
  assert.deepEqual(ws.last(), { id: 2, type: "ticket.subscribe", ticket_id: TICKET, after_seq: 4 });
  const ev = (seq: number) => ({ type: "ticket.event", event: { ticket_id: TICKET, seq, kind: "message", author: { kind: "system" }, at: 1 } });
  ws.deliver(ev(5));
  ws.deliver(ev(5));
  ws.deliver(ev(7));
  const subscribes = () => ws.sent.filter((f) => f.type === "ticket.subscribe");
  await until(() => subscribes().length === 2, 1000, "a re-subscribe");
  assert.equal(client.cursor(TICKET), 5);
  assert.deepEqual({ ...subscribes()[1], id: 0 }, { id: 0, type: "ticket.subscribe", ticket_id: TICKET, after_seq: 5 });
  client.disconnect();
});

test("with less than half of the session's lifetime left, the client refreshes and stores the new token", async () => {
  const now = Date.now();
  const { client, ws } = await connectedClient({ token: TOKEN, receivedAt: now - 10_000, expiresAt: now + 5_000 });
  const tokens: (SessionToken | null)[] = [];
  client.on("token", (t) => tokens.push(t));
  await until(() => ws.last().type === "session.refresh", 1000, "session.refresh");
  ws.deliver({ type: "session.refresh.ok", id: ws.last().id, token: "pW9-_r4sT6uV8wX0yZ2aB4cD6eF8gH0iJ2kL4mN6oP8", expires_at: now + 100_000 });
  await until(() => tokens.length === 1, 1000, "the new token");
  assert.equal(tokens[0]!.token, "pW9-_r4sT6uV8wX0yZ2aB4cD6eF8gH0iJ2kL4mN6oP8");
  assert.ok(!tokens[0]!.refreshInFlight);
  client.disconnect();
});

test("an unanswered send is resent with the same client_msg_id after a reconnect, and duplicate: true is success", async () => {
  const { client, ws } = await connectedClient();
  const entry = await client.send(TICKET, "hello");
  const settled = client.outbox.settled(entry.client_msg_id);
  await until(() => ws.last().type === "ticket.send", 1000, "the send");
  assert.equal(ws.last().client_msg_id, entry.client_msg_id);
  ws.end(1006);
  await until(() => FakeSocket.all.length === 2, 1000, "a reconnect");
  const ws2 = FakeSocket.all[1]!;
  ws2.accept();
  ws2.deliver({ type: "auth.ok", id: 1, user_id: USER, device_id: USER, session_expires_at: Date.now() + 86_400_000 });
  await until(() => ws2.last().type === "ticket.send", 1000, "the resend");
  assert.equal(ws2.last().client_msg_id, entry.client_msg_id);
  ws2.deliver({ type: "ticket.send.ok", id: ws2.last().id, ticket_id: TICKET, seq: 6, duplicate: true });
  const { entry: kept, ...delivery } = (await settled) as Extract<Delivery, { state: "sent" }>;
  assert.deepEqual(delivery, { state: "sent", client_msg_id: entry.client_msg_id, ticket_id: TICKET, seq: 6, duplicate: true });
  assert.equal(kept.body, "hello", "the delivery carries the entry, for the app to show until the event arrives");
  assert.equal(client.outbox.list().length, 0);
  client.disconnect();
});

test("an own event replayed by the resume completes its entry before any resend", async () => {
  const { client, ws } = await connectedClient({ token: TOKEN }, { [TICKET]: 5 });
  ws.deliver({ type: "ticket.subscribe.ok", id: 2, ticket: { id: TICKET, user_id: USER, subject: "s", status: "open", agent_id: null, created_at: 1, updated_at: 1, last_seq: 5 }, marks: [] });
  const entry = await client.send(TICKET, "hello");
  await until(() => ws.last().type === "ticket.send", 1000, "the send");
  ws.end(4011);
  await until(() => FakeSocket.all.length === 2, 1000, "a reconnect");
  const ws2 = FakeSocket.all[1]!;
  ws2.accept();
  ws2.deliver({ type: "auth.ok", id: 1, user_id: USER, device_id: USER, session_expires_at: Date.now() + 86_400_000 });
  await until(() => ws2.last().type === "ticket.subscribe", 1000, "the resume");
  assert.equal(ws2.last().after_seq, 5);
  const settled = client.outbox.settled(entry.client_msg_id);
  ws2.deliver({ type: "ticket.event", event: { ticket_id: TICKET, seq: 6, kind: "message", author: { kind: "user", id: USER }, body: "hello", client_msg_id: entry.client_msg_id, at: 1 } });
  ws2.deliver({ type: "ticket.subscribe.ok", id: 2, ticket: { id: TICKET, user_id: USER, subject: "s", status: "open", agent_id: null, created_at: 1, updated_at: 1, last_seq: 6 }, marks: [] });
  assert.equal((await settled).state, "sent");
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(!ws2.sent.some((f) => f.type === "ticket.send"), "nothing resent");
  client.disconnect();
});

test("a final error fails the entry; overloaded keeps it and waits for the hint", async () => {
  const { client, ws } = await connectedClient();
  const a = await client.send(TICKET, "one");
  await until(() => ws.last().type === "ticket.send", 1000, "the send");
  const firstId = ws.last().id;
  ws.deliver({ type: "error", id: firstId, code: "overloaded", message: "busy", retry_after_ms: 50 });
  const t0 = Date.now();
  await until(() => ws.sent.filter((f) => f.type === "ticket.send").length === 2, 1000, "the resend");
  assert.ok(Date.now() - t0 >= 45, "the hint is not undercut");
  const settled = client.outbox.settled(a.client_msg_id);
  ws.deliver({ type: "error", id: ws.last().id, code: "wrong_state", message: "resolved" });
  const d = await settled;
  assert.equal(d.state, "failed");
  assert.equal((d as { code: string }).code, "wrong_state");
  assert.equal(client.outbox.list().length, 0);
  client.disconnect();
});

test("without a network the client does not retry; the network back connects", async () => {
  const { client, ws } = await connectedClient();
  client.networkChanged(false);
  ws.end(1006);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(client.state, "disconnected");
  assert.equal(FakeSocket.all.length, 1);
  client.networkChanged(true);
  await until(() => FakeSocket.all.length === 2, 1000, "a reconnect");
  client.disconnect();
});

test("a refresh left in flight by a dropped socket is cleared once the stored token authenticates", async () => {
  const store = { value: { token: TOKEN, refreshInFlight: true } as SessionToken | null, load() { return this.value; }, save(t: SessionToken | null) { this.value = t; } };
  FakeSocket.all = [];
  const client = new HubClient({ url: "http://hub.test", tokenStore: store, WebSocket: FakeSocket, random: () => 0, resumeLists: false });
  await client.connect();
  FakeSocket.all[0]!.accept();
  assert.equal(FakeSocket.all[0]!.sent[0]!.token, TOKEN);
  FakeSocket.all[0]!.deliver({ type: "auth.ok", id: 1, user_id: USER, device_id: USER, session_expires_at: Date.now() + 86_400_000 });
  await until(() => client.state === "connected", 1000);
  assert.equal(store.value!.refreshInFlight, undefined);
  FakeSocket.all[0]!.deliver({ type: "session.expiring", expires_at: store.value!.expiresAt! });
  await until(() => FakeSocket.all[0]!.last().type === "session.refresh", 1000, "session.refresh");
  assert.equal(store.value!.refreshInFlight, true);
  client.disconnect();
});

test("a type answered unknown_type is not sent again on that socket; typing goes at most every 3 s", async () => {
  const { client, ws } = await connectedClient();
  const first = client.request({ type: "rating.pending" });
  ws.deliver({ type: "error", id: ws.last().id, code: "unknown_type", message: "unknown frame type" });
  await assert.rejects(first, { code: "unknown_type" });
  const count = ws.sent.length;
  await assert.rejects(client.request({ type: "rating.pending" }), { code: "unknown_type" });
  assert.equal(ws.sent.length, count);
  client.typing(TICKET);
  client.typing(TICKET);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(ws.sent.filter((f) => f.type === "ticket.typing").length, 1);
  client.disconnect();
});

test("a reconnect waits for its time, announced by retry; retry now skips the wait and keeps the attempt", async () => {
  FakeSocket.all = [];
  const client = new HubClient({ url: "https://hub.test", token: TOKEN, WebSocket: FakeSocket, random: () => 0.99, resumeLists: false });
  const announced: number[] = [];
  client.on("retry", (at) => announced.push(at));
  await client.connect();
  FakeSocket.all[0]!.end(1006);
  assert.equal(client.state, "disconnected");
  assert.equal(announced.length, 1);
  assert.equal(client.nextAttemptAt, announced[0]);
  assert.ok(announced[0]! > Date.now() + 100, "the first wait is most of 500 ms with this random");
  client.retryNow();
  await until(() => FakeSocket.all.length === 2, 1000, "the attempt at once");
  assert.equal(client.nextAttemptAt, undefined);
  FakeSocket.all[1]!.end(1006);
  // The attempt was counted: the second wait is most of 1 s.
  assert.ok(announced[1]! - Date.now() > 600, `second wait ${announced[1]! - Date.now()} ms`);
  client.disconnect();
  assert.equal(client.nextAttemptAt, undefined);
});
