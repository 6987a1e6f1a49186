// The SDK in one file: sign in with a phone number and code over HTTP, open a ticket on the
// socket, listen for its events, send a message, print what happens, exit.
//
//   node examples/quickstart.mjs +989120000001 123456
//
// Environment: HUB_URL (default http://127.0.0.1:8080), HUB_PHONE and HUB_CODE instead of the
// arguments. Build the SDK first (npm run build): this imports ../dist/index.js.
import WebSocket from "ws";
import { HubClient, HubError, requestCode, signIn } from "../dist/index.js";

const HUB = process.env.HUB_URL ?? "http://127.0.0.1:8080";
const phone = process.argv[2] ?? process.env.HUB_PHONE;
const code = process.argv[3] ?? process.env.HUB_CODE;
if (!phone || !code) {
  console.error("usage: node examples/quickstart.mjs <phone> <code>   (or HUB_PHONE and HUB_CODE)");
  process.exit(2);
}

// Nothing here should take long against a local hub: give up rather than hang.
const deadline = setTimeout(() => {
  console.error("gave up after 30 s");
  process.exit(1);
}, 30_000);

try {
  const sent = await requestCode(HUB, phone);
  console.log(`code requested (valid for ${Math.round(sent.expires_in_ms / 1000)} s)`);
  // The installation's id is generated once and kept by a real app; a new one per run is fine here.
  const session = await signIn(HUB, phone, code, { id: crypto.randomUUID(), name: "quickstart" });
  console.log(`signed in: user ${session.user_id}${session.new_user ? " (new)" : ""}`);

  const client = new HubClient({
    url: HUB,
    token: { token: session.token, expiresAt: session.expires_at, receivedAt: Date.now() },
    WebSocket, // Node 20 has no global WebSocket
  });
  client.on("state", (state) => console.log(`connection: ${state}`));
  client.on("report", (message) => console.log(`report: ${message}`));
  client.on("delivery", (d) => console.log(`message ${d.client_msg_id}: ${d.state}`));

  const events = [];
  client.on("ticket.event", (event) => {
    events.push(event);
    const who = event.author.kind === "system" ? "system" : `${event.author.kind} ${event.author.id.slice(0, 8)}`;
    console.log(`event ${event.seq}: ${event.kind} by ${who}${event.body ? `: ${event.body}` : ""}`);
  });

  await client.connect();

  // Messages go through the outbox: `settled` resolves once the hub stored them (or refused them).
  const open = await client.openTicket("Quickstart", "Hello from the quickstart");
  const opened = await client.outbox.settled(open.client_msg_id);
  if (opened.state !== "sent") throw new Error(`the ticket was not opened: ${opened.code ?? opened.state}`);
  console.log(`ticket ${opened.ticket_id}`);

  const message = await client.send(opened.ticket_id, "A second message, sent on the open ticket");
  const stored = await client.outbox.settled(message.client_msg_id);
  if (stored.state !== "sent") throw new Error(`the message was not stored: ${stored.code ?? stored.state}`);

  // The client follows the ticket it opened: wait until our message comes back as an event.
  while (!events.some((e) => e.client_msg_id === message.client_msg_id)) await new Promise((r) => setTimeout(r, 50));

  const history = await client.request({ type: "ticket.history", ticket_id: opened.ticket_id });
  console.log(`history: ${history.events.length} events`);
  client.disconnect();
  clearTimeout(deadline);
  console.log("done");
} catch (err) {
  console.error(err instanceof HubError ? `the hub refused: ${err.code} (${err.message})` : err);
  process.exit(1);
}
