"""Fold each results folder's raw run records into its compact store ``records.jsonl``.

The raw ``*_seed<seed>.json`` records that ``python -m benchmarks.harness`` and
``benchmarks/bench_quality.py`` write are git-ignored; the compact stores are what the
repository keeps and what the tables are built from (:mod:`benchmarks.harness.records`).
After a run, from the repository root::

    python benchmarks/compact_results.py benchmarks/results/s1 benchmarks/results/s1_ablation
    python benchmarks/compact_results.py benchmarks/results/quality/s1_variance \\
        benchmarks/results/quality benchmarks/results/quality_fresh \\
        benchmarks/results/quality_confirm

A folder nested in another (``quality/s1_variance``) is compacted first: a folder with its own
``records.jsonl`` is left out of its parent's.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchmarks.harness.records import COMPACT, write_compact  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+", help="results folders holding raw run records")
    for folder in ap.parse_args(argv).folders:
        print(f"{os.path.join(folder, COMPACT)}: {write_compact(folder)} records")


if __name__ == "__main__":
    main()
