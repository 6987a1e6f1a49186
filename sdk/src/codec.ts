/**
 * The two encodings of protocol v1 (PROTOCOL.md, "Encodings and subprotocol negotiation"): one
 * JSON object per text frame, or one MessagePack map per binary frame, carrying identical values.
 */
import { decode as msgpackDecode, encode as msgpackEncode } from "@msgpack/msgpack";
import type { ClientFrame, ServerFrame } from "./types.js";

export type Encoding = "json" | "msgpack";

/** The subprotocol the client offers, exactly one per socket (CLIENTS.md section 11). */
export const SUBPROTOCOL: Record<Encoding, string> = {
  json: "anapars.v1.json",
  msgpack: "anapars.v1.msgpack",
};

/** What a WebSocket hands over: a string for text frames, bytes for binary ones. */
export type WireData = string | ArrayBuffer | ArrayBufferView;

export interface Codec {
  readonly encoding: Encoding;
  readonly subprotocol: string;
  encode(frame: ClientFrame | Record<string, unknown>): string | Uint8Array;
  decode(data: WireData): ServerFrame;
}

function bytesOf(data: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

function asMap(value: unknown): ServerFrame {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new TypeError("a frame is not a map");
  }
  return value as ServerFrame;
}

export const jsonCodec: Codec = {
  encoding: "json",
  subprotocol: SUBPROTOCOL.json,
  encode: (frame) => JSON.stringify(frame),
  decode(data) {
    const text = typeof data === "string" ? data : new TextDecoder().decode(bytesOf(data));
    return asMap(JSON.parse(text));
  },
};

/**
 * MessagePack with the hub's rules: integers in their smallest form (so never a float for a whole
 * number), `null` as nil, strings as `str`. Large integers decode as `number`: seqs, ids and times
 * stay below 2^53.
 */
export const msgpackCodec: Codec = {
  encoding: "msgpack",
  subprotocol: SUBPROTOCOL.msgpack,
  encode: (frame) => msgpackEncode(frame, { ignoreUndefined: true }),
  decode(data) {
    if (typeof data === "string") throw new TypeError("a MessagePack frame arrived as text");
    return asMap(msgpackDecode(bytesOf(data), { useBigInt64: false }));
  },
};

export function codecFor(encoding: Encoding): Codec {
  return encoding === "msgpack" ? msgpackCodec : jsonCodec;
}
