#!/usr/bin/env bash
# Live conformance: replays conformance/traces against triproxy on both runtimes (SOCKS
# without authentication and with RFC 1929 required; the HTTP proxy) and, when installed,
# against Dante (danted / sockd), microsocks and tinyproxy, all on 127.0.0.1 only. Writes
# text, JSON and JUnit reports to target/conformance/, prints a Markdown comparison table
# (also saved as target/conformance/table.md) and each run's time, and exits non-zero only
# if triproxy fails a trace (any level: its runs use --strict): the other servers' failures
# are results, not CI failures.
#
# Usage: scripts/conformance-live.sh            (needs cargo; the peers are optional)
# Env:   CONFORMANCE_PORT_BASE  first of four fixed ports for the peers (default 17080;
#        below Linux's ephemeral range so that busy outgoing ports cannot block the bind)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=target/conformance
BASE_PORT="${CONFORMANCE_PORT_BASE:-17080}"
DENIED=127.0.0.1:9            # refused by ACL in triproxy and Dante; a peer without ACLs
                              # reaches 127.0.0.1:9, where nothing listens (loopback only)
USER_NAME=tester
USER_PASS=secret-pass
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.xml "$OUT"/*.txt "$OUT"/table.md
TMP="$(mktemp -d)"
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

echo "=== building"
cargo build --quiet -p triproxy --bin triproxy -p triproxy-conformance --bin triproxy-conformance
BIN="$(cargo metadata --format-version 1 --no-deps 2>/dev/null | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
BIN="${BIN:-target}/debug"
CONF="$BIN/triproxy-conformance"

# Waits (at most 5 s) until something accepts on 127.0.0.1:$1.
wait_port() {
  local i
  for i in $(seq 1 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# Whether 127.0.0.1:$1 is free.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_triproxy NAME RUNTIME CONFIG_TEXT: starts the daemon, sets ADDR.
start_triproxy() {
  local name=$1 runtime=$2 i
  printf '%s' "$3" > "$TMP/$name.cfg"
  "$BIN/triproxy" --runtime "$runtime" "$TMP/$name.cfg" > /dev/null 2> "$TMP/$name.err" &
  PIDS+=("$!")
  for i in $(seq 1 100); do
    ADDR="$(sed -n 's/.* listening on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$TMP/$name.err" | head -n 1)"
    if [ -n "$ADDR" ]; then return 0; fi
    sleep 0.1
  done
  echo "triproxy ($runtime) did not start:" >&2
  cat "$TMP/$name.err" >&2
  return 1
}

# run LABEL SUITE ADDR [ARGS...]: one CLI run (reports NN-label-suite.{txt,json,xml});
# appends "LABEL=json" to COLUMNS (runs of one label are merged in the table) and
# returns the CLI's exit status (0 all pass, 1 failures, 2 error).
COLUMNS=()
RUNS=0
run() {
  local label=$1 suite=$2 addr=$3 rc=0 slug
  shift 3
  RUNS=$((RUNS + 1))
  slug="$(printf '%s' "$label" | tr -cs 'A-Za-z0-9' '-' | sed 's/-$//')"
  local base
  base="$OUT/$(printf '%02d' "$RUNS")-$slug-$suite"
  local start end
  start=$(date +%s%N)
  "$CONF" "$suite" --server "$addr" --quiet --json "$base.json" --junit "$base.xml" "$@" \
    > "$base.txt" 2>&1 || rc=$?
  end=$(date +%s%N)
  printf '  %-28s %-7s %6.1f s  %s\n' "$label" "$suite" \
    "$(awk "BEGIN { print ($end - $start) / 1e9 }")" "$(tail -n 1 "$base.txt")"
  if [ -f "$base.json" ]; then COLUMNS+=("$label=$base.json"); fi
  return "$rc"
}

OURS_FAILED=0
OPEN_CFG="auth iponly
deny * * ${DENIED%:*} ${DENIED##*:}
allow * 127.0.0.1
socks -p0 -i127.0.0.1
"
HTTP_CFG="auth iponly
deny * * ${DENIED%:*} ${DENIED##*:}
allow * 127.0.0.1
proxy -p0 -i127.0.0.1
"
STRONG_CFG="users $USER_NAME:CL:$USER_PASS
auth strong
allow $USER_NAME
socks -p0 -i127.0.0.1
"

echo "=== triproxy"
for runtime in std smol; do
  label="triproxy ($runtime)"
  start_triproxy "open-$runtime" "$runtime" "$OPEN_CFG"
  run "$label" socks5 "$ADDR" --strict --denied "$DENIED" || OURS_FAILED=1
  run "$label" socks4 "$ADDR" --strict --denied "$DENIED" || OURS_FAILED=1
  start_triproxy "strong-$runtime" "$runtime" "$STRONG_CFG"
  run "$label" socks5 "$ADDR" --strict --user "$USER_NAME" --pass "$USER_PASS" || OURS_FAILED=1
  start_triproxy "http-$runtime" "$runtime" "$HTTP_CFG"
  run "$label" http "$ADDR" --strict --denied "$DENIED" || OURS_FAILED=1
done

DANTE="$(command -v danted || command -v sockd || true)"
if [ -n "$DANTE" ]; then
  echo "=== Dante ($DANTE)"
  port=$BASE_PORT
  if port_free "$port"; then
    cat > "$TMP/sockd.conf" <<EOF
logoutput: $TMP/sockd.log
internal: 127.0.0.1 port = $port
external: lo
clientmethod: none
socksmethod: none
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks block { from: 0.0.0.0/0 to: ${DENIED%:*}/32 port = ${DENIED##*:} }
socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: bind connect udpassociate }
socks pass { from: 0.0.0.0/0 to: 127.0.0.0/8 command: bindreply udpreply }
EOF
    "$DANTE" -f "$TMP/sockd.conf" -N 1 -p "$TMP/sockd.pid" > "$TMP/sockd.out" 2>&1 &
    PIDS+=("$!")
    if wait_port "$port"; then
      run "Dante" socks5 "127.0.0.1:$port" --denied "$DENIED" || true
      run "Dante" socks4 "127.0.0.1:$port" --denied "$DENIED" || true
    else
      echo "  Dante did not start:"; cat "$TMP/sockd.out" "$TMP/sockd.log" 2>/dev/null | tail -n 5
    fi
  else
    echo "  port $port in use; Dante not run"
  fi
else
  echo "=== Dante not installed (apt-get install dante-server)"
fi

if command -v microsocks > /dev/null; then
  echo "=== microsocks"
  port=$((BASE_PORT + 1))
  if port_free "$port"; then
    microsocks -i 127.0.0.1 -p "$port" > "$TMP/microsocks.out" 2>&1 &
    PIDS+=("$!")
    if wait_port "$port"; then
      run "microsocks" socks5 "127.0.0.1:$port" || true
      run "microsocks" socks4 "127.0.0.1:$port" || true
    else
      echo "  microsocks did not start"
    fi
  else
    echo "  port $port in use; microsocks not run"
  fi
  port=$((BASE_PORT + 2))
  if port_free "$port"; then
    microsocks -i 127.0.0.1 -p "$port" -u "$USER_NAME" -P "$USER_PASS" > "$TMP/microsocks-auth.out" 2>&1 &
    PIDS+=("$!")
    if wait_port "$port"; then
      run "microsocks" socks5 "127.0.0.1:$port" --user "$USER_NAME" --pass "$USER_PASS" || true
    else
      echo "  microsocks (with a password) did not start"
    fi
  else
    echo "  port $port in use; microsocks with a password not run"
  fi
else
  echo "=== microsocks not installed (apt-get install microsocks)"
fi

if command -v tinyproxy > /dev/null; then
  echo "=== tinyproxy"
  port=$((BASE_PORT + 3))
  if port_free "$port"; then
    printf 'Port %s\nListen 127.0.0.1\nTimeout 30\nMaxClients 64\nAllow 127.0.0.1\nLogLevel Error\n' \
      "$port" > "$TMP/tinyproxy.conf"
    tinyproxy -d -c "$TMP/tinyproxy.conf" > "$TMP/tinyproxy.out" 2>&1 &
    PIDS+=("$!")
    if wait_port "$port"; then
      run "tinyproxy" http "127.0.0.1:$port" || true
    else
      echo "  tinyproxy did not start"
    fi
  else
    echo "  port $port in use; tinyproxy not run"
  fi
else
  echo "=== tinyproxy not installed (apt-get install tinyproxy)"
fi

echo
echo "=== results (reports in $OUT/)"
"$CONF" table "${COLUMNS[@]}" | tee "$OUT/table.md"

if [ "$OURS_FAILED" != 0 ]; then
  echo "triproxy failed conformance traces: see $OUT/*triproxy*.txt" >&2
  exit 1
fi
echo "triproxy: no conformance failures"
