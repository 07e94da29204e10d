"""Golden datasets: real SUMO rows (see data/README.md) and seeded poison with known truth."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

DATA = Path(__file__).parent / "data" / "metro_base.csv"
LABEL = "congestion_next"
SOURCES = ["intersection", "approach"]


@pytest.fixture(scope="session")
def base() -> pd.DataFrame:
    """Two demand levels of the clean table (3,024 rows, 36 sensors)."""
    table = pd.read_csv(DATA)
    return table[table["demand"].isin([1.0, 3.0])].reset_index(drop=True)
