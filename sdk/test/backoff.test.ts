import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffCeiling, backoffDelay, LONG_BACKOFF } from "../src/backoff.js";

test("the ceiling doubles from 500 ms and stops at 30 s", () => {
  assert.deepEqual([0, 1, 2, 3, 6, 7, 50, 5000].map((a) => backoffCeiling(a)), [500, 1000, 2000, 4000, 30_000, 30_000, 30_000, 30_000]);
  assert.equal(backoffCeiling(5), 16_000);
});

test("full jitter: the delay spans 0 to the ceiling", () => {
  assert.equal(backoffDelay(3, { random: () => 0 }), 0);
  assert.equal(backoffDelay(3, { random: () => 0.999999 }), 3999);
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelay(4);
    assert.ok(d >= 0 && d < 8000);
  }
});

test("the long backoff starts at 30 s and stops at 5 minutes", () => {
  assert.equal(backoffCeiling(0, LONG_BACKOFF), 30_000);
  assert.equal(backoffCeiling(4, LONG_BACKOFF), 300_000);
});

test("a hint from the hub is never undercut", () => {
  assert.equal(backoffDelay(0, { random: () => 0.5, retryAfterMs: 2000 }), 2000);
  assert.equal(backoffDelay(5, { random: () => 0.5, retryAfterMs: 20 }), 8000);
});
