"""Pooling under lmprobe's module name (``lmprobe.pooling``): reduce each prompt's token activations to one vector.

Nothing is defined here: the names live in :mod:`fastprobe.store.pooling` (the kernels and pooling names) and
:mod:`fastprobe.store.pooling_padded` (lmprobe's ``pool_*`` functions of padded batches).
"""

from __future__ import annotations

from fastprobe.store.pooling import (
    DEFAULT_STAGE,
    INFERENCE_POOLING_STRATEGIES,
    POOLING_METHODS,
    SCORE_POOLING_STRATEGIES,
    TRAIN_POOLING_STRATEGIES,
    TRAIN_POOLINGS,
    ParsedPooling,
    PoolingMethod,
    PoolingSpec,
    parse_pooling,
    parse_pooling_strategy,
    per_token_labels,
    pool,
    pool_ragged,
    reduce_scores,
    resolve_pooling,
    resolve_pooling_spec,
)
from fastprobe.store.pooling_padded import (
    get_pooling_fn,
    pool_all,
    pool_first_token,
    pool_last_token,
    pool_max,
    pool_mean,
    pool_min,
)

__all__ = [
    "DEFAULT_STAGE",
    "INFERENCE_POOLING_STRATEGIES",
    "POOLING_METHODS",
    "SCORE_POOLING_STRATEGIES",
    "TRAIN_POOLINGS",
    "TRAIN_POOLING_STRATEGIES",
    "ParsedPooling",
    "PoolingMethod",
    "PoolingSpec",
    "get_pooling_fn",
    "parse_pooling",
    "parse_pooling_strategy",
    "per_token_labels",
    "pool",
    "pool_all",
    "pool_first_token",
    "pool_last_token",
    "pool_max",
    "pool_mean",
    "pool_min",
    "pool_ragged",
    "reduce_scores",
    "resolve_pooling",
    "resolve_pooling_spec",
]
