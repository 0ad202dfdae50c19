"""Bootstrap intervals, calibration error and monitor thresholds, against simulations and hand computation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fastprobe import InvalidInputError, Probe, ShapeMismatchError
from fastprobe.metrics import (
    accuracy_ci,
    auroc,
    auroc_ci,
    bootstrap_indices,
    expected_calibration_error,
    threshold_at_fpr,
)
from fastprobe.testing import tiny_model

SUBJECTS = ["I", "We", "They", "You", "People", "Tourists", "Students", "Friends"]
VERBS = ["saw", "like", "love", "visited", "remember", "know"]
POS = [f"{s} {v} Paris" for s in SUBJECTS for v in VERBS]
NEG = [f"{s} {v} Tokyo" for s in SUBJECTS for v in VERBS]


def test_the_accuracy_interval_covers_the_true_accuracy_at_the_nominal_rate() -> None:
    """Simulation: 400 test sets of 200 predictions, each right with probability 0.8; the 90% interval should miss
    the true 0.8 in about 10% of them (the percentile bootstrap of a proportion is close to nominal at this size)."""
    rng = np.random.default_rng(0)
    covered = []
    for _ in range(400):
        y = rng.integers(0, 2, 200)
        pred = np.where(rng.random(200) < 0.8, y, 1 - y)
        lo, hi = accuracy_ci(y, pred, confidence=0.9, n_resamples=400, random_state=rng)
        covered.append(lo <= 0.8 <= hi)
    rate = float(np.mean(covered))
    # 400 trials: the rate's standard error is 0.015, so [0.85, 0.95] is more than 3 standard errors either side.
    assert 0.85 <= rate <= 0.95, rate


def test_the_auroc_interval_equals_sklearn_on_the_same_resamples() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 120).astype(bool)
    scores = np.round(rng.normal(size=120) + y, 1)  # rounded: ties, which the rank formula must average
    assert auroc(y, scores) == pytest.approx(roc_auc_score(y, scores))
    idx = bootstrap_indices(120, 300, random_state=7)
    ref = [roc_auc_score(y[i], scores[i]) for i in idx if 0 < y[i].sum() < 120]
    lo, hi = auroc_ci(y, scores, confidence=0.8, n_resamples=300, random_state=7)
    assert (lo, hi) == pytest.approx(tuple(np.percentile(ref, [10, 90])))
    assert lo < auroc(y, scores) < hi


def test_expected_calibration_error_by_hand_and_on_simulated_forecasts() -> None:
    proba = np.array([[0.1, 0.9], [0.35, 0.65], [0.8, 0.2], [0.45, 0.55]])
    y = np.array([1, 0, 0, 1])
    # Confidences 0.9, 0.65, 0.8, 0.55 fall in bins (0.8, 0.9], (0.6, 0.7], (0.7, 0.8], (0.5, 0.6]: one each.
    expected = (abs(1 - 0.9) + abs(0 - 0.65) + abs(1 - 0.8) + abs(1 - 0.55)) / 4
    assert expected_calibration_error(y, proba) == pytest.approx(expected)
    assert expected_calibration_error(np.array(["b", "a", "a", "b"]), proba, ["a", "b"]) == pytest.approx(expected)
    rng = np.random.default_rng(2)
    p1 = rng.random(20000)
    outcome = (rng.random(20000) < p1).astype(int)
    calibrated = np.column_stack([1 - p1, p1])
    assert expected_calibration_error(outcome, calibrated) < 0.02
    overconfident = np.column_stack([1 - p1, p1]) ** 0.25
    overconfident /= overconfident.sum(axis=1, keepdims=True)
    assert expected_calibration_error(outcome, overconfident) > 0.1


def test_threshold_at_fpr_is_the_lowest_that_keeps_the_budget() -> None:
    rng = np.random.default_rng(3)
    control = rng.random(1000)
    for fpr in (0.0, 0.01, 0.05, 0.1234):
        threshold, achieved = threshold_at_fpr(control, fpr)
        assert achieved == np.mean(control > threshold) <= fpr
        lower = control[control < threshold].max()  # the next lower candidate breaks the budget
        assert np.mean(control > lower) > fpr
    with pytest.raises(InvalidInputError, match=r"target_fpr must be a number in \[0, 1\); got 1.5"):
        threshold_at_fpr(control, 1.5)
    with pytest.raises(InvalidInputError, match="the control set is empty"):
        threshold_at_fpr([], 0.1)


Y = np.array([1, 0, 1, 0])
SCORES = np.array([0.9, 0.2, 0.6, 0.4])
PROBA = np.column_stack([1 - SCORES, SCORES])
# Each check's message: what the argument must be, then what it got.
CONFIDENCE = "confidence must be a number strictly between 0 and 1; got "
N_RESAMPLES = "n_resamples must be an integer >= 1; got "
ONE_LENGTH = "y_true and y_pred must be two non-empty 1-D arrays of one length; got shapes "
SCORES_LENGTH = "y_true and scores must be 1-D arrays of one length; got shapes "
BOTH_CLASSES = "needs both classes in y_true; got "
PROBA_SHAPE = r"proba must be \(n, n_classes\) with n = len\(y_true\) = "
N_BINS = "n_bins must be an integer >= 1; got "
TARGET_FPR = r"target_fpr must be a number in \[0, 1\); got "


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        # accuracy_ci and auroc_ci share the interval checks
        (lambda: accuracy_ci(Y, Y, confidence=1.0), InvalidInputError, CONFIDENCE + "1.0"),
        (lambda: auroc_ci(Y, SCORES, confidence=0), InvalidInputError, CONFIDENCE + "0"),
        (lambda: accuracy_ci(Y, Y, confidence="0.9"), InvalidInputError, CONFIDENCE + "'0.9'"),
        (lambda: accuracy_ci(Y, Y, n_resamples=0), InvalidInputError, N_RESAMPLES + "0"),
        (lambda: auroc_ci(Y, SCORES, n_resamples=10.0), InvalidInputError, N_RESAMPLES + "10.0"),
        (lambda: accuracy_ci(Y, Y, n_resamples=True), InvalidInputError, N_RESAMPLES + "True"),
        # accuracy_ci: two non-empty 1-D arrays of one length
        (lambda: accuracy_ci(Y, Y[:3]), ShapeMismatchError, ONE_LENGTH + r"\(4,\) and \(3,\)"),
        (lambda: accuracy_ci([], []), ShapeMismatchError, ONE_LENGTH + r"\(0,\) and \(0,\)"),
        (lambda: accuracy_ci(PROBA, PROBA), ShapeMismatchError, ONE_LENGTH + r"\(4, 2\) and \(4, 2\)"),
        # auroc and auroc_ci: both classes, and scores of y_true's shape
        (lambda: auroc([1, 1, 1], [0.1, 0.2, 0.3]), InvalidInputError, "AUROC " + BOTH_CLASSES + "3 labels, 3 of"),
        (lambda: auroc([0, 0], [0.1, 0.2]), InvalidInputError, "AUROC " + BOTH_CLASSES + "2 labels, 0 of them"),
        (lambda: auroc_ci([0, 0], [0.1, 0.2]), InvalidInputError, "interval " + BOTH_CLASSES + "2 labels, 0 of"),
        (lambda: auroc_ci(Y, SCORES[:3]), ShapeMismatchError, SCORES_LENGTH + r"\(4,\) and \(3,\)"),
        (lambda: auroc_ci(PROBA, PROBA), ShapeMismatchError, SCORES_LENGTH + r"\(4, 2\) and \(4, 2\)"),
        # expected_calibration_error: proba of shape (len(y_true), n_classes), and the number of bins
        (lambda: expected_calibration_error(Y, SCORES), ShapeMismatchError, PROBA_SHAPE + r"4; got \(4,\)"),
        (lambda: expected_calibration_error(Y[:3], PROBA), ShapeMismatchError, PROBA_SHAPE + r"3; got \(4, 2\)"),
        (lambda: expected_calibration_error(Y, PROBA, n_bins=0), InvalidInputError, N_BINS + "0"),
        (lambda: expected_calibration_error(Y, PROBA, n_bins=2.5), InvalidInputError, N_BINS + "2.5"),
        # threshold_at_fpr: a non-empty control set, and a rate in [0, 1)
        (
            lambda: threshold_at_fpr([], 0.1),
            InvalidInputError,
            r"the control set is empty \(control_scores of shape \(0,\)\)",
        ),
        (lambda: threshold_at_fpr(SCORES, -0.1), InvalidInputError, TARGET_FPR + "-0.1"),
        (lambda: threshold_at_fpr(SCORES, "0.1"), InvalidInputError, TARGET_FPR + "'0.1'"),
    ],
)
def test_every_argument_check_names_what_it_expected_and_what_it_got(call: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_evaluate_reports_intervals_calibration_and_a_control_set_threshold() -> None:
    model = tiny_model("llama")
    probe = Probe(model=model, layers=[1, 2], random_state=0).fit(POS[::2], NEG[::2])
    test, y = POS[1::2] + NEG[1::2], np.r_[np.ones(24, int), np.zeros(24, int)]
    control = [f"{s} {v} Tokyo today" for s in SUBJECTS for v in VERBS]
    out = probe.evaluate(test, y, control_prompts=control, target_fpr=0.1, n_bootstrap=500)
    proba = probe.predict_proba(test)
    pred = probe.predict(test)
    rng = np.random.default_rng(0)  # the probe's random_state seeds the intervals
    assert out["accuracy_ci"] == pytest.approx(accuracy_ci(y, pred, n_resamples=500, random_state=rng))
    assert out["auroc_ci"] == pytest.approx(auroc_ci(y == 1, proba[:, 1], n_resamples=500, random_state=rng))
    assert out["accuracy_ci"][0] <= out["accuracy"] <= out["accuracy_ci"][1]
    assert out["ece"] == pytest.approx(expected_calibration_error(y, proba, [0, 1]))
    threshold, control_fpr = threshold_at_fpr(probe.predict_proba(control)[:, 1], 0.1)
    assert (out["threshold"], out["control_fpr"]) == (pytest.approx(threshold), pytest.approx(control_fpr))
    assert out["control_fpr"] <= 0.1
    assert out["tpr_at_threshold"] == pytest.approx(np.mean(proba[:24, 1] > threshold))
    assert out["fpr_at_threshold"] == pytest.approx(np.mean(proba[24:, 1] > threshold))
    again = probe.evaluate(test, y, n_bootstrap=0)
    assert "accuracy_ci" not in again and "threshold" not in again and again["accuracy"] == out["accuracy"]
    with pytest.raises(InvalidInputError, match="n_bootstrap must be an integer >= 0"):
        probe.evaluate(test, y, n_bootstrap=-1)
    regression = Probe(model=model, layers=[1], task="regression").fit(test, np.linspace(0, 1, 48))
    with pytest.raises(InvalidInputError, match="control_prompts need a classifier with probabilities"):
        regression.evaluate(test, np.linspace(0, 1, 48), control_prompts=control)


def test_sweep_evaluate_passes_the_options_to_every_layer(exact_cache: Any) -> None:
    model = tiny_model("llama")
    sweep = Probe(model=model, layers="sweep", random_state=0).fit(POS[::2], NEG[::2])
    test, y = POS[1::2] + NEG[1::2], np.r_[np.ones(24, int), np.zeros(24, int)]
    out = sweep.evaluate(test, y, control_prompts=NEG[::3], target_fpr=0.2, n_bootstrap=100)
    for layer, metrics in out["layer_results"].items():
        assert {"accuracy_ci", "ece", "threshold", "tpr_at_threshold"} <= set(metrics), layer
        assert metrics["control_fpr"] <= 0.2
