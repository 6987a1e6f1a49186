export * from "./types.js";
export * from "./codec.js";
export * from "./backoff.js";
export * from "./errors.js";
export * from "./outbox.js";
export * from "./http.js";
export * from "./receipts.js";
export * from "./client.js";
