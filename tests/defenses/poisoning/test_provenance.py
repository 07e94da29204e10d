"""Signed dataset manifests: sign, verify, and name the sources changed after signing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cityx.core import DataError
from cityx.defenses.poisoning import dataset_manifest, sign_manifest, verify_manifest
from cityx.interop import generate_key, write_key_files

from ...support.poisoning import SOURCES


@pytest.fixture
def signed(tmp_path: Path, metro_base: pd.DataFrame) -> tuple[Path, str, Path]:
    data = tmp_path / "train.csv"
    metro_base.head(600).to_csv(data, index=False)
    files = write_key_files(generate_key("urn:cityx:vendor:acme:data"), tmp_path / "keys")
    token = sign_manifest(dataset_manifest(data, SOURCES), files.private)
    return data, token, files.public


def test_unchanged_data_verifies(signed: tuple[Path, str, Path]) -> None:
    data, token, trust = signed
    check = verify_manifest(token, data, trust)
    assert check.ok and check.issuer == "urn:cityx:vendor:acme:data"
    assert check.to_json()["changed_sources"] == []


def test_changed_added_and_removed_sources_are_named(signed: tuple[Path, str, Path]) -> None:
    data, token, trust = signed
    table = pd.read_csv(data)
    sensor = table["intersection"] + "/" + table["approach"]
    victim = sensor.iloc[0]
    table.loc[table.index[sensor == victim][2], "occupancy_pct"] += 1.0
    gone = sensor.iloc[-1]
    table = table[sensor != gone]
    extra = table.head(3).assign(intersection="Z9", approach="new")
    pd.concat([table, extra]).to_csv(data, index=False)
    check = verify_manifest(token, data, trust)
    assert not check.ok and check.signature_ok and not check.file_ok
    assert check.changed == (victim,)
    assert check.removed == (gone,)
    assert check.added == ("Z9/new",)


def test_a_forged_or_untrusted_manifest_fails(
    signed: tuple[Path, str, Path], tmp_path: Path
) -> None:
    data, token, trust = signed
    header, payload, signature = token.split(".")
    forged = ".".join(
        [header, payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB"), signature]
    )
    assert not verify_manifest(forged, data, trust).signature_ok
    other = write_key_files(generate_key("urn:cityx:vendor:other:data"), tmp_path / "other")
    result = verify_manifest(token, data, other.public)
    assert not result.ok and "not trusted" in result.reason


def test_missing_source_column_is_a_data_error(tmp_path: Path, metro_base: pd.DataFrame) -> None:
    data = tmp_path / "t.csv"
    metro_base.head(20).to_csv(data, index=False)
    with pytest.raises(DataError, match="no source column"):
        dataset_manifest(data, ["sensor_id"])
