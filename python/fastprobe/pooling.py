"""Pooling: reduce each prompt's token activations to one vector, in the Rust core with the GIL released."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from fastprobe import _core
from fastprobe._arrays import to_numpy

__all__ = ["POOLING_METHODS", "PoolingMethod", "pool", "pool_ragged"]

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
    method : {"last_token", "first_token", "mean", "max", "min"}, default="last_token"
        The reduction.
    n_threads : int, optional
        Threads to use; None uses the default pool.

    Returns
    -------
    numpy.ndarray of shape (batch, hidden), float32

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
    return _core.pool_ragged(v, o, method, n_threads)
