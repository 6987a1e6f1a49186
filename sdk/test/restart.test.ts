import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { ConnectionState } from "../src/client.js";
import type { TicketEvent } from "../src/types.js";
import { Hub, until } from "./hub.js";
import { connected, signInAgent, signInUser } from "./support.js";

const hub = new Hub();
let agentPassword = "";

before(async () => {
  await hub.start();
  agentPassword = hub.addAgent("reza@anapars.test", "Reza");
});
after(() => hub.stop());

test("the hub killed and restarted mid-conversation: every message stored once, in order", async () => {
  const user = await signInUser(hub, "msgpack");
  const agent = await signInAgent(hub, "reza@anapars.test", agentPassword, "json");
  const states: ConnectionState[] = [];
  user.client.on("state", (s) => states.push(s));
  await Promise.all([connected(user), connected(agent)]);

  const open = await user.client.openTicket("Card blocked", "message 0");
  const opened = await user.client.outbox.settled(open.client_msg_id);
  const ticketId = (opened as { ticket_id: string }).ticket_id;
  await agent.client.request({ type: "ticket.claim", ticket_id: ticketId });
  agent.client.follow(ticketId, 0);

  const ids: string[] = [open.client_msg_id];
  const settled: Promise<unknown>[] = [];
  for (let i = 1; i <= 30; i++) {
    const entry = await user.client.send(ticketId, `message ${i}`);
    ids.push(entry.client_msg_id);
    settled.push(user.client.outbox.settled(entry.client_msg_id));
    if (i === 10) {
      await hub.kill();
    }
    if (i === 20) await hub.start();
    await new Promise((r) => setTimeout(r, 20));
  }
  const results = await Promise.all(settled);
  assert.ok(results.every((d) => (d as { state: string }).state === "sent"), JSON.stringify(results.filter((d) => (d as { state: string }).state !== "sent")));
  assert.ok(states.includes("disconnected"), "the user's client saw the connection drop");
  await connected(user);
  await connected(agent, 30_000);

  // The stored history: every message once, in the order sent.
  const history = await user.client.request({ type: "ticket.history", ticket_id: ticketId, after_seq: 0, limit: 100 });
  const messages = history.events.filter((e) => e.kind === "message" && e.author.kind === "user");
  assert.deepEqual(messages.map((e) => e.client_msg_id), ids);
  assert.deepEqual(messages.map((e) => e.body), ids.map((_, i) => `message ${i}`));
  const seqs = history.events.map((e) => e.seq);
  assert.deepEqual(seqs, seqs.map((_, i) => i + 1));

  // Both clients resumed from their cursors: their streams have every event once, no gap.
  const last = seqs.at(-1)!;
  for (const peer of [user, agent]) {
    await until(() => (peer.events.get(ticketId)?.at(-1)?.seq ?? 0) >= last, 15_000, "resume");
    const got = peer.events.get(ticketId)!.map((e: TicketEvent) => e.seq);
    assert.deepEqual(got, got.map((_, i) => i + 1));
  }
  assert.equal(user.client.outbox.list().length, 0);
  user.client.disconnect();
  agent.client.disconnect();
});
