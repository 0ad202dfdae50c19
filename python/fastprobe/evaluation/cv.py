"""Cross-validation over layers: k folds x seeds, the same splits for every layer, estimator and control.

:func:`cross_validate` fits one probe per (layer, seed, fold) and scores it on the held-out fold:

- classification: ``accuracy``, ``macro_f1`` and, with probabilities, ``auroc`` (one-vs-rest beyond two classes);
- regression: ``pearson``, ``spearman``, ``r2``, ``mse``, ``mae``.

For each split, every layer is fitted at once: the Rust estimators (logistic regression, ridge, mass-mean) in
parallel threads with the interpreter released (:func:`fastprobe.sweep.fit_layers`), any other scikit-learn
estimator (the MLP probe, scikit-learn's own) layer by layer. :class:`CVResult` holds one record per
(layer, seed, fold), a table of the mean and standard deviation per layer, and a plot by layer with the spread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastprobe import metrics
from fastprobe.estimators import build_classifier
from fastprobe.evaluation.control import control_labels
from fastprobe.evaluation.splits import Split, make_splits
from fastprobe.evaluation.targets import as_layer_dict, check_targets, minmax_scale
from fastprobe.exceptions import InvalidInputError, UnknownOptionError
from fastprobe.probe.inspection import pyplot
from fastprobe.sweep import fit_layers

__all__ = ["CLASSIFICATION_METRICS", "REGRESSION_METRICS", "CVResult", "cross_validate"]

#: The scores of each split, by task.
CLASSIFICATION_METRICS: tuple[str, ...] = ("accuracy", "macro_f1", "auroc")
REGRESSION_METRICS: tuple[str, ...] = ("pearson", "spearman", "r2", "mse", "mae")


@dataclass
class CVResult:
    """Scores of every (layer, seed, fold).

    Attributes
    ----------
    records : list of dict
        One per (layer, seed, fold): ``layer``, ``seed``, ``fold``, ``control`` and the scores.
    layers : list
        The layer names, in order.
    task : str
    control : str or None
        The control task the labels came from (None: the real labels).
    """

    records: list[dict[str, Any]]
    layers: list[Any]
    task: str
    control: str | None = None
    metrics: tuple[str, ...] = field(default=())

    @property
    def default_metric(self) -> str:
        """``accuracy`` for classification, ``r2`` for regression."""
        return "accuracy" if self.task == "classification" else "r2"

    def _check_metric(self, metric: str | None) -> str:
        metric = metric or self.default_metric
        if metric not in self.metrics:
            raise UnknownOptionError(f"unknown metric {metric!r}; expected one of: {', '.join(self.metrics)}")
        return metric

    def values(self, layer: Any, metric: str | None = None) -> np.ndarray:
        """Return one layer's scores, one per (seed, fold)."""
        metric = self._check_metric(metric)
        return np.array([r[metric] for r in self.records if r["layer"] == layer], dtype=np.float64)

    def per_seed(self, metric: str | None = None) -> dict[Any, dict[int, float]]:
        """Return each layer's score averaged over the folds, by seed: ``{layer: {seed: mean}}``."""
        metric = self._check_metric(metric)
        sums: dict[Any, dict[int, list[float]]] = {}
        for r in self.records:
            sums.setdefault(r["layer"], {}).setdefault(r["seed"], []).append(r[metric])
        return {layer: {s: float(np.nanmean(v)) for s, v in by.items()} for layer, by in sums.items()}

    def table(self) -> Any:
        """Return the mean and standard deviation over folds and seeds of every score, one row per layer.

        Returns
        -------
        pandas.DataFrame or list of dict
            Columns ``layer``, ``n``, then ``<metric>`` and ``<metric>_std`` for each score (a DataFrame when
            pandas is installed).
        """
        rows = []
        for layer in self.layers:
            row: dict[str, Any] = {"layer": layer}
            for m in self.metrics:
                v = self.values(layer, m)
                row["n"] = len(v)
                row[m] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
                row[f"{m}_std"] = float(np.nanstd(v, ddof=1)) if np.isfinite(v).sum() > 1 else 0.0
            rows.append(row)
        try:
            import pandas as pd
        except ImportError:  # pandas is optional
            return rows
        return pd.DataFrame(rows)

    def plot(self, metric: str | None = None, control: CVResult | None = None, ax: Any = None) -> tuple[Any, Any]:
        """Plot a score by layer (mean over folds and seeds, the band one standard deviation), a control beside it.

        Returns
        -------
        (matplotlib.figure.Figure, matplotlib.axes.Axes)
        """
        metric = self._check_metric(metric)
        plt = pyplot()
        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 3.5))
        x = np.arange(len(self.layers))
        for result, label in ((self, "task"), (control, f"control ({control.control})" if control else "")):
            if result is None:
                continue
            mean = np.array([np.nanmean(result.values(layer, metric)) for layer in self.layers])
            std = np.array([np.nanstd(result.values(layer, metric)) for layer in self.layers])
            ax.plot(x, mean, marker="o", label=label)
            ax.fill_between(x, mean - std, mean + std, alpha=0.25)
        ax.set_xticks(x, [str(layer) for layer in self.layers])
        ax.set_xlabel("layer")
        ax.set_ylabel(metric)
        ax.legend(loc="best", fontsize="small")
        return fig, ax


def _scores(task: str, est: Any, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from sklearn.pipeline import Pipeline

    if isinstance(est, Pipeline):  # scale once, then predict and score with the final step
        X, est = est[:-1].transform(X), est[-1]
    if task == "regression":
        return metrics.regression_metrics(y, est.predict(X))
    pred = np.asarray(est.predict(X))
    present = np.union1d(np.unique(y), np.unique(pred))  # the labels of the macro average, as scikit-learn takes them
    per_class = metrics.per_class_metrics(y, pred, present)
    out = {
        "accuracy": float(np.mean(pred == y)),
        "macro_f1": float(np.mean([v["f1"] for v in per_class.values()])),
        "auroc": float("nan"),
    }
    if hasattr(est, "predict_proba"):
        proba = est.predict_proba(X)
        classes = np.asarray(est.classes_)
        if len(classes) == 2 and len(np.unique(y)) == 2:
            out["auroc"] = metrics.auroc(y == classes[1], proba[:, 1])
        elif len(classes) > 2 and set(np.unique(y).tolist()) == set(classes.tolist()):
            out["auroc"] = float(np.mean([metrics.auroc(y == c, proba[:, i]) for i, c in enumerate(classes)]))
    return out


def cross_validate(
    layers: Any,
    y: Any,
    estimator: Any = "logistic_regression",
    *,
    task: str | None = None,
    splits: Sequence[Split] | None = None,
    n_folds: int = 5,
    seeds: int | Sequence[int] = (0,),
    groups: Any = None,
    stratify: bool = True,
    scale_targets: str | None = None,
    control: str | None = None,
    control_types: Sequence[Any] | None = None,
    estimator_kwargs: Mapping[str, Any] | None = None,
    standardize: bool = True,
    progress: bool = True,
    n_threads: int | None = None,
) -> CVResult:
    """Cross-validate a probe on every layer: k folds x seeds, the same splits everywhere.

    Parameters
    ----------
    layers : list of 2-D arrays, 3-D array, or mapping of name to 2-D array
        The activations (``examples x features`` per layer), for example from
        :func:`~fastprobe.evaluation.read_layers`.
    y : array-like of shape (n,)
    estimator : str or scikit-learn estimator, default="logistic_regression"
        A classifier name (:func:`fastprobe.estimators.build_classifier`; ``"logistic_regression"`` means ridge
        regression for ``task="regression"``) or an unfitted estimator (cloned).
    task : {"classification", "regression"}, optional
        Inferred from ``y`` when not given.
    splits : sequence of Split, optional
        The splits to use (:func:`~fastprobe.evaluation.make_splits`); by default made from ``y`` with
        ``n_folds``, ``seeds``, ``groups`` and ``stratify``. Give the same splits to compare estimators, controls or
        models.
    n_folds, seeds, groups, stratify
        See :func:`~fastprobe.evaluation.make_splits`.
    scale_targets : {None, "minmax"}, default=None
        Scale regression targets to [0, 1] over all examples before splitting (as the aligned-probing workflow does).
    control : {None, "permutation", "control_task"}, default=None
        Fit on control labels instead (:mod:`fastprobe.evaluation.control`), drawn with each split's seed; the
        splits stay those of the real labels.
    control_types : sequence, optional
        Each example's type, for ``control="control_task"``.
    estimator_kwargs : mapping, optional
        Options for a named estimator.
    standardize : bool, default=True
        Standardize each feature with the training part's mean and standard deviation before fitting (as
        ``Probe`` does by default).
    progress : bool, default=True
        A progress bar over the splits.
    n_threads : int, optional
        Threads for the Rust estimators.

    Returns
    -------
    CVResult

    Raises
    ------
    InvalidInputError
        For targets, splits or layers that do not fit (see :func:`~fastprobe.evaluation.make_splits`), or
        ``scale_targets`` on classification.
    """
    from tqdm.auto import tqdm

    values, task = check_targets(y, task)
    if scale_targets not in (None, "minmax"):
        raise UnknownOptionError(f"unknown scale_targets {scale_targets!r}; expected None or 'minmax'")
    if scale_targets == "minmax":
        if task != "regression":
            raise InvalidInputError("scale_targets='minmax' is for regression targets")
        values, _ = minmax_scale(values)
    named = as_layer_dict(layers, len(values))
    if splits is None:
        splits = make_splits(values, task=task, n_folds=n_folds, seeds=seeds, groups=groups, stratify=stratify)
    for s in splits:
        if len(s.train) == 0 or len(s.test) == 0 or max(s.train.max(), s.test.max()) >= len(values):
            raise InvalidInputError(
                f"split (seed {s.seed}, fold {s.fold}) has indices outside the {len(values)} examples"
            )
    template = build_classifier(estimator, None, estimator_kwargs, task=task)
    names = list(named)
    arrays = [named[k] for k in names]
    records: list[dict[str, Any]] = []
    labels_by_seed: dict[int, np.ndarray] = {}
    bar = tqdm(total=len(splits), desc="cross-validating", unit="split", disable=not progress)
    try:
        for split in splits:
            if control is None:
                target = values
            else:
                if split.seed not in labels_by_seed:
                    labels_by_seed[split.seed] = control_labels(control, values, split.seed, control_types)
                target = labels_by_seed[split.seed]
            y_train = target[split.train]
            if task == "classification" and len(np.unique(y_train)) < 2:
                raise InvalidInputError(
                    f"split (seed {split.seed}, fold {split.fold}): the training part has one class only"
                )
            fitted = fit_layers(
                [X[split.train] for X in arrays],
                y_train,
                template,
                standardize=standardize,
                n_threads=n_threads,
                progress=False,
            )
            for name, X, est in zip(names, arrays, fitted, strict=True):
                scores = _scores(task, est, X[split.test], target[split.test])
                records.append({"layer": name, "seed": split.seed, "fold": split.fold, "control": control, **scores})
            bar.update(1)
    finally:
        bar.close()
    kinds = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    return CVResult(records, names, task, control, kinds)
