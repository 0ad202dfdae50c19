"""The weightless model: configuration, tokenizer and a meta-device skeleton, enough for a fingerprint, no weights."""

from __future__ import annotations

import os
import threading
from typing import Any

from fastprobe.model.architectures import anatomy
from fastprobe.model.fingerprint import fingerprint_of
from fastprobe.model.loading import LoadedModel, load_tokenizer, resolve_device
from fastprobe.model.registry import register_model_cache
from fastprobe.model.source import from_pretrained, resolve_model, weights_digest

__all__ = ["load_weightless"]

_LIGHT: dict[tuple[str, str | None, str, str], LoadedModel | None] = register_model_cache({})
_LIGHT_LOCK = threading.Lock()


def load_weightless(model: Any, device: str, backend: str, revision: str | None = None) -> LoadedModel | None:
    """Return the model with a weightless (meta-device) skeleton: its fingerprint is the loaded model's, no weights.

    Everything :func:`~fastprobe.model.model_fingerprint` reads (configuration, tokenizer, weight files, dtype,
    architecture) is there, so the fingerprint and the store are those of the loaded model; only a forward pass is
    impossible. Memoized per process (cleared by :func:`~fastprobe.model.clear_model_cache`), as is its fingerprint
    (:func:`~fastprobe.model.fingerprint_of`, computed here).

    Parameters
    ----------
    model : str or path-like
        A Hub id or a local directory.
    device : str
        The device the full model would run on (``"auto"`` resolved by :func:`~fastprobe.model.resolve_device`).
    backend : str
        The backend the full model would use.
    revision : str, optional
        The Hub revision.

    Returns
    -------
    LoadedModel or None
        None when the model's files are not on this machine yet (a Hub model whose weights were never downloaded)
        or it cannot be described this way: the full load then says what is wrong.
    """
    key = (os.fspath(model), revision, resolve_device(device), backend)
    with _LIGHT_LOCK:
        if key not in _LIGHT:
            _LIGHT[key] = None
            try:
                _LIGHT[key] = _skeleton(model, revision, key[2], backend)
            except Exception:  # anything unusual: the full load will say what is wrong
                pass
        return _LIGHT[key]


def _skeleton(model: Any, revision: str | None, device: str, backend: str) -> LoadedModel | None:
    import torch
    from transformers import AutoConfig, AutoModel

    source = resolve_model(model, revision)
    if weights_digest(source.path) is None:
        return None
    tokenizer = load_tokenizer(source)
    config = from_pretrained(AutoConfig, source)
    with torch.device("meta"):
        skeleton = AutoModel.from_config(config, dtype=torch.float32)
    body = anatomy(skeleton)
    loaded = LoadedModel(
        source.name, skeleton, tokenizer, device, body.n_layers, body.hidden_size, backend, source=source
    )
    fingerprint_of(loaded)  # computed here, so a model that cannot be described gives None
    return loaded
