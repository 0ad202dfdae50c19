"""lmprobe's pooling functions of padded batches (``pool_last_token`` ... ``pool_all``, ``get_pooling_fn``).

Each takes a torch tensor or an array and gives back the input's kind, dtype and device; the reduction runs in the
Rust kernels of :mod:`fastprobe.store.pooling`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fastprobe import _core
from fastprobe.store.pooling import as_kernel_array, gather_tokens, padded_mask, parse_pooling

__all__ = [
    "get_pooling_fn",
    "pool_all",
    "pool_first_token",
    "pool_last_token",
    "pool_max",
    "pool_mean",
    "pool_min",
]


def _pool_padded(activations: Any, attention_mask: Any, method: str) -> Any:
    x, back = as_kernel_array(activations, "activations", (3,))
    mask = padded_mask(attention_mask, x.shape[:2])
    if x.dtype == np.float64:
        return back(_core.reduce_scores(*gather_tokens(x, mask), method, None))
    return back(_core.pool_padded(x, mask, method, None))


def pool_last_token(activations: Any, attention_mask: Any = None) -> Any:
    """Each prompt's last real token (the last position where the mask is nonzero; the last position without one).

    Parameters
    ----------
    activations : torch.Tensor or array-like of shape (batch, seq_len, hidden_dim)
    attention_mask : torch.Tensor or array-like of shape (batch, seq_len), optional
        Nonzero on real tokens; None means no padding. Either padding side.

    Returns
    -------
    torch.Tensor or numpy.ndarray of shape (batch, hidden_dim)
        Of the input's kind, dtype and device, detached from autograd; float64 input is reduced in float64, any other
        in float32.

    Raises
    ------
    ShapeMismatchError
        If ``activations`` is not 3-D, or the mask's shape is not its first two dimensions.
    InvalidInputError
        If a prompt has no real token.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(12.0).reshape(2, 3, 2)
    >>> pool_last_token(x, np.array([[1, 1, 0], [1, 1, 1]]))
    array([[ 2.,  3.],
           [10., 11.]])
    """
    return _pool_padded(activations, attention_mask, "last_token")


def pool_first_token(activations: Any, attention_mask: Any = None) -> Any:
    """Each prompt's first real token (the first position where the mask is nonzero; position 0 without one).

    lmprobe takes position 0 even when a mask is given, which is a pad under left padding; fastprobe takes the first
    real token on either padding side (the same result under right padding).

    Parameters
    ----------
    activations : torch.Tensor or array-like of shape (batch, seq_len, hidden_dim)
    attention_mask : torch.Tensor or array-like of shape (batch, seq_len), optional
        Nonzero on real tokens; None means no padding.

    Returns
    -------
    torch.Tensor or numpy.ndarray of shape (batch, hidden_dim)
        Of the input's kind, dtype and device, detached from autograd; float64 input is reduced in float64, any other
        in float32.

    Raises
    ------
    ShapeMismatchError
        If ``activations`` is not 3-D, or the mask's shape is not its first two dimensions.
    InvalidInputError
        If a prompt has no real token.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(12.0).reshape(2, 3, 2)
    >>> pool_first_token(x, np.array([[1, 1, 1], [0, 1, 1]]))
    array([[0., 1.],
           [8., 9.]])
    """
    return _pool_padded(activations, attention_mask, "first_token")


def pool_mean(activations: Any, attention_mask: Any = None) -> Any:
    """Each prompt's mean over its real tokens.

    Parameters
    ----------
    activations : torch.Tensor or array-like of shape (batch, seq_len, hidden_dim)
    attention_mask : torch.Tensor or array-like of shape (batch, seq_len), optional
        Nonzero on real tokens; None means every position.

    Returns
    -------
    torch.Tensor or numpy.ndarray of shape (batch, hidden_dim)
        Of the input's kind, dtype and device, detached from autograd; float64 input is reduced in float64, any other
        in float32.

    Raises
    ------
    ShapeMismatchError
        If ``activations`` is not 3-D, or the mask's shape is not its first two dimensions.
    InvalidInputError
        If a prompt has no real token.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(12.0).reshape(2, 3, 2)
    >>> pool_mean(x, np.array([[1, 1, 0], [1, 1, 1]]))
    array([[1., 2.],
           [8., 9.]])
    """
    return _pool_padded(activations, attention_mask, "mean")


def pool_max(activations: Any, attention_mask: Any = None) -> Any:
    """Each prompt's per-dimension maximum over its real tokens (NaN propagates).

    Parameters
    ----------
    activations : torch.Tensor or array-like of shape (batch, seq_len, hidden_dim)
    attention_mask : torch.Tensor or array-like of shape (batch, seq_len), optional
        Nonzero on real tokens; None means every position.

    Returns
    -------
    torch.Tensor or numpy.ndarray of shape (batch, hidden_dim)
        Of the input's kind, dtype and device, detached from autograd; float64 input is reduced in float64, any other
        in float32.

    Raises
    ------
    ShapeMismatchError
        If ``activations`` is not 3-D, or the mask's shape is not its first two dimensions.
    InvalidInputError
        If a prompt has no real token.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0, 5.0], [3.0, 2.0], [9.0, 9.0]]])
    >>> pool_max(x, np.array([[1, 1, 0]]))
    array([[3., 5.]])
    """
    return _pool_padded(activations, attention_mask, "max")


def pool_min(activations: Any, attention_mask: Any = None) -> Any:
    """Each prompt's per-dimension minimum over its real tokens (NaN propagates).

    Parameters
    ----------
    activations : torch.Tensor or array-like of shape (batch, seq_len, hidden_dim)
    attention_mask : torch.Tensor or array-like of shape (batch, seq_len), optional
        Nonzero on real tokens; None means every position.

    Returns
    -------
    torch.Tensor or numpy.ndarray of shape (batch, hidden_dim)
        Of the input's kind, dtype and device, detached from autograd; float64 input is reduced in float64, any other
        in float32.

    Raises
    ------
    ShapeMismatchError
        If ``activations`` is not 3-D, or the mask's shape is not its first two dimensions.
    InvalidInputError
        If a prompt has no real token.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[-9.0, -9.0], [1.0, 5.0], [3.0, 2.0]]])
    >>> pool_min(x, np.array([[0, 1, 1]]))
    array([[1., 2.]])
    """
    return _pool_padded(activations, attention_mask, "min")


def pool_all(activations: Any, attention_mask: Any = None) -> Any:
    """Reduce nothing: return ``activations`` itself, every position included (the mask is not used).

    A padded batch cannot drop its pads in place; for token rows without padding use :func:`pool_ragged` with
    ``"all"``.

    Parameters
    ----------
    activations : torch.Tensor or array-like of shape (batch, seq_len, hidden_dim)
    attention_mask : optional
        Accepted for a uniform signature; not used.

    Returns
    -------
    The same object as ``activations``.
    """
    return activations


_POOL_FNS: dict[str, Callable[[Any, Any], Any]] = {
    "last_token": pool_last_token,
    "first_token": pool_first_token,
    "mean": pool_mean,
    "max": pool_max,
    "min": pool_min,
}


def get_pooling_fn(strategy: str) -> Callable[[Any, Any], Any]:
    """Return the activation pooling function that a pooling name runs before the classifier.

    A score-stage name (bare ``max``/``min``, ``"score:..."``) and ``"all"`` keep every token for the classifier, so
    they give :func:`pool_all`; an activation-stage name gives its ``pool_*`` function.

    Parameters
    ----------
    strategy : str

    Returns
    -------
    callable
        ``fn(activations, attention_mask=None)``.

    Raises
    ------
    UnknownOptionError
        If the name is unknown (as :func:`parse_pooling`).

    Examples
    --------
    >>> get_pooling_fn("activation:max") is pool_max, get_pooling_fn("max") is pool_all
    (True, True)
    """
    spec = parse_pooling(strategy)
    return pool_all if spec.stage != "activation" else _POOL_FNS[spec.base]
