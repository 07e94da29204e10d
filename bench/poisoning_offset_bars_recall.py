"""What the series offset bars cost on dev seeds: attribution with the old and the new bars.

Reads the dev measurement of ``bench/poisoning_offset_bars.py`` and picks the
dev series tables (compromised-relabel, compromised-shift) where some
sensor's offset z lies between the old bars (5.0 readings / 4.5 label) and
the current ones (``audit.OFFSET_BARS``): only there can the bars change
anything (elsewhere every sensor is on the same side of both). Those cases
are audited in full, without and with the trusted set, under each setting.
Dev seeds only.

    .venv/bin/python bench/poisoning_offset_bars_recall.py \
      bench/results/poisoning-offset-bars-dev.json --out recall.json
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any

from cityx.testing.poisoning import run_cases
from cityx.testing.poisoning.protocol import DEV_SEEDS, Case

# The package exports the function ``audit``, which shadows the module of that name.
AUDIT = importlib.import_module("cityx.defenses.poisoning.audit")
OLD = (5.0, 4.5)


def between(
    measured: dict[str, Any], old: tuple[float, float], new: tuple[float, float]
) -> list[Case]:
    """Dev cases with a sensor (compromised, or the table's most offset innocent) between bars."""
    keys: set[tuple[int, str, str]] = set()
    for r in measured["rows"]:
        if not r["judged"] or r["attack"] is None:
            continue
        assert r["seed"] in DEV_SEEDS
        for readings, label in [*r["compromised"].values(), r["clean_max"]]:
            before = readings >= old[0] or label >= old[1]
            after = readings >= new[0] or label >= new[1]
            if before != after:
                keys.add((r["seed"], r["attack"], r["band"]))
    return [Case("series", s, a, b) for s, a, b in sorted(keys)]


def tally(results: list[dict[str, Any]], mode: str) -> dict[str, int]:
    compromised = named = wrong = 0
    for c in results:
        truth, flagged = set(c["truth_sources"]), set(c[mode]["flagged_sources"])
        compromised, named, wrong = (
            compromised + len(truth),
            named + len(flagged & truth),
            wrong + len(flagged - truth),
        )
    return {"compromised": compromised, "named": named, "innocents_named": wrong}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("measured", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    measured = json.loads(args.measured.read_text())
    new = AUDIT.OFFSET_BARS[True]
    todo = between(measured, OLD, new)
    runs: dict[str, list[dict[str, Any]]] = {}
    for name, bars in (("old", OLD), ("new", new)):
        # Worker processes fork after this, so they audit with these bars.
        AUDIT.OFFSET_BARS = {**AUDIT.OFFSET_BARS, True: bars}
        runs[name] = [r.to_json() for r in run_cases(todo, workers=args.workers)]
    body = {
        "benchmark": "poisoning-offset-bars-recall",
        "bars": {"old": OLD, "new": new},
        "cases": [c.key for c in todo],
        "summary": {
            name: {mode: tally(runs[name], mode) for mode in ("ours", "ours_trusted")}
            for name in runs
        },
        "runs": runs,
    }
    text = json.dumps(body)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(json.dumps(body["summary"]))


if __name__ == "__main__":
    main()
