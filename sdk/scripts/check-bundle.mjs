// Fails when console/hub-client.js (the SDK as the console loads it, embedded in the hub binary)
// is not what `npm run bundle` makes of sdk/src now: the console and the SDK must not drift.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const committed = new URL("../../console/hub-client.js", import.meta.url);
const dir = mkdtempSync(join(tmpdir(), "hub-client-"));
try {
  const out = join(dir, "hub-client.js");
  const script = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).scripts.bundle;
  execFileSync("sh", ["-c", script.replace("--outfile=../console/hub-client.js", `--outfile=${out}`)], { stdio: "inherit" });
  if (readFileSync(out, "utf8") !== readFileSync(committed, "utf8")) {
    console.error("console/hub-client.js is not the bundle of sdk/src: run `npm run bundle` in sdk/ and commit it");
    process.exit(1);
  }
  console.log("console/hub-client.js matches sdk/src");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
