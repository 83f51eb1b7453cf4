#!/usr/bin/env bash
# banbench bench next to PyTorch eager, on the same presets, batches, optimiser and device, in
# alternating rounds; prints the raw JSON lines and a markdown table of throughputs and ratios.
#
#   bench/side-by-side.sh [--devices flex,tch-cpu[,cuda]] [--presets cnn-12:40,lstm:40,...]
#                         [--rounds 2] [--steps N]
#
# On a fresh machine it installs torch==2.9.0 into the cache venv CI uses
# (${XDG_CACHE_HOME:-$HOME/.cache}/banbench/venv-torch), builds banbench with and without
# `--features tch` (as .ci/run does), writes synthetic CIFAR files and a 10k-word corpus under
# the same cache, and runs bench/side_by_side.py. Keep its output: `... | tee bench/results/DATE.md`.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${XDG_CACHE_HOME:-$HOME/.cache}/banbench"
venv="$cache/venv-torch"
if ! "$venv/bin/python" -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.9.0") else 1)' 2>/dev/null; then
    echo "== installing torch==2.9.0 into $venv" >&2
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q torch==2.9.0
fi
torch_lib="$("$venv/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)"

echo "== building banbench (flex) and banbench --features tch" >&2
cargo build --release --quiet
LIBTORCH_USE_PYTORCH=1 VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" \
    cargo build --release --quiet --features tch --target-dir target/tch
# Copies, so that a rebuild while the rounds run cannot swap the binaries under them.
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
cp target/release/banbench "$bin/banbench-flex"
cp target/tch/release/banbench "$bin/banbench-tch"

data="$cache/bench-data"
if [ ! -f "$data/cifar/cifar-10-batches-bin/test_batch.bin" ]; then
    mkdir -p "$data/cifar"
    "$bin/banbench-flex" synthetic-cifar "$data/cifar" >&2
fi
driver=(bench/side_by_side.py --flex-bin "$bin/banbench-flex" --tch-bin "$bin/banbench-tch"
    --cifar "$data/cifar" --corpus "$data/lm")
if [ ! -f "$data/lm/ptb.test.txt" ]; then
    "$venv/bin/python" "${driver[@]}" --write-corpus
fi

echo "== $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; $(date -u +%Y-%m-%dT%H:%MZ); $(git rev-parse --short HEAD)$(git diff --quiet || echo ' + local changes')"
LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$venv/bin/python" -W ignore "${driver[@]}" "$@"
