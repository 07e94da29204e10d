"""The per-source offsets (source_evidence.source_offsets) on the protocol's dev series tables.

Measures what sets the series (time-column) offset bars in
``cityx.defenses.poisoning.audit.OFFSET_BARS``: the largest readings and
label offset z of any sensor of a clean dev table, audited without and with
its trusted set, exactly as ``audit`` builds its data (the trusted rows
appended, the offsets read off the table's rows). For the compromised
attacks it gives every compromised sensor's offsets too, so the recall a
bar costs can be read off (a sensor whose offset falls between the old and
the new bar can only lose the offsets' route to being named; the other
routes, drift and concentration, are unchanged).

Dev seeds only (``--split`` is not offered on purpose: the bars are tuned
here, and held-out seeds must never be).

    .venv/bin/python bench/poisoning_offset_bars.py --seeds 20 --out offsets.json
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cityx.defenses.poisoning._data import prepare
from cityx.defenses.poisoning.source_evidence import source_offsets
from cityx.testing.poisoning.attacks import BAND_BY_NAME, BANDS, poison
from cityx.testing.poisoning.protocol import DEV_SEEDS, FAMILY_FUNCTIONS

ATTACKS = ("compromised-relabel", "compromised-shift")


def one(job: tuple[int, str | None, str | None]) -> list[dict[str, Any]]:
    """Offsets of one dev series case, without and with its trusted set."""
    seed, attack, band = job
    table, label, source_cols, meta = FAMILY_FUNCTIONS["series"](seed)
    truth: tuple[str, ...] = ()
    if attack is not None and band is not None:
        drawn = poison(
            table,
            label=label,
            source_cols=source_cols,
            meta=meta,
            attack=attack,
            band=BAND_BY_NAME[band],
            seed=seed,
        )
        table, truth = drawn.table, drawn.sources
    out = []
    for trusted in (False, True):
        combined = (
            pd.concat([table, meta.trusted[table.columns]], ignore_index=True) if trusted else table
        )
        data = prepare(combined.reset_index(drop=True), label=label, source_cols=source_cols)
        offsets = source_offsets(data, len(table), seed=seed)
        row: dict[str, Any] = {
            "seed": seed,
            "attack": attack,
            "band": band,
            "trusted": trusted,
            "sources": len(data.sources),
            "judged": offsets is not None,
        }
        if offsets is not None:
            bad = np.array([s in truth for s in data.sources])
            row["clean_max"] = [
                float(offsets.readings[~bad].max()),
                float(offsets.label[~bad].max()),
            ]
            row["compromised"] = {
                data.sources[i]: [float(offsets.readings[i]), float(offsets.label[i])]
                for i in np.flatnonzero(bad)
            }
        row["truth"] = list(truth)
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=len(DEV_SEEDS), help="first N dev seeds")
    parser.add_argument("--no-attacks", action="store_true", help="clean tables only")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    jobs: list[tuple[int, str | None, str | None]] = []
    for seed in DEV_SEEDS[: args.seeds]:
        jobs.append((seed, None, None))
        if not args.no_attacks:
            jobs += [(seed, a, b.name) for a in ATTACKS for b in BANDS]
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for i, got in enumerate(pool.map(one, jobs), start=1):
            rows += got
            print(f"[{i}/{len(jobs)}] {jobs[i - 1]}", file=sys.stderr, flush=True)
    clean = [r for r in rows if r["attack"] is None and r["judged"]]
    body = {
        "benchmark": "poisoning-offset-bars",
        "family": "series",
        "seeds": list(DEV_SEEDS[: args.seeds]),
        "clean_max": {
            "readings": max(r["clean_max"][0] for r in clean) if clean else None,
            "label": max(r["clean_max"][1] for r in clean) if clean else None,
        },
        "rows": rows,
    }
    text = json.dumps(body)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
