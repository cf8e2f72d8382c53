"""Benchmarks of sparse_query, run from a clone of the repository (not installed with it).

``benchmarks.harness`` is the active-learning protocol on offline data
(``python -m benchmarks.harness --help`` from the repository root); the ``bench_*.py`` scripts
measure time, memory and quality and write their tables under ``benchmarks/results/``.
"""
