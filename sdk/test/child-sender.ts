/**
 * A client in its own process, for outbox-restart.test.ts: the parent kills it with SIGKILL as an
 * OS kills an app. The token and the outbox live in a `FileStorage` directory; the token is put
 * there by the parent. Argument: one JSON `ChildArgs`. Output: one JSON `ChildLine` per line.
 *
 * - `queue`: queues `count` messages (`m 0`, `m 1`, ...), `burst` at a time every `everyMs`, and
 *   prints `queued` once each is in the store and `sent` once each is acknowledged (and so gone
 *   from the store).
 * - `flush`: prints the entries restored from the store, connects, and prints `flushed` with their
 *   deliveries once the outbox is empty; then exits.
 */
import { HubClient } from "../src/client.js";
import type { Encoding } from "../src/codec.js";
import type { Delivery } from "../src/outbox.js";
import { KeyValueOutboxStore, KeyValueTokenStore } from "../src/stores.js";
import { FileStorage } from "./file-storage.js";
import { WS } from "./hub.js";

export interface ChildArgs {
  mode: "queue" | "flush";
  url: string;
  dir: string;
  ticketId: string;
  encoding: Encoding;
  count?: number;
  burst?: number;
  everyMs?: number;
}

export type ChildLine =
  | { queued: number; id: string }
  | { all_queued: number }
  | { sent: string; seq: number; duplicate: boolean }
  | { restored: { id: string; body: string }[] }
  | { flushed: Delivery[] }
  | { report: string };

function say(line: ChildLine): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2]!) as ChildArgs;
  const storage = new FileStorage(args.dir);
  const outboxStore = new KeyValueOutboxStore(storage, undefined, (err) => say({ report: `damaged outbox: ${String(err)}` }));
  const client = new HubClient({
    url: args.url,
    tokenStore: new KeyValueTokenStore(storage),
    outboxStore,
    encoding: args.encoding,
    WebSocket: WS,
    // No cursor survives here: replay the ticket, so stored messages complete their entries.
    follow: { [args.ticketId]: 0 },
  });
  client.on("report", (m) => say({ report: m }));
  client.on("delivery", (d) => {
    if (d.state === "sent") say({ sent: d.client_msg_id, seq: d.seq, duplicate: d.duplicate });
  });

  if (args.mode === "queue") {
    await client.connect();
    const count = args.count ?? 10;
    const burst = args.burst ?? count;
    for (let i = 0; i < count; i++) {
      const entry = await client.send(args.ticketId, `m ${i}`);
      say({ queued: i, id: entry.client_msg_id });
      if ((i + 1) % burst === 0) await new Promise((r) => setTimeout(r, args.everyMs ?? 0));
    }
    say({ all_queued: count });
    // Wait to be killed.
    setInterval(() => {}, 60_000);
    return;
  }

  await client.outbox.load();
  const restored = client.outbox.list();
  say({ restored: restored.map((e) => ({ id: e.client_msg_id, body: e.body })) });
  const deliveries = Promise.all(restored.map((e) => client.outbox.settled(e.client_msg_id)));
  await client.connect();
  const flushed = await deliveries;
  say({ flushed });
  client.disconnect();
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`${String(err?.stack ?? err)}\n`);
  process.exit(1);
});
