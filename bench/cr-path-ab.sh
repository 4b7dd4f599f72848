#!/usr/bin/env bash
# Interleaved A/B rounds of bench/cr-path.bench.ts: A = a build of another commit (default HEAD~0 of
# the branch you name in BASE_REF, e.g. main), B = this worktree's dist/. The machine is shared and
# noisy, so only figures from the same run (alternating rounds) are compared.
# Usage: BASE_DIR=/tmp/cr-base ROUNDS=2 bash bench/cr-path-ab.sh   (BASE_DIR: a built checkout of the base)
# Each round runs parts 1-3 (CR_BENCH_STORED=0); set STORED=10000 for one extra round each with part 4.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
base="${BASE_DIR:?BASE_DIR: a built checkout of the base commit (with dist/ and bench/cr-path.bench.ts)}"
rounds="${ROUNDS:-2}"
for r in $(seq 1 "$rounds"); do
  for side in A B; do
    dir="$base"; [ "$side" = B ] && dir="$here"
    echo "=== round $r side $side ($dir)"
    (cd "$dir" && CR_BENCH_STORED=0 timeout 900 node dist/bench/cr-path.bench.js 2>&1 | grep -v '^{') || echo "round failed: $?"
  done
done
if [ -n "${STORED:-}" ]; then
  for side in A B; do
    dir="$base"; [ "$side" = B ] && dir="$here"
    echo "=== stored round side $side ($dir)"
    (cd "$dir" && CR_BENCH_N=1000 CR_BENCH_WARM=5 CR_BENCH_STORED="$STORED" timeout 1200 node dist/bench/cr-path.bench.js 2>&1 | grep -v '^{') || echo "round failed: $?"
  done
fi
