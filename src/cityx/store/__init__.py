"""Persistence: SQLite by default, PostgreSQL for a shared deployment."""

from .store import Store, TrialRecord, default_store_url

__all__ = ["Store", "TrialRecord", "default_store_url"]
