#!/usr/bin/env bash
# Ablation of SparseApproxSampler on scikit-learn digits + logistic regression (5 seeds,
# 30 seed labels, 8 rounds of 20): alpha (variance weight), the bias term, the temperature,
# the prox rule, the solver and the sketch. Resumable.
set -euo pipefail
cd "$(dirname "$0")/.."
S=""
for solver in greedy iht; do
  for a in 0 0.01 0.1 1 10; do S="$S ours-$solver:alpha=$a"; done
  S="$S ours-$solver:alpha=1,alpha_scale=none"          # the paper's literal alpha
  for t in auto 1.0 0.5 0.1 0.01 0; do S="$S ours-$solver:temperature=$t"; done
  S="$S ours-$solver:alpha=0,temperature=1.0"           # neither term: degenerate
  S="$S ours-$solver:sketch_dim=128"
  for a in 0.01 0.1 1; do S="$S ours-$solver:alpha=$a,temperature=0.01"; done  # candidate defaults
  S="$S ours-$solver:temperature=0.01,sketch_dim=128"
done
S="$S ours-iht:prox=paper ours-iht:prox=paper,alpha_scale=none random badge margin"
python -m benchmarks.harness --dataset digits --model logreg --strategies $S \
    --seeds 0 1 2 3 4 --seed-size 30 --batch 20 --rounds 8 --threads 1 --no-progress \
    --out benchmarks/results/ablation_digits_logreg "$@"

# The same question on a second model (scikit-learn MLP, same data and protocol), fewer arms.
S2="random badge margin"
for solver in greedy iht; do
  for a in 0 0.01 1; do for t in 0.1 0.01; do S2="$S2 ours-$solver:alpha=$a,temperature=$t"; done; done
  S2="$S2 ours-$solver:temperature=auto ours-$solver:temperature=0"
done
python -m benchmarks.harness --dataset digits --model mlp --strategies $S2 \
    --seeds 0 1 2 3 4 --seed-size 30 --batch 20 --rounds 8 --threads 1 --no-progress \
    --out benchmarks/results/ablation_digits_mlp "$@"
