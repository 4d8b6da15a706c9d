#!/usr/bin/env bash
# Reload under load (BENCHMARKS.md, "Reload under load"):
#
#   scripts/bench-reload.sh [SECONDS [RELOADS]]     # defaults: 20 s, 50 reloads
#
# For each runtime, starts the release triproxy with a SOCKS service on 127.0.0.1:21090,
# then for SECONDS runs at once: `triproxy-load rate` (32 clients opening one short tunnel
# after another), `triproxy-load bulk` (4 long download tunnels opened before the first
# reload and kept for the whole window), and RELOADS SIGUSR1s spread over the window, each
# with an edited configuration (an ACL entry and `maxconn` changed). After each reload it
# counts the listeners on the port with `ss`. The same load is first run without reloads,
# for the ratio. Results go to target/bench/reload.md. Nothing listens beyond 127.0.0.1.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/bench
mkdir -p "$OUT"
SECONDS_LOAD=${1:-20}
RELOADS=${2:-50}
PORT=21090

log() { printf 'bench-reload: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/bench-common.sh
. scripts/lib/bench-common.sh

log "building release binaries"
cargo build --release -p triproxy -p triproxy-conformance --bin triproxy --bin triproxy-load
TRIPROXY=$ROOT/target/release/triproxy
LOAD=$ROOT/target/release/triproxy-load
bench_start_run triproxy-reload

config() { # $1: generation number
    cat <<CFG
maxconn $((500 + $1))
auth iponly
allow * 127.0.0.1
deny * * 10.$(($1 % 250)).0.0/16
allow *
socks -p$PORT -i127.0.0.1
CFG
}

RESULT=$OUT/reload.md
{
    echo "| runtime | reloads | conn/s | errors | bulk MiB/s (4 tunnels open across every reload) | listeners on the port after each reload |"
    echo "|---|---:|---:|---:|---:|---|"
} >"$RESULT"

for runtime in std smol; do
    for reloads in 0 "$RELOADS"; do
        cfg=$RUN/reload-$runtime-$reloads.cfg
        config 0 >"$cfg"
        "$TRIPROXY" --runtime "$runtime" "$cfg" 2>"$RUN/reload-$runtime-$reloads.log" &
        pid=$!
        PIDS+=("$pid")
        for _ in $(seq 50); do
            ss -Hltn "sport = :$PORT" | grep -q . && break
            sleep 0.1
        done
        "$LOAD" bulk --proxy "socks5://127.0.0.1:$PORT" --streams 4 --direction down \
            --warmup 0 --seconds "$SECONDS_LOAD" >"$RUN/bulk.out" 2>&1 &
        bulk=$!
        "$LOAD" rate --proxy "socks5://127.0.0.1:$PORT" --concurrency 32 --warmup 0 \
            --seconds "$SECONDS_LOAD" --pid "$pid" >"$RUN/rate.out" 2>&1 &
        rate=$!
        counts=""
        if [ "$reloads" -gt 0 ]; then
            gap=$(awk -v s="$SECONDS_LOAD" -v n="$reloads" 'BEGIN { printf "%.3f", (s - 2) / n }')
            sleep 1
            for i in $(seq "$reloads"); do
                config "$i" >"$cfg"
                kill -USR1 "$pid"
                sleep "$gap"
                counts="$counts$(ss -Hltn "sport = :$PORT" | grep -c .)"
            done
        fi
        wait "$rate" || log "rate exited with $?"
        wait "$bulk" || log "bulk exited with $?"
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        done_reloads=$(grep -c ': reloaded (' "$RUN/reload-$runtime-$reloads.log" || true)
        conn=$(grep -o '^[0-9]* conn/s' "$RUN/rate.out" | grep -o '^[0-9]*' || echo "?")
        errors=$(grep -o 'errors [0-9]*' "$RUN/rate.out" | grep -o '[0-9]*$' || echo "?")
        mib=$(grep -o '[0-9.]* MiB/s' "$RUN/bulk.out" | head -1 | grep -o '^[0-9.]*' || echo "failed")
        uniq_counts=$(echo "$counts" | fold -w1 | sort -u | tr -d '\n')
        log "$runtime, $done_reloads reloads: $conn conn/s, errors $errors, bulk $mib MiB/s, listener counts seen: ${uniq_counts:-n/a}"
        cat "$RUN/rate.out" "$RUN/bulk.out" >&2
        echo "| $runtime | $done_reloads | $conn | $errors | $mib | ${uniq_counts:-n/a} |" >>"$RESULT"
    done
done
cat "$RESULT"
