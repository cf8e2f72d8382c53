#!/usr/bin/env bash
# Acquisition-time scaling of every strategy on the same synthetic last-layer features
# (d=128, K=10), pools 10k and 100k, batches 100/1000/5000, 1 torch thread. Uses a Python with
# scikit-activeml when PYTHON points at one (we used a venv with --system-site-packages:
#   python -m venv --system-site-packages /tmp/skal-venv && /tmp/skal-venv/bin/pip install scikit-activeml
# which installs scikit-activeml 1.0.1 and makefun only, leaving scikit-learn and torch alone).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
$PY benchmarks/bench_al.py acq --pools 10000 100000 --batches 100 1000 5000 --dim 128 \
    --methods ours-greedy ours-iht ours-greedy-sketch128 ours-iht-sketch128 badge kcenter \
    --out benchmarks/results/acq_scaling "$@"
# BatchBALD: ~53 s for b=50 of n=2,000 here, so only a small pool.
$PY benchmarks/bench_al.py acq --pools 2000 --batches 10 50 --dim 128 \
    --methods ours-greedy ours-iht badge kcenter batchbald --batchbald-max-b 50 --no-skactiveml \
    --out benchmarks/results/acq_batchbald "$@"
