"""Learning curves of ``embedding="input-gradient"`` for classifiers with ``predict_proba`` only.

Digits (scikit-learn's bundled copy), a stratified 70/30 split into pool and test set; per seed
20 labels to start (2 of each class, drawn at random), then ``--rounds`` queries of ``--batch`` points in a modAL
``ActiveLearner`` loop (the learner refits on everything labeled after each query). AUC is
the mean test accuracy over the ``rounds + 1`` models (the starting one included), in
percent. Strategies:

- ``ours`` -- ``SparseApproxSampler(random_state=seed)`` at its defaults (``embedding="auto"``
  resolves to ``"input-gradient"`` for these models, ``alpha_reliability="auto"``);
- ``ours-per-column`` -- the same embedding with every input column scaled to unit variance
  (``input_gradient_embedding(..., per_column=True)``, as beside a forest's leaves) instead
  of one scale for all;
- ``ours-input`` and ``ours-leaf`` -- for gradient boosting only (``"auto"`` refuses it):
  the same with ``embedding="input-gradient"`` and ``embedding="leaf-gradient"``;
- ``modal-ubs`` -- ``modAL.batch.uncertainty_batch_sampling``;
- ``entropy`` -- ``sparse_query.baselines.EntropySampling`` (top-b entropy);
- ``kcenter-inputs`` -- k-center greedy on the standardized pool inputs the model reads,
  starting from the labeled points (``sparse_query.baselines.KCenterGreedy`` needs a last
  layer, which these models lack, so it is done here on the inputs);
- ``random`` -- uniform without replacement.

    python benchmarks/bench_proba_models.py --seeds 0 1 2 3 4
    python benchmarks/bench_proba_models.py --seeds 5 6 7 8 9 \
        --out benchmarks/results/proba_models_confirm.json
    python benchmarks/bench_proba_models.py --seeds 5 6 7 8 9 --models svc knn gnb hgb \
        calibrated --strategies ours-per-column --out benchmarks/results/proba_models_confirm.json
    python benchmarks/bench_proba_models.py --report

Writes the per-seed records (``benchmarks/results/proba_models.json``: seeds 0-4, where the
input scaling was chosen; ``proba_models_confirm.json``: seeds 5-9, run after) and, with
``--report``, the tables of ``benchmarks/results/proba_models.md``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "results"


def make_model(name, seed):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    return {
        "svc": lambda: make_pipeline(StandardScaler(), SVC(probability=True, random_state=seed)),
        "knn": lambda: KNeighborsClassifier(n_neighbors=5),
        "gnb": lambda: GaussianNB(),
        "hgb": lambda: HistGradientBoostingClassifier(max_iter=50, random_state=seed),
        "calibrated": lambda: CalibratedClassifierCV(LinearSVC(), cv=2),
        "gb": lambda: GradientBoostingClassifier(n_estimators=50, random_state=seed),
    }[name]()


def _kcenter_inputs(model, X_pool, X_train, b):
    """k-center greedy on the standardized inputs the final step reads."""
    from sparse_query.adapters._common import _apply, _resolve
    transforms, _ = _resolve(model)
    P = np.asarray(_apply(transforms, X_pool), dtype=np.float64)
    L = np.asarray(_apply(transforms, X_train), dtype=np.float64)
    mu, sd = P.mean(0), P.std(0)
    sd[sd == 0] = 1.0
    P, L = (P - mu) / sd, (L - mu) / sd
    d = ((P[:, None, :] - L[None, :, :]) ** 2).sum(-1).min(1)
    out = []
    for _ in range(b):
        j = int(np.argmax(d))
        out.append(j)
        d = np.minimum(d, ((P - P[j]) ** 2).sum(1))
    return np.asarray(out)


def strategy(name, seed):
    from modAL.batch import uncertainty_batch_sampling
    from sparse_query import SparseApproxSampler
    from sparse_query.baselines import EntropySampling

    if name == "ours":
        return SparseApproxSampler(random_state=seed, device="cpu")
    if name.startswith("ours:"):  # e.g. ours:temperature=0.1 -- the defaults but one
        kw = dict(kv.split("=") for kv in name[5:].split(","))
        kw = {k: (float(v) if v.replace(".", "").isdigit() else v) for k, v in kw.items()}
        return SparseApproxSampler(random_state=seed, device="cpu", **kw)
    if name == "ours-per-column":  # the same, every input column scaled to unit variance
        import functools

        from sparse_query.backends import memory
        from sparse_query.embeddings.input_gradient import input_gradient_embedding
        sampler = SparseApproxSampler(random_state=seed, device="cpu")

        def query(learner, X, n_instances=1):
            memory.input_gradient_embedding = functools.partial(input_gradient_embedding,
                                                                per_column=True)
            try:
                return sampler(learner, X, n_instances=n_instances)
            finally:
                memory.input_gradient_embedding = input_gradient_embedding
        return query
    if name == "ours-input":
        return SparseApproxSampler(random_state=seed, device="cpu", embedding="input-gradient")
    if name == "ours-leaf":
        return SparseApproxSampler(random_state=seed, device="cpu", embedding="leaf-gradient")
    if name == "modal-ubs":
        return uncertainty_batch_sampling
    if name == "entropy":
        return EntropySampling(device="cpu")
    if name == "random":
        rng = np.random.default_rng(1000 + seed)
        return lambda learner, X, n_instances=1: rng.choice(len(X), n_instances, replace=False)
    if name == "kcenter-inputs":
        return lambda learner, X, n_instances=1: _kcenter_inputs(
            learner.estimator, X, learner.X_training, n_instances)
    raise ValueError(name)


def run_one(model_name, strat, seed, *, start, batch, rounds):
    from modAL.models import ActiveLearner
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    Xp, Xt, yp, yt = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    rng = np.random.default_rng(seed)
    per = start // len(np.unique(yp))  # a stratified start: every class labeled
    lab = np.concatenate([rng.choice(np.flatnonzero(yp == c), per, replace=False)
                          for c in np.unique(yp)])
    mask = np.ones(len(Xp), bool)
    mask[lab] = False
    learner = ActiveLearner(estimator=make_model(model_name, seed),
                            query_strategy=strategy(strat, seed),
                            X_training=Xp[lab], y_training=yp[lab])
    accs, qtime = [learner.score(Xt, yt)], 0.0
    for _ in range(rounds):
        pool = np.flatnonzero(mask)
        t0 = time.perf_counter()
        out = learner.query(Xp[pool], n_instances=batch)
        qtime += time.perf_counter() - t0
        idx = np.asarray(out[0] if isinstance(out, tuple) else out).ravel()
        if len(np.unique(idx)) != batch:
            raise RuntimeError(f"{strat} returned {len(np.unique(idx))} distinct of {batch}")
        chosen = pool[idx]
        learner.teach(Xp[chosen], yp[chosen])
        mask[chosen] = False
        accs.append(learner.score(Xt, yt))
    kind = getattr(learner.query_strategy, "embedding_kind_", None)
    return {"model": model_name, "strategy": strat, "seed": seed, "accs": accs,
            "auc": 100 * float(np.mean(accs)), "query_s": qtime, "kind": kind}


def table(records, seeds):
    models = list(dict.fromkeys(r["model"] for r in records))
    order = ["ours", "ours-input", "ours-leaf", "ours-per-column", "ours-input-per-column",
             "modal-ubs", "entropy", "kcenter-inputs", "random"]
    present = set(r["strategy"] for r in records)
    strats = [s for s in order if s in present] + sorted(present - set(order))
    cell = {}
    for r in records:
        cell.setdefault((r["model"], r["strategy"]), []).append(r["auc"])
    lines = ["| model | " + " | ".join(strats) + " | ours - random | ours - best other |",
             "|---" * (len(strats) + 3) + "|"]
    for m in models:
        row, means = [f"`{m}`"], {}
        for s in strats:
            v = cell.get((m, s))
            if v:
                means[s] = float(np.mean(v))
                row.append(f"{means[s]:.2f} ± {np.std(v) / np.sqrt(len(v)):.2f}")
            else:
                row.append("—")
        ours = means.get("ours", means.get("ours-input"))
        others = [v for s, v in means.items() if not s.startswith("ours")
                  and not s.startswith("ours:")]
        row.append(f"{ours - means['random']:+.2f}" if "random" in means else "—")
        row.append(f"{ours - max(others):+.2f}" if others else "—")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _means(records):
    cell = {}
    for r in records:
        cell.setdefault((r["model"], r["strategy"]), []).append(r["auc"])
    return {k: float(np.mean(v)) for k, v in cell.items()}


def report():
    choose = json.loads((OUT / "proba_models.json").read_text())
    confirm = json.loads((OUT / "proba_models_confirm.json").read_text())
    parts = [
        "# Classifiers with `predict_proba` only: `embedding=\"input-gradient\"`",
        "",
        "Digits, a stratified 70/30 pool/test split per seed, 20 labels to start (2 per class), "
        "8 queries of 10 in a modAL `ActiveLearner` loop; AUC = mean test accuracy (%) over the "
        "9 models (start included), mean ± standard error over seeds. `ours` is "
        "`SparseApproxSampler()` at its defaults (`embedding=\"auto\"` resolves to "
        "`input-gradient` for every model here but `gb`, where `ours-input` / `ours-leaf` ask for "
        "`input-gradient` / `leaf-gradient`); `ours-per-column` is the same embedding with every "
        "input column scaled to unit variance (as beside a forest's leaves) instead of one scale "
        "for all. `kcenter-inputs`: k-center greedy on the standardized inputs the model reads. "
        "Models: `svc` = `make_pipeline(StandardScaler(), SVC(probability=True))`, `knn` = "
        "`KNeighborsClassifier(5)`, `gnb` = `GaussianNB()`, `hgb` = "
        "`HistGradientBoostingClassifier(max_iter=50)`, `calibrated` = "
        "`CalibratedClassifierCV(LinearSVC(), cv=2)`, `gb` = "
        "`GradientBoostingClassifier(n_estimators=50)`. The last two columns compare `ours` "
        "(`ours-input` for `gb`) with random sampling and with the best non-`ours` strategy. "
        "Every `ours` run is at `alpha_reliability=\"auto\"`, which refits none of these models "
        "(`alpha` as given).",
        "",
        "## Seeds 0-4 (the input scaling was chosen here)",
        "",
        table(choose, None),
        "",
        "## Seeds 5-9 (run after the choice, not tuned on)",
        "",
        table(confirm, None),
        "",
    ]
    for name, recs in (("seeds 0-4", choose), ("seeds 5-9", confirm)):
        m = _means(recs)
        models = [x for x in dict.fromkeys(r["model"] for r in recs) if x != "gb"]
        line = []
        for st in ("ours", "ours-per-column", "modal-ubs", "entropy", "kcenter-inputs",
                   "random"):
            vals = [m[(x, st)] for x in models if (x, st) in m]
            if len(vals) == len(models):
                line.append(f"{st} {np.mean(vals):.2f}")
        parts.append(f"Mean over the five `auto` models, {name}: " + ", ".join(line) + ".")
        parts.append("")
    parts += ["Generated by `python benchmarks/bench_proba_models.py --report` from the records "
              "of the two runs above (commands in the script's docstring)."]
    (OUT / "proba_models.md").write_text("\n".join(parts) + "\n")
    print("\n".join(parts))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+",
                    default=["svc", "knn", "gnb", "hgb", "calibrated", "gb"])
    ap.add_argument("--strategies", nargs="+",
                    default=["ours", "modal-ubs", "entropy", "kcenter-inputs", "random"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--start", type=int, default=20)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--out", default=str(OUT / "proba_models.json"))
    ap.add_argument("--report", action="store_true",
                    help="write proba_models.md from the records of both runs and stop")
    args = ap.parse_args(argv)
    if args.report:
        return report()
    import torch
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    out = Path(args.out)
    records = json.loads(out.read_text()) if out.exists() else []
    done = {(r["model"], r["strategy"], r["seed"]) for r in records}
    for m in args.models:
        strats = args.strategies
        if m == "gb":
            strats = [x for x in strats if x != "ours"] + ["ours-input", "ours-leaf"]
        for s in strats:
            for seed in args.seeds:
                if (m, s, seed) in done:
                    continue
                r = run_one(m, s, seed, start=args.start, batch=args.batch, rounds=args.rounds)
                records.append(r)
                print(f"{m:10s} {s:15s} seed {seed}: AUC {r['auc']:.2f} "
                      f"({r['query_s']:.1f}s, {r['kind']})", flush=True)
                out.write_text(json.dumps(records, indent=1))
    print(table(records, args.seeds))
    return records


if __name__ == "__main__":
    sys.exit(main() and 0)
