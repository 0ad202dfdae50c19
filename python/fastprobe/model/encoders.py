"""Sentence encoders (``sentence-transformers``), loaded once per process from this machine only."""

from __future__ import annotations

import os
from typing import Any

from fastprobe.exceptions import MissingDependencyError, ModelLoadError
from fastprobe.model.loading import resolve_device
from fastprobe.model.registry import register_model_cache

__all__ = ["sentence_encoder", "sentence_model_here"]

_ENCODERS: dict[tuple[str, str], Any] = register_model_cache({})


def sentence_model_here(name: str) -> bool:
    """Tell whether the sentence encoder is a local directory or in the local Hugging Face cache.

    Parameters
    ----------
    name : str
        A local directory or a Hub id.

    Returns
    -------
    bool
    """
    if os.path.isdir(name):
        return True
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # a malformed repository id
        return False


def sentence_encoder(name: str, device: str) -> Any:
    """Return a ``sentence_transformers.SentenceTransformer`` (loaded once per name and device, never downloaded).

    Parameters
    ----------
    name : str
        A local directory or a Hub id in the local Hugging Face cache.
    device : str
        See :func:`~fastprobe.model.resolve_device`.

    Returns
    -------
    sentence_transformers.SentenceTransformer

    Raises
    ------
    MissingDependencyError
        If sentence-transformers is not installed.
    ModelLoadError
        If the encoder is not on this machine.
    """
    try:
        import sentence_transformers
    except ImportError as err:
        raise MissingDependencyError(
            "sentence-transformers is required for method='sentence_transformers', and it is not installed; install "
            "it with: pip install sentence-transformers"
        ) from err
    if not sentence_model_here(name):
        raise ModelLoadError(
            f"method='sentence_transformers' needs the sentence encoder {name!r} on this machine (a local directory, "
            "or a model in the local Hugging Face cache); fastprobe does not download it. Pass model=<local "
            "directory> to use another encoder"
        )
    key = (name, resolve_device(device))
    if key not in _ENCODERS:
        _ENCODERS[key] = sentence_transformers.SentenceTransformer(name, device=key[1], local_files_only=True)
    return _ENCODERS[key]
