#!/usr/bin/env bash
# The README's test command. On a fresh Debian machine (as root) it installs what it needs,
# builds, runs every tier and ends with the line "N passed, N failed".
#
#   bash scripts/test.sh                # everything: unit, integration, cluster, VM tier
#   bash scripts/test.sh --tier unit    # only the tiers that need no guest
#   bash scripts/test.sh --tier vm      # only the VM tier
#   bash scripts/test.sh --no-setup     # skip apt-get/npm ci (developer loop)
set -uo pipefail
cd "$(dirname "$0")/.."
tier=all
setup=1
while [ $# -gt 0 ]; do
  case "$1" in
    --tier) tier="$2"; shift 2 ;;
    --no-setup) setup=0; shift ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

if [ "$setup" = 1 ]; then
  bash scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
else
  npx tsc -p tsconfig.json || { echo "0 passed, 1 failed"; exit 1; }
fi

passed=0; failed=0; skipped=0
run_tier() { # name, glob...
  local name="$1"; shift
  local out; out=$(mktemp)
  echo "=== tier: $name"
  npx ava --tap "$@" 2>&1 | tee "$out"
  local rc=${PIPESTATUS[0]}
  # Count the TAP lines themselves: ava's own summary is missing when its reporter crashes.
  local p f s
  p=$(grep -cE '^ok [0-9]+ ' "$out" | tr -d ' ')
  s=$(grep -cE '^ok [0-9]+ .*# SKIP' "$out" | tr -d ' ')
  f=$(grep -cE '^not ok [0-9]+ ' "$out" | tr -d ' ')
  p=$((p - s))
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    echo "tier $name: the test runner exited with $rc without reporting a failed test: counting one failure"
    f=1
  fi
  if [ $((p + f + s)) = 0 ]; then
    echo "tier $name ran no test: counting one failure"
    f=1
  fi
  echo "tier $name: $p passed, $f failed, $s skipped"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  rm -f "$out"
}

case "$tier" in
  all|unit)
    run_tier unit 'dist/native/**/*.test.js' 'dist/backend/**/*.test.js' 'dist/cluster/**/*.test.js' ;;
esac
case "$tier" in
  all|vm)
    run_tier vm 'dist/vm-tests/**/*.test.js' ;;
esac

if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" = 0 ]
