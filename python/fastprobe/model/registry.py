"""The process-wide memos of loaded models, and :func:`clear_model_cache` to free them all."""

from __future__ import annotations

import gc
import threading
from collections.abc import MutableMapping
from typing import Any, TypeVar

__all__ = ["clear_model_cache", "register_model_cache"]

_M = TypeVar("_M", bound=MutableMapping[Any, Any])
_CACHES: list[MutableMapping[Any, Any]] = []
_LOCK = threading.Lock()


def register_model_cache(cache: _M) -> _M:
    """Register a module's memo of loaded models (or of anything holding their weights) for :func:`clear_model_cache`.

    Parameters
    ----------
    cache : mutable mapping
        Cleared in place by :func:`clear_model_cache`.

    Returns
    -------
    mutable mapping
        ``cache`` itself, so a module can write ``_MODELS = register_model_cache({})``.
    """
    with _LOCK:
        if not any(c is cache for c in _CACHES):
            _CACHES.append(cache)
    return cache


def clear_model_cache() -> None:
    """Forget every model fastprobe loaded in this process (extraction, perplexity, sentence encoders, fingerprints).

    The next call that needs a model loads it again. Memory is returned once nothing else holds the models: the
    garbage collector runs, and CUDA's cached blocks are released when a GPU is in use.
    """
    with _LOCK:
        for cache in _CACHES:
            cache.clear()
    gc.collect()
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
