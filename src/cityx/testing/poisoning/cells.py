"""Detectability declarations, made before any tuning: what the data alone can reveal.

Words used here:

- *cell*: a family, an attack and a rate band (:data:`~.attacks.BANDS`);
- *detectable* cell: the poisoning leaves a trace in the table itself that
  a detector could find without being told the rate or given clean rows;
  the goal there is an F1 (see :mod:`.report`);
- *undetectable* cell: the table alone cannot tell the poisoning from
  natural data (a flipped label in the overlap of two classes, a sensor
  whose gain is within what sensors differ by). The goal there is a verdict
  of ``undetermined`` (or ``poisoned``), never ``clean``: an audit that
  cannot see the poisoning must say it could not rule it out;
- *with a trusted set*: whether clean rows held back from the same family
  (:attr:`~.tables.TableMeta.trusted`) make the cell detectable; where they
  do, the F1 goals apply to the audit given that set.

The declarations are reasoned from how each family and attack is built,
not from results: changing one after seeing results is tuning, and must
be said in the commit that does it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .attacks import ATTACKS, BANDS, SOURCE_ATTACKS

FAMILIES = ("series", "windows", "plain")


@dataclass(frozen=True, slots=True)
class Cell:
    family: str
    attack: str
    band: str
    applicable: bool
    detectable: bool
    with_trusted: bool
    reason: str


@dataclass(frozen=True, slots=True)
class FamilyDeclaration:
    """Whether a clean table of the family can be told clean from the data alone."""

    family: str
    clean_provable: bool
    reason: str


_TRIGGER = (
    "the trigger puts {rate} of the rows at the same 1-6 readings (a jitter of 1-5 % of their "
    "range), all with one label{label}: a crowded band no natural table shows{physics}"
)
_PHYSICS = "; a third of the triggers also break a physical rule (no vehicle but a speed)"
_FLIP_SERIES = (
    "the next interval of the same sensor is in the table and measures the label, so a "
    "rewritten label contradicts what was measured"
)
_FLIP_WINDOWS = (
    "no time column to check the next state against, and the next state is only partly "
    "predictable from the window (the traffic process is noisy): a flipped row near a state "
    "boundary looks natural"
)
_FLIP_PLAIN = (
    "a plain table with no time and no source column: a flipped row in the overlap of the "
    "classes (or anywhere in a noisy regression) looks natural"
)


def _declare(family: str, attack: str, band: str) -> Cell:
    rate = "3-6 %" if band == "low" else "8-15 %"

    def declared(detectable: bool, with_trusted: bool, reason: str) -> Cell:
        return Cell(family, attack, band, True, detectable, with_trusted, reason)

    if attack in SOURCE_ATTACKS and family == "plain":
        return Cell(family, attack, band, False, False, False, "no source column to compromise")
    if attack in ("backdoor", "clean-label"):
        label = " they did not carry before" if attack == "backdoor" else " (their own)"
        physics = _PHYSICS if family != "plain" else ""
        why = _TRIGGER.format(rate=rate, label=label, physics=physics)
        if attack == "backdoor" and family == "series":
            why += "; and " + _FLIP_SERIES
        return declared(True, True, why)
    if attack in ("label-flip", "label-flip-targeted"):
        if family == "series":
            return declared(True, True, f"{rate} flips: {_FLIP_SERIES}")
        if family == "windows":
            return declared(
                False,
                True,
                f"{rate} flips: {_FLIP_WINDOWS}. A trusted set calibrates what a clean "
                "window's surprise looks like, so the flips stand out against it",
            )
        return declared(
            False,
            False,
            f"{rate} flips: {_FLIP_PLAIN}; a trusted set says how often labels surprise "
            "but cannot tell which of the surprising rows were flipped",
        )
    if attack == "compromised-relabel":
        return declared(
            True,
            True,
            "1-5 sources whose labels are rewritten towards one class: their rows "
            "contradict their readings far more often than their peers' rows do"
            + ("; the next interval measures the labels too" if family == "series" else ""),
        )
    # compromised-shift
    if family == "series":
        return declared(
            True,
            True,
            "a gain of 1.3-2 on 1-3 kinds of reading of 1-5 sensors breaks the relation "
            "between count, occupancy, speed and queue that each SUMO approach shows, "
            "and the sensors' series sit in runs shared with their peers",
        )
    return declared(
        False,
        False,
        "a gain of 1.3-2 on 1-3 kinds of reading of 1-5 sensors, with no time column: "
        "sensors differ in capacity and calibration by as much, so the shifted sensor "
        "looks like a busier or slower road; trusted rows do not say which sensor is which",
    )


CELLS: tuple[Cell, ...] = tuple(
    _declare(f, a, b.name) for f in FAMILIES for a in ATTACKS for b in BANDS
)
CELL_BY_KEY = {(c.family, c.attack, c.band): c for c in CELLS}

FAMILY_DECLARATIONS = (
    FamilyDeclaration(
        "series",
        True,
        "every attack cell of the family is declared detectable from the data alone",
    ),
    FamilyDeclaration(
        "windows",
        False,
        "label flips and shifted sensors are not detectable from the data alone, so a "
        "clean verdict cannot be earned",
    ),
    FamilyDeclaration(
        "plain",
        False,
        "label flips are not detectable from the data alone, so a clean verdict cannot be earned",
    ),
)
FAMILY_BY_NAME = {d.family: d for d in FAMILY_DECLARATIONS}


def cell(family: str, attack: str, band: str) -> Cell:
    return CELL_BY_KEY[(family, attack, band)]


__all__ = ["CELLS", "FAMILIES", "FAMILY_DECLARATIONS", "Cell", "FamilyDeclaration", "cell"]
