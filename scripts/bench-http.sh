#!/usr/bin/env bash
# Plain HTTP forwarding (GET http://... over keep-alive connections) through triproxy and
# the HTTP proxies a Debian machine can run, next to direct, in one run:
#
#   scripts/bench-http.sh                  # about 3 minutes once the binaries are built
#   BENCH_HTTP_REPS=1 scripts/bench-http.sh     # one repetition, about a minute
#   BENCH_NO_INSTALL=1 scripts/bench-http.sh    # do not apt-get install squid / tinyproxy
#   TRIPROXY_BIN=/path/to/triproxy scripts/bench-http.sh   # measure another triproxy build
#
# Columns (every one measured by `triproxy-load http` and `triproxy-load http-download`
# against the tool's own origin on 127.0.0.1):
#   direct        origin-form requests straight to the origin (the tool's ceiling)
#   triproxy-std  target/release/triproxy --runtime std, `proxy` service on 127.0.0.1:22080
#   triproxy-smol the same on --runtime smol, 127.0.0.1:22180
#   squid         apt's squid, foreground (-N), no caching, 127.0.0.1:22280
#   tinyproxy     apt's tinyproxy, foreground (-d), 127.0.0.1:22380
#   3proxy        3proxy built from source (THREEPROXY_BIN, default ../3proxy-bin/3proxy
#                 beside the repository), 127.0.0.1:22480; skipped with a note if absent
#   3proxy-nodelay  the same with TCP_NODELAY on both sides (-ocTCP_NODELAY
#                 -osTCP_NODELAY), 127.0.0.1:22580: 3proxy's default writes a response
#                 head and body separately and waits out delayed ACKs (40 ms a request)
#
# Each repetition runs, for every column in turn: C clients (BENCH_HTTP_CONCURRENCY, 64)
# sending GET /small for BENCH_HTTP_SECONDS (4) after BENCH_HTTP_WARMUP (1) seconds, then
# one download of BENCH_HTTP_BYTES (1G: at 2 GiB/s a smaller body is over in a few of
# /proc's 10 ms CPU ticks, too few to compare CPU per GiB). The table shows medians of BENCH_HTTP_REPS (3)
# repetitions and ratios to direct. A column whose proxy refuses (triproxy answers 501
# until forwarding lands) or dies is reported as failed; the run goes on. The peers run as
# `nobody` when this is a root shell, with their configuration and logs in a temporary
# directory; every process started here is stopped on exit. Nothing listens beyond
# 127.0.0.1. Writes $CARGO_TARGET_DIR/bench-http/results.md (default target/).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET/bench-http
mkdir -p "$OUT"
REPS=${BENCH_HTTP_REPS:-3}
WINDOW=${BENCH_HTTP_SECONDS:-4}
WARMUP=${BENCH_HTTP_WARMUP:-1}
CONCURRENCY=${BENCH_HTTP_CONCURRENCY:-64}
BYTES=${BENCH_HTTP_BYTES:-1G}
THREEPROXY_BIN=${THREEPROXY_BIN:-$ROOT/../3proxy-bin/3proxy}
# Every tool call is bounded by its own timeouts; this is the backstop.
CALL_LIMIT=$((WARMUP + WINDOW + 60))

log() { printf 'bench-http: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/bench-common.sh
. scripts/lib/bench-common.sh

bench_start_run bench-http

# 64 clients need little, but 3proxy warns below 2 descriptors per maxconn.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

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
    command -v squid >/dev/null || missing+=(squid)
    command -v tinyproxy >/dev/null || missing+=(tinyproxy)
    apt_install_missing "${missing[@]}"
}
install_peers

# Runs a command as nobody when this is a root shell (setpriv execs: $! is the server).
UNPRIV=()
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    group=nogroup
    getent group nogroup >/dev/null || group=nobody
    UNPRIV=(setpriv --reuid=nobody --regid="$group" --clear-groups --)
    chown nobody "$RUN"
fi

listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# wait_port PORT PID: until PORT listens (true), PID exits or 10 s pass (false).
wait_port() {
    local port=$1 pid=$2 i
    for i in $(seq 100); do
        listening "$port" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

for port in 22080 22180 22280 22380 22480 22580; do
    if listening "$port"; then
        log "port $port is already in use; stop whatever listens there first:"
        ss -Hltnp "sport = :$port" >&2 || true
        exit 1
    fi
done

# The columns: NAMES[i] is reached through URLS[i] and charged to SERVER_PIDS[i].
NAMES=(direct)
URLS=(direct)
SERVER_PIDS=("")
SKIPPED=()

# start NAME PORT LOGFILE COMMAND...: starts a server, adds its column once it listens.
start() {
    local name=$1 port=$2 logfile=$3
    shift 3
    "$@" >"$logfile" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    if wait_port "$port" "$pid"; then
        NAMES+=("$name")
        URLS+=("http://127.0.0.1:$port")
        SERVER_PIDS+=("$pid")
    else
        log "$name did not start; its column is skipped. Its output:"
        tail -n 20 "$logfile" >&2 || true
        SKIPPED+=("$name (did not start)")
    fi
}

for runtime in std smol; do
    port=22080
    [ "$runtime" = smol ] && port=22180
    cat >"$RUN/triproxy-$runtime.cfg" <<EOF
# triproxy $runtime for scripts/bench-http.sh: the HTTP proxy service on loopback, no log.
maxconn 5000
auth iponly
allow *
proxy -p$port -i127.0.0.1
EOF
    start "triproxy-$runtime" "$port" "$RUN/triproxy-$runtime.log" \
        "$TRIPROXY" --runtime "$runtime" "$RUN/triproxy-$runtime.cfg"
done

if command -v squid >/dev/null; then
    # No cache, no access log (triproxy and 3proxy run without one too), no disk.
    cat >"$RUN/squid.conf" <<EOF
# squid for scripts/bench-http.sh: a forward proxy on loopback, nothing cached.
http_port 127.0.0.1:22280
acl bench src 127.0.0.1/32
http_access allow bench
http_access deny all
cache deny all
cache_mem 0 MB
access_log none
cache_log $RUN/squid-cache.log
pid_filename $RUN/squid.pid
coredump_dir $RUN
netdb_filename none
icp_port 0
htcp_port 0
shutdown_lifetime 1 seconds
pinger_enable off
via off
forwarded_for transparent
EOF
    start squid 22280 "$RUN/squid.log" "${UNPRIV[@]}" squid -N -f "$RUN/squid.conf"
else
    SKIPPED+=("squid (not installed)")
fi

if command -v tinyproxy >/dev/null; then
    cat >"$RUN/tinyproxy.conf" <<EOF
# tinyproxy for scripts/bench-http.sh: loopback only, quiet.
Port 22380
Listen 127.0.0.1
Timeout 600
MaxClients 5000
Allow 127.0.0.1
LogFile "$RUN/tinyproxy-file.log"
LogLevel Critical
DisableViaHeader Yes
EOF
    start tinyproxy 22380 "$RUN/tinyproxy.log" "${UNPRIV[@]}" tinyproxy -d -c "$RUN/tinyproxy.conf"
else
    SKIPPED+=("tinyproxy (not installed)")
fi

if [ -x "$THREEPROXY_BIN" ]; then
    for variant in 3proxy 3proxy-nodelay; do
        port=22480 options=""
        if [ "$variant" = 3proxy-nodelay ]; then
            port=22580 options=" -ocTCP_NODELAY -osTCP_NODELAY"
        fi
        cat >"$RUN/$variant.cfg" <<EOF
# $variant for scripts/bench-http.sh: the HTTP proxy on loopback, no log.
maxconn 5000
auth none
allow *
proxy -p$port -i127.0.0.1$options
EOF
        start "$variant" "$port" "$RUN/$variant.log" "${UNPRIV[@]}" "$THREEPROXY_BIN" "$RUN/$variant.cfg"
    done
else
    log "no 3proxy binary at $THREEPROXY_BIN (build 3proxy 1.0 with make -f Makefile.Linux and copy bin/3proxy there); its column is skipped"
    SKIPPED+=("3proxy (no build at $THREEPROXY_BIN)")
fi

# measure SUBCOMMAND OUTFILE REP INDEX ARGS...: one call, one line "NAME REP key=value...".
measure() {
    local sub=$1 file=$2 rep=$3 i=$4
    shift 4
    local name=${NAMES[$i]} pid=${SERVER_PIDS[$i]} line
    local args=(--op-timeout 5 "$sub" --proxy "${URLS[$i]}" --format kv "$@")
    if [ -n "$pid" ]; then
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$name $rep failed=the proxy process is gone" >>"$file"
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

: >"$OUT/http.kv"
: >"$OUT/download.kv"
: >"$OUT/tool-stderr.log"
START=$(date +%s)
for rep in $(seq "$REPS"); do
    for i in "${!NAMES[@]}"; do
        log "repetition $rep/$REPS: ${NAMES[$i]}"
        measure http "$OUT/http.kv" "$rep" "$i" \
            --concurrency "$CONCURRENCY" --seconds "$WINDOW" --warmup "$WARMUP"
        measure http-download "$OUT/download.kv" "$rep" "$i" --bytes "$BYTES" --time-limit 30
    done
done
log "measured in $(($(date +%s) - START)) s"

# The table: medians per column, ratios to direct; a column with no successful run shows
# its first error instead.
table() {
    awk -v names="${NAMES[*]}" -v reps="$REPS" -v hfile="$OUT/http.kv" -v dfile="$OUT/download.kv" '
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
    # Reads a "NAME REP key=value ..." line into kv[] and answers NAME; the last key
    # (errors_detail, error or failed) runs to the end of the line and, unless it says
    # nothing went wrong, is kept in problem (else problem is empty).
    function parse(line,    n, f, i, j, k, v) {
        n = split(line, f, " ")
        problem = ""
        for (i = 3; i <= n; i++) {
            k = substr(f[i], 1, index(f[i], "=") - 1)
            v = substr(f[i], index(f[i], "=") + 1)
            if (k == "errors_detail" || k == "error" || k == "failed") {
                for (j = i + 1; j <= n; j++) v = v " " f[j]
                if (k == "failed" || (k == "error" && v != "none") || (k == "errors_detail" && v != "0"))
                    problem = v
                break
            }
            kv[k] = v
        }
        return f[1]
    }
    BEGIN {
        while ((getline line < hfile) > 0) {
            split("", kv)
            name = parse(line)
            if (kv["requests"] + 0 > 0) {
                add("rps " name, kv["rps"]); add("p99 " name, kv["p99_ms"])
                add("cpu " name, kv["proxy_cpu_s_per_1k"]); add("conn " name, kv["window_connects"])
                add("idle " name, kv["idle_closes"])
            }
            if (kv["others_cpus"] + 0 > others[name] + 0) others[name] = kv["others_cpus"]
            errs["h", name] += kv["errors"]
            if (problem != "" && !(("h", name) in firsterr)) firsterr["h", name] = problem
        }
        while ((getline line < dfile) > 0) {
            split("", kv)
            name = parse(line)
            if (problem == "" && kv["bytes"] + 0 > 0) {
                add("mib " name, kv["mib_per_s"]); add("gib " name, kv["proxy_cpu_s_per_gib"])
            } else if (!(("d", name) in firsterr)) {
                firsterr["d", name] = (problem == "") ? "no bytes" : problem
            }
        }
        n = split(names, col, " ")
        rd = median(acc["rps direct"]); pd = median(acc["p99 direct"]); md = median(acc["mib direct"])
        print "| peer | req/s | vs direct | p99 ms | vs direct | proxy CPU s/1k req | download MiB/s | vs direct | proxy CPU s/GiB | notes |"
        print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        for (c = 1; c <= n; c++) {
            name = col[c]
            r = median(acc["rps " name]); p = median(acc["p99 " name]); u = median(acc["cpu " name])
            m = median(acc["mib " name]); g = median(acc["gib " name]); k = median(acc["conn " name])
            q = median(acc["idle " name])
            note = ""
            if (r == "") note = "requests FAILED: " firsterr["h", name]
            else if (errs["h", name] > 0) note = errs["h", name] " request errors (" firsterr["h", name] ")"
            if (r != "" && k + 0 > 0) note = note (note == "" ? "" : "; ") sprintf("%.0f new connections per window (no client keep-alive)", k)
            if (r != "" && q + 0 > 0) note = note (note == "" ? "" : "; ") sprintf("%.0f of them after an unannounced close (request sent again)", q)
            if (others[name] + 0 >= 0.3) note = note (note == "" ? "" : "; ") sprintf("other processes up to %.2f CPUs", others[name])
            if (m == "") note = note (note == "" ? "" : "; ") "download FAILED: " firsterr["d", name]
            else if (("d", name) in firsterr) note = note (note == "" ? "" : "; ") "a download failed: " firsterr["d", name]
            gsub(/\|/, "/", note)
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, \
                fmt(r, 0), (name == "direct") ? "1.00x" : ratio(r, rd), \
                fmt(p, 2), (name == "direct") ? "1.00x" : ratio(p, pd), \
                (name == "direct") ? "–" : fmt(u, 4), \
                fmt(m, 0), (name == "direct") ? "1.00x" : ratio(m, md), \
                (name == "direct") ? "–" : fmt(g, 3), note
        }
    }'
}

version() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo absent; }
{
    echo "# HTTP forwarding benchmark"
    echo
    echo "- finished: $(date -u '+%Y-%m-%d %H:%M UTC'); $REPS repetitions, medians"
    echo "- machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), kernel $(uname -r); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ -n "${TRIPROXY_BIN:-}" ]; then
        echo "- triproxy: $TRIPROXY_BIN (TRIPROXY_BIN); triproxy-load: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    else
        echo "- triproxy: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown) (working tree may differ)"
    fi
    echo "- peers: squid $(version squid), tinyproxy $(version tinyproxy), 3proxy $([ -x "$THREEPROXY_BIN" ] && echo "from $THREEPROXY_BIN" || echo absent)"
    echo "- requests: $CONCURRENCY keep-alive clients, GET /small (100-byte body), ${WARMUP} s warm-up, ${WINDOW} s window; download: one ${BYTES} body after a 1 MiB warm-up"
    if [ ${#SKIPPED[@]} -gt 0 ]; then
        echo "- skipped: ${SKIPPED[*]}"
    fi
    echo
    table
    echo
    echo "Raw lines: $OUT/http.kv, $OUT/download.kv."
} >"$OUT/results.md"
cat "$OUT/results.md"
log "results in $OUT/results.md"
