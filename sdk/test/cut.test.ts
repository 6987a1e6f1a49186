import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import type { HubClient, WebSocketConstructor } from "../src/client.js";
import type { Delivery } from "../src/outbox.js";
import type { TicketEvent, Uuid } from "../src/types.js";
import { Hub, until } from "./hub.js";
import { connected, readHistory, seededRandom, signInAgent, signInUser, type Peer } from "./support.js";

const SEND_FOR_MS = 30_000;
const USER_EVERY_MS = 100;
const AGENT_EVERY_MS = 700;
const SETTLE_MS = 60_000;

const hub = new Hub();
let agentPassword = "";

before(async () => {
  await hub.start();
  agentPassword = hub.addAgent("nima@anapars.test", "Nima");
});
after(() => hub.stop());

/**
 * A `ws` constructor that keeps a handle on the latest socket, so the test can cut it, and shows
 * every outgoing frame to `onFrame` first: a frame it answers `"drop"` for is lost in a cut.
 */
function trackedWebSocket(onFrame: (data: unknown) => "drop" | undefined): { WebSocket: WebSocketConstructor; latest: () => WebSocket | undefined; opened: () => number } {
  let latest: WebSocket | undefined;
  let opened = 0;
  class Tracked extends WebSocket {
    constructor(url: string, protocols: string | string[]) {
      super(url, protocols);
      latest = this;
      opened += 1;
      const send = this.send.bind(this);
      this.send = ((data: Parameters<WebSocket["send"]>[0], ...rest: unknown[]) => {
        if (onFrame(data) !== "drop") (send as (...a: unknown[]) => void)(data, ...rest);
      }) as WebSocket["send"];
    }
  }
  return { WebSocket: Tracked as unknown as WebSocketConstructor, latest: () => latest, opened: () => opened };
}

/** Whether an outgoing frame, JSON or MessagePack, is a `ticket.send` (the type is plain UTF-8 in both). */
function isSend(data: unknown): boolean {
  const bytes = typeof data === "string" ? Buffer.from(data) : Buffer.from(data as Uint8Array);
  return bytes.includes("ticket.send");
}

type CutKind = "terminate" | "close" | "close-then-terminate";

/**
 * Ends a socket the way a network does: `terminate` destroys the TCP connection without a close
 * frame (the client sees 1006, the hub a reset); `close` is a clean 4000 handshake, which leads to
 * a reconnect like any code outside 1000 and 4002 to 4004; `close-then-terminate` sends the close
 * frame and gives up on the echo. Returns false when there was no live socket to cut.
 */
function cut(ws: WebSocket | undefined, kind: CutKind): boolean {
  if (!ws || (ws.readyState !== WebSocket.OPEN && ws.readyState !== WebSocket.CONNECTING)) return false;
  if (kind === "terminate" || ws.readyState === WebSocket.CONNECTING) {
    ws.terminate();
  } else if (kind === "close") {
    ws.close(4000, "cut");
  } else {
    ws.close(4000, "cut");
    ws.terminate();
  }
  return true;
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Sends `body(i)` every `everyMs` through the outbox until `stop()`; ids in the order sent. */
function steadySender(client: HubClient, ticketId: Uuid, everyMs: number, body: (i: number) => string) {
  const ids: string[] = [];
  const settled: Promise<Delivery>[] = [];
  let stopped = false;
  const done = (async () => {
    const start = Date.now();
    for (let i = 0; !stopped; i++) {
      const entry = await client.send(ticketId, body(i));
      ids.push(entry.client_msg_id);
      settled.push(client.outbox.settled(entry.client_msg_id));
      await delay(Math.max(0, start + (i + 1) * everyMs - Date.now()));
    }
  })();
  return {
    ids,
    settled,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

/**
 * Asserts that `actual` is `expected`, naming what was lost, repeated or reordered first, so a
 * failure of hundreds of ids reads at a glance.
 */
function assertOnceInOrder(actual: (string | undefined)[], expected: string[], what: string): void {
  const want = new Set(expected);
  const seen = new Map<string | undefined, number>();
  for (const id of actual) seen.set(id, (seen.get(id) ?? 0) + 1);
  const lost = expected.filter((id) => !seen.has(id)).map((id) => expected.indexOf(id));
  const repeated = [...seen].filter(([id, n]) => n > 1 && id !== undefined && want.has(id)).map(([id]) => expected.indexOf(id!));
  const unknown = actual.filter((id) => id === undefined || !want.has(id)).length;
  const problems = [
    lost.length > 0 ? `${lost.length} lost (sent as number ${lost.slice(0, 10).join(", ")})` : "",
    repeated.length > 0 ? `${repeated.length} repeated (sent as number ${repeated.slice(0, 10).join(", ")})` : "",
    unknown > 0 ? `${unknown} never sent` : "",
  ].filter(Boolean);
  if (problems.length > 0) assert.fail(`${what}: ${problems.join("; ")}`);
  const firstOut = actual.findIndex((id, i) => id !== expected[i]);
  if (firstOut >= 0) assert.fail(`${what}: out of order from position ${firstOut}`);
}

/** Rejects after `ms` with `what` unless `promise` settles first. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

test("a network cut at random for 30 s under a steady send rate: nothing lost or duplicated", { timeout: 150_000 }, async (t) => {
  const seed = Number(process.env.CUT_SEED ?? Math.floor(Math.random() * 2 ** 32));
  t.diagnostic(`seed ${seed} (CUT_SEED=${seed} replays the cutter's choices)`);
  const random = seededRandom(seed);
  let onFrame: (name: "user" | "agent", data: unknown) => "drop" | undefined = () => undefined;
  const armed = new Map<"user" | "agent", CutKind>();
  const userWs = trackedWebSocket((data) => onFrame("user", data));
  const agentWs = trackedWebSocket((data) => onFrame("agent", data));
  const user = await signInUser(hub, "msgpack", { WebSocket: userWs.WebSocket, random: seededRandom(seed ^ 0x5eed) });
  const agent = await signInAgent(hub, "nima@anapars.test", agentPassword, "json", { WebSocket: agentWs.WebSocket, random: seededRandom(seed ^ 0xa9e7) });
  const reports: string[] = [];
  for (const peer of [user, agent]) peer.client.on("report", (m) => reports.push(m));

  let cutting = false;
  let cutTimer: ReturnType<typeof setTimeout> | undefined;
  const hintTimers = new Set<ReturnType<typeof setTimeout>>();
  const senders: ReturnType<typeof steadySender>[] = [];
  const cuts = { user: 0, agent: 0, sendLost: 0, replyLost: 0, missed: 0, terminate: 0, close: 0, "close-then-terminate": 0 };
  try {
    await Promise.all([connected(user), connected(agent)]);
    const open = await user.client.openTicket("Cut off", "user opens");
    const opened = await user.client.outbox.settled(open.client_msg_id);
    assert.equal(opened.state, "sent");
    const ticketId = (opened as { ticket_id: Uuid }).ticket_id;
    await agent.client.request({ type: "ticket.claim", ticket_id: ticketId });
    agent.client.follow(ticketId, 0);

    // The cutter: at random moments, the socket of the user, the agent or both ends, either at
    // once or at the next `ticket.send` frame it writes, so that cuts often land while a message
    // is in flight: the frame lost, or stored with its reply lost. The "OS" then reports the
    // network back, mostly within a second as after a Wi-Fi hand-over, else within 6 s; a client
    // whose backoff ends first reconnects on its own.
    const targets: ["user" | "agent", Peer, ReturnType<typeof trackedWebSocket>][] = [
      ["user", user, userWs],
      ["agent", agent, agentWs],
    ];
    const kinds: CutKind[] = ["terminate", "terminate", "close", "close-then-terminate"];
    const doCut = (target: (typeof targets)[number], kind: CutKind): boolean => {
      const [name, peer, ws] = target;
      if (!cutting) return false;
      if (!cut(ws.latest(), kind)) {
        cuts.missed += 1;
        return false;
      }
      cuts[name] += 1;
      cuts[kind] += 1;
      const back = random() < 0.7 ? random() * 1000 : 1000 + random() * 5000;
      const hint = setTimeout(() => {
        hintTimers.delete(hint);
        if (cutting) peer.client.networkChanged(true);
      }, Math.floor(back));
      hintTimers.add(hint);
      return true;
    };
    onFrame = (name, data) => {
      const kind = armed.get(name);
      if (!cutting || kind === undefined || !isSend(data)) return undefined;
      armed.delete(name);
      const target = targets.find(([n]) => n === name)!;
      if (random() < 0.5) {
        // The frame dies with the connection: the hub never sees it. Never dropped without a
        // cut: the client would wait for its reply on a live socket.
        if (!doCut(target, kind)) return undefined;
        cuts.sendLost += 1;
        return "drop";
      }
      // The frame reaches the hub, the reply is lost with the connection.
      cuts.replyLost += 1;
      setTimeout(() => doCut(target, kind), Math.floor(random() * 3));
      return undefined;
    };
    cutting = true;
    // The user, the agent, then both, in turn: each side is cut about as often, whatever the seed.
    let tick = 0;
    const scheduleCut = () => {
      cutTimer = setTimeout(() => {
        if (!cutting) return;
        const which = tick++ % 3;
        for (const [i, target] of targets.entries()) {
          if (which !== 2 && which !== i) continue;
          const kind = kinds[Math.floor(random() * kinds.length)]!;
          // An armed cut that found no send since the last tick happens now.
          if (random() < 0.5 && !armed.has(target[0])) armed.set(target[0], kind);
          else {
            armed.delete(target[0]);
            doCut(target, kind);
          }
        }
        scheduleCut();
      }, 300 + Math.floor(random() * 2700));
    };
    scheduleCut();

    const userSender = steadySender(user.client, ticketId, USER_EVERY_MS, (i) => `user ${i}`);
    const agentSender = steadySender(agent.client, ticketId, AGENT_EVERY_MS, (i) => `agent ${i}`);
    senders.push(userSender, agentSender);
    await delay(SEND_FOR_MS);
    await Promise.all([userSender.stop(), agentSender.stop()]);

    // The network is back for good: the clients reconnect within a second, whatever their backoff.
    cutting = false;
    clearTimeout(cutTimer);
    for (const h of hintTimers) clearTimeout(h);
    user.client.networkChanged(true);
    agent.client.networkChanged(true);

    const deliveries = await within(Promise.all([...userSender.settled, ...agentSender.settled]), SETTLE_MS, "every message to settle");
    const failed = deliveries.filter((d) => d.state !== "sent");
    assert.deepEqual(failed, [], "no message failed");
    assert.deepEqual(user.client.outbox.list(), []);
    assert.deepEqual(agent.client.outbox.list(), []);
    const duplicates = deliveries.filter((d) => d.state === "sent" && d.duplicate).length;

    await Promise.all([connected(user), connected(agent)]);
    const history = await readHistory(user.client, ticketId);
    assert.deepEqual(history.map((e) => e.seq), history.map((_, i) => i + 1), "the history has no gap");
    const userMessages = history.filter((e) => e.kind === "message" && e.author.kind === "user");
    const agentMessages = history.filter((e) => e.kind === "message" && e.author.kind === "agent");
    // Each side's messages are stored once each, in the order sent, and nothing else of theirs.
    assertOnceInOrder(userMessages.map((e) => e.client_msg_id), [open.client_msg_id, ...userSender.ids], "the user's messages in the history");
    assert.deepEqual(userMessages.map((e) => e.body), ["user opens", ...userSender.ids.map((_, i) => `user ${i}`)]);
    assertOnceInOrder(agentMessages.map((e) => e.client_msg_id), agentSender.ids, "the agent's messages in the history");
    assert.deepEqual(agentMessages.map((e) => e.body), agentSender.ids.map((_, i) => `agent ${i}`));

    // Both listeners saw the whole stream once, in seq order: the other side's messages included.
    const last = history.at(-1)!.seq;
    const shape = (e: TicketEvent) => ({ seq: e.seq, kind: e.kind, author: e.author.kind, client_msg_id: e.client_msg_id });
    for (const [name, peer] of [["user", user], ["agent", agent]] as const) {
      await until(() => (peer.events.get(ticketId)?.at(-1)?.seq ?? 0) >= last, 30_000, `the ${name}'s stream to reach seq ${last}`);
      const seen = peer.events.get(ticketId)!;
      const other = name === "user" ? agentSender.ids : [open.client_msg_id, ...userSender.ids];
      assertOnceInOrder(seen.filter((e) => e.kind === "message" && e.author.kind !== name).map((e) => e.client_msg_id), other, `the ${name}'s listener, the other side's messages`);
      assertOnceInOrder(seen.map((e) => String(e.seq)), history.map((e) => String(e.seq)), `the ${name}'s listener, seqs`);
      assert.deepEqual(peer.events.get(ticketId)!.map(shape), history.map(shape), `the ${name}'s listener saw every event once, in order`);
    }

    t.diagnostic(
      `sent: user ${userSender.ids.length}, agent ${agentSender.ids.length}; resends answered duplicate: ${duplicates}; ` +
        `cuts: user ${cuts.user}, agent ${cuts.agent} (terminate ${cuts.terminate}, close ${cuts.close}, close then terminate ${cuts["close-then-terminate"]}; at a ticket.send: ${cuts.sendLost} frame lost, ${cuts.replyLost} reply lost; ` +
        `${cuts.missed} found no live socket); sockets opened: user ${userWs.opened()}, agent ${agentWs.opened()}; events ${last}`,
    );
    assert.ok(cuts.user >= 3 && cuts.agent >= 3, `both clients were cut several times: ${JSON.stringify(cuts)}`);
  } catch (err) {
    if (reports.length > 0) t.diagnostic(`client reports: ${reports.slice(-20).join(" | ")}`);
    throw err;
  } finally {
    cutting = false;
    clearTimeout(cutTimer);
    for (const h of hintTimers) clearTimeout(h);
    await Promise.all(senders.map((s) => s.stop()));
    user.client.disconnect();
    agent.client.disconnect();
  }
});
