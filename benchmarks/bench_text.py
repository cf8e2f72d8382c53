"""Text-sized sparse pools (issue 13): TF-IDF pools without densifying, against today's path.

The pool is built offline: documents from a topic model over a 50,000-word vocabulary
(``benchmarks.harness.text.make_topic_corpus``), vectorised with scikit-learn's
``TfidfVectorizer`` fitted on the pool, and a ``LogisticRegression`` fitted on 300 labelled
documents. Parts (raw numbers in ``benchmarks/results/text/<part>.json``):

``timing``
    End-to-end ``fit_query`` (inference, embedding and solve) of greedy (exact), IHT (exact),
    IHT sketched to 256 dimensions, BADGE and entropy at n = 10k and 100k, b = 100 and 1,000.
    Every measurement runs in a fresh subprocess: wall time, the sampler's solve-only time,
    and the extra peak resident memory over the loaded process (the kernel's peak-RSS counter
    ``VmHWM`` is reset after loading, ``/proc/self/clear_refs``). On a 10k pool whose
    vocabulary is cut to 20,000 words (``max_features``) the same measurements run with
    today's densifying code as well (the library at commit ``BASE`` -- before this change --
    unpacked with ``git archive`` and put first on ``PYTHONPATH``), interleaved with ours, so
    each ratio is measured side by side under the same load. Today's path is run only where
    its predicted extra memory (two dense copies of the ``n x d`` features) stays under 6 GB,
    and a watchdog ends it past 6 GB. 1M documents do not fit this machine's time budget
    (building and vectorising the corpus alone takes minutes); not run.
``curve``
    Active learning on a 10k-document pool with a 5k test set: 100 random seed labels, 4
    rounds of 100, retrain from scratch each round; greedy, IHT, BADGE, entropy and random,
    3 seeds; test accuracy per round and the AUC (trapezoid over labels / label range),
    paired against random per seed.
``render``
    ``benchmarks/results/text/text.md`` from whatever JSON exists.

Regenerate::

    python benchmarks/bench_text.py timing curve render
    python benchmarks/bench_text.py timing --sizes 100000 --strategies greedy-sketch256 render

The machine has 2 cores shared with other jobs: the load average is recorded with every
measurement; read times as ratios measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "text"
BASE = "a9dfd89"          # the library before sparse pools (today's densifying path)
VOCAB = 50_000
N_LABELED = 300
LIMIT_BYTES = 6 * 2**30

STRATEGIES = ("greedy", "iht", "iht-sketch256", "badge", "entropy")
EXTRA = ("greedy-sketch256",)   # measured with --strategies (the sampler's default at 100k)


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def prepare(n_pool: int, max_features, seed: int, cache: Path) -> Path:
    """Corpus -> TF-IDF pool (CSR, .npz) and a fitted LogisticRegression (pickle)."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    sys.path.insert(0, str(ROOT))
    from benchmarks.harness.text import make_topic_corpus

    d = cache / f"pool_{n_pool}_{max_features}_{seed}"
    if (d / "model.pkl").exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    docs, y = make_topic_corpus(n_pool + N_LABELED, vocab_size=VOCAB, random_state=seed)
    vec = TfidfVectorizer(max_features=max_features, dtype=np.float64)
    X = vec.fit_transform(docs)
    del docs
    clf = LogisticRegression(max_iter=1000).fit(X[:N_LABELED], y[:N_LABELED])
    sp.save_npz(d / "pool.npz", X[N_LABELED:].tocsr(), compressed=False)
    with open(d / "model.pkl", "wb") as f:
        pickle.dump(clf, f)
    meta = dict(n_pool=n_pool, n_features=int(X.shape[1]), nnz_per_row=X.nnz / X.shape[0],
                pool_mb=(X[N_LABELED:].data.nbytes + X[N_LABELED:].indices.nbytes) / 2**20,
                prepare_s=time.perf_counter() - t0)
    (d / "meta.json").write_text(json.dumps(meta))
    return d


# ---------------------------------------------------------------------------------------------
# one measurement, in its own process
# ---------------------------------------------------------------------------------------------
def _rss() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _hwm() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _make(name: str):
    from sparse_query import SparseApproxSampler
    from sparse_query.baselines import BADGE, EntropySampling

    if name == "greedy":
        return SparseApproxSampler("greedy", sketch_dim=None, device="cpu", random_state=0)
    if name == "iht":
        return SparseApproxSampler("iht", sketch_dim=None, device="cpu", random_state=0)
    if name == "greedy-sketch256":
        return SparseApproxSampler("greedy", sketch_dim=256, device="cpu", random_state=0)
    if name == "iht-sketch256":
        return SparseApproxSampler("iht", sketch_dim=256, device="cpu", random_state=0)
    if name == "badge":
        return BADGE(device="cpu", random_state=0)
    if name == "entropy":
        return EntropySampling(device="cpu")
    raise ValueError(name)


def measure(data: str, name: str, b: int) -> dict:
    import scipy.sparse as sp
    import torch

    torch.set_num_threads(1)
    X = sp.load_npz(Path(data) / "pool.npz").tocsr()
    with open(Path(data) / "model.pkl", "rb") as f:
        clf = pickle.load(f)
    strategy = _make(name)
    import sparse_query

    base_rss = _rss()
    try:
        open("/proc/self/clear_refs", "w").write("5")   # reset the peak-RSS counter
        reset = True
    except OSError:
        reset = False
    stop = threading.Event()
    peak = [base_rss]

    def watch():  # polls too (a backup where clear_refs is unavailable) and enforces the cap
        while not stop.is_set():
            r = _rss()
            peak[0] = max(peak[0], r)
            if r - base_rss > LIMIT_BYTES:
                print(json.dumps({"aborted": f"extra RSS passed {LIMIT_BYTES / 2**30:.0f} GB"}),
                      flush=True)
                os._exit(3)
            time.sleep(0.01)

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    idx = strategy.fit_query(X, clf, b)
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    hwm = _hwm() if reset else peak[0]
    return dict(strategy=name, b=b, wall_s=wall, solve_s=getattr(strategy, "solve_time_", None),
                embedding_s=getattr(strategy, "embedding_time_", None),
                extra_peak_mb=(max(hwm, peak[0]) - base_rss) / 2**20, base_rss_mb=base_rss / 2**20,
                load=load, n=int(X.shape[0]), d=int(X.shape[1]), first=[int(i) for i in idx[:5]],
                library=str(Path(sparse_query.__file__).parents[1]))


def _run_child(data: Path, name: str, b: int, pythonpath: Path, timeout: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(pythonpath), OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    cmd = [sys.executable, str(Path(__file__).resolve()), "_measure", str(data), name, str(b)]
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(strategy=name, b=b, error=f"timeout after {timeout}s")
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return dict(strategy=name, b=b, error=(p.stderr or "no output")[-400:])
    rec = json.loads(lines[-1])
    rec.setdefault("strategy", name)
    rec.setdefault("b", b)
    return rec


def _old_library(cache: Path) -> Path:
    dest = cache / f"sparse_query_{BASE}"
    if not (dest / "sparse_query" / "__init__.py").exists():
        dest.mkdir(parents=True, exist_ok=True)
        arch = subprocess.run(["git", "-C", str(ROOT), "archive", BASE, "sparse_query"],
                              capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=arch, check=True)
    return dest


def run_timing(args) -> None:
    cache = Path(args.cache)
    old = _old_library(cache)
    out = OUT / "timing.json"
    records = []
    if args.strategies and out.exists():  # add rows to an earlier run
        records = json.loads(out.read_text())["records"]

    def save():
        out.write_text(json.dumps(dict(records=records, machine=_machine()), indent=1))

    configs = [(10_000, 20_000, True), (10_000, None, False), (100_000, None, False)]
    configs = [c for c in configs if c[0] in args.sizes]
    for n, max_features, with_old in configs:
        data = prepare(n, max_features, 0, cache)
        meta = json.loads((data / "meta.json").read_text())
        print(f"pool n={n} d={meta['n_features']} nnz/row={meta['nnz_per_row']:.1f}", flush=True)
        predicted_old = 2 * n * (meta["n_features"] + 1) * 8
        for name in args.strategies or STRATEGIES:
            for b in args.b:
                rec = _run_child(data, name, b, ROOT, args.timeout)
                rec.update(path="sparse", max_features=max_features, **meta)
                records.append(rec)
                print(json.dumps(rec), flush=True)
                save()
                if with_old:
                    if predicted_old > LIMIT_BYTES:
                        rec = dict(strategy=name, b=b, error="skipped: predicted > 6 GB")
                    else:
                        rec = _run_child(data, name, b, old, args.timeout)
                    rec.update(path="densify", max_features=max_features, **meta)
                    records.append(rec)
                    print(json.dumps(rec), flush=True)
                    save()


# ---------------------------------------------------------------------------------------------
# learning curve
# ---------------------------------------------------------------------------------------------
def run_curve(args) -> None:
    import torch
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    sys.path.insert(0, str(ROOT))
    from sparse_query import SparseApproxSampler
    from sparse_query.baselines import BADGE, EntropySampling, RandomSampling
    from benchmarks.harness.metrics import auc
    from benchmarks.harness.text import make_topic_corpus

    torch.set_num_threads(1)
    n_pool, n_test, seed_size, rounds, b = 10_000, 5_000, 100, 4, 100
    makers = {
        "greedy": lambda s: SparseApproxSampler("greedy", device="cpu", random_state=s),
        "iht": lambda s: SparseApproxSampler("iht", device="cpu", random_state=s),
        "badge": lambda s: BADGE(device="cpu", random_state=s),
        "entropy": lambda s: EntropySampling(device="cpu"),
        "random": lambda s: RandomSampling(random_state=s),
    }
    records = []
    for seed in args.seeds:
        docs, y = make_topic_corpus(n_pool + n_test, vocab_size=VOCAB, random_state=100 + seed)
        X = TfidfVectorizer().fit_transform(docs)
        Xp, yp, Xt, yt = X[:n_pool], y[:n_pool], X[n_pool:], y[n_pool:]
        start = np.random.default_rng(seed).choice(n_pool, seed_size, replace=False)
        for name, make in makers.items():
            labeled = list(start)
            accs, labels, times = [], [], []
            for r in range(rounds + 1):
                clf = LogisticRegression(max_iter=1000).fit(Xp[labeled], yp[labeled])
                accs.append(float(clf.score(Xt, yt)))
                labels.append(len(labeled))
                if r == rounds:
                    break
                pool = np.setdiff1d(np.arange(n_pool), labeled)
                t0 = time.perf_counter()
                idx = make(seed).fit_query(Xp[pool], clf, b)
                times.append(time.perf_counter() - t0)
                labeled.extend(pool[idx].tolist())
            rec = dict(strategy=name, seed=seed, labels=labels, accuracy=accs,
                       auc=auc(labels, accs), query_s=times, load=os.getloadavg()[0])
            records.append(rec)
            print(json.dumps(rec), flush=True)
            (OUT / "curve.json").write_text(json.dumps(dict(records=records, machine=_machine(),
                                                            setting=dict(n_pool=n_pool,
                                                                         n_test=n_test,
                                                                         seed_size=seed_size,
                                                                         rounds=rounds, b=b)),
                                                       indent=1))


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------
def _machine() -> dict:
    return dict(python=platform.python_version(), cpus=os.cpu_count(),
                loadavg=os.getloadavg(), when=time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                                            time.gmtime()))


def render(args) -> None:
    lines = ["# Text-sized sparse pools (TF-IDF)", "",
             "Generated by `python benchmarks/bench_text.py timing curve render`; raw numbers in "
             "`benchmarks/results/text/*.json`.", ""]
    tpath = OUT / "timing.json"
    if tpath.exists():
        T = json.loads(tpath.read_text())
        recs = T["records"]
        lines += ["## Time and extra peak memory of one `fit_query`", "",
                  "End to end (inference + embedding + solve), each in a fresh process, 1 thread. "
                  "`solve` is the sampler's solve-only time. `extra MB` is the peak resident "
                  "memory over the loaded process. `densify` is today's path (the library at "
                  f"`{BASE}`), run in the same loop as ours on the same pool. Load average "
                  "(1 min) of the 2-core machine in the last column.", "",
                  "| n | d | nnz/row | b | strategy | path | time s | solve s | extra MB | "
                  "time ratio densify/sparse | memory ratio | load |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        by = {}
        for r in recs:
            by[(r.get("n_pool"), r.get("max_features"), r["strategy"], r["b"], r["path"])] = r
        for r in recs:
            key = (r.get("n_pool"), r.get("max_features"), r["strategy"], r["b"])
            if "error" in r or "aborted" in r:
                msg = r.get("error") or r.get("aborted")
                lines.append(f"| {r.get('n_pool')} | {r.get('n_features')} | "
                             f"{r.get('nnz_per_row', 0):.0f} | {r['b']} | {r['strategy']} | "
                             f"{r['path']} | {msg} | | | | | |")
                continue
            ratio_t = ratio_m = ""
            if r["path"] == "sparse":
                o = by.get(key + ("densify",))
                if o and "wall_s" in o:
                    ratio_t = f"{o['wall_s'] / r['wall_s']:.1f}"
                    ratio_m = f"{o['extra_peak_mb'] / max(r['extra_peak_mb'], 1e-9):.0f}"
            solve = "" if r.get("solve_s") is None else f"{r['solve_s']:.2f}"
            lines.append(f"| {r['n']} | {r['d']} | {r['nnz_per_row']:.0f} | {r['b']} | "
                         f"{r['strategy']} | {r['path']} | {r['wall_s']:.2f} | {solve} | "
                         f"{r['extra_peak_mb']:.0f} | {ratio_t} | {ratio_m} | {r['load']:.1f} |")
        lines.append("")
    cpath = OUT / "curve.json"
    if cpath.exists():
        C = json.loads(cpath.read_text())
        s = C["setting"]
        recs = C["records"]
        lines += ["## Learning curve on the text pool", "",
                  f"{s['n_pool']} pool documents, {s['n_test']} test documents, "
                  f"{s['seed_size']} random seed labels, {s['rounds']} rounds of {s['b']}, "
                  "LogisticRegression retrained each round; mean test accuracy (%) over seeds "
                  "per number of labels, AUC, and the AUC paired against random per seed "
                  "(mean +- std over seeds).", ""]
        names = list(dict.fromkeys(r["strategy"] for r in recs))
        labels = recs[0]["labels"]
        lines += ["| strategy | seeds | " + " | ".join(str(x) for x in labels)
                  + " | AUC | AUC - random | mean query s |",
                  "|---|---|" + "---|" * len(labels) + "---|---|---|"]
        rand = {r["seed"]: r["auc"] for r in recs if r["strategy"] == "random"}
        for name in names:
            rs = [r for r in recs if r["strategy"] == name]
            acc = np.mean([r["accuracy"] for r in rs], axis=0) * 100
            aucs = np.array([r["auc"] for r in rs]) * 100
            diffs = np.array([r["auc"] - rand[r["seed"]] for r in rs if r["seed"] in rand]) * 100
            qs = np.mean([np.mean(r["query_s"]) for r in rs])
            d = f"{diffs.mean():+.2f} +- {diffs.std():.2f}" if len(diffs) else ""
            lines.append(f"| {name} | {len(rs)} | " + " | ".join(f"{a:.1f}" for a in acc)
                         + f" | {aucs.mean():.2f} | {d} | {qs:.2f} |")
        lines.append("")
    findings = OUT / "findings.md"   # hand-written reading of the tables above
    if findings.exists():
        lines += [findings.read_text().rstrip(), ""]
    (OUT / "text.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_measure":
        print(json.dumps(measure(argv[1], argv[2], int(argv[3]))), flush=True)
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("parts", nargs="+", choices=["timing", "curve", "render"])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--b", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--timeout", type=int, default=600)
    p.add_argument("--strategies", nargs="+", choices=STRATEGIES + EXTRA, default=None,
                   help="only these (rows are added to an existing timing.json)")
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "sq_bench_text"))
    args = p.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    for part in args.parts:
        {"timing": run_timing, "curve": run_curve, "render": render}[part](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
