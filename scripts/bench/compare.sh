#!/usr/bin/env bash
# Side-by-side benchmark (issues 7 and 13): NFM-Swift's nfm-bench (release build) against the PyTorch
# reference of the same Sort-of-CLEVR models, MinAtar's game throughput, and a PyTorch DQN with
# MinAtar's network, all on this machine in one go; prints every ratio with PASS/FAIL and writes
# runs/compare-<timestamp>.json. Record the figures in BENCHMARKS.md.
#
#   scripts/bench/compare.sh [--quick] [--rounds N] [--iterations N] [--sections models,games,dqn,kernels]
#                            [--before OLD/nfm-bench]
#
# --before times an older release nfm-bench (e.g. main's, built in another worktree) beside this one in the
# DQN section, alternating run by run, and checks issue 13's speed-ups (baseline ≥ 2×, NFM encoder ≥ 4×).
#
# Setup (once; torch installs offline from pip's local wheel folder, minatar from PyPI):
#   python3 -m venv .venv-bench && .venv-bench/bin/pip install "torch==2.13.0+cpu" numpy minatar==1.0.15
# This script runs that itself when .venv-bench is missing.
#
# Both sides run with OMP_WAIT_POLICY=passive (nfm-bench sets it for itself in any case): on a shared
# machine the default spinning of OpenMP threads makes either side several times slower, and the
# comparison is about the engines, not about who spins.
set -euo pipefail
cd "$(dirname "$0")/../.."

quick=0
arguments=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1; shift ;;
        *) arguments+=("$1"); shift ;;
    esac
done
if [[ $quick == 1 ]]; then arguments=(--iterations 5 --warmup 1 "${arguments[@]}"); fi

if [[ ! -x .venv-bench/bin/python ]]; then
    python3 -m venv .venv-bench
    .venv-bench/bin/pip install "torch==2.13.0+cpu" numpy minatar==1.0.15
fi

swift build -c release --product nfm-bench
export OMP_WAIT_POLICY=passive
.venv-bench/bin/python scripts/bench/compare.py --ours "$(swift build -c release --show-bin-path)/nfm-bench" \
    --python .venv-bench/bin/python "${arguments[@]}"
