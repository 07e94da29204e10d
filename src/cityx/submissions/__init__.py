"""Submissions: the folder a vendor hands to the city, and its admission.

A submission is admitted when its manifest is valid, its files are inside
its folder, the artifact's digest matches, its data fits its input schema
and the artifact loads safely in an isolated worker.
"""

from .completeness import manifest_gaps
from .loading import load_problems, needs_code_trust
from .manifest_file import read_manifest
from .opening import Submission, open_submission, submission_folder
from .paths import resolve_inside
from .scaffold import scaffold_submission
from .upgrade import Upgrade, upgrade_manifest
from .validate import Validation, validate_submission

__all__ = [
    "Submission",
    "Upgrade",
    "Validation",
    "load_problems",
    "manifest_gaps",
    "needs_code_trust",
    "open_submission",
    "read_manifest",
    "resolve_inside",
    "scaffold_submission",
    "submission_folder",
    "upgrade_manifest",
    "validate_submission",
]
