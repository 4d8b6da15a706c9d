#!/usr/bin/env bash
# Runs fuzz targets one after another (all of fuzz/fuzz_targets/, or those named) for
# FUZZ_SECS seconds each (default 600), then prints one line per target: exit status,
# executions, seconds, corpus files and crash artifacts. Needs nightly and cargo-fuzz
# (see fuzz/README.md). Logs go to FUZZ_LOGS (default /tmp/triproxy-fuzz-logs).
#
# Each target is built first with `cargo fuzz build -O -a` (retrying while the tree does
# not compile, as when another crate is mid-change), then its binary is run exactly as
# `cargo +nightly fuzz run -O -a TARGET -- -max_total_time=SECS -rss_limit_mb=2048` runs it,
# so that edits to the tree during the run cannot stop it.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECS:-600}
logs=${FUZZ_LOGS:-/tmp/triproxy-fuzz-logs}
bin_dir=fuzz/target/x86_64-unknown-linux-gnu/release
mkdir -p "$logs"
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
summary=()
for t in "${targets[@]}"; do
  log="$logs/$t.log"
  echo "=== $t: ${secs}s, log $log ($(date -u +%FT%TZ))"
  tries=0
  until nice -n 10 cargo +nightly fuzz build -O -a "$t" >"$log.build" 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 40 ]; then echo "$t: does not build, see $log.build"; continue 2; fi
    sleep 30
  done
  mkdir -p "fuzz/artifacts/$t" "fuzz/corpus/$t"
  started=$(date -u +%FT%TZ)
  nice -n 10 "$bin_dir/$t" -artifact_prefix="$PWD/fuzz/artifacts/$t/" \
    -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 \
    "$PWD/fuzz/corpus/$t" >"$log" 2>&1
  status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  found=$(find "fuzz/artifacts/$t" -type f | wc -l)
  line="$t start=$started exit=$status execs=${execs:-?} seconds=${took:-?} corpus=$corpus artifacts=$found"
  echo "$line"
  summary+=("$line")
done
printf '\n%s\n' "${summary[@]}"
