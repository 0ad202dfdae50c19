"""Evaluation beyond point metrics: bootstrap confidence intervals, calibration error, and monitor thresholds.

A probe deployed as a monitor is judged by more than its accuracy on one test set: how far that accuracy could be
from the truth (:func:`accuracy_ci`, :func:`auroc_ci`), whether its probabilities mean what they say
(:func:`expected_calibration_error`), and what it catches at the false-positive rate its operators can afford on
benign traffic (:func:`threshold_at_fpr`). With several classes, where the errors go: :func:`per_class_metrics`
and :func:`confusion_matrix`. :meth:`fastprobe.Probe.evaluate` reports all of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from fastprobe.exceptions import InvalidInputError, ShapeMismatchError

__all__ = [
    "accuracy",
    "accuracy_ci",
    "auroc",
    "auroc_ci",
    "bootstrap_indices",
    "classification_metrics",
    "confusion_matrix",
    "eval_hash",
    "expected_calibration_error",
    "per_class_metrics",
    "regression_metrics",
    "threshold_at_fpr",
]


# ---------------------------------------------------------------------------------------------- private helpers
# Used by the metric functions of this module only; other modules call the public functions.


def _rng(random_state: Any) -> np.random.Generator:
    """Return ``random_state`` itself when it is a Generator (so that successive calls draw on), else a new one."""
    return random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)


def _check_interval(confidence: float, n_resamples: int) -> None:
    """Raise InvalidInputError unless ``confidence`` lies strictly in (0, 1) and ``n_resamples`` is an int >= 1."""
    if not (isinstance(confidence, (int, float)) and 0 < confidence < 1):
        raise InvalidInputError(f"confidence must be a number strictly between 0 and 1; got {confidence!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise InvalidInputError(f"n_resamples must be an integer >= 1; got {n_resamples!r}")


def bootstrap_indices(n: int, n_resamples: int, random_state: Any = None) -> np.ndarray:
    """Row indices of ``n_resamples`` bootstrap resamples of ``n`` rows (drawn with replacement).

    Parameters
    ----------
    n : int
    n_resamples : int
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    numpy.ndarray of shape (n_resamples, n), int64
    """
    return _rng(random_state).integers(0, n, size=(n_resamples, n))


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Return the two percentiles of ``values`` that bound its central ``confidence`` fraction."""
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def accuracy_ci(
    y_true: Any, y_pred: Any, *, confidence: float = 0.95, n_resamples: int = 1000, random_state: Any = None
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the accuracy.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
    confidence : float, default=0.95
    n_resamples : int, default=1000
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    (low, high) : tuple of float
    """
    _check_interval(confidence, n_resamples)
    truth, pred = np.asarray(y_true), np.asarray(y_pred)
    try:
        correct = truth == pred
    except ValueError:  # shapes that do not broadcast
        correct = None
    if correct is None or correct.ndim != 1 or correct.size == 0:
        raise ShapeMismatchError(
            f"y_true and y_pred must be two non-empty 1-D arrays of one length; got shapes {truth.shape} and "
            f"{pred.shape}"
        )
    idx = bootstrap_indices(len(correct), n_resamples, random_state)
    return _percentiles(correct[idx].mean(axis=1), confidence)


def _both_classes(positive: np.ndarray, what: str) -> None:
    """Raise InvalidInputError naming what it got unless the binary labels ``positive`` hold both classes."""
    if positive.all() or not positive.any():
        raise InvalidInputError(
            f"{what} needs both classes in y_true; got {positive.size} labels, {int(positive.sum())} of them positive"
        )


def _rank_auroc(positive: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of each row (Mann-Whitney with average ranks for ties); NaN for a row with a single class."""
    from scipy.stats import rankdata

    ranks = rankdata(scores, axis=-1)
    n1 = positive.sum(axis=-1)
    n0 = positive.shape[-1] - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((ranks * positive).sum(axis=-1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def auroc(y_true: Any, scores: Any) -> float:
    """Area under the ROC curve of ``scores`` for the binary labels ``y_true`` (True or 1: positive).

    Parameters
    ----------
    y_true : array-like of shape (n,)
    scores : array-like of shape (n,)

    Returns
    -------
    float
    """
    positive = np.asarray(y_true).astype(bool)
    _both_classes(positive, "AUROC")
    return float(_rank_auroc(positive, np.asarray(scores, dtype=np.float64)))


def auroc_ci(
    y_true: Any, scores: Any, *, confidence: float = 0.95, n_resamples: int = 1000, random_state: Any = None
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the AUROC (resamples holding one class only are left out).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels (True or 1: positive).
    scores : array-like of shape (n,)
    confidence : float, default=0.95
    n_resamples : int, default=1000
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    (low, high) : tuple of float
    """
    _check_interval(confidence, n_resamples)
    positive = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if positive.shape != s.shape or positive.ndim != 1:
        raise ShapeMismatchError(
            f"y_true and scores must be 1-D arrays of one length; got shapes {positive.shape} and {s.shape}"
        )
    _both_classes(positive, "an AUROC interval")
    idx = bootstrap_indices(len(s), n_resamples, random_state)
    values = _rank_auroc(positive[idx], s[idx])
    return _percentiles(values[np.isfinite(values)], confidence)


def expected_calibration_error(y_true: Any, proba: Any, classes: Any = None, *, n_bins: int = 10) -> float:
    """Compute the expected calibration error of the predicted class's probability, over equal-width bins.

    ``sum_b (|b| / n) * |accuracy(b) - mean confidence(b)|``, where a prediction's confidence is its largest class
    probability and bin ``b`` holds the predictions whose confidence lies in ``((b - 1) / n_bins, b / n_bins]``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
    proba : array-like of shape (n, n_classes)
    classes : array-like of shape (n_classes,), optional
        The label of each column (default ``0 .. n_classes - 1``).
    n_bins : int, default=10

    Returns
    -------
    float
    """
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y_true)
    if p.ndim != 2 or len(p) != len(y):
        raise ShapeMismatchError(f"proba must be (n, n_classes) with n = len(y_true) = {len(y)}; got {p.shape}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise InvalidInputError(f"n_bins must be an integer >= 1; got {n_bins!r}")
    labels = np.arange(p.shape[1]) if classes is None else np.asarray(classes)
    confidence = p.max(axis=1)
    correct = labels[p.argmax(axis=1)] == y
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        members = bins == b
        total += members.sum() * abs(correct[members].mean() - confidence[members].mean())
    return float(total / len(y))


def threshold_at_fpr(control_scores: Any, target_fpr: float) -> tuple[float, float]:
    """Find the lowest threshold that flags at most ``target_fpr`` of a control set (flag: score above it).

    How a deployed monitor is tuned: run it on benign (negative) traffic and choose the threshold its operators'
    false-positive budget allows.

    Parameters
    ----------
    control_scores : array-like of shape (n,)
        Scores (e.g. the positive-class probability) of control examples, all negatives.
    target_fpr : float
        In [0, 1).

    Returns
    -------
    threshold : float
    control_fpr : float
        The fraction of the control set above the threshold (at most ``target_fpr``).
    """
    s = np.sort(np.asarray(control_scores, dtype=np.float64).ravel())[::-1]
    if s.size == 0:
        raise InvalidInputError(
            f"the control set is empty (control_scores of shape {np.shape(control_scores)}); give at least one control "
            "example"
        )
    if not (isinstance(target_fpr, (int, float)) and 0 <= target_fpr < 1):
        raise InvalidInputError(f"target_fpr must be a number in [0, 1); got {target_fpr!r}")
    allowed = int(np.floor(target_fpr * s.size + 1e-9))
    threshold = float(s[allowed])  # scores strictly above the (allowed + 1)-th largest: at most `allowed` of them
    return threshold, float(np.mean(s > threshold))


def classification_metrics(y: Any, pred: Any, proba: Any, classes: Any) -> dict[str, Any]:
    """Compute accuracy, f1, precision and recall, and the AUROC when there are probabilities.

    f1, precision and recall are those of ``classes[1]`` for two classes, macro averages beyond; the AUROC needs at
    least two classes in ``y``.

    Parameters
    ----------
    y, pred : array-like of shape (n,)
        True and predicted labels.
    proba : array-like of shape (n, n_classes) or None
        Class probabilities, columns in ``classes`` order.
    classes : array-like
        The classifier's classes.

    Returns
    -------
    dict
        ``accuracy``, ``f1``, ``precision``, ``recall``, and ``auroc`` where it is defined.
    """
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    binary = len(classes) == 2
    avg: dict[str, Any] = {"average": "binary", "pos_label": classes[1]} if binary else {"average": "macro"}
    out: dict[str, Any] = {
        "accuracy": float(accuracy_score(y, pred)),
        "f1": float(f1_score(y, pred, zero_division=0, **avg)),
        "precision": float(precision_score(y, pred, zero_division=0, **avg)),
        "recall": float(recall_score(y, pred, zero_division=0, **avg)),
    }
    if proba is not None and len(np.unique(y)) >= 2:
        if binary:
            out["auroc"] = float(roc_auc_score(np.asarray(y) == classes[1], np.asarray(proba)[:, 1]))
        elif set(np.unique(y).tolist()) <= set(np.asarray(classes).tolist()):
            out["auroc"] = float(roc_auc_score(y, proba, multi_class="ovr", labels=classes))
    return out


def _class_positions(y: Any, pred: Any, classes: Any) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Return the classes as a list and each row's true and predicted class position (-1: not in ``classes``)."""
    truth, guess = np.asarray(y), np.asarray(pred)
    if truth.ndim != 1 or truth.shape != guess.shape:
        raise ShapeMismatchError(
            f"y and pred must be 1-D arrays of one length; got shapes {truth.shape} and {guess.shape}"
        )
    labels = np.asarray(classes).tolist()
    if np.ndim(classes) != 1 or not labels:
        raise InvalidInputError(f"classes must be a non-empty 1-D sequence of labels; got {classes!r}")
    position = {label: i for i, label in enumerate(labels)}
    if len(position) != len(labels):
        raise InvalidInputError(f"classes must not repeat a label; got {labels!r}")
    rows = np.array([position.get(v, -1) for v in truth.tolist()], dtype=np.int64)
    cols = np.array([position.get(v, -1) for v in guess.tolist()], dtype=np.int64)
    return labels, rows, cols


def confusion_matrix(y: Any, pred: Any, classes: Any) -> list[list[int]]:
    """Count each (true class, predicted class) pair.

    Parameters
    ----------
    y, pred : array-like of shape (n,)
        True and predicted labels.
    classes : array-like of shape (n_classes,)
        The labels, in the order of the rows and columns. A pair with a label outside ``classes`` is not counted.

    Returns
    -------
    list of list of int
        ``out[i][j]``: how many rows of class ``classes[i]`` were predicted as ``classes[j]`` (rows: true class,
        columns: predicted class), as plain ints (JSON-serialisable).

    Raises
    ------
    ShapeMismatchError
        If ``y`` and ``pred`` are not 1-D arrays of one length.
    InvalidInputError
        If ``classes`` is empty or repeats a label.
    """
    labels, rows, cols = _class_positions(y, pred, classes)
    k = len(labels)
    known = (rows >= 0) & (cols >= 0)
    counts: list[list[int]] = np.bincount(rows[known] * k + cols[known], minlength=k * k).reshape(k, k).tolist()
    return counts


def per_class_metrics(y: Any, pred: Any, classes: Any) -> dict[str, dict[str, float | int]]:
    """Compute the precision, recall, f1 and support of every class (one-vs-rest).

    Per class ``c``: precision = TP / (rows predicted ``c``), recall = TP / support, f1 = 2 TP / (support + rows
    predicted ``c``), each 0.0 where its denominator is 0 (scikit-learn's ``zero_division=0``); support = the rows
    of class ``c`` in ``y``. Every row counts, also one whose other label is outside ``classes`` (predicting ``c``
    for a row of an unlisted class is a false positive of ``c``), as in scikit-learn's
    ``precision_recall_fscore_support(labels=classes)``.

    Parameters
    ----------
    y, pred : array-like of shape (n,)
        True and predicted labels.
    classes : array-like of shape (n_classes,)
        The labels to report, in this order.

    Returns
    -------
    dict
        ``str(label)`` -> ``{"precision": float, "recall": float, "f1": float, "support": int}``, in ``classes``
        order (string keys, so that the result is JSON-serialisable).

    Raises
    ------
    ShapeMismatchError
        If ``y`` and ``pred`` are not 1-D arrays of one length.
    InvalidInputError
        If ``classes`` is empty, repeats a label, or holds two labels with the same string.
    """
    labels, rows, cols = _class_positions(y, pred, classes)
    names = [str(label) for label in labels]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"classes must have distinct string forms (they become the keys); got {labels!r}")
    k = len(labels)
    tp = np.bincount(rows[(rows == cols) & (rows >= 0)], minlength=k)
    support = np.bincount(rows[rows >= 0], minlength=k)
    predicted = np.bincount(cols[cols >= 0], minlength=k)

    def ratio(num: int, den: int) -> float:
        return float(num / den) if den else 0.0

    return {
        name: {
            "precision": ratio(int(tp[i]), int(predicted[i])),
            "recall": ratio(int(tp[i]), int(support[i])),
            "f1": ratio(2 * int(tp[i]), int(support[i] + predicted[i])),
            "support": int(support[i]),
        }
        for i, name in enumerate(names)
    }


def eval_hash(prompts: Sequence[str], labels: Any) -> str:
    """Identify an evaluation set: SHA-256 of its sorted prompts and labels (lmprobe's formula), ``"sha256:..."``."""
    combined = "\n".join(sorted(list(prompts) + [str(v) for v in np.asarray(labels).tolist()]))
    return "sha256:" + hashlib.sha256(combined.encode()).hexdigest()


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Return the fraction of predictions equal to the labels (the baseline battery's default score)."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def regression_metrics(y: Any, pred: Any) -> dict[str, float]:
    """Compute Pearson's and Spearman's correlations, R^2, the mean squared and the mean absolute error.

    Parameters
    ----------
    y, pred : array-like of shape (n,)
        True and predicted values.

    Returns
    -------
    dict
        ``pearson``, ``spearman``, ``r2``, ``mse``, ``mae``. A correlation is NaN when ``y`` or ``pred`` is constant
        (it is undefined there).

    Raises
    ------
    ShapeMismatchError
        If ``y`` and ``pred`` are not 1-D arrays of one length.
    InvalidInputError
        If they hold fewer than two values.
    """
    from scipy.stats import pearsonr, spearmanr

    truth, guess = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    if truth.ndim != 1 or truth.shape != guess.shape:
        raise ShapeMismatchError(
            f"y and pred must be 1-D arrays of one length; got shapes {truth.shape} and {guess.shape}"
        )
    if len(truth) < 2:
        raise InvalidInputError(f"regression metrics need at least two values; got {len(truth)}")
    err = guess - truth
    total = float(np.sum((truth - truth.mean()) ** 2))
    constant = bool(np.ptp(truth) == 0 or np.ptp(guess) == 0)
    return {
        "pearson": float("nan") if constant else float(pearsonr(truth, guess)[0]),
        "spearman": float("nan") if constant else float(spearmanr(truth, guess)[0]),
        "r2": float(1.0 - np.sum(err**2) / total) if total > 0 else float("nan"),
        "mse": float(np.mean(err**2)),
        "mae": float(np.mean(np.abs(err))),
    }
