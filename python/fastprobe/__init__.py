"""fastprobe: train probes on language-model activations, with a Rust core.

The public API is this package; the compiled ``fastprobe._core`` module is private.
"""

from __future__ import annotations

from fastprobe import _core
from fastprobe.exceptions import (
    FastprobeError,
    FastprobeIOError,
    InvalidInputError,
    NotFittedError,
    ShapeMismatchError,
    UnknownOptionError,
)
from fastprobe.pooling import pool, pool_ragged
from fastprobe.probe import LinearProbe, Probe

__version__: str = _core.__version__

__all__ = [
    "FastprobeError",
    "FastprobeIOError",
    "InvalidInputError",
    "LinearProbe",
    "NotFittedError",
    "Probe",
    "ShapeMismatchError",
    "UnknownOptionError",
    "__version__",
    "pool",
    "pool_ragged",
]
