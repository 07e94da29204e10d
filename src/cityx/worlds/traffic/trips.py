"""The trip table's file beside a run's ``result.json``: ``trips.parquet``.

A world's own process builds the run's :class:`~cityx.core.TripTable`
once (:func:`.kpis.trip_table`) and writes it here, so that whoever reads
the run later (the fairness measures, a trial's checks) reads a typed
table instead of parsing SUMO's XML outputs again. Parquet keeps the file
compact (the group columns are dictionary-encoded) and byte-identical for
the same trips; its schema metadata holds the file's schema version and
whether the table is partial.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from cityx.core import DataError, TripTable

TRIPS_FILE = "trips.parquet"
TRIPS_SCHEMA_VERSION = 1
_METADATA_KEY = b"cityx.trips"


def write_trips(trips: TripTable, path: Path) -> Path:
    """Write ``trips`` to ``path`` atomically (a temp file beside it, then one rename)."""
    # heavy: pyarrow loads when a run's trips are written, not with the sandbox
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = trips.columns()
    metadata = {"schema_version": TRIPS_SCHEMA_VERSION, "partial": trips.partial}
    table = pa.table(
        {
            name: pa.array(column.tolist(), type=pa.string())
            if name in TripTable.TEXT
            else pa.array(column)
            for name, column in columns.items()
        }
    ).replace_schema_metadata({_METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_trips(path: Path) -> TripTable:
    """The trip table in ``path``; DataError when it is missing, unreadable or too new."""
    # heavy: pyarrow loads when trips are read, not with the sandbox
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
        metadata = json.loads((table.schema.metadata or {})[_METADATA_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
        raise DataError(
            f"unreadable trip table: {exc}",
            where=str(path),
            hint="re-run the world: its process writes this file",
        ) from None
    version = metadata.get("schema_version")
    if version != TRIPS_SCHEMA_VERSION:
        raise DataError(
            f"trip table schema version {version!r}; this cityx reads {TRIPS_SCHEMA_VERSION}",
            where=str(path),
        )
    columns = {
        name: np.asarray(table.column(name).to_pylist(), dtype=np.str_)
        if name in TripTable.TEXT
        else table.column(name).to_numpy()
        for name in table.column_names
    }
    try:
        return TripTable.from_columns(columns, partial=bool(metadata.get("partial", False)))
    except ValueError as exc:
        raise DataError(str(exc), where=str(path)) from None


def load_trips(folder: Path) -> TripTable | None:
    """The trip table of the run in ``folder``, or None when the run wrote none."""
    path = folder / TRIPS_FILE
    return read_trips(path) if path.is_file() else None


__all__ = ["TRIPS_FILE", "TRIPS_SCHEMA_VERSION", "load_trips", "read_trips", "write_trips"]
