"""Extraction: run a Hugging Face model over prompts and pool the outputs of chosen decoder blocks.

Forward hooks on the requested blocks capture each block's output; the forward pass stops right after the deepest
requested block (no later block, no language-model head, no KV cache). Prompts are batched in order of token length
to keep padding small, and each batch is pooled in the Rust core as soon as it completes, so memory stays bounded by
one batch plus the pooled result.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastprobe.architectures import Anatomy, anatomy, decoder_blocks
from fastprobe.exceptions import FastprobeError, InvalidInputError, UnknownOptionError
from fastprobe.model import ModelSource, from_pretrained, register_model_cache, resolve_model, weights_digest
from fastprobe.pooling import pool
from fastprobe.sites import Site, SiteSpec, resolve_sites
from fastprobe.store import ActivationStore, required_content
from fastprobe.store import logger as cache_log

__all__ = [
    "BACKENDS",
    "MODEL_DTYPES",
    "LoadedModel",
    "check_dtype",
    "decoder_blocks",
    "extract_pooled",
    "extract_to_store",
    "load_model",
    "model_fingerprint",
    "resolve_device",
    "tokenize",
]


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
    backend : {"local", "nnsight"}
        How forward passes run: transformers with forward hooks, or an nnsight trace.
    remote : bool
        Whether nnsight traces run on NDIF instead of this machine.
    tracer : nnsight.NNsight or nnsight.LanguageModel or None
        The nnsight wrapper (``backend="nnsight"`` only).
    source : ModelSource or None
        Where its files are (the directory, or the Hub snapshot and commit); None for a model hosted on NDIF.
    """

    name: str
    model: Any
    tokenizer: Any
    device: str
    n_layers: int
    hidden_size: int
    backend: str = "local"
    remote: bool = False
    tracer: Any = None
    source: ModelSource | None = None


_MODELS: dict[tuple[str, str | None, str, str, str], LoadedModel] = {}
register_model_cache(_MODELS)
BACKENDS: tuple[str, ...] = ("local", "nnsight")
_MODELS_LOCK = threading.Lock()
#: Compute dtypes a model can be loaded in (a ``torch.dtype`` of these is accepted too).
MODEL_DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16")


def check_dtype(dtype: Any) -> str:
    """Return a model dtype's name (None is float32; a ``torch.dtype`` gives its name).

    Parameters
    ----------
    dtype : str, torch.dtype or None

    Returns
    -------
    str
        One of :data:`MODEL_DTYPES`.

    Raises
    ------
    UnknownOptionError
        For anything else; the message lists the accepted names.
    """
    name = "float32" if dtype is None else str(dtype).removeprefix("torch.")
    if name not in MODEL_DTYPES:
        raise UnknownOptionError(
            f"Unknown dtype {dtype!r}; expected one of: {', '.join(MODEL_DTYPES)} (or None for float32)"
        )
    return name


def load_model(
    name: str | os.PathLike[str],
    *,
    device: str = "auto",
    dtype: str | None = None,
    backend: str = "local",
    remote: bool = False,
    revision: str | None = None,
) -> LoadedModel:
    """Load (once per process) a model and its tokenizer for extraction.

    The model is loaded without its language-model head (``AutoModel``): extraction never needs logits.

    Parameters
    ----------
    name : str or path-like
        A Hugging Face Hub id (``"org/name"``), read from the local Hugging Face cache when offline
        (``HF_HUB_OFFLINE=1``) and downloaded into it otherwise, or a local directory; see
        :func:`fastprobe.model.resolve_model`.
    device : str, default="auto"
        See :func:`resolve_device`.
    dtype : {"float32", "float16", "bfloat16"} or torch.dtype, optional
        The model's compute dtype; None means float32.
    backend : {"local", "nnsight"}, default="local"
        ``"local"`` runs transformers with forward hooks. ``"nnsight"`` runs the same model through nnsight traces
        (``nnsight.NNsight``), saving the same modules' inputs and outputs and stopping after the last one.
    remote : bool, default=False
        Run the nnsight traces on NDIF (``backend="nnsight"`` only; needs ``NDIF_API_KEY`` in the environment and a
        Hub model id). No weights are loaded here: only the configuration and tokenizer.
    revision : str, optional
        The Hub revision (branch, tag or commit) of a Hub id; None is the default branch. The configuration,
        tokenizer and weights all come from the commit it resolves to.

    Returns
    -------
    LoadedModel

    Raises
    ------
    ModelLoadError
        If the model is neither a local directory nor a Hub model transformers can find (offline: in the local
        cache), or its files cannot be loaded. Also an :class:`OSError`.
    FastprobeError
        If the dtype is not one of the accepted names, nnsight is missing for ``backend="nnsight"``, or
        ``remote=True`` lacks ``NDIF_API_KEY`` or names a local path.
    UnknownOptionError
        If ``backend`` is not one of :data:`BACKENDS`.
    InvalidInputError
        If ``remote=True`` is given without ``backend="nnsight"``, or ``revision`` with a local directory.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    key_dtype = check_dtype(dtype)
    if backend not in BACKENDS:
        raise UnknownOptionError(f"unknown backend {backend!r}; expected one of: {', '.join(BACKENDS)}")
    if remote and backend != "nnsight":
        raise InvalidInputError(f"remote=True runs on NDIF through nnsight; pass backend='nnsight' (got {backend!r})")
    if remote:
        return _load_remote(os.fspath(name))
    resolved = resolve_device(device)
    key = (os.fspath(name), revision, resolved, key_dtype, backend)
    with _MODELS_LOCK:
        if key in _MODELS:
            return _MODELS[key]
        source = resolve_model(name, revision)
        tracer = _nnsight().NNsight if backend == "nnsight" else None
        tokenizer = from_pretrained(AutoTokenizer, source)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = from_pretrained(AutoModel, source, dtype=getattr(torch, key_dtype))
        model.to(resolved)
        model.eval()
        model.requires_grad_(False)
        body = anatomy(model)
        wrapper = None
        if tracer is not None:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*which nnsight already serves on every module")
                wrapper = tracer(model)
        loaded = LoadedModel(
            source.name, model, tokenizer, resolved, body.n_layers, body.hidden_size, backend, False, wrapper, source
        )
        _MODELS[key] = loaded
        return loaded


def _nnsight() -> Any:
    try:
        import nnsight
    except ImportError as err:
        raise FastprobeError(
            "backend='nnsight' needs the nnsight package; install it with: pip install 'fastprobe[nnsight]'"
        ) from err
    return nnsight


def _load_remote(name: str) -> LoadedModel:
    """Build an NDIF stub: nnsight's ``LanguageModel`` on the meta device (configuration and tokenizer only)."""
    nnsight = _nnsight()
    key = os.environ.get("NDIF_API_KEY")
    if not key:
        raise FastprobeError(
            "remote=True needs an NDIF API key in the NDIF_API_KEY environment variable (get one at "
            "https://login.ndif.us)"
        )
    if os.path.exists(name):
        raise FastprobeError(
            f"remote=True runs a model hosted on NDIF, named by its Hugging Face Hub id; {name!r} is a local path"
        )
    nnsight.CONFIG.API.APIKEY = key
    stub = nnsight.LanguageModel(name, dispatch=False)
    model = stub._model
    tokenizer = stub.tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    body = anatomy(model)
    return LoadedModel(name, model, tokenizer, "remote", body.n_layers, body.hidden_size, "nnsight", True, stub)


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
        ``model`` (id or path), ``revision`` (the Hub commit the model resolved to, when it is a Hub model),
        ``weights`` (a digest of the weight files: the local directory's, or the Hub snapshot's), ``dtype``,
        ``tokenizer`` (class, padding side, special tokens, vocabulary size) and ``site``. Two revisions of a Hub
        model never share a fingerprint.
    """
    tok = loaded.tokenizer
    config = loaded.model.config
    source = loaded.source
    return {
        "model": loaded.name,
        "revision": source.commit if source is not None and source.hub else getattr(config, "_commit_hash", None),
        "weights": weights_digest(source.path) if source is not None else None,
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
    """Raised by the last hook a batch needs, to end the forward pass early."""


def _first(output: Any) -> Any:
    return output[0] if isinstance(output, (tuple, list)) else output


def _oom_errors() -> tuple[type[BaseException], ...]:
    import torch

    return (getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError),)


class _Batch:
    """One forward pass's captures, turned into site activations on demand.

    Head sites are computed from the attention projection's input only where asked: at one position per prompt
    (:meth:`at`), at the real tokens (:meth:`tokens`) or everywhere (:meth:`full`).
    """

    def __init__(self, idx: np.ndarray, mask: Any, captured: dict[tuple[str, int], Any], body: Anatomy) -> None:
        self.idx = idx
        self.mask = mask  # (B, S) bool, on the model's device
        self._captured = captured
        self._body = body
        self._heads: dict[int, Any] = {}

    def _head_weight(self, site: Site) -> Any:
        if site.layer not in self._heads:
            self._heads[site.layer] = self._body.head_weights(site.layer)
        return self._heads[site.layer][site.head]

    def _get(self, key: tuple[str, int]) -> Any:
        x = self._captured[key]
        # Some blocks (OPT's MLP) flatten the batch and sequence dimensions.
        return x.reshape(*self.mask.shape, -1) if x.ndim == 2 else x

    def _source(self, site: Site) -> Any:
        if site.kind == "head":
            x = self._get(("proj_in", site.layer))
            width = x.shape[-1] // (self._body.n_heads or 1)
            return x[..., site.head * width : (site.head + 1) * width]
        key = {"resid": "resid", "embed": "embed", "attn": "proj_out", "mlp": "mlp"}[site.kind]
        return self._get((key, site.layer))

    def _finish(self, site: Site, rows: Any) -> Any:
        if site.kind == "head":
            w = self._head_weight(site)
            return rows.to(w.dtype) @ w
        return rows

    def full(self, site: Site) -> Any:
        """``(B, S, hidden)`` at every position (padding included)."""
        return self._finish(site, self._source(site))

    def at(self, site: Site, positions: Any) -> Any:
        """``(B, hidden)``: each prompt's row at ``positions[b]``."""
        import torch

        src = self._source(site)
        rows = src[torch.arange(src.shape[0], device=src.device), positions.to(src.device)]
        return self._finish(site, rows)

    def tokens(self, site: Site) -> Any:
        """``(real tokens, hidden)``: prompt 0's real tokens, then prompt 1's, ... (padding dropped)."""
        return self._finish(site, self._source(site)[self.mask])


def extract_pooled(
    loaded: LoadedModel,
    prompts: Sequence[str],
    sites: SiteSpec | Sequence[SiteSpec],
    poolings: Sequence[str] = ("last_token",),
    *,
    batch_size: int = 8,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Run the model over ``prompts`` and pool the activations at ``sites``.

    Parameters
    ----------
    loaded : LoadedModel
        From :func:`load_model`.
    prompts : sequence of str
        Non-empty strings.
    sites : int, str or a sequence of them
        Layers (block outputs; negative counts from the end) or site names (:mod:`fastprobe.sites`); features are
        concatenated in forward-pass order (:func:`fastprobe.sites.resolve_sites`).
    poolings : sequence of str, default=("last_token",)
        The poolings to compute from the same forward pass. With only ``"last_token"`` / ``"first_token"``, head
        sites are computed at that one position per prompt.
    batch_size : int, default=8
        Prompts per forward pass (halved on a CUDA out-of-memory error).
    progress : bool, default=True
        Show a progress bar (prompts/s and tokens/s).

    Returns
    -------
    dict of str to numpy.ndarray
        For each pooling, a float32 array of shape ``(len(prompts), len(sites) * hidden_size)`` in input order.

    Raises
    ------
    InvalidInputError
        If ``prompts`` is empty or holds an empty or non-string entry, a prompt is longer than the model's context,
        ``batch_size`` is not positive, or a site is out of range.
    UnknownOptionError
        If a site name or pooling is unknown.
    """
    from fastprobe.pooling import POOLING_METHODS

    for p in poolings:
        if p not in POOLING_METHODS or p == "all":
            raise UnknownOptionError(
                f"unknown pooling {p!r}; expected one of: {', '.join(m for m in POOLING_METHODS if m != 'all')}"
            )
    body = anatomy(loaded.model)
    resolved = resolve_sites(sites, body.n_layers, body.n_heads)
    h = body.hidden_size
    out = {p: np.empty((len(prompts), len(resolved) * h), dtype=np.float32) for p in poolings}
    positional = all(p in ("last_token", "first_token") for p in poolings)
    for batch in _forward_batches(loaded, prompts, resolved, batch_size, progress):
        if positional:
            lengths = batch.mask.sum(dim=1)
            first = batch.mask.int().argmax(dim=1)  # the first real token, whatever the padding side
            where = {"first_token": first, "last_token": first + lengths - 1}
        for j, site in enumerate(resolved):
            cols = slice(j * h, (j + 1) * h)
            if positional:
                for p in poolings:
                    out[p][batch.idx, cols] = batch.at(site, where[p]).float().cpu().numpy()
                continue
            full = batch.full(site)
            for p in poolings:
                out[p][batch.idx, cols] = pool(full, batch.mask, p)
        del batch
    return out


def extract_to_store(
    loaded: LoadedModel,
    prompts: Sequence[str],
    sites: SiteSpec | Sequence[SiteSpec],
    store: ActivationStore,
    *,
    batch_size: int = 8,
    progress: bool = True,
    record_prompts: int = 64,
    overwrite: bool = False,
    keep_tokens: bool = True,
    poolings: str | Sequence[str] | None = None,
) -> int:
    """Run the model over the prompts not yet in ``store`` and write every token of ``sites`` into it.

    Batches are written (atomically, without padding, with their pooled vectors) as soon as ``record_prompts``
    prompts have completed. A prompt stored at some of the sites is run again only for the sites it lacks. A failure
    (an exception, Ctrl-C) writes the batches completed before it and nothing of the batch that failed; a killed
    process loses at most the prompts not yet written.

    Parameters
    ----------
    loaded : LoadedModel
        From :func:`load_model`.
    prompts : sequence of str
        Prompts; those already stored at every one of ``sites`` are skipped.
    sites : int, str or a sequence of them
        Layers or site names (:mod:`fastprobe.sites`); each is stored under its :attr:`~fastprobe.sites.Site.store_id`.
    store : ActivationStore
        Where to write.
    batch_size : int, default=8
        Prompts per forward pass (halved on a CUDA out-of-memory error).
    progress : bool, default=True
        Show a progress bar.
    record_prompts : int, default=64
        Prompts per stored record (and per atomic write). Prompts are batched by token length and, within one
        length, in text order, so prompts sharing a prefix land in one record and compress together.
    overwrite : bool, default=False
        Run every prompt again and replace what is stored (new records supersede the old ones atomically).
    keep_tokens : bool, default=True
        Store every token beside the pooled vectors. False stores the pooled vectors only (last token, mean, first
        token; see :meth:`ActivationStore.write`), and a prompt stored in either form counts as present. With True,
        a prompt stored pooled-only counts as missing and is run again, its new record superseding the old. A
        pooling in ``poolings`` that reads tokens makes it True.
    poolings : str or sequence of str, optional
        The poolings the caller will read from the store (names :meth:`ActivationStore.contains` takes). A prompt
        counts as present only in a record that serves them: a last-token-only record (a pulled pooled dataset)
        serves ``"last_token"`` alone, so with ``"mean"`` or ``"first_token"`` among them such prompts run again,
        their new records superseding the old. None: the caller may read any of the three pooled vectors (last
        token, mean, first token), so last-token-only records count as missing.

    Returns
    -------
    int
        The number of prompts run through the model.
    """
    _check_prompts(prompts)
    body = anatomy(loaded.model)
    resolved = resolve_sites(sites, body.n_layers, body.n_heads)
    unique = list(dict.fromkeys(prompts))
    keep_tokens = keep_tokens or required_content(poolings) == "tokens"
    have = np.stack(
        [store.contains(unique, [s.store_id], tokens=keep_tokens, pooling=poolings) for s in resolved], axis=1
    )
    if overwrite:
        have[:] = False
    n_have = int(np.count_nonzero(have.all(axis=1)))
    cache_log.info(
        "%s: %d/%d prompts cached at %s (%s), %d to extract",
        loaded.name,
        n_have,
        len(unique),
        [s.name for s in resolved],
        "every token" if keep_tokens else "pooled vectors",
        len(unique) - n_have,
    )
    cache_log.debug("store: %s", store.path)
    groups: dict[tuple[bool, ...], list[str]] = {}
    for i in np.flatnonzero(~have.all(axis=1)):
        groups.setdefault(tuple(have[i].tolist()), []).append(unique[i])
    done = 0
    for row_have, missing in groups.items():
        todo = [s for s, present in zip(resolved, row_have, strict=True) if not present]
        done += _extract_group(loaded, missing, todo, store, batch_size, progress, record_prompts, keep_tokens)
    return done


def _extract_group(
    loaded: LoadedModel,
    prompts: list[str],
    sites: list[Site],
    store: ActivationStore,
    batch_size: int,
    progress: bool,
    record_prompts: int,
    keep_tokens: bool,
) -> int:
    import torch

    ids = [s.store_id for s in sites]
    names: list[str] = []
    slabs: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    # Records are compressed and written on a second thread (the store releases the GIL) while the next batches run;
    # at most one record is in flight, so memory stays bounded by two records.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastprobe-store-writer")
    pending: list[Future[None]] = []

    def write(batch_names: list[str], batch_slabs: list[np.ndarray], batch_counts: list[np.ndarray]) -> None:
        tokens = batch_slabs[0] if len(batch_slabs) == 1 else np.concatenate(batch_slabs, axis=1)
        dtype = storage_dtype(store.dtype, tokens)
        store.write(batch_names, tokens, np.concatenate(batch_counts), ids, dtype=dtype, keep_tokens=keep_tokens)

    def wait() -> None:
        while pending:
            pending.pop().result()

    def flush() -> None:
        wait()
        if names:
            pending.append(writer.submit(write, names[:], slabs[:], counts[:]))
            names.clear()
            slabs.clear()
            counts.clear()

    try:
        for batch in _forward_batches(loaded, prompts, sites, batch_size, progress):
            slabs.append(torch.stack([batch.tokens(s) for s in sites]).float().cpu().numpy())
            counts.append(batch.mask.sum(dim=1).cpu().numpy())
            names.extend(prompts[i] for i in batch.idx)
            del batch
            if len(names) >= record_prompts:
                flush()
    finally:
        try:
            flush()  # everything completed so far; a failed batch never reached the lists
            wait()
        finally:
            writer.shutdown(wait=True)
    return len(prompts)


#: The largest finite float16 value.
FLOAT16_MAX = 65504.0


def storage_dtype(dtype: str, tokens: np.ndarray) -> str:
    """Return the dtype to store a batch in: the store's, unless float16 cannot hold it (then float32, exactly).

    A model's residual stream can carry a few "massive" activations beyond float16's range; rounding them to infinity
    would poison every probe that reads them, so such a batch is stored in float32 instead.

    Parameters
    ----------
    dtype : str
        The store's dtype.
    tokens : numpy.ndarray
        The batch's float32 activations.

    Returns
    -------
    str

    Examples
    --------
    >>> import numpy as np
    >>> storage_dtype("float16", np.array([1.0, -7e4], dtype=np.float32)), storage_dtype("float16", np.ones(2))
    ('float32', 'float16')
    """
    if dtype == "float16" and tokens.size and not float(np.max(np.abs(tokens))) <= FLOAT16_MAX:
        return "float32"
    return dtype


def _check_prompts(prompts: Sequence[str]) -> None:
    if isinstance(prompts, str):
        raise InvalidInputError("prompts must be a sequence of strings, not a single string")
    if len(prompts) == 0:
        raise InvalidInputError("prompts is empty; give at least one prompt")
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p:
            raise InvalidInputError(f"prompt {i} must be a non-empty string; got {p!r}")


def tokenize(loaded: LoadedModel, prompts: Sequence[str]) -> list[dict[str, list[int]]]:
    """Tokenize prompts as extraction does (the tokenizer's defaults: special tokens, no truncation).

    Raises
    ------
    InvalidInputError
        If a prompt is longer than the model's context (``max_position_embeddings`` or its equivalent): it is
        refused, never truncated, since truncation would silently change which token is last.
    """
    _check_prompts(prompts)
    enc = loaded.tokenizer(list(prompts))
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    rows = [{k: list(enc[k][i]) for k in keys} for i in range(len(prompts))]
    limit = anatomy(loaded.model).max_positions
    if limit is not None:
        for i, row in enumerate(rows):
            if len(row["input_ids"]) > limit:
                raise InvalidInputError(
                    f"prompt {i} is {len(row['input_ids'])} tokens long; the model accepts at most {limit} "
                    f"(its context length). Shorten it: fastprobe does not truncate prompts"
                )
    for i, row in enumerate(rows):
        if not row["input_ids"]:
            raise InvalidInputError(f"prompt {i} ({prompts[i]!r}) tokenizes to nothing")
    return rows


def _pad(loaded: LoadedModel, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
    """Pad token rows on the tokenizer's side into tensors, with positions that count real tokens only."""
    import torch

    tok = loaded.tokenizer
    width = max(len(r["input_ids"]) for r in rows)
    left = tok.padding_side == "left"
    fill = {"input_ids": tok.pad_token_id if tok.pad_token_id is not None else 0, "attention_mask": 0}
    out: dict[str, Any] = {}
    for key in rows[0]:
        data = torch.full((len(rows), width), fill.get(key, 0), dtype=torch.long)
        for i, r in enumerate(rows):
            values = torch.tensor(r[key], dtype=torch.long)
            if left:
                data[i, width - len(values) :] = values
            else:
                data[i, : len(values)] = values
        out[key] = data
    # A left-padded prompt sees the same positions as it would alone.
    out["position_ids"] = (out["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    return out


def _accepts(model: Any, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return True


def _forward_batches(
    loaded: LoadedModel,
    prompts: Sequence[str],
    sites: list[Site],
    batch_size: int,
    progress: bool,
) -> Iterator[_Batch]:
    """Yield one :class:`_Batch` per forward pass, prompts batched by (token length, text).

    Hooks capture what ``sites`` need; the pass stops as soon as the last of them has fired (no later module, no
    language-model head, no KV cache). A CUDA out-of-memory error halves the batch size and retries.
    """
    import torch
    from tqdm.auto import tqdm

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive int; got {batch_size!r}")
    body = anatomy(loaded.model)
    rows = tokenize(loaded, prompts)
    order = sorted(range(len(prompts)), key=lambda i: (len(rows[i]["input_ids"]), prompts[i]))
    captured: dict[tuple[str, int], Any] = {}
    needed: set[tuple[str, int]] = set()
    handles = []

    def keep(key: tuple[str, int], value: Any) -> None:
        captured[key] = value
        if needed.issubset(captured):
            raise _StopForward

    def on_block(layer: int) -> Any:
        return lambda _m, _i, output: keep(("resid", layer), _first(output))

    def on_embed(_m: Any, args: Any, kwargs: Any) -> None:
        keep(("embed", -1), args[0] if args else kwargs["hidden_states"])

    def on_proj(layer: int, want_in: bool, want_out: bool) -> Any:
        def hook(_m: Any, inputs: Any, output: Any) -> None:
            if want_in:
                captured[("proj_in", layer)] = inputs[0]
            if want_out:
                captured[("proj_out", layer)] = output
            keep(("proj", layer), None)

        return hook

    def on_mlp(layer: int) -> Any:
        return lambda _m, _i, output: keep(("mlp", layer), _first(output))

    # What each needed module gives: (key, module, take its input, take its output), in execution order.
    plan: list[tuple[tuple[str, int], Any, bool, bool]] = []
    proj_layers: dict[int, list[bool]] = {}
    for site in sites:
        if site.kind == "resid":
            plan.append((("resid", site.layer), body.blocks[site.layer], False, True))
        elif site.kind == "embed":
            plan.append((("embed", -1), body.blocks[0], True, False))
        elif site.kind in ("attn", "head"):
            flags = proj_layers.setdefault(site.layer, [False, False])
            flags[0 if site.kind == "head" else 1] = True
        elif site.kind == "mlp":
            plan.append((("mlp", site.layer), body.mlp(site.layer), False, True))
    for layer, (want_in, want_out) in proj_layers.items():
        if want_in:
            body.head_weights(layer)  # fails early, naming the problem, if heads cannot be split
        plan.append((("proj", layer), body.attention_projection(layer), want_in, want_out))
    rank = {"embed": 0, "proj": 1, "mlp": 2, "resid": 3}
    plan = sorted({p[0]: p for p in plan}.values(), key=lambda p: (p[0][1], rank[p[0][0]]))
    needed.update(key for key, *_ in plan)
    if loaded.backend == "local":
        for (kind, layer), module, want_in, want_out in plan:
            if kind == "resid":
                handles.append(module.register_forward_hook(on_block(layer)))
            elif kind == "embed":
                handles.append(module.register_forward_pre_hook(on_embed, with_kwargs=True))
            elif kind == "mlp":
                handles.append(module.register_forward_hook(on_mlp(layer)))
            else:
                handles.append(module.register_forward_hook(on_proj(layer, want_in, want_out)))

    paths = {id(m): n for n, m in loaded.model.named_modules()} if loaded.backend == "nnsight" else {}
    use_positions = _accepts(loaded.model, "position_ids")
    bar = tqdm(total=len(prompts), desc="extracting", unit="prompt", disable=not progress, dynamic_ncols=True)
    tokens_done = 0
    size = batch_size
    pending = [order[i : i + size] for i in range(0, len(order), size)]
    pending.reverse()  # a stack: the next batch is at the end
    try:
        while pending:
            chunk = pending.pop()
            batch = _pad(loaded, [rows[i] for i in chunk])
            if not use_positions:
                batch.pop("position_ids")
            batch = {k: v.to("cpu" if loaded.remote else loaded.device) for k, v in batch.items()}
            captured.clear()
            try:
                with torch.inference_mode():
                    if loaded.backend == "nnsight":
                        captured.update(_trace(loaded, batch, plan, paths))
                    else:
                        try:
                            loaded.model(**batch, use_cache=False)
                        except _StopForward:
                            pass
            except _oom_errors() as err:
                captured.clear()
                del batch
                if len(chunk) == 1:
                    raise FastprobeError(
                        f"out of memory on {loaded.device} running a single prompt of "
                        f"{len(rows[chunk[0]]['input_ids'])} tokens; use a smaller dtype or another device"
                    ) from err
                size = max(1, len(chunk) // 2)
                warnings.warn(
                    f"out of memory on {loaded.device} with a batch of {len(chunk)} prompts; retrying with "
                    f"batch_size={size}",
                    RuntimeWarning,
                    stacklevel=3,
                )
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                rest = [i for c in reversed(pending) for i in c]
                remaining = list(chunk) + rest
                pending = [remaining[i : i + size] for i in range(0, len(remaining), size)]
                pending.reverse()
                continue
            if not needed.issubset(captured):
                missing = sorted(k for k in needed if k not in captured)
                raise FastprobeError(f"the forward pass of {type(loaded.model).__name__} never reached {missing}")
            mask = batch["attention_mask"].bool()
            yield _Batch(np.asarray(chunk, dtype=np.int64), mask, dict(captured), body)
            captured.clear()
            tokens_done += int(mask.sum())
            bar.update(len(chunk))
            elapsed = bar.format_dict.get("elapsed") or 0.0
            if elapsed > 0:
                bar.set_postfix(tokens_per_s=f"{tokens_done / elapsed:,.0f}", refresh=False)
    finally:
        for h in handles:
            h.remove()
        bar.close()


def _envoy(root: Any, path: str) -> Any:
    for part in path.split("."):
        if part.isdigit():
            root = root[int(part)]
        else:
            # nnsight serves a submodule whose name it reserves (BERT's "output") as "E_<name>".
            root = getattr(root, f"E_{part}") if hasattr(root, f"E_{part}") else getattr(root, part)
    return root


def _trace(
    loaded: LoadedModel,
    batch: dict[str, Any],
    plan: list[tuple[tuple[str, int], Any, bool, bool]],
    paths: dict[int, str],
) -> dict[tuple[str, int], Any]:
    """Run one batch as an nnsight trace that saves what ``plan`` needs, then stops (locally or on NDIF).

    ``paths`` maps each module (by ``id``) to its dotted name in the model.
    """
    wrapper = loaded.tracer
    saved: dict[tuple[str, int], Any] = {}
    options: dict[str, Any] = {"use_cache": False}
    if loaded.remote:
        options["remote"] = True
    with wrapper.trace(**batch, **options) as tracer:
        for (kind, layer), module, want_in, want_out in plan:
            envoy = _envoy(wrapper, paths[id(module)])
            if kind == "proj":
                if want_in:
                    saved[("proj_in", layer)] = envoy.input.save()
                if want_out:
                    saved[("proj_out", layer)] = envoy.output.save()
            elif kind == "embed":
                saved[(kind, layer)] = envoy.input.save()
            else:
                saved[(kind, layer)] = envoy.output.save()
        tracer.stop()
    out: dict[tuple[str, int], Any] = {}
    for key, value in saved.items():
        value = getattr(value, "value", value)
        out[key] = value if key[0] in ("proj_in", "proj_out", "embed") else _first(value)
    for key, *_ in plan:
        if key[0] == "proj":
            out[key] = None
    return out
