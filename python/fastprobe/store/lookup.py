"""What the activation cache holds, by model name: listings, and lmprobe's per-layer reads of cached activations."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastprobe.exceptions import MissingActivationsError
from fastprobe.store.activation_store import ActivationStore
from fastprobe.store.cache import SIDECAR_SITES, activation_dirs, model_dirs, open_store
from fastprobe.store.pooling import POOLED_VECTORS

__all__ = [
    "CachedPromptInfo",
    "ManifestEntry",
    "discover_cached",
    "list_cached_prompts",
    "load_layer_across_prompts",
    "load_layer_last_token",
]


@dataclass
class ManifestEntry:
    """A cached prompt."""

    hash: str
    prompt: str
    num_tokens: int | None
    cached_at: str


@dataclass
class CachedPromptInfo:
    """What is cached for one prompt."""

    raw_layers: list[int]
    pooled: dict[str, list[int]]
    has_logits: bool
    logits_top_k: int | None
    has_perplexity: bool
    has_token_perplexity: bool
    num_tokens: int | None
    router_layers: list[int] = field(default_factory=list)


def list_cached_prompts(model_name: str, verify: bool = False) -> list[ManifestEntry]:
    """List the prompts cached for a model (across its fingerprints), sorted by prompt.

    Parameters
    ----------
    model_name : str
        The model id or path recorded in the fingerprint.
    verify : bool, default=False
        Check every record's integrity first; prompts in damaged records are left out.

    Returns
    -------
    list of ManifestEntry
    """
    seen: dict[str, ManifestEntry] = {}
    for d, _ in activation_dirs(model_name):
        store = open_store(d)
        if verify and store.verify():
            continue
        stamp = (d / "index.fpi").stat().st_mtime if (d / "index.fpi").exists() else 0.0
        for prompt, sites, tokens in store.prompts():
            if prompt not in seen and sites:
                seen[prompt] = ManifestEntry(
                    hash=hashlib.sha256(prompt.encode()).hexdigest(),
                    prompt=prompt,
                    num_tokens=tokens,
                    cached_at=_iso(stamp),
                )
    return [seen[p] for p in sorted(seen)]


def _iso(ts: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc).isoformat()


def discover_cached(model_name: str, prompt: str) -> CachedPromptInfo | None:
    """Describe what is cached for one prompt of a model, without reading activations.

    Parameters
    ----------
    model_name : str
    prompt : str

    Returns
    -------
    CachedPromptInfo or None
        None when nothing is cached for the prompt.
    """
    sites: set[int] = set()
    pooled: dict[str, set[int]] = {p: set() for p in POOLED_VECTORS}
    num_tokens = None
    extras: dict[str, Any] = {}
    for d, fp in model_dirs(model_name):
        store = open_store(d)
        held = [(s, t) for p, s, t in store.prompts() if p == prompt]
        if not held:
            continue
        if fp.get("site") in SIDECAR_SITES:
            extras[str(fp["site"])] = fp.get("top_k")
            continue
        sites.update(held[0][0])
        num_tokens = held[0][1]
        for p in POOLED_VECTORS:  # a last-token-only record (a pulled pooled dataset) holds no mean or first token
            pooled[p].update(s for s in held[0][0] if store.contains([prompt], [s], pooling=p)[0])
    if not sites:
        return None
    layers = sorted(sites)
    return CachedPromptInfo(
        raw_layers=layers,
        pooled={p: sorted(pooled[p]) for p in POOLED_VECTORS},
        has_logits="logits" in extras,
        logits_top_k=extras.get("logits"),
        has_perplexity="perplexity" in extras,
        has_token_perplexity=False,
        num_tokens=num_tokens,
    )


def _stores_holding(model_name: str, prompts: list[str], layer: int) -> list[ActivationStore]:
    """Return the stores of ``model_name`` (newest first) that hold every prompt's tokens at ``layer``."""
    out = []
    for d, _ in sorted(activation_dirs(model_name), key=lambda x: -x[0].stat().st_mtime):
        store = open_store(d)
        if prompts and bool(np.all(store.contains(prompts, [layer], tokens=True))):
            out.append(store)
    return out


def load_layer_across_prompts(model_name: str, prompts: Sequence[str], layer: int) -> tuple[list[Any], list[Any]]:
    """Read one layer's cached token activations of each prompt, as lmprobe's per-prompt tensors.

    Parameters
    ----------
    model_name : str
        The model id or path the activations were cached under.
    prompts : sequence of str
    layer : int
        The layer (the output of decoder block ``layer``).

    Returns
    -------
    activations : list of torch.Tensor
        One ``(1, n_tokens, hidden_size)`` float32 tensor per prompt: its real tokens only (no padding).
    masks : list of torch.Tensor
        One ``(1, n_tokens)`` int64 tensor of ones per prompt.

    Raises
    ------
    MissingActivationsError
        If some prompt's tokens at that layer are not cached for the model (also a :class:`KeyError`; the message
        says "No cached activations").
    """
    import torch

    wanted = list(prompts)
    stores = _stores_holding(model_name, wanted, layer)
    if not stores:
        raise MissingActivationsError(
            f"No cached activations with tokens for model {model_name!r} at layer {layer} for all "
            f"{len(wanted)} prompts; extract them first (e.g. with Probe.warmup, keeping tokens)"
        )
    values, offsets = stores[0].read_tokens(wanted, [layer])
    acts, masks = [], []
    for i in range(len(wanted)):
        rows = torch.from_numpy(np.array(values[offsets[i] : offsets[i + 1]], dtype=np.float32))
        acts.append(rows.unsqueeze(0))
        masks.append(torch.ones(1, rows.shape[0], dtype=torch.int64))
    return acts, masks


def load_layer_last_token(model_name: str, prompts: Sequence[str], layer: int) -> Any:
    """Read one layer's cached last-token activation of each prompt.

    Parameters
    ----------
    model_name : str
    prompts : sequence of str
    layer : int

    Returns
    -------
    torch.Tensor of shape (n_prompts, hidden_size), float32

    Raises
    ------
    MissingActivationsError
        If some prompt is not cached at that layer for the model ("No cached pooled ...").
    """
    import torch

    wanted = list(prompts)
    for d, _ in sorted(activation_dirs(model_name), key=lambda x: -x[0].stat().st_mtime):
        store = open_store(d)
        if wanted and bool(np.all(store.contains(wanted, [layer], pooling="last_token"))):
            return torch.from_numpy(np.asarray(store.read_pooled(wanted, [layer], "last_token"), dtype=np.float32))
    raise MissingActivationsError(
        f"No cached pooled (last-token) activations for model {model_name!r} at layer {layer} for all {len(wanted)} "
        "prompts; extract them first (e.g. with Probe.warmup)"
    )
