#!/usr/bin/env bash
# Sizing the Sort-of-CLEVR medium preset (issue 11): single baseline runs, one seed each, on 9,800
# training images for 10,000 steps, evaluated every 1,000, to find a budget where the baseline learns
# the images (aim: 85% non-relational in distribution). Each pilot continues from its checkpoints when
# the script is rerun; the runs live in runs/experiments/<name>/ and their logs beside them. Runs under
# nice, after any run-all.sh still running (they share the machine's 2 cores).
#
#   nohup bash scripts/results/medium-pilots.sh > runs/pilots.log 2>&1 &
#
# Done (results/README.md, results/medium-pilots/): medium-pilot-baseline (constant lr 1e-3, widths 24-48-96-192)
# and every pilot below; the medium preset (`--preset medium`) was chosen from them.
set -uo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product nfm-classify >/dev/null || { echo "medium-pilots: release build failed" >&2; exit 1; }
bin=$(swift build -c release --show-bin-path)
root=runs/experiments
mkdir -p "$root"
while pgrep -f "scripts/results/run-all.sh" > /dev/null; do sleep 60; done

# name | flags beyond the common ones
pilots=(
    "medium-pilot-cosine|--lr-schedule cosine"
    "medium-pilot-cosine-paper-widths|--lr-schedule cosine --widths 48,96,192,384"
    "medium-pilot-cosine-lr3e-4|--lr-schedule cosine --learning-rate 3e-4"
    "medium-pilot-cosine-lr1e-4|--lr-schedule cosine --learning-rate 1e-4"
    "medium-pilot-no-heldout-colors|--heldout-colors 0"
)

for entry in "${pilots[@]}"; do
    name=${entry%%|*} flags=${entry#*|}
    if [ -f "$root/$name/config.json" ]; then
        command=(--model baseline --resume "$root/$name")
    else
        # shellcheck disable=SC2206
        command=(--model baseline --train-images 9800 --steps 10000 --eval-every 1000 --checkpoint-every 1000 $flags
                 --run-dir "$root/$name")
    fi
    echo "$(date -u +%FT%TZ) $name: ${command[*]} (load $(cut -d' ' -f1-3 /proc/loadavg))"
    start=$(date +%s)
    nice -n 10 "$bin/nfm-classify" "${command[@]}" > "$root/$name.out" 2>&1
    echo "$(date -u +%FT%TZ) $name: exit $? after $(( ($(date +%s) - start) / 60 )) min"
done
