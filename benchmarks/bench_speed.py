"""Issue 15, speed: the sampler's defaults against BADGE and k-center, through ``fit_query``.

Every method gets the same pool -- Gaussian-mixture features (d = 128 or 512, K = 10) behind a
fixed ``nn.Linear`` head (``bench_al.make_pool``) -- and is timed through the full
``fit_query`` (inference, embedding, selection), side by side in one process, 1 torch thread
(``--threads``), medians of ``--repeats`` calls (one call when the first exceeds
``--single-above`` s). Peak memory is the RSS increment over the inputs during a call
(``bench_solvers._PeakRSS``). The load average is recorded per row: the development machine
is 2 cores shared with other jobs, so read times as ratios between rows of one run.

Parts:

``acq``
    The acquisition-time table: n in ``--pools``, b in ``--batches``, methods ``--methods``
    (default: the sampler's default configuration, IHT at its defaults, BADGE, k-center),
    with the ratio to BADGE at the same (n, b).
``large``
    One large pool (``--n``, ``--d``), b = ``--b``, ``SparseApproxSampler(solver="iht")`` and
    the default sampler at their defaults: seconds in fit and in the solve, iterations, sketch,
    peak extra memory.

``unsaturated``
    The pool of ``large`` behind a head whose logits are not saturated (``nn.Linear(d, 10)``
    with weights ``centres / (8 sqrt(d))``, mean top probability ~0.64, where IHT runs its
    full course), passed as a numpy ``float32`` array and as a tensor of the same data, one
    after the other in one process: fit, solve, total, iterations, one forward pass of the
    head over the pool, and the extra peak RSS (over the inputs) per row.

    python benchmarks/bench_speed.py unsaturated --n 1000000 --d 512 --b 1000

``threads``
    The default query on scikit-learn digits (``LogisticRegression`` on 100 labels, b = 10),
    median of ``--repeats`` ``fit_query`` calls, each configuration in its own process:
    the library's default (``n_jobs=None``) under the process's default threads, the same
    under ``OMP_NUM_THREADS=1``, and ``n_jobs=-1`` (every core); writes
    ``results/threads.md``.

    python benchmarks/bench_speed.py acq --pools 10000 100000 --batches 100 1000 5000
    python benchmarks/bench_speed.py large --n 1000000 --d 512 --b 1000
    python benchmarks/bench_speed.py threads --rounds 3 --repeats 21

Writes ``benchmarks/results/speed_<part>.json`` and prints one line per row. ``--device cuda``
runs every method on the GPU (``bench_speed_gpu.sh`` runs the table there).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_al import make_pool  # noqa: E402
from bench_solvers import _PeakRSS  # noqa: E402

OUT = Path(__file__).parent / "results"


def _factory(name, device):
    import sparse_query as sq

    if name == "default":
        return lambda seed: sq.SparseApproxSampler(device=device, random_state=seed)
    if name == "iht":
        return lambda seed: sq.SparseApproxSampler(solver="iht", device=device, random_state=seed)
    if name == "greedy-exact":
        return lambda seed: sq.SparseApproxSampler(solver="greedy", sketch_dim=None,
                                                   device=device, random_state=seed)
    if name == "badge":
        return lambda seed: sq.BADGE(device=device, random_state=seed)
    if name == "kcenter":
        return lambda seed: sq.KCenterGreedy(device=device, random_state=seed)
    raise ValueError(f"unknown method {name!r}")


def _time(make, X, model, b, X_lab, y_lab, repeats, single_above):
    times, cpu, info = [], [], {}
    for r in range(repeats):
        gc.collect()
        s = make(r)
        with _PeakRSS() as mem:
            base = mem.peak
            t0, c0 = time.perf_counter(), time.thread_time()
            s.fit_query(X, model, b, X_labeled=X_lab, y_labeled=y_lab)
            times.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)  # this thread's CPU time: torch runs 1 thread
        info = {"peak_mb": (mem.peak - base) / 2**20, "cpu_seconds": statistics.median(cpu)}
        for k in ("embedding_time_", "solve_time_", "n_iter_", "sketch_dim_", "solver_"):
            if hasattr(s, k):
                info[k.rstrip("_")] = getattr(s, k)
        del s
        if r == 0 and times[0] > single_above:
            break
    return statistics.median(times), len(times), info


def _features(n, d, seed, chunk=65536):
    """``bench_al.make_pool``'s Gaussian mixture, drawn in float32 chunks (no n x d float64
    temporary: 1M x 512 would need 4 GB for it)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(10, d)).astype(np.float32)
    X = np.empty((n, d), dtype=np.float32)
    y = rng.integers(0, 10, size=n)
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        X[s:e] = centres[y[s:e]] + 1.5 * rng.standard_normal((e - s, d), dtype=np.float32)
    return X, y


def _sklearn_pool(n, d):
    """The issue's third pool: ``d`` raw features behind a ``LogisticRegression``."""
    from sklearn.linear_model import LogisticRegression

    X, y = _features(n, d, seed=0)
    Xl, yl = _features(2000, d, seed=1)
    model = LogisticRegression(max_iter=300).fit(Xl, yl)
    return X, model, Xl[:100], yl[:100]


def _pool(n, d, device):
    _, _, model = make_pool(10, d, seed=0)  # the fixed head (same centres, seed 0)
    X, _ = _features(n, d, seed=0)
    Xl, yl = _features(100, d, seed=1)  # labeled set for k-center
    X, Xl = torch.from_numpy(X), torch.from_numpy(Xl)
    model = model.to(device)
    return X, model, Xl, yl


def acq(args):
    rows = []
    for n in args.pools:
        if args.model == "logreg":
            X, model, Xl, yl = _sklearn_pool(n, args.d)
        else:
            X, model, Xl, yl = _pool(n, args.d, args.device)
        for b in args.batches:
            if b >= n:
                continue
            if args.paired:
                rows += _paired(args, X, model, Xl, yl, n, b)
                continue
            for name in args.methods:
                t, runs, info = _time(_factory(name, args.device), X, model, b, Xl, yl,
                                      args.repeats, args.single_above)
                row = dict(n=n, b=b, d=args.d, model=args.model, method=name, seconds=t,
                           runs=runs,
                           load=os.getloadavg()[0], **info)
                rows.append(row)
                print(json.dumps(row), flush=True)
        del X, model
        gc.collect()
    for r in rows:
        if "x_badge_min" in r:  # paired run: the ratio is the median of per-repeat ratios
            continue
        ref = [q["seconds"] for q in rows if q["n"] == r["n"] and q["b"] == r["b"]
               and q["method"] == "badge"]
        r["x_badge"] = r["seconds"] / ref[0] if ref else None
    return rows


def _paired(args, X, model, Xl, yl, n, b):
    """One call per method per repeat, the order reversed every other repeat (ABBA...), so a
    load that drifts during the run hits every method alike; each repeat gives a paired ratio
    to BADGE's call of the same repeat."""
    names = list(args.methods)
    times = {m: [] for m in names}
    cpu = {m: [] for m in names}
    info = {}
    loads = []
    for r in range(args.repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            t, _, info[name] = _time(_factory(name, args.device), X, model, b, Xl, yl, 1, 0)
            times[name].append(t)
            cpu[name].append(info[name]["cpu_seconds"])
        loads.append(os.getloadavg()[0])
    out = []
    for name in names:
        row = dict(n=n, b=b, d=args.d, model=args.model, method=name,
                   seconds=statistics.median(times[name]), runs=args.repeats,
                   load=statistics.median(loads), all_seconds=times[name], **info[name])
        if "badge" in times:
            ratios = [t / tb for t, tb in zip(times[name], times["badge"])]
            row.update(x_badge=statistics.median(ratios), x_badge_min=min(ratios),
                       x_badge_max=max(ratios))
            cratios = [t / tb for t, tb in zip(cpu[name], cpu["badge"])]
            row.update(all_cpu_seconds=cpu[name], x_badge_cpu=statistics.median(cratios),
                       x_badge_cpu_min=min(cratios), x_badge_cpu_max=max(cratios))
        out.append(row)
        print(json.dumps(row), flush=True)
    return out


def large(args):
    X, model, Xl, yl = _pool(args.n, args.d, args.device)
    gc.collect()
    inputs_mb = X.numel() * X.element_size() / 2**20
    rows = []
    for name in args.methods:
        t, runs, info = _time(_factory(name, args.device), X, model, args.b, Xl, yl, 1, 0)
        row = dict(n=args.n, d=args.d, b=args.b, method=name, seconds=t, inputs_mb=inputs_mb,
                   load=os.getloadavg()[0], **info)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _unsaturated_pool(n, d):
    """``_features``'s mixture behind ``nn.Linear(d, 10)`` with weights ``centres / (8 sqrt d)``
    (its logits differ by a few units: probabilities well inside (0, 1))."""
    X, _ = _features(n, d, seed=0)
    centres = np.random.default_rng(0).normal(size=(10, d)).astype(np.float32)
    head = torch.nn.Linear(d, 10)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(centres) / (8 * d ** 0.5))
        head.bias.zero_()
    return X, head.eval()


def _head_pass(head, X, chunk=65536, repeats=3):
    """Median seconds of one forward pass of ``head`` over the pool (float32 tensor chunks)."""
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            for s in range(0, X.shape[0], chunk):
                head(torch.as_tensor(X[s:s + chunk]))
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def unsaturated(args):
    X, head = _unsaturated_pool(args.n, args.d)
    with torch.no_grad():
        top = torch.softmax(head(torch.from_numpy(X[:20000])), 1).max(1).values
    pass_s = _head_pass(head, X)
    inputs_mb = X.nbytes / 2**20
    rows = []
    for kind in args.pools:
        pool = X if kind == "numpy" else torch.from_numpy(X)  # the same memory either way
        for name in args.methods:
            gc.collect()
            t, _, info = _time(_factory(name, args.device), pool, head, args.b, None, None, 1, 0)
            row = dict(n=args.n, d=args.d, b=args.b, pool=kind, method=name, seconds=t,
                       head_pass_s=pass_s, x_head_pass=t / pass_s,
                       mean_top_probability=float(top.mean()), inputs_mb=inputs_mb,
                       load=os.getloadavg()[0], **info)
            rows.append(row)
            print(json.dumps(row), flush=True)
    L = [f"# Unsaturated head: numpy and tensor pools through `fit_query`", "",
         f"`python benchmarks/bench_speed.py {' '.join(sys.argv[1:])}`: n = {args.n:,}, d = "
         f"{args.d}, b = {args.b}, K = 10, mean top probability {float(top.mean()):.2f}, "
         f"{args.threads} torch thread(s), one process, rows in order. One head pass over the "
         f"pool: {pass_s:.3f} s. Peak = extra RSS over the {inputs_mb:,.0f} MB pool.", "",
         "Wall times on a loaded machine drift with the other jobs; the CPU seconds of the "
         "calling thread (torch runs one thread) are the steadier comparison.", "",
         "| pool | method | fit s | solve s | total s | CPU s | x head pass | iterations | "
         "solver, sketch | peak +MB | load |", "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        L.append(f"| {r['pool']} | {r['method']} | {r['embedding_time']:.2f} | "
                 f"{r['solve_time']:.2f} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | "
                 f"{r['x_head_pass']:.0f} | "
                 f"{r['n_iter']} | {r['solver']}, {r['sketch_dim']} | {r['peak_mb']:.0f} | "
                 f"{r['load']:.1f} |")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"speed_unsaturated{args.tag}.md").write_text("\n".join(L) + "\n")
    return rows


_THREADS_CHILD = r"""
import json, os, statistics, sys, time
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
import sparse_query as sq
X, y = load_digits(return_X_y=True)
model = LogisticRegression(max_iter=500).fit(X[:100], y[:100])
kw, repeats = json.loads(sys.argv[1]), int(sys.argv[2])
ts = []
for r in range(repeats):
    s = sq.SparseApproxSampler(device="cpu", random_state=0, **kw)
    t0 = time.perf_counter()
    idx = s.fit_query(X[100:], model, 10, X_labeled=X[:100], y_labeled=y[:100])
    ts.append(time.perf_counter() - t0)
print(json.dumps(dict(seconds=statistics.median(ts), min=min(ts), solver=s.solver_,
                      torch_threads=torch.get_num_threads(), batch=idx.tolist())))
"""


def threads(args):
    """Each configuration in a fresh process, interleaved over ``--rounds`` rounds."""
    import subprocess

    configs = [("default (n_jobs=None)", {}, {}),
               ("OMP_NUM_THREADS=1, n_jobs=None", {}, {"OMP_NUM_THREADS": "1"}),
               ("n_jobs=-1 (every core)", {"n_jobs": -1}, {})]
    rows = []
    for rnd in range(args.rounds):
        for label, kw, env in configs:
            out = subprocess.run([sys.executable, "-c", _THREADS_CHILD, json.dumps(kw),
                                  str(args.repeats)], env={**os.environ, **env},
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r.update(config=label, round=rnd, load=os.getloadavg()[0])
            rows.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "batch"}), flush=True)
    if len({tuple(r["batch"]) for r in rows}) != 1:
        raise RuntimeError("the thread settings changed the batch")
    one = {r["round"]: r["seconds"] for r in rows if r["config"].startswith("OMP")}
    L = ["# Threads: the default query on a loaded 2-core machine", "",
         f"`python benchmarks/bench_speed.py threads --rounds {args.rounds} --repeats "
         f"{args.repeats}`: scikit-learn digits, `LogisticRegression` on 100 labels, b = 10, "
         f"`SparseApproxSampler(device=\"cpu\")` (solver resolved to "
         f"{rows[0]['solver']}); median of {args.repeats} `fit_query` calls per process, one "
         "process per row, configurations interleaved per round. `os.cpu_count()` = "
         f"{os.cpu_count()}. Every row chose the same batch.", "",
         "| round | configuration | torch threads at exit | s / query (median) | min | vs "
         "OMP_NUM_THREADS=1 | load |", "|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        L.append(f"| {r['round']} | {r['config']} | {r['torch_threads']} | {r['seconds']:.4f} | "
                 f"{r['min']:.4f} | {r['seconds'] / one[r['round']]:.2f} | {r['load']:.1f} |")
    (Path(args.out) / "threads.md").write_text("\n".join(L) + "\n")
    print("wrote", Path(args.out) / "threads.md")
    return rows


def _load_json(name):
    path = OUT / name
    return json.loads(path.read_text()) if path.exists() else None


def render():
    """``results/speed.md`` from whatever ``speed_*.json`` exist."""
    L = ["# Speed: the default against BADGE and k-center, through `fit_query` (issue 15)", "",
         "Regenerate: each table's title gives its `python benchmarks/bench_speed.py acq` or "
         "`large` options (`--tag` names its `speed_<part><tag>.json`); the large pool: "
         "`large --n 1000000 --d 512 --b 1000 --methods default iht --tag _1M_s17_r<k>`; "
         "greedy's growth: the command in its section; then `python benchmarks/bench_speed.py "
         "render`. GPU: `benchmarks/bench_speed_gpu.sh` (not run: no GPU on the development "
         "machine).", "",
         "Same pool for every method (Gaussian-mixture features behind a fixed `nn.Linear` "
         "head, K = 10), full `fit_query` (inference, embedding, selection), 1 torch thread, "
         "one process, methods interleaved per (n, b); median of 3 calls (1 when the first "
         "took > 10 s). `default` is `SparseApproxSampler()` (solver and sketch `\"auto\"`; "
         "the column says what they resolved to), `iht` is `SparseApproxSampler(solver=\"iht\")`. "
         "Peak = RSS increment during the call. The machine has 2 cores shared with three other "
         "jobs: the load average is in every row; read times as ratios within a block.", ""]
    for tag, title in (("_paired_s17", "n = 10k and 100k, d = 128, paired, current code "
                                       "(`--paired --methods default badge --repeats 11 --tag "
                                       "_paired_s17`): x BADGE is the median of 11 per-repeat "
                                       "ratios of wall time (min-max); CPU: the same for the "
                                       "calling thread's CPU time"),
                       ("_paired_1M_s17", "n = 1M, d = 128, b = 100, paired, current code "
                                          "(`--paired --pools 1000000 --batches 100 --methods "
                                          "default badge --repeats 3 --tag _paired_1M_s17`)"),
                       ("_1M5000_s17", "n = 1M, d = 128, b = 5,000, current code "
                                       "(`--pools 1000000 --batches 5000 --methods default "
                                       "badge --repeats 1 --tag _1M5000_s17`)"),
                       ("_paired_kcenter_s17", "k-center against BADGE, paired, current code "
                                               "(`--paired --methods kcenter badge --repeats 7 "
                                               "--tag _paired_kcenter_s17`)"),
                       ("_1M128_s17", "n = 1M, d = 128, current code (`--pools 1000000 "
                                      "--batches 100 1000 --methods default --repeats 1 --tag "
                                      "_1M128_s17`)"),
                       ("_1M128_e08c630", "the same at e08c630 (before this session's speed "
                                          "work; `PYTHONPATH=<that checkout>`, run right after)"),
                       ("_paired", "n = 10k and 100k, d = 128, paired, e08c630 (`--paired "
                                   "--methods default badge --repeats 7`): x BADGE is the "
                                   "median of 7 per-repeat ratios (min-max)"),
                       ("_final", "n = 10k and 100k, d = 128 (final code)"),
                       ("", "n = 10k and 100k, d = 128 (first run: greedy before its fused "
                            "step, ac7f44e)"),
                       ("_1M", "n = 1M, d = 128"),
                       ("_d512", "n = 100k, d = 512 (the issue's second pool)"),
                       ("_logreg_s18", "LogisticRegression on 64 raw features (the issue's "
                                       "200k pool), at the `alpha_reliability=\"auto\"` default "
                                       "(three fits of the model on the 100 labels per call; "
                                       "`--tag _logreg_s18`, load 0.7)"),
                       ("_logreg", "LogisticRegression on 64 raw features (the issue's 200k "
                                   "pool)")):
        res = _load_json(f"speed_acq{tag}.json")
        if not res:
            continue
        L += [f"### Acquisition time, {title}", "",
              "| n | b | method | s / query | runs | x BADGE time | resolved (solver, sketch) | "
              "solve s (last call) | peak +MB | load |", "|---:|---:|---|---:|---:|---:|---|---:|---:|---:|"]
        for r in res["rows"]:
            sv = r.get("solver")
            if sv is None and "n_iter" in r:  # rows measured before solver_ was recorded
                sv = "greedy" if r["n_iter"] == r["b"] else "iht"
            res_ = "" if r["method"] in ("badge", "kcenter") else f"{sv or ''}, {r.get('sketch_dim')}"
            xb = f"{r['x_badge']:.2f}" if r.get("x_badge") is not None else "–"
            if "x_badge_min" in r and r["method"] != "badge":
                xb += f" ({r['x_badge_min']:.2f}–{r['x_badge_max']:.2f})"
            if "x_badge_cpu" in r and r["method"] != "badge":
                xb += (f"; CPU {r['x_badge_cpu']:.2f} ({r['x_badge_cpu_min']:.2f}–"
                       f"{r['x_badge_cpu_max']:.2f})")
            solve = f"{r['solve_time']:.2f}" if "solve_time" in r else ""
            L.append(f"| {r['n']:,} | {r['b']:,} | {r['method']} | {r['seconds']:.3f} | "
                     f"{r['runs']} | {xb} | {res_} | {solve} | {r['peak_mb']:.0f} | "
                     f"{r['load']:.1f} |")
        L.append("")
    growth = _load_json("speed_acq_growth.json")
    if growth:
        rows = sorted(growth["rows"], key=lambda r: r["b"])
        first = rows[0]["solve_time"] / rows[0]["b"]
        L += ["### Greedy's time per point as b grows (n = 20k, d = 128, exact, gram mode)", "",
              "`python benchmarks/bench_speed.py acq --pools 20000 --batches 100 200 400 800 "
              "1600 --methods greedy-exact --repeats 3 --tag _growth`. Each step costs one "
              "Gram column, O(n (K + d)), plus O(n |S|) to update the score from the cached "
              "columns, so the time per point may grow at most linearly in b.", "",
              "| b | s / query | solve s | ms / point | per point vs b = 100 | b vs 100 | load |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            pp = r["solve_time"] / r["b"]
            L.append(f"| {r['b']:,} | {r['seconds']:.2f} | {r['solve_time']:.2f} | "
                     f"{1000 * pp:.2f} | {pp / first:.2f} | {r['b'] / rows[0]['b']:.0f} | "
                     f"{r['load']:.1f} |")
        L.append("")
    large_rows = []
    for tag in ("_1M_s17_r1", "_1M_e08c630_r1", "_1M_s17_r2", "_1M_e08c630_r2", "",
                "_1M_lowload", "_300k_after", "_300k_before_main", "_1M_final", "_1M_a522854",
                "_1M_final2"):
        res = _load_json(f"speed_large{tag}.json")
        if res:
            for r in res["rows"]:
                large_rows.append(dict(r, tag=tag or "1M"))
    if large_rows:
        L += ["### One large pool, d = 512, b = 1,000", "",
              "| run | n | method | total s | fit s | solve s | iters | sketch | peak +MB over "
              "inputs | inputs MB | load |", "|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|"]
        for r in large_rows:
            L.append(f"| {r['tag']} | {r['n']:,} | {r['method']} | {r['seconds']:.2f} | "
                     f"{r.get('embedding_time', float('nan')):.2f} | "
                     f"{r.get('solve_time', float('nan')):.2f} | {r.get('n_iter', '')} | "
                     f"{r.get('sketch_dim')} | {r['peak_mb']:.0f} | {r['inputs_mb']:.0f} | "
                     f"{r['load']:.1f} |")
        L.append("")
    return L


def _code_version():
    """Where ``sparse_query`` was imported from and that checkout's commit (dirty or not):
    a before/after comparison runs the same script with ``PYTHONPATH=<other checkout>``."""
    import subprocess

    import sparse_query

    root = Path(sparse_query.__file__).parent.parent
    sha = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    return {"path": str(root), "commit": sha}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="part", required=True)
    a = sub.add_parser("acq")
    a.add_argument("--pools", type=int, nargs="+", default=[10_000, 100_000])
    a.add_argument("--batches", type=int, nargs="+", default=[100, 1000, 5000])
    a.add_argument("--methods", nargs="+", default=["default", "iht", "badge", "kcenter"])
    a.add_argument("--d", type=int, default=128)
    a.add_argument("--repeats", type=int, default=3)
    a.add_argument("--paired", action="store_true",
                   help="one call per method per repeat in alternating order; x BADGE is the "
                        "median of the per-repeat ratios (min-max in the table)")
    a.add_argument("--single-above", type=float, default=10.0)
    a.add_argument("--model", choices=["linear-head", "logreg"], default="linear-head",
                   help="a torch nn.Linear head (default) or LogisticRegression on raw features")
    g = sub.add_parser("large")
    g.add_argument("--n", type=int, default=1_000_000)
    g.add_argument("--d", type=int, default=512)
    g.add_argument("--b", type=int, default=1000)
    g.add_argument("--methods", nargs="+", default=["iht", "default"])
    u = sub.add_parser("unsaturated")
    u.add_argument("--n", type=int, default=1_000_000)
    u.add_argument("--d", type=int, default=512)
    u.add_argument("--b", type=int, default=1000)
    u.add_argument("--pools", nargs="+", default=["numpy", "tensor"],
                   choices=["numpy", "tensor"])
    u.add_argument("--methods", nargs="+", default=["iht"])
    for p in (a, g, u):
        p.add_argument("--device", default="cpu")
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--out", default=str(OUT))
        p.add_argument("--tag", default="")
    t = sub.add_parser("threads")
    t.add_argument("--rounds", type=int, default=3)
    t.add_argument("--repeats", type=int, default=21)
    t.add_argument("--out", default=str(OUT))
    sub.add_parser("render")
    args = ap.parse_args(argv)
    if args.part == "render":
        notes = OUT / "speed_notes.md"
        text = "\n".join(render()) + "\n"
        if notes.exists():
            text += "\n" + notes.read_text()
        (OUT / "speed.md").write_text(text)
        print("wrote", OUT / "speed.md")
        return
    if args.part == "threads":
        threads(args)
        return
    torch.set_num_threads(args.threads)
    meta = dict(part=args.part, device=args.device, threads=args.threads,
                load_start=os.getloadavg(), torch=torch.__version__,
                cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                argv=sys.argv[1:], sparse_query=_code_version())
    rows = {"acq": acq, "large": large, "unsaturated": unsaturated}[args.part](args)
    meta["load_end"] = os.getloadavg()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"speed_{args.part}{args.tag}.json"
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print("wrote", path)


if __name__ == "__main__":
    main()
