"""Where the time of a probe's operations goes: opt-in timing of ``fit``, ``predict`` and the rest.

With profiling on (:func:`set_profiling`, or ``FASTPROBE_PROFILE=1`` / lmprobe's ``LMPROBE_PROFILE=1`` in the
environment at import), each profiled call of a :class:`~fastprobe.Probe` leaves a dict of seconds per section in
the probe's ``last_profile_`` (``total`` plus sections such as ``extract_and_pool``, ``scale``, ``preprocess``,
``fit``, ``transform``, ``predict``) and logs one line at INFO level to the ``fastprobe.profiling`` logger. Off, a
section costs one context-variable lookup.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

__all__ = ["is_profiling", "operation", "profiled", "section", "set_profiling"]

_F = TypeVar("_F", bound=Callable[..., Any])

logger = logging.getLogger("fastprobe.profiling")

_ENABLED = any(os.environ.get(name, "") not in ("", "0") for name in ("FASTPROBE_PROFILE", "LMPROBE_PROFILE"))
_CURRENT: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar("fastprobe_profile", default=None)


def set_profiling(enabled: bool) -> None:
    """Turn the timing of probe operations on or off for this process.

    Parameters
    ----------
    enabled : bool
    """
    global _ENABLED
    _ENABLED = bool(enabled)


def is_profiling() -> bool:
    """Whether probe operations are timed (see :func:`set_profiling`).

    Returns
    -------
    bool
    """
    return _ENABLED


@contextlib.contextmanager
def operation(owner: Any, name: str) -> Iterator[None]:
    """Time one operation of ``owner``; on exit, store its sections in ``owner.last_profile_`` and log them.

    Nested operations (``evaluate`` calling ``predict``) add their sections to the outermost one. With profiling
    off this does nothing, and ``last_profile_`` is left as it is.

    Parameters
    ----------
    owner : object
        The probe whose ``last_profile_`` receives the timings.
    name : str
        The operation's name, for the log line.

    Yields
    ------
    None
    """
    if not _ENABLED or _CURRENT.get() is not None:
        yield
        return
    timings: dict[str, float] = {}
    token = _CURRENT.set(timings)
    start = time.perf_counter()
    try:
        yield
    finally:
        _CURRENT.reset(token)
        timings["total"] = time.perf_counter() - start
        owner.last_profile_ = timings
        parts = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in timings.items() if k != "total")
        logger.info("%s.%s: %.1f ms (%s)", type(owner).__name__, name, timings["total"] * 1e3, parts)


@contextlib.contextmanager
def section(name: str) -> Iterator[None]:
    """Time one section of the operation in progress (a no-op outside one, or with profiling off).

    Parameters
    ----------
    name : str
        The section's key in ``last_profile_``; a section entered twice adds up.

    Yields
    ------
    None
    """
    timings = _CURRENT.get()
    if timings is None:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


def profiled(name: str) -> Callable[[_F], _F]:
    """Decorate a method so that each call is one profiled :func:`operation` of its object.

    Parameters
    ----------
    name : str
        The operation's name.

    Returns
    -------
    callable
        The decorator.
    """

    def decorate(method: _F) -> _F:
        @functools.wraps(method)
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            with operation(self, name):
                return method(self, *args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate
