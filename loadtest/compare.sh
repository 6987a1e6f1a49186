#!/usr/bin/env bash
# The hub and its peers side by side: runs each scenario with the same parameters against
# the hub, the Node peer and the bare-Rust peer (loadtest/peers/), one after another, then prints
# the figures and the hub's ratio to each peer: memory per idle socket (idle), deliveries per second
# (burst), end-to-end p50 / p99 (chat).
#
#   loadtest/compare.sh                                      # small presets: a few minutes
#   IDLE="--sockets 5000 --ramp 1000 --hold 10" CHAT="--users 1000 --agents 10 --rate 5000" loadtest/compare.sh
#   SCENARIOS=idle TARGETS="hub rust-peer" loadtest/compare.sh
#
# Needs, from the repository root: cargo build --release -p anapars-hub -p anapars-loadtest -p anapars-peer-rust
# and `npm ci` in loadtest/peers/node (binaries from $CARGO_TARGET_DIR/release when set). Every run stops by itself (and is killed after RUN_TIMEOUT s).
# The reports (JSON and logs) stay in $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

RELEASE=${CARGO_TARGET_DIR:-target}/release
BIN=${LOADTEST_BIN:-$RELEASE/anapars-loadtest}
BINS="--hub-bin $RELEASE/anapars-hub --rust-peer-bin $RELEASE/anapars-peer-rust"
TARGETS=${TARGETS:-hub node-peer rust-peer}
SCENARIOS=${SCENARIOS:-idle burst chat}
IDLE=${IDLE:---sockets 2000 --ramp 1000 --hold 5}
BURST=${BURST:-}
CHAT=${CHAT:---users 200 --agents 2 --rate 500 --warmup 2 --duration 10}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/anapars-compare-XXXXXX")}
mkdir -p "$OUT"

[ -x "$BIN" ] || { echo "compare: $BIN not found: cargo build --release -p anapars-loadtest" >&2; exit 1; }
command -v node >/dev/null || { echo "compare: node is needed (the Node peer, and this summary)" >&2; exit 1; }

for scenario in $SCENARIOS; do
  if ! "$BIN" "$scenario" --help >/dev/null 2>&1; then
    echo "== $scenario: this harness has no such scenario yet; skipped"
    continue
  fi
  case $scenario in
    idle) params=$IDLE ;;
    burst) params=$BURST ;;
    chat) params=$CHAT ;;
    *) params= ;;
  esac
  for target in $TARGETS; do
    echo "== $scenario on $target: $BIN $scenario --spawn-hub --target $target $params"
    # shellcheck disable=SC2086 # the parameters are words on purpose
    if timeout "$RUN_TIMEOUT" "$BIN" "$scenario" --spawn-hub --target "$target" $BINS $params \
      --json "$OUT/$scenario-$target.json" >"$OUT/$scenario-$target.log" 2>&1; then
      :
    else
      echo "   exit $?: see $OUT/$scenario-$target.log"
    fi
  done
done

echo "== reports in $OUT"
node - "$OUT" $TARGETS <<'EOF'
const fs = require('node:fs');
const [dir, ...targets] = process.argv.slice(2);
const read = (scenario, target) => {
  try {
    return JSON.parse(fs.readFileSync(`${dir}/${scenario}-${target}.json`, 'utf8'));
  } catch {
    return null;
  }
};
// [label, scenario, value of a report, true when higher is better]
const figures = [
  ['idle: sockets held', 'idle', (r) => r.held, true],
  ['idle: RSS per socket, KiB', 'idle', (r) => r.rss_per_socket_kib, false],
  ['burst: deliveries per second', 'burst', (r) => r.deliveries_per_s ?? r.delivered_per_s, true],
  ['chat: acked msgs per second', 'chat', (r) => r.acked_per_s, true],
  ['chat: e2e user->agent p50, ms', 'chat', (r) => r.e2e_user_to_agent?.p50_ms, false],
  ['chat: e2e user->agent p99, ms', 'chat', (r) => r.e2e_user_to_agent?.p99_ms, false],
  ['chat: e2e agent->user p50, ms', 'chat', (r) => r.e2e_agent_to_user?.p50_ms, false],
  ['chat: e2e agent->user p99, ms', 'chat', (r) => r.e2e_agent_to_user?.p99_ms, false],
  ['chat: exactly once', 'chat', (r) => (r.delivery_ok ? 'yes' : 'NO'), null],
];
const peers = targets.filter((t) => t !== 'hub');
const fmt = (v) => (v === undefined || v === null ? '-' : typeof v === 'number' ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)) : String(v));
const header = ['figure', ...targets, ...peers.map((p) => `hub vs ${p}`)];
const rows = [];
for (const [label, scenario, get, higherBetter] of figures) {
  const values = targets.map((t) => {
    const r = read(scenario, t);
    return r ? get(r) : undefined;
  });
  if (values.every((v) => v === undefined || v === null)) continue;
  const hub = values[targets.indexOf('hub')];
  const ratios = peers.map((p) => {
    const v = values[targets.indexOf(p)];
    if (higherBetter === null || typeof hub !== 'number' || typeof v !== 'number' || hub <= 0 || v <= 0) return '-';
    return `${(higherBetter ? hub / v : v / hub).toFixed(2)}x`;
  });
  rows.push([label, ...values.map(fmt), ...ratios]);
}
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
console.log(line(header));
for (const r of rows) console.log(line(r));
console.log('"hub vs X": how many times better the hub does than X on that figure (above 1: the hub is better).');
EOF
