#!/bin/sh
# Quality matrix of issue 14 (benchmarks/bench_quality.py); resumable, runs only what is missing.
# Priority order: forests and MC dropout on two datasets first, then the other families, then MNIST.
set -e
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
OUT=${OUT:-benchmarks/results/quality}
B="python benchmarks/bench_quality.py --out $OUT --seeds 0 1 2 3 4"
$B --families rf et mc-dropout --datasets digits mnist1d
$B --families bagging gb vlinear committee-sk committee-skorch --datasets digits mnist1d
$B --families rf et mc-dropout bagging gb vlinear committee-sk committee-skorch --datasets mnist
