#!/usr/bin/env bash
# Optional: Open MPI 4.1 from Debian, for running seeds across the ranks of an MPI job (README,
# "Running on a cluster"). Programs started without mpirun never load it. Idempotent.
set -euo pipefail
packages=(libopenmpi-dev openmpi-bin)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "setup-mpi: all packages present (${packages[*]})"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-mpi: apt-get not found; install Open MPI 4.x (libmpi.so.40 and mpirun) with your system's package manager" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup-mpi: not root and no sudo; ask an administrator to run: apt-get install -y ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
echo "setup-mpi: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
echo "setup-mpi: done"
