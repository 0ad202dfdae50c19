"""Per-token perplexity of prompts under a causal language model, batched and cached.

A facade: the home of these names is :mod:`fastprobe.extraction.perplexity` (the model with its language-model head
is loaded by :func:`fastprobe.model.causal_lm`).
"""

from __future__ import annotations

from fastprobe.extraction.perplexity import (
    PERPLEXITY_BATCH,
    PERPLEXITY_FEATURES,
    PERPLEXITY_RECORD,
    batch_logits,
    causal_lm,
    check_predictable,
    compute_perplexity,
    perplexity_features,
    perplexity_stats,
    perplexity_store,
    write_perplexity,
)

__all__ = [
    "PERPLEXITY_BATCH",
    "PERPLEXITY_FEATURES",
    "PERPLEXITY_RECORD",
    "batch_logits",
    "causal_lm",
    "check_predictable",
    "compute_perplexity",
    "perplexity_features",
    "perplexity_stats",
    "perplexity_store",
    "write_perplexity",
]
