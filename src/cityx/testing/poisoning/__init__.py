"""An evaluation protocol for the poisoning audit: families of tables, attacks, splits, goals.

The protocol measures :func:`cityx.defenses.poisoning.audit` on many tables
rather than one: three *families* of tables drawn from seeds
(:mod:`.series`, :mod:`.windows`, :mod:`.plain`), attacks drawn at random
with their truth (:mod:`.attacks`), *detectability declarations* made
before tuning (:mod:`.cells`), seed splits fixed before tuning
(:mod:`.protocol`), a parallel runner (:mod:`.runner`) and a report that
judges the goals (:mod:`.report`). ``bench/poisoning.py`` is its front end;
``docs/poisoning.md`` ("Evaluation protocol") explains the figures.
"""

from .attacks import ATTACKS, BANDS, Poisoned, RateBand, poison
from .cells import CELLS, FAMILIES, FAMILY_DECLARATIONS, Cell, FamilyDeclaration, cell
from .plain import plain
from .protocol import DEV_SEEDS, FAMILY_FUNCTIONS, HELDOUT_SEEDS, SPLITS, Case, cases
from .runner import CaseResult, Outcome, Peers, run_case, run_cases
from .series import series
from .tables import DrawnTable, ReadingColumns, TableMeta
from .windows import windows

__all__ = [
    "ATTACKS",
    "BANDS",
    "CELLS",
    "DEV_SEEDS",
    "FAMILIES",
    "FAMILY_DECLARATIONS",
    "FAMILY_FUNCTIONS",
    "HELDOUT_SEEDS",
    "SPLITS",
    "Case",
    "CaseResult",
    "Cell",
    "DrawnTable",
    "FamilyDeclaration",
    "Outcome",
    "Peers",
    "Poisoned",
    "RateBand",
    "ReadingColumns",
    "TableMeta",
    "cases",
    "cell",
    "plain",
    "poison",
    "run_case",
    "run_cases",
    "series",
    "windows",
]
