"""Submissions: the folder a vendor hands to the city, and its admission.

A submission is admitted when its manifest is valid, its files are inside
its folder, the artifact's digest matches, its data fits its input schema
and the artifact loads safely in an isolated worker.
"""

from .manifest_file import read_manifest
from .opening import Submission, open_submission, submission_folder
from .scaffold import scaffold_submission
from .validate import Validation, resolve_inside, validate_submission

__all__ = [
    "Submission",
    "Validation",
    "open_submission",
    "read_manifest",
    "resolve_inside",
    "scaffold_submission",
    "submission_folder",
    "validate_submission",
]
