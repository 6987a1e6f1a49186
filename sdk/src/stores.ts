/**
 * Durable stores for the outbox and the session token (CLIENTS.md sections 5 and 6), so that an
 * app restart loses neither an unsent message nor a refreshed token:
 *
 * - `KeyValueOutboxStore` and `KeyValueTokenStore` over any storage with `getItem`, `setItem` and
 *   `removeItem`, synchronous or not: React Native's AsyncStorage, a browser's `localStorage` or
 *   `sessionStorage`, or an app's own (encrypted) storage with the same three methods.
 * - `IndexedDbOutboxStore` for browsers: one record per entry, each write its own transaction
 *   with strict durability.
 */
import type { OutboxEntry, OutboxStore } from "./outbox.js";
import type { SessionToken, TokenStore } from "./client.js";

/** The three methods of Web Storage and of React Native's AsyncStorage. */
export interface KeyValueStorage {
  getItem(key: string): string | null | Promise<string | null>;
  setItem(key: string, value: string): void | Promise<void>;
  removeItem(key: string): void | Promise<void>;
}

/**
 * The outbox as one JSON value under one key. Writes are serialised (each reads the value the
 * previous one wrote), so concurrent `put`s never lose one another; the outbox holds only messages
 * not yet acknowledged, so the value stays small. An unreadable value (damaged, or written by
 * something else) is treated as empty and reported once through `onDamaged`.
 */
export class KeyValueOutboxStore implements OutboxStore {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly storage: KeyValueStorage,
    private readonly key = "anapars.outbox",
    private readonly onDamaged: (err: unknown) => void = () => {},
  ) {}

  load(): Promise<OutboxEntry[]> {
    return this.serial(async () => Object.values(await this.read()));
  }

  put(entry: OutboxEntry): Promise<void> {
    return this.serial(async () => {
      const all = await this.read();
      all[entry.client_msg_id] = { ...entry };
      await this.storage.setItem(this.key, JSON.stringify(all));
    });
  }

  delete(clientMsgId: string): Promise<void> {
    return this.serial(async () => {
      const all = await this.read();
      if (!(clientMsgId in all)) return;
      delete all[clientMsgId];
      if (Object.keys(all).length === 0) await this.storage.removeItem(this.key);
      else await this.storage.setItem(this.key, JSON.stringify(all));
    });
  }

  private async read(): Promise<Record<string, OutboxEntry>> {
    const text = await this.storage.getItem(this.key);
    if (!text) return {};
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
        const entries: Record<string, OutboxEntry> = {};
        for (const [id, e] of Object.entries(parsed as Record<string, unknown>)) if (isEntry(e) && e.client_msg_id === id) entries[id] = e;
        return entries;
      }
      throw new TypeError("the stored outbox is not an object");
    } catch (err) {
      this.onDamaged(err);
      return {};
    }
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const next = this.chain.then(op, op);
    this.chain = next.catch(() => {});
    return next;
  }
}

/** The session token under one key, as JSON. `save(null)` removes it. */
export class KeyValueTokenStore implements TokenStore {
  constructor(
    private readonly storage: KeyValueStorage,
    private readonly key = "anapars.session",
  ) {}

  async load(): Promise<SessionToken | null> {
    const text = await this.storage.getItem(this.key);
    if (!text) return null;
    try {
      const parsed = JSON.parse(text) as SessionToken;
      return parsed && typeof parsed.token === "string" ? parsed : null;
    } catch {
      return null;
    }
  }

  async save(token: SessionToken | null): Promise<void> {
    if (token === null) await this.storage.removeItem(this.key);
    else await this.storage.setItem(this.key, JSON.stringify(token));
  }
}

function isEntry(value: unknown): value is OutboxEntry {
  const e = value as Partial<OutboxEntry> | null;
  return (
    !!e &&
    typeof e === "object" &&
    typeof e.client_msg_id === "string" &&
    (e.kind === "open" || e.kind === "send") &&
    typeof e.body === "string" &&
    typeof e.order === "number"
  );
}

/** The parts of the browser's IndexedDB API the store uses (typed loosely: no DOM lib needed). */
interface IdbRequest<T> {
  result: T;
  error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface IdbOpenRequest extends IdbRequest<IdbDatabase> {
  onupgradeneeded: (() => void) | null;
  onblocked: (() => void) | null;
}
interface IdbTransaction {
  objectStore(name: string): IdbObjectStore;
  oncomplete: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
  error: unknown;
}
interface IdbObjectStore {
  getAll(): IdbRequest<unknown[]>;
  put(value: unknown): IdbRequest<unknown>;
  delete(key: string): IdbRequest<unknown>;
}
interface IdbDatabase {
  objectStoreNames: { contains(name: string): boolean };
  createObjectStore(name: string, options: { keyPath: string }): unknown;
  transaction(store: string, mode: "readonly" | "readwrite", options?: { durability?: "strict" | "relaxed" | "default" }): IdbTransaction;
  close(): void;
}
interface IdbFactory {
  open(name: string, version?: number): IdbOpenRequest;
}

const IDB_STORE = "outbox";

/**
 * The outbox in IndexedDB (browsers): database `name`, object store `outbox`, one record per
 * entry keyed by `client_msg_id`. A write resolves when its transaction has committed.
 */
export class IndexedDbOutboxStore implements OutboxStore {
  private db: Promise<IdbDatabase> | undefined;

  constructor(
    private readonly name = "anapars-hub-client",
    private readonly factory?: IdbFactory,
  ) {}

  async load(): Promise<OutboxEntry[]> {
    const records = await this.run("readonly", (s) => s.getAll());
    return (records as unknown[]).filter(isEntry);
  }

  async put(entry: OutboxEntry): Promise<void> {
    await this.run("readwrite", (s) => s.put({ ...entry }));
  }

  async delete(clientMsgId: string): Promise<void> {
    await this.run("readwrite", (s) => s.delete(clientMsgId));
  }

  /** Closes the database (for example before deleting it at sign-out). */
  async close(): Promise<void> {
    const db = this.db;
    this.db = undefined;
    if (db) (await db).close();
  }

  private open(): Promise<IdbDatabase> {
    this.db ??= new Promise<IdbDatabase>((resolve, reject) => {
      const factory = this.factory ?? (globalThis as { indexedDB?: IdbFactory }).indexedDB;
      if (!factory) return reject(new TypeError("no indexedDB here: use KeyValueOutboxStore"));
      const req = factory.open(this.name, 1);
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(IDB_STORE)) req.result.createObjectStore(IDB_STORE, { keyPath: "client_msg_id" });
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new Error("the outbox database is held open by an older version of this app"));
    });
    this.db.catch(() => {
      this.db = undefined;
    });
    return this.db;
  }

  private async run<T>(mode: "readonly" | "readwrite", op: (store: IdbObjectStore) => IdbRequest<T>): Promise<T> {
    const db = await this.open();
    return new Promise<T>((resolve, reject) => {
      const tx = db.transaction(IDB_STORE, mode, { durability: "strict" });
      const req = op(tx.objectStore(IDB_STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error ?? req.error);
      tx.onabort = () => reject(tx.error ?? new Error("the outbox transaction was aborted"));
    });
  }
}
