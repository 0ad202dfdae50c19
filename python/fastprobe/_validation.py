"""Input checks shared by every public entry point: prompts, labels, the two forms of ``fit``.

One rule for prompts everywhere: a prompt is any string, the empty string included. The API accepts ``""`` (a text
baseline can describe it, and lmprobe accepts it); extraction, which reads a model's activations at a prompt's
tokens, refuses ``""`` with an error naming its index (``check_prompts(..., empty_strings=False)``, in
``fastprobe.model.tokenize``). A single string where a list is expected, ``None``, or a non-string element is an
:class:`~fastprobe.exceptions.ArgumentTypeError` everywhere.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from fastprobe.exceptions import ArgumentTypeError, InvalidInputError, ShapeMismatchError

__all__ = [
    "as_array",
    "as_float",
    "check_labels",
    "check_max_iter",
    "check_prompts",
    "check_training_data",
    "looks_like_labels",
]


def as_array(values: Any) -> np.ndarray:
    """Return ``values`` as a numpy array (a torch tensor is detached and moved to the CPU)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def check_prompts(
    prompts: Any, what: str = "prompts", *, non_empty: bool = False, empty_strings: bool = True
) -> list[str]:
    """Return ``prompts`` as a list of strings, or raise naming what is wrong.

    Parameters
    ----------
    prompts : sequence of str
    what : str
        The argument's name in messages.
    non_empty : bool, default=False
        Refuse an empty list (inference needs at least one prompt).
    empty_strings : bool, default=True
        Accept ``""`` as a prompt. Extraction passes False: a model reads activations at a prompt's tokens.

    Raises
    ------
    ArgumentTypeError
        For a single string, None or a non-string element (also a :class:`TypeError`).
    InvalidInputError
        For (``non_empty``) no prompts, or (not ``empty_strings``) an empty string.
    """
    if isinstance(prompts, str):
        raise ArgumentTypeError(f"{what} must be a list of strings, not str (pass [prompt], not a single string)")
    if prompts is None:
        raise ArgumentTypeError(f"{what} must be a list of strings, not NoneType")
    out = list(prompts)
    for i, p in enumerate(out):
        if not isinstance(p, str):
            raise ArgumentTypeError(f"{what}[{i}] must be a string; got {type(p).__name__} {p!r}")
        if not p and not empty_strings:
            raise InvalidInputError(f"prompt {i} must be a non-empty string; got '' (a model reads a prompt's tokens)")
    if non_empty and not out:
        raise InvalidInputError(f"{what} is empty; give at least one prompt")
    return out


def check_labels(prompts: Any, labels: Any) -> np.ndarray:
    """Return ``labels`` as a 1-D array with one value per prompt, or raise :class:`ShapeMismatchError`."""
    y = as_array(labels)
    n = 1 if isinstance(prompts, str) else len(prompts)
    if isinstance(prompts, str) or y.ndim != 1 or len(y) != n:
        raise ShapeMismatchError(f"got {n} prompts but labels of shape {y.shape}; give one per prompt")
    return y


def looks_like_labels(second: Any) -> bool:
    """Whether ``fit``'s second argument is labels (numbers) rather than negative prompts."""
    if second is None or isinstance(second, str):
        return False
    arr = as_array(second)
    return arr.ndim >= 1 and arr.size > 0 and arr.dtype.kind in "biuf"


def check_training_data(
    first: Any, second: Any, sample_weight: Any = None, *, classification: bool = True
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """``fit(positive, negative)`` or ``fit(prompts, labels)`` -> (prompts, labels, weights), checked.

    Raises
    ------
    InvalidInputError
        For a missing second argument, no prompts, NaN labels, or (``classification``) a single class.
    ShapeMismatchError
        If the labels or weights are not one per prompt.
    """
    if second is None:
        raise InvalidInputError(
            "fit() requires two arguments: negative prompts (fit(positive, negative)) or one label per prompt "
            "(fit(prompts, labels)); the second one is missing (None)"
        )
    prompts = check_prompts(first, "the prompts")
    if looks_like_labels(second):
        y = as_array(second)
        if y.ndim != 1:
            raise ShapeMismatchError(f"labels must be 1-D (one per prompt); got shape {y.shape}")
        if len(y) != len(prompts):
            raise ShapeMismatchError(f"got {len(prompts)} prompts but {len(y)} labels; give one label per prompt")
    else:
        negatives = check_prompts(second, "the negative prompts")
        y = np.concatenate([np.ones(len(prompts), dtype=np.int64), np.zeros(len(negatives), dtype=np.int64)])
        prompts = prompts + negatives
    if not prompts:
        raise InvalidInputError("no training prompts were given")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise InvalidInputError("labels contain NaN or infinity")
    if classification:
        classes = np.unique(y)
        if len(classes) < 2:
            raise InvalidInputError(
                f"training data has a single class ({classes.tolist()}); a classifier needs at least two"
            )
    w = None
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape != (len(prompts),):
            raise ShapeMismatchError(
                f"sample_weight length must match the training prompts: expected shape ({len(prompts)},), got {w.shape}"
            )
    return prompts, y, w


def as_float(value: Any, name: str) -> float:
    """Return ``float(value)``, or raise an :class:`~fastprobe.exceptions.ArgumentTypeError` naming the parameter.

    The solvers check the range; this only turns "could not convert" into a message that says which parameter.
    """
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{name} must be a number; got {value!r} ({type(value).__name__})") from None


def check_max_iter(value: Any) -> int:
    """Return ``max_iter`` as an int, or raise :class:`InvalidInputError` unless it is an integer >= 1."""
    if not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidInputError(f"max_iter must be an integer >= 1; got {value!r}")
    return int(value)
