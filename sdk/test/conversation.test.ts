import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { HubClient } from "../src/client.js";
import { HubError } from "../src/errors.js";
import { MemoryOutboxStore } from "../src/outbox.js";
import { requestCode, signIn, signOut } from "../src/http.js";
import type { Encoding } from "../src/codec.js";
import { Hub, TEST_CODE, WS, until } from "./hub.js";
import { connected, signInAgent, signInUser } from "./support.js";

const hub = new Hub();
let agentPassword = "";

before(async () => {
  await hub.start();
  agentPassword = hub.addAgent("sara@anapars.test", "Sara");
});
after(() => hub.stop());

test("signing in with a test number answers a token; a wrong code is code_invalid", async () => {
  const phone = hub.phone();
  const sent = await requestCode(hub.url, phone);
  assert.ok(sent.resend_after_ms > 0);
  await assert.rejects(signIn(hub.url, phone, "000000", { id: "5f0c3f43-4c4a-4b7e-9d55-1c2b3a4d5e6f" }), (e: unknown) => e instanceof HubError && e.code === "code_invalid");
  const session = await signIn(hub.url, phone, TEST_CODE, { id: "5f0c3f43-4c4a-4b7e-9d55-1c2b3a4d5e6f", name: "Pixel 8" });
  assert.equal(session.token.length, 43);
  assert.equal(session.new_user, true);
  await signOut(hub.url, session.token);
});

for (const encoding of ["json", "msgpack"] as Encoding[]) {
  test(`a user and an agent converse in ${encoding}, both receiving every event in order, with delivered and read ticks`, async () => {
    const user = await signInUser(hub, encoding);
    const agent = await signInAgent(hub, "sara@anapars.test", agentPassword, encoding);
    const ticks = new Map<string, string>();
    user.client.on("delivery", (d) => ticks.set(d.client_msg_id, d.state));
    await Promise.all([connected(user), connected(agent)]);
    assert.ok(user.client.userId);
    assert.equal(agent.client.agent?.name, "Sara");

    const open = await user.client.openTicket("Payment failed", "My card was charged twice");
    const opened = await user.client.outbox.settled(open.client_msg_id);
    assert.equal(opened.state, "sent");
    const ticketId = (opened as { ticket_id: string }).ticket_id;

    const claim = await agent.client.request({ type: "ticket.claim", ticket_id: ticketId });
    assert.equal(claim.ticket.status, "assigned");
    agent.client.follow(ticketId, 0);

    const sent: string[] = [];
    for (let i = 1; i <= 3; i++) {
      const u = await user.client.send(ticketId, `user ${i}`);
      const a = await agent.client.send(ticketId, `agent ${i}`);
      sent.push(u.client_msg_id, a.client_msg_id);
    }
    // opened, first message, claimed, then 6 messages
    const last = 9;
    await until(() => (user.events.get(ticketId)?.at(-1)?.seq ?? 0) >= last && (agent.events.get(ticketId)?.at(-1)?.seq ?? 0) >= last, 15_000, "every event on both sides");
    for (const peer of [user, agent]) {
      const events = peer.events.get(ticketId)!;
      assert.deepEqual(events.map((e) => e.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
      assert.deepEqual(events.map((e) => e.kind).slice(0, 3), ["opened", "message", "claimed"]);
      assert.equal(peer.client.cursor(ticketId), 9);
    }
    assert.deepEqual(user.events.get(ticketId), agent.events.get(ticketId));
    // Each side's own messages are stored in the order it sent them.
    const userOrder = user.events.get(ticketId)!.filter((e) => e.author.kind === "user" && e.seq > 2).map((e) => e.body);
    const agentOrder = agent.events.get(ticketId)!.filter((e) => e.author.kind === "agent" && e.kind === "message").map((e) => e.body);
    assert.deepEqual(userOrder, ["user 1", "user 2", "user 3"]);
    assert.deepEqual(agentOrder, ["agent 1", "agent 2", "agent 3"]);
    assert.equal(user.client.outbox.list().length, 0);

    // Ticks: the agent's client sends ticket.delivered as its cursor moves, then the agent reads.
    const mine = [open.client_msg_id, sent[0]!, sent[2]!, sent[4]!];
    await until(() => mine.every((id) => ticks.get(id) === "delivered"), 5000, "delivered ticks");
    agent.client.markRead(ticketId, 9);
    await until(() => mine.every((id) => ticks.get(id) === "read"), 5000, "read ticks");
    user.client.disconnect();
    agent.client.disconnect();
  });
}

test("a dead token closes the client and deletes the token", async () => {
  const user = await signInUser(hub, "json");
  await signOut(hub.url, user.token);
  const closed = new Promise((r) => user.client.on("closed", r));
  let deleted = false;
  user.client.on("token", (t) => (deleted = t === null));
  await user.client.connect();
  assert.deepEqual(await closed, { kind: "session_ended" });
  assert.equal(user.client.state, "closed");
  assert.ok(deleted);

  // Signing in again leaves `closed`.
  const phone = hub.phone();
  await requestCode(hub.url, phone);
  const session = await signIn(hub.url, phone, TEST_CODE, { id: "0c6a2f6e-1d8b-4f0e-9a51-2b7c3d4e5f60" });
  await user.client.useSession({ token: session.token, expiresAt: session.expires_at });
  await until(() => user.client.state === "connected", 10_000, "connected");
  assert.equal(user.client.userId, session.user_id);
  user.client.disconnect();
});

test("the outbox outlives the client: entries written while offline are sent by the next client on the same store", async () => {
  const store = new MemoryOutboxStore();
  const user = await signInUser(hub, "json", { outboxStore: store });
  await connected(user);
  const open = await user.client.openTicket("Offline", "first");
  const ticketId = ((await user.client.outbox.settled(open.client_msg_id)) as { ticket_id: string }).ticket_id;
  user.client.disconnect();
  const queued = [await user.client.send(ticketId, "written offline 1"), await user.client.send(ticketId, "written offline 2")];
  assert.equal((await store.load()).length, 2);

  // The app restarts: a new client on the same token and store.
  const next = new HubClient({ url: hub.url, token: user.token, WebSocket: WS, outboxStore: store, follow: { [ticketId]: 2 } });
  const done = queued.map((e) => next.outbox.settled(e.client_msg_id));
  await next.connect();
  const results = await Promise.all(done);
  assert.deepEqual(results.map((d) => (d as { seq: number }).seq), [3, 4]);
  assert.equal((await store.load()).length, 0);
  next.disconnect();
});
