#!/usr/bin/env bash
# The Bayesian setting on scikit-learn digits: an MC-dropout MLP (sparse_query.nn.MLP, 128
# hidden, dropout 0.25, Adam, skorch); Ours with posterior embeddings (20 dropout draws) vs.
# BALD, BatchBALD, Bayesian Coreset and Random. 30 seed labels, 8 rounds of 20, 3 seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m benchmarks.harness --dataset digits --model mlp-dropout \
    --strategies ours-greedy ours-iht bald batchbald coreset random \
    --seeds 0 1 2 --seed-size 30 --batch 20 --rounds 8 --threads 1 --no-progress \
    --out benchmarks/results/al_digits_bayes "$@"
# Smaller variance weights for the posterior embedding.
python -m benchmarks.harness --dataset digits --model mlp-dropout \
    --strategies ours-greedy:alpha=0.1 ours-iht:alpha=0.1 ours-greedy:alpha=0 \
    --seeds 0 1 2 --seed-size 30 --batch 20 --rounds 8 --threads 1 --no-progress \
    --out benchmarks/results/al_digits_bayes "$@"
