"""fastprobe's exception hierarchy.

Every error fastprobe raises on purpose is a :class:`FastprobeError`, which subclasses :class:`ValueError` so that
generic ``except ValueError`` clauses keep working. File-system failures are :class:`FastprobeIOError`, which is also
an :class:`OSError`. Errors raised by the Rust core are mapped onto these classes in one place (the binding crate's
``errors.rs``).
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

__all__ = [
    "CorruptStoreError",
    "FastprobeError",
    "FastprobeIOError",
    "InvalidInputError",
    "MissingActivationsError",
    "NotFittedError",
    "ShapeMismatchError",
    "StoreError",
    "UnknownOptionError",
]


class FastprobeError(ValueError):
    """Base class of every error fastprobe raises on purpose."""


class ShapeMismatchError(FastprobeError):
    """An array had a shape other than the one required; the message names both."""


class UnknownOptionError(FastprobeError):
    """A string option (a pooling, classifier or layer name) is not one of the accepted values, which it lists."""


class InvalidInputError(FastprobeError):
    """An argument's value is outside its domain (an empty prompt list, a prompt with no token, ...)."""


class FastprobeIOError(FastprobeError, OSError):
    """A file-system operation failed (also an :class:`OSError`)."""


class StoreError(FastprobeError):
    """An activation-store operation failed."""


class CorruptStoreError(StoreError):
    """Stored data failed a check (checksum, magic, length); the message names the file, record and prompt."""


class MissingActivationsError(StoreError, KeyError):
    """A prompt has no stored activations at a requested site (also a :class:`KeyError`)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NotFittedError(FastprobeError, _SklearnNotFittedError):
    """A probe was used before ``fit`` (also scikit-learn's ``NotFittedError``)."""
