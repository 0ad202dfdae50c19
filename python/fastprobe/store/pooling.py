"""Pooling: reduce each prompt's token activations (or per-token scores) to one row, in the Rust core.

The kernels run with the GIL released: :func:`pool` (a padded batch), :func:`pool_ragged` (unpadded token blocks) and
:func:`reduce_scores` (the score stage). Pooling names are parsed here (:func:`parse_pooling`, :class:`PoolingSpec`,
and a probe's two poolings by :func:`resolve_pooling`); lmprobe's ``pool_*`` functions of padded batches are in
:mod:`fastprobe.store.pooling_padded`. :mod:`fastprobe.pooling` re-exports both under lmprobe's module name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import numpy as np

from fastprobe import _core
from fastprobe._arrays import to_numpy
from fastprobe.exceptions import InvalidInputError, ShapeMismatchError, UnknownOptionError

__all__ = [
    "DEFAULT_STAGE",
    "INFERENCE_POOLING_STRATEGIES",
    "POOLED_VECTORS",
    "POOLING_METHODS",
    "SCORE_POOLING_STRATEGIES",
    "TRAIN_POOLINGS",
    "TRAIN_POOLING_STRATEGIES",
    "ParsedPooling",
    "PoolingMethod",
    "PoolingSpec",
    "as_kernel_array",
    "gather_tokens",
    "padded_mask",
    "parse_pooling",
    "parse_pooling_strategy",
    "per_token_labels",
    "pool",
    "pool_ragged",
    "reduce_scores",
    "resolve_pooling",
    "resolve_pooling_spec",
]

PoolingMethod = Literal["last_token", "first_token", "mean", "max", "min"]
#: The accepted pooling names.
POOLING_METHODS: tuple[str, ...] = tuple(_core.POOLING_METHODS)
#: The poolings a store record keeps as one vector each (the others are computed from its tokens).
POOLED_VECTORS: tuple[str, ...] = ("last_token", "mean", "first_token")


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


def _reduce_ragged(scores: Any, offsets: Any, method: str, n_threads: int | None) -> np.ndarray:
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
        return self.stage != "activation" or self.base not in POOLED_VECTORS


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
        If the name is not one of them. The message starts with lmprobe's phrase for the fault ("Unknown pooling
        prefix", "Unknown base pooling strategy" or "Unknown pooling strategy") and lists the valid names.

    Examples
    --------
    >>> parse_pooling("max"), parse_pooling("activation:max")
    (PoolingSpec(base='max', stage='score'), PoolingSpec(base='max', stage='activation'))
    """
    if isinstance(name, str):
        if name == "all":
            return PoolingSpec("all", "tokens")
        stage, sep, base = name.partition(":")
        bases = ", ".join(DEFAULT_STAGE)
        if not sep:
            if name in DEFAULT_STAGE:
                return PoolingSpec(name, DEFAULT_STAGE[name])
        elif stage not in ("activation", "score"):
            raise UnknownOptionError(
                f"Unknown pooling prefix {stage!r} in {name!r}; expected 'activation:' or 'score:' followed by one "
                f"of: {bases}"
            )
        elif base in DEFAULT_STAGE:
            return PoolingSpec(base, stage)
        else:
            raise UnknownOptionError(
                f"Unknown base pooling strategy {base!r} in {name!r}; expected one of: {bases} after '{stage}:'"
            )
    raise UnknownOptionError(f"Unknown pooling strategy {name!r}; expected one of: {_valid_poolings()}")


def resolve_pooling(pooling: str | None, train_pooling: str | None, inference_pooling: str | None) -> tuple[str, str]:
    """Resolve a probe's training and inference poolings from the shared default and the two overrides.

    ``train`` is ``train_pooling``, else ``pooling``, else ``"last_token"``; ``inference`` likewise from
    ``inference_pooling``. An override that is not None always wins.

    Parameters
    ----------
    pooling : str or None
        The default for both stages.
    train_pooling : str or None
        Must be one of :data:`TRAIN_POOLINGS` (a bare name): a score-stage reduction cannot train a probe.
    inference_pooling : str or None
        Any name :func:`parse_pooling` accepts (bare, ``"activation:..."``, ``"score:..."`` or ``"all"``).

    Returns
    -------
    train : str
    inference : str
        The names as given (:func:`resolve_pooling_spec` parses the inference pooling too).

    Raises
    ------
    UnknownOptionError
        "Invalid train_pooling ..." or "Invalid inference_pooling ..." (the training pooling is checked first); the
        message says which argument the name came from and what to pass instead.

    Examples
    --------
    >>> resolve_pooling("mean", None, "score:max")
    ('mean', 'score:max')
    >>> resolve_pooling(None, None, None)
    ('last_token', 'last_token')
    """
    default = "last_token" if pooling is None else pooling
    train = default if train_pooling is None else train_pooling
    inference = default if inference_pooling is None else inference_pooling
    if train not in TRAIN_POOLINGS:
        source = "pooling" if train_pooling is None else "train_pooling"
        hint = (
            f"; to pool with {default!r} at inference only, pass inference_pooling={default!r} and one of those as "
            "train_pooling"
            if train_pooling is None
            else ""
        )
        raise UnknownOptionError(
            f"Invalid train_pooling {train!r} (from {source}={train!r}): it cannot train a probe; expected one of: "
            f"{', '.join(TRAIN_POOLINGS)}{hint}"
        )
    try:
        parse_pooling(inference)
    except UnknownOptionError as err:
        source = "pooling" if inference_pooling is None else "inference_pooling"
        raise UnknownOptionError(
            f"Invalid inference_pooling {inference!r} (from {source}={inference!r}): {err}"
        ) from None
    return train, inference


def resolve_pooling_spec(
    pooling: str | None, train_pooling: str | None = None, inference_pooling: str | None = None
) -> tuple[str, PoolingSpec]:
    """Resolve a probe's poolings as :func:`resolve_pooling` does, and parse the inference one.

    Parameters
    ----------
    pooling : str or None
        The default for both stages (None means ``"last_token"``).
    train_pooling : str, optional
    inference_pooling : str, optional

    Returns
    -------
    train : str
        The training pooling (a bare name).
    inference : PoolingSpec

    Raises
    ------
    UnknownOptionError
        As :func:`resolve_pooling`.

    Examples
    --------
    >>> resolve_pooling_spec("mean", inference_pooling="max")
    ('mean', PoolingSpec(base='max', stage='score'))
    """
    train, inference = resolve_pooling(pooling, train_pooling, inference_pooling)
    return train, parse_pooling(inference)


# ---------------------------------------------------------------------------------- lmprobe's pooling names

#: Poolings a probe can be trained with (lmprobe's name for :data:`TRAIN_POOLINGS`).
TRAIN_POOLING_STRATEGIES: frozenset[str] = frozenset(TRAIN_POOLINGS)
#: The bare inference pooling names; the ``activation:`` and ``score:`` forms are valid too.
INFERENCE_POOLING_STRATEGIES: frozenset[str] = frozenset([*DEFAULT_STAGE, "all"])
#: The bare names that run at the score stage by default.
SCORE_POOLING_STRATEGIES: frozenset[str] = frozenset(b for b, stage in DEFAULT_STAGE.items() if stage == "score")


class ParsedPooling(NamedTuple):
    """A pooling name in lmprobe's terms: the base reduction, whether it reduces scores, and the name as given.

    ``is_score_pooling`` is False for ``"all"`` and for activation-stage names; :func:`parse_pooling` gives the same
    facts as a :class:`PoolingSpec`.
    """

    base_strategy: str
    is_score_pooling: bool
    raw: str


def parse_pooling_strategy(strategy: str) -> ParsedPooling:
    """Parse a pooling name (bare, ``"activation:<base>"``, ``"score:<base>"`` or ``"all"``) into lmprobe's form.

    Parameters
    ----------
    strategy : str

    Returns
    -------
    ParsedPooling

    Raises
    ------
    UnknownOptionError
        "Unknown pooling prefix", "Unknown base pooling strategy" or "Unknown pooling strategy", as
        :func:`parse_pooling`.

    Examples
    --------
    >>> parse_pooling_strategy("max")
    ParsedPooling(base_strategy='max', is_score_pooling=True, raw='max')
    >>> parse_pooling_strategy("activation:max").is_score_pooling
    False
    """
    spec = parse_pooling(strategy)
    return ParsedPooling(spec.base, spec.stage == "score", strategy)


# ------------------------------------------------------------------------ padded batches of any array kind


def as_kernel_array(x: Any, name: str, ndims: tuple[int, ...]) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """Convert a padded batch (torch tensor or array-like) for the pooling kernels, and say how to convert back.

    A float64 input stays float64 (the ragged score kernel is float64); anything else computes in float32, which
    holds float16 and bfloat16 exactly.

    Parameters
    ----------
    x : torch.Tensor or array-like
    name : str
        The argument's name, for error messages.
    ndims : tuple of int
        The accepted numbers of dimensions.

    Returns
    -------
    array : numpy.ndarray
        C-contiguous, float32 or float64.
    back : callable
        Turns a result back into the input's kind: a tensor of its dtype on its device (detached), or a numpy array
        of its (floating) dtype.

    Raises
    ------
    ShapeMismatchError
        If ``x`` has a number of dimensions not in ``ndims``.
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        import torch

        device, dtype = x.device, x.dtype
        if dtype == torch.float64:
            arr = np.ascontiguousarray(x.detach().cpu().numpy())
        else:
            arr = to_numpy(x, dtype=np.float32, name=name, ndim=x.dim())
        out_dtype = dtype if dtype.is_floating_point else torch.float32

        def back(out: np.ndarray) -> Any:
            return torch.from_numpy(out).to(device=device, dtype=out_dtype)

    else:
        arr = np.asarray(x)
        kind = arr.dtype if arr.dtype.kind == "f" else np.dtype(np.float32)
        arr = np.ascontiguousarray(arr, dtype=np.float64 if kind == np.float64 else np.float32)

        def back(out: np.ndarray) -> Any:
            return out.astype(kind, copy=False)

    if arr.ndim not in ndims:
        dims = " or ".join(str(n) for n in ndims)
        raise ShapeMismatchError(f"{name}: expected a {dims}-D array (batch, seq_len, ...), got shape {arr.shape}")
    return arr, back


def padded_mask(attention_mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Return a padded batch's mask as bool, all True when ``attention_mask`` is None.

    Parameters
    ----------
    attention_mask : torch.Tensor, array-like or None
        Nonzero on real tokens.
    shape : tuple of int
        The batch's (batch, seq_len).

    Returns
    -------
    numpy.ndarray of shape ``shape``, bool

    Raises
    ------
    ShapeMismatchError
        If the mask's shape is not ``shape``.
    """
    if attention_mask is None:
        return np.ones(shape, dtype=np.bool_)
    mask = to_numpy(attention_mask, dtype=np.bool_, name="attention_mask", ndim=2)
    if mask.shape != shape:
        raise ShapeMismatchError(f"attention_mask: expected shape {shape} (batch, seq_len), got {mask.shape}")
    return mask


def gather_tokens(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return a padded batch as ragged float64 rows (n_tokens, k) and their offsets: the real tokens, in order.

    Either padding side; ``k`` is the product of the dimensions after the first two (1 for scores of shape
    (batch, seq_len)).

    Parameters
    ----------
    values : numpy.ndarray of shape (batch, seq_len, ...)
    mask : numpy.ndarray of shape (batch, seq_len), bool

    Returns
    -------
    rows : numpy.ndarray of shape (n_tokens, k), float64
    offsets : numpy.ndarray of shape (batch + 1,), int64

    Raises
    ------
    InvalidInputError
        If a prompt has no real token.
    """
    counts = mask.sum(axis=1, dtype=np.int64)
    if counts.size and counts.min() == 0:
        raise InvalidInputError(f"prompt {int(np.argmin(counts))} has no real token: its attention mask is all zero")
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    rows = np.ascontiguousarray(values[mask].reshape(int(offsets[-1]), -1), dtype=np.float64)
    return rows, offsets


def reduce_scores(scores: Any, strategy: Any, attention_mask: Any = None, *, n_threads: int | None = None) -> Any:
    """Reduce per-token scores (probabilities, decision values) to one row per prompt: the score stage of pooling.

    Two forms, told apart by the second argument:

    - ``reduce_scores(scores, strategy, attention_mask=None)`` (lmprobe's form), ``strategy`` a pooling name: a padded
      batch of scores, (batch, seq_len) or (batch, seq_len, n_classes), reduced over the positions where the mask is
      nonzero (every position without one), on either padding side. The name may carry a stage prefix
      (``"score:mean"``); its base reduction is used. The result has the input's kind (torch tensor or numpy
      array), dtype and device; the reduction runs in float64.
    - ``reduce_scores(scores, offsets, method="max")`` (fastprobe's ragged form), ``offsets`` an array of ints:
      ``scores`` of shape (n_tokens,) or (n_tokens, k) hold every prompt's real tokens stacked, prompt ``i`` owning
      rows ``offsets[i]:offsets[i + 1]``. The result is a float64 numpy array.

    Parameters
    ----------
    scores : torch.Tensor or array-like
        Padded (batch, seq_len[, n_classes]) in the first form, ragged (n_tokens[, k]) in the second.
    strategy : str or array-like of int
        A pooling name (first form) or the offsets, shape (batch + 1,) (second form).
    attention_mask : torch.Tensor or array-like of shape (batch, seq_len), or str, optional
        First form: nonzero on real tokens. Second form: the method name, one of ``max``, ``min``, ``mean``,
        ``last_token``, ``first_token`` (default ``"max"``).
    n_threads : int, optional
        Threads to use; None uses the default pool.

    Returns
    -------
    torch.Tensor or numpy.ndarray of shape (batch,) or (batch, n_classes)
        ``first_token`` is each prompt's first real token (lmprobe takes position 0, a pad under left padding); max
        and min propagate NaN.

    Raises
    ------
    UnknownOptionError
        For an unknown name (as :func:`parse_pooling`), or "reduce_scores does not support strategy 'all'".
    ShapeMismatchError
        If the scores are not 2-D or 3-D (first form), or the mask's shape is not their first two dimensions.
    InvalidInputError
        If a prompt has no real token, or the offsets do not tile ``scores``.

    Examples
    --------
    >>> import numpy as np
    >>> scores = np.array([[0.2, 0.9, 0.4], [0.1, 0.3, 0.8]])
    >>> reduce_scores(scores, "max", np.array([[1, 1, 1], [1, 1, 0]]))
    array([0.9, 0.3])
    >>> reduce_scores([0.2, 0.9, 0.4, 0.1], [0, 3, 4], "max")
    array([0.9, 0.1])
    """
    if not isinstance(strategy, str):
        return _reduce_ragged(scores, strategy, "max" if attention_mask is None else attention_mask, n_threads)
    base = parse_pooling(strategy).base
    if base == "all":
        raise UnknownOptionError(
            f"reduce_scores does not support strategy {strategy!r}, which keeps every token's score; expected one "
            f"of: {', '.join(DEFAULT_STAGE)}, optionally with a 'score:' or 'activation:' prefix"
        )
    s, back = as_kernel_array(scores, "scores", (2, 3))
    rows, offsets = gather_tokens(s, padded_mask(attention_mask, s.shape[:2]))
    return back(_core.reduce_scores(rows, offsets, base, n_threads).reshape(s.shape[:1] + s.shape[2:]))
