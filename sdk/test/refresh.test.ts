import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { SessionToken } from "../src/client.js";
import { HubError } from "../src/errors.js";
import { me } from "../src/http.js";
import { Hub, until } from "./hub.js";
import { connected, signInUser } from "./support.js";

// A lifetime just over the hub's five-minute warning: `session.expiring` comes 3 s after auth.
const hub = new Hub({ HUB_SESSION_TTL_SECS: "303" });

before(() => hub.start());
after(() => hub.stop());

test("session.expiring refreshes the session: the new token is stored and works, the old one is dead", async () => {
  const user = await signInUser(hub, "json");
  const tokens: (SessionToken | null)[] = [];
  user.client.on("token", (t) => tokens.push(t));
  await connected(user);
  await until(() => tokens.length >= 1, 15_000, "a refresh");
  const fresh = tokens[0]!;
  assert.notEqual(fresh.token, user.token);
  assert.equal(fresh.refreshInFlight, undefined);
  assert.ok(fresh.expiresAt! > Date.now() + 290_000);
  await until(() => user.client.state === "connected", 1000);

  // Whatever refresh came last is the live token: the first one sent is dead.
  const now = tokens.at(-1)!.token;
  assert.equal((await me(hub.url, now)).user_id, user.client.userId);
  await assert.rejects(me(hub.url, user.token), (e: unknown) => e instanceof HubError && e.code === "unauthorized");

  // The socket stays authenticated, and a new socket uses the refreshed token.
  user.client.disconnect();
  await connected(user);
  const ticket = await user.client.openTicket("Still here", "after a refresh");
  assert.equal((await user.client.outbox.settled(ticket.client_msg_id)).state, "sent");
  user.client.disconnect();
});
