"""Process-wide configuration: fastprobe's cache root, its environment variables, and the number of CPU threads.

The cache's ``FASTPROBE_<NAME>`` settings are read by :func:`env`, which falls back to lmprobe's ``LMPROBE_<NAME>``
when the fastprobe name is unset (``FASTPROBE_HOME``, fastprobe's own, has no lmprobe twin). The readers of the
cache's settings (:func:`env_cache_dir`, :func:`env_cache_dtype`, :func:`env_cache_limit_bytes`,
:func:`env_cache_tokens`) give what the environment says; the settings made in code
(:func:`fastprobe.store.set_cache_backend` and the others) take precedence over them in :mod:`fastprobe.store`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastprobe import _core
from fastprobe.exceptions import InvalidInputError, UnknownOptionError

__all__ = [
    "CACHE_TOKENS_MODES",
    "DEFAULT_BATCH_SIZE",
    "THREAD_VARIABLES",
    "DefaultBatchSize",
    "cache_root",
    "env",
    "env_cache_dir",
    "env_cache_dtype",
    "env_cache_limit_bytes",
    "env_cache_tokens",
    "is_auto",
    "set_max_threads",
]

#: The environment variables of the thread pools torch and the BLAS libraries read when they start.
THREAD_VARIABLES: tuple[str, ...] = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
#: Values of :func:`fastprobe.store.set_cache_tokens` (and of ``FASTPROBE_CACHE_TOKENS``).
CACHE_TOKENS_MODES: tuple[str, ...] = ("auto", "always")


def cache_root() -> Path:
    """Return fastprobe's cache directory.

    ``FASTPROBE_HOME`` if set, else ``$XDG_CACHE_HOME/fastprobe``, else ``~/.cache/fastprobe``.

    Returns
    -------
    pathlib.Path
    """
    if home := os.environ.get("FASTPROBE_HOME"):
        return Path(home)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fastprobe"


def env(name: str) -> str | None:
    """Return the setting ``FASTPROBE_<name>``, else lmprobe's ``LMPROBE_<name>``; None when neither is set (or empty).

    Parameters
    ----------
    name : str
        The setting's name without its prefix, e.g. ``"CACHE_DIR"``.

    Returns
    -------
    str or None
    """
    return os.environ.get(f"FASTPROBE_{name}") or os.environ.get(f"LMPROBE_{name}")


def env_cache_dir() -> Path:
    """Return the activation cache's root the environment names: ``FASTPROBE_CACHE_DIR``, else the default.

    The default is ``cache_root() / "activations"``.

    Returns
    -------
    pathlib.Path
    """
    value = env("CACHE_DIR")
    return Path(value) if value else cache_root() / "activations"


def env_cache_dtype() -> str:
    """Return the storage dtype of new cache stores the environment names: ``FASTPROBE_CACHE_DTYPE``, else float16.

    Returns
    -------
    str

    Raises
    ------
    UnknownOptionError
        If the variable names no storage dtype.
    """
    value = env("CACHE_DTYPE")
    dtypes = tuple(_core.STORAGE_DTYPES)
    if value and value not in dtypes:
        raise UnknownOptionError(f"FASTPROBE_CACHE_DTYPE={value!r}; expected one of: {', '.join(dtypes)}")
    return value or "float16"


def env_cache_limit_bytes() -> int | None:
    """Return the cache's byte budget the environment sets (``FASTPROBE_CACHE_MAX_GB``, in GiB); None: unlimited.

    Returns
    -------
    int or None

    Raises
    ------
    InvalidInputError
        If the variable is not a number.
    """
    value = env("CACHE_MAX_GB")
    if not value:
        return None
    try:
        return int(float(value) * 1024**3)
    except ValueError:
        raise InvalidInputError(f"FASTPROBE_CACHE_MAX_GB must be a number of gigabytes; got {value!r}") from None


def env_cache_tokens() -> str:
    """Return what probes cache by the environment: ``FASTPROBE_CACHE_TOKENS``, else ``"auto"``.

    Returns
    -------
    str
        One of :data:`CACHE_TOKENS_MODES`.

    Raises
    ------
    UnknownOptionError
        If the variable names no mode.
    """
    mode = env("CACHE_TOKENS") or "auto"
    if mode not in CACHE_TOKENS_MODES:
        raise UnknownOptionError(f"FASTPROBE_CACHE_TOKENS={mode!r}; expected one of: {', '.join(CACHE_TOKENS_MODES)}")
    return mode


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

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidInputError(f"set_max_threads takes an integer >= 1; got {n!r}")
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # torch allows this once, before any parallel work; the intra-op bound still holds
        pass
    for name in THREAD_VARIABLES:
        os.environ[name] = str(n)


class DefaultBatchSize(int):
    """lmprobe's default batch size (8), marked as not set by the user: batches then fill a token budget."""

    def __reduce__(self) -> str:
        return "DEFAULT_BATCH_SIZE"  # copies and pickles are this module's one instance

    def __repr__(self) -> str:
        return "8"


#: ``Probe``'s default ``batch_size``: equal to 8 (lmprobe's default) and read as "fill batches to a token budget".
DEFAULT_BATCH_SIZE = DefaultBatchSize(8)


def is_auto(batch_size: Any) -> bool:
    """Whether ``batch_size`` leaves the batching to the runner (None, or :data:`DEFAULT_BATCH_SIZE`)."""
    return batch_size is None or isinstance(batch_size, DefaultBatchSize)
