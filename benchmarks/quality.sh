#!/bin/sh
# Quality matrix of issue 14 (benchmarks/bench_quality.py); resumable, runs only what is missing.
# Priority order (compute was scarce): forests and MC dropout on digits + MNIST-1D first, then
# the other families, then the MNIST sample, then the alpha / temperature variants. All phases:
# see benchmarks/results/quality_matrix.md for the compute they took (the sum of the runs' wall
# times, on 2 cores shared with other jobs).
set -e
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
OUT=${OUT:-benchmarks/results/quality}
B="python benchmarks/bench_quality.py --out $OUT"
$B --seeds 0 1 2 3 4 --families rf et mc-dropout --datasets digits mnist1d
$B --seeds 0 1 2 3 4 --families bagging gb vlinear committee-sk --datasets digits mnist1d
$B --seeds 0 1 2 --families committee-skorch --datasets digits mnist1d
$B --seeds 0 1 2 --families rf et mc-dropout committee-sk --datasets mnist
$B --seeds 0 1 2 --families bagging vlinear gb --datasets mnist
$B --seeds 3 4 --families committee-skorch --datasets digits mnist1d
$B --seeds 3 4 --families rf et mc-dropout committee-sk bagging vlinear gb --datasets mnist
$B --seeds 0 1 2 3 4 --families committee-skorch --datasets mnist
# the alpha / temperature variants behind the tree and net defaults (issue 14, last round)
$B --seeds 0 1 2 3 4 --families rf et bagging --datasets mnist1d digits mnist \
   --strategies "ours:alpha=0" "ours:alpha=0.03" "ours:temperature=0.1,alpha=0.03"
$B --seeds 0 1 2 3 4 --families rf --datasets mnist1d digits mnist \
   --strategies "ours:alpha=0.01" "ours:temperature=0.1,alpha=0.01"
$B --seeds 0 1 2 3 4 --families vlinear --datasets mnist1d digits mnist \
   --strategies "ours:alpha=0" "ours:alpha=0.03"
$B --seeds 0 1 2 3 4 --families rf --datasets mnist1d --strategies "ours:temperature=auto" \
   "ours:temperature=0.01,alpha=1" "ours:temperature=0.1,alpha=1" "ours:temperature=0.1,alpha=10" \
   "ours:temperature=0.3,alpha=1"
$B --seeds 0 1 2 3 4 --families mc-dropout committee-sk --datasets mnist1d digits mnist \
   --strategies "ours:alpha=0" "ours:alpha=0.03"
$B --seeds 0 1 2 3 4 --families committee-skorch --datasets mnist1d digits mnist \
   --strategies "ours:alpha=0.03"
$B --seeds 0 1 2 3 4 --families gb --datasets mnist1d digits mnist \
   --strategies "ours:embedding=leaf-gradient,alpha=0.03"
# alpha_reliability (opt-in): alpha times the model's chance-corrected held-out accuracy; the
# variance_temperature rows of results/quality/variance_variants.md need commit 215305a
$B --seeds 0 1 2 3 4 --families rf et bagging committee-sk mc-dropout vlinear \
   --datasets mnist1d digits mnist --strategies "ours:alpha_reliability=held-out" \
   "ours:alpha_reliability=held-out,alpha=0.3" "ours:alpha_reliability=held-out-squared,alpha=0.3"
$B --seeds 0 1 2 3 4 --families committee-skorch --datasets digits mnist1d \
   --strategies "ours:alpha_reliability=held-out"
python benchmarks/diag_leaf_ties.py
python benchmarks/diag_near_ties.py
