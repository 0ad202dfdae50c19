"""Extraction: run a Hugging Face model over prompts and pool the outputs of chosen decoder blocks.

Forward hooks on the requested blocks capture each block's output; the forward pass stops right after the deepest
requested block (no later block, no language-model head, no KV cache). Prompts are batched in order of token length
to keep padding small, and each batch is pooled in the Rust core as soon as it completes, so memory stays bounded by
one batch plus the pooled result.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastprobe.exceptions import FastprobeError, InvalidInputError, UnknownOptionError
from fastprobe.pooling import pool
from fastprobe.store import ActivationStore

__all__ = [
    "LoadedModel",
    "decoder_blocks",
    "extract_pooled",
    "extract_to_store",
    "load_model",
    "model_fingerprint",
    "resolve_device",
]

#: Attribute paths searched, in order, for a model's list of decoder (or encoder) blocks.
BLOCK_PATHS: tuple[str, ...] = (
    "model.layers",
    "model.language_model.layers",
    "model.decoder.layers",
    "transformer.h",
    "gpt_neox.layers",
    "layers",
    "language_model.layers",
    "decoder.layers",
    "h",
    "encoder.layer",
    "bert.encoder.layer",
)


def _get_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def decoder_blocks(model: Any) -> Any:
    """Return the ``torch.nn.ModuleList`` of a model's transformer blocks.

    Parameters
    ----------
    model : torch.nn.Module
        A Hugging Face model, with or without its language-model head.

    Returns
    -------
    torch.nn.ModuleList

    Raises
    ------
    FastprobeError
        If none of :data:`BLOCK_PATHS` holds a module list; the message names every path tried.
    """
    import torch

    for path in BLOCK_PATHS:
        blocks = _get_path(model, path)
        if isinstance(blocks, torch.nn.ModuleList) and len(blocks) > 0:
            return blocks
    raise FastprobeError(
        f"cannot find the transformer blocks of {type(model).__name__}: looked for a ModuleList at "
        + ", ".join(BLOCK_PATHS)
    )


def resolve_device(device: str) -> str:
    """Resolve ``"auto"`` to ``"cuda"`` when a GPU is present, else ``"mps"`` when available, else ``"cpu"``.

    Parameters
    ----------
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Returns
    -------
    str
    """
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for extraction.

    Attributes
    ----------
    name : str
        The model id or path it was loaded from.
    model : torch.nn.Module
        The model, in eval mode, without gradients.
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer, with a pad token.
    device : str
        Where the model runs.
    n_layers : int
        The number of transformer blocks.
    hidden_size : int
        The width of a block's output.
    """

    name: str
    model: Any
    tokenizer: Any
    device: str
    n_layers: int
    hidden_size: int


_MODELS: dict[tuple[str, str, str], LoadedModel] = {}
_MODELS_LOCK = threading.Lock()
_DTYPES = ("float32", "float16", "bfloat16")


def load_model(name: str | os.PathLike[str], *, device: str = "auto", dtype: str | None = None) -> LoadedModel:
    """Load (once per process) a model and its tokenizer for extraction.

    The model is loaded without its language-model head (``AutoModel``): extraction never needs logits.

    Parameters
    ----------
    name : str or path-like
        A local directory (or a Hub id available in the local Hugging Face cache).
    device : str, default="auto"
        See :func:`resolve_device`.
    dtype : {"float32", "float16", "bfloat16"}, optional
        The model's compute dtype; None means float32.

    Returns
    -------
    LoadedModel

    Raises
    ------
    FastprobeError
        If the path does not exist, or the dtype is not one of the accepted names.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    key_dtype = dtype or "float32"
    if key_dtype not in _DTYPES:
        raise FastprobeError(f"unknown dtype {dtype!r}; expected one of: {', '.join(_DTYPES)} (or None for float32)")
    resolved = resolve_device(device)
    key = (os.fspath(name), resolved, key_dtype)
    with _MODELS_LOCK:
        if key in _MODELS:
            return _MODELS[key]
        path = os.fspath(name)
        if (os.sep in path or path.startswith(".")) and not os.path.isdir(path):
            raise FastprobeError(f"model path {path!r} does not exist or is not a directory")
        tokenizer = AutoTokenizer.from_pretrained(path)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModel.from_pretrained(path, dtype=getattr(torch, key_dtype))
        model.to(resolved)
        model.eval()
        model.requires_grad_(False)
        blocks = decoder_blocks(model)
        hidden = int(getattr(model.config, "hidden_size", 0) or getattr(model.config, "n_embd", 0))
        loaded = LoadedModel(path, model, tokenizer, resolved, len(blocks), hidden)
        _MODELS[key] = loaded
        return loaded


def _weights_digest(path: str) -> str | None:
    """SHA-256 over each weight file's name, size and first and last MiB (cheap, and changes with the weights)."""
    import hashlib

    if not os.path.isdir(path):
        return None
    h = hashlib.sha256()
    names = sorted(n for n in os.listdir(path) if n.endswith((".safetensors", ".bin", ".pt", ".gguf")))
    for name in names:
        full = os.path.join(path, name)
        size = os.path.getsize(full)
        h.update(f"{name}:{size}:".encode())
        with open(full, "rb") as f:
            h.update(f.read(1 << 20))
            if size > 2 << 20:
                f.seek(-(1 << 20), os.SEEK_END)
                h.update(f.read(1 << 20))
    return "sha256:" + h.hexdigest() if names else None


def model_fingerprint(loaded: LoadedModel, site: str = "residual") -> dict[str, Any]:
    """Describe everything that changes a model's activations, as the key of its activation store.

    Parameters
    ----------
    loaded : LoadedModel
        From :func:`load_model`.
    site : str, default="residual"
        The hook site scheme (``"residual"``: site ``i`` is the output of block ``i``).

    Returns
    -------
    dict
        ``model`` (id or path), ``revision`` (the Hub commit when known), ``weights`` (a digest of the local weight
        files), ``dtype``, ``tokenizer`` (class, padding side, special tokens, vocabulary size) and ``site``.
    """
    tok = loaded.tokenizer
    config = loaded.model.config
    return {
        "model": loaded.name,
        "revision": getattr(config, "_commit_hash", None),
        "weights": _weights_digest(loaded.name),
        "dtype": str(next(loaded.model.parameters()).dtype).removeprefix("torch."),
        "architecture": type(loaded.model).__name__,
        "tokenizer": {
            "class": type(tok).__name__,
            "padding_side": tok.padding_side,
            "vocab_size": len(tok),
            "special_tokens": {k: str(v) for k, v in sorted(tok.special_tokens_map.items())},
            "add_bos": bool(getattr(tok, "add_bos_token", False)),
        },
        "site": site,
    }


class _StopForward(Exception):
    """Raised by the deepest hook to end the forward pass early."""


def _block_output(output: Any) -> Any:
    return output[0] if isinstance(output, (tuple, list)) else output


def extract_pooled(
    loaded: LoadedModel,
    prompts: Sequence[str],
    layers: Sequence[int],
    poolings: Sequence[str] = ("last_token",),
    *,
    batch_size: int = 8,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Run the model over ``prompts`` and pool the outputs of ``layers``.

    Parameters
    ----------
    loaded : LoadedModel
        From :func:`load_model`.
    prompts : sequence of str
        Non-empty strings.
    layers : sequence of int
        Block indices (already resolved, non-negative); features are concatenated in ascending layer order.
    poolings : sequence of str, default=("last_token",)
        The poolings to compute from the same forward pass.
    batch_size : int, default=8
        Prompts per forward pass.
    progress : bool, default=True
        Show a progress bar (prompts/s and tokens/s).

    Returns
    -------
    dict of str to numpy.ndarray
        For each pooling, a float32 array of shape ``(len(prompts), len(layers) * hidden_size)`` in input order.

    Raises
    ------
    InvalidInputError
        If ``prompts`` is empty or holds an empty or non-string entry, or ``batch_size`` is not positive.
    """
    width = len(set(layers)) * loaded.hidden_size
    out = {p: np.empty((len(prompts), width), dtype=np.float32) for p in poolings}
    for idx, captured, mask in _forward_batches(loaded, prompts, layers, batch_size, progress):
        for j, layer in enumerate(sorted(captured)):
            for p in poolings:
                out[p][idx, j * loaded.hidden_size : (j + 1) * loaded.hidden_size] = pool(captured[layer], mask, p)
    return out


def extract_to_store(
    loaded: LoadedModel,
    prompts: Sequence[str],
    layers: Sequence[int],
    store: ActivationStore,
    *,
    batch_size: int = 8,
    progress: bool = True,
    order: str = "text",
    record_prompts: int = 64,
) -> int:
    """Run the model over the prompts not yet in ``store`` and write every token of ``layers`` into it.

    Batches are written (atomically, without padding, with their pooled vectors) as soon as ``record_prompts``
    prompts have completed: larger records compress better (shared prompt prefixes land in one record). A killed
    process loses at most the prompts not yet written; everything written stays.

    Parameters
    ----------
    loaded : LoadedModel
        From :func:`load_model`.
    prompts : sequence of str
        Prompts; those already stored at every one of ``layers`` are skipped.
    layers : sequence of int
        Block indices (resolved, non-negative); layer ``i`` is stored as site ``i``.
    store : ActivationStore
        Where to write.
    batch_size : int, default=8
        Prompts per forward pass.
    progress : bool, default=True
        Show a progress bar.
    order : {"text", "length"}, default="text"
        How prompts are grouped into batches (and so into stored records). ``"text"`` keeps prompts that share a
        prefix together, so the activations of the shared tokens (identical in a causal model) compress to one
        copy: on the cities statements the store is about 13% smaller than with ``"length"``, which pads less
        (about 20% fewer forward-pass tokens) but splits such prompts apart.
    record_prompts : int, default=64
        Prompts per stored record (and per atomic write): at least ``batch_size``.

    Returns
    -------
    int
        The number of prompts extracted.
    """
    _check_prompts(prompts)
    sites = sorted(set(layers))
    unique = list(dict.fromkeys(prompts))
    missing = [p for p, have in zip(unique, store.contains(unique, sites), strict=True) if not have]
    if not missing:
        return 0
    names: list[str] = []
    slabs: list[np.ndarray] = []
    counts: list[np.ndarray] = []

    def flush() -> None:
        if names:
            store.write(names, np.concatenate(slabs, axis=1), np.concatenate(counts), sites)
            names.clear()
            slabs.clear()
            counts.clear()

    for idx, captured, mask in _forward_batches(loaded, missing, sites, batch_size, progress, order):
        m = mask.numpy().astype(bool)
        slabs.append(np.stack([captured[s].float().cpu().numpy()[m] for s in sites]))
        counts.append(m.sum(axis=1))
        names.extend(missing[i] for i in idx)
        if len(names) >= record_prompts:
            flush()
    flush()
    return len(missing)


def _check_prompts(prompts: Sequence[str]) -> None:
    if isinstance(prompts, str):
        raise InvalidInputError("prompts must be a sequence of strings, not a single string")
    if len(prompts) == 0:
        raise InvalidInputError("prompts is empty; give at least one prompt")
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p:
            raise InvalidInputError(f"prompt {i} must be a non-empty string; got {p!r}")


def _forward_batches(
    loaded: LoadedModel,
    prompts: Sequence[str],
    layers: Sequence[int],
    batch_size: int,
    progress: bool,
    order: str = "length",
) -> Iterator[tuple[np.ndarray, dict[int, Any], Any]]:
    """Yield ``(prompt indices, {layer: (B, S, H) output}, attention mask)`` per batch.

    ``order="length"`` batches prompts of similar token length together (least padding); ``order="text"`` batches
    them in text order, so prompts that share a prefix (and so share the activations of its tokens) land together.
    """
    import torch
    from tqdm.auto import tqdm

    _check_prompts(prompts)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive int; got {batch_size!r}")
    layers = sorted(set(layers))
    blocks = decoder_blocks(loaded.model)
    tok = loaded.tokenizer
    if order == "length":
        lengths = [len(ids) for ids in tok(list(prompts))["input_ids"]]
        order_idx = np.argsort(lengths, kind="stable")
    elif order == "text":
        order_idx = np.array(sorted(range(len(prompts)), key=lambda i: prompts[i]), dtype=np.int64)
    else:
        raise UnknownOptionError(f"unknown batch order {order!r}; expected one of: length, text")
    captured: dict[int, Any] = {}
    deepest = layers[-1]

    def make_hook(layer: int) -> Any:
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            captured[layer] = _block_output(output)
            if layer == deepest:
                raise _StopForward

        return hook

    handles = [blocks[i].register_forward_hook(make_hook(i)) for i in layers]
    bar = tqdm(total=len(prompts), desc="extracting", unit="prompt", disable=not progress, dynamic_ncols=True)
    tokens_done = 0
    try:
        for start in range(0, len(prompts), batch_size):
            idx = order_idx[start : start + batch_size]
            batch = tok([prompts[i] for i in idx], return_tensors="pt", padding=True)
            # Positions count real tokens only, so a left-padded prompt sees the same positions as it would alone.
            batch["position_ids"] = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
            batch = {k: v.to(loaded.device) for k, v in batch.items()}
            captured.clear()
            with torch.inference_mode():
                try:
                    loaded.model(**batch, use_cache=False)
                except _StopForward:
                    pass
            mask = batch["attention_mask"].cpu()
            yield idx, dict(captured), mask
            tokens_done += int(mask.sum())
            bar.update(len(idx))
            elapsed = bar.format_dict.get("elapsed") or 0.0
            if elapsed > 0:
                bar.set_postfix(tokens_per_s=f"{tokens_done / elapsed:,.0f}", refresh=False)
    finally:
        for h in handles:
            h.remove()
        bar.close()
