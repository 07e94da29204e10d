"""Tabular data files: reading CSV and Parquet, checking them against a schema."""

from .tables import TableInspection, file_sha256, inspect_table, labelled_batch, read_table

__all__ = ["TableInspection", "file_sha256", "inspect_table", "labelled_batch", "read_table"]
