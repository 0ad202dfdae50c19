"""The activation store and fastprobe's cache of extracted activations.

:class:`ActivationStore` is one directory of compressed, checksummed activations for one model fingerprint (see
``docs/store-format.md``). The cache is a root directory holding one store per fingerprint; the module-level
functions (:func:`cache_info`, :func:`set_cache_dtype`, :func:`set_cache_limit`, :func:`set_cache_backend`,
:func:`evict`, :func:`clear_cache`, :func:`list_cached_prompts`, :func:`discover_cached`,
:func:`enable_cache_logging`, :func:`load_layer_across_prompts`, :func:`load_layer_last_token`,
:func:`invalidate_extraction_cache`) have lmprobe's names and meaning; :func:`set_cache_tokens` is fastprobe's own.

Configuration, each settable in code or by environment variable (the ``LMPROBE_`` name is read when the
``FASTPROBE_`` one is unset):

- cache root: :func:`set_cache_backend` / ``FASTPROBE_CACHE_DIR``, default ``~/.cache/fastprobe/activations``;
- byte budget: :func:`set_cache_limit` / ``FASTPROBE_CACHE_MAX_GB`` (unset: unlimited), enforced by :func:`evict`;
- storage dtype of new stores: :func:`set_cache_dtype` / ``FASTPROBE_CACHE_DTYPE`` (default ``float16``: 11
  significant bits, so probes on cached activations agree with probes on float32 ones; a batch beyond float16's range
  is stored in float32).
- what a probe caches: :func:`set_cache_tokens` / ``FASTPROBE_CACHE_TOKENS``. ``"auto"`` (the default) keeps the
  tokens only when the probe's pooling needs them (max, min, a score-stage pooling, ``"all"``) and otherwise writes
  pooled-only records (last token, mean and first token: 30% of the bytes on 10-token statements, less on longer
  prompts); a later probe that needs the tokens runs those prompts again. ``"always"`` keeps every token.

The package's modules: :mod:`~fastprobe.store.activation_store` (the store), :mod:`~fastprobe.store.cache` (the
per-fingerprint cache and its settings: the one home of the cache's process-wide state), :mod:`~fastprobe.store.lookup`
(what the cache holds, by model name), :mod:`~fastprobe.store.pooling` and :mod:`~fastprobe.store.pooling_padded`
(the pooling kernels and pooling names).

A store holds three kinds of record per (prompt, site): every token with the pooled vectors, the pooled vectors only
(``keep_tokens=False``), or the last-token vector only (:meth:`ActivationStore.write_last_token`, what a pooled
activation dataset gives). A read that needs more than a prompt's record keeps reports the prompt as missing, and
:meth:`ActivationStore.contains` answers for what the caller will read, so the cache runs the model for it.
"""

from __future__ import annotations

from fastprobe._config import cache_root  # noqa: F401  (importable from this module before)
from fastprobe.sites import store_ids  # noqa: F401  (importable from this module before)
from fastprobe.store.activation_store import STORAGE_DTYPES, ActivationStore, required_content
from fastprobe.store.cache import (  # noqa: F401  (public beside __all__: the cache's helpers fastprobe's modules use)
    CACHE_TOKENS_MODES,
    SIDECAR_SITES,
    CacheInfo,
    ModelCacheInfo,
    activation_dirs,
    cache_dir,
    cache_info,
    cache_keeps_tokens,
    clear_cache,
    enable_cache_logging,
    evict,
    invalidate_extraction_cache,
    logger,
    model_dirs,
    model_store,
    open_store,
    set_cache_backend,
    set_cache_dtype,
    set_cache_limit,
    set_cache_tokens,
)
from fastprobe.store.lookup import (
    CachedPromptInfo,
    ManifestEntry,
    discover_cached,
    list_cached_prompts,
    load_layer_across_prompts,
    load_layer_last_token,
)

__all__ = [
    "STORAGE_DTYPES",
    "ActivationStore",
    "CacheInfo",
    "CachedPromptInfo",
    "ManifestEntry",
    "ModelCacheInfo",
    "cache_dir",
    "cache_info",
    "clear_cache",
    "discover_cached",
    "enable_cache_logging",
    "evict",
    "invalidate_extraction_cache",
    "list_cached_prompts",
    "load_layer_across_prompts",
    "load_layer_last_token",
    "model_store",
    "required_content",
    "set_cache_backend",
    "set_cache_dtype",
    "set_cache_limit",
    "set_cache_tokens",
]
