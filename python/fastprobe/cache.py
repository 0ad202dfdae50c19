"""lmprobe's ``cache`` module path: the activation cache's functions and, for lmprobe's scripts, ``CachedExtractor``.

Everything but :class:`CachedExtractor` is defined in :mod:`fastprobe.store` and only re-exported here, so that
``from lmprobe.cache import cache_info`` becomes ``from fastprobe.cache import cache_info``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastprobe.store import (
    CachedPromptInfo,
    CacheInfo,
    ManifestEntry,
    ModelCacheInfo,
    cache_info,
    clear_cache,
    discover_cached,
    enable_cache_logging,
    evict,
    invalidate_extraction_cache,
    list_cached_prompts,
    load_layer_across_prompts,
    load_layer_last_token,
    set_cache_backend,
    set_cache_dtype,
    set_cache_limit,
    set_cache_tokens,
)

__all__ = [
    "CacheInfo",
    "CachedExtractor",
    "CachedPromptInfo",
    "ManifestEntry",
    "ModelCacheInfo",
    "cache_info",
    "clear_cache",
    "discover_cached",
    "enable_cache_logging",
    "evict",
    "invalidate_extraction_cache",
    "list_cached_prompts",
    "load_layer_across_prompts",
    "load_layer_last_token",
    "set_cache_backend",
    "set_cache_dtype",
    "set_cache_limit",
    "set_cache_tokens",
]


class CachedExtractor:
    """Extract through the activation cache: only prompts not cached yet run through the model.

    lmprobe wraps its extractor object in this class; fastprobe reads the same description from it (its
    ``model_name``, ``layer_indices`` and ``batch_size``, and ``device``, ``dtype``, ``backend`` when present) and
    extracts with its own engine into its own cache. Every token is kept, so the dense matrix can be rebuilt.

    Parameters
    ----------
    extractor : object
        Anything with ``model_name`` (a Hub id or directory), ``layer_indices`` (ints) and ``batch_size``.
    """

    def __init__(self, extractor: Any) -> None:
        self.extractor = extractor

    def extract(
        self,
        prompts: Sequence[str],
        remote: bool = False,
        invalidate_cache: bool = False,
        max_retries: int | None = None,
        cache_only: bool = False,
    ) -> tuple[Any, Any] | None:
        """Cache the prompts' activations and return them as one dense, zero-padded matrix.

        Parameters
        ----------
        prompts : sequence of str
        remote : bool, default=False
            Run on NDIF (``backend="nnsight"``); failed remote runs are retried ``max_retries`` times (3 by default),
            local ones never.
        invalidate_cache : bool, default=False
            Extract these prompts again even when cached.
        max_retries : int, optional
        cache_only : bool, default=False
            Only fill the cache; return None.

        Returns
        -------
        (activations, mask) or None
            ``activations``: a float32 tensor ``(n_prompts, max_tokens, n_layers * hidden_size)``, the layers
            ascending and concatenated, each prompt's real tokens first and zeros after them; ``mask``: ``(n_prompts,
            max_tokens)`` int64, 1 on real tokens.
        """
        import time

        import numpy as np
        import torch

        from fastprobe.extraction import extract_to_store, load_model, model_fingerprint
        from fastprobe.store import model_store

        ex = self.extractor
        layers = sorted({int(i) for i in ex.layer_indices})
        dtype = getattr(ex, "dtype", None)
        backend = "nnsight" if remote else (getattr(ex, "backend", None) or "local")
        loaded = load_model(
            ex.model_name,
            device=getattr(ex, "device", None) or "auto",
            dtype=dtype if isinstance(dtype, str) else None,
            backend=backend,
            remote=bool(remote),
        )
        store = model_store(model_fingerprint(loaded))
        wanted = list(prompts)
        retries = (3 if max_retries is None else int(max_retries)) if remote else 0
        for attempt in range(retries + 1):
            try:
                extract_to_store(
                    loaded, wanted, layers, store, batch_size=int(ex.batch_size), overwrite=bool(invalidate_cache)
                )
                break
            except Exception:  # a remote run failed: what completed is stored, so a retry resumes
                if attempt == retries:
                    raise
                time.sleep(2.0**attempt)
            invalidate_cache = False  # the first attempt already replaced what it reached
        if cache_only:
            return None
        values, offsets = store.read_tokens(wanted, layers)
        counts = np.diff(offsets)
        width = int(max(counts.max(initial=0), 1))
        acts = np.zeros((len(counts), width, values.shape[1]), dtype=np.float32)
        mask = np.zeros((len(counts), width), dtype=np.int64)
        for i, n in enumerate(counts):
            acts[i, :n] = values[offsets[i] : offsets[i + 1]]
            mask[i, :n] = 1
        return torch.from_numpy(acts), torch.from_numpy(mask)
