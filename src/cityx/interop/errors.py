"""Errors of the interoperability layer.

These are raised by the parts that read files and arguments (keys, trust
stores, messages to sign). The verifier never raises them: it answers every
input with a :class:`~cityx.interop.verify.Verification`::

    InputError                      exit 2 (from cityx.core)
    └── InteropError                anything the interop layer was given is wrong
        ├── KeyFileError            a private key file: missing, malformed, too open
        ├── TrustStoreError         a trust document or folder: format, duplicate kid
        └── MessageError            a message to sign: unknown type, schema, claims
"""

from __future__ import annotations

from cityx.core import InputError


class InteropError(InputError):
    """Something given to the interoperability layer is wrong; the user can fix it."""


class KeyFileError(InteropError):
    """A private key file is missing, malformed or readable by others."""


class TrustStoreError(InteropError):
    """A trust document or trust folder is malformed or contradicts itself."""


class MessageError(InteropError):
    """A message to sign has an unknown type, fails its schema or has bad claims."""


__all__ = ["InteropError", "KeyFileError", "MessageError", "TrustStoreError"]
