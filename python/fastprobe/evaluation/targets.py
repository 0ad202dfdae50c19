"""What the evaluation tools take: the layers (activations to evaluate) and the targets (labels or scores).

- :func:`as_layer_dict`: layers given as a list of 2-D arrays, a 3-D array or a mapping, as ``{name: array}``;
- :func:`infer_task`: classification (a few discrete labels) or regression (continuous values);
- :func:`minmax_scale`: targets scaled to [0, 1], as the aligned-probing workflow scales its scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fastprobe.exceptions import ArgumentTypeError, InvalidInputError, ShapeMismatchError, UnknownOptionError

__all__ = ["TASKS", "as_layer_dict", "check_targets", "infer_task", "minmax_scale"]

#: The tasks the evaluation tools know.
TASKS: tuple[str, ...] = ("classification", "regression")


def as_layer_dict(layers: Any, n_examples: int | None = None) -> dict[Any, np.ndarray]:
    """Return the layers as ``{name: float32 array of shape (n_examples, n_features)}``.

    Parameters
    ----------
    layers : sequence of 2-D arrays, 3-D array, or mapping of name to 2-D array
        A list or a 3-D array ``(n_layers, n_examples, n_features)`` is named ``0 .. n_layers - 1``.
    n_examples : int, optional
        The number of rows every layer must have.

    Raises
    ------
    ArgumentTypeError
        If ``layers`` is none of these forms.
    ShapeMismatchError
        If a layer is not 2-D, or the layers (or ``n_examples``) disagree on the number of rows.
    InvalidInputError
        If there are no layers.
    """
    if isinstance(layers, Mapping):
        items = list(layers.items())
    elif isinstance(layers, np.ndarray) and layers.ndim == 3:
        items = list(enumerate(layers))
    elif isinstance(layers, Sequence) and not isinstance(layers, (str, bytes)):
        items = list(enumerate(layers))
    else:
        raise ArgumentTypeError(
            "layers must be a list of 2-D arrays, a 3-D array (layers, examples, features) or a mapping of layer "
            f"name to 2-D array; got {type(layers).__name__}"
        )
    if not items:
        raise InvalidInputError("no layers to evaluate; give at least one")
    out: dict[Any, np.ndarray] = {}
    for name, value in items:
        X = np.ascontiguousarray(value, dtype=np.float32)
        if X.ndim != 2:
            raise ShapeMismatchError(f"layer {name!r} must be 2-D (examples, features); got shape {X.shape}")
        if n_examples is not None and X.shape[0] != n_examples:
            raise ShapeMismatchError(f"layer {name!r} has {X.shape[0]} rows; the targets have {n_examples}")
        n_examples = X.shape[0]
        out[name] = X
    return out


def infer_task(y: Any) -> str:
    """Return ``"regression"`` for float targets with a non-integer value, else ``"classification"``."""
    values = np.asarray(y)
    if values.dtype.kind == "f" and not np.all(np.isfinite(values) & (values == np.round(values))):
        return "regression"
    return "classification"


def check_targets(y: Any, task: str | None) -> tuple[np.ndarray, str]:
    """Validate targets and their task; return them as an array and the task.

    Raises
    ------
    UnknownOptionError
        For a task other than those in :data:`TASKS`.
    InvalidInputError
        If ``y`` is empty or not 1-D, a regression target is not finite or is constant, or a classification has
        fewer than two classes.
    """
    values = np.asarray(y)
    if values.ndim != 1 or len(values) == 0:
        raise InvalidInputError(f"targets must be a non-empty 1-D sequence; got shape {values.shape}")
    task = task or infer_task(values)
    if task not in TASKS:
        raise UnknownOptionError(f"unknown task {task!r}; expected one of: {', '.join(TASKS)}")
    if task == "regression":
        values = values.astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise InvalidInputError("regression targets must be finite; got NaN or infinite values")
        if np.ptp(values) == 0:
            raise InvalidInputError(
                f"regression targets are constant (all {float(values[0])}); there is nothing to predict"
            )
    elif len(np.unique(values)) < 2:
        raise InvalidInputError(f"classification needs at least two classes; got only {np.unique(values).tolist()}")
    return values, task


def minmax_scale(y: Any) -> tuple[np.ndarray, tuple[float, float]]:
    """Scale targets to [0, 1]: ``(y - min) / (max - min)``; return them and ``(min, max)``.

    Raises
    ------
    InvalidInputError
        If the targets are constant.
    """
    values = np.asarray(y, dtype=np.float64)
    low, high = float(np.min(values)), float(np.max(values))
    if high == low:
        raise InvalidInputError(f"cannot min-max scale constant targets (all {low})")
    return (values - low) / (high - low), (low, high)
