#!/usr/bin/env bash
# CI runner of the deterministic simulator (docs/simulation.md): the regression seeds of
# cluster/sim/regression-seeds.txt, the known-failing seeds (reported only), then up to
# SIM_RANDOM_SEEDS random seeds within SIM_BUDGET_MS of wall clock. A failing seed prints
# `reproduce: node dist/cluster/sim/main.js --seed=0x…`; add it to the regression list once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ "${SKIP_BUILD:-0}" == 1 ]] || npx tsc -p tsconfig.json
exec node dist/cluster/sim/seeds.js --random="${SIM_RANDOM_SEEDS:-6}" --budget-ms="${SIM_BUDGET_MS:-45000}"
