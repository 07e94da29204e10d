"""The backdoor scan of a submission's model, through its isolated target."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cityx.core import DataError, ManifestError
from cityx.data import read_table

from ._data import FloatArray
from .scan import ScanReport, scan_model


def scan_submission(model: Path, data: Path, *, seed: int = 0) -> ScanReport:
    """Scan the model of the submission at ``model`` (its folder or cityx.toml) on ``data``."""
    from cityx.submissions.manifest_file import read_manifest
    from cityx.targets import open_predictor

    folder = model.parent if model.is_file() else model
    manifest, problems = read_manifest(folder)
    if manifest is None:
        detail = "; ".join(str(p) for p in problems) or "unreadable manifest"
        raise ManifestError(detail, where=str(folder), hint="--model takes a submission folder")
    names = manifest.input_schema().names
    table = read_table(data)
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise DataError(f"missing the model's input columns {', '.join(missing)}", where=str(data))
    x = table[list(names)].to_numpy(dtype=np.float64)
    with open_predictor(manifest, folder) as predictor:

        def predict(batch: FloatArray) -> np.ndarray:
            return np.asarray(predictor.predict(batch).values)

        return scan_model(predict, x, names, seed=seed)
