"""The tables of docs/poisoning.md ("Held-out results") from a bench/poisoning.py JSON.

    .venv/bin/python bench/poisoning_markdown.py bench/results/poisoning-heldout.json

Prints Markdown: per cell, per family and attack, clean tables, attribution, goals.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _f1(part: dict[str, Any]) -> str:
    f1 = part["f1"]
    if not f1.get("n"):
        return "-"
    return f"{f1['median']:.2f} / {f1['p10']:.2f}"


def _verdicts(part: dict[str, Any]) -> str:
    letters = {"clean": "C", "undetermined": "U", "poisoned": "P"}
    counts = part["verdicts"]
    return " ".join(f"{letters[v]}{counts[v]}" for v in letters if counts.get(v))


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def tables(result: dict[str, Any]) -> list[str]:
    report = result["report"]
    out = [
        _row("family", "attack", "band", "declared: alone / trusted", "F1 ours (median / p10)")[:-1]
        + "| F1 ours + trusted | verdicts ours | verdicts + trusted |",
        "| --- " * 8 + "|",
    ]
    yes = {True: "yes", False: "no"}
    for c in report["cells"]:
        out.append(
            _row(
                c["family"],
                c["attack"],
                c["band"],
                f"{yes[c['detectable']]} / {yes[c['with_trusted']]}",
                _f1(c["ours"]),
                _f1(c["ours_trusted"]),
                _verdicts(c["ours"]),
                _verdicts(c["ours_trusted"]),
            )
        )
    out += [
        "",
        "| family or attack | tables | F1 ours (median / p10) | F1 ours + trusted "
        "| verdicts ours | verdicts + trusted |",
        "| --- " * 6 + "|",
    ]
    for group in ("by_family", "by_attack"):
        for name, part in report[group].items():
            out.append(
                _row(
                    name,
                    part["tables"],
                    _f1(part["ours"]),
                    _f1(part["ours_trusted"]),
                    _verdicts(part["ours"]),
                    _verdicts(part["ours_trusted"]),
                )
            )
    out += [
        "",
        "| clean tables | n | verdicts ours | flagged share ours (mean / max) "
        "| verdicts + trusted | flagged share + trusted |",
        "| --- " * 6 + "|",
    ]
    for family, part in report["clean"].items():
        shares = [
            f"{part[m]['flagged_share_mean']:.2%} / {part[m]['flagged_share_max']:.2%}"
            for m in ("ours", "ours_trusted")
        ]
        out.append(
            _row(
                family,
                part["tables"],
                _verdicts(part["ours"]),
                shares[0],
                _verdicts(part["ours_trusted"]),
                shares[1],
            )
        )
    out += ["", "| attribution | mode | tables | compromised | flagged | recall | precision |"]
    out.append("| --- " * 7 + "|")
    for family, modes in report["attribution"].items():
        for mode, a in modes.items():
            out.append(
                _row(
                    family,
                    mode,
                    a["tables"],
                    a["compromised"],
                    a["flagged"],
                    f"{a['recall']:.2f}",
                    f"{a['precision']:.2f}",
                )
            )
    counts = result.get("goal_counts", {})
    out += ["", f"Goals: {json.dumps(counts)}; wall time: {json.dumps(report['wall_s'])}"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path)
    args = parser.parse_args()
    print("\n".join(tables(json.loads(args.results.read_text(encoding="utf-8")))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
