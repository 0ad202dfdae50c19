"""lmprobe's ``UnifiedCache``: fill the cache with activations, perplexities and logits, then read them back.

:class:`UnifiedCache` keeps lmprobe's parameters, methods, return types and error phrases, on fastprobe's machinery:

- activations go into fastprobe's activation cache (one store per model fingerprint, shared with
  :class:`~fastprobe.Probe` and the baselines). ``cache_pooled=True`` (the default) writes pooled-only records: the
  last-token, mean and first-token vectors of every prompt and layer, without the tokens;
  ``cache_pooled=False`` keeps every token.
- perplexity features ([mean, min, max] of ``exp`` of the per-token cross-entropy) come from
  :mod:`fastprobe.perplexity` and its cache, shared with ``BaselineProbe(method="perplexity")``.
- logits (the last real token's or every real token's, optionally only the top ``k``) are cached in a store of their
  own per model fingerprint, positions and ``k``. Perplexity and logits come from one pass of the causal language
  model; the activation pass stops after the deepest requested block.

When everything a call needs is cached, no weights are loaded: a weightless copy of the model (its configuration on
PyTorch's meta device) gives the fingerprint that names the cache.

Differences from lmprobe (each deliberate):

- the activation pass and the language-model pass are two forward passes (lmprobe runs one trace), but the
  activation pass stops after the deepest requested block and skips the language-model head;
- pooled-only records hold all three of last token, mean and first token, so a second ``UnifiedCache`` with another
  of these poolings reads the cache instead of running the model again;
- positions count real tokens only: a left-padded prompt gets the position ids and perplexity it would get alone
  (lmprobe counts the first real token's prediction from a pad), and ``logit_positions="all"`` caches the real
  tokens' logits only (lmprobe caches the padded batch's);
- ``get_activations`` with ``cache_pooled=False`` and ``get_logits`` with ``logit_positions="all"`` right-pad to the
  longest of the prompts asked for: zeros and a zero mask for activations, NaN values and index -1 for logits;
- a prompt of a single token has no perplexity: it is refused (lmprobe stores [1, 1, 1]);
- ``compute_logits_from_cache`` also takes ``positions="all"`` (from cached tokens), and both ``*_from_cache``
  methods extract what the cache lacks first instead of failing;
- with ``compute_perplexity=False``, :class:`WarmupStats` counts no perplexities (lmprobe counts them as cached);
- options are checked when the cache is built (lmprobe checks ``dtype`` when it first loads the model).

The ``UnifiedCache`` class is longer than the project's usual 400 lines because it carries lmprobe's documented
API with its docstrings (about a third of it); its records, the language-model pass and the final head live in the
modules beside it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from fastprobe import features
from fastprobe._validation import check_prompts
from fastprobe.exceptions import InvalidInputError, UnknownOptionError
from fastprobe.features import ModelContext
from fastprobe.layers import LayerSpec, resolve_layers
from fastprobe.unified_cache.language_model import language_model_pass, logits_from_cache, perplexity_from_cache
from fastprobe.unified_cache.records import (
    CachedLogits,
    LogitWriter,
    WarmupStats,
    missing,
    pad_rows,
    positive_int,
)

__all__ = ["CACHE_POOLINGS", "LOGIT_POSITIONS", "UnifiedCache"]

#: Poolings ``cache_pooled=True`` can store (the pooled-only records hold all three).
CACHE_POOLINGS: tuple[str, ...] = ("last_token", "first_token", "mean")
#: Values of ``logit_positions``.
LOGIT_POSITIONS: tuple[str, ...] = ("last", "all")


class UnifiedCache:
    """Extract and cache a model's activations, perplexity features and logits for prompts; read them back.

    Parameters
    ----------
    model : str or path-like
        A Hugging Face Hub id or a local directory.
    layers : int, list of int or {"all", "middle", "last"}, default="all"
        The layers (decoder block outputs; negative counts from the end) whose activations are cached.
    compute_perplexity : bool, default=True
        Also cache each prompt's perplexity features (:meth:`get_perplexity`).
    device : str, default="auto"
        Where the model runs (``"auto"``: CUDA, else MPS, else the CPU).
    remote : bool, default=False
        Run on NDIF through nnsight (needs ``backend="nnsight"`` and ``NDIF_API_KEY``).
    batch_size : int, default=8
        Prompts per forward pass.
    cache_pooled : bool, default=True
        Cache pooled vectors only (last token, mean and first token of each prompt and layer), a small fraction of the
        bytes of every token; :meth:`get_activations` then returns the ``pooling`` vectors. False caches every token
        and :meth:`get_activations` returns them, padded, with their mask.
    pooling : {"last_token", "first_token", "mean"}, default="last_token"
        The pooling :meth:`get_activations` reads when ``cache_pooled=True``.
    backend : {"local", "nnsight"}, default="local"
        How forward passes run: transformers with hooks, or nnsight traces.
    dtype : {"float32", "float16", "bfloat16"} or None, default=None
        The model's compute dtype; None is float32.
    cache_logits : bool, default=False
        Also cache logits (:meth:`get_logits`).
    logit_top_k : int or None, default=None
        Cache only the ``k`` largest logits of each position, with their token ids.
    logit_positions : {"last", "all"}, default="last"
        Cache the logits of each prompt's last real token, or of all its real tokens.
    revision : str, optional
        The Hub revision (branch, tag or commit) when ``model`` is a Hub id; None is the default branch.

    Raises
    ------
    UnknownOptionError
        If ``pooling`` (with ``cache_pooled=True``), ``logit_positions``, ``dtype`` or ``backend`` is not one of
        its accepted values.
    InvalidInputError
        If ``pooling="all"`` is given with ``cache_pooled=True``, or ``batch_size`` or ``logit_top_k`` is not a
        positive int.

    Examples
    --------
    >>> from fastprobe.testing import tiny_model
    >>> cache = UnifiedCache(tiny_model("llama"), layers=[0, 1], device="cpu")  # doctest: +SKIP
    >>> stats = cache.warmup(["The sky is blue.", "Grass is red."])  # doctest: +SKIP
    >>> activations, mask = cache.get_activations(["The sky is blue."])  # doctest: +SKIP
    >>> activations.shape, mask  # doctest: +SKIP
    (torch.Size([1, 64]), None)
    """

    def __init__(
        self,
        model: Any,
        layers: LayerSpec = "all",
        compute_perplexity: bool = True,
        device: str = "auto",
        remote: bool = False,
        batch_size: int = 8,
        cache_pooled: bool = True,
        pooling: str = "last_token",
        backend: str = "local",
        dtype: str | None = None,
        cache_logits: bool = False,
        logit_top_k: int | None = None,
        logit_positions: str = "last",
        revision: str | None = None,
    ) -> None:
        from fastprobe.extraction import BACKENDS, check_dtype

        if cache_pooled and pooling == "all":
            raise InvalidInputError(
                "pooling='all' is not valid with cache_pooled=True: a pooled cache holds one vector per prompt; pass "
                f"one of {', '.join(CACHE_POOLINGS)}, or cache_pooled=False to cache every token"
            )
        if cache_pooled and pooling not in CACHE_POOLINGS:
            raise UnknownOptionError(
                f"unknown pooling {pooling!r} for cache_pooled=True; expected one of: {', '.join(CACHE_POOLINGS)}"
            )
        if logit_positions not in LOGIT_POSITIONS:
            raise UnknownOptionError(
                f"unknown logit_positions {logit_positions!r}; expected one of: {', '.join(LOGIT_POSITIONS)}"
            )
        check_dtype(dtype)
        if backend not in BACKENDS:
            raise UnknownOptionError(f"unknown backend {backend!r}; expected one of: {', '.join(BACKENDS)}")
        positive_int(batch_size, "batch_size")
        positive_int(logit_top_k, "logit_top_k", allow_none=True)
        self.model_name = model
        self.layers_spec = layers
        self.compute_perplexity = compute_perplexity
        self.device = device
        self.remote = remote
        self.batch_size = batch_size
        self.cache_pooled = cache_pooled
        self.pooling = pooling
        self.backend_name = backend
        self.dtype = dtype
        self.cache_logits = cache_logits
        self.logit_top_k = logit_top_k
        self.logit_positions = logit_positions
        self.revision = revision
        self._layer_indices: list[int] | None = None

    def __repr__(self) -> str:
        return (
            f"UnifiedCache(model={self.model_name!r}, layers={self.layers_spec!r}, "
            f"compute_perplexity={self.compute_perplexity}, cache_pooled={self.cache_pooled}, "
            f"pooling={self.pooling!r}, cache_logits={self.cache_logits})"
        )

    # ------------------------------------------------------------------ contexts

    def _full_context(self, remote: bool | None = None, device: str | None = None) -> ModelContext:
        """Return the model's context with its weights (loaded once per process)."""
        remote = bool(self.remote if remote is None else remote)
        return features.model_context(
            self.model_name, device or self.device, self.dtype, self.backend_name, remote, self.revision
        )

    def _light_context(self, remote: bool | None = None, device: str | None = None) -> ModelContext | None:
        """Return the model's weightless context (same fingerprint and stores), or None where there is none."""
        if bool(self.remote if remote is None else remote) or self.dtype not in (None, "float32"):
            return None
        return features.weightless_context(self.model_name, device or self.device, self.backend_name, self.revision)

    def _context(self, remote: bool | None = None, device: str | None = None) -> ModelContext:
        """Return a context to read the stores with: the weightless one where possible."""
        return self._light_context(remote, device) or self._full_context(remote, device)

    @property
    def model(self) -> Any:
        """The loaded model (``torch.nn.Module``; loaded on first use)."""
        return self._full_context().loaded.model

    @property
    def layer_indices(self) -> list[int]:
        """The layers whose activations are cached, ascending (resolved against the model on first use)."""
        if self._layer_indices is None:
            self._layer_indices = resolve_layers(self.layers_spec, self._context().loaded.n_layers)
        return list(self._layer_indices)

    def _keep_tokens(self) -> bool:
        from fastprobe.store import cache_keeps_tokens

        return cache_keeps_tokens(not self.cache_pooled)

    def _logit_store(self, ctx: ModelContext, positions: str, top_k: int | None) -> Any:
        from fastprobe.store import model_store

        return model_store({**ctx.fingerprint, "site": "logits", "positions": positions, "top_k": top_k})

    @staticmethod
    def _logit_sites(top_k: int | None) -> list[int]:
        return [0] if top_k is None else [0, 1]

    # ------------------------------------------------------------------ warmup

    def _status(self, ctx: ModelContext, prompts: list[str]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Whether each prompt's activations, perplexity (None: not wanted) and logits (None: not wanted) are cached."""
        from fastprobe.extraction.perplexity import perplexity_store

        layers = self.layer_indices
        acts = ctx.store.contains(prompts, layers, tokens=self._keep_tokens())
        ppl = perplexity_store(ctx).contains(prompts, [0]) if self.compute_perplexity else None
        logits = None
        if self.cache_logits:
            store = self._logit_store(ctx, self.logit_positions, self.logit_top_k)
            logits = store.contains(prompts, self._logit_sites(self.logit_top_k))
        return acts, ppl, logits

    def _warn_partial(self, ctx: ModelContext, prompts: list[str]) -> None:
        """Warn when prompts missing some requested layer are cached at other layers (they run again)."""
        layers = self.layer_indices
        n_layers = ctx.loaded.n_layers
        found = np.stack([ctx.store.contains(prompts, [layer]) for layer in range(n_layers)], axis=1)
        partial = found.any(axis=1)
        if not partial.any():
            return
        keep = self._keep_tokens()
        present = sorted(int(i) for i in np.flatnonzero(found[partial].any(axis=0)))
        usable = np.stack([ctx.store.contains(prompts, [layer], tokens=keep) for layer in layers], axis=1)[partial]
        missing = [layer for j, layer in enumerate(layers) if not usable[:, j].all()]
        form = " with their tokens (cache_pooled=False)" if keep else ""
        warnings.warn(
            f"{int(partial.sum())} prompt(s) are cached at layer(s) {present} but missing layer(s) {missing}{form}, "
            "so they run through the model again. To run each prompt once, warm up every layer you will read in "
            "one call: UnifiedCache(model, layers=[...all of them...]).warmup(prompts)",
            UserWarning,
            stacklevel=3,
        )

    def warmup(
        self,
        prompts: Sequence[str],
        remote: bool | None = None,
        max_retries: int | None = None,
        verify_cache: bool = True,
    ) -> WarmupStats:
        """Cache what the prompts lack: activations, and perplexity features and logits where enabled.

        Parameters
        ----------
        prompts : sequence of str
        remote : bool, optional
            Overrides the instance's ``remote`` for this call.
        max_retries : int, optional
            Retries of a failed remote run (what completed stays cached, so a retry resumes). Default: 3 for
            remote runs; local runs never retry.
        verify_cache : bool, default=True
            Accepted for compatibility: fastprobe's store index always knows which layers each prompt holds.

        Returns
        -------
        WarmupStats
        """
        from fastprobe.store import evict

        start = time.perf_counter()
        prompts = check_prompts(prompts, "prompts")
        remote = bool(self.remote if remote is None else remote)
        retries = 0 if not remote else (3 if max_retries is None else int(max_retries))
        if not prompts:
            return WarmupStats(0, 0, 0, 0, 0, time.perf_counter() - start)
        ctx = self._context(remote)
        acts, ppl, logits = self._status(ctx, prompts)
        complete = acts.all() and (ppl is None or ppl.all()) and (logits is None or logits.all())
        if not complete:
            ctx = self._full_context(remote)
            lacking_acts = missing(prompts, acts)
            if lacking_acts:
                self._warn_partial(ctx, list(dict.fromkeys(lacking_acts)))
            want_ppl = set(missing(prompts, ppl)) if ppl is not None else set()
            want_logits = set(missing(prompts, logits)) if logits is not None else set()

            def language_model() -> None:
                # A retry runs only what the failed attempt left uncached.
                status = self._status(ctx, prompts)
                ppl_now = set(missing(prompts, status[1])) if status[1] is not None else set()
                logits_now = set(missing(prompts, status[2])) if status[2] is not None else set()
                todo = [p for p in dict.fromkeys(prompts) if p in ppl_now or p in logits_now]
                if todo:
                    writer = None
                    if logits_now:
                        store = self._logit_store(ctx, self.logit_positions, self.logit_top_k)
                        writer = LogitWriter(store, self.logit_positions, self.logit_top_k)
                    language_model_pass(ctx, todo, ppl_now, logits_now, self.batch_size, writer, self.logit_positions)

            if want_ppl or want_logits:
                features.retry_remote(language_model, remote, retries)
            if lacking_acts:
                features.ensure_extracted(
                    ctx,
                    list(dict.fromkeys(lacking_acts)),
                    self.layer_indices,
                    self.batch_size,
                    retries,
                    None if self.cache_pooled else ["all"],
                )
        evict()
        n = len(prompts)
        n_acts = int(acts.sum())
        n_ppl = int(ppl.sum()) if ppl is not None else 0
        n_logits = int(logits.sum()) if logits is not None else 0
        return WarmupStats(
            total_prompts=n,
            activations_cached=n_acts,
            activations_extracted=n - n_acts,
            perplexity_cached=n_ppl,
            perplexity_extracted=n - n_ppl if ppl is not None else 0,
            elapsed_seconds=time.perf_counter() - start,
            logits_cached=n_logits,
            logits_extracted=n - n_logits if logits is not None else 0,
        )

    # ------------------------------------------------------------------ reads

    def _nonempty(self, prompts: Sequence[str]) -> list[str]:
        return check_prompts(prompts, "prompts", non_empty=True)

    def get_activations(self, prompts: Sequence[str], remote: bool | None = None) -> tuple[Any, Any | None]:
        """Return the prompts' activations at :attr:`layer_indices`, warming the cache first.

        Parameters
        ----------
        prompts : sequence of str
        remote : bool, optional
            Overrides the instance's ``remote`` for the warmup.

        Returns
        -------
        activations : torch.Tensor, float32
            ``cache_pooled=True``: ``(n_prompts, n_layers * hidden)``, the ``pooling`` vectors, layers side by side in
            ascending order. ``cache_pooled=False``: ``(n_prompts, longest, n_layers * hidden)``, each prompt's real
            tokens from position 0, zeros after them.
        attention_mask : torch.Tensor of shape (n_prompts, longest), int64, or None
            1 on real tokens (``cache_pooled=False``); None for pooled activations.
        """
        import torch

        prompts = self._nonempty(prompts)
        self.warmup(prompts, remote=remote)
        ctx = self._context(remote)
        layers = self.layer_indices
        if self.cache_pooled:
            return torch.from_numpy(np.ascontiguousarray(ctx.store.read_pooled(prompts, layers, self.pooling))), None
        values, offsets = ctx.store.read_tokens(prompts, layers)
        padded = pad_rows(np.asarray(values, dtype=np.float32), np.asarray(offsets), 0.0)
        counts = np.diff(offsets)
        mask = (np.arange(padded.shape[1])[None, :] < counts[:, None]).astype(np.int64)
        return torch.from_numpy(padded), torch.from_numpy(mask)

    def get_perplexity(self, prompts: Sequence[str], remote: bool | None = None) -> np.ndarray:
        """Return the prompts' perplexity features, warming the cache first.

        Parameters
        ----------
        prompts : sequence of str
        remote : bool, optional
            Overrides the instance's ``remote`` for the warmup.

        Returns
        -------
        numpy.ndarray of shape (n_prompts, 3), float32
            ``exp`` of the mean, smallest and largest cross-entropy of each prompt's predicted tokens.

        Raises
        ------
        InvalidInputError
            If the cache was built with ``compute_perplexity=False``.
        """
        from fastprobe.extraction.perplexity import perplexity_store

        if not self.compute_perplexity:
            raise InvalidInputError(
                "this UnifiedCache was created with compute_perplexity=False, so it caches no perplexity; create one "
                "with compute_perplexity=True"
            )
        prompts = self._nonempty(prompts)
        self.warmup(prompts, remote=remote)
        store = perplexity_store(self._context(remote))
        return np.asarray(store.read_pooled(prompts, [0], "last_token"), dtype=np.float32)

    def _read_logits(self, ctx: ModelContext, prompts: list[str], positions: str, top_k: int | None) -> CachedLogits:
        import torch

        store = self._logit_store(ctx, positions, top_k)
        sites = self._logit_sites(top_k)
        if positions == "last":
            parts = [np.asarray(store.read_pooled(prompts, [s], "last_token"))[:, None, :] for s in sites]
        else:
            fill = (np.nan, -1.0)
            parts = []
            for s in sites:
                values, offsets = store.read_tokens(prompts, [s])
                parts.append(pad_rows(np.asarray(values, dtype=np.float32), np.asarray(offsets), fill[s]))
        indices = None
        if top_k is not None:
            indices = torch.from_numpy(np.rint(parts[1]).astype(np.int32))
        return CachedLogits(torch.from_numpy(np.ascontiguousarray(parts[0])), indices, top_k, positions)

    def get_logits(self, prompts: Sequence[str], remote: bool | None = None) -> CachedLogits:
        """Return the prompts' cached logits, warming the cache first.

        Parameters
        ----------
        prompts : sequence of str
        remote : bool, optional
            Overrides the instance's ``remote`` for the warmup.

        Returns
        -------
        CachedLogits
            ``values`` of shape ``(n_prompts, 1 or longest, vocab_size or logit_top_k)``.

        Raises
        ------
        InvalidInputError
            If the cache was built with ``cache_logits=False``.
        """
        if not self.cache_logits:
            raise InvalidInputError(
                "this UnifiedCache was created with cache_logits=False, so it caches no logits; create one with "
                "cache_logits=True"
            )
        prompts = self._nonempty(prompts)
        self.warmup(prompts, remote=remote)
        return self._read_logits(self._context(remote), prompts, self.logit_positions, self.logit_top_k)

    # ------------------------------------------------------------------ from cached activations

    def _last_layer(self, ctx: ModelContext, what: str) -> int:
        last = ctx.loaded.n_layers - 1
        if last not in self.layer_indices:
            raise InvalidInputError(
                f"Last layer ({last}) is not among this cache's layers {self.layer_indices}; {what} needs the last "
                "layer's activations: create the UnifiedCache with layers including it (e.g. 'all' or 'last')"
            )
        return last

    def _ensure_cached(self, ctx: ModelContext, prompts: list[str], tokens: bool, device: str | None) -> ModelContext:
        """Extract the activations of prompts the cache lacks (at this cache's layers); return a usable context."""
        from fastprobe.store import cache_keeps_tokens

        keep = cache_keeps_tokens(tokens or not self.cache_pooled)
        lacking = missing(prompts, ctx.store.contains(prompts, self.layer_indices, tokens=keep))
        if lacking:
            ctx = self._full_context(device=device)
            features.ensure_extracted(ctx, lacking, self.layer_indices, self.batch_size, 0, ["all"] if keep else None)
        return ctx

    def compute_logits_from_cache(
        self,
        prompts: Sequence[str],
        positions: str = "last",
        top_k: int | None = None,
        device: str | None = None,
        batch_size: int = 64,
    ) -> int:
        """Cache logits computed from the cached last layer's activations (final norm, then the LM head).

        No forward pass runs for prompts whose last-layer activations are cached (the others are extracted first,
        at this cache's layers). The result is what :meth:`get_logits` reads on a cache with
        ``logit_positions=positions`` and ``logit_top_k=top_k``.

        Parameters
        ----------
        prompts : sequence of str
        positions : {"last", "all"}, default="last"
            The last real token of each prompt, or every real token (which needs every token cached:
            ``cache_pooled=False``; with a pooled cache, the prompts run again to cache their tokens).
        top_k : int, optional
            Cache only the ``k`` largest logits per position, with their token ids.
        device : str, optional
            Where to compute (default: the instance's ``device``).
        batch_size : int, default=64
            Prompts per matrix product.

        Returns
        -------
        int
            The number of prompts whose logits were computed (those already cached are skipped).

        Raises
        ------
        InvalidInputError
            If the last layer is not among :attr:`layer_indices` (message starting "Last layer").
        UnknownOptionError
            If ``positions`` is not "last" or "all".
        """
        if positions not in LOGIT_POSITIONS:
            raise UnknownOptionError(f"unknown positions {positions!r}; expected one of: {', '.join(LOGIT_POSITIONS)}")
        positive_int(top_k, "top_k", allow_none=True)
        positive_int(batch_size, "batch_size")
        prompts = self._nonempty(prompts)
        ctx = self._context(device=device)
        last = self._last_layer(ctx, "computing logits")
        store = self._logit_store(ctx, positions, top_k)
        unique = list(dict.fromkeys(prompts))
        todo = missing(unique, store.contains(unique, self._logit_sites(top_k)))
        if not todo:
            return 0
        ctx = self._ensure_cached(ctx, todo, positions == "all", device)
        logits_from_cache(ctx, todo, last, LogitWriter(store, positions, top_k), positions, batch_size)
        return len(todo)

    def compute_perplexity_from_cache(
        self, prompts: Sequence[str], device: str | None = None, batch_size: int = 16
    ) -> int:
        """Cache perplexity features computed from the cached last layer's token activations.

        The logits of every token are rebuilt from the cached last-layer activations (final norm, then the LM head)
        and scored against the prompt's tokens; only the features are cached, never the logits. Needs every token
        cached (``cache_pooled=False``); prompts the cache lacks are extracted first.

        Parameters
        ----------
        prompts : sequence of str
        device : str, optional
            Where to compute (default: the instance's ``device``).
        batch_size : int, default=16
            Prompts per batch.

        Returns
        -------
        int
            The number of prompts whose perplexity was computed (those already cached are skipped).

        Raises
        ------
        InvalidInputError
            If the last layer is not among :attr:`layer_indices` (message starting "Last layer"), or a prompt is a
            single token.
        """
        from fastprobe.extraction.perplexity import (
            check_predictable,
            perplexity_store,
        )
        from fastprobe.model import tokenize

        positive_int(batch_size, "batch_size")
        prompts = self._nonempty(prompts)
        ctx = self._context(device=device)
        last = self._last_layer(ctx, "computing perplexity")
        store = perplexity_store(ctx)
        unique = list(dict.fromkeys(prompts))
        todo = missing(unique, store.contains(unique, [0]))
        if not todo:
            return 0
        rows = tokenize(ctx.loaded, todo)
        check_predictable(todo, rows)
        ctx = self._ensure_cached(ctx, todo, True, device)
        perplexity_from_cache(ctx, todo, rows, last, store, batch_size)
        return len(todo)
