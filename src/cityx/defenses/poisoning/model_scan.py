"""The backdoor scan of a submission's model, through its isolated target."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cityx.core import DataError
from cityx.data import read_table
from cityx.submissions import open_submission

from ._data import FloatArray
from .scan import ScanReport, scan_model


def scan_submission(
    model: Path, data: Path, *, seed: int = 0, trust_code: bool = False
) -> ScanReport:
    """Scan the model of the submission at ``model`` (folder, cityx.toml or artifact) on ``data``.

    The artifact's digest is checked before anything loads it.
    """
    submission = open_submission(model)
    names = submission.manifest.input_schema().names
    table = read_table(data)
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise DataError(f"missing the model's input columns {', '.join(missing)}", where=str(data))
    x = table[list(names)].to_numpy(dtype=np.float64)
    with submission.predictor(trust_code=trust_code) as predictor:

        def predict(batch: FloatArray) -> np.ndarray:
            return np.asarray(predictor.predict(batch).values)

        return scan_model(predict, x, names, seed=seed)
