#!/usr/bin/env bash
# MNIST-1D (generated locally, no download; pool 4,000, test 1,000) with scikit-learn's
# MLPClassifier (128 hidden): 50 seed labels, 10 rounds of 50, 3 seeds. Resumable.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m benchmarks.harness --dataset mnist1d --model mlp \
    --strategies ours-greedy ours-iht random entropy margin least-confidence kcenter badge \
    --seeds 0 1 2 --seed-size 50 --batch 50 --rounds 10 --threads 1 --no-progress \
    --out benchmarks/results/al_mnist1d_mlp "$@"
