"""Shared, seeded k-fold x seed splits: every layer, estimator and control task sees the same folds.

:func:`make_splits` gives one :class:`Split` per (seed, fold). Classification targets are stratified (each fold keeps
the class proportions); with ``groups`` no group is on both sides of a split (the same prompt's samples, the same
city). With ``dev_fraction`` each training part is split again into train and dev (for early stopping or choosing
a regularization strength), the same way (stratified, grouped) and seeded by (seed, fold).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastprobe.evaluation.targets import check_targets
from fastprobe.exceptions import ArgumentTypeError, InvalidInputError

__all__ = ["Split", "make_splits"]


@dataclass(frozen=True)
class Split:
    """One split: example indices (int64, sorted) for training, testing and, optionally, a dev set."""

    seed: int
    fold: int
    train: np.ndarray
    test: np.ndarray
    dev: np.ndarray | None = None


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ArgumentTypeError(f"{name} must be an int >= {low}; got {value!r}")
    return int(value)


def _folds(y: np.ndarray, groups: np.ndarray | None, n_folds: int, seed: int, stratify: bool) -> list[tuple[Any, Any]]:
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    idx = np.zeros(len(y))
    if groups is None:
        if stratify:
            return list(StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(idx, y))
        return list(KFold(n_folds, shuffle=True, random_state=seed).split(idx))
    if stratify:
        return list(StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed).split(idx, y, groups))
    return list(GroupKFold(n_folds, shuffle=True, random_state=seed).split(idx, y, groups))


def _dev_split(
    train: np.ndarray, y: np.ndarray, groups: np.ndarray | None, fraction: float, seed: int, stratify: bool
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    if groups is not None:
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        inner, dev = next(splitter.split(train, groups=groups[train]))
        return np.sort(train[inner]), np.sort(train[dev])
    labels = y[train]
    can_stratify = stratify and np.unique(labels, return_counts=True)[1].min() >= 2
    inner, dev = train_test_split(
        train, test_size=fraction, random_state=seed, stratify=labels if can_stratify else None
    )
    return np.sort(inner), np.sort(dev)


def make_splits(
    y: Any,
    *,
    task: str | None = None,
    n_folds: int = 5,
    seeds: int | Sequence[int] = (0,),
    groups: Any = None,
    stratify: bool = True,
    dev_fraction: float | None = None,
) -> list[Split]:
    """Return the k-fold splits of ``y`` for each seed, in (seed, fold) order.

    Parameters
    ----------
    y : array-like of shape (n,)
        Labels (classification) or values (regression).
    task : {"classification", "regression"}, optional
        Inferred from ``y`` when not given (:func:`~fastprobe.evaluation.targets.infer_task`).
    n_folds : int, default=5
    seeds : int or sequence of int, default=(0,)
        One shuffle per seed.
    groups : array-like of shape (n,), optional
        Examples of one group are never on both sides of a split (nor of the dev split).
    stratify : bool, default=True
        Keep the class proportions in each fold (classification only).
    dev_fraction : float, optional
        Split each training part again: this fraction of it becomes the dev set.

    Returns
    -------
    list of Split

    Raises
    ------
    InvalidInputError
        Fewer examples (or groups) than folds; a class with fewer members than folds (stratified); a
        ``dev_fraction`` outside (0, 1); ``groups`` of another length.
    ArgumentTypeError
        A non-integer ``n_folds`` or seed.
    """
    values, task = check_targets(y, task)
    n_folds = _check_int(n_folds, "n_folds", 2)
    seed_list: list[Any] = [seeds] if isinstance(seeds, (int, np.integer, bool)) else list(seeds)
    if not seed_list:
        raise InvalidInputError("seeds is empty; give at least one seed")
    seed_list = [_check_int(s, "each seed", 0) for s in seed_list]
    n = len(values)
    if n < n_folds:
        raise InvalidInputError(f"{n_folds} folds need at least {n_folds} examples; got {n}")
    group_arr = None
    if groups is not None:
        group_arr = np.asarray(groups)
        if group_arr.shape != (n,):
            raise InvalidInputError(f"groups must have one entry per example ({n}); got shape {group_arr.shape}")
        n_groups = len(np.unique(group_arr))
        if n_groups < n_folds:
            raise InvalidInputError(f"{n_folds} folds need at least {n_folds} groups; got {n_groups}")
    stratified = bool(stratify and task == "classification")
    if stratified:
        classes, counts = np.unique(values, return_counts=True)
        if counts.min() < n_folds:
            small = {str(c): int(k) for c, k in zip(classes, counts, strict=True) if k < n_folds}
            raise InvalidInputError(
                f"stratified {n_folds}-fold splits need at least {n_folds} examples of every class; these have fewer: "
                f"{small} (use fewer folds or stratify=False)"
            )
    if dev_fraction is not None and not 0.0 < float(dev_fraction) < 1.0:
        raise InvalidInputError(f"dev_fraction must be in (0, 1); got {dev_fraction!r}")
    out: list[Split] = []
    for seed in seed_list:
        for fold, (train, test) in enumerate(_folds(values, group_arr, n_folds, seed, stratified)):
            train, test = np.sort(train).astype(np.int64), np.sort(test).astype(np.int64)
            dev = None
            if dev_fraction is not None:
                train, dev = _dev_split(train, values, group_arr, float(dev_fraction), seed * 1000 + fold, stratified)
            out.append(Split(seed, fold, train, test, dev))
    return out
