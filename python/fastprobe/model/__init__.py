"""The only place a model is loaded: where it comes from, loading it once per process, and what describes it.

:func:`resolve_model` turns what a user passes as ``model=`` (a Hub id such as ``"org/name"``, with an optional
``revision``, or a local directory) into a :class:`ModelSource`: the directory holding its files, and for a Hub
model the commit it resolved to. Every loader in fastprobe goes through :func:`from_pretrained` with that source, so
a Hub model is read from the local Hugging Face cache when offline (``HF_HUB_OFFLINE=1``) and downloaded into it
when online, as transformers does, and its fingerprint names the exact commit and weight files.

The loaders, each memoized per process and freed by :func:`clear_model_cache`: :func:`load_model` (the body, for
extraction), :func:`load_weightless` (a meta-device skeleton: fingerprint and store without weights),
:func:`causal_lm` (the model with its language-model head) and :func:`sentence_encoder`; and without loading
anything, :func:`describe_model` (the fingerprint and shape :func:`remember_model` recorded, valid while the model's
files are unchanged). Beside them:
:func:`model_fingerprint` / :func:`fingerprint_of` / :func:`model_identity`, the tokens
(:func:`tokenize`, :func:`pad_batch`) and the architectures table (:func:`anatomy`, :func:`decoder_blocks`).

This package imports nothing from the store, extraction, features or probe layers above it.
"""

from __future__ import annotations

from fastprobe.model.architectures import (
    ATTENTION_PROJECTIONS,
    BLOCK_PATHS,
    MLP_PATHS,
    Anatomy,
    anatomy,
    decoder_blocks,
)
from fastprobe.model.description import describe_model, remember_model
from fastprobe.model.encoders import sentence_encoder, sentence_model_here
from fastprobe.model.fingerprint import adopt_fingerprint, fingerprint_of, model_fingerprint, model_identity
from fastprobe.model.lm import causal_lm, load_with_head
from fastprobe.model.loading import (
    BACKENDS,
    MODEL_DTYPES,
    PRECISIONS,
    QUANTIZATIONS,
    LoadedModel,
    as_loaded,
    check_dtype,
    import_nnsight,
    load_model,
    quantization_kwargs,
    resolve_device,
    split_precision,
)
from fastprobe.model.registry import clear_model_cache, register_model_cache
from fastprobe.model.source import ModelSource, file_versions, from_pretrained, resolve_model, weights_digest
from fastprobe.model.tokens import accepts_kwarg, length_order, pad_batch, resolve_position, tokenize
from fastprobe.model.weightless import load_weightless

__all__ = [
    "ATTENTION_PROJECTIONS",
    "BACKENDS",
    "BLOCK_PATHS",
    "MLP_PATHS",
    "MODEL_DTYPES",
    "PRECISIONS",
    "QUANTIZATIONS",
    "Anatomy",
    "LoadedModel",
    "ModelSource",
    "accepts_kwarg",
    "adopt_fingerprint",
    "anatomy",
    "as_loaded",
    "causal_lm",
    "check_dtype",
    "clear_model_cache",
    "decoder_blocks",
    "describe_model",
    "file_versions",
    "fingerprint_of",
    "from_pretrained",
    "import_nnsight",
    "length_order",
    "load_model",
    "load_weightless",
    "load_with_head",
    "model_fingerprint",
    "model_identity",
    "pad_batch",
    "quantization_kwargs",
    "register_model_cache",
    "remember_model",
    "resolve_device",
    "resolve_model",
    "resolve_position",
    "sentence_encoder",
    "sentence_model_here",
    "split_precision",
    "tokenize",
    "weights_digest",
]
