"""fastprobe's exception hierarchy.

Every error fastprobe raises on purpose is a :class:`FastprobeError`, which subclasses :class:`ValueError` so that
generic ``except ValueError`` clauses keep working. Where lmprobe raises another built-in type for the same fault,
the fastprobe class is that type too, so code written for lmprobe catches it: file-system and model-loading failures
are also :class:`OSError`, a probe used before ``fit`` is also :class:`RuntimeError` (and scikit-learn's
``NotFittedError``), a missing method is also :class:`TypeError` and :class:`AttributeError`, a missing optional
package is also :class:`ImportError`, activations missing from the cache are also :class:`KeyError` and
:class:`FileNotFoundError`. Errors raised by the Rust core are mapped onto these classes in one place (the
binding crate's ``errors.rs``).
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

__all__ = [
    "ArgumentTypeError",
    "CorruptStoreError",
    "FastprobeError",
    "FastprobeIOError",
    "InvalidEstimatorError",
    "InvalidInputError",
    "MissingActivationsError",
    "MissingDependencyError",
    "ModelLoadError",
    "NotFittedError",
    "ShapeMismatchError",
    "StoreError",
    "UnknownOptionError",
    "UnsupportedMethodError",
]


class FastprobeError(ValueError):
    """Base class of every error fastprobe raises on purpose."""


class ShapeMismatchError(FastprobeError):
    """An array had a shape other than the one required; the message names both."""


class UnknownOptionError(FastprobeError):
    """A string option (a pooling, classifier or layer name) is not one of the accepted values, which it lists."""


class InvalidInputError(FastprobeError):
    """An argument's value is outside its domain (an empty prompt list, a prompt with no token, ...)."""


class ArgumentTypeError(InvalidInputError, TypeError):
    """An argument has the wrong type (a number where a path is expected); also a :class:`TypeError`."""


class FastprobeIOError(FastprobeError, OSError):
    """A file-system operation failed (also an :class:`OSError`)."""


class ModelLoadError(FastprobeIOError):
    """A model could not be loaded: not a local directory, not on the Hub or in its local cache, or unreadable.

    Also an :class:`OSError`, as transformers' own loading errors are.
    """


class StoreError(FastprobeError):
    """An activation-store operation failed."""


class CorruptStoreError(StoreError):
    """Stored data failed a check (checksum, magic, length); the message names the file, record and prompt."""


class MissingActivationsError(StoreError, KeyError, FileNotFoundError):
    """A prompt has no stored activations at a requested site.

    Also a :class:`KeyError` and, as lmprobe's missing cache entries are, a :class:`FileNotFoundError`.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NotFittedError(FastprobeError, _SklearnNotFittedError, RuntimeError):
    """A probe was used before ``fit``.

    Also scikit-learn's ``NotFittedError`` and, as in lmprobe, a :class:`RuntimeError`. Messages say the object "has
    not been fitted".
    """


class UnsupportedMethodError(FastprobeError, TypeError, AttributeError, RuntimeError):
    """An estimator lacks what an operation needs: ``predict_proba``, or the ``coef_`` of layer importance.

    Also a :class:`TypeError`, an :class:`AttributeError` and a :class:`RuntimeError`, the types lmprobe raises for
    these cases.
    """


class InvalidEstimatorError(FastprobeError, TypeError):
    """An object given as a classifier is not an estimator (no ``fit`` or ``predict``); also a :class:`TypeError`."""


class MissingDependencyError(FastprobeError, ImportError):
    """An optional package a feature needs is not installed (also an :class:`ImportError`).

    The message names the package and how to install it.
    """
