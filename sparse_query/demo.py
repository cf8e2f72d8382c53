"""The main job: a small active-learning run on real data that prints its learning curve.

``python -m sparse_query.demo`` trains a logistic regression on scikit-learn's handwritten
digits (shipped with scikit-learn, no download) inside a modAL ``ActiveLearner`` and compares
``sparse_greedy`` and ``sparse_iht`` with random sampling: 30 random seed labels, then rounds
of 20 queried labels, retraining after each round, test accuracy on a held-out quarter.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def run(rounds: int = 8, batch: int = 20, seed_size: int = 30, seed: int = 0) -> dict:
    """Run the demo and return ``{strategy: (labels, accuracies, seconds per query)}``."""
    try:
        from modAL.models import ActiveLearner
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise SystemExit(
            "The demo uses modAL: pip install '.[modal]' in a clone of sparse_query "
            "(modAL-python 0.4.1 with scikit-learn < 1.8)."
        ) from exc
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from . import RandomSampling, SparseApproxSampler

    X, y = load_digits(return_X_y=True)
    X_pool, X_test, y_pool, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed
    )
    start = np.random.default_rng(seed).choice(len(X_pool), seed_size, replace=False)
    strategies = {
        "sparse_greedy": SparseApproxSampler(solver="greedy", device="cpu", random_state=seed),
        "sparse_iht": SparseApproxSampler(solver="iht", device="cpu", random_state=seed),
        "random": RandomSampling(random_state=seed),
    }
    out = {}
    for name, strategy in strategies.items():
        unlabeled = np.ones(len(X_pool), dtype=bool)
        unlabeled[start] = False
        learner = ActiveLearner(
            estimator=make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
            query_strategy=strategy, X_training=X_pool[start], y_training=y_pool[start],
        )
        labels, accs, times = [seed_size], [learner.score(X_test, y_test)], []
        for _ in range(rounds):
            pool_idx = np.flatnonzero(unlabeled)
            t0 = time.perf_counter()
            q, _ = learner.query(X_pool[pool_idx], n_instances=batch)
            times.append(time.perf_counter() - t0)
            chosen = pool_idx[q]
            learner.teach(X_pool[chosen], y_pool[chosen])
            unlabeled[chosen] = False
            labels.append(labels[-1] + batch)
            accs.append(learner.score(X_test, y_test))
        out[name] = (labels, accs, float(np.mean(times)))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sparse_query.demo",
                                     description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rounds", type=int, default=8, help="query rounds")
    parser.add_argument("--batch", type=int, default=20, help="labels queried per round")
    parser.add_argument("--seed-size", type=int, default=30, help="random labels to start from")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the split, the start labels and the strategies")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        # modAL 0.4.1 passes scikit-learn's deprecated `force_all_finite`; not our concern here
        warnings.filterwarnings("ignore", category=FutureWarning)
        results = run(args.rounds, args.batch, args.seed_size, args.seed)
    names = list(results)
    labels = results[names[0]][0]
    print("Active learning on scikit-learn digits (logistic regression), test accuracy:")
    print(f"{'labels':>7} " + " ".join(f"{n:>14}" for n in names))
    for i, n_lab in enumerate(labels):
        print(f"{n_lab:>7} " + " ".join(f"{results[n][1][i]:>14.3f}" for n in names))
    aucs = {n: np.trapezoid(results[n][1], labels) / (labels[-1] - labels[0]) for n in names}
    print(f"{'AUC':>7} " + " ".join(f"{aucs[n]:>14.3f}" for n in names))
    print(f"{'s/query':>7} " + " ".join(f"{results[n][2]:>14.3f}" for n in names))


if __name__ == "__main__":
    main()
