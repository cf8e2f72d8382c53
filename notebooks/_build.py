"""Write the teaching notebooks from the sources in ``notebooks/_sources/`` (and optionally run them).

The notebooks are generated so that they can be reviewed as plain Python: each source file is
in the "percent" format (``# %%`` starts a code cell, ``# %% [markdown]`` a markdown cell whose
lines are commented with ``# ``).

    python notebooks/_build.py                  # write the four .ipynb, without outputs
    python notebooks/_build.py --execute        # write and run them at full size (outputs kept)
    SPARSE_QUERY_NOTEBOOK_FAST=1 python notebooks/_build.py --execute   # fast-mode outputs
    python notebooks/_build.py --execute 04     # only the notebooks whose name contains "04"
    python notebooks/_build.py --keep-outputs   # prose-only edit: reuse the stored outputs

``tests/test_notebooks.py`` checks that the committed notebooks match their sources and runs
each of them in fast mode.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "_sources"
NOTEBOOKS = (
    "01_quickstart_modal_sklearn",
    "02_deep_active_learning_skorch",
    "03_bayesian_active_learning",
    "04_inside_sparse_approximation",
)


def parse_percent(text: str) -> list[tuple[str, str]]:
    """Split a percent-format source into ``[(kind, source), ...]`` with kind "code"/"markdown"."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# %%"):
            kind = "markdown" if "[markdown]" in line else "code"
            cells.append((kind, []))
            continue
        if not cells:  # a module header before the first cell is not part of the notebook
            continue
        kind, lines = cells[-1]
        if kind == "markdown":
            if line.startswith("# "):
                line = line[2:]
            elif line.strip() == "#":
                line = ""
        lines.append(line)
    out = []
    for kind, lines in cells:
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if lines:
            out.append((kind, "\n".join(lines)))
    return out


def build(name: str):
    """The notebook ``name`` (without outputs) as an ``nbformat`` node."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    cells = []
    for kind, src in parse_percent((SOURCES / f"{name}.py").read_text()):
        cells.append(new_markdown_cell(src) if kind == "markdown" else new_code_cell(src))
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    # stable cell ids keep diffs of regenerated notebooks small
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name[:2]}-{i:03d}"
    nbformat.validate(nb)
    return nb


def execute(nb, cwd: Path, timeout: int = 900):
    """Run ``nb`` top to bottom in a fresh ``python3`` kernel (in place); returns seconds taken."""
    from nbclient import NotebookClient

    t0 = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return time.perf_counter() - t0


def keep_outputs(nb, path: Path) -> None:
    """Copy the outputs of the notebook at ``path`` into ``nb`` (in place).

    Only for edits of the markdown: refuses when any code cell differs from the stored one,
    since the stored outputs would then no longer be what the code produces.
    """
    import nbformat

    old = nbformat.read(str(path), as_version=4)
    old_code = [c for c in old.cells if c.cell_type == "code"]
    new_code = [c for c in nb.cells if c.cell_type == "code"]
    if [c.source for c in old_code] != [c.source for c in new_code]:
        raise SystemExit(f"{path.name}: the code changed; run with --execute instead.")
    for new, stored in zip(new_code, old_code):
        new.outputs, new.execution_count = stored.outputs, stored.execution_count


def main(argv=None):
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", action="store_true", help="run the notebooks, keep outputs")
    parser.add_argument("--keep-outputs", action="store_true",
                        help="reuse the stored outputs (markdown-only edits)")
    parser.add_argument("only", nargs="*", help="substrings of notebook names to build")
    args = parser.parse_args(argv)
    for name in NOTEBOOKS:
        if args.only and not any(s in name for s in args.only):
            continue
        nb = build(name)
        path = HERE / f"{name}.ipynb"
        if args.execute:
            mode = "fast" if os.environ.get("SPARSE_QUERY_NOTEBOOK_FAST") == "1" else "full"
            secs = execute(nb, HERE)
            print(f"{name}: executed ({mode} mode) in {secs:.1f}s", file=sys.stderr)
        path = HERE / f"{name}.ipynb"
        if args.keep_outputs and not args.execute:
            keep_outputs(nb, path)
        nbformat.write(nb, str(path))
        print(f"wrote {path.relative_to(HERE.parent)} ({path.stat().st_size / 1e3:.0f} kB)",
              file=sys.stderr)


if __name__ == "__main__":
    main()
