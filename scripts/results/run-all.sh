#!/usr/bin/env bash
# Every experiment of results/README.md, one sweep after another, each continued where it stopped:
# rerunning this script (after a lost session, say) keeps finished runs and resumes the others from
# their checkpoints. A finished sweep is collected into results/<name>/. Runs under nice, so that
# builds and tests on the same machine stay responsive; give a name to run only some sweeps.
#
# Sessions end and checkouts are fresh, so a sweep also continues across checkouts: when its
# directory is missing but results/<name>/ holds finished runs of it, restore.sh brings them back
# first. Stopping a sweep with Ctrl-C (or SIGINT to its process) collects what finished, so that it
# can be committed and continued later.
#
#   nohup bash scripts/results/run-all.sh > runs/experiments.log 2>&1 &
#   bash scripts/results/run-all.sh sort-of-clevr-quick vae
#   bash scripts/results/run-all.sh --bin /tmp/nfm-bin rl-breakout-1m   # prebuilt programs (and their
#                                                                         # commit in /tmp/nfm-bin/COMMIT),
#                                                                         # so that .build can be rebuilt meanwhile
#   bash scripts/results/run-all.sh --seed-jobs 3 rl-freeway-1m          # all three DQN seeds at once:
#                                                                         # no core idles while the third runs
#   NFM_EXPERIMENTS_DIR=~/nfm-experiments bash scripts/results/run-all.sh  # sweeps outside the checkout
set -uo pipefail
cd "$(dirname "$0")/../.."
bin="" prebuilt="" jobs=()
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$(cd "$2" && pwd) prebuilt=1; shift 2 ;;
        --seed-jobs) jobs=(--seed-jobs "$2"); shift 2 ;;
        -*) echo "run-all: unknown option $1 (options: --bin DIR, --seed-jobs N)" >&2; exit 2 ;;
        *) break ;;
    esac
done
if [ -z "$bin" ]; then
    swift build -c release >/dev/null || { echo "run-all: release build failed" >&2; exit 1; }
    bin=$(swift build -c release --show-bin-path)
fi
# The commit the runs are built from, recorded by collect.sh (HEAD may move while a sweep runs);
# prebuilt programs say theirs in a file COMMIT beside them.
if [ -n "$prebuilt" ]; then
    built=$(cat "$bin/COMMIT" 2>/dev/null || echo "unknown: programs prebuilt in $bin")
else
    built=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources Package.swift || echo "+uncommitted changes")
fi
# NFM_EXPERIMENTS_DIR puts the sweeps outside the checkout: on a machine that keeps its home folder
# between sessions while the checkout is laid anew, runs stopped part-way then resume from their
# checkpoints instead of starting again.
root=${NFM_EXPERIMENTS_DIR:-runs/experiments}
mkdir -p "$root"

# name | program and flags (seeds included)
experiments=(
    "sort-of-clevr-quick|nfm-classify --seeds 5"
    "sort-of-clevr-medium|nfm-classify --preset medium --seeds 3"
    "fashion-mnist-quick|nfm-classify --dataset fashion-mnist --seeds 3"
    "vae|nfm-generate --model vae --seeds 3"
    "gan-5k|nfm-generate --model gan --steps 5000 --seeds 5"
    "rl-breakout-1m|nfm-rl --game breakout --frames 1000000 --encoders baseline --seeds 3"
    "rl-freeway-1m|nfm-rl --game freeway --frames 1000000 --encoders baseline --seeds 3"
    "rl-space_invaders-1m|nfm-rl --game space_invaders --frames 1000000 --encoders baseline --seeds 3"
    "rl-asterix-1m|nfm-rl --game asterix --frames 1000000 --encoders baseline --seeds 3"
    "rl-seaquest-1m|nfm-rl --game seaquest --frames 1000000 --encoders baseline --seeds 3"
    "rl-breakout-nfm-500k|nfm-rl --game breakout --frames 500000 --encoders baseline,nfm --seeds 3"
    "rl-space_invaders-nfm-500k|nfm-rl --game space_invaders --frames 500000 --encoders baseline,nfm --seeds 3"
    # The control for the NFM encoder's extra layer (docs/rl.md). Its NFM runs are the same runs as
    # rl-breakout-nfm-500k's (same flags, seeds and numbers): they were copied into its directory by
    # hand (results/rl-breakout-two-layer-500k/README.md), so that only the two-layer runs ran. Started
    # from nothing, this sweep runs them again (about 2 h each).
    "rl-breakout-two-layer-500k|nfm-rl --game breakout --frames 500000 --encoders two-layer,nfm --seeds 3"
)

for entry in "${experiments[@]}"; do
    name=${entry%%|*} command=${entry#*|}
    if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
    echo "$(date -u +%FT%TZ) $name: $command (load $(cut -d' ' -f1-3 /proc/loadavg))"
    # Skipped when results/<name>/ holds it finished with this very command; a command changed since
    # (more seeds, say) continues from the collected runs instead. The line is collect.sh's "Reproduce".
    if [ ! -e "$root/$name" ] && [ -f "results/$name/README.md" ] && ! grep -q "Unfinished sweep" "results/$name/README.md" \
        && grep -qxF "swift build -c release && .build/release/$command" "results/$name/README.md"; then
        echo "$name: finished and collected in results/$name; skipped"
        continue
    fi
    if [ ! -e "$root/$name" ] && [ -f "results/$name/sweep.json" ]; then
        scripts/results/restore.sh "results/$name" "$root/$name" || continue
    fi
    # A sweep continued across sessions ran on several builds: name them all.
    commit="$built (release build of this invocation)"
    earlier=$(sed -n 's/^| commit | \(.*\) |$/\1/p' "results/$name/README.md" 2>/dev/null | sed 's/ (release build of this invocation)//')
    [ -n "$earlier" ] && [ "$earlier" != "$built" ] && commit="$commit; earlier invocations: $earlier"
    start=$(date +%s)
    # shellcheck disable=SC2086
    nice -n 10 "$bin"/$command "${jobs[@]}" --run-dir "$root/$name" > "$root/$name.out" 2>&1
    status=$?
    minutes=$(( ($(date +%s) - start) / 60 ))
    echo "$(date -u +%FT%TZ) $name: exit $status after $minutes min in this invocation"
    if [ $status -eq 0 ]; then
        scripts/results/collect.sh "$root/$name" "$name" --command "$command" --commit "$commit" \
            --wall "$minutes min in the invocation that finished it (earlier invocations: timings.csv)"
    elif [ -f "$root/$name/summary.md" ]; then
        # Stopped or failed: keep what finished, marked as unfinished, and stop the queue.
        scripts/results/collect.sh "$root/$name" "$name" --command "$command" --commit "$commit" \
            --wall "unfinished: stopped after $minutes min in its last invocation (all invocations: timings.csv)" \
            --note "**Unfinished sweep**: the runs listed as not finished below are still to run; \`bash scripts/results/run-all.sh $name\` continues it from the finished ones."
        exit $status
    fi
done
