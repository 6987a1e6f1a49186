import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Hub, TEST_CODE } from "./hub.js";
import { connected, signInAgent } from "./support.js";

const sdkDir = resolve(fileURLToPath(import.meta.url), "..", "..", "..");
const hub = new Hub();
let agentPassword = "";

before(async () => {
  await hub.start();
  agentPassword = hub.addAgent("omid@anapars.test", "Omid");
});
after(() => hub.stop());

function run(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, ["examples/quickstart.mjs", ...args], { cwd: sdkDir, env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test("examples/quickstart.mjs signs in, opens a ticket, sends a message and exits 0", async () => {
  const phone = hub.phone();
  const result = await run([phone, TEST_CODE], { HUB_URL: hub.url });
  assert.equal(result.code, 0, `the example failed:\n${result.stdout}\n${result.stderr}`);
  assert.match(result.stdout, /^connection: connected$/m);
  assert.match(result.stdout, /^event 1: opened/m);
  const ticketId = /^ticket ([0-9a-f-]{36})$/m.exec(result.stdout)?.[1];
  assert.ok(ticketId, `no ticket id in:\n${result.stdout}`);

  // The hub has what the example sent.
  const agent = await signInAgent(hub, "omid@anapars.test", agentPassword, "json");
  await connected(agent);
  const history = await agent.client.request({ type: "ticket.history", ticket_id: ticketId });
  const bodies = history.events.filter((e) => e.kind === "message").map((e) => e.body);
  assert.deepEqual(bodies, ["Hello from the quickstart", "A second message, sent on the open ticket"]);
  assert.ok(history.events.every((e) => e.author.kind !== "agent"));
  agent.client.disconnect();
});

test("examples/quickstart.mjs exits non-zero with the hub's code on a wrong sign-in code", async () => {
  const result = await run([], { HUB_URL: hub.url, HUB_PHONE: hub.phone(), HUB_CODE: "000000" });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /the hub refused: code_invalid/);
});
