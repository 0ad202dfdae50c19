"""``UnifiedCache``: one cache of a model's activations, perplexity features and logits (lmprobe's ``UnifiedCache``)."""

from __future__ import annotations

from fastprobe.unified_cache.cache import CACHE_POOLINGS, LOGIT_POSITIONS, UnifiedCache
from fastprobe.unified_cache.records import CachedLogits, WarmupStats

__all__ = ["CACHE_POOLINGS", "LOGIT_POSITIONS", "CachedLogits", "UnifiedCache", "WarmupStats"]
