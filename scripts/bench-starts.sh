#!/usr/bin/env bash
# Whether the relay's speed depends on the process start: N starts of each runtime, one
# bulk stream each, throughput and proxy CPU per GiB per start.
#
#   scripts/bench-starts.sh [STARTS] [BINARY]     # default 5 starts, target/release/triproxy
#
# Each start: launch `triproxy --runtime R` with one SOCKS service on 127.0.0.1:21990, run
# `triproxy-load bulk` (1 stream, download, 3 s after 1 s warm-up), stop the process. Only
# loopback is used. BENCH_DIRECTION=up measures uploads instead. Prints one line per start
# and writes target/bench/starts.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
STARTS=${1:-5}
BIN=${2:-target/release/triproxy}
LOAD=target/release/triproxy-load
DIRECTION=${BENCH_DIRECTION:-down}
mkdir -p target/bench
OUT=target/bench/starts.txt
[ -x "$LOAD" ] || cargo build --release -p triproxy-conformance --bin triproxy-load
CFG=$(mktemp)
trap 'rm -f "$CFG"' EXIT
printf 'maxconn 1000\nsocks -p21990 -i127.0.0.1\n' >"$CFG"
: >"$OUT"
for runtime in std smol; do
    for i in $(seq "$STARTS"); do
        "$BIN" --runtime "$runtime" "$CFG" 2>/dev/null &
        pid=$!
        for _ in $(seq 50); do
            ss -Hltn 'sport = :21990' | grep -q . && break
            sleep 0.1
        done
        line=$("$LOAD" bulk --proxy socks5://127.0.0.1:21990 --direction "$DIRECTION" \
            --seconds 3 --pid "$pid" 2>&1 | tail -1)
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        echo "$runtime start $i: $line" | tee -a "$OUT"
    done
done
