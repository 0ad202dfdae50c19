"""The activation store and fastprobe's cache of extracted activations.

:class:`ActivationStore` is one directory of compressed, checksummed activations for one model fingerprint (see
``docs/store-format.md``). The cache is a root directory holding one store per fingerprint; the module-level
functions (:func:`cache_info`, :func:`set_cache_dtype`, :func:`set_cache_limit`, :func:`set_cache_backend`,
:func:`evict`, :func:`clear_cache`, :func:`list_cached_prompts`, :func:`discover_cached`,
:func:`enable_cache_logging`, :func:`load_layer_across_prompts`, :func:`load_layer_last_token`,
:func:`invalidate_extraction_cache`) have lmprobe's names and meaning; :func:`set_cache_tokens` is fastprobe's own.

Configuration, each settable in code or by environment variable (the ``LMPROBE_`` name is read when the
``FASTPROBE_`` one is unset):

- cache root: :func:`set_cache_backend` / ``FASTPROBE_CACHE_DIR``, default ``~/.cache/fastprobe/activations``;
- byte budget: :func:`set_cache_limit` / ``FASTPROBE_CACHE_MAX_GB`` (unset: unlimited), enforced by :func:`evict`;
- storage dtype of new stores: :func:`set_cache_dtype` / ``FASTPROBE_CACHE_DTYPE`` (default ``float16``: 11
  significant bits, so probes on cached activations agree with probes on float32 ones; a batch beyond float16's range
  is stored in float32).
- what a probe caches: :func:`set_cache_tokens` / ``FASTPROBE_CACHE_TOKENS``. ``"auto"`` (the default) keeps the
  tokens only when the probe's pooling needs them (max, min, a score-stage pooling, ``"all"``) and otherwise writes
  pooled-only records (last token, mean and first token: 30% of the bytes on 10-token statements, less on longer
  prompts); a later probe that needs the tokens runs those prompts again. ``"always"`` keeps every token.

A store holds three kinds of record per (prompt, site): every token with the pooled vectors, the pooled vectors only
(``keep_tokens=False``), or the last-token vector only (:meth:`ActivationStore.write_last_token`, what a pooled
activation dataset gives). A read that needs more than a prompt's record keeps reports the prompt as missing, and
:meth:`ActivationStore.contains` answers for what the caller will read, so the cache runs the model for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fastprobe import _core
from fastprobe._arrays import to_numpy
from fastprobe.exceptions import (
    ArgumentTypeError,
    InvalidInputError,
    MissingActivationsError,
    ShapeMismatchError,
    UnknownOptionError,
)
from fastprobe.models import cache_root
from fastprobe.sites import SiteSpec, store_ids

__all__ = [
    "STORAGE_DTYPES",
    "ActivationStore",
    "CacheInfo",
    "CachedPromptInfo",
    "ManifestEntry",
    "ModelCacheInfo",
    "cache_dir",
    "cache_info",
    "clear_cache",
    "discover_cached",
    "enable_cache_logging",
    "evict",
    "invalidate_extraction_cache",
    "list_cached_prompts",
    "load_layer_across_prompts",
    "load_layer_last_token",
    "model_store",
    "required_content",
    "set_cache_backend",
    "set_cache_dtype",
    "set_cache_limit",
    "set_cache_tokens",
]

#: Storage dtypes a store accepts.
STORAGE_DTYPES: tuple[str, ...] = tuple(_core.STORAGE_DTYPES)
_POOLED = ("last_token", "mean", "first_token")


class ActivationStore:
    """A directory of activations: unpadded tokens per (prompt, site) with their pooled vectors beside them.

    Writes are atomic per batch and safe against a killed process; any number of processes may read while one
    writes (other writers wait on a file lock). Reads are batched: one call returns one contiguous array.

    Parameters
    ----------
    path : str or path-like
        The store's directory; created if it does not exist.
    dtype : {"float32", "float16", "bfloat16"}, default="bfloat16"
        Storage dtype of a new store (an existing store keeps the dtype it was created with). float32 round-trips
        bit-exactly; the half types round to nearest even.
    fingerprint : dict, optional
        Free description recorded in a new store (for the cache: what produced the activations).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> store = ActivationStore(tempfile.mkdtemp(), dtype="float32")
    >>> tokens = np.arange(10, dtype=np.float32).reshape(1, 5, 2)  # 1 site, 2 + 3 tokens, hidden 2
    >>> store.write(["first prompt", "second prompt"], tokens, counts=[2, 3], sites=[0])
    >>> store.read_pooled(["second prompt"], sites=[0], pooling="mean")
    array([[6., 7.]], dtype=float32)
    """

    def __init__(
        self, path: str | os.PathLike[str], dtype: str = "bfloat16", fingerprint: dict[str, Any] | None = None
    ):
        if dtype not in STORAGE_DTYPES:
            raise UnknownOptionError(f"unknown storage dtype {dtype!r}; expected one of: {', '.join(STORAGE_DTYPES)}")
        self._inner = _core.ActivationStore(os.fspath(path), dtype, json.dumps(fingerprint or {}, sort_keys=True))

    def __repr__(self) -> str:
        return f"ActivationStore({str(self.path)!r}, dtype={self.dtype!r})"

    @property
    def path(self) -> Path:
        """The store's directory."""
        return Path(self._inner.path)

    @property
    def dtype(self) -> str:
        """The storage dtype recorded at creation."""
        return str(self._inner.dtype)

    @property
    def fingerprint(self) -> dict[str, Any]:
        """The description recorded at creation."""
        return dict(json.loads(self._inner.description()).get("fingerprint", {}))

    def write(
        self,
        prompts: Sequence[str],
        tokens: Any,
        counts: Any,
        sites: Sequence[SiteSpec],
        *,
        dtype: str | None = None,
        n_threads: int | None = None,
        keep_tokens: bool = True,
    ) -> None:
        """Store a batch of prompts at several sites, atomically.

        Parameters
        ----------
        prompts : sequence of str
            The prompts, in the order their tokens appear in ``tokens``.
        tokens : array-like or torch.Tensor of shape (n_sites, n_tokens, hidden)
            Unpadded token activations: prompt 0's tokens, then prompt 1's, ...; one slab per site.
        counts : array-like of int, shape (n_prompts,)
            Tokens per prompt (each at least 1; they sum to ``n_tokens``).
        sites : sequence of int or str
            The site of each slab: a layer (the residual stream after block ``i``) or a site name
            (:mod:`fastprobe.sites`).
        dtype : str, optional
            Storage dtype for this batch; defaults to the store's.
        n_threads : int, optional
            Threads used to compress.
        keep_tokens : bool, default=True
            Store the tokens beside the pooled vectors. False writes pooled-only records: the last-token, mean and
            first-token vectors (and the token counts) without the tokens, a fraction of the bytes. They serve
            :meth:`read_pooled` with those three poolings; :meth:`read_tokens`, ``"max"`` and ``"min"`` need the
            prompt written again with its tokens, which supersedes them. (Records of the last-token vector alone are
            written by :meth:`write_last_token`.)

        Raises
        ------
        ShapeMismatchError
            If ``tokens``, ``counts``, ``prompts`` and ``sites`` disagree.
        FastprobeIOError
            If the disk fails; nothing of the batch becomes visible then.
        """
        t = to_numpy(tokens, dtype=np.float32, name="tokens", ndim=3)
        c = to_numpy(counts, dtype=np.int64, name="counts", ndim=1)
        if t.shape[0] != len(sites):
            raise ShapeMismatchError(f"tokens: expected one slab per site ({len(sites)}), got shape {t.shape}")
        self._inner.write(list(prompts), c, store_ids(sites), t, dtype, n_threads, bool(keep_tokens))

    def write_last_token(
        self,
        prompts: Sequence[str],
        vectors: Any,
        counts: Any,
        sites: Sequence[SiteSpec],
        *,
        dtype: str | None = None,
        n_threads: int | None = None,
    ) -> None:
        """Store each prompt's last-token vector (and token count) alone, at several sites, atomically.

        For activations known only at the last token, such as a pooled activation dataset's. These last-token-only
        records serve :meth:`read_pooled` with ``"last_token"`` and nothing else: the mean, the first token, max, min
        and :meth:`read_tokens` report the prompt as missing (:class:`~fastprobe.exceptions.MissingActivationsError`),
        :meth:`contains` counts it present only for ``pooling="last_token"``, and a later :meth:`write` of the
        prompt at that site (pooled-only or with its tokens) supersedes the record. The first such write raises the
        store's format version to 3 (``docs/store-format.md``), which older fastprobe versions refuse to open.

        Parameters
        ----------
        prompts : sequence of str
            The prompts, in the order of ``vectors``' rows.
        vectors : array-like or torch.Tensor of shape (n_sites, n_prompts, hidden)
            The last-token vectors: one slab per site, one row per prompt.
        counts : array-like of int, shape (n_prompts,)
            Each prompt's token count (at least 1), kept for listings (:meth:`prompts`).
        sites : sequence of int or str
            The site of each slab: layers or site names (:mod:`fastprobe.sites`).
        dtype : str, optional
            Storage dtype for this batch; defaults to the store's.
        n_threads : int, optional
            Threads used to compress.

        Raises
        ------
        ShapeMismatchError
            If ``vectors`` is not 3-D, or its slabs, rows, ``counts``, ``prompts`` and ``sites`` disagree.
        InvalidInputError
            If the batch is empty, a count is below 1 or a site appears twice.
        FastprobeIOError
            If the disk fails; nothing of the batch becomes visible then.

        Examples
        --------
        >>> import numpy as np, tempfile
        >>> store = ActivationStore(tempfile.mkdtemp(), dtype="float32")
        >>> store.write_last_token(["a prompt"], np.array([[[1.0, 2.0]]], dtype=np.float32), counts=[3], sites=[0])
        >>> store.read_pooled(["a prompt"], [0], "last_token")
        array([[1., 2.]], dtype=float32)
        >>> store.contains(["a prompt"], [0], pooling="last_token"), store.contains(["a prompt"], [0], pooling="mean")
        (array([ True]), array([False]))
        """
        v = to_numpy(vectors, dtype=np.float32, name="vectors", ndim=3)
        c = to_numpy(counts, dtype=np.int64, name="counts", ndim=1)
        names = list(prompts)
        if v.shape[0] != len(sites):
            raise ShapeMismatchError(
                f"vectors: expected shape (n_sites={len(sites)}, n_prompts={len(names)}, hidden), one slab per site; "
                f"got {v.shape}"
            )
        if v.shape[1] != len(names):
            raise ShapeMismatchError(
                f"vectors: expected shape (n_sites={len(sites)}, n_prompts={len(names)}, hidden), one row per "
                f"prompt; got {v.shape}"
            )
        if c.shape[0] != len(names):
            raise ShapeMismatchError(f"counts: expected shape ({len(names)},), one per prompt; got {c.shape}")
        if c.size and int(c.min()) < 1:
            i = int(np.argmin(c))
            raise InvalidInputError(f"counts[{i}] is {int(c[i])}; every stored prompt needs at least 1 token")
        self._inner.write_last_token(names, c, store_ids(sites), np.ascontiguousarray(v), dtype, n_threads)

    def write_padded(
        self,
        prompts: Sequence[str],
        hidden: Sequence[Any],
        attention_mask: Any,
        sites: Sequence[SiteSpec],
        *,
        dtype: str | None = None,
        keep_tokens: bool = True,
    ) -> None:
        """Store a padded batch: the padding is dropped using the mask (either padding side).

        Parameters
        ----------
        prompts : sequence of str
            One per batch row.
        hidden : sequence of array-like or torch.Tensor, each (batch, seq, hidden)
            One per site.
        attention_mask : array-like or torch.Tensor of shape (batch, seq)
            Nonzero on real tokens.
        sites : sequence of int or str
            The site of each entry of ``hidden`` (layers or site names).
        dtype : str, optional
            Storage dtype for this batch.
        keep_tokens : bool, default=True
            As in :meth:`write`.
        """
        mask = to_numpy(attention_mask, dtype=np.bool_, name="attention_mask", ndim=2)
        slabs = [to_numpy(h, dtype=np.float32, name="hidden", ndim=3)[mask] for h in hidden]
        self.write(prompts, np.stack(slabs), mask.sum(axis=1), sites, dtype=dtype, keep_tokens=keep_tokens)

    def read_pooled(
        self,
        prompts: Sequence[str],
        sites: Sequence[SiteSpec],
        pooling: str = "last_token",
        *,
        n_threads: int | None = None,
    ) -> np.ndarray:
        """Pooled activations of every (prompt, site) in one call.

        Parameters
        ----------
        prompts : sequence of str
        sites : sequence of int or str
            Layers or site names, concatenated along features in the order given.
        pooling : {"last_token", "first_token", "mean", "max", "min"}, default="last_token"
            The first three are read from the stored pooled vectors; max and min are computed from the tokens, so
            they need prompts stored with their tokens. Only ``"last_token"`` reads last-token-only records
            (:meth:`write_last_token`).
        n_threads : int, optional
            Threads used to decompress.

        Returns
        -------
        numpy.ndarray of shape (n_prompts, n_sites * hidden), float32

        Raises
        ------
        MissingActivationsError
            If a prompt is not stored at a site, or only in a record that lacks the pooling (for max and min, a
            record without its tokens; for mean and first token, a last-token-only record). The message names the
            prompt, the site and what its record lacks.
        CorruptStoreError
            If a record fails its checks; the message names the segment file, record and prompt.
        """
        return np.asarray(self._inner.read_pooled(list(prompts), store_ids(sites), pooling, n_threads))

    def read_tokens(
        self, prompts: Sequence[str], sites: Sequence[SiteSpec], *, n_threads: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Token-level activations of every prompt, ragged.

        Parameters
        ----------
        prompts : sequence of str
        sites : sequence of int or str
            Layers or site names.
        n_threads : int, optional

        Returns
        -------
        values : numpy.ndarray of shape (n_tokens, n_sites * hidden), float32
        offsets : numpy.ndarray of shape (n_prompts + 1,), int64
            Prompt ``i`` owns ``values[offsets[i]:offsets[i + 1]]``.

        Raises
        ------
        MissingActivationsError
            If a prompt is not stored at a site, or is stored there without its tokens (pooled-only or
            last-token-only).
        """
        values, offsets = self._inner.read_tokens(list(prompts), store_ids(sites), n_threads)
        return np.asarray(values), np.asarray(offsets)

    def contains(
        self,
        prompts: Sequence[str],
        sites: Sequence[SiteSpec],
        *,
        tokens: bool = False,
        pooling: str | Sequence[str] | None = None,
    ) -> np.ndarray:
        """Whether each prompt is stored at every one of ``sites`` in a record that serves what the caller reads.

        Parameters
        ----------
        prompts : sequence of str
        sites : sequence of int or str
            Layers or site names.
        tokens : bool, default=False
            The caller reads tokens: only records with every token count.
        pooling : str or sequence of str, optional
            The poolings the caller reads (any name :func:`~fastprobe.pooling.parse_pooling` takes): a record counts
            when it serves every one of them. ``"last_token"`` counts every kind of record; ``"mean"`` and
            ``"first_token"`` need at least a pooled-only record; poolings that read tokens (``"max"``, ``"min"``,
            score-stage poolings, ``"all"``) need the tokens. An empty sequence counts every kind of record. None
            (the default, with ``tokens=False``): the three pooled vectors (last token, mean, first token), so
            last-token-only records (:meth:`write_last_token`) do not count.

        Returns
        -------
        numpy.ndarray of shape (n_prompts,), bool

        Raises
        ------
        UnknownOptionError
            If a pooling name is unknown.
        """
        read = required_content(pooling)
        need_tokens = bool(tokens) or read == "tokens"
        wanted = None if need_tokens or read is None else read
        return np.asarray(self._inner.contains(list(prompts), store_ids(sites), need_tokens, wanted), dtype=bool)

    def prompts(self) -> list[tuple[str, list[int], int]]:
        """Every stored prompt with its sites and token count, sorted by prompt."""
        return [(p, list(s), int(t)) for p, s, t in self._inner.prompts()]

    def stats(self) -> dict[str, Any]:
        """Return the record, prompt and site counts, live bytes and bytes on disk."""
        return dict(self._inner.stats())

    def verify(self) -> list[str]:
        """Check every record and the index; one line per problem (empty: sound)."""
        return list(self._inner.verify())

    def evict(self, budget_bytes: int) -> int:
        """Drop least-recently-used records until the store takes at most ``budget_bytes``; returns bytes freed."""
        if budget_bytes < 0:
            raise InvalidInputError(f"budget_bytes must be >= 0; got {budget_bytes}")
        return int(self._inner.evict(int(budget_bytes)))

    def compact(self) -> int:
        """Reclaim the space of evicted and superseded records; returns bytes freed."""
        return int(self._inner.compact())


def required_content(pooling: str | Sequence[str] | None) -> str | None:
    """Return what a stored record must hold to serve reads with ``pooling``.

    Parameters
    ----------
    pooling : str, sequence of str or None
        Pooling names :func:`fastprobe.pooling.parse_pooling` accepts.

    Returns
    -------
    str or None
        ``"tokens"`` (every token), ``"mean"`` (the three pooled vectors), ``"last_token"`` (any record), or None
        when no pooling was named.
    """
    from fastprobe.pooling import parse_pooling

    if pooling is None:
        return None
    names = [pooling] if isinstance(pooling, str) else list(pooling)
    specs = [parse_pooling(name) for name in names]
    if any(spec.needs_tokens for spec in specs):
        return "tokens"
    if any(spec.base != "last_token" for spec in specs):
        return "mean"
    return "last_token"


# ---------------------------------------------------------------------------------------------- the cache

_LOCK = threading.RLock()
_UNSET: Any = object()
_settings: dict[str, Any] = {"dir": _UNSET, "limit": _UNSET, "dtype": _UNSET, "tokens": _UNSET}
#: Values of :func:`set_cache_tokens`.
CACHE_TOKENS_MODES = ("auto", "always")
_stores: dict[tuple[str, str], ActivationStore] = {}


def _env(name: str) -> str | None:
    return os.environ.get(f"FASTPROBE_{name}") or os.environ.get(f"LMPROBE_{name}")


def cache_dir() -> Path:
    """Return the cache root: :func:`set_cache_backend`, else ``FASTPROBE_CACHE_DIR``, else the default.

    Returns
    -------
    pathlib.Path
    """
    with _LOCK:
        if _settings["dir"] is not _UNSET and _settings["dir"] is not None:
            return Path(_settings["dir"])
    env = _env("CACHE_DIR")
    return Path(env) if env else cache_root() / "activations"


def _cache_dtype() -> str:
    with _LOCK:
        if _settings["dtype"] is not _UNSET and _settings["dtype"] is not None:
            return str(_settings["dtype"])
    env = _env("CACHE_DTYPE")
    if env and env not in STORAGE_DTYPES:
        raise UnknownOptionError(f"FASTPROBE_CACHE_DTYPE={env!r}; expected one of: {', '.join(STORAGE_DTYPES)}")
    return env or "float16"


def cache_keeps_tokens(needed: bool) -> bool:
    """Return whether the cache should keep tokens for a probe whose poolings need them (``needed``) or not."""
    with _LOCK:
        mode = _settings["tokens"]
    if mode is _UNSET or mode is None:
        mode = _env("CACHE_TOKENS") or "auto"
        if mode not in CACHE_TOKENS_MODES:
            raise UnknownOptionError(
                f"FASTPROBE_CACHE_TOKENS={mode!r}; expected one of: {', '.join(CACHE_TOKENS_MODES)}"
            )
    return needed or mode == "always"


def _cache_limit_bytes() -> int | None:
    with _LOCK:
        if _settings["limit"] is not _UNSET:
            gb = _settings["limit"]
            return None if gb is None else int(float(gb) * 1024**3)
    env = _env("CACHE_MAX_GB")
    if not env:
        return None
    try:
        return int(float(env) * 1024**3)
    except ValueError:
        raise InvalidInputError(f"FASTPROBE_CACHE_MAX_GB must be a number of gigabytes; got {env!r}") from None


def set_cache_backend(backend: str | os.PathLike[str] | None) -> None:
    """Use ``backend`` (a local directory) as the cache root; None goes back to ``FASTPROBE_CACHE_DIR`` / default.

    Parameters
    ----------
    backend : str, path-like or None

    Raises
    ------
    ArgumentTypeError
        If ``backend`` is neither a path nor None (also a :class:`TypeError`).
    UnknownOptionError
        For a URI of another storage (``s3://...``): the cache is a local directory.
    """
    if backend is not None and not isinstance(backend, (str, os.PathLike)):
        raise ArgumentTypeError(
            f"Expected CacheBackend, str, or None: set_cache_backend takes a local directory path or None; got "
            f"{type(backend).__name__}"
        )
    if isinstance(backend, str) and "://" in backend and not backend.startswith("file://"):
        raise UnknownOptionError(
            f"Unsupported cache backend {backend!r}: fastprobe's activation cache is a local directory (a path, or "
            "a file:// URI)"
        )
    if isinstance(backend, str) and backend.startswith("file://"):
        backend = backend.removeprefix("file://")
    with _LOCK:
        _settings["dir"] = None if backend is None else os.fspath(backend)
        _stores.clear()


def set_cache_dtype(dtype: str | None = None) -> None:
    """Set the storage dtype of stores created from now on; None goes back to ``FASTPROBE_CACHE_DTYPE`` / float16.

    Parameters
    ----------
    dtype : {"float32", "float16", "bfloat16"} or None
    """
    if dtype is not None and dtype not in STORAGE_DTYPES:
        raise UnknownOptionError(f"Unknown dtype {dtype!r} for the cache; expected one of: {', '.join(STORAGE_DTYPES)}")
    with _LOCK:
        _settings["dtype"] = dtype


def set_cache_tokens(mode: str | None = None) -> None:
    """Choose what probes cache; None goes back to ``FASTPROBE_CACHE_TOKENS`` / ``"auto"``.

    Parameters
    ----------
    mode : {"auto", "always"} or None
        ``"auto"``: keep every token only when the probe's pooling needs them (``max``, ``min``, a ``score:``
        pooling, ``"all"``), else store the pooled vectors alone (last token, mean, first token): 30% of the bytes
        on 10-token statements, less on longer prompts. A later probe that needs the tokens of prompts cached
        pooled-only runs them again, once.
        ``"always"``: keep every token, so that any pooling can be tried later without running the model.
    """
    if mode is not None and mode not in CACHE_TOKENS_MODES:
        raise UnknownOptionError(
            f"unknown cache tokens mode {mode!r}; expected one of: {', '.join(CACHE_TOKENS_MODES)}"
        )
    with _LOCK:
        _settings["tokens"] = mode


def set_cache_limit(gb: float | None = None) -> None:
    """Set the cache's byte budget in GiB (None: unlimited); :func:`evict` enforces it.

    Parameters
    ----------
    gb : float or None
    """
    if gb is not None and (not isinstance(gb, (int, float)) or gb < 0):
        raise InvalidInputError(f"the cache limit must be a non-negative number of gigabytes or None; got {gb!r}")
    with _LOCK:
        _settings["limit"] = gb


def _fingerprint_id(fingerprint: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]


def model_store(fingerprint: dict[str, Any]) -> ActivationStore:
    """Return (opening or creating) the cache's store for a model fingerprint.

    Parameters
    ----------
    fingerprint : dict
        Everything that changes activations (model id or path, revision or weights hash, dtype, tokenizer and
        special-token settings, hook site); its ``"model"`` entry names the model for listings.

    Returns
    -------
    ActivationStore
    """
    root = cache_dir()
    fid = _fingerprint_id(fingerprint)
    with _LOCK:
        key = (os.fspath(root), fid)
        if key not in _stores:
            _stores[key] = ActivationStore(root / fid, dtype=_cache_dtype(), fingerprint=fingerprint)
        return _stores[key]


#: Fingerprint sites of the stores that hold something other than activations (one row of values per prompt).
SIDECAR_SITES: tuple[str, ...] = ("perplexity", "logits")


def _activation_dirs(model: str | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """Return the stores of activations (not the perplexity or logits sidecars) of ``model`` (or of every model)."""
    return [(d, fp) for d, fp in _model_dirs(model) if fp.get("site") not in SIDECAR_SITES]


def _sidecar_key(fp: dict[str, Any]) -> str:
    """Return what a sidecar store belongs to: its fingerprint without the sidecar's own entries, as a string."""
    rest = {k: v for k, v in fp.items() if k not in ("site", "positions", "top_k")}
    return json.dumps(rest, sort_keys=True)


def _model_dirs(model: str | None = None) -> list[tuple[Path, dict[str, Any]]]:
    root = cache_dir()
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir()):
        desc = d / "store.json"
        if not desc.is_file():
            continue
        try:
            fp = json.loads(desc.read_text()).get("fingerprint", {})
        except (OSError, ValueError):
            continue
        if model is None or fp.get("model") == model:
            out.append((d, fp))
    return out


def _open(d: Path) -> ActivationStore:
    with _LOCK:
        key = (os.fspath(d.parent), d.name)
        if key not in _stores:
            _stores[key] = ActivationStore(d)
        return _stores[key]


@dataclass
class ModelCacheInfo:
    """Cache usage of one model fingerprint."""

    model_name: str | None
    model_hash: str
    size_bytes: int
    num_prompts: int
    num_layers: int
    has_pooled: bool
    has_perplexity: bool
    has_logits: bool = False

    @property
    def size_gb(self) -> float:
        """Size in GiB."""
        return self.size_bytes / 1024**3

    def __repr__(self) -> str:
        flags = [("pooled", self.has_pooled), ("logits", self.has_logits), ("perplexity", self.has_perplexity)]
        extra = "".join(f", {name}" for name, on in flags if on)
        name = self.model_name if self.model_name else f"(store {self.model_hash})"
        return f"  {name}  {self.size_gb:.2f} GB  ({self.num_prompts} prompts, {self.num_layers} layers{extra})"


@dataclass
class CacheInfo:
    """Cache usage report."""

    cache_dir: Path | str
    total_size_bytes: int
    models: list[ModelCacheInfo] = field(default_factory=list)
    oldest_mtime: float | None = None
    newest_mtime: float | None = None
    cache_limit_bytes: int | None = None

    @property
    def total_size_gb(self) -> float:
        """Total size in GiB."""
        return self.total_size_bytes / 1024**3

    def __repr__(self) -> str:
        import time

        lines = [f"Cache directory: {self.cache_dir}", f"Total size: {self.total_size_gb:.2f} GB"]
        if self.cache_limit_bytes:
            lines.append(f"Size limit: {self.cache_limit_bytes / 1024**3:.2f} GB")
        if self.models:
            lines.append("Models:")
            lines += [repr(m) for m in sorted(self.models, key=lambda m: -m.size_bytes)]
        for label, stamp in (("Oldest entry", self.oldest_mtime), ("Newest entry", self.newest_mtime)):
            if stamp:
                lines.append(f"{label}: {time.strftime('%Y-%m-%d', time.localtime(stamp))}")
        return "\n".join(lines)


def cache_info(model: str | None = None) -> CacheInfo:
    """Report the cache's size, per model fingerprint.

    Parameters
    ----------
    model : str, optional
        Only stores whose fingerprint names this model.

    Returns
    -------
    CacheInfo
    """
    models = []
    mtimes: list[float] = []
    every = _model_dirs(model)
    sidecars: dict[str, set[str]] = {}
    for _, fp in every:
        if fp.get("site") in SIDECAR_SITES:
            sidecars.setdefault(_sidecar_key(fp), set()).add(str(fp["site"]))
    for d, fp in every:
        stats = _open(d).stats()
        mtimes.extend(p.stat().st_mtime for p in d.rglob("*") if p.is_file())
        if fp.get("site") in SIDECAR_SITES:
            continue
        beside = sidecars.get(_sidecar_key(fp), set())
        models.append(
            ModelCacheInfo(
                model_name=fp.get("model"),
                model_hash=d.name,
                size_bytes=int(stats["disk_bytes"]),
                num_prompts=int(stats["prompts"]),
                num_layers=len(stats["sites"]),
                has_pooled=stats["records"] > 0,
                has_perplexity="perplexity" in beside,
                has_logits="logits" in beside,
            )
        )
    return CacheInfo(
        cache_dir=cache_dir(),
        total_size_bytes=sum(m.size_bytes for m in models),
        models=models,
        oldest_mtime=min(mtimes) if mtimes else None,
        newest_mtime=max(mtimes) if mtimes else None,
        cache_limit_bytes=_cache_limit_bytes(),
    )


def evict() -> None:
    """Trim the cache to its limit (:func:`set_cache_limit`), least recently used records first.

    Stores are visited from the least recently used; each is trimmed just enough for the whole cache to fit.
    """
    limit = _cache_limit_bytes()
    if limit is None:
        return
    dirs = _model_dirs()

    def last_used(d: Path) -> float:
        files = [d / "access.bin", d / "index.fpi"]
        return max((f.stat().st_mtime for f in files if f.exists()), default=0.0)

    sizes = {d: _open(d).stats()["disk_bytes"] for d, _ in dirs}
    for d, _ in sorted(dirs, key=lambda x: last_used(x[0])):
        total = sum(sizes.values())
        if total <= limit:
            break
        _open(d).evict(max(0, limit - (total - sizes[d])))
        sizes[d] = _open(d).stats()["disk_bytes"]


def clear_cache() -> int:
    """Delete every store in the cache; returns the number of (prompt, store) entries deleted.

    Returns
    -------
    int
    """
    count = 0
    with _LOCK:
        for d, _ in _model_dirs():
            count += int(_open(d).stats()["prompts"])
            shutil.rmtree(d, ignore_errors=True)
        _stores.clear()
    return count


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
    for d, _ in _activation_dirs(model_name):
        store = _open(d)
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
    pooled: dict[str, set[int]] = {p: set() for p in _POOLED}
    num_tokens = None
    extras: dict[str, Any] = {}
    for d, fp in _model_dirs(model_name):
        store = _open(d)
        held = [(s, t) for p, s, t in store.prompts() if p == prompt]
        if not held:
            continue
        if fp.get("site") in SIDECAR_SITES:
            extras[str(fp["site"])] = fp.get("top_k")
            continue
        sites.update(held[0][0])
        num_tokens = held[0][1]
        for p in _POOLED:  # a last-token-only record (a pulled pooled dataset) holds no mean or first token
            pooled[p].update(s for s in held[0][0] if store.contains([prompt], [s], pooling=p)[0])
    if not sites:
        return None
    layers = sorted(sites)
    return CachedPromptInfo(
        raw_layers=layers,
        pooled={p: sorted(pooled[p]) for p in _POOLED},
        has_logits="logits" in extras,
        logits_top_k=extras.get("logits"),
        has_perplexity="perplexity" in extras,
        has_token_perplexity=False,
        num_tokens=num_tokens,
    )


#: The logger of cache hits, misses and writes (see :func:`enable_cache_logging`).
logger = logging.getLogger("fastprobe.cache")


def enable_cache_logging(level: int = logging.INFO) -> None:
    """Print the cache's hits and misses (which prompts are read back, which run through the model).

    Parameters
    ----------
    level : int, default=logging.INFO
        ``logging.INFO`` for one line per call; ``logging.DEBUG`` adds the store of each call.
    """
    logger.setLevel(level)
    if not any(getattr(h, "_fastprobe_cache", False) for h in logger.handlers):
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("[cache] %(message)s"))
        stream._fastprobe_cache = True  # type: ignore[attr-defined]
        logger.addHandler(stream)
    for handler in logger.handlers:
        handler.setLevel(level)


def invalidate_extraction_cache(cache_dir: str | os.PathLike[str]) -> None:
    """Delete one store of the cache (a directory :func:`model_store` made, as named by :func:`cache_info`).

    Nothing happens when it does not exist. Open handles to it are dropped, so the next read or write starts a new
    store there.

    Parameters
    ----------
    cache_dir : str or path-like
        The store's directory (``cache_dir() / model_hash``).
    """
    path = Path(cache_dir)
    with _LOCK:
        for key in [k for k in _stores if Path(k[0]) / k[1] == path]:
            del _stores[key]
        if path.is_dir():
            shutil.rmtree(path)


def _stores_holding(model_name: str, prompts: list[str], layer: int) -> list[ActivationStore]:
    """Return the stores of ``model_name`` (newest first) that hold every prompt's tokens at ``layer``."""
    out = []
    for d, _ in sorted(_activation_dirs(model_name), key=lambda x: -x[0].stat().st_mtime):
        store = _open(d)
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
    for d, _ in sorted(_activation_dirs(model_name), key=lambda x: -x[0].stat().st_mtime):
        store = _open(d)
        if wanted and bool(np.all(store.contains(wanted, [layer], pooling="last_token"))):
            return torch.from_numpy(np.asarray(store.read_pooled(wanted, [layer], "last_token"), dtype=np.float32))
    raise MissingActivationsError(
        f"No cached pooled (last-token) activations for model {model_name!r} at layer {layer} for all {len(wanted)} "
        "prompts; extract them first (e.g. with Probe.warmup)"
    )
