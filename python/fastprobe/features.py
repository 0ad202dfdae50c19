"""The features API: a model's context, and prompts' activations made sure of and read back as feature matrices.

Every workflow above this layer (``Probe``, ``ProbeEnsemble``, the baselines, the unified cache) reads activations
the same way:

1. :func:`model_context` (weights loaded) or :func:`weightless_context` (a meta-device model: the fingerprint and
   the store, no forward pass possible) gives a :class:`ModelContext`: the loaded model, its fingerprint and its
   activation store. :func:`ready_context` loads the weights only when the cache lacks something; before that it
   tries the model's description (:func:`described_context`: the fingerprint and shape recorded the first time the
   model was loaded, valid while its files are unchanged), which needs neither torch nor transformers.
2. :func:`ensure_extracted` runs the model on what the store lacks (a no-op for what is there), retrying remote
   runs; ``reads`` (from :func:`reads`) says what the caller will read, so tokens are kept only when needed.
3. :func:`read_features` reads them back through the store's pooling stage: one pooled row per prompt, or (for a
   pooling that reads tokens) one row per real token with the prompts' offsets.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

import fastprobe.extraction as extraction
import fastprobe.model as model_layer
from fastprobe.exceptions import FastprobeError
from fastprobe.store import cache_dir, cache_keeps_tokens, model_dirs, model_store, required_content
from fastprobe.store.pooling import POOLED_VECTORS, PoolingSpec

T = TypeVar("T")

__all__ = [
    "POOLED",
    "CachedExtractor",
    "Features",
    "ModelContext",
    "described_context",
    "descriptions_dir",
    "ensure_extracted",
    "is_cached",
    "is_extracted",
    "model_context",
    "pooled_features",
    "read_features",
    "reads",
    "ready_context",
    "retry_remote",
    "weightless_context",
]

#: The poolings the store keeps as one vector per record.
POOLED = POOLED_VECTORS


@dataclass
class ModelContext:
    """A loaded model with its fingerprint and its activation store.

    With ``interventions`` (head and edge ablations), the fingerprint and the store are those of the changed model,
    and extraction runs with them.
    """

    loaded: Any
    fingerprint: dict[str, Any]
    store: Any
    interventions: tuple[Any, ...] = ()


@dataclass
class Features:
    """A feature matrix read from the store.

    ``X``: one row per prompt (a pooled read), or one row per real token (``offsets`` then holds each prompt's
    first row, with the total last; None for a pooled read).
    """

    X: np.ndarray
    offsets: np.ndarray | None


def model_context(
    model: Any,
    device: str,
    dtype: str | None,
    backend: str,
    remote: bool,
    revision: str | None = None,
    interventions: Sequence[Any] = (),
) -> ModelContext:
    """Load the model (once per process) and return its context: the model, its fingerprint, its store.

    ``interventions``: head and edge ablations; the context is then the changed model's (its own fingerprint and
    store).

    Raises
    ------
    ModelLoadError
        If the model cannot be loaded.
    """
    loaded = model_layer.load_model(
        model, device=device, dtype=dtype, backend=backend, remote=remote, revision=revision
    )
    clean = model_layer.fingerprint_of(loaded)
    _remember(loaded, clean, model_layer.check_dtype(dtype))
    fingerprint = extraction.intervened_fingerprint(clean, interventions)
    return ModelContext(loaded, fingerprint, model_store(fingerprint), tuple(interventions))


def _name(model: Any) -> str | None:
    """Return the model's name as a fingerprint records it (what the user passed), or None for anything else."""
    import os

    return os.fspath(model) if isinstance(model, (str, os.PathLike)) else None


def descriptions_dir() -> Any:
    """Return where model descriptions are recorded: ``.model-descriptions`` in the cache root in use now."""
    return cache_dir() / ".model-descriptions"


def _remember(loaded: Any, fingerprint: dict[str, Any], dtype: str) -> None:
    """Record the model's description once per model object in this process (:func:`described_context` reads it)."""
    if _REMEMBERED.get(id(loaded)) is not loaded:
        model_layer.remember_model(loaded, fingerprint, dtype, descriptions_dir())
        _REMEMBERED[id(loaded)] = loaded


# id(loaded) -> loaded: the models whose description this process wrote (the object kept, so an id is never reused)
_REMEMBERED: dict[int, Any] = model_layer.register_model_cache({})


def described_context(
    model: Any,
    device: str,
    backend: str,
    revision: str | None = None,
    dtype: str | None = None,
    interventions: Sequence[Any] = (),
) -> ModelContext | None:
    """Return the model's context from its recorded description: its fingerprint and store, nothing loaded.

    None when no description is recorded in the cache in use or it no longer holds (a file of the model changed, a
    library was upgraded, an online Hub branch may have moved): see :func:`fastprobe.model.describe_model`.
    """
    found = model_layer.describe_model(
        model, revision, device, model_layer.check_dtype(dtype), backend, descriptions_dir()
    )
    if found is None:
        return None
    loaded, clean = found
    model_layer.adopt_fingerprint(loaded, clean)
    fingerprint = extraction.intervened_fingerprint(clean, interventions)
    return ModelContext(loaded, fingerprint, model_store(fingerprint), tuple(interventions))


def weightless_context(model: Any, device: str, backend: str, revision: str | None = None) -> ModelContext | None:
    """Return the model's context with a weightless (meta-device) model: its fingerprint and store, no weights.

    The fingerprint and the store are those of the loaded model; only a forward pass is impossible. None when the
    model's files are not on this machine yet or it cannot be described this way (the full load then says what is
    wrong).
    """
    loaded = model_layer.load_weightless(model, device, backend, revision)
    if loaded is None:
        return None
    fingerprint = model_layer.fingerprint_of(loaded)
    _remember(loaded, fingerprint, "float32")
    return ModelContext(loaded, fingerprint, model_store(fingerprint))  # the store of the cache directory in use now


def ready_context(
    model: Any,
    device: str,
    backend: str,
    remote: bool,
    cached: Callable[[ModelContext], bool],
    revision: str | None = None,
    dtype: str | None = None,
    interventions: Sequence[Any] = (),
) -> ModelContext:
    """Return the model's context, loading its weights only when ``cached(context)`` says the cache lacks something.

    A run whose activations are all cached never needs a forward pass; on a large model, loading the weights would be
    most of its time. The recorded description is tried first (:func:`described_context`: no torch, no
    transformers, no files read but a small record), then the weightless skeleton (float32 only), then the full
    model.
    """
    if remote:
        return model_context(model, device, dtype, backend, remote, revision, interventions)
    light = described_context(model, device, backend, revision, dtype, interventions)
    if light is not None:
        if cached(light):
            return light
        return model_context(model, device, dtype, backend, remote, revision, interventions)  # the skeleton agrees
    # the skeleton (float32, clean) costs a tokenizer and configuration load: worth it only when the cache holds a
    # store of this model already (filled by another process, or pulled), not on a cold cache
    name = _name(model)
    if dtype in (None, "float32") and not interventions and name is not None and model_dirs(name):
        skeleton = weightless_context(model, device, backend, revision)
        if skeleton is not None and cached(skeleton):
            return skeleton
    return model_context(model, device, dtype, backend, remote, revision, interventions)


def reads(*poolings: str | PoolingSpec) -> list[str]:
    """Return what a store read with each pooling (a training pooling's name or a parsed spec) takes from a record.

    That is the stored pooled vector's name, or ``"all"`` for a pooling that reads tokens: the ``poolings``
    argument of :func:`ensure_extracted`.
    """
    out = []
    for p in poolings:
        if isinstance(p, str):
            out.append(p if p in POOLED else "all")
        else:
            out.append("all" if p.needs_tokens else p.base)
    return out


def ensure_extracted(
    ctx: ModelContext,
    prompts: Sequence[str],
    sites: Sequence[Any],
    batch_size: int | None,
    retries: int,
    poolings: Sequence[str] | None = None,
    overwrite: bool = False,
) -> None:
    """Put the prompts' activations at ``sites`` into the store (a no-op for what is there), retrying remote runs.

    ``poolings``: what the caller will read (:func:`reads`; None: the three pooled vectors). A pooling that reads
    tokens (``"all"``) keeps every token; otherwise the cache stores pooled vectors only, unless
    :func:`~fastprobe.store.set_cache_tokens` asks for every token always. A stored record that does not serve the
    reads (a pulled dataset's last-token-only record, for a mean) counts as missing. A remote run that fails is
    retried up to ``retries`` times with exponential back-off; what completed is stored, so a retry resumes.
    """
    if not overwrite and is_cached(ctx, prompts, sites, poolings):  # nothing to run: the model is not even touched
        return
    keep = cache_keeps_tokens(required_content(poolings) == "tokens")

    def run() -> None:
        extraction.extract_to_store(
            ctx.loaded,
            prompts,
            list(sites),
            ctx.store,
            batch_size=batch_size,
            overwrite=overwrite,
            keep_tokens=keep,
            poolings=poolings,
            interventions=ctx.interventions,
        )

    retry_remote(run, bool(ctx.loaded.remote), retries, "extraction", stacklevel=4)


def retry_remote(run: Callable[[], T], remote: bool, retries: int, what: str = "run", stacklevel: int = 3) -> T:
    """Call ``run``; a failed remote run is retried, with exponential back-off, up to ``retries`` times.

    ``run`` must resume by itself (what completed is stored). A :class:`~fastprobe.FastprobeError` (a fault of the
    input, not of the connection) and any local failure are raised at once. Each retry warns (``RuntimeWarning``,
    "remote {what} failed ..."), at ``stacklevel`` as :func:`warnings.warn` counts it from ``retry_remote`` (the
    default, 3, is the code that called the caller of ``retry_remote``).
    """
    attempt = 0
    while True:
        try:
            return run()
        except FastprobeError:
            raise
        except Exception as err:
            if not remote or attempt >= retries:
                raise
            attempt += 1
            delay = 2.0 ** (attempt - 1)
            warnings.warn(
                f"remote {what} failed ({type(err).__name__}: {err}); retry {attempt} of {retries} in {delay:g} s",
                RuntimeWarning,
                stacklevel=stacklevel,
            )
            time.sleep(delay)


def is_cached(
    ctx: ModelContext, prompts: Sequence[str], sites: Sequence[Any], poolings: Sequence[str] | None = None
) -> bool:
    """Whether :func:`ensure_extracted` with these ``poolings`` (what the caller reads) has nothing to run."""
    keep = cache_keeps_tokens(required_content(poolings) == "tokens")
    unique = list(dict.fromkeys(prompts))
    if not unique:
        return True
    return bool(np.all(ctx.store.contains(unique, list(sites), tokens=keep, pooling=poolings)))


def is_extracted(ctx: ModelContext, prompts: Sequence[str], sites: Sequence[Any], pooling: str) -> bool:
    """Whether :func:`ensure_extracted` would run nothing for these prompts, sites and pooling."""
    return is_cached(ctx, prompts, sites, [pooling])


def read_features(ctx: ModelContext, prompts: Sequence[str], sites: Sequence[Any], pooling: str) -> Features:
    """Read the prompts' features at ``sites`` (columns: one block per site, in order) from the store.

    ``pooling``: ``"all"`` reads every token (one row per real token, with offsets); any other of the store's
    poolings (``"last_token"``, ``"mean"``, ``"first_token"``, ``"max"``, ``"min"``) gives one row per prompt.
    """
    if pooling != "all":
        return Features(np.asarray(ctx.store.read_pooled(list(prompts), list(sites), pooling)), None)
    values, offsets = ctx.store.read_tokens(list(prompts), list(sites))
    return Features(np.asarray(values), np.asarray(offsets))


def pooled_features(
    ctx: ModelContext,
    prompts: Sequence[str],
    sites: Sequence[Any],
    pooling: str,
    batch_size: int | None,
    retries: int = 3,
) -> np.ndarray:
    """Pooled activations at ``sites`` through the cache: one extraction of what is missing, then one read.

    ``pooling``: one of the store's poolings (``"max"`` and ``"min"`` make the cache keep every token).
    """
    ensure_extracted(ctx, list(prompts), list(sites), batch_size, retries, [pooling])
    return np.asarray(ctx.store.read_pooled(list(prompts), list(sites), pooling))


class CachedExtractor:
    """Extract through the activation cache: only prompts not cached yet run through the model.

    lmprobe wraps its extractor object in this class; fastprobe reads the same description from it (its
    ``model_name``, ``layer_indices`` and ``batch_size``, and ``device``, ``dtype``, ``backend`` when present) and
    extracts with its own engine into its own cache. Every token is kept, so the dense matrix can be rebuilt.

    Parameters
    ----------
    extractor : object
        Anything with ``model_name`` (a Hub id or directory), ``layer_indices`` (ints) and ``batch_size``.
    """

    def __init__(self, extractor: Any) -> None:
        self.extractor = extractor

    def extract(
        self,
        prompts: Sequence[str],
        remote: bool = False,
        invalidate_cache: bool = False,
        max_retries: int | None = None,
        cache_only: bool = False,
    ) -> tuple[Any, Any] | None:
        """Cache the prompts' activations and return them as one dense, zero-padded matrix.

        Parameters
        ----------
        prompts : sequence of str
        remote : bool, default=False
            Run on NDIF (``backend="nnsight"``); failed remote runs are retried ``max_retries`` times (3 by default),
            local ones never.
        invalidate_cache : bool, default=False
            Extract these prompts again even when cached.
        max_retries : int, optional
        cache_only : bool, default=False
            Only fill the cache; return None.

        Returns
        -------
        (activations, mask) or None
            ``activations``: a float32 tensor ``(n_prompts, max_tokens, n_layers * hidden_size)``, the layers
            ascending and concatenated, each prompt's real tokens first and zeros after them; ``mask``: ``(n_prompts,
            max_tokens)`` int64, 1 on real tokens.
        """
        import torch

        ex = self.extractor
        layers = sorted({int(i) for i in ex.layer_indices})
        dtype = getattr(ex, "dtype", None)
        backend = "nnsight" if remote else (getattr(ex, "backend", None) or "local")
        device = getattr(ex, "device", None) or "auto"
        ctx = model_context(ex.model_name, device, dtype if isinstance(dtype, str) else None, backend, bool(remote))
        loaded, store = ctx.loaded, ctx.store
        wanted = list(prompts)
        retries = (3 if max_retries is None else int(max_retries)) if remote else 0
        for attempt in range(retries + 1):
            try:
                extraction.extract_to_store(
                    loaded, wanted, layers, store, batch_size=int(ex.batch_size), overwrite=bool(invalidate_cache)
                )
                break
            except Exception:  # a remote run failed: what completed is stored, so a retry resumes
                if attempt == retries:
                    raise
                time.sleep(2.0**attempt)
            invalidate_cache = False  # the first attempt already replaced what it reached
        if cache_only:
            return None
        values, offsets = store.read_tokens(wanted, layers)
        counts = np.diff(offsets)
        width = int(max(counts.max(initial=0), 1))
        acts = np.zeros((len(counts), width, values.shape[1]), dtype=np.float32)
        mask = np.zeros((len(counts), width), dtype=np.int64)
        for i, n in enumerate(counts):
            acts[i, :n] = values[offsets[i] : offsets[i + 1]]
            mask[i, :n] = 1
        return torch.from_numpy(acts), torch.from_numpy(mask)
