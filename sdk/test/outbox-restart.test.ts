import { after, before, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { HubClient } from "../src/client.js";
import { requestCode, signIn } from "../src/http.js";
import { newClientMsgId } from "../src/outbox.js";
import { KeyValueOutboxStore, KeyValueTokenStore } from "../src/stores.js";
import type { Uuid } from "../src/types.js";
import type { ChildArgs, ChildLine } from "./child-sender.js";
import { FileStorage } from "./file-storage.js";
import { Hub, TEST_CODE, WS, until } from "./hub.js";
import { readHistory } from "./support.js";

const CHILD = fileURLToPath(new URL("./child-sender.js", import.meta.url));

const hub = new Hub();
const children = new Set<ChildProcess>();
const dirs: string[] = [];

before(() => hub.start());
after(async () => {
  for (const child of children) child.kill("SIGKILL");
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  await hub.stop();
});

/** A client process and the lines it printed so far. */
class Child {
  readonly lines: ChildLine[] = [];
  readonly exited: Promise<number | null>;
  private stderr = "";
  private readonly process: ChildProcess;

  constructor(args: ChildArgs) {
    this.process = spawn(process.execPath, [CHILD, JSON.stringify(args)], { stdio: ["ignore", "pipe", "pipe"] });
    children.add(this.process);
    createInterface({ input: this.process.stdout! }).on("line", (line) => this.lines.push(JSON.parse(line) as ChildLine));
    this.process.stderr!.on("data", (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) =>
      // `close`, not `exit`: every line the process wrote has been read by then.
      this.process.once("close", (code) => {
        children.delete(this.process);
        resolve(code);
      }),
    );
  }

  /** Waits for a line that `pick` maps to a value; fails early if the process exits. */
  async waitFor<T>(pick: (line: ChildLine) => T | undefined, ms: number, what: string): Promise<T> {
    let found: T | undefined;
    await until(
      () => {
        for (const line of this.lines) if ((found = pick(line)) !== undefined) return true;
        if (this.process.exitCode !== null) throw new Error(`the child exited (${this.process.exitCode}) before ${what}: ${this.stderr}`);
        return false;
      },
      ms,
      what,
    );
    return found!;
  }

  async kill(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    this.process.kill("SIGKILL");
    await this.exited;
  }

  queued(): string[] {
    return this.lines.flatMap((l) => ("queued" in l ? [l.id] : []));
  }

  acknowledged(): string[] {
    return this.lines.flatMap((l) => ("sent" in l ? [l.sent] : []));
  }

  reports(): string[] {
    return this.lines.flatMap((l) => ("report" in l ? [l.report] : []));
  }
}

/**
 * Signs a user in, saves the token in a fresh storage directory for the children, and opens a
 * ticket from this process. Returns the ticket and a client of the same session to read history.
 */
async function setUp(): Promise<{ dir: string; ticketId: Uuid; reader: HubClient }> {
  const dir = mkdtempSync(join(tmpdir(), "anapars-sdk-outbox-"));
  dirs.push(dir);
  const phone = hub.phone();
  await requestCode(hub.url, phone);
  const session = await signIn(hub.url, phone, TEST_CODE, { id: newClientMsgId(), name: "restart test" });
  await new KeyValueTokenStore(new FileStorage(dir)).save({ token: session.token, expiresAt: session.expires_at, receivedAt: Date.now() });
  const reader = new HubClient({ url: hub.url, token: session.token, WebSocket: WS, followOpened: false });
  await reader.connect();
  await until(() => reader.state === "connected", 15_000, "connected");
  const open = await reader.openTicket("Restarted", "opening");
  const opened = await reader.outbox.settled(open.client_msg_id);
  assert.equal(opened.state, "sent");
  return { dir, ticketId: (opened as { ticket_id: Uuid }).ticket_id, reader };
}

/** The user's messages after the opening one, as stored. */
async function storedMessages(reader: HubClient, ticketId: Uuid): Promise<{ id: string; body: string }[]> {
  if (reader.state !== "connected") await reader.connect();
  await until(() => reader.state === "connected", 15_000, "connected");
  const history = await readHistory(reader, ticketId);
  return history.filter((e) => e.kind === "message" && e.seq > 2).map((e) => ({ id: e.client_msg_id!, body: e.body ?? "" }));
}

async function storeIsEmpty(dir: string): Promise<void> {
  assert.deepEqual(await new KeyValueOutboxStore(new FileStorage(dir)).load(), [], "the outbox store is empty");
}

function report(t: TestContext, child: Child, name: string): void {
  const reports = child.reports();
  if (reports.length > 0) t.diagnostic(`${name} reported: ${reports.slice(-10).join(" | ")}`);
}

test("messages queued while the hub is down survive the client process being killed: the next process sends each once, in order", { timeout: 90_000 }, async (t) => {
  const { dir, ticketId, reader } = await setUp();
  const started = Date.now();
  const N = 25;
  try {
    reader.disconnect();
    await hub.kill();

    const first = new Child({ mode: "queue", url: hub.url, dir, ticketId, encoding: "json", count: N });
    await first.waitFor((l) => ("all_queued" in l ? l.all_queued : undefined), 15_000, "every message stored");
    await first.kill();
    const queued = first.queued();
    assert.equal(queued.length, N);
    assert.deepEqual(first.acknowledged(), [], "nothing could go with the hub down");

    await hub.start();
    const second = new Child({ mode: "flush", url: hub.url, dir, ticketId, encoding: "msgpack" });
    const restored = await second.waitFor((l) => ("restored" in l ? l.restored : undefined), 15_000, "the restored entries");
    assert.deepEqual(restored.map((e) => e.id), queued, "the store held every message, in order");
    const flushed = await second.waitFor((l) => ("flushed" in l ? l.flushed : undefined), 30_000, "the outbox to empty");
    report(t, second, "the second process");
    assert.ok(flushed.every((d) => d.state === "sent"), JSON.stringify(flushed));
    assert.equal(await second.exited, 0);
    await storeIsEmpty(dir);

    const stored = await storedMessages(reader, ticketId);
    assert.deepEqual(stored.map((m) => m.id), queued);
    assert.deepEqual(stored.map((m) => m.body), queued.map((_, i) => `m ${i}`));
    t.diagnostic(`${N} messages queued offline, the process killed, all sent once by the next one; ${Date.now() - started} ms`);
  } finally {
    reader.disconnect();
  }
});

test("a client process killed mid-stream: acknowledged messages are gone from the store, the rest are sent once by the next process, in order", { timeout: 90_000 }, async (t) => {
  const { dir, ticketId, reader } = await setUp();
  const started = Date.now();
  // 200 messages a second against the client's pacing of 40 frames a second: a backlog builds.
  const N = 400;
  try {
    const first = new Child({ mode: "queue", url: hub.url, dir, ticketId, encoding: "msgpack", count: N, burst: 20, everyMs: 100 });
    // Kill once a number of messages went through and several more wait in the store.
    await first.waitFor(() => (first.acknowledged().length >= 10 && first.queued().length - first.acknowledged().length >= 5 ? true : undefined), 30_000, "a backlog");
    await first.kill();
    const queued = first.queued();
    const acknowledged = first.acknowledged();
    report(t, first, "the first process");
    assert.ok(acknowledged.length < N, "the first process was killed before it finished");
    assert.deepEqual(acknowledged, queued.slice(0, acknowledged.length), "acknowledged in the order queued");

    const second = new Child({ mode: "flush", url: hub.url, dir, ticketId, encoding: "json" });
    const restored = await second.waitFor((l) => ("restored" in l ? l.restored : undefined), 15_000, "the restored entries");
    // Acknowledged entries were deleted before their delivery was reported. At most one more may
    // have been acknowledged and deleted without the report reaching stdout before the kill.
    assert.ok(restored.length > 0, "some messages were stored but not acknowledged when the process was killed");
    const firstRestored = Number(restored[0]!.body.slice(2));
    assert.ok(firstRestored === acknowledged.length || firstRestored === acknowledged.length + 1, `the store resumes after the acknowledged ones: ${firstRestored} after ${acknowledged.length}`);
    assert.deepEqual(restored.map((e) => e.body), restored.map((_, i) => `m ${firstRestored + i}`), "the store holds a run of messages in order");
    for (const [i, id] of queued.entries()) if (i >= firstRestored) assert.equal(restored[i - firstRestored]?.id, id, `m ${i} is restored under its id`);
    const total = firstRestored + restored.length;
    assert.ok(total >= queued.length);

    const flushed = await second.waitFor((l) => ("flushed" in l ? l.flushed : undefined), 30_000, "the outbox to empty");
    report(t, second, "the second process");
    assert.ok(flushed.every((d) => d.state === "sent"), JSON.stringify(flushed));
    assert.equal(await second.exited, 0);
    await storeIsEmpty(dir);

    // Exactly once, in order: the messages of both processes, with the ids they were queued under.
    const stored = await storedMessages(reader, ticketId);
    assert.deepEqual(stored.map((m) => m.body), Array.from({ length: total }, (_, i) => `m ${i}`));
    assert.deepEqual(stored.slice(0, queued.length).map((m) => m.id), queued);
    assert.deepEqual(stored.slice(firstRestored).map((m) => m.id), restored.map((e) => e.id));
    const duplicates = flushed.filter((d) => d.state === "sent" && d.duplicate).length;
    t.diagnostic(
      `killed after ${queued.length} queued, ${acknowledged.length} acknowledged; ${restored.length} restored, ` +
        `${duplicates} of them already stored (duplicate); ${total} stored in all; ${Date.now() - started} ms`,
    );
  } finally {
    reader.disconnect();
  }
});
