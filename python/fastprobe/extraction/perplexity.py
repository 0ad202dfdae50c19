"""Per-token perplexity of prompts under a causal language model, batched and cached.

A prompt's perplexity features are ``exp`` of the mean, the smallest and the largest cross-entropy of its predicted
tokens (token ``t`` predicted from tokens ``< t``; the first token is never predicted): lmprobe's
``[mean, min, max]`` perplexity features. They are computed in batches through the model with its language-model
head and cached in a store of their own next to the activations (one per model fingerprint, site ``"perplexity"``),
so :class:`~fastprobe.baselines.BaselineProbe` (``method="perplexity"``) and
:class:`~fastprobe.unified_cache.UnifiedCache` share them.

Positions count real tokens only, so padding (on either side) changes nothing: a prompt's features are those it
would get alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from fastprobe.exceptions import InvalidInputError
from fastprobe.model import accepts_kwarg, length_order, pad_batch, tokenize
from fastprobe.model import causal_lm as load_causal_lm
from fastprobe.store import model_store

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

#: Prompts per forward pass of the perplexity model.
PERPLEXITY_BATCH = 16
#: Prompts per record of the perplexity cache.
PERPLEXITY_RECORD = 64
#: The names of the three features, in column order.
PERPLEXITY_FEATURES: tuple[str, ...] = ("mean_perplexity", "min_perplexity", "max_perplexity")


class _ModelContext(Protocol):
    """What the perplexity functions read from a model's context: the loaded model and its fingerprint."""

    @property
    def loaded(self) -> Any: ...

    @property
    def fingerprint(self) -> dict[str, Any]: ...


def causal_lm(ctx: _ModelContext) -> Any:
    """Return the model with its language-model head (loaded once per process; extraction loads it without).

    Parameters
    ----------
    ctx : model context
        Anything with ``.loaded`` (a :class:`~fastprobe.model.LoadedModel` with local weights).

    Returns
    -------
    torch.nn.Module
        A transformers ``AutoModelForCausalLM`` in eval mode, on the context's device and in its dtype
        (:func:`fastprobe.model.causal_lm`).

    Raises
    ------
    InvalidInputError
        If transformers has no causal language model for the architecture.
    """
    return load_causal_lm(ctx.loaded)


def batch_logits(ctx: _ModelContext, batch: dict[str, Any]) -> Any:
    """Return the logits ``(B, S, V)`` of a padded batch: a local causal LM, or an nnsight trace on NDIF.

    Parameters
    ----------
    ctx : model context
    batch : dict of str to torch.Tensor
        ``input_ids``, ``attention_mask`` and (optionally) ``position_ids``, as :func:`fastprobe.model.pad_batch` gives.

    Returns
    -------
    torch.Tensor
    """
    loaded = ctx.loaded
    if loaded.remote:
        wrapper = loaded.tracer
        with wrapper.trace(**batch, use_cache=False, remote=True):
            saved = wrapper.output.save()
        out = getattr(saved, "value", saved)
        return out.logits if hasattr(out, "logits") else out[0]
    lm = causal_lm(ctx)
    if not accepts_kwarg(lm, "position_ids"):
        batch = {k: v for k, v in batch.items() if k != "position_ids"}
    batch = {k: v.to(loaded.device) for k, v in batch.items()}
    return lm(**batch, use_cache=False).logits


def perplexity_stats(logits: Any, input_ids: Any, attention_mask: Any) -> np.ndarray:
    """Return ``exp`` of the mean, smallest and largest per-token cross-entropy of each row of a padded batch.

    Parameters
    ----------
    logits : torch.Tensor of shape (B, S, V)
    input_ids : torch.Tensor of shape (B, S)
    attention_mask : torch.Tensor of shape (B, S)
        Nonzero on real tokens. A position counts when it and the position before it are real tokens.

    Returns
    -------
    numpy.ndarray of shape (B, 3), float64
    """
    import torch

    targets = input_ids[:, 1:].to(logits.device)
    mask = attention_mask.to(logits.device).bool()
    real = mask[:, 1:] & mask[:, :-1]  # a real token predicted from a real token
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].float().transpose(1, 2), targets, reduction="none")
    inf = torch.tensor(float("inf"), device=loss.device)
    count = real.sum(dim=1)
    mean = torch.where(real, loss, 0.0).sum(dim=1) / count
    low = torch.where(real, loss, inf).amin(dim=1)
    high = torch.where(real, loss, -inf).amax(dim=1)
    return np.asarray(torch.stack([mean, low, high], dim=1).double().exp().cpu().numpy())


def check_predictable(prompts: Sequence[str], rows: Sequence[dict[str, list[int]]]) -> None:
    """Refuse prompts of a single token: perplexity needs at least one predicted token.

    Parameters
    ----------
    prompts : sequence of str
    rows : sequence of dict
        Their tokenizations (:func:`fastprobe.model.tokenize`).

    Raises
    ------
    InvalidInputError
        Naming the first single-token prompt.
    """
    for prompt, row in zip(prompts, rows, strict=True):
        if len(row["input_ids"]) < 2:
            raise InvalidInputError(
                f"prompt {prompt!r} is a single token; perplexity needs at least two (the first token is never "
                "predicted)"
            )


def write_perplexity(store: Any, prompts: Sequence[str], stats: np.ndarray) -> None:
    """Write the ``(n, 3)`` perplexity features of ``prompts`` into a perplexity store, in float32 (one record).

    Parameters
    ----------
    store : fastprobe.store.ActivationStore
        From :func:`perplexity_store`.
    prompts : sequence of str
    stats : numpy.ndarray of shape (len(prompts), 3)
    """
    feats = np.asarray(stats, dtype=np.float32)[None]
    store.write(list(prompts), feats, np.ones(len(prompts), dtype=np.int64), [0], dtype="float32", keep_tokens=False)


def compute_perplexity(ctx: _ModelContext, prompts: list[str], store: Any) -> None:
    """Run the prompts through the causal LM in batches and write [mean, min, max] perplexity per prompt to ``store``.

    Prompts are batched by token length (:data:`PERPLEXITY_BATCH` a pass) and written every
    :data:`PERPLEXITY_RECORD` prompts.

    Parameters
    ----------
    ctx : model context
    prompts : list of str
    store : fastprobe.store.ActivationStore
        From :func:`perplexity_store`.

    Raises
    ------
    InvalidInputError
        If a prompt is a single token (nothing is predicted).
    """
    import torch
    from tqdm.auto import tqdm

    rows = tokenize(ctx.loaded, prompts)
    check_predictable(prompts, rows)
    order = length_order(prompts, rows)
    names: list[str] = []
    values: list[np.ndarray] = []

    def flush() -> None:
        if names:
            write_perplexity(store, names, np.concatenate(values))
            names.clear()
            values.clear()

    bar = tqdm(total=len(prompts), desc="perplexity", unit="prompt", dynamic_ncols=True)
    try:
        for start in range(0, len(order), PERPLEXITY_BATCH):
            idx = order[start : start + PERPLEXITY_BATCH]
            batch = pad_batch(ctx.loaded, [rows[i] for i in idx])
            batch.pop("token_type_ids", None)
            with torch.inference_mode():
                logits = batch_logits(ctx, batch)
                stats = perplexity_stats(logits, batch["input_ids"], batch["attention_mask"])
            names.extend(prompts[i] for i in idx)
            values.append(stats)
            bar.update(len(idx))
            if len(names) >= PERPLEXITY_RECORD:
                flush()
        flush()
    finally:
        bar.close()


def perplexity_store(ctx: _ModelContext) -> Any:
    """Return the cache's perplexity store of the context's model (its fingerprint, site ``"perplexity"``).

    Parameters
    ----------
    ctx : model context

    Returns
    -------
    fastprobe.store.ActivationStore
        Site 0 holds each prompt's three features as one float32 row.
    """
    return model_store({**ctx.fingerprint, "site": "perplexity"})


def perplexity_features(ctx: _ModelContext, prompts: Sequence[str]) -> np.ndarray:
    """[mean, min, max] per-token perplexity of each prompt, through the cache (computed once per prompt and model).

    Parameters
    ----------
    ctx : model context
        The model's context (``.loaded``, ``.fingerprint``).
    prompts : sequence of str

    Returns
    -------
    numpy.ndarray of shape (n_prompts, 3), float64
        ``exp`` of the mean, the smallest and the largest per-token cross-entropy over the prompt's predicted tokens.
    """
    store = perplexity_store(ctx)
    unique = list(dict.fromkeys(prompts))
    missing = [p for p, have in zip(unique, store.contains(unique, [0]), strict=True) if not have]
    if missing:
        compute_perplexity(ctx, missing, store)
    return np.asarray(store.read_pooled(list(prompts), [0], "last_token"), dtype=np.float64)
