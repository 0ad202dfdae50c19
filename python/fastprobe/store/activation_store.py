"""The activation store: one directory of compressed, checksummed activations (see ``docs/store-format.md``).

A store holds three kinds of record per (prompt, site): every token with the pooled vectors, the pooled vectors only
(``keep_tokens=False``), or the last-token vector only (:meth:`ActivationStore.write_last_token`, what a pooled
activation dataset gives). A read that needs more than a prompt's record keeps reports the prompt as missing, and
:meth:`ActivationStore.contains` answers for what the caller will read, so the cache runs the model for it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fastprobe import _core
from fastprobe._arrays import to_numpy
from fastprobe.exceptions import InvalidInputError, ShapeMismatchError, UnknownOptionError
from fastprobe.sites import SiteSpec, store_ids
from fastprobe.store.pooling import parse_pooling

__all__ = ["STORAGE_DTYPES", "ActivationStore", "required_content"]

#: Storage dtypes a store accepts.
STORAGE_DTYPES: tuple[str, ...] = tuple(_core.STORAGE_DTYPES)


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
    def native(self) -> Any:
        """The Rust store handle (``fastprobe._core.ActivationStore``), for Rust-side readers such as the layer sweep.

        Read-only; the handle is shared with this store, so use it to pass the store to a Rust function, not to
        write behind the store's back.
        """
        return self._inner

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
    if pooling is None:
        return None
    names = [pooling] if isinstance(pooling, str) else list(pooling)
    specs = [parse_pooling(name) for name in names]
    if any(spec.needs_tokens for spec in specs):
        return "tokens"
    if any(spec.base != "last_token" for spec in specs):
        return "mean"
    return "last_token"
