#!/usr/bin/env bash
# The fault-injection suite (issue 14): runs nfm-classify, nfm-generate and nfm-rl on tiny settings,
# injects faults, and checks after each one that
#   1. the program exited with a clear message, not a crash (no trap, abort or segfault);
#   2. the newest intact checkpoint still loads (the program's own eval/sample command loads it);
#   3. resuming completes;
#   4. the final metrics (every value of metrics.csv and metrics.jsonl, wall times aside) and the
#      final checkpoint's files (weights, optimizer, trainer state) equal an uninterrupted run's
#      bit for bit (same machine, same seed).
# Faults: SIGKILL at random moments (timed, at the K-th checkpoint file through the NFM_FAULTS hook,
# and inside a file's write just before its fsync with `strace -e inject` when strace is there);
# SIGINT; a full disk (a small tmpfs; needs root, skipped with a message otherwise); truncated and
# corrupt files of every kind (each checkpoint file, `latest`, config.json, both metrics files,
# Fashion-MNIST IDX files, exported Sort-of-CLEVR files); NaN in the loss; two processes on one
# run directory. It ends with `faults injected: N, survived: N` and exits 1 unless they are equal.
#
#   bash scripts/faults.sh                  # builds the release binaries, 20 SIGKILL trials per program
#   FAULT_TRIALS=5 bash scripts/faults.sh   # fewer SIGKILL trials
#   NFM_BIN=.build/debug bash scripts/faults.sh
# Environment: FAULT_TRIALS (SIGKILL trials per program, default 20), FAULT_SEED (default 1),
# NFM_BIN (the binaries; default: build .build/release), FAULT_KEEP=1 keeps the work directory.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
TRIALS=${FAULT_TRIALS:-20}
RANDOM=${FAULT_SEED:-1}
if [[ -z ${NFM_BIN:-} ]]; then
    (cd "$REPO" && swift build -c release --product nfm-classify && swift build -c release --product nfm-generate \
        && swift build -c release --product nfm-rl) >/dev/null || { echo "faults.sh: the release build failed" >&2; exit 2; }
    NFM_BIN=$REPO/.build/release
fi
BIN=$(cd "$NFM_BIN" && pwd)
FASHION=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
WORK=$(mktemp -d /tmp/nfm-faults.XXXXXX)
MOUNTED=""
cleanup() {
    [[ -n $MOUNTED ]] && umount "$MOUNTED" 2>/dev/null
    [[ ${FAULT_KEEP:-0} == 1 ]] && echo "work directory kept: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 2
export OMP_WAIT_POLICY=passive
started=$SECONDS
injected=0
survived=0
failed=()

# ---- the programs on tiny settings: fresh run, resume, and loading one checkpoint ----------------
# A fresh run's function starts its program with ${EXEC:-}: start_fresh sets EXEC=exec, so that
# the background job is the program itself and $! its pid (the one signalled and named in the lock).

classify_fresh() {
    local run=$1
    shift
    ${EXEC:-} "$BIN/nfm-classify" train --model baseline --steps 16 --checkpoint-every 4 --eval-every 8 --batch-size 4 \
        --train-images 48 --test-images 12 --ood-images 12 --run-dir "$run" "$@"
}
classify_resume() { "$BIN/nfm-classify" train --resume "$1"; }
classify_load() { "$BIN/nfm-classify" eval --checkpoint "$1" --run-dir "$WORK/loads/$RANDOM$RANDOM"; }

generate_flags=(--classifier-directory "$WORK/classifier" --samples-root "$WORK/samples" --fashion-mnist-directory "$FASHION")
generate_fresh() {
    local run=$1
    shift
    ${EXEC:-} "$BIN/nfm-generate" train --model gan --steps 12 --batch-size 8 --discriminator-steps 1 --sample-every 3 \
        --fd-samples 32 --classifier-steps 4 --run-dir "$run" "${generate_flags[@]}" "$@"
}
generate_resume() { "$BIN/nfm-generate" train --resume "$1" "${generate_flags[@]}"; }
generate_load() { "$BIN/nfm-generate" sample --checkpoint "$1" --count 4 --output "$WORK/loads/$RANDOM$RANDOM.png"; }

rl_fresh() {
    local run=$1
    shift
    ${EXEC:-} "$BIN/nfm-rl" train --frames 300 --checkpoint-every 50 --replay-start 40 --replay-capacity 200 \
        --evaluation-episodes 1 --run-dir "$run" "$@"
}
rl_resume() { "$BIN/nfm-rl" train --resume "$1"; }
rl_load() { "$BIN/nfm-rl" eval --checkpoint "$1" --episodes 1; }

# ---- checks -------------------------------------------------------------------------------------

# The values of a run's metrics without wall times, and its final checkpoint's files, match the reference's.
same_as_reference() {
    local run=$1 reference=$2 final file
    cmp -s <(cut -d, -f1-3 "$run/metrics.csv") <(cut -d, -f1-3 "$reference/metrics.csv") || { echo "metrics.csv differs"; return 1; }
    cmp -s <(sed -E 's/, "wall_time_s": [0-9.]+//' "$run/metrics.jsonl") <(sed -E 's/, "wall_time_s": [0-9.]+//' "$reference/metrics.jsonl") \
        || { echo "metrics.jsonl differs"; return 1; }
    final=$(cat "$reference/checkpoints/latest")
    for file in "$reference/checkpoints/$final"/*.safetensors; do
        cmp -s "$file" "$run/checkpoints/$final/${file##*/}" || { echo "${file##*/} of $final differs"; return 1; }
    done
}

# A crash: a trap (Swift's fatalError and precondition), an abort, a bus error or a segfault.
crashed() {
    local status=$1 output=$2
    case $status in 132 | 133 | 134 | 135 | 136 | 139) return 0 ;; esac
    grep -qE "Fatal error|Stack dump|Segmentation fault|Illegal instruction|Precondition failed|Assertion failed" "$output"
}

# The newest step directory of a run other than `skip` (a checkpoint this trial damaged on purpose).
newest_checkpoint() {
    local run=$1 skip=${2:-} directory newest=""
    for directory in "$run"/checkpoints/step-*; do
        [[ -d $directory && $directory != "$skip" ]] && newest=$directory
    done
    echo "$newest"
}

# record NAME PROGRAM RUN REFERENCE STATUS OUTPUT EXPECTED_STATUS MESSAGE [DAMAGED_CHECKPOINT]
# Runs checks 1-4 after a fault whose run ended with STATUS and wrote OUTPUT. EXPECTED_STATUS is a
# regular expression of acceptable exit statuses; MESSAGE one the output must match when the
# program stopped on its own (status 1).
record() {
    local name=$1 program=$2 run=$3 reference=$4 status=$5 output=$6 expected=$7 message=$8 skip=${9:-}
    local problems="" newest difference
    injected=$((injected + 1))
    if crashed "$status" "$output"; then
        problems+="crashed (status $status); "
    elif ! [[ $status =~ ^($expected)$ ]]; then
        problems+="exit status $status, expected $expected; "
    elif [[ $status == 1 && -n $message ]] && ! grep -qE "$message" "$output"; then
        problems+="no message matching /$message/; "
    fi
    newest=$(newest_checkpoint "$run" "$skip")
    if [[ -n $newest ]] && ! "${program}_load" "$newest" >"$output.load" 2>&1; then
        problems+="the newest intact checkpoint $newest does not load ($(tail -1 "$output.load")); "
    fi
    # A run killed before it wrote its settings has nothing to resume: its own command starts it
    # again (the directory then holds at most a stale lock, which a fresh run takes over).
    local resume="${program}_resume"
    [[ ! -e $run/config.json && -z $newest ]] && resume="${program}_fresh"
    if ! "$resume" "$run" >"$output.resume" 2>&1; then
        problems+="resuming failed: $(grep -m1 error "$output.resume"); "
    elif ! difference=$(same_as_reference "$run" "$reference"); then
        problems+="after resuming, $difference from the uninterrupted run; "
    fi
    if [[ -z $problems ]]; then
        survived=$((survived + 1))
    else
        failed+=("$program $name: $problems(output in $output*)")
        echo "  FAILED $program $name: $problems"
    fi
}

# Starts `program_fresh RUN` in the background; sets $pid.
start_fresh() {
    local program=$1 run=$2 output=$3
    shift 3
    (EXEC=exec "${program}_fresh" "$run" "$@" >"$output" 2>&1) &
    pid=$!
}

# ---- the suite ------------------------------------------------------------------------------------

echo "fault-injection suite: binaries in $BIN, work directory $WORK, $TRIALS SIGKILL trials per program"
declare -A seconds files_per_checkpoint
mkdir -p "$WORK/loads"
for program in classify generate rl; do
    mkdir -p "$WORK/$program"
    base="$WORK/$program"
    # The uninterrupted reference (for nfm-generate this also trains and caches the feature
    # classifier), then a second run, timed, that must equal it: the suite's premise.
    if ! "${program}_fresh" "$base/reference" >"$base/reference.out" 2>&1; then
        echo "faults.sh: the uninterrupted $program run failed; see $base/reference.out" >&2
        tail -5 "$base/reference.out" >&2
        exit 2
    fi
    t0=$(date +%s.%N)
    "${program}_fresh" "$base/again" >"$base/again.out" 2>&1
    t1=$(date +%s.%N)
    if ! difference=$(same_as_reference "$base/again" "$base/reference"); then
        echo "faults.sh: two uninterrupted $program runs differ ($difference); the checks need a deterministic program" >&2
        exit 2
    fi
    seconds[$program]=$(awk "BEGIN { print $t1 - $t0 }")
    final=$(cat "$base/reference/checkpoints/latest")
    files_per_checkpoint[$program]=$(($(ls "$base/reference/checkpoints/$final" | wc -l) + 2))  # + the rename and `latest`
    echo "== nfm-$program: uninterrupted run ${seconds[$program]%.*} s, $((10#${final#step-})) steps"

    # SIGKILL: a third at a random moment, a third at a random checkpoint file (NFM_FAULTS hook), a
    # third inside a random write, killed before its fsync (strace), or at a hook point without strace.
    for ((trial = 1; trial <= TRIALS; trial++)); do
        run="$base/kill-$trial"
        output="$base/kill-$trial.out"
        case $((trial % 3)) in
            0)
                start_fresh "$program" "$run" "$output"
                sleep "$(awk "BEGIN { printf \"%.3f\", ${seconds[$program]} * $((RANDOM % 1000)) / 1000 }")"
                kill -KILL "$pid" 2>/dev/null
                { wait "$pid"; } 2>/dev/null  # without bash's "Killed" line
                status=$?
                how="at a random moment"
                ;;
            1)
                file=$((1 + RANDOM % (3 * files_per_checkpoint[$program])))
                NFM_FAULTS="kill-checkpoint-file=$file" "${program}_fresh" "$run" >"$output" 2>&1
                status=$?
                how="after checkpoint file $file"
                ;;
            2)
                if command -v strace >/dev/null; then
                    # Every atomic write fsyncs the file and then its directory; kill at a random fsync.
                    call=$((1 + RANDOM % (6 * files_per_checkpoint[$program])))
                    strace -f -qq -o /dev/null --seccomp-bpf -e trace=fsync -e inject=fsync:signal=KILL:when=$call \
                        bash -c "$(declare -f "${program}_fresh"); $(declare -p BIN WORK FASHION generate_flags); ${program}_fresh $run" \
                        >"$output" 2>&1
                    status=$?
                    how="inside write $call (before its fsync)"
                else
                    file=$((1 + RANDOM % files_per_checkpoint[$program]))
                    NFM_FAULTS="kill-checkpoint-file=$file" "${program}_fresh" "$run" >"$output" 2>&1
                    status=$?
                    how="after checkpoint file $file (strace not installed)"
                fi
                ;;
        esac
        # 137: killed as intended; 0: the run finished before the kill (still checked).
        record "SIGKILL $trial $how" "$program" "$run" "$base/reference" "$status" "$output" "0|137" ""
    done

    # SIGINT at a random moment: the trainer checkpoints and exits with 130.
    for trial in 1 2; do
        run="$base/interrupt-$trial"
        output="$run.out"
        start_fresh "$program" "$run" "$output"
        sleep "$(awk "BEGIN { printf \"%.3f\", ${seconds[$program]} * $((200 + RANDOM % 700)) / 1000 }")"
        kill -INT "$pid" 2>/dev/null
        { wait "$pid"; } 2>/dev/null
        record "SIGINT $trial" "$program" "$run" "$base/reference" "$?" "$output" "0|130" ""
    done

    # NaN in the loss at a random step.
    run="$base/nan"
    output="$run.out"
    NFM_FAULTS="nan-step=$((2 + RANDOM % 8))" "${program}_fresh" "$run" >"$output" 2>&1
    record "NaN loss" "$program" "$run" "$base/reference" "$?" "$output" "1" "training stopped: .* is nan at step"

    # Two processes on one run directory: the second is refused, naming the first; the first finishes.
    run="$base/two"
    output="$run.out"
    # The first is paused while it holds the lock (a tiny run could finish before the second starts).
    start_fresh "$program" "$run" "$output"
    for _ in $(seq 400); do [[ -s $run/.lock && -s $run/config.json ]] && break; sleep 0.05; done
    kill -STOP "$pid"
    "${program}_resume" "$run" >"$output.second" 2>&1
    second=$?
    kill -CONT "$pid"
    wait "$pid"
    first=$?
    message="is in use by pid $pid on host"
    if [[ $second == 1 ]] && grep -q "$message" "$output.second"; then second_ok=1; else second_ok=0; fi
    injected=$((injected + 1))
    if [[ $second_ok == 1 && $first == 0 ]] && same_as_reference "$run" "$base/reference" >/dev/null && "${program}_load" "$(newest_checkpoint "$run")" >/dev/null 2>&1; then
        survived=$((survived + 1))
    else
        failed+=("$program two processes: second status $second (message: $(grep -m1 error "$output.second")), first status $first")
        echo "  FAILED $program two processes"
    fi

    # A full disk: the run directory on a tmpfs that holds one checkpoint and a half; then it grows.
    if [[ $(id -u) == 0 ]] && mkdir -p "$base/full" && mount -t tmpfs -o size=1m tmpfs "$base/full" 2>/dev/null; then
        MOUNTED="$base/full"
        size=$(du -sb "$base/reference/checkpoints/$final" | cut -f1)
        mount -o remount,size=$((size * 3 / 2 + 65536)) "$base/full"
        run="$base/full/run"
        output="$base/full.out"
        "${program}_fresh" "$run" >"$output" 2>&1
        status=$?
        mount -o remount,size=256m "$base/full"
        record "disk full" "$program" "$run" "$base/reference" "$status" "$output" "1" "No space left on device"
        rm -rf "$run"
        umount "$base/full"
        MOUNTED=""
    else
        echo "  disk full: skipped (needs root to mount a small tmpfs)"
    fi

    # Damaged files: a run stopped right after its second checkpoint (latest = step 2×interval, rows
    # beyond it), then one file truncated to half or overwritten in its middle, then resumed.
    template="$base/template"
    NFM_FAULTS="kill-checkpoint-file=$((2 * files_per_checkpoint[$program]))" "${program}_fresh" "$template" >"$base/template.out" 2>&1
    latest="$template/checkpoints/$(cat "$template/checkpoints/latest")"
    targets=("$latest"/* "$template/checkpoints/latest" "$template/config.json" "$template/metrics.csv" "$template/metrics.jsonl")
    for target in "${targets[@]}"; do
        for damage in truncated corrupt; do
            relative=${target#"$template"/}
            run="$base/damaged-${relative//\//-}-$damage"
            output="$run.out"
            cp -a "$template" "$run"
            file="$run/$relative"
            bytes=$(stat -c %s "$file")
            if [[ $damage == truncated ]]; then
                truncate -s $((bytes / 2)) "$file"
            else
                printf 'garbage\n\x00\xff{"' | dd of="$file" bs=1 seek=$((bytes / 3)) conv=notrunc status=none
            fi
            skip=""
            [[ $relative == checkpoints/step-* && $relative != */run-config.json ]] && skip="$run/${relative%/*}"
            # The damage shows on resume: record() resumes, and the resume must succeed.
            : >"$output"
            record "$damage $relative" "$program" "$run" "$base/reference" 0 "$output" "0" "" "$skip"
        done
    done
done

# Damaged input data: the program stops before it creates anything, naming the file; with the
# data repaired, the run completes and equals a run on the intact data.
data_trial() {
    local name=$1 flag=$2 directory=$3 file=$4 damage=$5 run=$6
    local output="$run.out" bytes status
    injected=$((injected + 1))
    cp -a "$directory" "$WORK/data/damaged"
    bytes=$(stat -c %s "$WORK/data/damaged/$file")
    if [[ $damage == truncated ]]; then
        truncate -s $((bytes / 2)) "$WORK/data/damaged/$file"
    else
        printf 'garbage\n\x00\xff{"' | dd of="$WORK/data/damaged/$file" bs=1 seek=$((bytes / 3)) conv=notrunc status=none
    fi
    classify_fresh "$run" --dataset "$name" "$flag" "$WORK/data/damaged" --steps 8 >"$output" 2>&1
    status=$?
    rm -rf "$WORK/data/damaged"
    if crashed "$status" "$output" || [[ $status != 1 ]] || ! grep -q "${file%.gz}" "$output" || [[ -e $run ]]; then
        failed+=("classify $name $damage $file: status $status, $(grep -m1 error "$output")")
        echo "  FAILED classify $name $damage $file"
    elif classify_fresh "$run" --dataset "$name" "$flag" "$directory" --steps 8 >"$output.repaired" 2>&1 \
        && same_as_reference "$run" "$WORK/data/$name-reference" >/dev/null; then
        survived=$((survived + 1))
    else
        failed+=("classify $name $damage $file: the run on repaired data failed or differs")
    fi
}
echo "== damaged input data"
mkdir -p "$WORK/data"
if [[ -d $FASHION ]]; then
    classify_fresh "$WORK/data/fashion-mnist-reference" --dataset fashion-mnist --data-dir "$FASHION" --steps 8 >"$WORK/data/fm.out" 2>&1
    for file in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
        for damage in truncated corrupt; do
            data_trial fashion-mnist --data-dir "$FASHION" "$file" "$damage" "$WORK/data/fm-$file-$damage"
        done
    done
else
    echo "  Fashion-MNIST: skipped ($FASHION is missing; scripts/setup.sh installs it)"
fi
"$BIN/nfm-classify" generate --out "$WORK/data/export" --train-images 48 --test-images 12 --ood-images 12 >"$WORK/data/export.out" 2>&1
classify_fresh "$WORK/data/sort-of-clevr-reference" --dataset sort-of-clevr --data-dir "$WORK/data/export" --steps 8 >"$WORK/data/soc.out" 2>&1
for file in train/images.json train/scenes.jsonl train/images.u8 test/images.json ood/scenes.jsonl; do
    damages="truncated corrupt"
    # Raw pixels carry no checksum: a changed byte is a different image, not a detectable fault.
    [[ $file == *.u8 ]] && damages=truncated
    for damage in $damages; do
        data_trial sort-of-clevr --data-dir "$WORK/data/export" "$file" "$damage" "$WORK/data/soc-${file//\//-}-$damage"
    done
done

echo
for failure in "${failed[@]}"; do echo "failed: $failure"; done
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; wall time $((SECONDS - started)) s"
echo "faults injected: $injected, survived: $survived"
[[ $injected == "$survived" ]]
