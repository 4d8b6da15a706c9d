# Shell shared by the benchmark scripts (scripts/bench*.sh), sourced after they define
# log() and OUT. Not a script of its own.

# Installs the Debian packages named (the peers a run is missing) when this is a root shell
# with apt-get and BENCH_NO_INSTALL is unset; otherwise says which peers are skipped. The
# packages' init scripts are kept from starting system-wide daemons.
apt_install_missing() {
    local missing=("$@")
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ -n "${BENCH_NO_INSTALL:-}" ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        log "not installing ${missing[*]} (needs root and apt-get); those peers are skipped"
        return 0
    fi
    log "installing ${missing[*]}"
    local guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        guard=/usr/sbin/policy-rc.d
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        || log "apt-get failed; missing peers are skipped"
    [ -n "$guard" ] && rm -f "$guard"
    return 0
}

# A temporary directory for the run's configurations and logs (RUN), the processes it
# starts (PIDS), and a cleanup at exit: every process is asked to stop, killed if still
# there after 5 s (squid takes its shutdown_lifetime, 1 s), and the logs and
# configurations are kept in $OUT/logs.
bench_start_run() {
    RUN=$(mktemp -d "/tmp/$1.XXXXXX")
    chmod 755 "$RUN"
    PIDS=()
    trap bench_cleanup EXIT INT TERM
}

bench_cleanup() {
    local pid i
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for i in $(seq 50); do
        local alive=0
        for pid in "${PIDS[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    mkdir -p "$OUT/logs"
    cp "$RUN"/*.log "$RUN"/*.conf "$RUN"/*.cfg "$OUT/logs/" 2>/dev/null || true
    rm -rf "$RUN"
}
