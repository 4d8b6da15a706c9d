#!/usr/bin/env bash
# Idle-tunnel memory A/B (BENCHMARKS.md):
#
#   scripts/bench-idle-ab.sh BASE_BIN [TUNNELS [ROUNDS [SERVICE]]]
#   # defaults: 3000 tunnels, 2 rounds, socks (or proxy: HTTP CONNECT)
#
# Compares the release triproxy of this tree with BASE_BIN (a triproxy built from another
# commit, e.g. `git worktree add ../base REV && cargo build --release` there). For each
# round and runtime (std, smol), each binary in turn runs `maxconn 5000` and one SERVICE
# (SOCKS5 or HTTP CONNECT) on 127.0.0.1:21190, and `triproxy-load idle` opens TUNNELS tunnels through it to
# its hold target and reports the proxy's resident memory per tunnel (RSS growth / TUNNELS);
# then `triproxy-load rate` (64 clients, 5 s) gives its connection rate, since every
# connection now passes the live-connection registry.
# The binaries alternate so that the machine's drift falls on both. Results go to
# target/bench/idle-ab.md. Nothing listens beyond 127.0.0.1.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/bench
mkdir -p "$OUT"
BASE=${1:?usage: scripts/bench-idle-ab.sh BASE_BIN [TUNNELS [ROUNDS]]}
TUNNELS=${2:-3000}
ROUNDS=${3:-2}
SERVICE=${4:-socks}
case $SERVICE in
    socks) SCHEME=socks5 ;;
    proxy) SCHEME=http ;;
    *) echo "SERVICE is socks or proxy" >&2; exit 2 ;;
esac
PORT=21190

log() { printf 'bench-idle-ab: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/bench-common.sh
. scripts/lib/bench-common.sh

# Each tunnel is two descriptors in the proxy and two in the tool.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((2 * TUNNELS + 100)) ]; then
    log "warning: open-file limit $(ulimit -n) is below $((2 * TUNNELS + 100)); not every tunnel may open"
fi
log "building release binaries"
cargo build --release -p triproxy -p triproxy-conformance --bin triproxy --bin triproxy-load
HEAD_BIN=$ROOT/target/release/triproxy
LOAD=$ROOT/target/release/triproxy-load
bench_start_run triproxy-idle-ab
printf 'maxconn 5000\nauth iponly\nallow * 127.0.0.1\n%s -p%s -i127.0.0.1\n' "$SERVICE" "$PORT" >"$RUN/idle.cfg"

REPORT=$OUT/idle-ab-$SERVICE.md
{
    echo "| round | runtime | binary | tunnels open | RSS per tunnel (B) | conn/s |"
    echo "|---:|---|---|---:|---:|---:|"
} >"$REPORT"

one() { # $1 round, $2 runtime, $3 label, $4 binary
    "$4" --runtime "$2" "$RUN/idle.cfg" 2>"$RUN/$3-$2.log" &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 100); do
        grep -q "listening on" "$RUN/$3-$2.log" && break
        sleep 0.05
    done
    local line
    line=$("$LOAD" idle --proxy "$SCHEME://127.0.0.1:$PORT" --pid "$pid" --tunnels "$TUNNELS" | tail -n1)
    local rate
    rate=$("$LOAD" rate --proxy "$SCHEME://127.0.0.1:$PORT" --pid "$pid" --seconds 5 | tail -n1)
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    log "$1 $2 $3: $line"
    log "$1 $2 $3: $rate"
    local open per
    open=$(sed -n 's/^\([0-9]*\)\/[0-9]* tunnels open.*/\1/p' <<<"$line")
    per=$(sed -n 's/.*per tunnel RSS \([0-9]*\) B.*/\1/p' <<<"$line")
    local cps
    cps=$(sed -n 's/^\([0-9][0-9.]*\) conn\/s.*/\1/p' <<<"$rate")
    echo "| $1 | $2 | $3 | ${open:-?} | ${per:-?} | ${cps:-?} |" >>"$REPORT"
}

for round in $(seq "$ROUNDS"); do
    for runtime in std smol; do
        one "$round" "$runtime" base "$BASE"
        one "$round" "$runtime" head "$HEAD_BIN"
    done
done
cat "$REPORT"
