"""MLPProbe (a one-hidden-layer network in torch), its "mlp" name in Probe, and the per-class metrics of evaluate.

References are independent of the code under test: torch's own forward pass over the stored weights, scikit-learn's
MLPClassifier and its metrics, and a reading of the safetensors format by hand.
"""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastprobe import (
    ArgumentTypeError,
    FastprobeIOError,
    InvalidInputError,
    NotFittedError,
    Probe,
    ShapeMismatchError,
    UnknownOptionError,
)
from fastprobe.classifiers import (
    CLASSIFICATION_CLASSIFIERS,
    CLASSIFIERS,
    REGRESSION_CLASSIFIERS,
    build_classifier,
)
from fastprobe.classifiers import MLPProbe as FacadeMLPProbe
from fastprobe.estimators import MLPProbe
from fastprobe.metrics import confusion_matrix, per_class_metrics
from fastprobe.testing import tiny_model


def blobs(n: int, n_classes: int, d: int = 8, seed: int = 0, spread: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs (unit variance) around ``n_classes`` random centres ``spread`` apart on average."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, d)) * spread / np.sqrt(2 * d)
    y = np.arange(n) % n_classes
    return (centres[y] + rng.standard_normal((n, d)) * 0.5).astype(np.float32), y


def weights_of(est: MLPProbe) -> list[np.ndarray]:
    return [*est.coefs_, *est.intercepts_]


# ---------------------------------------------------------------------------------------------- the estimator


def test_separable_multiclass_blobs_are_classified_on_held_out_rows() -> None:
    X, y = blobs(750, 5)
    labels = np.array(["north", "south", "east", "west", "up"])[y]
    est = MLPProbe(random_state=0).fit(X[:500], labels[:500])
    assert est.score(X[500:], labels[500:]) >= 0.98
    np.testing.assert_array_equal(est.classes_, ["east", "north", "south", "up", "west"])
    proba = est.predict_proba(X[500:])
    assert proba.shape == (250, 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(est.predict(X[500:]), est.classes_[proba.argmax(axis=1)])
    assert est.decision_function(X[500:]).shape == (250, 5)
    assert est.n_features_in_ == 8
    assert [a.shape for a in weights_of(est)] == [(8, 128), (128, 5), (128,), (5,)]
    assert all(a.dtype == np.float32 for a in weights_of(est))


def test_outputs_are_torchs_forward_pass_of_the_stored_weights() -> None:
    import torch

    X, y = blobs(200, 3, seed=1)
    est = MLPProbe(hidden_size=16, max_epochs=5, random_state=0).fit(X, y)
    first, second = torch.nn.Linear(8, 16).double(), torch.nn.Linear(16, 3).double()
    net = torch.nn.Sequential(first, torch.nn.ReLU(), second)
    with torch.no_grad():
        first.weight.copy_(torch.from_numpy(est.coefs_[0].T.astype(np.float64)))
        first.bias.copy_(torch.from_numpy(est.intercepts_[0].astype(np.float64)))
        second.weight.copy_(torch.from_numpy(est.coefs_[1].T.astype(np.float64)))
        second.bias.copy_(torch.from_numpy(est.intercepts_[1].astype(np.float64)))
        logits = net(torch.from_numpy(X.astype(np.float64)))
    np.testing.assert_allclose(est.decision_function(X), logits.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(est.predict_proba(X), torch.softmax(logits, dim=1).numpy(), rtol=1e-10, atol=1e-14)


def test_binary_decision_function_is_the_log_odds_of_the_second_class() -> None:
    X, y = blobs(200, 2, seed=2)
    est = MLPProbe(hidden_size=8, learning_rate=1e-2, max_epochs=20, random_state=0).fit(X, y == 1)
    np.testing.assert_array_equal(est.classes_, [False, True])
    proba = est.predict_proba(X)
    scores = est.decision_function(X)
    assert scores.shape == (200,)
    np.testing.assert_allclose(scores, np.log(proba[:, 1] / proba[:, 0]), rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(est.predict(X), scores > 0)
    assert est.score(X, y == 1) >= 0.95


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_real_data_digits_as_well_as_sklearns_mlp() -> None:
    """Ten handwritten digits (bundled with scikit-learn): about as accurate as MLPClassifier of the same shape."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    train, test = order[:1200], order[1200:]
    scaler = StandardScaler().fit(X[train])
    Xtr, Xte = scaler.transform(X[train]), scaler.transform(X[test])
    ours = MLPProbe(random_state=0).fit(Xtr, y[train]).score(Xte, y[test])
    ref = MLPClassifier(hidden_layer_sizes=(128,), max_iter=100, random_state=0).fit(Xtr, y[train]).score(Xte, y[test])
    assert ours >= 0.95 and ours >= ref - 0.02, (ours, ref)


def test_one_seed_gives_identical_weights_history_and_predictions() -> None:
    X, y = blobs(300, 4, seed=3)
    a = MLPProbe(hidden_size=32, max_epochs=15, random_state=7).fit(X, y)
    b = MLPProbe(hidden_size=32, max_epochs=15, random_state=7).fit(X, y)
    for wa, wb in zip(weights_of(a), weights_of(b), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert a.history_ == b.history_
    assert (a.n_epochs_, a.best_epoch_) == (b.n_epochs_, b.best_epoch_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = MLPProbe(hidden_size=32, max_epochs=15, random_state=8).fit(X, y)
    assert all(not np.array_equal(wa, wc) for wa, wc in zip(weights_of(a), weights_of(c), strict=True))
    assert a.history_ != c.history_


def test_history_has_one_entry_per_epoch() -> None:
    X, y = blobs(200, 3, seed=4)
    est = MLPProbe(hidden_size=16, max_epochs=12, early_stopping=False, random_state=0).fit(X, y)
    assert est.n_epochs_ == 12 and est.best_epoch_ == 11
    assert set(est.history_) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 12 and all(type(x) is float for x in v) for v in est.history_.values())
    assert est.history_["train_loss"][-1] < est.history_["train_loss"][0]
    # A hold-out of ceil(0.1 * 200) = 20 rows: every validation accuracy is a multiple of 1/20.
    hits = np.array(est.history_["val_accuracy"]) * 20
    np.testing.assert_allclose(hits, np.round(hits), atol=1e-9)
    assert 0 <= min(est.history_["train_accuracy"]) and max(est.history_["val_accuracy"]) <= 1


def test_early_stopping_stops_an_overfitting_fit_and_restores_its_best_epoch() -> None:
    """Random labels: the validation loss soon rises; the kept weights are those of its lowest epoch."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((120, 40)).astype(np.float32)
    y = rng.integers(0, 3, 120)
    params: dict[str, Any] = {"hidden_size": 64, "learning_rate": 1e-2, "max_epochs": 200, "random_state": 0}
    est = MLPProbe(patience=4, **params).fit(X, y)
    val = est.history_["val_loss"]
    assert est.n_epochs_ < 200 and len(val) == est.n_epochs_
    assert est.best_epoch_ == int(np.argmin(val))
    assert est.n_epochs_ == est.best_epoch_ + 1 + 4, "stops after `patience` epochs without a lower loss"
    assert min(val[est.best_epoch_ + 1 :]) >= val[est.best_epoch_]
    assert est.history_["train_loss"][-1] < est.history_["train_loss"][est.best_epoch_], "training went on improving"
    # The same training, stopped by hand after the best epoch, holds exactly the restored weights.
    by_hand = MLPProbe(early_stopping=False, **{**params, "max_epochs": est.best_epoch_ + 1}).fit(X, y)
    for restored, expected in zip(weights_of(est), weights_of(by_hand), strict=True):
        np.testing.assert_array_equal(restored, expected)
    assert by_hand.history_["val_loss"] == val[: est.best_epoch_ + 1]


@pytest.mark.parametrize("fraction", [0, 0.0, None])
def test_no_hold_out_leaves_the_validation_history_empty(fraction: Any) -> None:
    X, y = blobs(90, 3, seed=6)
    est = MLPProbe(hidden_size=8, max_epochs=6, validation_fraction=fraction, random_state=0).fit(X, y)
    assert est.history_["val_loss"] == [] and est.history_["val_accuracy"] == []
    assert len(est.history_["train_loss"]) == est.n_epochs_ <= 6
    # Early stopping then watches the training loss.
    assert est.best_epoch_ == int(np.argmin(est.history_["train_loss"]))


def test_verbose_shows_a_progress_bar_over_epochs(capsys: pytest.CaptureFixture[str]) -> None:
    X, y = blobs(60, 3, seed=12)
    MLPProbe(hidden_size=4, max_epochs=3, device="auto", verbose=True, random_state=0).fit(X, y)
    err = capsys.readouterr().err
    assert "mlp epochs" in err and "3/3" in err and "val_loss=" in err
    MLPProbe(hidden_size=4, max_epochs=3, random_state=0).fit(X, y)
    assert capsys.readouterr().err == ""


def test_data_too_small_for_a_hold_out_is_trained_on_whole() -> None:
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    est = MLPProbe(hidden_size=4, max_epochs=3, random_state=0).fit(X, ["a", "b", "c"])
    assert est.history_["val_loss"] == [] and est.n_epochs_ == 3
    assert est.predict(X).shape == (3,)


def test_sample_weight_of_ones_changes_nothing_and_zero_weights_are_refused() -> None:
    X, y = blobs(120, 3, seed=7)
    kw: dict[str, Any] = {"hidden_size": 8, "max_epochs": 5, "random_state": 0}
    plain = MLPProbe(**kw).fit(X, y)
    ones = MLPProbe(**kw).fit(X, y, sample_weight=np.full(120, 3.0))
    for a, b in zip(weights_of(plain), weights_of(ones), strict=True):
        np.testing.assert_array_equal(a, b)
    weighted = MLPProbe(**kw).fit(X, y, sample_weight=np.r_[np.full(60, 5.0), np.ones(60)])
    assert not np.array_equal(weighted.coefs_[1], plain.coefs_[1])
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero number"):
        MLPProbe(**kw).fit(X, y, sample_weight=np.zeros(120))
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        MLPProbe(**kw).fit(X, y, sample_weight=-np.ones(120))


def test_clone_get_params_and_pickle_need_no_torch_state() -> None:
    est = MLPProbe(hidden_size=16, max_epochs=4, patience=2, validation_fraction=None, random_state=3)
    assert est.get_params() == {
        "hidden_size": 16,
        "learning_rate": 1e-3,
        "weight_decay": 0.0,
        "max_epochs": 4,
        "batch_size": 32,
        "validation_fraction": None,
        "early_stopping": True,
        "patience": 2,
        "random_state": 3,
        "device": "cpu",
        "verbose": False,
    }
    X, y = blobs(100, 3, seed=8)
    est.fit(X, y)
    copy = clone(est)
    assert copy.get_params() == est.get_params() and not hasattr(copy, "coefs_")
    assert copy.set_params(hidden_size=5).hidden_size == 5
    plain_types = (np.ndarray, list, dict, int, float, str, bool, type(None))
    assert all(isinstance(v, plain_types) for v in vars(est).values()), {k: type(v) for k, v in vars(est).items()}
    blob = pickle.dumps(est)
    assert b"torch" not in blob
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))
    # Refitting a clone with the same seed gives the same weights.
    for a, b in zip(weights_of(clone(est).fit(X, y)), weights_of(est), strict=True):
        np.testing.assert_array_equal(a, b)


def _safetensors_layout(path: Path) -> tuple[dict[str, Any], int]:
    """Read a safetensors file by hand: its JSON header, and the size the header says the file has."""
    data = path.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    end = max(entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__")
    return header, 8 + header_len + end


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["cat", "dog", "emu"]),
        np.array([3, 7, 11], dtype=np.int16),
        np.array([1.0, 2.0, 4.0]),
        np.array(["cat", "dog", "emu"], dtype=object),
    ],
    ids=["str", "int16", "float", "object"],
)
def test_save_and_load_round_trip_without_pickle(
    labels: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = blobs(150, 3, seed=9)
    est = MLPProbe(hidden_size=12, max_epochs=8, random_state=0).fit(X, labels[y])
    path = tmp_path / "mlp.safetensors"
    est.save(path)
    header, size = _safetensors_layout(path)
    assert size == path.stat().st_size, "nothing but the header and the raw tensors"
    assert set(header["__metadata__"]) == {"format", "state"}
    assert header["__metadata__"]["format"] == "fastprobe.mlp_probe"
    tensors = {k: (v["dtype"], v["shape"]) for k, v in header.items() if k != "__metadata__"}
    assert tensors == {
        "coefs.0": ("F32", [8, 12]),
        "coefs.1": ("F32", [12, 3]),
        "intercepts.0": ("F32", [12]),
        "intercepts.1": ("F32", [3]),
    }
    state = json.loads(header["__metadata__"]["state"])
    assert state["classes"]["values"] == labels.tolist()
    assert state["history"] == est.history_

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("load must not unpickle")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    loaded = MLPProbe.load(path)
    assert type(loaded) is MLPProbe and loaded.get_params() == est.get_params()
    assert loaded.classes_.dtype == est.classes_.dtype
    np.testing.assert_array_equal(loaded.classes_, est.classes_)
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert loaded.history_ == est.history_
    assert (loaded.n_epochs_, loaded.best_epoch_, loaded.n_features_in_) == (est.n_epochs_, est.best_epoch_, 8)


def test_save_and_load_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError, match="MLPProbe has not been fitted"):
        MLPProbe().save(tmp_path / "x.safetensors")
    with pytest.raises(FastprobeIOError, match="could not read an MLPProbe from"):
        MLPProbe.load(tmp_path / "missing.safetensors")
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3, dtype=np.float32)}, str(tmp_path / "other.safetensors"), metadata={"format": "x"})
    with pytest.raises(InvalidInputError, match="is not an MLPProbe saved by MLPProbe.save.*format is 'x'"):
        MLPProbe.load(tmp_path / "other.safetensors")
    (tmp_path / "junk.bin").write_bytes(b"\x80\x04junk")
    with pytest.raises(InvalidInputError, match="is not an MLPProbe saved by MLPProbe.save"):
        MLPProbe.load(tmp_path / "junk.bin")
    X, y = blobs(60, 2, seed=10)
    est = MLPProbe(hidden_size=4, max_epochs=2, random_state=0).fit(X, y)
    est.classes_ = np.array([object(), object()], dtype=object)  # labels no JSON can hold
    with pytest.raises(InvalidInputError, match="stores classes that are numbers, booleans or strings; got object"):
        est.save(tmp_path / "odd.safetensors")


def test_bad_input_gives_clear_errors() -> None:
    X, y = blobs(40, 2, seed=11)
    with pytest.raises(InvalidInputError, match="MLPProbe needs samples of at least 2 classes; y has only one class"):
        MLPProbe(max_epochs=1).fit(X, np.zeros(40, dtype=int))
    for name in ("hidden_size", "max_epochs", "batch_size", "patience"):
        bad: Any
        for bad in (0, -3):
            with pytest.raises(InvalidInputError, match=f"{name} must be an integer >= 1; got {bad}"):
                MLPProbe().set_params(**{name: bad}).fit(X, y)
        with pytest.raises(ArgumentTypeError, match=rf"{name} must be an integer >= 1; got 2.5 \(float\)"):
            MLPProbe().set_params(**{name: 2.5}).fit(X, y)
    for bad in (1, 1.0, 1.5, -0.1):
        with pytest.raises(InvalidInputError, match=rf"validation_fraction must be in \[0, 1\).*got {bad!r}"):
            MLPProbe(validation_fraction=bad).fit(X, y)
    with pytest.raises(ArgumentTypeError, match="validation_fraction must be a number in"):
        MLPProbe().set_params(validation_fraction="10%").fit(X, y)
    with pytest.raises(InvalidInputError, match="learning_rate must be a finite number > 0; got 0"):
        MLPProbe(learning_rate=0).fit(X, y)
    with pytest.raises(InvalidInputError, match="weight_decay must be a finite number >= 0; got -0.1"):
        MLPProbe(weight_decay=-0.1).fit(X, y)
    with pytest.raises(NotFittedError, match="MLPProbe has not been fitted; call fit"):
        MLPProbe().predict(X)
    with pytest.raises(NotFittedError, match="has not been fitted"):
        MLPProbe().predict_proba(X)
    est = MLPProbe(hidden_size=4, max_epochs=2, random_state=0).fit(X, y)
    with pytest.raises(ShapeMismatchError, match="X has 3 features, but MLPProbe is expecting 8 features as input"):
        est.predict(X[:, :3])
    with pytest.raises(ShapeMismatchError, match="X has 9 features, but MLPProbe is expecting 8"):
        est.decision_function(np.c_[X, X[:, 0]])


XFAIL = {"check_sample_weight_equivalence_on_dense_data": "minibatches: a weight of 2 is not exactly a repeated row"}


@parametrize_with_checks(
    [MLPProbe(hidden_size=32, max_epochs=20, batch_size=64, random_state=0)], expected_failed_checks=lambda e: XFAIL
)
def test_scikit_learn_estimator_checks(estimator: Any, check: Any) -> None:
    check(estimator)


# ---------------------------------------------------------------------------------------------- the "mlp" name


def test_the_mlp_name_is_a_classification_classifier() -> None:
    assert "mlp" in CLASSIFIERS and "mlp" in CLASSIFICATION_CLASSIFIERS and "mlp" not in REGRESSION_CLASSIFIERS
    assert FacadeMLPProbe is MLPProbe
    est = build_classifier("mlp", random_state=4, classifier_kwargs={"hidden_size": 16, "max_epochs": 3})
    assert type(est) is MLPProbe
    assert (est.hidden_size, est.max_epochs, est.random_state, est.learning_rate) == (16, 3, 4, 1e-3)
    assert build_classifier("mlp", 1, {"random_state": 9}).random_state == 9
    with pytest.raises(UnknownOptionError, match="classifier 'mlp' is a classifier; for task='regression' use one of"):
        build_classifier("mlp", task="regression")
    with pytest.raises(TypeError, match="unexpected keyword argument 'hidden_layers'"):
        build_classifier("mlp", classifier_kwargs={"hidden_layers": 2})


SUBJECTS = ["I", "We", "They", "You", "People", "Tourists", "Students", "Friends"]
VERBS = ["saw", "like", "love", "visited", "remember", "know"]
CITIES = ["Paris", "Tokyo", "Rome"]
PROMPTS = [f"{s} {v} {c}" for c in CITIES for s in SUBJECTS for v in VERBS]
LABELS = np.repeat([0, 1, 2], len(SUBJECTS) * len(VERBS))  # the city's index (string labels would be prompts)
TRAIN, TEST = slice(0, None, 2), slice(1, None, 2)


def test_probe_with_mlp_by_name_and_by_instance_fits_predicts_and_round_trips(tmp_path: Path) -> None:
    model = tiny_model("llama")
    train_prompts, test_prompts = PROMPTS[TRAIN], PROMPTS[TEST]
    by_name = Probe(
        model=model, layers=[1, 2], classifier="mlp", classifier_kwargs={"hidden_size": 32}, random_state=0
    ).fit(train_prompts, LABELS[TRAIN])
    clf = by_name.classifier_
    assert type(clf) is MLPProbe and clf.hidden_size == 32 and clf.random_state == 0
    np.testing.assert_array_equal(by_name.classes_, [0, 1, 2])
    assert by_name.score(test_prompts, LABELS[TEST]) >= 0.95
    proba = by_name.predict_proba(test_prompts)
    assert proba.shape == (len(test_prompts), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)

    template = MLPProbe(hidden_size=32, random_state=0)
    by_instance = Probe(model=model, layers=[1, 2], classifier=template, random_state=0).fit(
        train_prompts, LABELS[TRAIN]
    )
    assert type(by_instance.classifier_) is MLPProbe and by_instance.classifier_ is not template
    assert not hasattr(template, "coefs_"), "the given estimator is cloned, never fitted"
    # The same network, seed and features: the same weights either way.
    for a, b in zip(weights_of(by_instance.classifier_), weights_of(clf), strict=True):
        np.testing.assert_array_equal(a, b)

    by_name.save(tmp_path / "probe.fp")
    loaded = Probe.load(tmp_path / "probe.fp")  # no trust_pickle: the MLP's state needs no pickle
    assert type(loaded.classifier_) is MLPProbe
    np.testing.assert_array_equal(loaded.predict(test_prompts), by_name.predict(test_prompts))
    np.testing.assert_array_equal(loaded.predict_proba(test_prompts), proba)
    assert loaded.classifier_.history_ == clf.history_


def test_evaluate_reports_per_class_metrics_and_the_confusion_matrix_as_sklearn_computes_them() -> None:
    from sklearn.metrics import confusion_matrix as sk_confusion
    from sklearn.metrics import precision_recall_fscore_support

    probe = Probe(
        model=tiny_model("llama"),
        layers=[1, 2],
        classifier="mlp",
        classifier_kwargs={"hidden_size": 32},
        random_state=0,
    ).fit(PROMPTS[TRAIN], LABELS[TRAIN])
    prompts = PROMPTS[TEST]
    labels = LABELS[TEST].copy()
    labels[::5] = np.roll(labels[::5], 1)  # some wrong labels, so that the matrix has errors off its diagonal
    result = probe.evaluate(prompts, labels, n_bootstrap=0)
    pred = probe.predict(prompts)
    classes = [0, 1, 2]
    matrix = sk_confusion(labels, pred, labels=classes)
    assert result["confusion_matrix"] == matrix.tolist()
    assert np.trace(matrix) < len(prompts) and matrix.sum() == len(prompts)
    precision, recall, f1, support = precision_recall_fscore_support(labels, pred, labels=classes, zero_division=0)
    assert list(result["per_class"]) == ["0", "1", "2"]
    for i, name in enumerate(classes):
        got = result["per_class"][str(name)]
        assert got["support"] == support[i] and type(got["support"]) is int
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((precision[i], recall[i], f1[i]))
    json.dumps({"per_class": result["per_class"], "confusion_matrix": result["confusion_matrix"]})
    assert result["accuracy"] == pytest.approx(np.trace(matrix) / len(prompts))


def test_evaluate_of_a_binary_probe_has_them_too() -> None:
    from sklearn.metrics import confusion_matrix as sk_confusion

    two = [p for p, c in zip(PROMPTS, LABELS, strict=True) if c != 2]
    y = np.array([int(p.endswith("Paris")) for p in two])
    probe = Probe(model=tiny_model("llama"), layers=[1], random_state=0).fit(two[::2], y[::2])
    result = probe.evaluate(two[1::2], y[1::2], n_bootstrap=0)
    assert set(result["per_class"]) == {"0", "1"}
    assert result["confusion_matrix"] == sk_confusion(y[1::2], probe.predict(two[1::2]), labels=[0, 1]).tolist()
    assert result["per_class"]["1"]["f1"] == pytest.approx(result["f1"])


# ---------------------------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_class_metrics_and_confusion_matrix_match_sklearn(seed: int) -> None:
    from sklearn.metrics import confusion_matrix as sk_confusion
    from sklearn.metrics import precision_recall_fscore_support

    rng = np.random.default_rng(seed)
    names = np.array(["ant", "bee", "cow", "dog", "elk"])
    y = names[rng.integers(0, 4, 200)]  # "elk" never occurs: support 0
    pred = np.where(rng.random(200) < 0.6, y, names[rng.integers(0, 3, 200)])  # "dog" is never predicted wrongly
    pred[:3] = "fox"  # a label outside the classes
    classes = ["elk", "dog", "cow", "bee", "ant"]  # any order
    got = per_class_metrics(y, pred, classes)
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=classes, zero_division=0)
    assert list(got) == classes
    for i, name in enumerate(classes):
        assert got[name]["support"] == s[i]
        assert (got[name]["precision"], got[name]["recall"], got[name]["f1"]) == pytest.approx((p[i], r[i], f[i]))
    assert got["elk"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert confusion_matrix(y, pred, classes) == sk_confusion(y, pred, labels=classes).tolist()
    json.dumps(got)


def test_metric_keys_are_strings_of_any_label_type() -> None:
    got = per_class_metrics(np.array([1, 2, 2, 3]), np.array([1, 2, 3, 3]), np.array([1, 2, 3]))
    assert got == {
        "1": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
        "2": {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2},
        "3": {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1},
    }
    assert confusion_matrix([True, False, True], [True, True, True], [False, True]) == [[0, 1], [0, 2]]
    assert all(type(v) is int for row in confusion_matrix([1, 2], [2, 2], [1, 2]) for v in row)


def test_metric_errors() -> None:
    with pytest.raises(ShapeMismatchError, match=r"y and pred must be 1-D arrays of one length; got shapes \(3,\)"):
        confusion_matrix([1, 2, 3], [1, 2], [1, 2])
    with pytest.raises(InvalidInputError, match="classes must be a non-empty 1-D sequence of labels"):
        per_class_metrics([1], [1], [])
    with pytest.raises(InvalidInputError, match=r"classes must not repeat a label; got \[1, 1\]"):
        confusion_matrix([1], [1], [1, 1])
    with pytest.raises(InvalidInputError, match="classes must have distinct string forms"):
        per_class_metrics([1], [1], np.array([1, "1"], dtype=object))
