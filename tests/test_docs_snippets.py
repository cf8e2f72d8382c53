"""Every ``python`` code block of the documentation's pages runs on its own and prints.

The pages are ``docs/**/*.md`` (MyST Markdown) and ``docs/**/*.rst``; a block runs as written in
a fresh interpreter in a temporary folder, with the
clone on ``PYTHONPATH`` (the sparse-pool page imports the benchmark harness's offline corpus).
Blocks that need an optional library skip when it is missing. The gallery scripts run in the
Sphinx build itself (``.ci/run``), not here.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p for ext in ("*.md", "*.rst") for p in DOCS.rglob(ext)
               if not {"_build", "generated", "auto_examples", "examples"} & set(p.parts))

_MD = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_RST = re.compile(r"^\.\. code-block:: python\n\n((?:[ \t]+.*\n|\n)+)", re.M)


def _blocks(page):
    text = page.read_text()
    if page.suffix == ".md":
        return _MD.findall(text)
    out = []
    for block in _RST.findall(text):
        lines = block.splitlines()
        pad = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
        out.append("\n".join(l[pad:] for l in lines) + "\n")
    return out


SNIPPETS = [(p.relative_to(DOCS).as_posix(), i, code)
            for p in PAGES for i, code in enumerate(_blocks(p))]


def test_the_pages_have_snippets():
    pages = {name for name, _, _ in SNIPPETS}
    for page in ("getting_started.md", "user_guide/models.md", "user_guide/parameters.md",
                 "user_guide/large_pools.md", "user_guide/dask.md", "user_guide/gpu.md"):
        assert page in pages, page


@pytest.mark.parametrize("page,i,code", SNIPPETS, ids=[f"{p}#{i}" for p, i, _ in SNIPPETS])
def test_docs_snippet_runs_on_its_own_and_prints(page, i, code, tmp_path):
    for module, marker in (("modAL", "modAL"), ("skorch", "skorch"),
                           ("distributed", "distributed"), ("skactiveml", "skactiveml")):
        if marker in code:
            pytest.importorskip(module)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONWARNINGS="ignore")
    script = tmp_path / "snippet.py"
    script.write_text(code)
    res = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{page} block {i}:\n{res.stderr[-3000:]}"
    assert res.stdout.strip(), f"{page} block {i} prints nothing"


def test_pages_name_no_issue_numbers_and_no_missing_files():
    for page in PAGES:
        text = page.read_text()
        assert not re.search(r"\bissue \d+|SPEC", text), page
        for target in re.findall(r"`((?:benchmarks|tests|sparse_query)/[\w./-]+)`", text):
            assert (ROOT / target).exists(), (page, target)
