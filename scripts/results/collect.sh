#!/usr/bin/env bash
# Copies the small files of a finished (or partly finished) --seeds sweep into results/<name>/ and
# writes its README: the exact command, wall time, machine (CPU model, ISA, cores), commit and the
# summary table. Checkpoints never leave the sweep directory.
#
#   scripts/results/collect.sh SWEEP_DIR NAME --command "nfm-classify --seeds 5" --wall "41 min" [--commit SHA] [--note TEXT]
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() { echo "usage: $0 SWEEP_DIR NAME --command CMD --wall TEXT [--commit SHA] [--note TEXT]" >&2; exit 2; }
[ $# -ge 2 ] || usage
sweep=$1 name=$2; shift 2
command="" wall="" commit=$(git rev-parse --short HEAD) note=""
while [ $# -gt 0 ]; do
    case "$1" in
        --command) command=$2; shift 2 ;;
        --wall) wall=$2; shift 2 ;;
        --commit) commit=$2; shift 2 ;;
        --note) note=$2; shift 2 ;;
        *) usage ;;
    esac
done
[ -f "$sweep/sweep.json" ] || { echo "collect: $sweep is not a sweep directory (no sweep.json)" >&2; exit 1; }
[ -n "$command" ] && [ -n "$wall" ] || usage

out=results/$name
mkdir -p "$out/plots" "$out/runs"
cp "$sweep"/sweep.json "$sweep"/summary.md "$sweep"/summary.csv "$sweep"/seeds.csv "$sweep"/curves.csv "$out"/
[ -f "$sweep/timings.csv" ] && cp "$sweep/timings.csv" "$out"/
cp "$sweep"/plots/*.png "$out"/plots/
# Per run: its settings, final metrics and logged metrics (CSV), never its checkpoints.
for run in "$sweep"/seed-*/*/; do
    [ -d "$run" ] || continue
    case "$run" in *.set-aside*) continue ;; esac
    seed=$(basename "$(dirname "$run")") model=$(basename "$run")
    target="$out/runs/$seed-$model"
    mkdir -p "$target"
    for file in config.json final_metrics.json accuracy_by_question_type.csv accuracy_by_question_and_color.csv accuracy_by_class.csv results.json evaluation.json; do
        [ -f "$run/$file" ] && cp "$run/$file" "$target/"
    done
    # A generative run's final sample grid (about 64 KB): the images behind its FD, which a reader
    # can check for a collapsed generator at a glance.
    for grid in "$run"/samples/*/samples.png; do
        [ -f "$grid" ] && cp "$grid" "$target/samples.png"
    done
    # Logged metrics, with long series (a DQN run's per-episode returns) averaged down to 1,000 points.
    [ -f "$run/metrics.csv" ] && awk -v limit=2000 -f scripts/results/thin-metrics.awk "$run/metrics.csv" "$run/metrics.csv" > "$target/metrics.csv"
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
isa=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx512f|avx2|fma' | sort -u | tr '\n' ' ')
{
    echo "# $name"
    echo
    [ -n "$note" ] && { echo "$note"; echo; }
    echo "Reproduce (from the repository root, after \`bash scripts/setup.sh\`):"
    echo
    echo '```sh'
    echo "swift build -c release && .build/release/$command"
    echo '```'
    echo
    echo "| | |"
    echo "| --- | --- |"
    echo "| wall time | $wall |"
    if [ -f "$sweep/timings.csv" ]; then
        echo "| run time, all runs and invocations added | $(awk -F, 'NR > 1 { s += $4 } END { printf "%.0f min", s / 60 }' "$sweep/timings.csv") (timings.csv) |"
    fi
    echo "| machine | $cpu, $(nproc) cores, ISA: ${isa:-baseline x86-64} |"
    echo "| commit | $commit |"
    echo "| collected | $(date -u +%F) |"
    echo
    echo "oneDNN picks different kernels on AVX2 and AVX-512 machines, so figures can move between them."
    echo
    sed '1d' "$sweep/summary.md"
    echo
    echo "Files: \`summary.csv\` (per model n, mean, std, 95% CI; the paired difference with t and p), \`seeds.csv\` (every run's final metrics),"
    echo "\`curves.csv\` and \`plots/\` (learning curves, mean across seeds with a 95% band), \`runs/<seed>-<model>/\` (each run's config, final and logged metrics, and for nfm-generate its final sample grid \`samples.png\` and any rescoring by \`nfm-generate evaluate\`, \`evaluation.json\`; a series logged more than 2,000 times is averaged over"
    echo "consecutive blocks down to 1,000 points by \`scripts/results/thin-metrics.awk\`; the summary above was computed from the full files)."
} > "$out/README.md"
echo "collect: wrote $out ($(du -sh "$out" | cut -f1))"
