"""Evidence of a trigger: a box of a few readings, crowded with rows of one label.

A backdoor writes a *trigger* into its rows (a value, with jitter, in each
of a few readings) and gives them the attacker's label; a clean-label attack
writes it into rows that already carry that label. Either way the poisoned
rows form a *box*: in each trigger reading a range of values, and together a
pattern that clean rows rarely show (a pattern they often show would teach a
model nothing). Words used here:

- *bins*: each reading cut into :data:`BINS` equal bins between its 1st and
  99th percentiles (whole numbers get a bin each when they fit); rows
  beyond fall into two overflow bins, which no box uses;
- *window*: a run of bins of one reading; its *flanks* are the runs of
  :data:`FLANK` times its width just below and above it. A window is
  *interior* when both flanks lie within the bins: a pile at the edge of a
  reading (zero counts, a saturated occupancy) is not a trigger;
- *contrast* of a window for a set of rows: how many of them fall in it
  against what the denser flank's density predicts (``(c - e) / sqrt(e + 1)``,
  and the ratio ``c / e``);
- *box*: windows in a few readings; its rows of the label are found by a
  beam search, label by label, adding at each step the window that most
  contrasts the box's rows of that label within it;
- an *accepted* box: in each of its readings, the box's other windows hold
  rows of the label that crowd into this window (contrast at least
  :data:`ACCEPT_Z`, ratio at least :data:`ACCEPT_RATIO`), it holds at least
  :data:`MIN_SHARE` of the table's rows, one exact value does not make it
  (an *atom*: sentinels such as a free-flow speed are natural), and its rows
  carry the label far more often than its flanks' rows (:data:`PURITY_Z`):
  a natural cluster crowds rows of every label alike (asked only without a
  trusted set: with one, its rows' density judges every box);
- *confirmed*: an accepted box that a trusted set shows is unusual: the
  table's rows of the label are :data:`TRUSTED_RATIO` times denser in it than
  the trusted rows (over the other labels' ratio around it, which a shift
  between days raises too); *certain*: :data:`TRUSTED_CERTAIN` times denser,
  beyond what a trusted set from other runs explains. A certain box's rows
  can make the table poisoned; a confirmed one's are flagged, but count for
  no verdict. Without a trusted set a box stays a *candidate*: natural
  traffic leaves such boxes too (quantised jam lengths, consecutive time
  steps of one reading, a quiet approach's rows), and nothing else in a
  table tells them apart reliably (what was tried is in docs/poisoning.md).
  Candidates flag no row; the audit names them, and cannot call the table
  clean while one stands.

Everything is vectorised: one weighted ``bincount`` gives every reading's
histogram of a set of rows, and prefix sums give every window's counts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from ._data import AuditData, FloatArray, IntArray
from .scores import DetectorScores, not_applicable

BINS = 48
WIDTHS = (1, 2, 3, 4, 6, 8)  # window widths, in bins
FLANK = 2  # each flank is this many window widths
BEAM = 8
DEPTH = 4
CHILDREN = 3  # windows each box of the beam tries next
MIN_DISTINCT = 8
MIN_SHARE = 0.01  # an accepted box holds at least this share of the rows (and 10 rows)
MIN_ROWS = 10
ACCEPT_Z, ACCEPT_RATIO = 5.0, 4.0
PURITY_Z = 5.0
ATOM_SHARE = 0.5  # one exact value holding this share of a window's rows makes it an atom
PRIOR_ROWS = 10.0
# Other labels crowding into a window this much (with this many rows in it) make it natural.
OTHER_RATIO, OTHER_MIN = 3.0, 3.0
# Against a trusted set: a box this many times denser in the table (Poisson z this high)
# is a trigger; one at most this much denser is natural.
TRUSTED_RATIO, TRUSTED_Z, NATURAL_RATIO = 5.0, 5.0, 2.0
# A confirmed box flags its rows only this many times denser than trusted rows: a trusted
# set from other runs made natural boxes up to 11 times denser (protocol, dev seeds).
TRUSTED_CERTAIN = 20.0
UNCERTAIN_STRENGTH = 0.4  # an uncertain box's rows stay under the verdict's TRIGGER_PEAK


@dataclass(frozen=True, slots=True)
class Binned:
    """Every reading's bin per row; ``bins[j]`` bins in use (1..bins[j]) per reading."""

    index: NDArray[np.int16]  # (n, d): 0 below, 1..bins, bins + 1 above
    bins: IntArray  # (d,)
    usable: NDArray[np.bool_]  # (d,) readings with enough distinct values


def bin_readings(x: FloatArray) -> Binned:
    n, d = x.shape
    index = np.zeros((n, d), dtype=np.int16)
    bins = np.full(d, BINS, dtype=np.int64)
    usable = np.zeros(d, dtype=bool)
    lo, hi = np.percentile(x, [1, 99], axis=0)
    for j in range(d):
        column = x[:, j]
        if np.unique(column).size < MIN_DISTINCT or hi[j] <= lo[j]:
            continue
        usable[j] = True
        whole = bool(np.all(column == np.round(column)))
        if whole and hi[j] - lo[j] + 1 <= BINS:
            bins[j] = int(hi[j] - lo[j] + 1)
            b = column - lo[j] + 1
        else:
            b = np.floor((column - lo[j]) / (hi[j] - lo[j]) * BINS) + 1
            b = np.where(column == hi[j], BINS, b)  # the 99th percentile is in the top bin
        index[:, j] = np.clip(b, 0, bins[j] + 1).astype(np.int16)
    return Binned(index, bins, usable)


def histograms(binned: Binned, rows: IntArray, weight: FloatArray) -> FloatArray:
    """Per reading, the weighted count of ``rows`` in each bin: (d, BINS + 2)."""
    d = binned.bins.size
    offsets = np.arange(d, dtype=np.int64) * (BINS + 2)
    flat = (binned.index[rows].astype(np.int64) + offsets[None, :]).ravel()
    w = np.repeat(weight[rows], d)
    counts = np.bincount(flat, weights=w, minlength=d * (BINS + 2)).reshape(d, BINS + 2)
    return np.asarray(counts, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Window:
    feature: int
    low: int  # first bin
    high: int  # last bin
    z: float
    ratio: float
    count: float


def best_windows(
    hist: FloatArray, binned: Binned, features: NDArray[np.bool_], top: int
) -> list[Window]:
    """The ``top`` interior windows of highest contrast, at most one per reading."""
    d = hist.shape[0]
    cum = np.concatenate([np.zeros((d, 1)), np.cumsum(hist, axis=1)], axis=1)
    best_z = np.full(d, -np.inf)
    best: dict[int, Window] = {}
    for width in WIDTHS:
        starts = np.arange(1, BINS - width + 2)
        ends = starts + width - 1
        flank = FLANK * width
        left_lo = np.maximum(starts - flank, 1)
        right_hi = ends[None, :] + flank  # clipped per reading below
        right_hi = np.minimum(right_hi, binned.bins[:, None])
        count = cum[:, ends + 1] - cum[:, starts]
        left = cum[:, starts] - cum[:, left_lo]
        right = cum[np.arange(d)[:, None], right_hi + 1] - cum[:, ends + 1]
        left_len = (starts - left_lo)[None, :].repeat(d, axis=0)
        right_len = right_hi - ends[None, :]
        interior = (
            (left_len >= width) & (right_len >= width) & (ends[None, :] <= binned.bins[:, None])
        )
        density = np.maximum(left / np.maximum(left_len, 1), right / np.maximum(right_len, 1))
        expected = density * width
        z = np.where(interior, (count - expected) / np.sqrt(expected + 1.0), -np.inf)
        z[~features] = -np.inf
        at = z.argmax(axis=1)
        rows = np.arange(d)
        better = z[rows, at] > best_z
        for j in np.flatnonzero(better):
            a = int(at[j])
            best_z[j] = z[j, a]
            best[int(j)] = Window(
                int(j),
                int(starts[a]),
                int(ends[a]),
                float(z[j, a]),
                float(count[j, a] / max(expected[j, a], 0.5)),
                float(count[j, a]),
            )
    ranked = sorted(best.values(), key=lambda w: -w.z)
    return [w for w in ranked if np.isfinite(w.z)][:top]


Box = tuple[Window, ...]


def _inside(binned: Binned, box: Box, rows: IntArray) -> IntArray:
    keep = np.ones(rows.size, dtype=bool)
    for w in box:
        b = binned.index[rows, w.feature]
        keep &= (b >= w.low) & (b <= w.high)
    return rows[keep]


def search(binned: Binned, rows: IntArray, weight: FloatArray, min_rows: float) -> list[Box]:
    """Boxes where ``rows`` crowd, found by a beam search (see the module docstring)."""
    usable = binned.usable.copy()
    first = best_windows(histograms(binned, rows, weight), binned, usable, BEAM)
    beam: list[Box] = [(w,) for w in first if w.count >= min_rows]
    seen: list[Box] = list(beam)
    for _ in range(DEPTH - 1):
        children: list[tuple[float, Box]] = []
        for box in beam:
            inside = _inside(binned, box, rows)
            if weight[inside].sum() < min_rows:
                continue
            free = usable.copy()
            free[[w.feature for w in box]] = False
            for w in best_windows(histograms(binned, inside, weight), binned, free, CHILDREN):
                if w.count >= min_rows and w.ratio >= 2.0:
                    children.append((w.z, (*box, w)))
        if not children:
            break
        children.sort(key=lambda c: -c[0])
        unique: dict[frozenset[tuple[int, int, int]], Box] = {}
        for _, box in children:
            unique.setdefault(frozenset((w.feature, w.low, w.high) for w in box), box)
        beam = list(unique.values())[:BEAM]
        seen += beam
    return seen


@dataclass(frozen=True, slots=True)
class Verdict:
    accepted: bool
    rows: IntArray
    weakest_z: float
    purity_z: float


def judge(
    binned: Binned,
    x: FloatArray,
    box: Box,
    label_rows: IntArray,
    other_rows: IntArray,
    weight: FloatArray,
    min_rows: float,
    *,
    purity: bool = True,
) -> Verdict:
    """Whether ``box`` is a trigger of the label (see "accepted" in the module docstring).

    ``purity``: ask that the box's rows carry the label more often than its flanks'.
    Without a trusted set it is what tells a trigger from a natural cluster; with
    one, the trusted rows' density does that, and a clean-label trigger of the
    majority class (as pure as the rows around it) is judged too.
    """
    inside = _inside(binned, box, label_rows)
    none = Verdict(False, inside, 0.0, 0.0)
    if weight[inside].sum() < min_rows:
        return none
    # Atoms: one exact value in a reading holding most of the box is a sentinel, not jitter.
    for w in box:
        _, counts = np.unique(x[inside, w.feature], return_counts=True)
        if counts.max() >= ATOM_SHARE * inside.size:
            return none
    weakest, share = np.inf, 0.0
    overall = float(
        weight[label_rows].sum() / max(weight[label_rows].sum() + weight[other_rows].sum(), 1e-9)
    )
    for i, w in enumerate(box):
        rest = box[:i] + box[i + 1 :]
        mine = histograms(binned, _inside(binned, rest, label_rows), weight)[w.feature]
        theirs = histograms(binned, _inside(binned, rest, other_rows), weight)[w.feature]
        contrast = _contrast(mine, w, binned.bins[w.feature])
        if contrast is None or contrast[0] < ACCEPT_Z or contrast[1] < ACCEPT_RATIO:
            return none
        weakest = min(weakest, contrast[0])
        # The other labels crowd into the window as well: a natural mode, or a reading
        # that another one of the box determines (a flow per hour beside its count).
        other = _contrast(theirs, w, binned.bins[w.feature])
        if (
            other is not None
            and theirs[w.low : w.high + 1].sum() >= OTHER_MIN
            and (other[1] >= OTHER_RATIO)
        ):
            return none
        (l0, l1), (r0, r1) = _flanks(w, binned.bins[w.feature])
        f_mine = mine[l0 : l1 + 1].sum() + mine[r0 : r1 + 1].sum()
        f_all = f_mine + theirs[l0 : l1 + 1].sum() + theirs[r0 : r1 + 1].sum()
        # A few rows in the flanks say little: PRIOR_ROWS rows at the label's share in the
        # whole table stand in beside them.
        share = max(share, (f_mine + PRIOR_ROWS * overall) / (f_all + PRIOR_ROWS))
    n_mine = float(weight[inside].sum())
    n_all = n_mine + float(weight[_inside(binned, box, other_rows)].sum())
    p = float(np.clip(share, 0.02, 0.98))
    purity_z = (n_mine - n_all * p) / np.sqrt(n_all * p * (1.0 - p))
    return Verdict(
        bool(purity_z >= PURITY_Z or not purity), inside, float(weakest), float(purity_z)
    )


def _flanks(w: Window, bins: int) -> tuple[tuple[int, int], tuple[int, int]]:
    width = w.high - w.low + 1
    return (max(w.low - FLANK * width, 1), w.low - 1), (
        w.high + 1,
        min(w.high + FLANK * width, bins),
    )


def _contrast(hist: FloatArray, w: Window, bins: int) -> tuple[float, float] | None:
    width = w.high - w.low + 1
    (l0, l1), (r0, r1) = _flanks(w, bins)
    if l1 - l0 + 1 < width or r1 - r0 + 1 < width:
        return None
    count = float(hist[w.low : w.high + 1].sum())
    density = max(hist[l0 : l1 + 1].sum() / (l1 - l0 + 1), hist[r0 : r1 + 1].sum() / (r1 - r0 + 1))
    expected = float(density * width)
    return (count - expected) / np.sqrt(expected + 1.0), count / max(expected, 0.5)


def trusted_excess(
    data: AuditData, inside: NDArray[np.bool_], around: NDArray[np.bool_], label: int
) -> tuple[float, float]:
    """How many times denser the table's rows of ``label`` are in a box than trusted rows.

    The density ratio, over the same ratio for the other labels' rows in and
    around the box (``around``: the box widened by its flanks), and its Poisson
    z. A trusted set from another day or another run differs from the table in
    places (more congestion, say); that shift raises every label's ratio
    there, a trigger only its own label's (whose rows its jitter also spills
    around the box). Needs ``data.trusted_from``.
    """
    assert data.trusted_from is not None
    cut = data.trusted_from
    mine = data.y == label
    scale = cut / max(data.n - cut, 1)

    def counts(where: NDArray[np.bool_], of: NDArray[np.bool_]) -> tuple[float, float]:
        return float((where[:cut] & of[:cut]).sum()), float((where[cut:] & of[cut:]).sum())

    table, trusted = counts(inside, mine)
    near_table, near_trusted = counts(around, ~mine)
    # Half a row where none is seen: a trusted set of a few hundred rows may miss a small
    # natural cluster by chance, never by a factor of ten.
    shift = max(1.0, near_table / ((near_trusted + 0.5) * scale)) if near_table >= MIN_ROWS else 1.0
    expected = (trusted + 0.5) * scale * shift
    return table / expected, (table - expected) / float(np.sqrt(expected))


def _surroundings(binned: Binned, box: Box) -> Box:
    """The box widened by :data:`FLANK` times each window's width on both sides."""
    return tuple(
        replace(
            w,
            low=max(1, w.low - FLANK * (w.high - w.low + 1)),
            high=min(int(binned.bins[w.feature]), w.high + FLANK * (w.high - w.low + 1)),
        )
        for w in box
    )


@dataclass(frozen=True, slots=True)
class Found:
    """An accepted box of one label, and what the trusted set says of it."""

    label: int
    box: Box
    rows: IntArray
    share: float  # the label's share of the box's rows
    strength: float
    trusted: tuple[float, float] | None = None  # density ratio over the trusted set, and z

    @property
    def certain(self) -> bool:
        """Confirmed beyond what a trusted set from other days explains (see trigger_boxes)."""
        return self.confirmed and self.trusted is not None and self.trusted[0] >= TRUSTED_CERTAIN

    @property
    def confirmed(self) -> bool:
        return self.trusted is not None and (
            self.trusted[0] >= TRUSTED_RATIO and self.trusted[1] >= TRUSTED_Z
        )

    @property
    def natural(self) -> bool:
        return self.trusted is not None and self.trusted[0] <= NATURAL_RATIO

    def describe(self, data: AuditData) -> str:
        ranges = ", ".join(
            f"{data.features[w.feature]} {data.x[self.rows, w.feature].min():.4g}.."
            f"{data.x[self.rows, w.feature].max():.4g}"
            for w in self.box
        )
        return f"{self.rows.size} rows of label {data.classes[self.label]!r} in {ranges}"


def find_boxes(data: AuditData) -> list[Found]:
    """Every accepted box, one per cluster of rows (the purest first)."""
    n = data.n if data.trusted_from is None else data.trusted_from
    own = np.arange(data.n) < n
    min_rows = max(MIN_ROWS, MIN_SHARE * n)
    binned = bin_readings(data.x)
    # The trusted rows and the rows other detectors already doubt count in no box.
    weight = own.astype(np.float64)
    if data.doubted is not None:
        weight[data.doubted] = 0.0
    found: list[Found] = []
    everyone = np.arange(data.n)
    for t in range(len(data.classes)):
        label_rows = np.flatnonzero((data.y == t) & own)
        other_rows = np.flatnonzero((data.y != t) & own)
        if label_rows.size < min_rows:
            continue
        for box in search(binned, label_rows, weight, min_rows):
            verdict = judge(
                binned,
                data.x,
                box,
                label_rows,
                other_rows,
                weight,
                min_rows,
                purity=data.trusted_from is None,
            )
            if not verdict.accepted:
                continue
            share = verdict.rows.size / max(_inside(binned, box, np.flatnonzero(own)).size, 1)
            inside = np.zeros(data.n, dtype=bool)
            inside[_inside(binned, box, everyone)] = True
            around = np.zeros(data.n, dtype=bool)
            around[_inside(binned, _surroundings(binned, box), everyone)] = True
            found.append(
                Found(
                    t,
                    box,
                    verdict.rows,
                    share,
                    min(verdict.weakest_z / ACCEPT_Z, max(verdict.purity_z / PURITY_Z, 1.0)),
                    trusted_excess(data, inside, around, t)
                    if data.trusted_from is not None
                    else None,
                )
            )
    # One box per cluster: the purest, then the one of most readings, stands for the rest.
    found.sort(key=lambda f: (-round(f.share, 2), -len(f.box)))
    kept: list[Found] = []
    for f in found:
        if all(np.intersect1d(f.rows, k.rows).size <= 0.5 * f.rows.size for k in kept):
            kept.append(f)
    return kept


def trigger_boxes(data: AuditData) -> DetectorScores:
    """Rows in a confirmed box; unconfirmed ones are candidates (see the module docstring)."""
    name = "trigger_boxes"
    n = data.n if data.trusted_from is None else data.trusted_from
    if n < 10 * MIN_ROWS:
        return not_applicable(name, data.n, "too few rows")
    if not any(np.unique(data.x[:, j]).size >= MIN_DISTINCT for j in range(data.x.shape[1])):
        return not_applicable(name, data.n, f"no reading with {MIN_DISTINCT} distinct values")
    level = np.zeros(data.n)
    notes: list[str] = []
    candidates: list[str] = []
    for f in find_boxes(data):
        if f.certain:
            assert f.trusted is not None
            level[f.rows] = np.maximum(level[f.rows], 1.0 + f.strength)
            notes.append(f"{f.describe(data)}: {f.trusted[0]:.0f} times denser than trusted rows")
        elif f.confirmed:
            # Trusted sets from other runs made natural boxes 6-11 times denser (protocol,
            # dev seeds): a box within that reach flags its rows at a level under the
            # verdict's bar for a trigger, and stays a candidate, with its ratio.
            assert f.trusted is not None
            level[f.rows] = np.maximum(level[f.rows], 1.0 + min(f.strength, UNCERTAIN_STRENGTH))
            candidates.append(
                f"{f.describe(data)} ({f.trusted[0]:.0f} times denser than trusted rows: a "
                "trusted set from other days can differ that much)"
            )
        elif not f.natural:
            candidates.append(f.describe(data))
    return DetectorScores(name, level, note="; ".join(notes[:3]), candidates=tuple(candidates))


__all__ = [
    "Binned",
    "Found",
    "Window",
    "best_windows",
    "bin_readings",
    "find_boxes",
    "histograms",
    "judge",
    "search",
    "trigger_boxes",
    "trusted_excess",
]
