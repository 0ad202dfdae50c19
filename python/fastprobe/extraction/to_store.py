"""Extraction's two outputs: pooled arrays in memory, and records in an activation store.

:func:`extract_pooled` returns pooled arrays; :func:`extract_to_store` writes what a store lacks.

Both run :func:`fastprobe.extraction.runner.forward_batches`, looked up on its module at each call, and pool each
batch in the Rust core as soon as it completes, so memory stays bounded by one batch plus the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from fastprobe._validation import check_prompts
from fastprobe.exceptions import ArgumentTypeError, InvalidInputError, UnknownOptionError
from fastprobe.extraction import runner
from fastprobe.extraction.ablation import identities, prefix_safe
from fastprobe.extraction.plan import Intervention
from fastprobe.model import LoadedModel, anatomy, resolve_position, tokenize
from fastprobe.sites import Site, SiteSpec, resolve_sites
from fastprobe.store import ActivationStore, required_content
from fastprobe.store import logger as cache_log
from fastprobe.store.pooling import POOLING_METHODS, pool

__all__ = ["FLOAT16_MAX", "extract_at", "extract_pooled", "extract_to_store", "storage_dtype"]

#: The largest finite float16 value.
FLOAT16_MAX = 65504.0


def extract_pooled(
    loaded: LoadedModel,
    prompts: Sequence[str],
    sites: SiteSpec | Sequence[SiteSpec],
    poolings: Sequence[str] = ("last_token",),
    *,
    batch_size: int | None = None,
    progress: bool = True,
    interventions: Sequence[Intervention] = (),
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
    batch_size : int or None, default=None
        Prompts per batch; None fills each batch to the device's token budget (:mod:`fastprobe.extraction.batching`).
        Prompts per forward pass (halved on a CUDA out-of-memory error).
    progress : bool, default=True
        Show a progress bar (prompts/s and tokens/s).
    interventions : sequence of Intervention, default=()
        Modules whose input or output the passes replace (:class:`~fastprobe.extraction.Intervention`; local
        backend only). The result is the changed model's and is never cached.

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
    batches = runner.forward_batches(loaded, prompts, resolved, batch_size, progress, interventions=interventions)
    for batch in batches:
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


def extract_at(
    loaded: LoadedModel,
    prompts: Sequence[str],
    positions: Sequence[int],
    sites: SiteSpec | Sequence[SiteSpec],
    *,
    batch_size: int | None = None,
    progress: bool = True,
    interventions: Sequence[Any] = (),
) -> np.ndarray:
    """Run the model over ``prompts`` and read ``sites`` at one token position per prompt.

    Parameters
    ----------
    loaded : LoadedModel
    prompts : sequence of str
        Non-empty strings.
    positions : sequence of int
        One token position per prompt, counted as the model sees the prompt (special tokens included); negative
        values count from its end.
    sites : int, str or a sequence of them
        Concatenated in forward-pass order (:func:`fastprobe.sites.resolve_sites`); a head site is computed at the
        position only.
    batch_size : int or None, default=None
        Prompts per batch; None fills each batch to the device's token budget (:mod:`fastprobe.extraction.batching`).
    progress : bool, default=True
    interventions : sequence, default=()
        Interventions, head or edge ablations active during the passes.

    Returns
    -------
    numpy.ndarray of shape (len(prompts), len(sites) * hidden_size), float32
        In input order.

    Notes
    -----
    In a causal model, a prompt's tokens after its position cannot change what is read there, so they are not run
    (unless an intervention with positions, or a function, is active).

    Raises
    ------
    InvalidInputError
        If ``positions`` does not have one int per prompt or one lies outside its prompt, or for what
        :func:`extract_pooled` refuses.
    """
    import torch

    check_prompts(prompts, non_empty=True, empty_strings=False)
    if isinstance(positions, (str, bytes)) or len(positions) != len(prompts):
        raise InvalidInputError(
            f"positions must hold one token position per prompt ({len(prompts)}); got {len(positions)}"
        )
    for i, p in enumerate(positions):
        if isinstance(p, bool) or not isinstance(p, (int, np.integer)):
            raise ArgumentTypeError(f"positions[{i}] must be an int token position; got {p!r}")
    lengths = [len(r["input_ids"]) for r in tokenize(loaded, prompts)]
    fixed = [
        resolve_position(int(p), n, "position", f"prompt {i} ({prompts[i][:40]!r})")
        for i, (p, n) in enumerate(zip(positions, lengths, strict=True))
    ]
    body = anatomy(loaded.model)
    resolved = resolve_sites(sites, body.n_layers, body.n_heads)
    h = body.hidden_size
    out = np.empty((len(prompts), len(resolved) * h), dtype=np.float32)
    where = torch.tensor(fixed, dtype=torch.long)
    # In a causal model nothing after the position changes it: run each prompt's tokens up to it only (unless an
    # intervention could depend on the later tokens).
    keep = [q + 1 for q in fixed] if body.is_causal and prefix_safe(interventions) else None
    batches = runner.forward_batches(
        loaded, prompts, resolved, batch_size, progress, interventions=interventions, keep=keep
    )
    for batch in batches:
        first = batch.mask.int().argmax(dim=1)
        cols = first + where[torch.as_tensor(batch.idx)].to(first.device)
        for j, site in enumerate(resolved):
            out[batch.idx, j * h : (j + 1) * h] = batch.at(site, cols).float().cpu().numpy()
        del batch
    return out


def extract_to_store(
    loaded: LoadedModel,
    prompts: Sequence[str],
    sites: SiteSpec | Sequence[SiteSpec],
    store: ActivationStore,
    *,
    batch_size: int | None = None,
    progress: bool = True,
    record_prompts: int = 64,
    overwrite: bool = False,
    keep_tokens: bool = True,
    poolings: str | Sequence[str] | None = None,
    interventions: Sequence[Any] = (),
) -> int:
    """Run the model over the prompts not yet in ``store`` and write every token of ``sites`` into it.

    Batches are written (atomically, without padding, with their pooled vectors) as soon as ``record_prompts``
    prompts have completed. A prompt stored at some of the sites is run again only for the sites it lacks. A failure
    (an exception, Ctrl-C) writes the batches completed before it and nothing of the batch that failed; a killed
    process loses at most the prompts not yet written.

    A store holds one model's activations: the clean model's, or those of the model changed by head and edge
    ablations, in a store whose fingerprint records them (:func:`~fastprobe.extraction.intervened_fingerprint`).
    A store whose fingerprint does not match the ``interventions`` given is refused, so ablated and clean
    activations never mix.

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
    batch_size : int or None, default=None
        Prompts per batch; None fills each batch to the device's token budget (:mod:`fastprobe.extraction.batching`).
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
    interventions : sequence of HeadAblation or EdgeAblation, default=()
        Ablations active during the passes; positions per prompt must be given by prompt text (a mapping).

    Returns
    -------
    int
        The number of prompts run through the model.

    Raises
    ------
    InvalidInputError
        If the store's fingerprint does not record exactly ``interventions``, or an intervention has no identity.
    """
    check_prompts(prompts, non_empty=True, empty_strings=False)
    _check_store_interventions(store, interventions)
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
        done += _extract_group(
            loaded, missing, todo, store, batch_size, progress, record_prompts, keep_tokens, interventions
        )
    return done


def _check_store_interventions(store: ActivationStore, interventions: Sequence[Any]) -> None:
    want = identities(interventions) if interventions else None
    have = store.fingerprint.get("interventions") or None
    if want == have:
        return
    if want is None:
        raise InvalidInputError(
            f"the store at {store.path} holds activations of an ablated model ({have}); clean activations go to the "
            "model's own store"
        )
    raise InvalidInputError(
        f"the store at {store.path} does not record these interventions ({want}); ablated activations go to a store "
        "whose fingerprint has them (fastprobe.extraction.intervened_fingerprint), never the clean model's"
    )


def _extract_group(
    loaded: LoadedModel,
    prompts: list[str],
    sites: list[Site],
    store: ActivationStore,
    batch_size: int | None,
    progress: bool,
    record_prompts: int,
    keep_tokens: bool,
    interventions: Sequence[Any] = (),
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
        for batch in runner.forward_batches(loaded, prompts, sites, batch_size, progress, interventions=interventions):
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
