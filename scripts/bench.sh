#!/usr/bin/env bash
# The benchmark behind BENCHMARKS.md, in one command:
#
#   scripts/bench.sh [extra triproxy-load suite options, e.g. --reps 5 --rate-seconds 10]
#   BENCH_BASELINE=REV scripts/bench.sh    # also runs the triproxy of git revision REV (A/B)
#
# It builds the release binaries, installs the peers (microsocks, Dante, tinyproxy) with apt
# if they are missing and this is a root shell on Debian/Ubuntu (set BENCH_NO_INSTALL=1 to
# skip), starts triproxy on both runtimes and every installed peer on fixed loopback ports,
# runs `triproxy-load suite` (3 repetitions by default), writes target/bench/results.md and
# stops every process it started. Nothing listens beyond 127.0.0.1. CI does not run it: it
# takes about 20 minutes and wants a quiet machine.
#
# Ports (all 127.0.0.1): triproxy std 21080 (SOCKS), 21081 (SOCKS, auth strong) and
# 21082 (HTTP proxy, CONNECT); triproxy smol 21180 / 21181 / 21182; microsocks 21280 / 21281 (auth, its own process);
# Dante 21380 (SOCKS4 and SOCKS5, no auth); tinyproxy 21480 (HTTP CONNECT); the baseline
# triproxy (BENCH_BASELINE) std 21580-21582 and smol 21680-21682; the "limit", nullsocks
# (../shared/bench/nullsocks.c, or NULLSOCKS_SRC: one thread, epoll, splice, SOCKS5 CONNECT
# without auth, nothing else), 21780.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/bench
mkdir -p "$OUT"

log() { printf 'bench: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/bench-common.sh
. scripts/lib/bench-common.sh

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

# Idle tunnels need about two descriptors each in the tool and in every proxy.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 19000 ]; then
    log "warning: open-file limit $(ulimit -n) is below 19000; 9000 idle tunnels may not fit"
fi

log "building release binaries"
cargo build --release -p triproxy -p triproxy-conformance --bin triproxy --bin triproxy-load
TRIPROXY=$ROOT/target/release/triproxy
LOAD=$ROOT/target/release/triproxy-load

# The A/B baseline: the same daemon at another revision, built in its own worktree and
# target directory so the tree under test is untouched.
BASELINE_BIN=""
if [ -n "${BENCH_BASELINE:-}" ]; then
    BASE_REV=$(git -C "$ROOT" rev-parse --short "$BENCH_BASELINE")
    BASE_SRC=$OUT/baseline-src
    log "building the baseline $BASE_REV"
    git -C "$ROOT" worktree remove --force "$BASE_SRC" 2>/dev/null || true
    git -C "$ROOT" worktree add --detach "$BASE_SRC" "$BASE_REV" >/dev/null
    CARGO_TARGET_DIR=$OUT/baseline-target cargo build --release --manifest-path "$BASE_SRC/Cargo.toml" -p triproxy --bin triproxy
    BASELINE_BIN=$OUT/baseline-target/release/triproxy
fi

# The limit: the cheapest SOCKS5 relay this harness can drive.
NULLSOCKS_SRC=${NULLSOCKS_SRC:-$ROOT/../shared/bench/nullsocks.c}
NULLSOCKS=""
if [ -f "$NULLSOCKS_SRC" ] && command -v cc >/dev/null; then
    cc -O2 -o "$OUT/nullsocks" "$NULLSOCKS_SRC" && NULLSOCKS=$OUT/nullsocks
else
    log "no $NULLSOCKS_SRC or no C compiler: the limit column is skipped"
fi

install_peers() {
    local missing=()
    command -v microsocks >/dev/null || missing+=(microsocks)
    command -v danted >/dev/null || missing+=(dante-server)
    command -v tinyproxy >/dev/null || missing+=(tinyproxy)
    apt_install_missing "${missing[@]}"
}
install_peers

# Whether something listens on PORT.
listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# Waits until PORT on 127.0.0.1 is listening, or fails after 10 s.
wait_port() {
    local port=$1 i
    for i in $(seq 100); do
        if listening "$port"; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

for port in 21080 21081 21082 21180 21181 21182 21280 21281 21380 21480 21580 21581 21582 21680 21681 21682 21780; do
    for _ in $(seq 50); do
        listening "$port" || break
        sleep 0.1
    done
    if listening "$port"; then
        log "port $port is already in use; stop whatever listens there first:"
        ss -Hltnp "sport = :$port" >&2 || true
        exit 1
    fi
done

SPECS=(--proxy direct)
TRIPROXY_PIDS=()

# start_triproxy RUNTIME PORT AUTH_PORT HTTP_PORT [BINARY NAME]
start_triproxy() {
    local runtime=$1 port=$2 auth_port=$3 http_port=$4 bin=${5:-$TRIPROXY} name=${6:-triproxy-$1}
    local cfg=$OUT/$name.cfg
    cat >"$cfg" <<EOF
# triproxy $runtime for scripts/bench.sh: no log, every service on loopback.
maxconn 20000
socks -p$port -i127.0.0.1
proxy -p$http_port -i127.0.0.1
users bench:CL:bench
auth strong
socks -p$auth_port -i127.0.0.1
EOF
    "$bin" --runtime "$runtime" "$cfg" >"$OUT/$name.out" 2>"$OUT/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    TRIPROXY_PIDS+=("$pid")
    local i
    for i in $(seq 100); do
        if grep -q "listening on 127.0.0.1:$auth_port" "$OUT/$name.err"; then
            break
        fi
        sleep 0.1
    done
    if ! grep -q "listening on 127.0.0.1:$auth_port" "$OUT/$name.err"; then
        log "$name did not start:"
        cat "$OUT/$name.err" >&2
        exit 1
    fi
    SPECS+=(--proxy "$name=socks5://127.0.0.1:$port,pid=$pid"
        --proxy "$name=socks5://bench:bench@127.0.0.1:$auth_port,pid=$pid"
        --proxy "$name=socks4://127.0.0.1:$port,pid=$pid"
        --proxy "$name=http://127.0.0.1:$http_port,pid=$pid")
}

start_triproxy std 21080 21081 21082
start_triproxy smol 21180 21181 21182
if [ -n "$BASELINE_BIN" ]; then
    start_triproxy std 21580 21581 21582 "$BASELINE_BIN" "base-$BASE_REV-std"
    start_triproxy smol 21680 21681 21682 "$BASELINE_BIN" "base-$BASE_REV-smol"
fi

# The limit runs in a second suite of its own (below): nullsocks keeps two pipes per
# tunnel, so 9,000 idle tunnels are 54,000 descriptors, past the open-file limit.
LIMIT_SPECS=()
if [ -n "$NULLSOCKS" ]; then
    # nullsocks does not ignore SIGPIPE itself: a splice into a socket its client closed
    # would kill it. An ignored signal is inherited across exec.
    (trap '' PIPE && exec "$NULLSOCKS" 127.0.0.1 21780) >"$OUT/nullsocks.log" 2>&1 &
    n=$!
    PIDS+=("$n")
    if wait_port 21780; then
        LIMIT_SPECS=(--proxy direct
            --proxy "triproxy-std=socks5://127.0.0.1:21080,pid=${TRIPROXY_PIDS[0]}"
            --proxy "triproxy-smol=socks5://127.0.0.1:21180,pid=${TRIPROXY_PIDS[1]}"
            --proxy "limit=socks5://127.0.0.1:21780,pid=$n")
    else
        log "nullsocks did not start; the limit column is skipped"
    fi
fi

if command -v microsocks >/dev/null; then
    microsocks -i 127.0.0.1 -p 21280 >"$OUT/microsocks.log" 2>&1 &
    m1=$!
    PIDS+=("$m1")
    microsocks -i 127.0.0.1 -p 21281 -u bench -P bench >"$OUT/microsocks-auth.log" 2>&1 &
    m2=$!
    PIDS+=("$m2")
    if wait_port 21280 && wait_port 21281; then
        SPECS+=(--proxy "microsocks=socks5://127.0.0.1:21280,pid=$m1"
            --proxy "microsocks=socks5://bench:bench@127.0.0.1:21281,pid=$m2")
    else
        log "microsocks did not start; skipped"
    fi
fi

if command -v danted >/dev/null; then
    cat >"$OUT/danted.conf" <<'EOF'
# Dante for scripts/bench.sh: SOCKS4 and SOCKS5 without authentication, loopback only.
logoutput: /dev/null
internal: 127.0.0.1 port = 21380
external: 127.0.0.1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 command: connect }
EOF
    danted -f "$OUT/danted.conf" -p "$OUT/danted.pid" >"$OUT/danted.log" 2>&1 &
    d=$!
    PIDS+=("$d")
    if wait_port 21380; then
        SPECS+=(--proxy "dante=socks5://127.0.0.1:21380,pid=$d"
            --proxy "dante=socks4://127.0.0.1:21380,pid=$d")
    else
        log "Dante did not start; skipped"
        cat "$OUT/danted.log" >&2
    fi
fi

if command -v tinyproxy >/dev/null; then
    group=nogroup
    getent group nogroup >/dev/null || group=nobody
    cat >"$OUT/tinyproxy.conf" <<EOF
# tinyproxy for scripts/bench.sh: CONNECT to any port, loopback only, quiet.
User nobody
Group $group
Port 21480
Listen 127.0.0.1
Timeout 600
MaxClients 20000
Allow 127.0.0.1
LogLevel Critical
DisableViaHeader Yes
EOF
    tinyproxy -d -c "$OUT/tinyproxy.conf" >"$OUT/tinyproxy.log" 2>&1 &
    t=$!
    PIDS+=("$t")
    if wait_port 21480; then
        SPECS+=(--proxy "tinyproxy=http://127.0.0.1:21480,pid=$t")
    else
        log "tinyproxy did not start; skipped"
        cat "$OUT/tinyproxy.log" >&2
    fi
fi

CMD=("$LOAD" suite --reps 3 "${SPECS[@]}" "$@")
log "running: ${CMD[*]}"
"${CMD[@]}" >"$OUT/tables.md"
: >"$OUT/limit.md"
if [ ${#LIMIT_SPECS[@]} -gt 0 ]; then
    LIMIT_CMD=("$LOAD" suite --reps 3 --tunnels 0 --soak-seconds 0 "${LIMIT_SPECS[@]}")
    log "running: ${LIMIT_CMD[*]}"
    "${LIMIT_CMD[@]}" >"$OUT/limit.md"
fi

{
    echo "# triproxy benchmark results"
    echo
    echo "- finished: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, kernel $(uname -r)"
    echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- triproxy: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown) (working tree may differ)"
    if [ -n "$BASELINE_BIN" ]; then
        echo "- baseline: $BASE_REV (columns base-$BASE_REV-std, base-$BASE_REV-smol)"
    fi
    if [ -n "$NULLSOCKS" ]; then
        echo "- limit: nullsocks ($(basename "$NULLSOCKS_SRC"), cc -O2)"
    fi
    echo "- peers: microsocks $(dpkg-query -W -f '${Version}' microsocks 2>/dev/null || echo absent), Dante $(dpkg-query -W -f '${Version}' dante-server 2>/dev/null || echo absent), tinyproxy $(dpkg-query -W -f '${Version}' tinyproxy 2>/dev/null || echo absent)"
    echo
    echo "Command (ports and pids from this run):"
    echo
    echo '```'
    echo "${CMD[*]}" | sed "s|$ROOT/||g"
    echo '```'
    echo
    cat "$OUT/tables.md"
    if [ -s "$OUT/limit.md" ]; then
        echo
        echo "## Against the limit (nullsocks), a second suite without idle tunnels or soak"
        echo
        echo '```'
        echo "${LIMIT_CMD[*]}" | sed "s|$ROOT/||g"
        echo '```'
        echo
        cat "$OUT/limit.md"
    fi
} >"$OUT/results.md"
log "results in $OUT/results.md"
