"""A fitted probe's metrics on labelled prompts: point metrics, bootstrap intervals, calibration, a threshold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fastprobe import metrics
from fastprobe._validation import check_prompts
from fastprobe.exceptions import InvalidInputError
from fastprobe.probe.pipeline import inference_rows, predict_proba_rows, predict_rows, proba_spec
from fastprobe.store.pooling import PoolingSpec

__all__ = ["monitor_metrics", "point_metrics"]


def point_metrics(
    probe: Any, spec: PoolingSpec, X: np.ndarray, offsets: np.ndarray | None, y: np.ndarray
) -> tuple[dict[str, Any], np.ndarray | None]:
    """Point metrics of :meth:`Probe.evaluate`, and the per-prompt class probabilities (None without them).

    Classification adds, for any number of classes, ``per_class`` (:func:`fastprobe.metrics.per_class_metrics`:
    ``str(label)`` -> precision, recall, f1, support) and ``confusion_matrix``
    (:func:`fastprobe.metrics.confusion_matrix`: rows the true class, columns the predicted one, in ``classes_``
    order; a pair with a label outside ``classes_`` has no cell).
    """
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    if probe.task == "regression":
        pred = predict_rows(probe, spec, X, offsets)
        scores = {
            "r2": float(r2_score(y, pred)),
            "mse": float(mean_squared_error(y, pred)),
            "mae": float(mean_absolute_error(y, pred)),
        }
        return scores, None
    classes = probe.classes_
    proba = None
    if hasattr(probe.classifier_, "predict_proba"):
        proba = predict_proba_rows(probe, proba_spec(spec), X, offsets)
        pred = np.asarray(classes[np.argmax(proba, axis=1)])
    else:
        pred = predict_rows(probe, spec, X, offsets)
    out = metrics.classification_metrics(y, pred, proba, classes)
    out["per_class"] = metrics.per_class_metrics(y, pred, classes)
    out["confusion_matrix"] = metrics.confusion_matrix(y, pred, classes)
    return out, proba


def monitor_metrics(
    probe: Any,
    spec: PoolingSpec,
    proba: np.ndarray | None,
    y: np.ndarray,
    eval_hash: str,
    remote: bool | None,
    batch_size: int | None,
    *,
    control_prompts: Sequence[str] | None,
    target_fpr: float,
    confidence: float,
    n_bootstrap: int,
) -> dict[str, Any]:
    """Compute the intervals, calibration and control-set threshold of :meth:`Probe.evaluate`.

    ``proba`` is the evaluated prompts' class probabilities (None without them).
    """
    if proba is None:
        if control_prompts is not None:
            raise InvalidInputError("control_prompts need a classifier with probabilities (predict_proba)")
        return {}
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise InvalidInputError(f"n_bootstrap must be an integer >= 0 (0: no intervals); got {n_bootstrap!r}")
    classes = probe.classes_
    pred = classes[np.argmax(proba, axis=1)]
    out: dict[str, Any] = {"ece": metrics.expected_calibration_error(y, proba, classes)}
    binary = len(classes) == 2
    if n_bootstrap:
        seed = probe.random_state if probe.random_state is not None else int(eval_hash[7:23], 16)
        rng = np.random.default_rng(seed)
        kw: dict[str, Any] = {"confidence": confidence, "n_resamples": n_bootstrap, "random_state": rng}
        out["accuracy_ci"] = metrics.accuracy_ci(y, pred, **kw)
        if binary and len(np.unique(y == classes[1])) == 2:
            out["auroc_ci"] = metrics.auroc_ci(y == classes[1], proba[:, 1], **kw)
    if control_prompts is not None:
        if not binary:
            raise InvalidInputError(f"control_prompts need two classes; this probe has {len(classes)}")
        control = check_prompts(control_prompts, "control_prompts")
        _, Xc, oc = inference_rows(probe, control, remote, batch_size)
        scores = predict_proba_rows(probe, proba_spec(spec), Xc, oc)[:, 1]
        threshold, control_fpr = metrics.threshold_at_fpr(scores, target_fpr)
        flagged = proba[:, 1] > threshold
        positive = y == classes[1]
        out |= {
            "target_fpr": float(target_fpr),
            "threshold": threshold,
            "control_fpr": control_fpr,
            "tpr_at_threshold": float(flagged[positive].mean()) if positive.any() else float("nan"),
            "fpr_at_threshold": float(flagged[~positive].mean()) if (~positive).any() else float("nan"),
        }
    return out
