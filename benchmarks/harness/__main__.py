"""Command line: ``python -m benchmarks.harness [run|report] ...``.

Examples
--------
Run (the default sub-command) and then build the tables and plots::

    python -m benchmarks.harness --dataset digits --model logreg \\
        --strategies ours-greedy ours-iht badge random --seeds 0 1 2 \\
        --seed-size 30 --batch 20 --rounds 8 --out benchmarks/results/al_digits_logreg
    python -m benchmarks.harness report --out benchmarks/results/al_digits_logreg

``--smoke`` shrinks everything (pool 300, 1 seed, 2 rounds of 10, 2 epochs) to check the
harness end to end in seconds.
"""
from __future__ import annotations

import argparse
import sys

from .datasets import DATASETS
from .loop import RunConfig, run_benchmark
from .models import MODELS
from .report import build_report
from .strategies import BAYESIAN, NON_BAYESIAN, parse_strategy


def _run_parser(p):
    p.add_argument("--dataset", default="digits", choices=sorted(DATASETS), help="offline data set")
    p.add_argument("--model", default="logreg", choices=sorted(MODELS), help="model family")
    p.add_argument("--strategies", nargs="+", default=None,
                   help="strategy specs, e.g. ours-greedy ours-iht:alpha=0.1 badge (default: "
                        "%(default)s = every non-Bayesian strategy, or the Bayesian set for a "
                        "dropout model)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                   help="one run per seed and strategy")
    p.add_argument("--seed-size", type=int, default=30, help="random labels to start from")
    p.add_argument("--batch", type=int, default=20, help="labels queried per round")
    p.add_argument("--rounds", type=int, default=8, help="query rounds")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs of torch models / max_iter of the sklearn MLP (default: "
                        "%(default)s = the model's own)")
    p.add_argument("--max-pool", type=int, default=None, help="cap the pool (stratified subset; default: %(default)s = the whole pool)")
    p.add_argument("--out", default="benchmarks/results/al_run", help="results folder")
    p.add_argument("--device", default="cpu", help="torch device of the models and strategies")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: %(default)s = torch's choice)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny configuration: 1 seed, 2 rounds of 10, pool 300, 2 epochs")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-report", action="store_true", help="skip the report after the run")


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.harness",
                                     description="Batch active-learning benchmark (Algorithm 3). "
                                     "Options of the default sub-command: "
                                     "python -m benchmarks.harness run --help.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    fmt = argparse.ArgumentDefaultsHelpFormatter
    run = sub.add_parser("run", help="run the active-learning loop (default)",
                         formatter_class=fmt)
    _run_parser(run)
    rep = sub.add_parser("report", help="tables and plots from the stored runs",
                         formatter_class=fmt)
    rep.add_argument("--out", default="benchmarks/results/al_run", help="results folder")
    rep.add_argument("--title", default=None, help="title of the report")
    rep.add_argument("--no-plots", action="store_true", help="tables only")
    if argv in (["-h"], ["--help"]):  # every option of both sub-commands, with its default
        parser.print_help()
        for name, p in (("run", run), ("report", rep)):
            print(f"\n--- python -m benchmarks.harness {name} ---")
            p.print_help()
        return 0
    if not argv or argv[0] not in ("run", "report", "-h", "--help"):
        argv = ["run"] + argv
    args = parser.parse_args(argv)
    if args.command == "report":
        res = build_report(args.out, plots=not args.no_plots, title=args.title)
        print("\n".join(res["files"]))
        return 0
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    strategies = args.strategies
    if strategies is None:
        strategies = list(BAYESIAN if MODELS[args.model].bayesian else NON_BAYESIAN)
    for s in strategies:
        try:
            parse_strategy(s)
        except ValueError as exc:
            parser.error(str(exc))
    seeds, seed_size, batch, rounds = args.seeds, args.seed_size, args.batch, args.rounds
    epochs, max_pool = args.epochs, args.max_pool
    if args.smoke:
        seeds, seed_size, batch, rounds = seeds[:1], 20, 10, 2
        epochs, max_pool = 2 if epochs is None else epochs, max_pool or 300
    configs = [RunConfig(args.dataset, args.model, s, seed, seed_size, batch, rounds,
                         epochs=epochs, max_pool=max_pool, device=args.device)
               for seed in seeds for s in strategies]
    run_benchmark(configs, args.out, progress=not args.no_progress)
    if not args.no_report:
        res = build_report(args.out)
        print("\n".join(res["files"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
