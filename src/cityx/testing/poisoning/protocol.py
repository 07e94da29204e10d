"""The evaluation protocol's fixed parts: the seed splits, the families, the cases.

Words used here:

- *split*: a fixed set of seeds. ``dev`` seeds are for tuning the audit;
  ``heldout`` seeds are for measuring it, once tuning is done;
- *case*: one table of a family drawn from a seed, poisoned by one attack
  at a rate in one band (or left clean: attack ``None``); the runner audits
  it without and with the family's trusted set;
- *leave-one-family-out* / *leave-one-attack-out*: the audit has no training
  step, so these are reporting splits: the report gives each family's and
  each attack's held-out figures on their own, and a tuner who wants them
  to mean "unseen" must tune on dev with that family or attack left out
  (``exclude_families`` / ``exclude_attacks``, ``--exclude-family`` /
  ``--exclude-attack`` in ``bench/poisoning.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cityx.core import InputError

from .attacks import ATTACKS, BANDS, SOURCE_ATTACKS
from .cells import FAMILIES, cell
from .plain import plain
from .series import series
from .tables import Family
from .windows import windows

# Fixed before any tuning. Tune on DEV_SEEDS only.
DEV_SEEDS: tuple[int, ...] = tuple(range(20))
# HELD-OUT SEEDS MUST NEVER BE USED FOR TUNING: not for thresholds, not for choosing
# detectors or defaults, not for revising a detectability declaration. A run on them is a
# measurement of the audit as it stands; looking at its failures and changing the audit
# makes the next held-out run a dev run (then draw fresh held-out seeds and say so).
#
# Seeds once held out and then seen (a run's failures looked at before the audit changed
# on dev seeds) count as dev-like from then on; fresh ones are drawn, and said so here:
# - 9001-9020 measured commit 0500b29 (clean windows tables were called poisoned);
# - 9101-9120 measured commit b8e68d8 (clean series tables with a trusted set were called
#   poisoned);
# - 9201-9220 measured the audit of 2026-12-07 (docs/poisoning.md, "Held-out results":
#   source attribution recall 0.32, compromised-shift in series missed); per-source
#   offsets were then added and tuned on dev seeds. Drawn fresh on 2026-12-07: 9301-9320;
#   9301-9306 measured the source offsets once (bench/results/
#   poisoning-heldout-sources-9301.json) and their failures were looked at;
# - 9301-9306 are therefore seen (moved here on 2026-12-07, session 7, before any change):
#   compromised-shift at 8-15 % and source attribution were then tuned on dev seeds.
#   HELDOUT is now 9307-9320, none of them ever run. Fixed before tuning: session 7's
#   one held-out run is 9307-9314 (`--seeds 8`; 10 were planned, cut to 8 before any
#   run because the shared machine's load was ~18), families series and windows, attacks
#   compromised-relabel and compromised-shift, clean tables included (the cells it
#   tunes); 9315-9320 stay unrun.
# - 9307-9314 measured the audit once (bench/results/poisoning-heldout-9307.json) and
#   called a clean series table poisoned (seed 9311 with its trusted set: a sensor's
#   per-source offset z of 5.5 against bars of 5.0 / 4.5). They are seen (moved here on
#   2026-12-07, session 8, before any change); the series offset bars were then set on dev
#   seeds alone by a stated rule (audit.OFFSET_BARS). HELDOUT is now 9315-9320, never run;
#   fixed before the change: one run, family series, attacks compromised-relabel and
#   compromised-shift, clean tables included. That run was made once (bench/results/
#   poisoning-heldout-9315.json, docs/poisoning.md "Held-out run on 9315-9320") and its
#   summary read; nothing changed after it. The next change to the audit needs fresh seeds.
SEEN_HELDOUT_SEEDS: tuple[int, ...] = (
    *range(9001, 9021),
    *range(9101, 9121),
    *range(9201, 9221),
    *range(9301, 9315),
)
HELDOUT_SEEDS: tuple[int, ...] = tuple(range(9315, 9321))
SPLITS: dict[str, tuple[int, ...]] = {"dev": DEV_SEEDS, "heldout": HELDOUT_SEEDS}

FAMILY_FUNCTIONS: dict[str, Family] = {"series": series, "windows": windows, "plain": plain}


@dataclass(frozen=True, slots=True)
class Case:
    """One audited table: a family's seed, poisoned by ``attack`` in ``band`` (or clean)."""

    family: str
    seed: int
    attack: str | None = None
    band: str | None = None
    peers: bool = False  # also run the peers on it (a subset, to bound the time)

    @property
    def key(self) -> str:
        what = "clean" if self.attack is None else f"{self.attack}@{self.band}"
        return f"{self.family}/{what}/{self.seed}"


def cases(
    split: str,
    *,
    seeds: int | None = None,
    families: Sequence[str] = FAMILIES,
    attacks: Sequence[str] = ATTACKS,
    exclude_families: Sequence[str] = (),
    exclude_attacks: Sequence[str] = (),
    peer_seeds: int = 0,
) -> tuple[Case, ...]:
    """Every case of ``split`` (its first ``seeds`` seeds), clean tables included.

    Peers run on the cases of the first ``peer_seeds`` seeds only.
    """
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; one of {', '.join(SPLITS)}", where="--split")
    for name, given, known in (
        ("--families", [*families, *exclude_families], FAMILIES),
        ("--attacks", [*attacks, *exclude_attacks], ATTACKS),
    ):
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise InputError(f"unknown {', '.join(unknown)}; known: {', '.join(known)}", where=name)
    chosen = SPLITS[split][:seeds] if seeds is not None else SPLITS[split]
    out: list[Case] = []
    for i, seed in enumerate(chosen):
        peers = i < peer_seeds
        for family in (f for f in families if f not in exclude_families):
            out.append(Case(family, seed, peers=peers))
            for attack in (a for a in attacks if a not in exclude_attacks):
                for band in BANDS:
                    if cell(family, attack, band.name).applicable:
                        out.append(Case(family, seed, attack, band.name, peers))
    return tuple(out)


__all__ = [
    "DEV_SEEDS",
    "FAMILY_FUNCTIONS",
    "HELDOUT_SEEDS",
    "SEEN_HELDOUT_SEEDS",
    "SOURCE_ATTACKS",
    "SPLITS",
    "Case",
    "cases",
]
