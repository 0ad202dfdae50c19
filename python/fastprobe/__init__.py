"""fastprobe: train probes on language-model activations, with a Rust core.

The public API is this package; the compiled ``fastprobe._core`` module is private.
"""

from __future__ import annotations

from fastprobe import _core
from fastprobe.baselines import (
    ActivationBaseline,
    BaselineBattery,
    BaselineNotFoundError,
    BaselineProbe,
    BaselineResult,
    BaselineResults,
)
from fastprobe.ensemble import ProbeEnsemble
from fastprobe.exceptions import (
    CorruptStoreError,
    FastprobeError,
    FastprobeIOError,
    InvalidEstimatorError,
    InvalidInputError,
    MissingActivationsError,
    MissingDependencyError,
    ModelLoadError,
    NotFittedError,
    ShapeMismatchError,
    UnknownOptionError,
    UnsupportedMethodError,
)
from fastprobe.pooling import pool, pool_ragged
from fastprobe.probe import LayerSweepResult, LinearProbe, Probe
from fastprobe.store import (
    ActivationStore,
    cache_info,
    clear_cache,
    discover_cached,
    evict,
    list_cached_prompts,
    set_cache_backend,
    set_cache_dtype,
    set_cache_limit,
    set_cache_tokens,
)

__version__: str = _core.__version__

__all__ = [
    "ActivationBaseline",
    "ActivationStore",
    "BaselineBattery",
    "BaselineNotFoundError",
    "BaselineProbe",
    "BaselineResult",
    "BaselineResults",
    "CorruptStoreError",
    "FastprobeError",
    "FastprobeIOError",
    "InvalidEstimatorError",
    "InvalidInputError",
    "LayerSweepResult",
    "LinearProbe",
    "MissingActivationsError",
    "MissingDependencyError",
    "ModelLoadError",
    "NotFittedError",
    "Probe",
    "ProbeEnsemble",
    "ShapeMismatchError",
    "UnknownOptionError",
    "UnsupportedMethodError",
    "__version__",
    "cache_info",
    "clear_cache",
    "discover_cached",
    "evict",
    "list_cached_prompts",
    "pool",
    "pool_ragged",
    "set_cache_backend",
    "set_cache_dtype",
    "set_cache_limit",
    "set_cache_tokens",
]
