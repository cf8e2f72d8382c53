"""Same seed, same batch: record the batches the library chooses, then check a later version.

Issue 16 moved the query pipeline (one path for every kind of pool); the batches must not
move with it. This script runs :class:`~sparse_query.SparseApproxSampler` at its defaults
and with ``solver="greedy"`` / ``solver="iht"``, each with ``random_state=0``, on

* scikit-learn digits (``LogisticRegression`` and ``MLPClassifier`` fitted on 100 labels;
  the other 1,697 rows are the pool), as a numpy pool, a ``scipy.sparse`` CSR pool and a
  ``dask.array`` pool (four row chunks, an in-process ``LocalCluster``);
* the scale benchmark's random factored inputs (``bench_solvers.make_inputs``: n = 20,000,
  K = 10, d = 512): the sampler on the pool ``H`` with a random linear torch head, and the
  solvers at the sampler's defaults on the raw factors ``(A, H, sigma)`` in memory and
  through ``sparse_query.distributed``'s ``proximal_iht_dask`` / ``greedy_dask``;
* ``sparse_query.distributed.query_dask`` on digits,

and stores every chosen index set (or the error a case raised) in a JSON file::

    cd /work/main && python benchmarks/check_same_batch.py --record results/same_batch_<sha>.json
    PYTHONPATH=$PWD python benchmarks/check_same_batch.py --check results/same_batch_<sha>.json

``--check`` recomputes every case and exits 1 when any index set differs from the record.
``--check`` also reports, for information, which Dask cases give the batch of their
in-memory twin: they should wherever both run the same plan -- an explicit solver, and no
``sketch_dim="auto"`` difference. At the defaults a Dask pool resolves ``solver="auto"`` to
IHT (in memory: by cost, greedy here), and on the scale pool (n = 20,000, 5,130 dimensions)
``sketch_dim="auto"`` sketches on Dask but not in memory (``backends/dask_backend.py``
says why), so those twins differ by design; ``query_dask`` has no twin. Runs in about ten
minutes on two loaded cores.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CONFIGS = {"default": {}, "greedy": {"solver": "greedy"}, "iht": {"solver": "iht"}}
B_DIGITS, B_SCALE = 20, 100
N_SCALE = 20_000


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    models = {
        "logreg": LogisticRegression(max_iter=500).fit(X[:100], y[:100]),
        "mlp": MLPClassifier(hidden_layer_sizes=(32,), max_iter=300,
                             random_state=0).fit(X[:100], y[:100]),
    }
    return X[100:], models


def _scale():
    import torch
    from bench_solvers import make_inputs

    A, H, sigma = make_inputs(N_SCALE, 10, 512, seed=0)
    torch.manual_seed(0)  # the head's initial weights; global state is fine in a script
    head = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Linear(512, 10))
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        head[1].weight.copy_(torch.randn(10, 512, generator=g) * 0.05)
        head[1].bias.copy_(torch.randn(10, generator=g) * 0.1)
    return A, H, sigma, head


def _run(fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idx = fn()
        return sorted(int(i) for i in np.asarray(idx).reshape(-1))
    except Exception as exc:  # noqa: BLE001 - a case that fails is recorded as such
        return f"error: {type(exc).__name__}: {exc}"[:300]


def cases(client):
    """Yield ``(key, thunk)`` for every case; the thunk returns the chosen indices."""
    import dask.array as da
    import scipy.sparse as sp

    from sparse_query import SparseApproxSampler

    pool, models = _digits()
    pools = {
        "numpy": pool,
        "sparse": sp.csr_matrix(pool),
        "dask": da.from_array(pool, chunks=(450, -1)),
    }
    for mname, model in models.items():
        for kind, X in pools.items():
            for cname, kw in CONFIGS.items():
                def thunk(X=X, model=model, kw=kw):
                    s = SparseApproxSampler(random_state=0, **kw)
                    return s.fit_query(X, model, B_DIGITS)
                yield f"{'dask-' if kind == 'dask' else ''}digits-{mname}-{kind}-{cname}", thunk

    from sparse_query.distributed import greedy_dask, proximal_iht_dask, query_dask

    dpool = pools["dask"]
    for solver in ("iht", "greedy"):
        yield (f"dask-query_dask-digits-logreg-{solver}",
               lambda solver=solver: query_dask(models["logreg"], dpool, B_DIGITS,
                                                solver=solver, random_state=0,
                                                client=client)[0])

    import torch

    from sparse_query.problem import SparseApproxProblem
    from sparse_query.solvers import greedy, proximal_iht

    A, H, sigma, head = _scale()
    Hn = H.numpy()
    hpools = {"numpy": Hn, "dask": da.from_array(Hn, chunks=(5000, -1))}
    for kind, X in hpools.items():
        for cname, kw in CONFIGS.items():
            def thunk(X=X, kw=kw):
                s = SparseApproxSampler(random_state=0, **kw)
                return s.fit_query(X, head, B_SCALE)
            yield f"{'dask-' if kind == 'dask' else ''}scale-linear-{kind}-{cname}", thunk
    # the solvers on the raw factors, at the sampler's alpha (pool-scaled) and beta
    alpha = 0.1 * N_SCALE**2 / B_SCALE
    prob = lambda: SparseApproxProblem((A, H), sigma, B_SCALE, alpha=alpha, beta=1e-3,  # noqa: E731
                                       device="cpu")
    yield "scale-factors-iht", lambda: proximal_iht(prob()).indices
    yield "scale-factors-greedy", lambda: greedy(prob()).indices
    dA, dH = (da.from_array(t.numpy(), chunks=(5000, -1)) for t in (A, H))
    yield ("dask-scale-factors-iht",
           lambda: proximal_iht_dask(dA, dH, sigma.numpy(), B_SCALE, alpha=alpha, beta=1e-3,
                                     client=client).indices)
    yield ("dask-scale-factors-greedy",
           lambda: greedy_dask(dA, dH, sigma.numpy(), B_SCALE, alpha=alpha, beta=1e-3,
                               client=client).indices)
    del torch


#: the in-memory case each Dask case should equal (issue 16: one path for every pool)
def twin(key):
    if key.startswith("dask-query_dask"):
        return None
    return key[len("dask-"):].replace("-dask-", "-numpy-")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--record", metavar="FILE")
    g.add_argument("--check", metavar="FILE")
    ap.add_argument("--only", default="", help="run only cases whose key contains this")
    args = ap.parse_args(argv)

    import torch
    import distributed

    import sparse_query

    torch.set_num_threads(1)
    src = Path(sparse_query.__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
    except OSError:
        sha = "?"
    print(f"sparse_query from {src} at {sha}; load {os.getloadavg()}", flush=True)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    got = {}
    try:
        for key, thunk in cases(client):
            if args.only and args.only not in key:
                continue
            got[key] = _run(thunk)
            shown = got[key] if isinstance(got[key], str) else got[key][:8]
            print(f"{key:45s} {shown}", flush=True)
    finally:
        client.close()
        cluster.close()
    if args.record:
        out = {"source": str(src), "commit": sha, "b_digits": B_DIGITS, "b_scale": B_SCALE,
               "n_scale": N_SCALE, "batches": got}
        Path(args.record).parent.mkdir(parents=True, exist_ok=True)
        Path(args.record).write_text(json.dumps(out, indent=1))
        print(f"recorded {len(got)} cases in {args.record}")
        return 0
    ref = json.loads(Path(args.check).read_text())["batches"]
    bad = [k for k in got if k in ref and got[k] != ref[k]]
    missing = [k for k in ref if k not in got and (not args.only or args.only in k)]
    for k in bad:
        print(f"DIFFERS {k}:\n  recorded {ref[k]}\n  now      {got[k]}")
    for k in missing:
        print(f"MISSING {k}")
    for k in got:
        t = twin(k) if k.startswith("dask-") else None
        if t is not None and t in got:
            same = got[k] == got[t]
            print(f"dask vs in-memory {k}: {'same batch' if same else 'DIFFERENT batch'}")
    n_same = len(got) - len(bad)
    print(f"{n_same} of {len(got)} cases give the recorded batch; {len(bad)} differ, "
          f"{len(missing)} missing")
    return 1 if bad or missing else 0


if __name__ == "__main__":
    sys.exit(main())
