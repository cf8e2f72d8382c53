"""Quality matrix (issue 14): model family x offline dataset x strategy x seed, in the modAL loop.

One command runs (resumably) every cell that is missing and rebuilds the summary::

    OMP_NUM_THREADS=1 python benchmarks/bench_quality.py --out benchmarks/results/quality

Protocol: a stratified pool/test split and a random seed set per seed (the harness's
``split_dataset`` / ``initial_labeled``, so every strategy of a seed shares them); each round a
fresh model (or fresh committee members) is trained on every label so far and its test accuracy
recorded; then the fitted model is wrapped in a modAL ``ActiveLearner`` (or its members in a
modAL ``Committee``) whose ``query`` calls the strategy -- the same call a modAL user makes --
and the batch is labeled. AUC = trapezoidal area under accuracy vs labels over the label range.

Strategies: ``random`` (sparse_query.RandomSampling), ``modal-ubs`` (modAL's
``uncertainty_batch_sampling``), ``ours`` (``SparseApproxSampler()`` at its defaults, i.e.
``embedding="auto"``) and named variants ``ours:key=value,...``, and the library baselines
``coreset`` (BayesianCoreset), ``bald``, ``badge``, ``entropy``.

Every run is one JSON under ``<out>/<dataset>_<family>/`` (git-ignored; a cell already in the
folder's compact store ``<out>/records.jsonl`` is not run again, and
``benchmarks/compact_results.py <out>`` folds new runs into it); ``<out>/quality.json`` holds the
summary (mean AUC, paired difference to random per seed, its mean, std and min) and
``<out>/quality.md`` the tables, ``<out>/matrix.md`` the summary, ``<out>/alpha.md`` the alpha table; for the default ``--out`` the
BENCHMARKS.md section ``benchmarks/results/quality_matrix.md`` is rebuilt from the template
``benchmarks/quality_section.md`` (then run ``benchmarks/build_benchmarks_md.py``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchmarks.harness.datasets import initial_labeled, split_dataset  # noqa: E402
from benchmarks.harness.metrics import auc  # noqa: E402
from benchmarks.harness.models import fit_model  # noqa: E402
from benchmarks.harness.records import read_records  # noqa: E402
from benchmarks.harness.strategies import _value, slug  # noqa: E402


# ---------------------------------------------------------------------------------------------
# model families: make(n_features, n_classes, n_train, seed) -> list of unfitted members
# (one member: ActiveLearner; several: modAL Committee)
# ---------------------------------------------------------------------------------------------
def _rf(nf, nc, n, seed):
    from sklearn.ensemble import RandomForestClassifier
    return [RandomForestClassifier(n_estimators=50, random_state=seed, n_jobs=1)]


def _et(nf, nc, n, seed):
    from sklearn.ensemble import ExtraTreesClassifier
    return [ExtraTreesClassifier(n_estimators=50, random_state=seed, n_jobs=1)]


def _gb(nf, nc, n, seed):
    from sklearn.ensemble import GradientBoostingClassifier
    return [GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=seed)]


def _bagging(nf, nc, n, seed):
    from sklearn.ensemble import BaggingClassifier
    from sklearn.tree import DecisionTreeClassifier
    return [BaggingClassifier(DecisionTreeClassifier(), n_estimators=20, random_state=seed)]


def _committee_sk(nf, nc, n, seed):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    return [LogisticRegression(max_iter=1000),
            RandomForestClassifier(n_estimators=30, random_state=seed, n_jobs=1),
            MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=seed)]


def _torch_mlp(nf, nc, n, seed, dropout=0.0):
    from benchmarks.harness.models import make_model
    return make_model("mlp-dropout" if dropout else "torch-mlp", nf, nc, n, seed=seed)


def _committee_skorch(nf, nc, n, seed):
    # classes= fixed: a seed set missing a class must not shrink a member's classes_ below
    # its n_classes outputs (modAL's Committee aligns members by classes_)
    return [_torch_mlp(nf, nc, n, seed + 101 * i).set_params(classes=list(range(nc)))
            for i in range(3)]


def _mc_dropout(nf, nc, n, seed):
    return [_torch_mlp(nf, nc, n, seed, dropout=0.25)]


def _vlinear(nf, nc, n, seed):
    import math

    import torch

    from sparse_query.nn import BayesianLastLayerNet, VariationalNetClassifier
    epochs = max(50, math.ceil(300 / max(1, math.ceil(n / 32))))
    return [VariationalNetClassifier(
        BayesianLastLayerNet, module__feature_extractor=torch.nn.Identity(),
        module__feature_dim=nf, module__n_classes=nc, module__hidden=128,
        optimizer=torch.optim.Adam, lr=1e-3, max_epochs=epochs, batch_size=32,
        train_split=None, verbose=0)]


FAMILIES = {
    "rf": _rf, "et": _et, "gb": _gb, "bagging": _bagging, "committee-sk": _committee_sk,
    "committee-skorch": _committee_skorch, "mc-dropout": _mc_dropout, "vlinear": _vlinear,
}

#: Strategies run per family by default (peers + relevant library baselines + ours variants).
#: ``alpha_reliability=None`` marks the runs made before ``"auto"`` became the sampler's
#: default (issue 14): ``ours:alpha_reliability=None`` is the previous default.
PREV = "alpha_reliability=None"
#: ``ours:embedding=leaf-gradient`` is the default before near-chance trees got their inputs
#: (``embedding="leaf-input-gradient"``, issue 14): the tree families' previous default
LEAVES = "ours:embedding=leaf-gradient"
TREE = ["random", "modal-ubs", "ours", LEAVES, f"ours:{PREV}", f"ours:temperature=0.1,{PREV}",
        "coreset"]
NET = ["random", "modal-ubs", "ours", f"ours:{PREV}",
       f"ours:embedding=posterior,n_posterior_samples=200,alpha=0,{PREV}", "coreset", "bald",
       "badge"]
COMMITTEE = ["random", "modal-ubs", "ours", f"ours:{PREV}", f"ours:embedding=posterior,{PREV}",
             "coreset", "bald"]
DEFAULT_STRATEGIES = {
    "rf": TREE, "et": TREE, "gb": ["random", "modal-ubs", "ours:embedding=leaf-gradient",
                                   f"ours:embedding=leaf-gradient,{PREV}"],
    "bagging": TREE,
    "committee-sk": COMMITTEE, "committee-skorch": COMMITTEE, "mc-dropout": NET,
    "vlinear": NET,
}


def fitted_after(dataset, family, seed, n_labeled, n_seed=30):
    """The model of ``family`` fitted on the seed set plus ``n_labeled - n_seed`` random pool
    points (the state a few rounds into random sampling), for the diagnostics
    ``diag_leaf_ties.py`` and ``diag_near_ties.py``: ``(split, X_pool, unlabeled, model)``."""
    split = split_dataset(dataset, seed)
    X = split.X_pool.astype(np.float32)
    y = split.y_pool
    lab = np.zeros(len(y), dtype=bool)
    lab[initial_labeled(len(y), n_seed, seed)] = True
    rng = np.random.default_rng(seed)
    lab[rng.choice(np.flatnonzero(~lab), n_labeled - n_seed, replace=False)] = True
    idx, unl = np.flatnonzero(lab), np.flatnonzero(~lab)
    model = FAMILIES[family](split.n_features, split.n_classes, len(idx), seed)[0]
    _fit(model, X[idx], y[idx], seed)
    return split, X, unl, model


def _fit(member, X, y, seed):
    return fit_model(member, X, y, seed)


#: scikit-activeml 1.0.1's pool strategies, called as its documentation calls them
#: (``benchmarks/bench_peers.py``'s ``SkactivemlStrategy``; single-model families only: a
#: modAL committee is not one classifier)
SKAL = ("clue", "typiclust", "falcun", "maxherding", "badge-skal")


def _strategy(spec, seed, n_classes=None):
    import sparse_query as sq

    name, _, rest = spec.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        params[k] = _value(v)
    common = {"random_state": seed, "device": "cpu"}
    if name == "modal-ubs":
        from modAL.batch import uncertainty_batch_sampling
        return uncertainty_batch_sampling
    if name == "ours":
        return sq.SparseApproxSampler(**{**common, **params})
    if name in SKAL:
        from benchmarks.bench_peers import SkactivemlStrategy
        return SkactivemlStrategy(name, n_classes, seed)
    cls = {"random": sq.RandomSampling, "coreset": sq.BayesianCoreset, "bald": sq.BALD,
           "badge": sq.BADGE, "entropy": sq.EntropySampling}[name]
    return cls(**{**common, **params})


def _learner(members, strategy, X_lab, y_lab):
    from modAL.models import ActiveLearner, Committee

    learners = []
    for m in members:
        al = ActiveLearner(estimator=m, query_strategy=strategy)
        al.X_training, al.y_training = X_lab, y_lab  # fitted by the loop, seeded
        learners.append(al)
    if len(learners) == 1:
        return learners[0]
    com = Committee(learner_list=learners, query_strategy=strategy)
    com.X_training, com.y_training = X_lab, y_lab
    return com


def run_one(dataset, family, spec, seed, seed_size, batch, rounds, max_pool=None):
    split = split_dataset(dataset, seed, max_pool=max_pool)
    n_pool = len(split.y_pool)
    Xp = split.X_pool.astype(np.float32)
    labeled = np.zeros(n_pool, dtype=bool)
    labeled[initial_labeled(n_pool, seed_size, seed)] = True
    strategy = _strategy(spec, seed, split.n_classes)
    labels, accs, qtimes, kinds = [], [], [], []
    for r in range(rounds + 1):
        idx = np.flatnonzero(labeled)
        members = FAMILIES[family](split.n_features, split.n_classes, len(idx), seed * 1000 + r)
        for i, m in enumerate(members):
            _fit(m, Xp[idx], split.y_pool[idx], seed * 1000 + r + 7 * i)
        learner = _learner(members, strategy, Xp[idx], split.y_pool[idx])
        pred = learner.predict(split.X_test.astype(np.float32))
        labels.append(int(idx.size))
        accs.append(float(np.mean(np.asarray(pred).reshape(-1) == split.y_test)))
        if r == rounds:
            break
        unl = np.flatnonzero(~labeled)
        t0 = time.perf_counter()
        out = learner.query(Xp[unl], n_instances=batch)
        qtimes.append(time.perf_counter() - t0)
        picked = np.asarray(out[0] if isinstance(out, tuple) else out, dtype=np.int64)
        if len(np.unique(picked)) != batch:
            raise RuntimeError(f"{spec} returned {len(np.unique(picked))} distinct of {batch}")
        kinds.append(getattr(strategy, "embedding_kind_", None))
        labeled[unl[picked]] = True
    return {"config": dict(dataset=dataset, family=family, strategy=spec, seed=seed,
                           seed_size=seed_size, batch=batch, rounds=rounds, max_pool=max_pool),
            "labels": labels, "accuracy": accs, "auc": auc(labels, accs),
            "query_time": qtimes, "embedding_kind": kinds, "n_pool": n_pool,
            "loadavg": os.getloadavg()}


DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "quality")


def summarise(out):
    """Collect every run under ``out``: per (dataset, family, strategy) mean AUC and paired diffs."""
    runs = {}
    # the compact store and any raw records; s1_variance holds section-1 harness records
    for rec in read_records(out, skip_dirs=("s1_variance",)).values():
        c = rec["config"]
        runs[(c["dataset"], c["family"], c["strategy"], c["seed"])] = rec
    rows = []
    cells = sorted({(d, f) for d, f, _, _ in runs})
    for d, f in cells:
        strats = sorted({s for dd, ff, s, _ in runs if (dd, ff) == (d, f)})
        for s in strats:
            seeds = sorted(sd for dd, ff, ss, sd in runs if (dd, ff, ss) == (d, f, s))
            aucs = [runs[(d, f, s, sd)]["auc"] * 100 for sd in seeds]
            diffs = [runs[(d, f, s, sd)]["auc"] * 100 - runs[(d, f, "random", sd)]["auc"] * 100
                     for sd in seeds if (d, f, "random", sd) in runs]
            kinds = sorted({k for sd in seeds for k in runs[(d, f, s, sd)]["embedding_kind"]
                            if k})
            rows.append(dict(
                dataset=d, family=f, strategy=s, seeds=len(seeds), auc=float(np.mean(aucs)),
                auc_std=float(np.std(aucs, ddof=1)) if len(aucs) > 1 else 0.0,
                diff_random=float(np.mean(diffs)) if diffs else None,
                diff_std=float(np.std(diffs, ddof=1)) if len(diffs) > 1 else 0.0,
                diff_min=float(np.min(diffs)) if diffs else None,
                s_per_query=float(np.mean([np.mean(runs[(d, f, s, sd)]["query_time"])
                                           for sd in seeds])),
                embedding_kind=",".join(kinds) or None,
            ))
    with open(os.path.join(out, "quality.json"), "w") as fh:
        json.dump(rows, fh, indent=1)
    lines = []
    for d, f in cells:
        lines += [f"\n#### {f} on {d}\n",
                  "| strategy | seeds | AUC (%) | AUC − random, paired (%) | worst seed | s / query |",
                  "|---|---|---|---|---|---|"]
        for r in sorted([r for r in rows if (r["dataset"], r["family"]) == (d, f)],
                        key=lambda r: -r["auc"]):
            diff = "–" if r["strategy"] == "random" or r["diff_random"] is None else \
                f"{r['diff_random']:+.2f} ± {r['diff_std']:.2f}"
            worst = "–" if r["strategy"] == "random" or r["diff_min"] is None else \
                f"{r['diff_min']:+.2f}"
            name = r["strategy"] + (f" ({r['embedding_kind']})" if r["embedding_kind"] else "")
            lines.append(f"| {name} | {r['seeds']} | {r['auc']:.2f} ± {r['auc_std']:.2f} | "
                         f"{diff} | {worst} | {r['s_per_query']:.3f} |")
    with open(os.path.join(out, "quality.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    matrix = _matrix(rows, cells)
    with open(os.path.join(out, "matrix.md"), "w") as fh:
        fh.write(matrix)
    alpha = _alpha_table(rows)
    with open(os.path.join(out, "alpha.md"), "w") as fh:
        fh.write(alpha)
    template = os.path.join(os.path.dirname(os.path.abspath(__file__)), "quality_section.md")
    if os.path.exists(template) and os.path.abspath(out) == os.path.abspath(DEFAULT_OUT):
        # a record copied from its twin ("note": "run as ...") was not computed twice
        minutes = sum(r.get("wall_time", 0.0) for r in runs.values()
                      if not r.get("note", "").startswith("run as")) / 60
        text = open(template).read().replace("@@MATRIX@@", matrix.rstrip()).replace(
            "@@MINUTES@@", f"{minutes:.0f}").replace("@@ALPHA@@", alpha.rstrip())
        with open(os.path.join(os.path.dirname(os.path.abspath(out)), "quality_matrix.md"),
                  "w") as fh:
            fh.write(text)  # the BENCHMARKS.md section (benchmarks/build_benchmarks_md.py)
    return rows


PEERS = ("modal-ubs", "badge", "coreset", "bald")


def _matrix(rows, cells):
    """One line per (family, dataset): the default sampler against random and the best peer."""
    out = ["| family | dataset | seeds | `ours` (embedding) AUC − random | best peer: AUC − random "
           "| `ours` − best peer | `ours` ≥ random on every seed | trees: "
           f"`{LEAVES[5:]}`, others: `{PREV}` − random |",
           "|---|---|---|---|---|---|---|---|"]
    order = list(FAMILIES)
    for d, f in sorted(cells, key=lambda c: (order.index(c[1]), c[0])):
        rs = {r["strategy"]: r for r in rows if (r["dataset"], r["family"]) == (d, f)}
        ours = rs.get("ours")
        prev = rs.get(LEAVES if TREE is DEFAULT_STRATEGIES[f] else f"ours:{PREV}")
        if ours is None and f"ours:embedding=leaf-gradient,{PREV}" in rs:
            # embedding="auto" refuses gradient boosting: the explicit leaf embedding, at the
            # default when it was run there (else the previous default, shown once)
            prev = rs[f"ours:embedding=leaf-gradient,{PREV}"]
            ours = rs.get("ours:embedding=leaf-gradient")
            ours, prev = (prev, None) if ours is None else (ours, prev)
            ours = dict(ours, embedding_kind="auto refuses; explicit leaf-gradient")
        peers = [rs[p] for p in PEERS if p in rs and rs[p]["diff_random"] is not None]
        if ours is None or ours["diff_random"] is None or not peers:
            continue
        best = max(peers, key=lambda r: r["diff_random"])
        gap = ours["diff_random"] - best["diff_random"]
        out.append(
            f"| {f} | {d} | {ours['seeds']} | {ours['diff_random']:+.2f} ± {ours['diff_std']:.2f} "
            f"({ours['embedding_kind']}) | {best['strategy']}: {best['diff_random']:+.2f} ± "
            f"{best['diff_std']:.2f} | {gap:+.2f} | "
            f"{'yes' if ours['diff_min'] >= 0 else 'no (worst ' + format(ours['diff_min'], '+.2f') + ')'} | "
            + ("–" if prev is None or prev["diff_random"] is None else
               f"{prev['diff_random']:+.2f} ± {prev['diff_std']:.2f}") + " |")
    return "\n".join(out) + "\n"


#: the alpha variants of issue 14: today's default (0.1 times kappa), and 0.1, 0.03 and 0 as
#: given (``alpha_reliability=None``; gradient boosting, which ``auto`` refuses: the same with
#: ``embedding="leaf-gradient"``)
ALPHAS = (("ours", "0.1 × kappa (default)"), (f"ours:{PREV}", "0.1"),
          (f"ours:alpha=0.03,{PREV}", "0.03"), (f"ours:alpha=0,{PREV}", "0"))


def _alpha_table(rows):
    """``ours`` at each alpha of :data:`ALPHAS`: AUC - random (mean and worst seed) per cell."""
    rs = {(r["family"], r["dataset"], r["strategy"]): r for r in rows}
    out = ["| family | dataset | " + " | ".join(f"alpha = {a}" for _, a in ALPHAS) + " |",
           "|---|---|" + "---|" * len(ALPHAS)]
    for f in FAMILIES:
        for d in ("digits", "mnist", "mnist1d"):
            # the leaf embedding throughout (gradient boosting: auto refuses it; the other
            # trees: auto adds the inputs near chance, not an alpha variant)
            names = [s if f != "gb" else s.replace("ours", LEAVES)
                     .replace("leaf-gradient:", "leaf-gradient,") for s, _ in ALPHAS]
            if DEFAULT_STRATEGIES[f] is TREE:
                names[0] = LEAVES
            cells = [rs.get((f, d, s)) for s in names]
            if cells[1] is None or sum(c is not None for c in cells) < 2:
                continue
            out.append(f"| {f} | {d} | " + " | ".join(
                "–" if c is None else
                f"{c['diff_random']:+.2f} ± {c['diff_std']:.2f} (worst {c['diff_min']:+.2f})"
                for c in cells) + " |")
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    ap.add_argument("--datasets", nargs="+", default=["digits", "mnist1d", "mnist"])
    ap.add_argument("--strategies", nargs="+", default=None,
                    help="override the per-family default list")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--seed-size", type=int, default=30)
    ap.add_argument("--batch", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--max-pool", type=int, default=None)
    ap.add_argument("--out", default="benchmarks/results/quality")
    ap.add_argument("--summary-only", action="store_true")
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    stored = read_records(a.out)  # the compact store and raw records: not run again
    if not a.summary_only:
        for seed in a.seeds:          # seeds outermost: partial results cover every cell
            for dataset in a.datasets:
                for family in a.families:
                    for spec in a.strategies or DEFAULT_STRATEGIES[family]:
                        path = os.path.join(a.out, f"{dataset}_{family}",
                                            f"{slug(spec)}_seed{seed}.json")
                        if os.path.relpath(path, a.out).replace(os.sep, "/") in stored:
                            continue
                        t0 = time.perf_counter()
                        rec = run_one(dataset, family, spec, seed, a.seed_size, a.batch,
                                      a.rounds, a.max_pool)
                        rec["wall_time"] = time.perf_counter() - t0
                        os.makedirs(os.path.dirname(path), exist_ok=True)
                        with open(path + ".tmp", "w") as fh:
                            json.dump(rec, fh)
                        os.replace(path + ".tmp", path)
                        print(f"[done] {dataset}/{family} {spec} seed={seed}: AUC "
                              f"{rec['auc'] * 100:.2f} ({rec['wall_time']:.0f} s)", flush=True)
    summarise(a.out)


if __name__ == "__main__":
    main()
