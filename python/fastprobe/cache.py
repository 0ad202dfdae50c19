"""lmprobe's ``cache`` module path: the activation cache's functions and, for lmprobe's scripts, ``CachedExtractor``.

Everything is defined in :mod:`fastprobe.store` (``CachedExtractor`` in :mod:`fastprobe.features`) and only
re-exported here, so that ``from lmprobe.cache import cache_info`` becomes ``from fastprobe.cache import cache_info``.
"""

from __future__ import annotations

from fastprobe.features import CachedExtractor
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
