#!/usr/bin/env bash
# scikit-learn digits: logistic regression and an MLP, every non-Bayesian strategy, 5 seeds,
# 30 random seed labels then 8 rounds of 20. Resumable: re-running skips finished runs.
set -euo pipefail
cd "$(dirname "$0")/.."
S="ours-greedy ours-iht random entropy margin least-confidence kcenter badge"
# added after IHT changed (commit 11ff91a): the current defaults for both solvers, and the
# new IHT at the defaults the plain "ours-*" runs above had (alpha=1, T=0.1)
S="$S ours-greedy:alpha=0.1,temperature=0.01 ours-iht:alpha=0.1,temperature=0.01"
S="$S ours-iht:alpha=1.0,temperature=0.1"
python -m benchmarks.harness --dataset digits --model logreg --strategies $S \
    --seeds 0 1 2 3 4 --seed-size 30 --batch 20 --rounds 8 --threads 1 --no-progress \
    --out benchmarks/results/al_digits_logreg "$@"
python -m benchmarks.harness --dataset digits --model mlp --strategies $S \
    --seeds 0 1 2 3 4 --seed-size 30 --batch 20 --rounds 8 --threads 1 --no-progress \
    --out benchmarks/results/al_digits_mlp "$@"
# re-run after issues 12-15 (copies grouped, two-start IHT, solver='auto'), at today's code and
# defaults, into fresh folders so nothing predates it
S2="ours-greedy ours-iht random entropy margin least-confidence kcenter badge"
for m in logreg mlp; do
python -m benchmarks.harness --dataset digits --model $m --strategies $S2 \
    --seeds 0 1 2 3 4 --seed-size 30 --batch 20 --rounds 8 --threads 1 --no-progress \
    --out benchmarks/results/al_digits_${m}_today "$@"
done
