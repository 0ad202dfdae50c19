"""The model with its language-model head (perplexity, generation), loaded once per process beside the body."""

from __future__ import annotations

import os
import threading
from typing import Any

from fastprobe.exceptions import InvalidInputError, ModelLoadError
from fastprobe.model.architectures import anatomy
from fastprobe.model.loading import (
    LoadedModel,
    check_dtype,
    load_tokenizer,
    quantization_kwargs,
    resolve_device,
    split_precision,
)
from fastprobe.model.registry import register_model_cache
from fastprobe.model.source import from_pretrained, resolve_model

__all__ = ["causal_lm", "load_with_head"]

_LMS: dict[tuple[str, str, str, str, str | None], Any] = register_model_cache({})  # cleared by clear_model_cache
_LMS_LOCK = threading.Lock()
_WITH_HEAD: dict[tuple[str, str | None, str, str | None], LoadedModel] = register_model_cache({})


def _load_lm(source: Any, dtype: Any, options: dict[str, Any], device: str, what: str) -> Any:
    """Load the causal LM of ``source`` in eval mode without gradients, on ``device``.

    A quantized model is placed by its ``device_map``. A model without a head transformers can load is an
    :class:`InvalidInputError` whose message starts with ``what``.
    """
    from transformers import AutoModelForCausalLM

    try:
        lm = from_pretrained(AutoModelForCausalLM, source, dtype=dtype, **options)
    except ModelLoadError as err:
        if isinstance(err.__cause__, OSError):  # the files, not the architecture
            raise
        raise InvalidInputError(f"{what} has no language-model head transformers can load: {err.__cause__}") from err
    if "quantization_config" not in options:
        lm.to(device)
    lm.eval()
    lm.requires_grad_(False)
    return lm


def _key(loaded: LoadedModel) -> tuple[str, str, str, str, str | None]:
    source = loaded.source
    assert source is not None, "causal_lm needs a model with local files"
    dtype = next(loaded.model.parameters()).dtype
    return (source.name, source.commit or str(source.path), loaded.device, str(dtype), loaded.quantization)


def load_with_head(
    name: str | os.PathLike[str], *, device: str = "auto", precision: str | None = None, revision: str | None = None
) -> LoadedModel:
    """Load (once per process) a model with its language-model head, for generation: one copy of the weights.

    The returned model's ``model`` is the causal LM's body (``base_model``), so extraction hooks and
    :func:`causal_lm` (which returns the LM it belongs to) share its weights: generation with captures holds the
    weights once, where :func:`~fastprobe.model.load_model` followed by :func:`causal_lm` holds them twice.

    Parameters
    ----------
    name : str or path-like
        A Hub id or a local directory, as :func:`~fastprobe.model.load_model` takes.
    device : str, default="auto"
    precision : {"float32", "float16", "bfloat16", "8bit", "4bit"}, optional
        A compute dtype, or a bitsandbytes quantization (CUDA only; computing in float16). None: float32.
    revision : str, optional

    Returns
    -------
    LoadedModel

    Raises
    ------
    UnknownOptionError
        For an unknown precision.
    InvalidInputError
        For a quantization on a device that is not CUDA, or a model without a language-model head.
    MissingDependencyError
        For a quantization without bitsandbytes.
    ModelLoadError
        If the model's files cannot be read.
    """
    import torch

    dtype, quantization = split_precision(precision)
    dtype = check_dtype(dtype if dtype is not None else ("float16" if quantization else None))
    resolved = resolve_device(device)
    options = quantization_kwargs(quantization, resolved, dtype)
    key = (os.fspath(name), revision, resolved, precision)
    with _LMS_LOCK:
        if key in _WITH_HEAD:
            return _WITH_HEAD[key]
        source = resolve_model(name, revision)
        tokenizer = load_tokenizer(source)
        what = f"generation needs a causal language model; {source.name!r}"
        lm = _load_lm(source, getattr(torch, dtype), options, resolved, what)
        body = lm.base_model
        shape = anatomy(body)
        loaded = LoadedModel(
            source.name,
            body,
            tokenizer,
            resolved,
            shape.n_layers,
            shape.hidden_size,
            source=source,
            quantization=quantization,
        )
        _LMS[_key(loaded)] = lm
        _WITH_HEAD[key] = loaded
        return loaded


def causal_lm(loaded: LoadedModel) -> Any:
    """Return the model with its language-model head (loaded once per process; extraction loads it without).

    Parameters
    ----------
    loaded : LoadedModel
        A model with local files (from :func:`~fastprobe.model.load_model` or
        :func:`~fastprobe.model.load_weightless`): the head is loaded from the same files, device and dtype.

    Returns
    -------
    torch.nn.Module
        A transformers ``AutoModelForCausalLM`` in eval mode, on the model's device and in its dtype.

    Raises
    ------
    InvalidInputError
        If transformers has no causal language model for the architecture.
    ModelLoadError
        If the model's files cannot be read.
    """
    import torch

    dtype = next(loaded.model.parameters()).dtype
    source = loaded.source
    assert source is not None, "causal_lm needs a model with local files"
    key = _key(loaded)
    options = quantization_kwargs(loaded.quantization, loaded.device, str(dtype).removeprefix("torch."))
    with _LMS_LOCK:
        if key not in _LMS:
            what = f"perplexity needs a causal language model; {loaded.name!r} ({type(loaded.model).__name__})"
            _LMS[key] = _load_lm(source, dtype, options, loaded.device, what)
        lm = _LMS[key]
    assert isinstance(lm, torch.nn.Module)
    return lm
