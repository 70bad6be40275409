#!/usr/bin/env bash
# Rebuilds a sweep directory from what collect.sh committed in results/<name>/, so that a sweep
# started in one session continues in the next on a fresh checkout: each finished run comes back
# with its settings, final and logged metrics (enough for the sweep to count it as finished and for
# its summary), and the sweep then runs only what is left. Runs that had not finished were never
# committed (checkpoints stay out of git) and start afresh.
#
#   scripts/results/restore.sh results/NAME SWEEP_DIR
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 RESULTS_DIR SWEEP_DIR" >&2; exit 2; }
from=$1 sweep=$2
[ -f "$from/sweep.json" ] || { echo "restore: $from has no sweep.json: nothing to continue" >&2; exit 1; }
[ ! -e "$sweep" ] || { echo "restore: $sweep already exists; it is the sweep to continue" >&2; exit 1; }

mkdir -p "$sweep"
cp "$from/sweep.json" "$sweep/"
[ -f "$from/timings.csv" ] && cp "$from/timings.csv" "$sweep/"
restored=0
for run in "$from"/runs/seed-*; do
    [ -f "$run/final_metrics.json" ] || continue
    # runs/seed-<s>-<model> (collect.sh's naming) → <sweep>/seed-<s>/<model>
    base=$(basename "$run")
    seed=$(echo "$base" | sed -E "s/^(seed-[0-9]+)-.*/\1/") model=$(echo "$base" | sed -E "s/^seed-[0-9]+-//")
    mkdir -p "$sweep/$seed/$model"
    cp "$run"/* "$sweep/$seed/$model/"
    restored=$((restored + 1))
done
echo "restore: $sweep holds the $restored finished runs of $from"
