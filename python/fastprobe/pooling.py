"""Pooling: reduce each prompt's token activations to one vector, in the Rust core with the GIL released."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np

from fastprobe import _core
from fastprobe._arrays import to_numpy
from fastprobe.exceptions import InvalidInputError, ShapeMismatchError, UnknownOptionError

__all__ = [
    "DEFAULT_STAGE",
    "POOLING_METHODS",
    "TRAIN_POOLINGS",
    "PoolingMethod",
    "PoolingSpec",
    "parse_pooling",
    "per_token_labels",
    "pool",
    "pool_ragged",
    "reduce_scores",
    "resolve_pooling",
]

PoolingMethod = Literal["last_token", "first_token", "mean", "max", "min"]
#: The accepted pooling names.
POOLING_METHODS: tuple[str, ...] = tuple(_core.POOLING_METHODS)


def pool(
    hidden: Any, attention_mask: Any, method: PoolingMethod | str = "last_token", *, n_threads: int | None = None
) -> np.ndarray:
    """Pool a padded batch of token activations into one vector per prompt.

    Only positions where ``attention_mask`` is nonzero take part, whichever side the padding is on: ``first_token``
    is the first real token and ``last_token`` the last real one under left and right padding alike.

    Parameters
    ----------
    hidden : array-like or torch.Tensor of shape (batch, seq, hidden)
        Token activations; converted to float32.
    attention_mask : array-like or torch.Tensor of shape (batch, seq)
        Nonzero on real tokens, zero on padding.
    method : {"last_token", "first_token", "mean", "max", "min"}, default="last_token"
        The reduction.
    n_threads : int, optional
        Threads to use; None uses the default pool (sized by ``FASTPROBE_NUM_THREADS``, else the CPU count).

    Returns
    -------
    numpy.ndarray of shape (batch, hidden), float32

    Raises
    ------
    ShapeMismatchError
        If the mask's shape is not ``hidden``'s first two dimensions.
    InvalidInputError
        If a prompt has no real token.
    UnknownOptionError
        If ``method`` is not a pooling name.

    Examples
    --------
    >>> import numpy as np
    >>> from fastprobe.pooling import pool
    >>> hidden = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    >>> mask = np.array([[1, 1, 0], [0, 1, 1]])
    >>> pool(hidden, mask, "last_token")
    array([[ 2.,  3.],
           [10., 11.]], dtype=float32)
    >>> pool(hidden, mask, "mean")
    array([[ 1.,  2.],
           [ 9., 10.]], dtype=float32)
    """
    h = to_numpy(hidden, dtype=np.float32, name="hidden", ndim=3)
    m = to_numpy(attention_mask, dtype=np.bool_, name="attention_mask", ndim=2)
    return _core.pool_padded(h, m, method, n_threads)


def pool_ragged(
    values: Any, offsets: Any, method: PoolingMethod | str = "last_token", *, n_threads: int | None = None
) -> np.ndarray:
    """Pool ragged (unpadded) token blocks into one vector per prompt.

    Parameters
    ----------
    values : array-like or torch.Tensor of shape (n_tokens, hidden)
        The real tokens of every prompt, stacked; converted to float32.
    offsets : array-like of int, shape (batch + 1,)
        Prompt ``i`` owns rows ``offsets[i]:offsets[i + 1]``; starts at 0, ends at ``n_tokens``, strictly increasing.
    method : {"last_token", "first_token", "mean", "max", "min", "all"}, default="last_token"
        The reduction. ``"all"`` reduces nothing: every token is its own row (the offsets are checked and ``values``
        is returned as float32); pair it with :func:`per_token_labels` for training and :func:`reduce_scores` for
        inference.
    n_threads : int, optional
        Threads to use; None uses the default pool.

    Returns
    -------
    numpy.ndarray of shape (batch, hidden), or (n_tokens, hidden) for ``"all"``, float32

    Raises
    ------
    InvalidInputError
        If the offsets do not tile ``values`` into non-empty blocks.

    Examples
    --------
    >>> import numpy as np
    >>> from fastprobe.pooling import pool_ragged
    >>> values = np.array([[1, 2], [3, 4], [5, 6]], dtype=np.float32)
    >>> pool_ragged(values, [0, 2, 3], "mean")
    array([[2., 3.],
           [5., 6.]], dtype=float32)
    """
    v = to_numpy(values, dtype=np.float32, name="values", ndim=2)
    o = to_numpy(offsets, dtype=np.int64, name="offsets", ndim=1)
    if method == "all":
        _check_offsets(o, len(v))
        return v
    return _core.pool_ragged(v, o, method, n_threads)


def _check_offsets(offsets: np.ndarray, n_tokens: int) -> None:
    # The Rust kernels check the same rules; "all" and per_token_labels never reach them.
    if offsets.size == 0 or offsets[0] != 0 or offsets[-1] != n_tokens:
        first, last = (offsets[0], offsets[-1]) if offsets.size else (None, None)
        raise InvalidInputError(
            f"offsets must start at 0 and end at the number of token rows ({n_tokens}); got {first} .. {last}"
        )
    if np.any(np.diff(offsets) <= 0):
        i = int(np.argmax(np.diff(offsets) <= 0))
        raise InvalidInputError(
            "offsets must be strictly increasing (every prompt needs at least one token); "
            f"offsets[{i}] = {offsets[i]} and offsets[{i + 1}] = {offsets[i + 1]}"
        )


def per_token_labels(y: Any, offsets: Any) -> np.ndarray:
    """Each prompt's label repeated once per token: the targets of a probe trained with ``"all"`` pooling.

    Parameters
    ----------
    y : array-like of shape (batch,) or (batch, n_targets)
    offsets : array-like of int, shape (batch + 1,)

    Returns
    -------
    numpy.ndarray of shape (n_tokens,) or (n_tokens, n_targets)

    Examples
    --------
    >>> from fastprobe.pooling import per_token_labels
    >>> per_token_labels([1, 0], [0, 3, 4])
    array([1, 1, 1, 0])
    """
    y = np.asarray(y)
    o = to_numpy(offsets, dtype=np.int64, name="offsets", ndim=1)
    if len(y) != len(o) - 1:
        raise ShapeMismatchError(f"y: expected {len(o) - 1} labels (one per prompt of offsets), got {len(y)}")
    _check_offsets(o, int(o[-1]) if o.size else 0)
    return np.repeat(y, np.diff(o), axis=0)


def reduce_scores(
    scores: Any, offsets: Any, method: PoolingMethod | str = "max", *, n_threads: int | None = None
) -> np.ndarray:
    """Reduce per-token scores (probabilities, decision values) to one row per prompt: the score stage of pooling.

    Parameters
    ----------
    scores : array-like of shape (n_tokens,) or (n_tokens, k)
        One score (or one row of scores) per token, prompts stacked; converted to float64.
    offsets : array-like of int, shape (batch + 1,)
        Prompt ``i`` owns rows ``offsets[i]:offsets[i + 1]``.
    method : {"max", "min", "mean", "last_token", "first_token"}, default="max"
        Max and min propagate NaN.
    n_threads : int, optional

    Returns
    -------
    numpy.ndarray of shape (batch,) or (batch, k), float64

    Examples
    --------
    >>> from fastprobe.pooling import reduce_scores
    >>> reduce_scores([0.2, 0.9, 0.4, 0.1], [0, 3, 4], "max")
    array([0.9, 0.1])
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim not in (1, 2):
        raise ShapeMismatchError(f"scores: expected shape (n_tokens,) or (n_tokens, k), got {s.shape}")
    o = to_numpy(offsets, dtype=np.int64, name="offsets", ndim=1)
    out = _core.reduce_scores(np.ascontiguousarray(s.reshape(len(s), -1)), o, method, n_threads)
    return out[:, 0] if s.ndim == 1 else out


# ---------------------------------------------------------------------------------------------- pooling specs

#: Bare pooling names a probe accepts, and the stage each one runs at by default.
DEFAULT_STAGE: dict[str, str] = {
    "last_token": "activation",
    "first_token": "activation",
    "mean": "activation",
    "max": "score",
    "min": "score",
}
#: Poolings a probe can be trained with (each prompt gives one row, or one row per token for ``"all"``).
TRAIN_POOLINGS: tuple[str, ...] = ("last_token", "first_token", "mean", "all")


class PoolingSpec(NamedTuple):
    """A parsed pooling name: the base reduction and the stage it runs at.

    ``stage`` is ``"activation"`` (pool the activations, classify once), ``"score"`` (classify every token, then
    reduce the scores) or ``"tokens"`` (``"all"``: one row per token, no reduction).
    """

    base: str
    stage: str

    @property
    def needs_tokens(self) -> bool:
        """Whether the pooling reads every token (the store's pooled vectors hold last token, mean, first token)."""
        return self.stage != "activation" or self.base not in ("last_token", "mean", "first_token")


def _valid_poolings() -> str:
    names = [*DEFAULT_STAGE, "all"]
    names += [f"{stage}:{b}" for stage in ("activation", "score") for b in DEFAULT_STAGE]
    return ", ".join(names)


def parse_pooling(name: Any) -> PoolingSpec:
    """Parse a pooling name: bare (``"mean"``), staged (``"score:mean"``, ``"activation:max"``) or ``"all"``.

    Bare ``last_token``, ``first_token`` and ``mean`` pool activations; bare ``max`` and ``min`` reduce per-token
    scores (lmprobe's defaults).

    Parameters
    ----------
    name : str

    Returns
    -------
    PoolingSpec

    Raises
    ------
    UnknownOptionError
        If the name is not one of them (the message lists every valid name).

    Examples
    --------
    >>> parse_pooling("max"), parse_pooling("activation:max")
    (PoolingSpec(base='max', stage='score'), PoolingSpec(base='max', stage='activation'))
    """
    if isinstance(name, str):
        if name == "all":
            return PoolingSpec("all", "tokens")
        stage, sep, base = name.partition(":")
        if not sep:
            stage, base = DEFAULT_STAGE.get(name, ""), name
        if stage in ("activation", "score") and base in DEFAULT_STAGE:
            return PoolingSpec(base, stage)
    raise UnknownOptionError(f"unknown pooling {name!r}; expected one of: {_valid_poolings()}")


def resolve_pooling(
    pooling: str | None, train_pooling: str | None = None, inference_pooling: str | None = None
) -> tuple[str, PoolingSpec]:
    """Resolve a probe's poolings: ``train = train_pooling or pooling``, ``inference = inference_pooling or pooling``.

    Parameters
    ----------
    pooling : str or None
        The shared default (None means ``"last_token"``).
    train_pooling : str, optional
        Must be one of :data:`TRAIN_POOLINGS` (no stage prefix): a score-stage reduction cannot train a probe.
    inference_pooling : str, optional
        Any name :func:`parse_pooling` accepts.

    Returns
    -------
    train : str
        The training pooling (a bare name).
    inference : PoolingSpec

    Raises
    ------
    UnknownOptionError
        If a name is unknown, or the training pooling is not one of :data:`TRAIN_POOLINGS`; the message says which
        argument it came from and what to pass instead.
    """
    base = pooling or "last_token"
    train = train_pooling or base
    inference = parse_pooling(inference_pooling or base)
    if train not in TRAIN_POOLINGS:
        source = "train_pooling" if train_pooling else "pooling"
        hint = (
            f"; to pool with {base!r} at inference only, pass inference_pooling={base!r} and one of those as "
            "train_pooling"
            if not train_pooling
            else ""
        )
        raise UnknownOptionError(
            f"{source}={train!r} cannot train a probe; expected one of: {', '.join(TRAIN_POOLINGS)}{hint}"
        )
    return train, inference
