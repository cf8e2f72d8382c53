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
# the alpha / temperature variants behind the tree and net defaults (issue 14), measured
# before alpha_reliability="auto" became the default: hence alpha_reliability=None
$B --seeds 0 1 2 3 4 --families rf et bagging --datasets mnist1d digits mnist \
   --strategies "ours:alpha=0,alpha_reliability=None" "ours:alpha=0.03,alpha_reliability=None" "ours:temperature=0.1,alpha=0.03,alpha_reliability=None"
$B --seeds 0 1 2 3 4 --families rf --datasets mnist1d digits mnist \
   --strategies "ours:alpha=0.01,alpha_reliability=None" "ours:temperature=0.1,alpha=0.01,alpha_reliability=None"
$B --seeds 0 1 2 3 4 --families vlinear --datasets mnist1d digits mnist \
   --strategies "ours:alpha=0,alpha_reliability=None" "ours:alpha=0.03,alpha_reliability=None"
$B --seeds 0 1 2 3 4 --families rf --datasets mnist1d --strategies "ours:temperature=auto,alpha_reliability=None" \
   "ours:temperature=0.01,alpha=1,alpha_reliability=None" "ours:temperature=0.1,alpha=1,alpha_reliability=None" "ours:temperature=0.1,alpha=10,alpha_reliability=None" \
   "ours:temperature=0.3,alpha=1,alpha_reliability=None"
$B --seeds 0 1 2 3 4 --families mc-dropout committee-sk --datasets mnist1d digits mnist \
   --strategies "ours:alpha=0,alpha_reliability=None" "ours:alpha=0.03,alpha_reliability=None"
$B --seeds 0 1 2 3 4 --families committee-skorch --datasets mnist1d digits mnist \
   --strategies "ours:alpha=0.03,alpha_reliability=None"
$B --seeds 0 1 2 3 4 --families gb --datasets mnist1d digits mnist \
   --strategies "ours:embedding=leaf-gradient,alpha=0.03,alpha_reliability=None"
# alpha_reliability: alpha times the model's chance-corrected held-out accuracy ("held-out" is
# what the default "auto" applies in this loop); the variance_temperature rows of
# results/quality/variance_variants.md need commit 215305a
$B --seeds 0 1 2 3 4 --families rf et bagging committee-sk mc-dropout vlinear \
   --datasets mnist1d digits mnist --strategies "ours:alpha_reliability=held-out" \
   "ours:alpha_reliability=held-out,alpha=0.3" "ours:alpha_reliability=held-out-squared,alpha=0.3"
$B --seeds 0 1 2 3 4 --families committee-skorch --datasets digits mnist1d \
   --strategies "ours:alpha_reliability=held-out"
# the default (alpha_reliability="auto") on the matrix, and gradient boosting's explicit leaves
$B --seeds 0 1 2 3 4 --families rf et bagging committee-sk committee-skorch mc-dropout vlinear \
   --datasets digits mnist1d mnist --strategies ours
$B --seeds 0 1 2 3 4 --families gb --datasets digits mnist1d mnist \
   --strategies ours:embedding=leaf-gradient
# fresh seeds 5-9 (benchmarks/results/quality_fresh): the default, the previous default, both
# reliability rules and the peers, after seeds 0-4 had chosen the rule
F="python benchmarks/bench_quality.py --out benchmarks/results/quality_fresh --seeds 5 6 7 8 9"
V="ours ours:alpha_reliability=None ours:alpha_reliability=held-out ours:alpha_reliability=held-out-squared,alpha=0.3"
$F --families rf et bagging committee-sk --datasets digits mnist1d mnist \
   --strategies random modal-ubs coreset $V
$F --families mc-dropout vlinear --datasets digits mnist1d mnist \
   --strategies random modal-ubs coreset badge $V
$F --families rf et bagging --datasets mnist1d digits mnist \
   --strategies "ours:alpha=0,alpha_reliability=None" "ours:alpha_reliability=held-out-squared" \
   "ours:temperature=0.1,alpha_reliability=held-out"
# the trees on MNIST-1D as posterior draws (the pre-issue-14 tree default), both seed sets
$B --seeds 0 1 2 3 4 --families rf et bagging --datasets mnist1d --strategies ours:embedding=posterior
$F --families rf et bagging --datasets mnist1d --strategies ours:embedding=posterior
python benchmarks/diag_leaf_ties.py
python benchmarks/diag_near_ties.py
# fold the raw run records (git-ignored) into each folder's compact store records.jsonl
python benchmarks/compact_results.py "$OUT" benchmarks/results/quality_fresh
