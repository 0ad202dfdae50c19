"""Process-wide settings that are not about the cache: the number of CPU threads."""

from __future__ import annotations

import os

__all__ = ["set_max_threads"]

#: The environment variables of the thread pools torch and the BLAS libraries read when they start.
THREAD_VARIABLES: tuple[str, ...] = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def set_max_threads(n: int) -> None:
    """Use at most ``n`` CPU threads: torch's intra-op and inter-op pools, and the BLAS libraries started later.

    fastprobe's Rust solvers take their own ``n_threads`` (or use every core); this bounds the forward passes and
    scikit-learn's BLAS calls.

    Parameters
    ----------
    n : int
        At least 1.

    Raises
    ------
    InvalidInputError
        If ``n`` is not an integer >= 1.
    """
    import torch

    from fastprobe.exceptions import InvalidInputError

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidInputError(f"set_max_threads takes an integer >= 1; got {n!r}")
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # torch allows this once, before any parallel work; the intra-op bound still holds
        pass
    for name in THREAD_VARIABLES:
        os.environ[name] = str(n)
