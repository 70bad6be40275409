#!/usr/bin/env bash
# One-time setup for NFM-Swift on Debian 12: installs the C libraries, the Fashion-MNIST data and
# strace (scripts/faults.sh uses it to kill a program inside a file write; optional there).
# `--mpi` also installs Open MPI 4.1 (libopenmpi-dev openmpi-bin), which only running seeds across
# the ranks of an MPI job needs (README, "Running on a cluster"); programs started without mpirun
# never load it.
# Idempotent: when everything is already installed it only checks and returns in about a second.
set -euo pipefail

packages=(libdnnl-dev libpng-dev zlib1g-dev dataset-fashion-mnist strace)
for argument in "$@"; do
    case "$argument" in
        --mpi) packages+=(libopenmpi-dev openmpi-bin) ;;
        *) echo "setup: unknown option $argument (the only one is --mpi)" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all packages present (${packages[*]})"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: apt-get not found. This project needs Debian 12 (or a derivative) packages: ${missing[*]}" >&2
    echo "setup: install them with your system's package manager and run this script again." >&2
    exit 1
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    else
        echo "setup: not root and no sudo; ask an administrator to run:" >&2
        echo "    apt-get update && apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi

echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
echo "setup: done"
