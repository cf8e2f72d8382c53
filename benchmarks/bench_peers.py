"""The default sampler against scikit-activeml's strongest strategies, on held-out tasks.

One command runs (resumably) every (task, strategy, seed) that is missing, writes the compact
summary ``benchmarks/results/peers.json`` and rewrites the generated part of
``benchmarks/results/peers.md``::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_peers.py --raw /tmp/peers_raw/r.jsonl

``--render`` rebuilds the page from the summary alone.

Tasks (:data:`TASKS`) are offline datasets outside the project's tuning matrix (digits /
MNIST / MNIST-1D with the matrix's models), each with a model a user would pick: scikit-learn's
breast cancer and wine with a scaled ``LogisticRegression``, a 12-class ``make_classification``
task with 10 % flipped labels and a ``RandomForestClassifier(100)``, digits with an
``MLPClassifier(64)``, and a TF-IDF pool of documents from an offline topic model with a
``LogisticRegression``.

Protocol, per seed: a stratified pool / test split and a random seed set, shared by every
strategy of that seed; each round a fresh model is trained on every label so far (the model
factories and the modAL wrapping of ``benchmarks/bench_quality.py``), its test accuracy is
recorded, and the modAL ``ActiveLearner.query`` call picks the next batch. The query call
alone is timed. AUC = trapezoidal area under accuracy vs labels over the label range.

Strategies: ``ours`` (``SparseApproxSampler()`` at its defaults), ``random``
(``sparse_query.RandomSampling``), ``modal-ubs`` (modAL's ``uncertainty_batch_sampling``),
the variant ``ours:alpha_reliability=None`` (nothing refitted inside the query; shown beside
the default, never counted as a peer) and scikit-activeml's ``Clue``, ``TypiClust``,
``Falcun``, ``MaxHerding`` and ``Badge``, called as scikit-activeml's documentation calls
them: ``qs.query(X, y, clf=SklearnClassifier(model, classes=...), batch_size=b)`` on the
labeled and unlabeled rows stacked, the unlabeled rows' labels ``MISSING_LABEL`` (``Clue``
takes the classifier as ``estimator``; ``TypiClust`` and ``MaxHerding`` take none). The
classifier handed to scikit-activeml is an unfitted clone of the round's model, which
scikit-activeml fits itself (its default ``fit_clf=True``), so those query times include one
fit. A strategy that raises is recorded with its error and the run stops there; the summary
shows the error in place of the AUC.

Raw records (one JSON line per run) go to ``--raw`` (keep it outside the repository or in a
git-ignored folder); ``--out`` gets the compact summary: per task and strategy the mean AUC,
its paired difference to random per seed (mean, std, worst seed) and seconds per query.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
import warnings

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from benchmarks.bench_quality import _fit, _learner, _strategy  # noqa: E402
from benchmarks.harness.datasets import initial_labeled  # noqa: E402
from benchmarks.harness.metrics import auc  # noqa: E402
from benchmarks.harness.models import make_model  # noqa: E402


# ---------------------------------------------------------------------------------------------
# datasets: name -> (X float32, y int64); all offline, fixed (the split varies with the seed)
# ---------------------------------------------------------------------------------------------
def _breast_cancer():
    from sklearn.datasets import load_breast_cancer
    return load_breast_cancer(return_X_y=True)


def _wine():
    from sklearn.datasets import load_wine
    return load_wine(return_X_y=True)


def _many_classes_noisy():
    from sklearn.datasets import make_classification
    return make_classification(n_samples=1500, n_features=30, n_informative=20, n_redundant=5,
                               n_classes=12, n_clusters_per_class=2, flip_y=0.1,
                               class_sep=1.5, random_state=0)


def _digits():
    from benchmarks.harness.datasets import load_dataset
    return load_dataset("digits")


def _topic_tfidf():
    from sklearn.feature_extraction.text import TfidfVectorizer

    from benchmarks.harness.text import make_topic_corpus
    docs, y = make_topic_corpus(1400, vocab_size=5000, n_classes=8, random_state=0)
    # dense: scikit-activeml's strategies are given the same array as every other strategy
    X = TfidfVectorizer(max_features=1500).fit_transform(docs).toarray()
    return X, y


# ---------------------------------------------------------------------------------------------
# model families, bench_quality's signature: make(n_features, n_classes, n_train, seed) -> [member]
# ---------------------------------------------------------------------------------------------
def _logreg_scaled(nf, nc, n, seed):
    return [make_model("logreg", nf, nc, n, seed=seed)]


def _logreg(nf, nc, n, seed):
    from sklearn.linear_model import LogisticRegression
    return [LogisticRegression(max_iter=1000)]


def _mlp64(nf, nc, n, seed):
    from sklearn.neural_network import MLPClassifier
    return [MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=seed)]


def _rf100(nf, nc, n, seed):
    from sklearn.ensemble import RandomForestClassifier
    return [RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)]


#: task -> (dataset loader, model family, n_test, max_pool, seed_size, batch, rounds).
#: Chosen before any run, for confirming only: nothing in the library is tuned on them.
TASKS = {
    "breast_cancer-logreg": (_breast_cancer, _logreg_scaled, 169, None, 20, 10, 6),
    "wine-logreg": (_wine, _logreg_scaled, 58, None, 20, 10, 6),
    "clf12noisy-rf100": (_many_classes_noisy, _rf100, 500, None, 30, 20, 6),
    "digits-mlp64": (_digits, _mlp64, 450, None, 30, 20, 6),
    "topics-tfidf-logreg": (_topic_tfidf, _logreg, 400, None, 30, 20, 6),
}

SKAL = ("clue", "typiclust", "falcun", "maxherding", "badge-skal")
#: ``ours`` with nothing refitted inside the query: reported beside the default, never a peer
VARIANTS = ("ours:alpha_reliability=None",)
STRATEGIES = ("random", "ours", "modal-ubs") + SKAL + VARIANTS


class SkactivemlStrategy:
    """A scikit-activeml pool strategy as a modAL query strategy.

    ``__call__(learner, X_pool, n_instances)`` stacks the learner's labeled rows
    (``learner.X_training``, ``learner.y_training``) over ``X_pool``, marks the pool's labels
    missing, calls ``qs.query`` as scikit-activeml's documentation does and returns the picked
    rows as indices into ``X_pool``.

    Parameters
    ----------
    name : {"clue", "typiclust", "falcun", "maxherding", "badge-skal"}
    n_classes : int
        The task's classes (``SklearnClassifier(classes=range(n_classes))``).
    seed : int
        ``random_state`` of the strategy and of the wrapper.
    """

    def __init__(self, name: str, n_classes: int, seed: int):
        self.name = name
        self.n_classes = n_classes
        self.seed = seed

    def __call__(self, learner, X_pool, n_instances=1):
        from sklearn.base import clone
        from skactiveml.classifier import SklearnClassifier
        from skactiveml.pool import Badge, Clue, Falcun, MaxHerding, TypiClust
        from skactiveml.utils import MISSING_LABEL

        X_lab = np.asarray(learner.X_training)
        X = np.vstack([X_lab, np.asarray(X_pool)])
        y = np.concatenate([np.asarray(learner.y_training, dtype=float),
                            np.full(len(X_pool), MISSING_LABEL)])
        clf = SklearnClassifier(clone(learner.estimator), classes=np.arange(self.n_classes),
                                random_state=self.seed)
        qs, kw = {
            "clue": (Clue, {"estimator": clf}),
            "typiclust": (TypiClust, {}),
            "falcun": (Falcun, {"clf": clf}),
            "maxherding": (MaxHerding, {}),
            "badge-skal": (Badge, {"clf": clf}),
        }[self.name]
        picked = np.asarray(qs(random_state=self.seed).query(X, y, batch_size=n_instances,
                                                             **kw), dtype=np.int64)
        if picked.shape != (n_instances,) or picked.min() < len(X_lab):
            raise RuntimeError(f"{self.name} returned {picked.tolist()}: not {n_instances} "
                               f"rows of the unlabeled part (rows >= {len(X_lab)}).")
        return picked - len(X_lab)


def _split(task, seed):
    from sklearn.model_selection import train_test_split

    load, _, n_test, max_pool, *_ = TASKS[task]
    X, y = load()
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.unique(np.asarray(y), return_inverse=True)[1].astype(np.int64)
    pool, test = train_test_split(np.arange(len(y)), test_size=n_test, stratify=y,
                                  random_state=seed)
    if max_pool is not None and max_pool < len(pool):
        pool, _ = train_test_split(pool, train_size=max_pool, stratify=y[pool],
                                   random_state=seed)
    pool, test = np.sort(pool), np.sort(test)
    return X[pool], y[pool], X[test], y[test], int(y.max() + 1)


def run_one(task, spec, seed):
    """One active-learning run: the record (labels, accuracy, AUC, query times, error)."""
    _, family, _, _, seed_size, batch, rounds = TASKS[task]
    Xp, yp, Xt, yt, n_classes = _split(task, seed)
    labeled = np.zeros(len(yp), dtype=bool)
    labeled[initial_labeled(len(yp), seed_size, seed)] = True
    strategy = (SkactivemlStrategy(spec, n_classes, seed) if spec in SKAL
                else _strategy(spec, seed))
    labels, accs, qtimes, kinds, error = [], [], [], [], None
    for r in range(rounds + 1):
        idx = np.flatnonzero(labeled)
        members = family(Xp.shape[1], n_classes, len(idx), seed * 1000 + r)
        for i, m in enumerate(members):
            _fit(m, Xp[idx], yp[idx], seed * 1000 + r + 7 * i)
        learner = _learner(members, strategy, Xp[idx], yp[idx])
        labels.append(int(idx.size))
        accs.append(float(np.mean(np.asarray(learner.predict(Xt)).reshape(-1) == yt)))
        if r == rounds:
            break
        unl = np.flatnonzero(~labeled)
        t0 = time.perf_counter()
        try:
            out = learner.query(Xp[unl], n_instances=batch)
        except Exception as exc:  # recorded in the table, never dropped silently
            error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            traceback.print_exc()
            break
        qtimes.append(time.perf_counter() - t0)
        picked = np.asarray(out[0] if isinstance(out, tuple) else out, dtype=np.int64)
        if len(np.unique(picked)) != batch:
            raise RuntimeError(f"{spec} returned {len(np.unique(picked))} distinct of {batch}")
        kinds.append(getattr(strategy, "embedding_kind_", None))
        labeled[unl[picked]] = True
    return {"task": task, "strategy": spec, "seed": seed, "setting": list(TASKS[task][2:]),
            "labels": labels, "accuracy": accs,
            "auc": None if error else auc(labels, accs), "query_time": qtimes,
            "embedding_kind": kinds, "error": error, "n_pool": int(len(yp)),
            "n_test": int(len(yt)),
            "loadavg": os.getloadavg()}


def summarise(records):
    """Per (task, strategy): mean AUC (%), paired difference to random per seed, s / query."""
    by = {(r["task"], r["strategy"], r["seed"]): r for r in records}
    rows = []
    for task in TASKS:
        for s in STRATEGIES:
            recs = [r for (t, ss, _), r in sorted(by.items()) if (t, ss) == (task, s)]
            if not recs:
                continue
            errors = sorted({r["error"] for r in recs if r["error"]})
            ok = [r for r in recs if not r["error"]]
            aucs = [100 * r["auc"] for r in ok]
            diffs = [100 * (r["auc"] - by[(task, "random", r["seed"])]["auc"]) for r in ok
                     if (task, "random", r["seed"]) in by]
            qt = [q for r in recs for q in r["query_time"]]
            kinds = sorted({k for r in recs for k in r.get("embedding_kind", []) if k})
            rows.append(dict(
                embedding_kind=",".join(kinds) or None,
                task=task, strategy=s, seeds=len(ok), errors=errors,
                auc_per_seed={str(r["seed"]): round(100 * r["auc"], 4) for r in ok},
                auc=float(np.mean(aucs)) if aucs else None,
                auc_std=float(np.std(aucs, ddof=1)) if len(aucs) > 1 else None,
                diff_random=float(np.mean(diffs)) if diffs else None,
                diff_std=float(np.std(diffs, ddof=1)) if len(diffs) > 1 else None,
                diff_min=float(np.min(diffs)) if diffs else None,
                s_per_query=float(np.mean(qt)) if qt else None))
    return rows


NAMES = {"random": "random", "ours": "**ours**", "modal-ubs": "modAL UBS", "clue": "Clue",
         "typiclust": "TypiClust", "falcun": "Falcun", "maxherding": "MaxHerding",
         "badge-skal": "Badge", "ours:alpha_reliability=None": "ours, `alpha_reliability=None`"}
PEERS = ("modal-ubs",) + SKAL
MARKER = "<!-- everything below is written by: python benchmarks/bench_peers.py --render -->"


def _paired(a: dict, b: dict):
    """Mean, std and min over the seeds both have of ``a[seed] - b[seed]``."""
    d = np.array([a[k] - b[k] for k in a if k in b])
    if d.size == 0:
        return None
    return float(d.mean()), float(d.std(ddof=1)) if d.size > 1 else 0.0, float(d.min()), d.size


def render(summary) -> str:
    """The results section of ``benchmarks/results/peers.md`` from a summary of :func:`main`."""
    rows = {(r["task"], r["strategy"]): r for r in summary["rows"]}
    tasks = [t for t in TASKS if (t, "ours") in rows]
    env = summary["environment"]
    out = [MARKER, "", "## Run", "", "```", summary["command"], "```", "",
           f"Library: `{env['commit']}`; scikit-learn {env['sklearn']}, scikit-activeml "
           f"{env['skactiveml']}, torch {env['torch']}, Python {env['python']}. "
           f"Load: {summary['load']}. Wall time of the run: "
           f"{env['wall_s_runs'] / 60:.1f} min (sum over the runs).", "",
           "## AUC per task (mean test accuracy over the rounds, %, mean over seeds)", "",
           "| task | seeds | " + " | ".join(NAMES[s] for s in STRATEGIES) +
           " | best peer | ours − best peer (paired: mean ± std, worst seed) | "
           "ours − random (paired: mean ± std, worst seed) |",
           "|---|---|" + "---|" * len(STRATEGIES) + "---|---|---|"]
    gaps, vs_random, loses = [], [], []
    for t in tasks:
        cells = []
        for s in STRATEGIES:
            r = rows.get((t, s))
            if r is None:
                cells.append("not run")
            elif r["errors"]:
                cells.append(f"error ({r['seeds']} seeds ok): `{'; '.join(r['errors'])}`")
            else:
                cells.append(f"{r['auc']:.2f}")
        ours = rows[(t, "ours")]
        peers = [rows[(t, p)] for p in PEERS if (t, p) in rows and rows[(t, p)]["auc"] is not None
                 and not rows[(t, p)]["errors"]]
        best = max(peers, key=lambda r: r["auc"])
        g = _paired(ours["auc_per_seed"], best["auc_per_seed"])
        v = _paired(ours["auc_per_seed"], rows[(t, "random")]["auc_per_seed"])
        gaps.append(g[0])
        vs_random.append(v[0])
        if g[0] < 0:
            loses.append((t, NAMES[best["strategy"]], g))
        out.append(f"| `{t}` | {ours['seeds']} | " + " | ".join(cells) +
                   f" | {NAMES[best['strategy']]} | {g[0]:+.2f} ± {g[1]:.2f} ({g[2]:+.2f}) | "
                   f"{v[0]:+.2f} ± {v[1]:.2f} ({v[2]:+.2f}) |")
    means = []
    for s in STRATEGIES:
        vals = [rows[(t, s)]["auc"] for t in tasks
                if (t, s) in rows and not rows[(t, s)]["errors"]]
        means.append(f"{np.mean(vals):.2f}" if len(vals) == len(tasks) else "–")
    best_mean = max((float(m), NAMES[s]) for m, s in zip(means, STRATEGIES)
                    if m != "–" and s in PEERS)
    out.append(f"| **mean over tasks** | | " + " | ".join(means) +
               f" | {best_mean[1]} (best mean) | {float(means[1]) - best_mean[0]:+.2f} against "
               f"{best_mean[1]}; {np.mean(gaps):+.2f} against each task's best | "
               f"{np.mean(vs_random):+.2f} |")
    out += ["", "The best peer of a task is the peer (modAL UBS or a scikit-activeml strategy) "
            "with the highest mean AUC there; both differences are paired by seed (same split, "
            "same seed labels).", ""]
    kinds = [f"`{t}`: `{rows[(t, 'ours')]['embedding_kind']}`" for t in tasks
             if rows[(t, "ours")].get("embedding_kind")]
    if kinds:
        out += ["Embedding `ours` resolved to (`embedding_kind_`, runs that recorded it): "
                + "; ".join(kinds) + ".", ""]
    out += ["## Where ours loses", ""]
    for t, name, g in loses:
        out.append(f"- `{t}`: {g[0]:+.2f} AUC points behind {name} (paired std {g[1]:.2f}, "
                   f"standard error {g[1] / np.sqrt(g[3]):.2f}, worst seed {g[2]:+.2f}).")
    for t in tasks:
        v = _paired(rows[(t, "ours")]["auc_per_seed"], rows[(t, "random")]["auc_per_seed"])
        if v[0] <= 0:
            out.append(f"- `{t}`: below random on average ({v[0]:+.2f}).")
        elif v[2] < 0:
            out.append(f"- `{t}`: above random on average ({v[0]:+.2f}) but below it on at "
                       f"least one seed (worst {v[2]:+.2f}).")
    if not loses:
        out.append("- nowhere behind the best peer on average.")
    worst = min(gaps)
    out += ["", "Against the targets: mean over tasks at or above the best peer's mean: "
            f"{'yes' if float(means[1]) >= best_mean[0] else 'no'} "
            f"({float(means[1]) - best_mean[0]:+.2f}); at most 0.5 behind the best peer in every "
            f"task: {'yes' if worst >= -0.5 else 'no'} (worst {worst:+.2f}); above random in "
            f"every task: {'yes' if min(vs_random) > 0 else 'no'} "
            f"(lowest {min(vs_random):+.2f})."]
    var = VARIANTS[0]
    if all((t, var) in rows and not rows[(t, var)]["errors"] for t in tasks):
        out += ["", f"## The default against `{var}`", "",
                "| task | ours − variant, AUC (paired: mean ± std, worst seed) | s / query: ours, "
                "variant, ratio |", "|---|---|---|"]
        for t in tasks:
            o, v = rows[(t, "ours")], rows[(t, var)]
            d = _paired(o["auc_per_seed"], v["auc_per_seed"])
            out.append(f"| `{t}` | {d[0]:+.2f} ± {d[1]:.2f} ({d[2]:+.2f}) | "
                       f"{o['s_per_query']:.3f}, {v['s_per_query']:.3f}, "
                       f"{o['s_per_query'] / v['s_per_query']:.1f}× |")
    out += ["", "## Seconds per query (mean over all queries of all seeds)", "",
            "scikit-activeml's `Clue`, `Falcun` and `Badge` fit the classifier they are given "
            "inside `query` (their default `fit_clf=True`), so their times include one fit; "
            "`ours` includes its own refits (`alpha_reliability=\"auto\"`).", "",
            "| task | " + " | ".join(NAMES[s] for s in STRATEGIES) + " |",
            "|---|" + "---|" * len(STRATEGIES)]
    for t in tasks:
        out.append(f"| `{t}` | " + " | ".join(
            "–" if rows.get((t, s)) is None or rows[(t, s)]["s_per_query"] is None
            else f"{rows[(t, s)]['s_per_query']:.3f}" for s in STRATEGIES) + " |")
    return "\n".join(out) + "\n"


def _command(a) -> str:
    """The command line that reproduces the measurement (output paths left out)."""
    cmd = ["OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_peers.py",
           "--seeds", *map(str, a.seeds)]
    if a.tasks != list(TASKS):
        cmd += ["--tasks", *a.tasks]
    if a.strategies != list(STRATEGIES):
        cmd += ["--strategies", *a.strategies]
    return " ".join(cmd + (["--library", a.library] if a.library else []))


def _load(records) -> str:
    la = np.array([r["loadavg"][0] for r in records])
    return (f"1-minute load average at the end of each run: min {la.min():.1f}, mean "
            f"{la.mean():.1f}, max {la.max():.1f}, on 2 cores shared with other jobs")


def _write_page(page: str, summary) -> None:
    text = open(page).read() if os.path.exists(page) else ""
    head = text.split(MARKER)[0].rstrip("\n")
    with open(page, "w") as fh:
        fh.write(head + "\n\n" + render(summary))


def _done(raw):
    """The raw records of ``raw`` whose task setting is today's (others are not reused)."""
    if not os.path.exists(raw):
        return []
    with open(raw) as fh:
        recs = [json.loads(line) for line in fh if line.strip()]
    return [r for r in recs
            if r["task"] in TASKS and r.get("setting") == list(TASKS[r["task"]][2:])]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(15)))
    ap.add_argument("--raw", default="/tmp/peers_raw/records.jsonl",
                    help="raw records, one JSON line per run (resumed from)")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "peers.json"))
    ap.add_argument("--page", default=os.path.join(ROOT, "benchmarks", "results", "peers.md"),
                    help="results page; its part after the marker line is rewritten")
    ap.add_argument("--render", action="store_true",
                    help="only rewrite --page from --out (no runs)")
    ap.add_argument("--library", default=None,
                    help="the library's commit to name on the page (default: git HEAD)")
    a = ap.parse_args(argv)
    if a.render:
        with open(a.out) as fh:
            _write_page(a.page, json.load(fh))
        return
    import sklearn
    import skactiveml
    from sklearn.exceptions import ConvergenceWarning
    import torch

    import sparse_query
    torch.set_num_threads(1)
    # MLPClassifier's max_iter warning, raised by every refit inside the strategies
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    os.makedirs(os.path.dirname(os.path.abspath(a.raw)), exist_ok=True)
    records = [r for r in _done(a.raw) if r["seed"] in a.seeds]
    have = {(r["task"], r["strategy"], r["seed"]) for r in records}
    t_start = time.perf_counter()
    for seed in a.seeds:                   # seeds outermost: partial results cover every cell
        for task in a.tasks:
            for spec in a.strategies:
                if (task, spec, seed) in have:
                    continue
                t0 = time.perf_counter()
                rec = run_one(task, spec, seed)
                rec["wall_time"] = time.perf_counter() - t0
                records.append(rec)
                with open(a.raw, "a") as fh:
                    fh.write(json.dumps(rec) + "\n")
                shown = rec["error"] or f"AUC {100 * rec['auc']:.2f}"
                print(f"[done] {task} {spec} seed={seed}: {shown} "
                      f"({rec['wall_time']:.1f} s, load {rec['loadavg'][0]:.1f})", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    summary = {
        "command": _command(a),
        "load": _load(records),
        "setting": {t: dict(zip(("n_test", "max_pool", "seed_size", "batch", "rounds"),
                                TASKS[t][2:])) for t in TASKS},
        "environment": {"python": platform.python_version(), "sklearn": sklearn.__version__,
                        "skactiveml": skactiveml.__version__, "torch": torch.__version__,
                        "sparse_query": os.path.dirname(sparse_query.__file__),
                        "commit": a.library or commit, "loadavg_end": os.getloadavg(),
                        "wall_s_this_call": time.perf_counter() - t_start,
                        "wall_s_runs": float(sum(r["wall_time"] for r in records))},
        "rows": summarise(records),
    }
    with open(a.out, "w") as fh:
        json.dump(summary, fh, indent=1)
    _write_page(a.page, summary)
    print(f"wrote {a.out} and {a.page}")


if __name__ == "__main__":
    main()
