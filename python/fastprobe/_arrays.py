"""Array conversion at the boundary to the Rust core: one visible copy at most, never a silent one in Rust."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastprobe.exceptions import ShapeMismatchError


def to_numpy(x: Any, *, dtype: type[np.generic] | np.dtype[Any], name: str, ndim: int) -> np.ndarray:
    """Convert a numpy array, torch tensor or nested sequence into a C-contiguous array of ``dtype``.

    Parameters
    ----------
    x : array-like or torch.Tensor
        The input. Torch tensors are detached and moved to the CPU first.
    dtype : numpy dtype
        The dtype the Rust core requires.
    name : str
        The argument's name, used in error messages.
    ndim : int
        The number of dimensions required.

    Returns
    -------
    numpy.ndarray
        ``x`` itself when it already had the right dtype and layout, otherwise a converted copy.

    Raises
    ------
    ShapeMismatchError
        If ``x`` does not have ``ndim`` dimensions.
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch here
        x = x.detach()
        if x.dtype.is_floating_point and np.dtype(dtype) == np.float32 and x.dtype != _torch_float32():
            x = x.float()
        x = x.cpu().numpy()
    arr = np.ascontiguousarray(x, dtype=dtype)
    if arr.ndim != ndim:
        raise ShapeMismatchError(f"{name}: expected a {ndim}-D array, got shape {arr.shape}")
    return arr


def _torch_float32() -> Any:
    import torch

    return torch.float32
