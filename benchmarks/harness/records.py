"""The compact store of run records: one ``records.jsonl`` per results folder.

A run writes one JSON record per (cell, strategy, seed), named ``*_seed<seed>.json``, under
its results folder (``benchmarks/results/s1/digits_logreg/badge_seed0.json``, ...). Those raw
files are not kept in the repository (``.gitignore``); :func:`write_compact` folds every
record of a folder into ``<folder>/records.jsonl``, one line per record, sorted by its path
inside the folder, with the fields the tables are built from. The readers
(:func:`read_records`, :func:`~benchmarks.harness.report.load_records`) read the compact store
and then any raw record on disk, a raw record replacing the stored one of the same path.

What the compact form drops: ``train_time`` and ``environment``; ``queried`` (the pool
indices per round) becomes ``queried_sha1``, a digest that says whether two runs chose the
same batches (:func:`same_batches`).

    python benchmarks/compact_results.py benchmarks/results/s1 benchmarks/results/quality ...
"""
from __future__ import annotations

import glob
import hashlib
import json
import os

__all__ = ["COMPACT", "compact_record", "read_records", "write_compact", "same_batches",
           "queried_digest"]

#: the compact store's file name inside a results folder
COMPACT = "records.jsonl"
#: raw record files (the harness's and benchmarks/bench_quality.py's)
RAW_PATTERN = "*_seed[0-9]*.json"
_DROPPED = ("train_time", "environment")


def queried_digest(queried) -> str:
    """A 16-hex-digit digest of the batches chosen in a run (pool indices per round)."""
    return hashlib.sha1(json.dumps(queried).encode()).hexdigest()[:16]


def compact_record(rec: dict) -> dict:
    """``rec`` without the fields no table reads, ``queried`` replaced by its digest."""
    out = {k: v for k, v in rec.items() if k not in _DROPPED and k != "queried"}
    if "queried" in rec:
        out["queried_sha1"] = queried_digest(rec["queried"])
    return out


def same_batches(a: dict, b: dict) -> bool:
    """Whether runs ``a`` and ``b`` (raw or compact records) chose the same batches."""
    da = a.get("queried_sha1") or queried_digest(a["queried"])
    db = b.get("queried_sha1") or queried_digest(b["queried"])
    return da == db


def read_records(root: str, *, skip_dirs=()) -> dict[str, dict]:
    """``{path inside root: record}`` of every run record under ``root``, sorted by path.

    The compact store ``root/records.jsonl`` first, then every raw ``*_seed*.json`` below
    ``root`` (a raw record replaces the stored one of the same path). A sub-folder with its
    own ``records.jsonl`` is a store of its own and is not read; records whose path passes
    through a folder named in ``skip_dirs`` are left out.
    """
    records: dict[str, dict] = {}
    store = os.path.join(root, COMPACT)
    if os.path.exists(store):
        with open(store) as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                rec = json.loads(line)
                path = rec.pop("path", None)
                if not isinstance(path, str):
                    raise ValueError(f"{store}:{n} has no 'path'; rebuild it with "
                                     f"python -m benchmarks.harness.records {root}")
                records[path] = rec
    nested = tuple(os.path.dirname(p) + os.sep for p in
                   glob.glob(os.path.join(root, "*", "**", COMPACT), recursive=True))
    for full in glob.glob(os.path.join(root, "**", RAW_PATTERN), recursive=True):
        if full.startswith(nested):
            continue
        try:
            with open(full) as fh:
                rec = json.load(fh)
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and "config" in rec:
            records[os.path.relpath(full, root).replace(os.sep, "/")] = rec
    skip = set(skip_dirs)
    return {p: records[p] for p in sorted(records) if not skip & set(p.split("/")[:-1])}


def write_compact(root: str) -> int:
    """Write ``root/records.jsonl`` from every record under ``root``; returns how many."""
    records = read_records(root)
    if not records:
        raise FileNotFoundError(f"no run records under {root!r} (neither {COMPACT} nor "
                                f"{RAW_PATTERN}); run the benchmark first.")
    tmp = os.path.join(root, COMPACT + ".tmp")
    with open(tmp, "w") as fh:
        for path, rec in records.items():
            fh.write(json.dumps({"path": path, **compact_record(rec)}, sort_keys=True) + "\n")
    os.replace(tmp, os.path.join(root, COMPACT))
    return len(records)
