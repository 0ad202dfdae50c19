"""Where a model comes from: a local directory or a Hugging Face Hub id, resolved to files on this machine.

:func:`resolve_model` turns what a user passes as ``model=`` (a Hub id such as ``"org/name"``, with an optional
``revision``, or a local directory) into a :class:`ModelSource`: the directory holding its files, and for a Hub
model the commit it resolved to. Every loader in fastprobe goes through :func:`from_pretrained` with that source, so
a Hub model is read from the local Hugging Face cache when offline (``HF_HUB_OFFLINE=1``) and downloaded into it
when online, as transformers does, and its fingerprint names the exact commit and weight files.
"""

from __future__ import annotations

from fastprobe.model.registry import clear_model_cache, register_model_cache
from fastprobe.model.source import ModelSource, from_pretrained, resolve_model, weights_digest

__all__ = [
    "ModelSource",
    "clear_model_cache",
    "from_pretrained",
    "register_model_cache",
    "resolve_model",
    "weights_digest",
]
