/**
 * Starts a real hub for the tests: the binary of HUB_BIN (default ../target/debug/anapars-hub),
 * SQLite in a temporary directory, a free loopback port, test numbers from a TOML file (quoted
 * strings: a hub reading `HUB_TEST_CODE=123456` from the environment would take it as a number).
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import type { WebSocketConstructor } from "../src/client.js";

const sdkDir = resolve(fileURLToPath(import.meta.url), "..", "..", "..");
export const HUB_BIN = resolve(sdkDir, process.env.HUB_BIN ?? "../target/debug/anapars-hub");
export const TEST_PREFIX = "+9891200";
export const TEST_CODE = "123456";
export const WS = WebSocket as unknown as WebSocketConstructor;

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolvePort(port));
    });
    server.on("error", reject);
  });
}

export class Hub {
  readonly dir: string;
  port = 0;
  private child: ChildProcess | undefined;
  private phones = 0;

  constructor(private readonly env: Record<string, string> = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "anapars-sdk-test-"));
    writeFileSync(join(this.dir, "hub.toml"), `test_phone_prefix = ${JSON.stringify(TEST_PREFIX)}\ntest_code = ${JSON.stringify(TEST_CODE)}\n`);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private dbEnv(): Record<string, string> {
    return { HUB_SQLITE_PATH: join(this.dir, "hub.sqlite") };
  }

  /** Starts the hub (on the same port and database when restarted) and waits for /readyz. */
  async start(): Promise<void> {
    if (!this.port) this.port = await freePort();
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      ...this.dbEnv(),
      HUB_LISTEN: `127.0.0.1:${this.port}`,
      HUB_ATTACHMENTS_DIR: join(this.dir, "attachments"),
      HUB_CODES_PER_IP_HOUR: "100000",
      HUB_SHUTDOWN_GRACE_MS: "1000",
      HUB_LOG_FORMAT: "text",
      RUST_LOG: process.env.RUST_LOG ?? "warn",
      ...this.env,
    };
    delete env.DATABASE_URL;
    delete env.REDIS_URL;
    const log = join(this.dir, "hub.log");
    const { openSync } = await import("node:fs");
    const out = openSync(log, "a");
    this.child = spawn(HUB_BIN, ["--config", join(this.dir, "hub.toml"), "serve"], { env, stdio: ["ignore", out, out] });
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`the hub exited: ${readFileSync(log, "utf8").slice(-2000)}`);
      try {
        const res = await fetch(`${this.url}/readyz`);
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error("the hub was not ready within 30 s");
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGKILL: no close frames, no graceful shutdown. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A fresh test number. */
  phone(): string {
    this.phones += 1;
    return `${TEST_PREFIX}${String(this.phones).padStart(5, "0")}`;
  }

  /** `anapars-hub agent add`: returns the password it prints once. */
  addAgent(email: string, name: string): string {
    const out = execFileSync(HUB_BIN, ["agent", "add", "--email", email, "--name", name], {
      env: { ...(process.env as Record<string, string>), ...this.dbEnv(), RUST_LOG: "warn" },
      encoding: "utf8",
    });
    const line = out.split("\n").find((l) => l.startsWith("password"));
    const password = line?.split(": ").pop()?.trim();
    if (!password) throw new Error(`agent add printed no password: ${out}`);
    return password;
  }
}

/** Resolves when `predicate` holds, polling; rejects after `ms`. */
export async function until(predicate: () => boolean, ms = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
