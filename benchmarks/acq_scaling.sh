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
A="benchmarks/bench_al.py acq --dim 128"
[ -f $R/acq_part1/acq_scaling.json ] || $PY $A --pools 10000 --batches 100 1000 5000 \
    --methods ours-greedy ours-iht ours-greedy-sketch128 ours-iht-sketch128 badge kcenter \
    --out $R/acq_part1
[ -f $R/acq_part2/acq_scaling.json ] || $PY $A --pools 10000 --batches 5000 \
    --methods ours-iht-sketch128 badge kcenter --out $R/acq_part2
[ -f $R/acq_part3/acq_scaling.json ] || $PY $A --pools 100000 --batches 100 1000 5000 --cap 120 \
    --methods ours-iht ours-iht-sketch128 ours-greedy-sketch128 badge kcenter --out $R/acq_part3
# (part 3 was stopped while ours-greedy-sketch128 ran b=5000 on 100k: at 10k that size had
#  already taken > 7 min; the remaining b=5000 methods are part 5)
[ -f $R/acq_part5/acq_scaling.json ] || $PY $A --pools 100000 --batches 5000 --cap 120 \
    --methods badge kcenter --skal-max-nb 0 --out $R/acq_part5
[ -f $R/acq_part4/acq_scaling.json ] || $PY $A --pools 100000 --batches 100 --repeats 1 \
    --methods ours-greedy --no-skactiveml --out $R/acq_part4
# BatchBALD: ~53 s for b=50 of n=2,000 here, so only a small pool.
[ -f $R/acq_batchbald/acq_scaling.json ] || $PY $A --pools 2000 --batches 10 50 --no-skactiveml \
    --methods ours-greedy ours-iht badge kcenter batchbald --batchbald-max-b 50 --out $R/acq_batchbald
$PY benchmarks/bench_al.py merge --out $R/acq_scaling $R/acq_part1 $R/acq_part2 $R/acq_part3 $R/acq_part5 $R/acq_part4
