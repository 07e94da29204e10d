"""The error tree.

Every error that ``cityx`` raises on purpose is a :class:`CityxError`. Each
layer has its own subtree, and the exit code tells a front end whether the
user can fix the cause (2: bad input) or it is our fault (1)::

    CityxError                      exit 1
    ├── InputError                  exit 2: something the user gave us is wrong
    │   ├── ManifestError           a submission's cityx.toml or its files
    │   ├── DataError               a data file: columns, types, NaNs
    │   ├── PolicyError             a policy file
    │   ├── PluginError             an unknown or broken plugin
    │   └── StoreError              the store: unreachable, locked, read-only
    ├── TargetError                 the system under test misbehaved
    │   ├── TargetLoadError         its artifact could not be loaded
    │   ├── TargetTimeout           a call took longer than allowed
    │   ├── TargetCrashed           its worker process died
    │   └── TargetOutputError       it answered with something invalid
    ├── AuditError                  the audit log failed verification
    └── RunError                    a trial could not be carried out

Messages say what was wrong, where (``where``: a file, field or column) and
what to do (``hint``); ``str(error)`` joins them on one line.
"""

from __future__ import annotations


class CityxError(Exception):
    """Root of every error raised on purpose by ``cityx``."""

    exit_code = 1

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        # One line, always: front ends print errors on a single line.
        return " ".join(text.split())


class InputError(CityxError):
    """Something the user gave us is wrong; they can fix it."""

    exit_code = 2


class ManifestError(InputError):
    """A submission's manifest, or a file it names, is wrong."""


class DataError(InputError):
    """A data file does not match what it should hold."""


class PolicyError(InputError):
    """A policy file is malformed or names unknown checks or metrics."""


class PluginError(InputError):
    """A plugin id is unknown, or a plugin does not honour its contract."""


class StoreError(InputError):
    """The store cannot be reached, is locked, read-only or not migrated."""


class TargetError(CityxError):
    """The system under test failed: a finding for the trial, an error elsewhere."""


class TargetLoadError(TargetError):
    """The artifact could not be loaded into a system under test."""

    exit_code = 2


class TargetTimeout(TargetError):
    """A call to the system under test took longer than its time limit."""


class TargetCrashed(TargetError):
    """The worker process that hosts the system under test died."""


class TargetOutputError(TargetError):
    """The system under test answered with output of the wrong shape or type."""


class AuditError(CityxError):
    """The audit log is broken: an entry was edited, deleted, inserted or moved."""


class RunError(CityxError):
    """A trial or campaign could not be carried out."""


__all__ = [
    "AuditError",
    "CityxError",
    "DataError",
    "InputError",
    "ManifestError",
    "PluginError",
    "PolicyError",
    "RunError",
    "StoreError",
    "TargetCrashed",
    "TargetError",
    "TargetLoadError",
    "TargetOutputError",
    "TargetTimeout",
]
