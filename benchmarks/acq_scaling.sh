#!/usr/bin/env bash
# Acquisition-time scaling of every strategy on the same synthetic last-layer features
# (d=128, K=10), 1 torch thread, pools 10k and 100k, batches 100/1000/5000. Uses a Python with
# scikit-activeml when PYTHON points at one (we used a venv with --system-site-packages:
#   python -m venv --system-site-packages /tmp/skal-venv && /tmp/skal-venv/bin/pip install scikit-activeml
# which installs scikit-activeml 1.0.1 and makefun only, leaving scikit-learn and torch alone).
# Run in parts (the machine is shared and greedy's cost grows ~b^2, see benchmark.md); each part
# writes its own JSON and "merge" joins them. Resumable by part.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
R=benchmarks/results
A="benchmarks/bench_al.py acq --dim 128 --cap 60 --single-above 10 --skal-max-nb 10000000"
# Main table (benchmarks/results/acq_scaling), measured at load ~1-2 after commit be3475e.
# Part 1 was stopped during BatchBALD on the 100k pool (b=100 took 209 s on 10k already).
[ -f $R/acq_lowload_part1/acq_scaling.json ] || $PY $A --pools 10000 100000 --batches 100 1000 5000 \
    --out $R/acq_lowload_part1
[ -f $R/acq_lowload_part2/acq_scaling.json ] || $PY $A --pools 100000 --batches 1000 5000 \
    --methods ours-greedy ours-iht ours-greedy-sketch128 ours-iht-sketch128 badge kcenter \
    --out $R/acq_lowload_part2
$PY benchmarks/bench_al.py merge --out $R/acq_scaling $R/acq_lowload_part1 $R/acq_lowload_part2
# Earlier runs at load ~10-15 and before be3475e (acq_part1..5 -> acq_scaling_loaded) and the
# small-pool BatchBALD comparison (acq_batchbald) used --cap 150/120 --single-above 20; e.g.
#   $PY benchmarks/bench_al.py acq --dim 128 --pools 2000 --batches 10 50 --no-skactiveml \
#       --methods ours-greedy ours-iht badge kcenter batchbald --batchbald-max-b 50 --out $R/acq_batchbald
