"""Per-cell AUC of new bench_quality runs against a reference run's strategy, same seeds.

    python benchmarks/compare_quality.py REF_quality.json NEW_quality.json [--ref-strategy ours]

Both files are ``quality.json`` summaries written by ``bench_quality.py`` on the same seeds
(random sampling, which is deterministic, is printed from both as a check that the cells
agree). Prints a markdown table: random, the reference strategy, the best peer of the
reference run, and every non-random strategy of the new run with its difference.
"""
import argparse
import json

PEERS = ("modal-ubs", "coreset", "badge", "bald")


def _table(path):
    return {(r["dataset"], r["family"], r["strategy"]): r for r in json.load(open(path))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ref")
    ap.add_argument("new")
    ap.add_argument("--ref-strategy", default="ours")
    args = ap.parse_args()
    ref, new = _table(args.ref), _table(args.new)
    cells = sorted({(d, f) for d, f, _ in new})
    names = sorted({s for _, _, s in new if s != "random"})
    print(f"| cell | random (new / ref) | ref `{args.ref_strategy}` | ref best peer | "
          + " | ".join(f"`{s}`" for s in names) + " |")
    print("|---" * (4 + len(names)) + "|")
    diffs = {s: [] for s in names}
    for d, f in cells:
        base = ref[(d, f, args.ref_strategy)]["auc"]
        peers = [ref[(d, f, p)]["auc"] for p in PEERS if (d, f, p) in ref]
        row = [f"{d} / {f}", f"{new[(d, f, 'random')]['auc']:.2f} / "
               f"{ref[(d, f, 'random')]['auc']:.2f}", f"{base:.2f}",
               f"{max(peers):.2f}" if peers else "-"]
        for s in names:
            auc = new[(d, f, s)]["auc"]
            diffs[s].append(auc - base)
            row.append(f"{auc:.2f} ({auc - base:+.2f})")
        print("| " + " | ".join(row) + " |")
    for s in names:
        x = diffs[s]
        print(f"\n`{s}` against ref `{args.ref_strategy}`: mean {sum(x) / len(x):+.2f} over "
              f"{len(x)} cells, ahead in {sum(v > 0 for v in x)}.")


if __name__ == "__main__":
    main()
