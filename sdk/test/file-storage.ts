/**
 * A `KeyValueStorage` on the file system, for tests that kill the client's process: one file per
 * key in a directory. A write goes to a temporary file that is fsynced and renamed over the key's
 * file, then the directory is fsynced, so a killed process leaves either the old value or the new
 * one, never a torn one.
 */
import { open, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { KeyValueStorage } from "../src/stores.js";

export class FileStorage implements KeyValueStorage {
  private temps = 0;

  constructor(private readonly dir: string) {}

  private file(key: string): string {
    return join(this.dir, encodeURIComponent(key));
  }

  async getItem(key: string): Promise<string | null> {
    try {
      return await readFile(this.file(key), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
  }

  async setItem(key: string, value: string): Promise<void> {
    this.temps += 1;
    const temp = join(this.dir, `.${encodeURIComponent(key)}.${process.pid}.${this.temps}.tmp`);
    const handle = await open(temp, "w");
    try {
      await handle.writeFile(value, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, this.file(key));
    await this.syncDir();
  }

  async removeItem(key: string): Promise<void> {
    try {
      await unlink(this.file(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      return;
    }
    await this.syncDir();
  }

  /** The rename or unlink is durable once the directory's entry is. */
  private async syncDir(): Promise<void> {
    const handle = await open(this.dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
