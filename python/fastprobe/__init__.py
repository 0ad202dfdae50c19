"""fastprobe: train probes on language-model activations, with a Rust core.

The public API is this package; the compiled ``fastprobe._core`` module is private. Every name of lmprobe's
documented API is here too (see ``docs/lmprobe-compatibility.md``); those with optional dependencies (activation
datasets need ``huggingface_hub`` and ``pyarrow``) are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from fastprobe import _core
from fastprobe._config import set_max_threads
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
    ArgumentTypeError,
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
from fastprobe.model import clear_model_cache
from fastprobe.probe import LayerSweepResult, LinearProbe, Probe
from fastprobe.profiling import is_profiling, set_profiling
from fastprobe.store import (
    ActivationStore,
    CachedPromptInfo,
    CacheInfo,
    ManifestEntry,
    ModelCacheInfo,
    cache_info,
    clear_cache,
    discover_cached,
    enable_cache_logging,
    evict,
    list_cached_prompts,
    load_layer_across_prompts,
    load_layer_last_token,
    set_cache_backend,
    set_cache_dtype,
    set_cache_limit,
    set_cache_tokens,
)
from fastprobe.store.pooling import pool, pool_ragged

__version__: str = _core.__version__

#: Names imported on first use, and the module that defines each.
_LAZY: dict[str, str] = {
    "PerLayerScaler": "fastprobe.estimators",
    "UnifiedCache": "fastprobe.unified_cache",
    "WarmupStats": "fastprobe.unified_cache",
    "CachedLogits": "fastprobe.unified_cache",
    "cuml_available": "fastprobe.estimators",
    "DatasetMetadata": "fastprobe.sharing",
    "fetch_dataset_metadata": "fastprobe.sharing",
    "load_activation_dataset": "fastprobe.sharing",
    "load_activations": "fastprobe.sharing",
    "migrate_dataset": "fastprobe.sharing",
    "pull_dataset": "fastprobe.sharing",
    "push_dataset": "fastprobe.sharing",
    "upgrade_dataset_format": "fastprobe.sharing",
}


#: Submodules reachable as attributes of the package (``fastprobe.classifiers``) without importing them first, as
#: lmprobe's are: importing ``fastprobe`` used to import these as a side effect.
_SUBMODULES: tuple[str, ...] = ("architectures", "classifiers", "models", "perplexity", "pooling", "scaling")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"fastprobe.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastprobe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "ActivationBaseline",
    "ActivationStore",
    "ArgumentTypeError",
    "BaselineBattery",
    "BaselineNotFoundError",
    "BaselineProbe",
    "BaselineResult",
    "BaselineResults",
    "CacheInfo",
    "CachedLogits",
    "CachedPromptInfo",
    "CorruptStoreError",
    "DatasetMetadata",
    "FastprobeError",
    "FastprobeIOError",
    "InvalidEstimatorError",
    "InvalidInputError",
    "LayerSweepResult",
    "LinearProbe",
    "ManifestEntry",
    "MissingActivationsError",
    "MissingDependencyError",
    "ModelCacheInfo",
    "ModelLoadError",
    "NotFittedError",
    "PerLayerScaler",
    "Probe",
    "ProbeEnsemble",
    "ShapeMismatchError",
    "UnifiedCache",
    "UnknownOptionError",
    "UnsupportedMethodError",
    "WarmupStats",
    "__version__",
    "cache_info",
    "clear_cache",
    "clear_model_cache",
    "cuml_available",
    "discover_cached",
    "enable_cache_logging",
    "evict",
    "fetch_dataset_metadata",
    "is_profiling",
    "list_cached_prompts",
    "load_activation_dataset",
    "load_activations",
    "load_layer_across_prompts",
    "load_layer_last_token",
    "migrate_dataset",
    "pool",
    "pool_ragged",
    "pull_dataset",
    "push_dataset",
    "set_cache_backend",
    "set_cache_dtype",
    "set_cache_limit",
    "set_cache_tokens",
    "set_max_threads",
    "set_profiling",
    "upgrade_dataset_format",
]
