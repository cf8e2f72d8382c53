#!/usr/bin/env bash
# Issue 15: the acquisition-time table (n = 10k, 100k, 1M; b = 100, 1,000, 5,000) through
# fit_query on a GPU, with the CPU rows of the same run beside it for the GPU-vs-CPU ratio.
# Needs a CUDA machine; exits with a message otherwise. Writes
# benchmarks/results/speed_acq_gpu.json, speed_large_gpu.json (and the CPU counterparts, if
# CPU=1, which on 1M pools take many minutes: BADGE does one pass per chosen point).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
R=${OUT:-benchmarks/results}
if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "no CUDA device: nothing to time (the CPU table is bench_speed.py acq)"; exit 0
fi
$PY -m pytest -q tests/test_cuda_paths.py tests/test_duplicates.py -k cuda
$PY benchmarks/bench_speed.py acq --device cuda --pools 10000 100000 1000000 \
    --batches 100 1000 5000 --repeats 3 --tag _gpu --out "$R"
$PY benchmarks/bench_speed.py large --device cuda --n 1000000 --d 512 --b 1000 --tag _gpu --out "$R"
if [ "${CPU:-0}" = 1 ]; then
    $PY benchmarks/bench_speed.py acq --device cpu --threads "${THREADS:-16}" \
        --pools 10000 100000 1000000 --batches 100 1000 5000 --repeats 1 --tag _cpu_ref --out "$R"
fi
