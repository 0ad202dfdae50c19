"""Control tasks and selectivity: labels a probe could learn even from a layer that does not represent the task.

- :func:`permuted_labels`: the labels shuffled across examples (seeded): no example keeps a reason for its label.
- :func:`control_task_labels`: Hewitt and Liang's control task: every type (a word, a prompt group, any key) gets one
  fixed random label, drawn from the empirical label distribution, shared by all its examples; a probe can only
  learn it by memorizing types.
- :func:`selectivity`: the task's score minus the control's, per layer, with its spread over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fastprobe.exceptions import InvalidInputError, UnknownOptionError

__all__ = ["CONTROLS", "control_labels", "control_task_labels", "permuted_labels", "selectivity"]

#: The control tasks :func:`control_labels` builds.
CONTROLS: tuple[str, ...] = ("permutation", "control_task")


def permuted_labels(y: Any, seed: int) -> np.ndarray:
    """Return the labels in a seeded random order (the same multiset, each example's link to its label broken)."""
    values = np.asarray(y)
    return values[np.random.default_rng(seed).permutation(len(values))]


def control_task_labels(y: Any, types: Sequence[Any], seed: int) -> np.ndarray:
    """Give every type one random label drawn from the empirical distribution of ``y``; return each example's.

    Parameters
    ----------
    y : array-like of shape (n,)
        The task's labels (or values): the distribution the control labels are drawn from.
    types : sequence of shape (n,)
        Each example's type (a word, a prompt, a group id; any hashable value). Types are ordered by their first
        appearance, so the draw does not depend on how the types sort.
    seed : int

    Raises
    ------
    InvalidInputError
        If ``types`` does not have one entry per example or an entry is None (a missing key).
    """
    values = np.asarray(y)
    keys = list(types)
    if len(keys) != len(values):
        raise InvalidInputError(f"the control task needs one type per example ({len(values)}); got {len(keys)}")
    missing = [i for i, k in enumerate(keys) if k is None or (isinstance(k, float) and np.isnan(k))]
    if missing:
        raise InvalidInputError(
            f"the control task needs a type for every example; {len(missing)} have none (first: example {missing[0]})"
        )
    order: dict[Any, int] = {}
    for k in keys:
        order.setdefault(k, len(order))
    draws = values[np.random.default_rng(seed).integers(0, len(values), size=len(order))]
    return np.asarray([draws[order[k]] for k in keys], dtype=values.dtype)


def control_labels(kind: str, y: Any, seed: int, types: Sequence[Any] | None = None) -> np.ndarray:
    """Return the labels of a control task by name (:data:`CONTROLS`).

    Raises
    ------
    UnknownOptionError
        For an unknown control.
    InvalidInputError
        For ``"control_task"`` without types.
    """
    if kind == "permutation":
        return permuted_labels(y, seed)
    if kind == "control_task":
        if types is None:
            raise InvalidInputError('control="control_task" needs each example\'s type (control_types=...)')
        return control_task_labels(y, types, seed)
    raise UnknownOptionError(f"unknown control {kind!r}; expected one of: {', '.join(CONTROLS)}")


def selectivity(task: Any, control: Any, metric: str | None = None) -> Any:
    """Return the task's score minus the control's per layer: mean and standard deviation over seeds.

    For each seed, the two scores are averaged over the folds, and their difference taken; the table gives the mean
    and spread of those differences.

    Parameters
    ----------
    task, control : CVResult
        Results of :func:`~fastprobe.evaluation.cross_validate` on the same layers and seeds, the second with a
        control.
    metric : str, optional
        Default: accuracy (R^2 for regression).

    Returns
    -------
    pandas.DataFrame or list of dict
        One row per layer: ``layer``, ``task``, ``control``, ``selectivity``, ``selectivity_std``.

    Raises
    ------
    InvalidInputError
        If the two results do not cover the same layers and seeds.
    """
    metric = metric or task.default_metric
    a, b = task.per_seed(metric), control.per_seed(metric)
    if set(a) != set(b):
        raise InvalidInputError(
            f"selectivity compares results on the same layers and seeds; got {sorted(map(str, a))} and "
            f"{sorted(map(str, b))}"
        )
    rows = []
    for key in task.layers:
        seeds = sorted(a[key])
        if sorted(b[key]) != seeds:
            raise InvalidInputError(f"layer {key!r}: the task used seeds {seeds}, the control {sorted(b[key])}")
        diff = np.array([a[key][s] - b[key][s] for s in seeds])
        rows.append(
            {
                "layer": key,
                "task": float(np.mean([a[key][s] for s in seeds])),
                "control": float(np.mean([b[key][s] for s in seeds])),
                "selectivity": float(diff.mean()),
                "selectivity_std": float(diff.std(ddof=1)) if len(diff) > 1 else 0.0,
            }
        )
    try:
        import pandas as pd
    except ImportError:  # pandas is optional
        return rows
    return pd.DataFrame(rows)
