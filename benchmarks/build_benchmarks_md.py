"""Assemble the top-level BENCHMARKS.md from the per-topic write-ups in benchmarks/results/.

Each benchmark script writes its own page under ``benchmarks/results/`` (the table below names
them); this script puts them under ``benchmarks/BENCHMARKS_header.md`` in the order of
:data:`SECTIONS`, gives each page's headings the level of its place in the document, drops the
lines that are only an HTML comment (the markers the scripts fill in), rewrites relative links
so they resolve from the repository root, and warns about a link whose target is missing.

A section may leave out subsections of its page (``omit``: heading titles, matched at the
start); the page keeps them and BENCHMARKS.md says where they are. ``note`` adds one line under
the title of a page this script must not edit (pages written wholesale by a script).

    python benchmarks/build_benchmarks_md.py
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
HEADER = ROOT / "benchmarks" / "BENCHMARKS_header.md"

_PREVIOUS_DEFAULT = (
    "*Measured at the previous default of `alpha_reliability`, which cross-validated the model "
    "on the labeled set, for {what}; the {rows} {are} what the default does now for {them}.*")


@dataclass(frozen=True)
class Section:
    path: str                #: relative to benchmarks/results/
    level: int = 2           #: heading level of the page's title in BENCHMARKS.md
    omit: tuple = ()         #: subsection titles left out of BENCHMARKS.md (kept in the page)
    note: str | None = None  #: one line under the title


#: page (writer)
SECTIONS = [
    Section("benchmark.md",                 # benchmarks/section1.sh (section1_tables.py)
            omit=("digits + MLP", "Ablation on digits + MLP", "Measured compute")),
    Section("quality_default.md"),          # benchmarks/quality_default.py
    Section("quality_matrix.md",            # benchmarks/bench_quality.py, quality_section.md
            omit=("Summary",)),             # at the previous default: quality_default.md
    Section("peers.md"),                    # benchmarks/bench_peers.py --render
    Section("query_cost.md"),               # benchmarks/bench_query_cost.py
    Section("proba_models.md",              # benchmarks/bench_proba_models.py --report
            omit=("Seeds 0-4",)),
    Section("solvers.md"),                  # benchmarks/bench_solvers.py
    Section("scale.md",                     # benchmarks/bench_scale.py ... render
            omit=("Sketch quality on the exact problem", "Time and memory")),
    Section("iht.md"),                      # benchmarks/bench_iht.py
    Section("iht_passes.md", level=3),      # benchmarks/bench_iht.py passes
    Section("speed.md",                     # benchmarks/bench_speed.py render (+ speed_notes.md)
            omit=("k-center vs BADGE", "The default at n = 1M", "n = 100k, d = 512",
                  "Greedy's time per point", "LogisticRegression on 64 raw features",
                  "scikit-activeml")),
    Section("speed_sidebyside.md", level=3),  # benchmarks/speed_sidebyside.py
    Section("speed_unsaturated.md", level=3,   # benchmarks/bench_speed.py unsaturated
            note="*Measured at `a3bb245-dirty` (the `sparse_query.commit` of "
                 "`speed_unsaturated.json`).*"),
    Section("threads.md"),                  # benchmarks/bench_speed.py threads
    Section("text/text.md",                 # benchmarks/bench_text.py render (+ findings.md)
            omit=("Time and extra peak memory",)),
]

_HEADING = re.compile(r"^(#{1,6}) (.*)$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"(!?\[[^\]]*\])\(([^)\s]+)\)")
#: history that BENCHMARKS.md should not narrate (a warning, not an error)
_HISTORY = re.compile(r"\bissues? \d+|\bSPEC\b|\bthe issue's\b")


def _lines_outside_fences(lines):
    """Yield ``(index, line, in_fence)``."""
    fence = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fence = not fence
            yield i, line, True
            continue
        yield i, line, fence


def _shift_headings(lines, level):
    """Give the page's first heading ``level`` and move every other heading with it."""
    first = next((len(m.group(1)) for _, line, f in _lines_outside_fences(lines)
                  if not f and (m := _HEADING.match(line))), level)
    out = list(lines)
    for i, line, f in _lines_outside_fences(lines):
        m = None if f else _HEADING.match(line)
        if m:
            new = min(6, max(1, len(m.group(1)) + level - first))
            out[i] = "#" * new + " " + m.group(2)
    return out


def _omit(lines, titles):
    """Drop each subsection whose title starts with one of ``titles``: its heading and every
    line up to the next heading of the same level or higher. Returns (lines, dropped titles)."""
    out, dropped, skip_level = [], [], None
    for _, line, f in _lines_outside_fences(lines):
        m = None if f else _HEADING.match(line)
        if m and skip_level is not None and len(m.group(1)) <= skip_level:
            skip_level = None
        if m and skip_level is None and any(m.group(2).startswith(t) for t in titles):
            skip_level = len(m.group(1))
            dropped.append(m.group(2))
            continue
        if skip_level is None:
            out.append(line)
    missing = [t for t in titles if not any(d.startswith(t) for d in dropped)]
    if missing:
        print(f"warning: no subsection to omit named {missing}", file=sys.stderr)
    return out, dropped


def _relink(text: str, folder: str) -> str:
    """Relative links of a page in ``folder`` (relative to the root) resolve from the root."""
    def fix(match):
        target = match.group(2)
        if re.match(r"^(https?:|mailto:|/|#|benchmarks/)", target):
            return match.group(0)
        return f"{match.group(1)}({folder}/{target})"

    return _LINK.sub(fix, text)


def _section(sec: Section) -> str:
    path = RESULTS / sec.path
    lines = path.read_text().splitlines()
    lines = [ln for ln in lines if not re.fullmatch(r"\s*<!--.*-->\s*", ln)]
    lines = _shift_headings(lines, sec.level)
    lines, dropped = _omit(lines, sec.omit)
    rel = path.relative_to(ROOT).as_posix()
    if sec.note:
        at = next((i for i, ln in enumerate(lines) if _HEADING.match(ln)), -1)
        lines[at + 1:at + 1] = ["", sec.note]
    if dropped:
        names = "; ".join(f"*{d.split(' (')[0]}*" for d in dropped)
        lines += ["", f"Also on [`{rel}`]({rel}), left out here: {names}."]
    text = "\n".join(lines)
    return _relink(text, path.parent.relative_to(ROOT).as_posix()).strip() + "\n"


def _check(text: str) -> None:
    for target in sorted({m.group(2).split("#")[0] for m in _LINK.finditer(text)}):
        if target and not re.match(r"^(https?:|mailto:)", target) \
                and not (ROOT / target.lstrip("/")).exists():
            print(f"warning: BENCHMARKS.md links to {target}, which does not exist",
                  file=sys.stderr)
    for n, line in enumerate(text.splitlines(), 1):
        if _HISTORY.search(line):
            print(f"warning: BENCHMARKS.md:{n} narrates history: {line.strip()[:90]}",
                  file=sys.stderr)


def main() -> None:
    parts = [HEADER.read_text().strip() + "\n"]
    for sec in SECTIONS:
        if (RESULTS / sec.path).exists():
            parts.append(_section(sec))
        else:
            print(f"warning: {sec.path} does not exist; left out", file=sys.stderr)
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(parts))
    _check(text)
    (ROOT / "BENCHMARKS.md").write_text(text)
    print(f"wrote {ROOT / 'BENCHMARKS.md'} ({text.count(chr(10))} lines)")


if __name__ == "__main__":
    main()
