"""Golden poisoning data: real SUMO rows (see data/README.md), poisoned by seeded attacks.

Shared by the attack tests (tests/attacks/poisoning), the defence tests
(tests/defenses/poisoning) and the CLI tests; ``bench/poisoning.py`` reads
the same file. The ``metro_base`` fixture (tests/conftest.py) loads it once.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

DATA = Path(__file__).parent / "data" / "metro_base.csv"
LABEL = "congestion_next"
SOURCES = ["intersection", "approach"]


def metro_base() -> pd.DataFrame:
    """Two demand levels of the clean table (3,024 rows, 36 sensors)."""
    table = pd.read_csv(DATA)
    return table[table["demand"].isin([1.0, 3.0])].reset_index(drop=True)
