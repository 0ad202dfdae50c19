"""The activations to evaluate, read through the features API: one matrix per layer for a list of prompts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fastprobe import features
from fastprobe.model import anatomy
from fastprobe.sites import resolve_sites

__all__ = ["read_layers"]


def read_layers(
    model: Any,
    prompts: Sequence[str],
    layers: Any = "all",
    pooling: str = "last_token",
    *,
    device: str = "auto",
    dtype: str | None = None,
    batch_size: int = 8,
    interventions: Sequence[Any] = (),
) -> dict[Any, np.ndarray]:
    """Return ``{layer: (len(prompts), hidden) float32 array}``, extracting into the cache what it lacks.

    Parameters
    ----------
    model : str or path
        A Hub id or a local directory (:func:`fastprobe.model.load_model`).
    prompts : sequence of str
    layers : "all", int, site name or a sequence of them, default="all"
        Layers (block outputs) or sites (:mod:`fastprobe.sites`); keys of the result are the resolved ints for
        block outputs and site names for the others.
    pooling : str, default="last_token"
        A pooling of the store (``last_token``, ``mean``, ``first_token``, ``max``, ``min``).
    device, dtype, batch_size
        As for :class:`~fastprobe.Probe`.
    interventions : sequence, default=()
        Head or edge ablations; their activations are cached apart from the clean model's.
    """
    ctx = features.model_context(model, device, dtype, "local", False, None, interventions)
    body = anatomy(ctx.loaded.model)
    spec = range(body.n_layers) if isinstance(layers, str) and layers == "all" else layers
    sites = resolve_sites(spec, body.n_layers, body.n_heads)
    features.ensure_extracted(ctx, prompts, sites, batch_size, 0, features.reads(pooling))
    out: dict[Any, np.ndarray] = {}
    for site in sites:
        key: Any = site.layer if site.kind == "resid" else site.name
        out[key] = features.read_features(ctx, prompts, [site], pooling).X
    return out
