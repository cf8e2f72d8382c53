"""Assemble the top-level BENCHMARKS.md from the per-topic write-ups in benchmarks/results/.

Each benchmark script writes its own section (`results/benchmark.md` for the active-learning
protocol, `results/quality_matrix.md` for the model-family quality matrix (from
`benchmarks/bench_quality.py`), `results/solvers.md` for the solvers, `results/scale.md` for the sketch and the
large pools, `results/speed.md` for the acquisition time through `fit_query`, `results/threads.md`
for the thread settings, `results/text/text.md`
for sparse text pools); this script concatenates them under a short header and rewrites their
relative figure links so they resolve from the repository root.

    python benchmarks/build_benchmarks_md.py
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SECTIONS = ["benchmark.md", "quality_matrix.md", "solvers.md", "scale.md", "iht.md", "speed.md",
            "threads.md", "text/text.md"]
HEADER = (ROOT / "benchmarks" / "BENCHMARKS_header.md")


def _relink(text: str) -> str:
    def fix(match):
        target = match.group(2)
        if re.match(r"^(https?:|/|#|benchmarks/)", target):
            return match.group(0)
        return f"{match.group(1)}(benchmarks/results/{target})"

    return re.sub(r"(!?\[[^\]]*\])\(([^)\s]+)\)", fix, text)


def _demote(text: str) -> str:
    """Turn each section's top-level '# Title' into '## Title' under the document title."""
    return re.sub(r"^# ", "## ", text, flags=re.M)


def main() -> None:
    parts = [HEADER.read_text().rstrip() + "\n"]
    for name in SECTIONS:
        path = RESULTS / name
        if path.exists():
            parts.append(_relink(_demote(path.read_text())).rstrip() + "\n")
    (ROOT / "BENCHMARKS.md").write_text("\n".join(parts))
    print(f"wrote {ROOT / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
