#!/usr/bin/env bash
# UDP relaying and DNS proxying through triproxy and the peers a Debian machine can run,
# next to direct, in one run:
#
#   scripts/bench-udp.sh                       # about 3 minutes once the binaries are built
#   BENCH_UDP_REPS=1 scripts/bench-udp.sh      # one repetition, about a minute
#   BENCH_NO_INSTALL=1 scripts/bench-udp.sh    # do not apt-get install dante-server / dnsmasq-base
#   TRIPROXY_BIN=/path/to/triproxy scripts/bench-udp.sh   # measure another triproxy build
#
# UDP columns (`triproxy-load udp`: BENCH_UDP_FLOWS (8) flows, each a ping-pong with
# BENCH_UDP_WINDOW (16) datagrams of BENCH_UDP_SIZE (64) bytes in flight, to the tool's own
# UDP echo on 127.0.0.1):
#   direct              straight to the echo (the tool's ceiling)
#   triproxy-std        SOCKS5 UDP ASSOCIATE, `socks` service on 127.0.0.1:23080
#   triproxy-smol       the same on --runtime smol, 127.0.0.1:23180
#   dante               apt's danted, UDP ASSOCIATE (udpassociate and udpreply passed),
#                       127.0.0.1:23380
#   triproxy-std-udppm  `udppm -i127.0.0.1 23081 127.0.0.1 23999`: plain datagrams to
#                       23081, forwarded to the tool's echo bound on 23999 (--echo-port)
#   triproxy-smol-udppm the same on smol, 23181
# DNS columns (`triproxy-load dns`: BENCH_DNS_CLIENTS (16) clients, one query in flight
# each, A bench.test; the warm-up asks the same name, so caches are warm):
#   dnsmasq             apt's dnsmasq (dnsmasq-base) on 127.0.0.1:23553, answering
#                       bench.test itself (--address, TTL 300)
#   triproxy-std-dnspr  `dnspr -p23054 -i127.0.0.1` with `nserver 127.0.0.1:23553`:
#                       triproxy answers from its cache
#   triproxy-smol-dnspr the same on smol, 23154
#
# Each repetition measures every column in turn for BENCH_UDP_SECONDS (3) after
# BENCH_UDP_WARMUP (1) seconds; the tables show medians of BENCH_UDP_REPS (3) and ratios to
# direct (UDP) and to dnsmasq (DNS). Every service runs in its own process, so its CPU per
# datagram is its own. A triproxy that refuses its configuration (`udppm` and `dnspr` are
# not in every build) or a peer that is not installed is skipped with a note; a column
# that fails during the run is reported as failed and the run goes on. Every process
# started here is stopped on exit; nothing listens beyond 127.0.0.1. Writes
# $CARGO_TARGET_DIR/bench-udp/results.md (default target/).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET/bench-udp
mkdir -p "$OUT"
REPS=${BENCH_UDP_REPS:-3}
WINDOW=${BENCH_UDP_SECONDS:-3}
WARMUP=${BENCH_UDP_WARMUP:-1}
FLOWS=${BENCH_UDP_FLOWS:-8}
INFLIGHT=${BENCH_UDP_WINDOW:-16}
SIZE=${BENCH_UDP_SIZE:-64}
CLIENTS=${BENCH_DNS_CLIENTS:-16}
ECHO_PORT=23999
DNSMASQ_PORT=23553
# Every tool call is bounded by its own timeouts; this is the backstop.
CALL_LIMIT=$((WARMUP + WINDOW + 30))

log() { printf 'bench-udp: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/bench-common.sh
. scripts/lib/bench-common.sh

bench_start_run bench-udp

LOAD=$TARGET/release/triproxy-load
if [ -n "${TRIPROXY_BIN:-}" ]; then
    TRIPROXY=$TRIPROXY_BIN
    log "building triproxy-load (triproxy is $TRIPROXY)"
    cargo build --release -p triproxy-conformance --bin triproxy-load >&2
else
    TRIPROXY=$TARGET/release/triproxy
    log "building release binaries"
    cargo build --release -p triproxy -p triproxy-conformance --bin triproxy --bin triproxy-load >&2
fi

install_peers() {
    local missing=()
    command -v danted >/dev/null || missing+=(dante-server)
    command -v dnsmasq >/dev/null || missing+=(dnsmasq-base)
    apt_install_missing "${missing[@]}"
}
install_peers

# bound PROTO PORT: whether a tcp or udp socket is bound to PORT.
bound() {
    local flag=-Hltn
    [ "$1" = udp ] && flag=-Hlun
    ss "$flag" "sport = :$2" 2>/dev/null | grep -q .
}

# wait_port PROTO PORT PID: until PORT is bound (true), PID exits or 10 s pass (false).
wait_port() {
    local proto=$1 port=$2 pid=$3 i
    for i in $(seq 100); do
        bound "$proto" "$port" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

for port in 23080 23180 23380 23081 23181 $ECHO_PORT $DNSMASQ_PORT 23054 23154; do
    for proto in tcp udp; do
        if bound "$proto" "$port"; then
            log "$proto port $port is already in use; stop whatever uses it first:"
            ss -Hlnp "sport = :$port" >&2 || true
            exit 1
        fi
    done
done

# The columns: U_NAMES[i] is measured with the arguments U_ARGS[i] and charged to
# U_PIDS[i]; the same for D_ (DNS).
U_NAMES=(direct)
U_ARGS=("--proxy direct")
U_PIDS=("")
D_NAMES=()
D_ARGS=()
D_PIDS=()
SKIPPED=()

# start KIND NAME PROTO PORT ARGS LOGFILE COMMAND...: starts a server and adds its column
# (KIND u or d) once PORT is bound.
start() {
    local kind=$1 name=$2 proto=$3 port=$4 args=$5 logfile=$6
    shift 6
    "$@" >"$logfile" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    if wait_port "$proto" "$port" "$pid"; then
        if [ "$kind" = u ]; then
            U_NAMES+=("$name") U_ARGS+=("$args") U_PIDS+=("$pid")
        else
            D_NAMES+=("$name") D_ARGS+=("$args") D_PIDS+=("$pid")
        fi
    else
        local why
        why=$(grep -m1 -i 'error\|not supported\|unsupported\|unknown' "$logfile" 2>/dev/null | sed 's/^.*\.cfg:[0-9]*: //' | cut -c1-160 || true)
        log "$name did not start; its column is skipped. Its output:"
        tail -n 20 "$logfile" >&2 || true
        SKIPPED+=("$name (did not start${why:+: $why})")
    fi
}

# triproxy_config RUNTIME SERVICE PORT: one service per process, no log.
triproxy_config() {
    local runtime=$1 service=$2 port=$3
    echo "# triproxy $runtime for scripts/bench-udp.sh: $service on loopback, no log."
    echo "maxconn 5000"
    case $service in
        dnspr)
            echo "nserver 127.0.0.1:$DNSMASQ_PORT"
            echo "nscache 65536"
            ;;
    esac
    echo "auth iponly"
    echo "allow *"
    case $service in
        socks) echo "socks -p$port -i127.0.0.1" ;;
        udppm) echo "udppm -i127.0.0.1 $port 127.0.0.1 $ECHO_PORT" ;;
        dnspr) echo "dnspr -p$port -i127.0.0.1" ;;
    esac
}

for runtime in std smol; do
    base=23080
    [ "$runtime" = smol ] && base=23180
    triproxy_config "$runtime" socks "$base" >"$RUN/triproxy-$runtime.cfg"
    start u "triproxy-$runtime" tcp "$base" "--proxy socks5://127.0.0.1:$base" \
        "$RUN/triproxy-$runtime.log" "$TRIPROXY" --runtime "$runtime" "$RUN/triproxy-$runtime.cfg"
done

if command -v danted >/dev/null; then
    cat >"$RUN/danted.conf" <<EOF
# Dante for scripts/bench-udp.sh: SOCKS5 UDP ASSOCIATE without authentication, loopback only.
logoutput: $RUN/danted-file.log
internal: 127.0.0.1 port = 23380
external: 127.0.0.1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: udpassociate }
socks pass { from: 0.0.0.0/0 to: 127.0.0.0/8 command: udpreply }
EOF
    start u dante tcp 23380 "--proxy socks5://127.0.0.1:23380" "$RUN/danted.log" \
        danted -f "$RUN/danted.conf" -p "$RUN/danted.pid"
else
    SKIPPED+=("dante (not installed)")
fi

for runtime in std smol; do
    port=23081
    [ "$runtime" = smol ] && port=23181
    triproxy_config "$runtime" udppm "$port" >"$RUN/triproxy-$runtime-udppm.cfg"
    start u "triproxy-$runtime-udppm" udp "$port" "--udppm 127.0.0.1:$port --echo-port $ECHO_PORT" \
        "$RUN/triproxy-$runtime-udppm.log" "$TRIPROXY" --runtime "$runtime" "$RUN/triproxy-$runtime-udppm.cfg"
done

if command -v dnsmasq >/dev/null; then
    start d dnsmasq udp "$DNSMASQ_PORT" "--server 127.0.0.1:$DNSMASQ_PORT" "$RUN/dnsmasq.log" \
        dnsmasq --keep-in-foreground --no-resolv --no-hosts --conf-file=/dev/null --user=root \
        --port="$DNSMASQ_PORT" --listen-address=127.0.0.1 --bind-interfaces \
        --pid-file="$RUN/dnsmasq.pid" --address=/bench.test/127.0.0.1 --local-ttl=300
    for runtime in std smol; do
        port=23054
        [ "$runtime" = smol ] && port=23154
        triproxy_config "$runtime" dnspr "$port" >"$RUN/triproxy-$runtime-dnspr.cfg"
        start d "triproxy-$runtime-dnspr" udp "$port" "--server 127.0.0.1:$port" \
            "$RUN/triproxy-$runtime-dnspr.log" "$TRIPROXY" --runtime "$runtime" "$RUN/triproxy-$runtime-dnspr.cfg"
    done
else
    SKIPPED+=("dnsmasq and the dnspr columns behind it (dnsmasq not installed)")
fi

# measure SUBCOMMAND OUTFILE REP NAME PID ARGS: one call, one line "NAME REP key=value...".
measure() {
    local sub=$1 file=$2 rep=$3 name=$4 pid=$5 line
    # shellcheck disable=SC2206 # ARGS are words without spaces
    local args=(--op-timeout 5 "$sub" --format kv $6)
    shift 6
    args+=("$@")
    if [ -n "$pid" ]; then
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$name $rep failed=the server process is gone" >>"$file"
            return 0
        fi
        args+=(--pid "$pid")
    fi
    if line=$(timeout "$CALL_LIMIT" "$LOAD" "${args[@]}" 2>>"$OUT/tool-stderr.log"); then
        echo "$name $rep $line" >>"$file"
    else
        echo "$name $rep failed=triproxy-load exited with $? (see $OUT/tool-stderr.log)" >>"$file"
    fi
}

: >"$OUT/udp.kv"
: >"$OUT/dns.kv"
: >"$OUT/tool-stderr.log"
START=$(date +%s)
for rep in $(seq "$REPS"); do
    for i in "${!U_NAMES[@]}"; do
        log "repetition $rep/$REPS: udp ${U_NAMES[$i]}"
        measure udp "$OUT/udp.kv" "$rep" "${U_NAMES[$i]}" "${U_PIDS[$i]}" "${U_ARGS[$i]}" \
            --flows "$FLOWS" --window "$INFLIGHT" --size "$SIZE" \
            --seconds "$WINDOW" --warmup "$WARMUP"
    done
    for i in "${!D_NAMES[@]}"; do
        log "repetition $rep/$REPS: dns ${D_NAMES[$i]}"
        measure dns "$OUT/dns.kv" "$rep" "${D_NAMES[$i]}" "${D_PIDS[$i]}" "${D_ARGS[$i]}" \
            --clients "$CLIENTS" --seconds "$WINDOW" --warmup "$WARMUP"
    done
done
log "measured in $(($(date +%s) - START)) s"

# table FILE RATEKEY REFERENCE NAMES...: medians per column, ratios to REFERENCE; a column
# with no successful run shows its first error instead.
table() {
    local file=$1 ratekey=$2 reference=$3
    shift 3
    awk -v reps="$REPS" -v names="$*" -v file="$file" -v ratekey="$ratekey" -v reference="$reference" '
    function median(list,    n, v, i, j, t) {
        n = split(list, v, " ")
        if (n == 0) return ""
        for (i = 2; i <= n; i++) {
            t = v[i] + 0
            for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j + 1] = v[j]
            v[j + 1] = t
        }
        return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    function add(key, value) { if (value != "" && value != "n/a") acc[key] = acc[key] " " value }
    function fmt(v, d) { return (v == "") ? "n/a" : sprintf("%." d "f", v) }
    function ratio(v, r) { return (v == "" || r == "" || r + 0 == 0) ? "–" : sprintf("%.2fx", v / r) }
    # Reads a "NAME REP key=value ..." line into kv[] and answers NAME; errors_detail or
    # failed runs to the end of the line and, unless it says nothing went wrong, is kept in
    # problem.
    function parse(line,    n, f, i, j, k, v) {
        n = split(line, f, " ")
        problem = ""
        for (i = 3; i <= n; i++) {
            k = substr(f[i], 1, index(f[i], "=") - 1)
            v = substr(f[i], index(f[i], "=") + 1)
            if (k == "errors_detail" || k == "failed") {
                for (j = i + 1; j <= n; j++) v = v " " f[j]
                if (k == "failed" || v != "0") problem = v
                break
            }
            kv[k] = v
        }
        return f[1]
    }
    BEGIN {
        while ((getline line < file) > 0) {
            split("", kv)
            name = parse(line)
            if (kv["answered"] + 0 > 0) {
                add("rate " name, kv[ratekey]); add("p50 " name, kv["p50_us"])
                add("p99 " name, kv["p99_us"]); add("loss " name, kv["loss_pct"])
                add("cpu " name, (ratekey == "dps") ? kv["proxy_cpu_us_per_dgram"] : kv["proxy_cpu_us_per_query"])
                ok[name]++
            } else if (problem == "") {
                problem = "nothing answered"
            }
            if (kv["others_cpus"] + 0 > others[name] + 0) others[name] = kv["others_cpus"]
            lost[name] += kv["lost"]; failed[name] += kv["failed_answers"]; late[name] += kv["late"]
            garbage[name] += kv["garbage"]; errs[name] += kv["errors"]
            if (problem != "" && !(name in firsterr)) firsterr[name] = problem
        }
        n = split(names, col, " ")
        rr = median(acc["rate " reference]); pr = median(acc["p99 " reference])
        if (ratekey == "dps") {
            print "| path | datagrams/s | vs " reference " | p50 µs | p99 µs | vs " reference " | loss % | proxy CPU µs/datagram | notes |"
            print "|---|---:|---:|---:|---:|---:|---:|---:|---|"
        } else {
            print "| server | queries/s | vs " reference " | p50 µs | p99 µs | vs " reference " | server CPU µs/query | notes |"
            print "|---|---:|---:|---:|---:|---:|---:|---|"
        }
        for (c = 1; c <= n; c++) {
            name = col[c]
            r = median(acc["rate " name]); p50 = median(acc["p50 " name]); p = median(acc["p99 " name])
            l = median(acc["loss " name]); u = median(acc["cpu " name])
            note = ""
            if (r == "") note = "FAILED: " firsterr[name]
            else {
                if (errs[name] > 0) note = errs[name] " errors (" firsterr[name] ")"
                if (failed[name] > 0) note = note (note == "" ? "" : "; ") failed[name] " failed answers"
                if (late[name] > 0) note = note (note == "" ? "" : "; ") late[name] " late answers"
                if (garbage[name] > 0) note = note (note == "" ? "" : "; ") garbage[name] " garbled datagrams"
                if (ok[name] < reps) note = note (note == "" ? "" : "; ") "median of " ok[name] " runs: " firsterr[name]
            }
            if (others[name] + 0 >= 0.3) note = note (note == "" ? "" : "; ") sprintf("other processes up to %.2f CPUs", others[name])
            gsub(/\|/, "/", note)
            self = (name == reference)
            if (ratekey == "dps")
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, fmt(r, 0), \
                    self ? "1.00x" : ratio(r, rr), fmt(p50, 0), fmt(p, 0), self ? "1.00x" : ratio(p, pr), \
                    fmt(l, 2), (name == "direct") ? "–" : fmt(u, 2), note
            else
                printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", name, fmt(r, 0), \
                    self ? "1.00x" : ratio(r, rr), fmt(p50, 0), fmt(p, 0), self ? "1.00x" : ratio(p, pr), \
                    fmt(u, 2), note
        }
    }'
}

version() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo absent; }
{
    echo "# UDP and DNS benchmark"
    echo
    echo "- finished: $(date -u '+%Y-%m-%d %H:%M UTC'); $REPS repetitions, medians"
    echo "- machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), kernel $(uname -r); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ -n "${TRIPROXY_BIN:-}" ]; then
        echo "- triproxy: $TRIPROXY_BIN (TRIPROXY_BIN); triproxy-load: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    else
        echo "- triproxy: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown) (working tree may differ)"
    fi
    echo "- peers: Dante $(version dante-server), dnsmasq $(version dnsmasq-base)"
    echo "- udp: $FLOWS flows, $INFLIGHT datagrams of $SIZE bytes in flight each, ${WARMUP} s warm-up, ${WINDOW} s window; dns: $CLIENTS clients, one query in flight each, A bench.test (warm cache)"
    if [ ${#SKIPPED[@]} -gt 0 ]; then
        echo "- skipped: $(printf '%s; ' "${SKIPPED[@]}" | sed 's/; $//')"
    fi
    echo
    echo "## UDP datagrams (\`triproxy-load udp\`)"
    echo
    table "$OUT/udp.kv" dps direct "${U_NAMES[@]}"
    if [ ${#D_NAMES[@]} -gt 0 ]; then
        echo
        echo "## DNS queries (\`triproxy-load dns\`)"
        echo
        table "$OUT/dns.kv" qps dnsmasq "${D_NAMES[@]}"
    fi
    echo
    echo "Raw lines: $OUT/udp.kv, $OUT/dns.kv."
} >"$OUT/results.md"
cat "$OUT/results.md"
log "results in $OUT/results.md"
