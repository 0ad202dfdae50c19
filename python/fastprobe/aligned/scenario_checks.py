"""Checks of :func:`~fastprobe.aligned.run_scenarios`'s inputs: the capture, the score mappings, counts and lists."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fastprobe.aligned.capture import GenerationCapture
from fastprobe.exceptions import ArgumentTypeError, InvalidInputError, ShapeMismatchError, UnknownOptionError

__all__ = ["check_capture", "check_int", "check_items", "check_scores", "check_str", "score_array"]


def check_capture(capture: Any) -> GenerationCapture:
    """Return ``capture`` if it is a usable :class:`GenerationCapture`, else raise naming what is wrong."""
    if not isinstance(capture, GenerationCapture):
        raise ArgumentTypeError(f"capture must be a GenerationCapture; got {type(capture).__name__}")
    if not capture.sites:
        raise InvalidInputError("the capture has no sites")
    bad = [r.prompt for r in capture.rows if not 0 <= r.prompt < len(capture.prompts)]
    if bad:
        raise InvalidInputError(f"a capture row names prompt {bad[0]}; the capture has {len(capture.prompts)}")
    return capture


def check_scores(scores: Any, name: str) -> Mapping[str, Any]:
    """Return a scores mapping (empty for None), or raise :class:`ArgumentTypeError`."""
    if scores is None:
        return {}
    if not isinstance(scores, Mapping):
        raise ArgumentTypeError(f"{name} must be a mapping of attribute to scores; got {type(scores).__name__}")
    return scores


def score_array(scores: Mapping[str, Any], attribute: str, name: str, expected: int, per: str) -> np.ndarray:
    """Return one attribute's scores as float64 of length ``expected``, NaN for missing."""
    if not isinstance(attribute, str):
        raise ArgumentTypeError(f"an attribute must be a str; got {type(attribute).__name__}")
    if attribute not in scores:
        have = ", ".join(map(repr, scores)) or "none"
        raise UnknownOptionError(f"{name} has no attribute {attribute!r}; it has: {have}")
    try:
        values = np.asarray(scores[attribute], dtype=np.float64)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{name}[{attribute!r}] must hold numbers (NaN for missing)") from None
    if values.ndim != 1 or len(values) != expected:
        raise ShapeMismatchError(
            f"{name}[{attribute!r}] must hold one score per {per}: expected shape ({expected},); got {values.shape}"
        )
    if np.isinf(values).any():
        raise InvalidInputError(f"{name}[{attribute!r}] holds an infinite score; give NaN for a missing one")
    return values


def check_int(value: Any, name: str, low: int) -> int:
    """Return ``value`` as an int if it is one, at least ``low``, else raise :class:`ArgumentTypeError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ArgumentTypeError(f"{name} must be an int >= {low}; got {value!r}")
    return int(value)


def check_items(values: Any, name: str, check: Callable[[Any], Any], single: type) -> list[Any]:
    """Return a value or a sequence of them as a list, each checked, non-empty and without repeats."""
    if isinstance(values, single):
        values = [values]
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | np.ndarray):
        raise ArgumentTypeError(
            f"{name} must be a {single.__name__} or a sequence of them; got {type(values).__name__}"
        )
    out = [check(v) for v in values]
    if not out or len(set(out)) != len(out):
        raise InvalidInputError(f"{name} must be non-empty without repeats; got {out}")
    return out


def check_str(value: Any) -> str:
    """Return an attribute name if it is a str, else raise :class:`ArgumentTypeError`."""
    if not isinstance(value, str):
        raise ArgumentTypeError(f"an attribute must be a str; got {value!r} ({type(value).__name__})")
    return value
