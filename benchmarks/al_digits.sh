#!/usr/bin/env bash
# scikit-learn digits: logistic regression and an MLP, every non-Bayesian strategy, 5 seeds,
# 30 random seed labels then 8 rounds of 20. Resumable: re-running skips finished runs.
set -euo pipefail
cd "$(dirname "$0")/.."
S="ours-greedy ours-iht random entropy margin least-confidence kcenter badge"
python -m sparse_query.benchmark --dataset digits --model logreg --strategies $S \
    --seeds 0 1 2 3 4 --seed-size 30 --batch 20 --rounds 8 --threads 1 --no-progress \
    --out benchmarks/results/al_digits_logreg "$@"
python -m sparse_query.benchmark --dataset digits --model mlp --strategies $S \
    --seeds 0 1 2 3 4 --seed-size 30 --batch 20 --rounds 8 --threads 1 --no-progress \
    --out benchmarks/results/al_digits_mlp "$@"
