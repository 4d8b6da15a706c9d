#!/usr/bin/env bash
# A fresh clone passes its tests: copies the repository (HEAD plus uncommitted changes to
# tracked files; untracked files are left out, as from a clone) into a temporary folder
# with nothing beside it, so no `../shared`, and runs the tests there with CI and
# TRIPROXY_3PROXY_CONFIGS unset.
#
# By default only the test that reads data from outside the repository runs
# (daemon/tests/config_samples.rs), and it must pass by printing `skipped` for each of its
# tests: cheap, one test binary. `--all` runs the README's whole test command instead.
#
# The copy shares the target folder (CARGO_TARGET_DIR, else ./target), so only the
# workspace's own crates are compiled again.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/triproxy"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  rev=$(git -C "$ROOT" stash create)
  git -C "$ROOT" archive --format=tar "${rev:-HEAD}" | tar -x -C "$tmp/triproxy"
else # an unpacked source archive: everything but build output
  tar -C "$ROOT" --exclude=./target -cf - . | tar -x -C "$tmp/triproxy"
fi
cd "$tmp/triproxy"
[ ! -e ../shared ] || { echo "error: $tmp/shared exists"; exit 1; }

if [ "${1:-}" = --all ]; then
  env -u CI -u TRIPROXY_3PROXY_CONFIGS cargo test --workspace
  exit
fi

out="$tmp/config_samples.out"
if ! env -u CI -u TRIPROXY_3PROXY_CONFIGS \
    cargo test -p triproxy --test config_samples -- --nocapture >"$out" 2>&1; then
  cat "$out"
  echo "error: config_samples fails on a copy of the repository without ../shared"
  exit 1
fi
tests=$(sed -nE 's/^test result: ok\. ([0-9]+) passed.*/\1/p' "$out")
skips=$(grep -c 'is not beside this clone: skipped' "$out" || true)
if [ -z "$tests" ] || [ "$tests" = 0 ] || [ "$skips" != "$tests" ]; then
  cat "$out"
  echo "error: expected every config_samples test to skip ($skips skips, $tests tests passed)"
  exit 1
fi
echo "ok: config_samples skips its $tests tests without ../shared"
