"""Rendering the report to HTML and writing it to a file.

The page is the Jinja template ``cityx/governance/templates/report.html.j2``
filled with the view (:mod:`.build`); the template engine escapes every
value, so a finding title or a vendor name cannot inject markup.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from cityx.core import CityxError, InputError, Registry, RunError, TrialResults

from .build import build_view


def render_html(
    results: TrialResults | Mapping[str, Any],
    *,
    registry: Registry | None = None,
    governance: Any = None,
) -> str:
    """The report for a trial's results (typed, or the ``results.json`` document) as one page.

    Unknown keys are ignored, absent sections are shown as "not run" and
    ``null`` values as "undefined"; the same document gives the same bytes.
    ``governance`` (a :class:`cityx.governance.regulator.GovernanceView`) adds
    the claims and the requirement-by-requirement sections.
    """
    view = build_view(results, registry=registry)
    return environment().get_template("report.html.j2").render(report=view, governance=governance)


def write_report(
    results: TrialResults | Mapping[str, Any], path: Path, *, registry: Registry | None = None
) -> Path:
    """Render the report and write it to ``path`` atomically; return ``path``.

    The page goes to a temporary file in the same folder first and then
    replaces ``path`` in one step, so a reader never sees half a report.
    """
    # A trial that ran cannot write its report: the run's failure, not the user's input.
    html = render_html(results, registry=registry).encode("utf-8")
    return write_atomic(html, path, what="the report", error=RunError)


def write_atomic(
    data: bytes,
    path: Path,
    *,
    what: str | None = None,
    error: type[CityxError] = InputError,
) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, so no
    reader ever sees half of it; an unwritable place raises ``error`` naming it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise error(
            f"cannot write {what or path.name}: {exc.strerror or exc}",
            where=str(path),
            hint="check that the folder exists and is writable",
        ) from exc
    return path


@cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("cityx.governance", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


__all__ = ["environment", "render_html", "write_atomic", "write_report"]
