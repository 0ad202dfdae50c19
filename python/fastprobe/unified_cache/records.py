"""The unified cache's records and results: warm-up counts, cached logits, and the logit writer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from fastprobe.exceptions import InvalidInputError

__all__ = [
    "LOGIT_RECORD",
    "CachedLogits",
    "LogitWriter",
    "WarmupStats",
    "missing",
    "pad_rows",
    "positive_int",
    "select_positions",
]

#: Prompts per record of the logits cache.
LOGIT_RECORD = 64

T = TypeVar("T")


@dataclass
class WarmupStats:
    """What one :meth:`UnifiedCache.warmup` found in the cache and what it computed.

    Attributes
    ----------
    total_prompts : int
        Prompts asked for (duplicates counted).
    activations_cached, activations_extracted : int
        Prompts whose activations were already cached, and prompts run through the model for them.
    perplexity_cached, perplexity_extracted : int
        Likewise for perplexity features (both 0 with ``compute_perplexity=False``).
    elapsed_seconds : float
        Wall time of the call.
    logits_cached, logits_extracted : int, default=0
        Likewise for logits (both 0 with ``cache_logits=False``).
    """

    total_prompts: int
    activations_cached: int
    activations_extracted: int
    perplexity_cached: int
    perplexity_extracted: int
    elapsed_seconds: float
    logits_cached: int = 0
    logits_extracted: int = 0

    @property
    def cache_hit_rate(self) -> float:
        """Share of the prompts whose activations were cached (0.0 for no prompts)."""
        return self.activations_cached / self.total_prompts if self.total_prompts else 0.0

    def __repr__(self) -> str:
        parts = [
            f"{self.total_prompts} prompts",
            f"activations {self.activations_cached} cached / {self.activations_extracted} extracted",
            f"perplexity {self.perplexity_cached} cached / {self.perplexity_extracted} extracted",
        ]
        if self.logits_cached or self.logits_extracted:
            parts.append(f"logits {self.logits_cached} cached / {self.logits_extracted} extracted")
        parts.append(f"{self.elapsed_seconds:.1f} s")
        return f"WarmupStats({', '.join(parts)})"


@dataclass
class CachedLogits:
    """Logits read from the cache by :meth:`UnifiedCache.get_logits`.

    Attributes
    ----------
    values : torch.Tensor of shape (n_prompts, positions, vocab_size or top_k), float32
        The logits, or the ``top_k`` largest in decreasing order. With ``positions="all"``, prompts are right-padded
        to the longest; padded positions hold NaN.
    indices : torch.Tensor of shape (n_prompts, positions, top_k), int32, or None
        The token ids of ``values`` (padded positions: -1); None for full logits.
    top_k : int or None
        ``k`` of top-k logits; None for full logits.
    positions : {"last", "all"}
        The last real token of each prompt, or every real token.
    """

    values: Any
    indices: Any | None
    top_k: int | None
    positions: str


def positive_int(value: Any, name: str, allow_none: bool = False) -> None:
    """Refuse a value that is not an int >= 1 (None allowed with ``allow_none``)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInputError(f"{name} must be a positive int{' or None' if allow_none else ''}; got {value!r}")


def missing(prompts: Sequence[str], have: Any) -> list[str]:
    """Return the prompts whose entry of ``have`` (a bool array from ``store.contains``) is False."""
    return [p for p, present in zip(prompts, have, strict=True) if not present]


class LogitWriter:
    """Buffers logits rows per prompt and writes a record to the logits store every :data:`LOGIT_RECORD` prompts.

    Site 0 holds the values (in the store's dtype, float32 beyond float16's range), site 1 the top-k token ids (in
    float32, exact up to 2**24). ``positions="last"`` writes pooled-only records (one row per prompt).
    """

    def __init__(self, store: Any, positions: str, top_k: int | None) -> None:
        self.store = store
        self.positions = positions
        self.top_k = top_k
        self.names: list[str] = []
        self.values: list[np.ndarray] = []
        self.indices: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []

    def add(self, names: Sequence[str], rows: Any, counts: np.ndarray) -> None:
        """Add ``rows`` (a torch tensor ``(sum(counts), vocab)``): ``counts[i]`` rows for ``names[i]``, in order."""
        import torch

        rows = rows.float()
        if self.top_k is not None:
            if self.top_k > rows.shape[-1]:
                raise InvalidInputError(
                    f"logit_top_k={self.top_k} is more than the model's vocabulary ({rows.shape[-1]} tokens)"
                )
            top = torch.topk(rows, self.top_k, dim=-1)
            self.values.append(top.values.cpu().numpy())
            self.indices.append(top.indices.to(torch.float32).cpu().numpy())
        else:
            self.values.append(rows.cpu().numpy())
        self.names.extend(names)
        self.counts.append(np.asarray(counts, dtype=np.int64))
        if len(self.names) >= LOGIT_RECORD:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered."""
        from fastprobe.extraction import storage_dtype

        if not self.names:
            return
        keep = self.positions == "all"
        counts = np.concatenate(self.counts)
        values = np.concatenate(self.values)[None]
        dtype = storage_dtype(self.store.dtype, values)
        self.store.write(self.names, values, counts, [0], dtype=dtype, keep_tokens=keep)
        if self.top_k is not None:
            ids = np.concatenate(self.indices)[None]
            self.store.write(self.names, ids, counts, [1], dtype="float32", keep_tokens=keep)
        self.names, self.values, self.indices, self.counts = [], [], [], []


def select_positions(logits: Any, mask: Any, positions: str) -> tuple[Any, np.ndarray]:
    """Rows of a padded batch's logits ``(B, S, V)``: each prompt's last real token, or all its real tokens.

    Returns the rows (prompt by prompt) and the number of rows of each prompt.
    """
    import torch

    mask = mask.to(logits.device).bool()
    lengths = mask.sum(dim=1)
    if positions == "last":
        last = mask.int().argmax(dim=1) + lengths - 1  # whatever the padding side
        return logits[torch.arange(logits.shape[0], device=logits.device), last], np.ones(len(lengths), np.int64)
    return logits[mask], lengths.cpu().numpy().astype(np.int64)


def pad_rows(values: np.ndarray, offsets: np.ndarray, fill: float) -> np.ndarray:
    """Right-pad ragged rows (prompt ``i``'s are ``values[offsets[i]:offsets[i + 1]]``) into ``(n, longest, width)``."""
    counts = np.diff(offsets)
    out = np.full((len(counts), int(counts.max(initial=0)), values.shape[1]), fill, dtype=values.dtype)
    for i, (start, count) in enumerate(zip(offsets[:-1], counts, strict=True)):
        out[i, :count] = values[start : start + count]
    return out
