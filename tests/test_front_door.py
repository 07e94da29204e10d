"""The front door: ``import cityx`` gives the verbs and types a user needs, loaded lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

import cityx


@pytest.mark.parametrize("name", [n for n in cityx.__all__ if n != "__version__"])
def test_every_front_door_name_resolves(name: str) -> None:
    assert getattr(cityx, name) is not None
    assert name in dir(cityx)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cityx.nope  # noqa: B018


def test_importing_cityx_loads_no_model_library() -> None:
    code = (
        "import sys, cityx; heavy = [m for m in ('sklearn', 'onnxruntime', 'lightgbm', "
        "'skops', 'pandas', 'cityx.runs') if m in sys.modules]; print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_all_lists_exactly_the_lazy_exports() -> None:
    assert sorted(cityx.__all__) == sorted(["__version__", *cityx._EXPORTS])
    assert len(set(cityx.__all__)) == len(cityx.__all__)
