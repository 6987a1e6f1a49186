import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { jsonCodec, msgpackCodec } from "../src/codec.js";

const vectors: { name: string; direction: string; json: Record<string, unknown>; msgpack_hex: string }[] =
  JSON.parse(readFileSync(new URL("../../../protocol/vectors.json", import.meta.url), "utf8")).vectors;

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));

test("every vector's MessagePack bytes decode to its JSON", () => {
  for (const v of vectors) assert.deepEqual(msgpackCodec.decode(hex(v.msgpack_hex)), v.json, v.name);
});

test("every vector re-encodes to a map that decodes to the same value, in both encodings", () => {
  for (const v of vectors) {
    assert.deepEqual(msgpackCodec.decode(msgpackCodec.encode(v.json) as Uint8Array), v.json, v.name);
    assert.deepEqual(jsonCodec.decode(jsonCodec.encode(v.json) as string), v.json, v.name);
  }
});

test("client vectors encode to the hub's exact bytes when keys are in the vector's order", () => {
  for (const v of vectors.filter((v) => v.direction === "client")) {
    const bytes = Buffer.from(msgpackCodec.encode(v.json) as Uint8Array).toString("hex");
    assert.equal(bytes, v.msgpack_hex, v.name);
  }
});

test("a frame that is not a map is refused", () => {
  assert.throws(() => jsonCodec.decode("[1]"));
  assert.throws(() => msgpackCodec.decode("{}"));
});
