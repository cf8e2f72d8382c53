"""The active-learning loop (the paper's Algorithm 3) with resumable, per-run JSON results.

One *run* is a (dataset, model, strategy, seed) combination: a random seed set, then
``rounds`` times: retrain a fresh model on every label so far, record test accuracy, query
``batch`` points with the strategy (the query call alone is timed: the acquisition time), add
their labels; a last retrain and evaluation closes the curve. Each finished run is written to
``<out>/<dataset>_<model>/<strategy slug>_seed<seed>.json`` at once, so an interrupted
benchmark resumes where it stopped.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass

import numpy as np

from .datasets import initial_labeled, split_dataset
from .metrics import auc
from .models import MODELS, fit_model, make_model
from .records import read_records
from .strategies import make_strategy, parse_strategy, slug

__all__ = ["RunConfig", "run_path", "run_one", "run_benchmark"]


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run (and is stored with its result)."""

    dataset: str
    model: str
    strategy: str
    seed: int
    seed_size: int
    batch: int
    rounds: int
    epochs: int | None = None
    max_pool: int | None = None
    device: str = "cpu"

    def key(self) -> dict:
        """The fields a stored result must match to be reused (device excluded)."""
        d = asdict(self)
        d.pop("device")
        return d


def run_path(out: str, cfg: RunConfig) -> str:
    """Where the record of ``cfg`` is stored under ``out``."""
    name = f"{slug(cfg.strategy)}_seed{cfg.seed}.json"
    return os.path.join(out, f"{cfg.dataset}_{cfg.model}", name)


def _accuracy(model, X, y) -> float:
    return float(np.mean(np.asarray(model.predict(X)).reshape(-1) == y))


def run_one(cfg: RunConfig, *, progress=None) -> dict:
    """Run one active-learning experiment and return its record (not saved).

    Parameters
    ----------
    cfg : RunConfig
    progress : tqdm bar, optional
        Advanced by one per evaluation.

    Returns
    -------
    dict
        ``config``, ``labels``, ``accuracy``, ``query_time`` (s per query), ``train_time``,
        ``auc``, ``final_accuracy``, ``mean_query_time``, ``queried`` (pool indices per round).
    """
    spec = MODELS[cfg.model]
    split = split_dataset(cfg.dataset, cfg.seed, max_pool=cfg.max_pool)
    n_pool = len(split.y_pool)
    need = cfg.seed_size + cfg.batch * cfg.rounds
    if need > n_pool:
        raise ValueError(f"seed_size + batch * rounds = {need} exceeds the pool size {n_pool}; "
                         "use fewer rounds or a smaller batch.")
    strategy = make_strategy(cfg.strategy, seed=cfg.seed, device=cfg.device,
                             bayesian=spec.bayesian)
    labeled = np.zeros(n_pool, dtype=bool)
    labeled[initial_labeled(n_pool, cfg.seed_size, cfg.seed)] = True
    labels, accs, qtimes, ttimes, queried = [], [], [], [], []
    for r in range(cfg.rounds + 1):
        idx = np.flatnonzero(labeled)
        model = make_model(cfg.model, split.n_features, split.n_classes, len(idx),
                           epochs=cfg.epochs, seed=cfg.seed * 1000 + r, device=cfg.device,
                           dataset=cfg.dataset)
        t0 = time.perf_counter()
        fit_model(model, split.X_pool[idx], split.y_pool[idx], seed=cfg.seed * 1000 + r)
        ttimes.append(time.perf_counter() - t0)
        labels.append(int(idx.size))
        accs.append(_accuracy(model, split.X_test, split.y_test))
        if progress is not None:
            progress.update(1)
        if r == cfg.rounds:
            break
        unl = np.flatnonzero(~labeled)
        t0 = time.perf_counter()
        picked = strategy.fit_query(split.X_pool[unl], model, cfg.batch,
                                    X_labeled=split.X_pool[idx], y_labeled=split.y_pool[idx])
        qtimes.append(time.perf_counter() - t0)
        chosen = unl[np.asarray(picked, dtype=np.int64)]
        labeled[chosen] = True
        queried.append(chosen.tolist())
    return {
        "config": asdict(cfg),
        "labels": labels,
        "accuracy": accs,
        "query_time": qtimes,
        "train_time": ttimes,
        "auc": auc(labels, accs),
        "final_accuracy": accs[-1],
        "mean_query_time": float(np.mean(qtimes)) if qtimes else float("nan"),
        "queried": queried,
        "n_pool": n_pool,
        "n_test": int(len(split.y_test)),
        "environment": _environment(),
    }


def _environment() -> dict:
    import sklearn
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "sklearn": sklearn.__version__, "machine": platform.machine(),
            "torch_threads": torch.get_num_threads(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _load_if_done(path: str, cfg: RunConfig, compact: dict | None = None):
    """The raw record at ``path``, else ``compact`` (its compact form), if its config is
    ``cfg``'s."""
    try:
        with open(path) as fh:
            rec = json.load(fh)
    except (OSError, ValueError):
        rec = compact
    if rec is None:
        return None
    stored = {k: v for k, v in rec.get("config", {}).items() if k != "device"}
    return rec if stored == cfg.key() else None


def _save(path: str, record: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(record, fh, indent=1)
    os.replace(tmp, path)  # atomic: an interrupted write never leaves a half file


def run_benchmark(configs, out: str, *, progress: bool = True, log=print) -> list[dict]:
    """Run every config not already stored under ``out``; return all records.

    Finished runs whose stored config matches (a raw record, or a line of ``out``'s compact
    store ``records.jsonl``) are loaded instead of recomputed. Each run is saved as soon as it
    finishes, and a one-line summary is logged.
    """
    configs = list(configs)
    for cfg in configs:
        parse_strategy(cfg.strategy)  # fail early on a typo, before hours of training
        if cfg.model not in MODELS:
            raise ValueError(f"model={cfg.model!r} is not one of {sorted(MODELS)}.")
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=sum(c.rounds + 1 for c in configs), unit="round", desc="benchmark")
        except ImportError:  # pragma: no cover - tqdm is in the bench extra
            bar = None
    records = []
    stored = read_records(out) if os.path.isdir(out) else {}
    try:
        for cfg in configs:
            path = run_path(out, cfg)
            rel = os.path.relpath(path, out).replace(os.sep, "/")
            rec = _load_if_done(path, cfg, stored.get(rel))
            if rec is not None:
                if bar is not None:
                    bar.update(cfg.rounds + 1)
                log(f"[skip] {cfg.dataset}/{cfg.model} {cfg.strategy} seed={cfg.seed}: "
                    f"already in {path}")
                records.append(rec)
                continue
            if bar is not None:
                bar.set_postfix_str(f"{cfg.strategy} seed={cfg.seed}")
            t0 = time.perf_counter()
            rec = run_one(cfg, progress=bar)
            rec["wall_time"] = time.perf_counter() - t0
            _save(path, rec)
            records.append(rec)
            log(f"[done] {cfg.dataset}/{cfg.model} {cfg.strategy} seed={cfg.seed}: "
                f"AUC {rec['auc']:.4f}, final {rec['final_accuracy']:.4f}, "
                f"{rec['mean_query_time']:.3f} s/query, {rec['wall_time']:.0f} s")
    finally:
        if bar is not None:
            bar.close()
    return records
