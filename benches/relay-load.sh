#!/usr/bin/env bash
# The cost of an RFC 4976 relay per frame, ours beside Kamailio's and a
# byte-blind forwarder, under the same SEND load (../shared/interop/relay-load):
# body sizes 200, 2048 and 8192 bytes, windows of 1 and 64 SENDs, and one
# table of medians at the end (relay CPU per 100 000 frames: x10 = us/frame).
#
#   benches/relay-load.sh [SECS] [RUNS]      # defaults 5 and 3; ~10 minutes
#
# Relays measured:
#   cpm-node        cpm-node/configs/relay-bench.toml (no challenge, AUTH over TCP)
#   kamailio        Kamailio's msrp module with the shipped kamailio.cfg (debug=2:
#                   one INFO log line per frame)
#   kamailio-quiet  the same config with debug=1 (no per-frame line): the cheaper Kamailio
#   forwarder       a std::net forwarder, two threads of io::copy: the floor
# Kamailio is installed with apt-get when absent; without it its rows are skipped, loudly.
# Results: target/relay-load/ (results.tsv, table.md, versions.txt).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
INTEROP="${INTEROP_DIR:-$ROOT/../shared/interop}"
SECS="${1:-5}"; RUNS="${2:-3}"
OUT="${RELAY_LOAD_OUT:-$ROOT/target/relay-load}"; TSV="$OUT/results.tsv"
BUILD="$ROOT/target/relay-load-build"
BIN="$BUILD/release/relay-load"
KAM="$INTEROP/kamailio-msrp-relay"
QUIET="$OUT/kamailio-quiet"
export KAM_RUN_DIR="$OUT/kamailio-run"

[[ -d "$INTEROP/relay-load" ]] || { echo "no $INTEROP/relay-load (set INTEROP_DIR)" >&2; exit 2; }
mkdir -p "$OUT"; rm -f "$TSV"
echo "building relay-load and cpm-node (release)"
(cd "$INTEROP/relay-load" && CARGO_TARGET_DIR="$BUILD" cargo build --release -q)
(cd "$ROOT" && cargo build --release -q -p cpm-node)
if ! command -v kamailio >/dev/null 2>&1 && [[ ! -x /usr/sbin/kamailio ]]; then
  DEBIAN_FRONTEND=noninteractive timeout 180 apt-get install -y -qq kamailio >/dev/null 2>&1 ||
    echo "**** SKIP kamailio rows: kamailio not installable ****"
fi
HAVE_KAMAILIO=0; { command -v kamailio >/dev/null 2>&1 || [[ -x /usr/sbin/kamailio ]]; } && HAVE_KAMAILIO=1
{
  echo "date: $(date -u +%FT%TZ)"; uname -srm; echo "cores: $(nproc)"
  grep -m1 'model name' /proc/cpuinfo || true
  [[ $HAVE_KAMAILIO = 1 ]] && { kamailio -v 2>&1 || /usr/sbin/kamailio -v 2>&1; } | head -1
  rustc -V
} >"$OUT/versions.txt"

NODE_PID=""
cleanup() {
  [[ -n "$NODE_PID" ]] && kill "$NODE_PID" 2>/dev/null || true
  "$KAM/stop.sh" >/dev/null 2>&1 || true
  [[ -x "$QUIET/stop.sh" ]] && KAM_RUN_DIR="$QUIET/run" "$QUIET/stop.sh" >/dev/null 2>&1 || true
}
trap cleanup EXIT

matrix() { # relay label extra-args...
  local relay="$1" label="$2"; shift 2
  for S in 200 2048 8192; do for W in 1 64; do
    "$BIN" run --relay "$relay" --label "$label" --size "$S" --window "$W" --secs "$SECS" --runs "$RUNS" --out "$TSV" "$@"
  done; done
}

echo "=== cpm-node relay (configs/relay-bench.toml)"
"$ROOT/target/release/cpm-node" run "$ROOT/cpm-node/configs/relay-bench.toml" >"$OUT/cpm-node.log" 2>&1 &
NODE_PID=$!
echo "$NODE_PID" >"$OUT/cpm-node.pid"
PORT="$(sed -n 's/^msrp_listen = \["tcp:\/\/127.0.0.1:\([0-9]*\)"\]/\1/p' "$ROOT/cpm-node/configs/relay-bench.toml")"
for _ in $(seq 1 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
matrix rfc4976 cpm-node --port "$PORT" --pid-file "$OUT/cpm-node.pid"
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true; NODE_PID=""

if [[ $HAVE_KAMAILIO = 1 ]]; then
  echo "=== kamailio, shipped kamailio.cfg"
  "$KAM/start.sh"
  matrix kamailio kamailio --run-dir "$KAM_RUN_DIR"
  "$KAM/stop.sh" >/dev/null
  echo "=== kamailio, the same config with debug=1"
  rm -rf "$QUIET"; mkdir -p "$QUIET"
  cp "$KAM/start.sh" "$KAM/stop.sh" "$QUIET/"
  sed 's/^debug=2$/debug=1/' "$KAM/kamailio.cfg" >"$QUIET/kamailio.cfg"
  KAM_RUN_DIR="$QUIET/run" "$QUIET/start.sh"
  KAM_RUN_DIR="$QUIET/run" matrix kamailio kamailio-quiet --run-dir "$QUIET/run"
  KAM_RUN_DIR="$QUIET/run" "$QUIET/stop.sh" >/dev/null
fi

echo "=== byte-blind forwarder"
matrix forwarder forwarder

echo "=== medians"
"$BIN" report "$TSV" | tee "$OUT/table.md"
