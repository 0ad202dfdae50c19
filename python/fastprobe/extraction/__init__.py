"""Extraction: run a Hugging Face model over prompts and read (or change) the activations at chosen sites.

The package's modules, in the order data flows through them:

- :mod:`~fastprobe.extraction.plan`: sites -> the modules a pass reads (:class:`ExtractionPlan`), and the modules
  whose input or output it replaces (:class:`Intervention`); :class:`Captured` turns one pass's reads into site
  activations.
- :mod:`~fastprobe.extraction.ablation`: :class:`HeadAblation` and :class:`EdgeAblation`, interventions with
  positions per prompt; :mod:`~fastprobe.extraction.attention` routes a model's attention calls through handlers
  (edge masks, reading chosen query rows); :mod:`~fastprobe.extraction.batch` is the pass in flight.
- :mod:`~fastprobe.extraction.batching`: prompts per batch, or batches filled to the device's token budget when no
  batch size is set (:data:`DEFAULT_BATCH_SIZE`, lmprobe's default of 8, counts as not set).
- :mod:`~fastprobe.extraction.runner`: prompts batched by token length, the plan's hooks installed, a CUDA
  out-of-memory error halving the batch, a progress bar, the pass stopped right after the deepest site (no later
  block, no language-model head, no KV cache): :func:`~fastprobe.extraction.runner.forward_batches`; and
  :func:`~fastprobe.extraction.runner.generate_batches`, which drives ``model.generate`` with the same hooks.
- :mod:`~fastprobe.extraction.nnsight`: one batch as an nnsight trace, on this machine or on NDIF.
- :mod:`~fastprobe.extraction.to_store`: :func:`extract_pooled` (pooled arrays in memory) and
  :func:`extract_to_store` (records in an activation store).
- :mod:`~fastprobe.extraction.perplexity`: per-token perplexity through the model with its head, and its cache.

Models are loaded by :mod:`fastprobe.model`; its loading names are re-exported here, where they have always been.
"""

from __future__ import annotations

from fastprobe.extraction.ablation import (
    ABLATION_MODES,
    EdgeAblation,
    HeadAblation,
    as_positions,
    intervened_fingerprint,
    parse_heads,
    prefix_safe,
)
from fastprobe.extraction.batching import DEFAULT_BATCH_SIZE, token_budget
from fastprobe.extraction.plan import Captured, ExtractionPlan, Intervention, build_plan
from fastprobe.extraction.runner import Generation, forward_batches, generate_batches
from fastprobe.extraction.to_store import FLOAT16_MAX, extract_at, extract_pooled, extract_to_store, storage_dtype
from fastprobe.model import (
    BACKENDS,
    MODEL_DTYPES,
    LoadedModel,
    check_dtype,
    decoder_blocks,
    load_model,
    model_fingerprint,
    resolve_device,
    tokenize,
)

__all__ = [
    "ABLATION_MODES",
    "BACKENDS",
    "DEFAULT_BATCH_SIZE",
    "FLOAT16_MAX",
    "MODEL_DTYPES",
    "Captured",
    "EdgeAblation",
    "ExtractionPlan",
    "Generation",
    "HeadAblation",
    "Intervention",
    "LoadedModel",
    "as_positions",
    "build_plan",
    "check_dtype",
    "decoder_blocks",
    "extract_at",
    "extract_pooled",
    "extract_to_store",
    "forward_batches",
    "generate_batches",
    "intervened_fingerprint",
    "load_model",
    "model_fingerprint",
    "parse_heads",
    "prefix_safe",
    "resolve_device",
    "storage_dtype",
    "token_budget",
    "tokenize",
]
