"""lmprobe's Probe API on tiny models: classifiers, poolings, preprocessing, sweeps, evaluate, save/load, bad input.

References are independent of the probe: scikit-learn estimators on features read from transformers'
``output_hidden_states``, lmprobe itself, and hashlib.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

import fastprobe
from fastprobe import (
    FastprobeError,
    InvalidInputError,
    NotFittedError,
    Probe,
    ShapeMismatchError,
    UnknownOptionError,
    UnsupportedMethodError,
)
from fastprobe.classifiers import (
    CLASSIFIERS,
    EnsembleClassifier,
    MassMeanClassifier,
    SGDTorchClassifier,
    build_classifier,
)
from fastprobe.estimators import LogisticProbe, MassMeanProbe, RidgeClassifierProbe, RidgeProbe
from fastprobe.layers import resolve_layers
from fastprobe.pooling import parse_pooling, resolve_pooling, resolve_pooling_spec
from fastprobe.testing import tiny_model

SUBJECTS = ["I", "We", "They", "You", "People", "Tourists", "Students", "Friends"]
VERBS = ["saw", "like", "love", "visited", "remember", "know"]
POS = [f"{s} {v} Paris" for s in SUBJECTS for v in VERBS]
NEG = [f"{s} {v} Tokyo" for s in SUBJECTS for v in VERBS]
TRAIN_POS, TRAIN_NEG = POS[::2], NEG[::2]
TEST = POS[1::2] + NEG[1::2]
TEST_Y = np.r_[np.ones(len(POS[1::2]), dtype=int), np.zeros(len(NEG[1::2]), dtype=int)]


def hidden_tokens(model_dir: Path, prompts: list[str], layer: int) -> list[np.ndarray]:
    """Each prompt's token activations at block ``layer``, run alone through transformers (no padding)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    out = []
    with torch.no_grad():
        for p in prompts:
            hs = model(**tok(p, return_tensors="pt"), output_hidden_states=True).hidden_states
            out.append(hs[layer + 1][0].numpy())
    return out


# ---------------------------------------------------------------------------------------------- configuration


def test_constructor_has_lmprobe_parameters_and_defaults() -> None:
    import inspect

    from lmprobe import Probe as LmProbe

    ours = inspect.signature(Probe.__init__).parameters
    theirs = inspect.signature(LmProbe.__init__).parameters
    # lmprobe's parameters in lmprobe's order with lmprobe's defaults; fastprobe adds only `revision` and
    # `interventions`, last.
    assert list(ours) == [*theirs, "revision", "interventions"]
    extra = ("revision", "interventions")
    assert {k: v.default for k, v in ours.items() if k not in extra} == {k: v.default for k, v in theirs.items()}
    assert ours["revision"].default is None and ours["interventions"].default is None
    assert fastprobe.LinearProbe is Probe


def test_layer_specs() -> None:
    assert resolve_layers("sweep", 6) == list(range(6))
    assert resolve_layers("sweep:2", 6) == [0, 2, 4]
    assert resolve_layers("sweep:4-9", 6) == [4, 5]
    assert resolve_layers("middle", 32) == list(range(10, 22))
    with pytest.raises(InvalidInputError, match="malformed sweep specification 'sweep:x'"):
        resolve_layers("sweep:x", 6)
    with pytest.raises(InvalidInputError, match="covers no layer of a model with 6 layers"):
        resolve_layers("sweep:7-9", 6)
    with pytest.raises(UnknownOptionError, match="or one of: middle, last, all, 'auto', 'fast_auto', 'sweep'"):
        Probe(layers="everything")
    assert Probe(layers="auto").layers == "auto"  # selection happens in fit (tests/test_layer_selection.py)


def test_pooling_specs_and_collision_rules() -> None:
    assert parse_pooling("max") == ("max", "score")
    assert parse_pooling("activation:max") == ("max", "activation")
    assert parse_pooling("score:last_token") == ("last_token", "score")
    assert resolve_pooling("mean", None, "max") == ("mean", "max")
    assert resolve_pooling_spec("mean", None, "max") == ("mean", ("max", "score"))
    assert resolve_pooling_spec(None, "all", None) == ("all", ("last_token", "activation"))
    assert resolve_pooling_spec("all") == ("all", ("all", "tokens"))
    with pytest.raises(
        UnknownOptionError,
        match=r"Invalid train_pooling 'max' \(from pooling='max'\): it cannot train a probe; expected one of: last_",
    ):
        resolve_pooling_spec("max")
    with pytest.raises(UnknownOptionError, match=r"Invalid train_pooling 'score:mean' \(from train_pooling="):
        resolve_pooling_spec("mean", "score:mean")
    with pytest.raises(UnknownOptionError, match="Unknown pooling strategy 'median'; expected one of: last_token"):
        parse_pooling("median")
    with pytest.raises(UnknownOptionError, match="Unknown base pooling strategy 'all' in 'score:all'"):
        parse_pooling("score:all")


def test_classifier_table() -> None:
    expected = {
        "logistic_regression": LogisticProbe,
        "ridge": RidgeClassifierProbe,
        "ridge_regression": RidgeProbe,
        "mass_mean": MassMeanClassifier,
        "lda": MassMeanProbe,
        "ensemble": EnsembleClassifier,
        "sgd_gpu": SGDTorchClassifier,
    }
    for name in CLASSIFIERS:
        est = build_classifier(name, random_state=0)
        if name in expected:
            assert type(est) is expected[name], name
    assert build_classifier("logistic_regression").get_params()["max_iter"] == 1000
    assert build_classifier("lda").get_params()["whiten"] is True
    # Options the Rust solver lacks fall back to scikit-learn's estimator, which has them.
    l1 = build_classifier("logistic_regression", classifier_kwargs={"penalty": "l1", "solver": "liblinear"})
    assert type(l1) is LogisticRegression and l1.penalty == "l1" and l1.max_iter == 1000
    assert type(build_classifier("ridge_regression", classifier_kwargs={"solver": "svd"})) is Ridge
    assert type(build_classifier("logistic_regression", task="regression")) is RidgeProbe
    kwargs = {"C_values": [0.1, 1.0], "max_iter": 50}
    assert build_classifier("ensemble", classifier_kwargs=kwargs).C_values == [0.1, 1.0]
    assert kwargs == {"C_values": [0.1, 1.0], "max_iter": 50}, "the user's dict is never modified"
    with pytest.raises(UnknownOptionError, match="Unknown classifier 'forest'; expected one of: logistic_regression"):
        build_classifier("forest")
    with pytest.raises(UnknownOptionError, match="for task='regression' use one of: logistic_regression"):
        build_classifier("svm", task="regression")
    with pytest.raises(fastprobe.InvalidEstimatorError, match=r"Classifier int must have a fit\(\) method"):
        build_classifier(42)
    with pytest.raises(InvalidInputError, match="must be a number > 0"):
        build_classifier("ridge", classifier_kwargs={"alpha": -1})


def test_rust_classifiers_match_sklearn_on_the_same_features() -> None:
    """Logistic regression and ridge reach scikit-learn's solutions; LDA's direction is scikit-learn's."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 12)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.standard_normal(300) > 0).astype(int)
    Xs = StandardScaler().fit_transform(X)
    ours = Probe().fit_from_activations(X, y)
    ref = LogisticRegression(max_iter=1000).fit(Xs, y)
    np.testing.assert_allclose(ours.predict_proba_from_activations(X), ref.predict_proba(Xs), atol=5e-4)
    target = X @ rng.standard_normal(12)
    reg = Probe(task="regression").fit_from_activations(X, target)
    np.testing.assert_allclose(reg.predict_from_activations(X), Ridge(alpha=1.0).fit(Xs, target).predict(Xs), atol=1e-4)
    assert reg.score_from_activations(X, target) == pytest.approx(Ridge(alpha=1.0).fit(Xs, target).score(Xs, target))
    lda = Probe(classifier="lda").fit_from_activations(X, y)
    direction = LinearDiscriminantAnalysis(solver="lsqr").fit(Xs, y).coef_[0]
    cos = lda.classifier_.coef_[0] @ direction / np.linalg.norm(direction)
    assert cos == pytest.approx(1.0, abs=1e-6)


# ---------------------------------------------------------------------------------------------- fitting and poolings


@pytest.mark.parametrize("classifier", [c for c in CLASSIFIERS if c != "ridge_regression"])  # a regressor: below
def test_every_classifier_fits_scores_and_round_trips(classifier: str, tmp_path: Path) -> None:
    kwargs = {"shrinkage": 0.1} if classifier == "lda" else None
    probe = Probe(
        model=tiny_model("llama"), layers="all", classifier=classifier, classifier_kwargs=kwargs, random_state=0
    )
    with (
        pytest.warns(
            FutureWarning,  # scikit-learn's deprecations of SVC(probability=True) and LogisticRegressionCV defaults
            match=r"`probability` parameter was deprecated|default value (for l1_ratios|of the parameter 'scoring') "
            r"will change|fitted attributes of LogisticRegressionCV will be simplified",
        )
        if classifier in ("svm", "logistic_regression_cv")
        else _nothing()
    ):
        probe.fit(TRAIN_POS, TRAIN_NEG)
    assert probe.score(TEST, TEST_Y) >= 0.9
    probe.save(tmp_path / "probe.fp")
    loaded = Probe.load(tmp_path / "probe.fp")
    assert type(loaded.classifier_) is type(probe.classifier_)
    np.testing.assert_array_equal(loaded.predict(TEST), probe.predict(TEST))
    if classifier != "ridge":
        np.testing.assert_allclose(loaded.predict_proba(TEST), probe.predict_proba(TEST))


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None


def test_score_pooling_reduces_the_positive_class_probability_over_real_tokens(exact_cache: Any) -> None:
    model = tiny_model("llama")
    probe = Probe(model=model, layers=1, train_pooling="mean", inference_pooling="max", random_state=0)
    probe.fit(TRAIN_POS, TRAIN_NEG)
    tokens = hidden_tokens(model, TEST[:6], 1)
    expected = [probe.predict_proba_from_activations(t)[:, 1].max() for t in tokens]
    got = probe.predict_proba(TEST[:6])
    np.testing.assert_allclose(got[:, 1], expected, rtol=1e-4)
    np.testing.assert_allclose(got.sum(axis=1), 1.0)
    probe.set_params(inference_pooling="score:mean")
    np.testing.assert_allclose(
        probe.predict_proba(TEST[:6])[:, 1],
        [probe.predict_proba_from_activations(t)[:, 1].mean() for t in tokens],
        rtol=1e-4,
    )


def test_all_pooling_trains_on_real_tokens_and_returns_per_token_scores(exact_cache: Any) -> None:
    model = tiny_model("llama", padding_side="left")
    probe = Probe(model=model, layers=2, pooling="all", random_state=0).fit(TRAIN_POS, TRAIN_NEG)
    tokens = hidden_tokens(model, TRAIN_POS + TRAIN_NEG, 2)
    y = np.repeat(np.r_[np.ones(len(TRAIN_POS)), np.zeros(len(TRAIN_NEG))], [len(t) for t in tokens])
    ref = Probe(random_state=0).fit_from_activations(np.concatenate(tokens), y)
    np.testing.assert_allclose(probe.classifier_.coef_, ref.classifier_.coef_, rtol=1e-3, atol=1e-4)
    proba = probe.predict_proba(TEST[:4])
    test_tokens = hidden_tokens(model, TEST[:4], 2)
    assert proba.shape == (4, max(len(t) for t in test_tokens), 2)
    for i, t in enumerate(test_tokens):
        np.testing.assert_allclose(proba[i, : len(t)], ref.predict_proba_from_activations(t), rtol=1e-3, atol=1e-5)
        assert np.isnan(proba[i, len(t) :]).all(), "no scores for padding"
    mean_vote = [ref.classes_[np.argmax(ref.predict_proba_from_activations(t).mean(axis=0))] for t in test_tokens]
    np.testing.assert_array_equal(probe.predict(TEST[:4]), mean_vote)


def test_regression_with_float_labels_through_prompts(exact_cache: Any) -> None:
    """lmprobe routes float labels to contrastive mode; here they are regression targets, and score is R^2."""
    model = tiny_model("gpt2")
    prompts = TRAIN_POS + TRAIN_NEG
    target = np.r_[np.linspace(0.6, 1.0, len(TRAIN_POS)), np.linspace(0.0, 0.4, len(TRAIN_NEG))]
    probe = Probe(model=model, layers=-2, task="regression").fit(prompts, target)
    assert isinstance(probe.classifier_, RidgeProbe) and probe.classes_ is None
    X = np.stack([t[-1] for t in hidden_tokens(model, prompts, 2)])
    Xs = StandardScaler().fit_transform(X)
    ref = Ridge(alpha=1.0).fit(Xs, target)
    np.testing.assert_allclose(probe.predict(prompts), ref.predict(Xs), atol=1e-3)
    assert probe.score(prompts, target) == pytest.approx(ref.score(Xs, target), abs=1e-4)
    metrics = probe.evaluate(prompts, target)
    assert metrics["r2"] == pytest.approx(ref.score(Xs, target), abs=1e-4)
    with pytest.raises(InvalidInputError, match="predict_proba is for classification"):
        probe.predict_proba(prompts)


def test_preprocessing_scaling_and_mass_mean_augment_match_a_manual_pipeline() -> None:
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 3 * 8)).astype(np.float32) * np.repeat([1.0, 5.0, 0.1], 8).astype(np.float32)
    y = (X[:, 0] - X[:, 9] / 5 > 0).astype(int)
    probe = Probe(preprocessing="pca:6", mass_mean_augment=True).fit_from_activations(X, y, n_layers=3)
    Xs = StandardScaler().fit_transform(X)
    d = Xs[y == 1].mean(axis=0) - Xs[y == 0].mean(axis=0)
    d /= np.linalg.norm(d)
    Xp = np.column_stack([PCA(6).fit_transform(Xs), Xs @ d])
    ref = LogisticRegression(max_iter=1000).fit(Xp, y)
    np.testing.assert_allclose(probe.predict_proba_from_activations(X), ref.predict_proba(Xp), atol=1e-3)
    per_layer = Probe(normalize_layers="per_layer").fit_from_activations(X, y, n_layers=3)
    scale = per_layer.scaler_.scale_.reshape(3, 8)
    assert np.allclose(scale, scale[:, :1]) and scale[1, 0] > scale[0, 0] > scale[2, 0]
    assert Probe(normalize_layers=False).fit_from_activations(X, y, n_layers=3).scaler_ is None
    assert Probe(normalize_layers=False).fit_from_activations(X[:, :8], y).scaler_ is not None, "one layer: scaled"
    with pytest.warns(UserWarning, match="per-layer scaling \\(normalize_layers\\) is skipped"):
        assert Probe(preprocessing="standard").fit_from_activations(X, y, n_layers=3).scaler_ is None
    with pytest.raises(InvalidInputError, match="PCA requested but no component count.*needs pca_components"):
        Probe(preprocessing="pca")
    with pytest.raises(UnknownOptionError, match="Unknown preprocessing step 'whiten'; expected one of: standard"):
        Probe(preprocessing=["standard", "whiten"])


def test_sample_weight_reaches_the_classifier() -> None:
    model = tiny_model("llama")
    w = np.linspace(0.2, 3.0, len(TRAIN_POS) + len(TRAIN_NEG))
    weighted = Probe(model=model, layers=1, classifier="mass_mean").fit(TRAIN_POS, TRAIN_NEG, sample_weight=w)
    plain = Probe(model=model, layers=1, classifier="mass_mean").fit(TRAIN_POS, TRAIN_NEG)
    assert not np.allclose(weighted.classifier_.coef_, plain.classifier_.coef_)
    with pytest.raises(
        ShapeMismatchError,
        match=r"sample_weight length must match the training prompts: expected shape \(48,\), got \(3,\)",
    ):
        Probe(model=model).fit(TRAIN_POS, TRAIN_NEG, sample_weight=[1, 2, 3])


def test_evaluate_matches_sklearn_metrics_and_lmprobes_hash() -> None:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    probe = Probe(model=tiny_model("llama"), layers=0, random_state=0).fit(TRAIN_POS[:8] + POS[1:9], TRAIN_NEG)
    metrics = probe.evaluate(TEST, TEST_Y)
    pred, proba = probe.predict(TEST), probe.predict_proba(TEST)
    assert metrics["accuracy"] == accuracy_score(TEST_Y, pred)
    assert metrics["f1"] == f1_score(TEST_Y, pred)
    assert metrics["precision"] == precision_score(TEST_Y, pred, zero_division=0)
    assert metrics["recall"] == recall_score(TEST_Y, pred)
    assert metrics["auroc"] == roc_auc_score(TEST_Y, proba[:, 1])
    assert metrics["n_eval"] == len(TEST)
    combined = "\n".join(sorted(TEST + [str(v) for v in TEST_Y.tolist()]))
    assert metrics["eval_hash"] == "sha256:" + hashlib.sha256(combined.encode()).hexdigest()


def test_matches_lmprobe_on_a_tiny_model(exact_cache: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lmprobe

    monkeypatch.setenv("LMPROBE_CACHE_DIR", str(tmp_path / "lm"))
    lmprobe.set_cache_backend(None)
    model = str(tiny_model("llama"))
    kwargs: dict[str, Any] = {"model": model, "layers": [1, 3], "device": "cpu", "random_state": 0}
    theirs = lmprobe.Probe(**kwargs).fit(TRAIN_POS, TRAIN_NEG)
    ours = Probe(**kwargs).fit(TRAIN_POS, TRAIN_NEG)
    np.testing.assert_allclose(ours.predict_proba(TEST), theirs.predict_proba(TEST), atol=1e-3)
    a, b = ours.evaluate(TEST, TEST_Y), theirs.evaluate(TEST, TEST_Y)
    assert (
        a["eval_hash"] == b["eval_hash"] and a["accuracy"] == b["accuracy"] and a["auroc"] == pytest.approx(b["auroc"])
    )
    for metric in ("l2", "l1", "mean_abs", "max_abs"):
        np.testing.assert_allclose(
            ours.compute_layer_importance(metric), theirs.compute_layer_importance(metric), rtol=0.05
        )
    assert ours.candidate_layers_ == list(theirs.candidate_layers_) == [1, 3]
    # lmprobe's pickle loads with trust_pickle=True, and predicts as lmprobe does.
    theirs.save(str(tmp_path / "lm.pkl"))
    with pytest.raises(FastprobeError, match="is a pickle .*pass trust_pickle=True"):
        Probe.load(tmp_path / "lm.pkl")
    loaded = Probe.load(tmp_path / "lm.pkl", trust_pickle=True)
    np.testing.assert_allclose(loaded.predict_proba(TEST), theirs.predict_proba(TEST), atol=1e-3)
    np.testing.assert_allclose(loaded.compute_layer_importance("max_abs"), theirs.compute_layer_importance("max_abs"))


# ---------------------------------------------------------------------------------------------- sweeps


def test_sweep_layers_equals_separate_probes_and_extracts_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import fastprobe.extraction as extraction

    model = tiny_model("gpt_neox")
    calls: list[tuple[int, list[int]]] = []
    real = extraction.extract_to_store

    def spy(loaded: Any, prompts: Any, sites: Any, *args: Any, **kwargs: Any) -> int:
        calls.append((len(prompts), list(sites)))
        return real(loaded, prompts, sites, *args, **kwargs)

    monkeypatch.setattr(extraction, "extract_to_store", spy)
    fresh = [p + "!" for p in TRAIN_POS], [p + "!" for p in TRAIN_NEG]
    result = Probe.sweep_layers(model, *fresh, random_state=0)
    assert calls == [(len(TRAIN_POS) + len(TRAIN_NEG), [0, 1, 2, 3])], "one extraction pass for every layer"
    assert result.layers == [0, 1, 2, 3] and len(result) == 4
    for layer in result.layers:
        alone = Probe(model=model, layers=layer, random_state=0).fit(*fresh)
        np.testing.assert_allclose(result[layer].predict_proba(TEST), alone.predict_proba(TEST), rtol=1e-4, atol=1e-6)
    scores = result.score(TEST, TEST_Y)
    assert scores == {layer: result[layer].score(TEST, TEST_Y) for layer in result.layers}
    assert result.best_layer(TEST, TEST_Y) == max(result.layers, key=lambda k: scores[k])
    assert set(result.predict(TEST)) == set(result.predict_proba(TEST)) == {0, 1, 2, 3}


def test_sweep_passes_every_option_on() -> None:
    """lmprobe drops task, pooling overrides and mass_mean_augment in sweeps; here each member keeps them."""
    model = tiny_model("llama")
    result = Probe.sweep_layers(
        model, TRAIN_POS, TRAIN_NEG, layers="sweep:2", mass_mean_augment=True, inference_pooling="max", random_state=0
    )
    assert result.layers == [0, 2]
    for probe in result.probes.values():
        assert probe.mass_mean_direction_ is not None and probe.inference_pooling == "max"
    target = np.r_[np.full(len(TRAIN_POS), 0.8), np.full(len(TRAIN_NEG), 0.2)]
    reg = Probe.sweep_layers(model, TRAIN_POS + TRAIN_NEG, target, layers=[1, 3], task="regression")
    assert all(isinstance(p.classifier_, RidgeProbe) for p in reg.probes.values())


def test_sweep_mode_fit_takes_labels_and_evaluate_picks_the_best_layer() -> None:
    model = tiny_model("llama")
    prompts = TRAIN_POS + TRAIN_NEG
    labels = np.r_[np.ones(len(TRAIN_POS), dtype=int), np.zeros(len(TRAIN_NEG), dtype=int)]
    probe = Probe(model=model, layers="sweep:1-3", random_state=0).fit(prompts, labels)
    assert probe.sweep_result_.layers == [1, 2, 3] and probe.layers_ == [1]
    results = probe.evaluate(TEST, TEST_Y)
    best = results["best_layer"]
    assert set(results["layer_results"]) == {1, 2, 3}
    assert results["best_accuracy"] == max(r["accuracy"] for r in results["layer_results"].values())
    assert probe.layers_ == [best]
    np.testing.assert_allclose(probe.predict_proba(TEST), probe.sweep_result_[best].predict_proba(TEST))


# ---------------------------------------------------------------------------------------------- cache use


def test_warmup_then_fit_runs_no_forward_pass_and_invalidate_cache_reruns(monkeypatch: pytest.MonkeyPatch) -> None:
    import fastprobe.extraction as extraction

    model = tiny_model("opt")
    prompts = [p + " today" for p in TRAIN_POS], [p + " today" for p in TRAIN_NEG]
    probe = Probe(model=model, layers=[1, 2], random_state=0)
    probe.warmup(prompts[0] + prompts[1])
    ran: list[int] = []
    real = extraction.runner.forward_batches

    def spy(loaded: Any, texts: Any, *args: Any, **kwargs: Any) -> Any:
        ran.append(len(texts))
        return real(loaded, texts, *args, **kwargs)

    monkeypatch.setattr(extraction.runner, "forward_batches", spy)
    probe.fit(*prompts)
    assert ran == []
    probe.fit(*prompts, invalidate_cache=True)
    assert ran == [len(prompts[0]) + len(prompts[1])]


# ---------------------------------------------------------------------------------------------- save and load


class MyClassifier(ClassifierMixin, BaseEstimator):
    """A user's own estimator: stored as a pickle."""

    def fit(self, X: Any, y: Any) -> MyClassifier:
        self.inner_ = LogisticRegression().fit(X, y)
        self.classes_ = self.inner_.classes_
        return self

    def predict(self, X: Any) -> Any:
        return self.inner_.predict(X)

    def predict_proba(self, X: Any) -> Any:
        return self.inner_.predict_proba(X)


def test_save_load_is_safe_and_custom_estimators_need_trust_pickle(tmp_path: Path) -> None:
    model = tiny_model("llama")
    probe = Probe(model=model, layers=[0, 2], classifier_kwargs={"C": 0.5}, preprocessing="pca:4", random_state=0)
    probe.fit(TRAIN_POS, TRAIN_NEG)
    path = tmp_path / "probe.fp"
    probe.save(path)
    loaded = Probe.load(path)
    assert loaded.get_params() == probe.get_params(), "classifier_kwargs and every option survive"
    np.testing.assert_allclose(loaded.predict_proba(TEST), probe.predict_proba(TEST))
    with open(path, "rb") as f:
        assert f.read(1) != b"\x80", "not a pickle"
    custom = Probe(model=model, layers=1, classifier=MyClassifier()).fit(TRAIN_POS, TRAIN_NEG)
    custom.save(tmp_path / "custom.fp")
    with pytest.raises(FastprobeError, match=r"probe\.params\.classifier \(a MyClassifier\) is stored as a pickle"):
        Probe.load(tmp_path / "custom.fp")
    trusted = Probe.load(tmp_path / "custom.fp", trust_pickle=True)
    np.testing.assert_allclose(trusted.predict_proba(TEST), custom.predict_proba(TEST))


def test_load_never_runs_code_from_the_file(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    evil = {"__estimator__": "os:system", "state": {"__dict__": {}}}
    state = {"__dict__": {"version": 1, "params": {"__dict__": {}}, "fitted": {"__dict__": {"classifier_": evil}}}}
    save_file(
        {"a0": np.zeros(1)},
        str(tmp_path / "evil.fp"),
        metadata={"format": "fastprobe.probe", "state": json.dumps(state)},
    )
    with pytest.raises(FastprobeError, match="refusing to load class 'os:system'"):
        Probe.load(tmp_path / "evil.fp")
    (tmp_path / "junk.fp").write_bytes(b"not a probe at all")
    with pytest.raises(FastprobeError, match="is not a probe saved by fastprobe"):
        Probe.load(tmp_path / "junk.fp")


def test_an_interrupted_save_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probe = Probe(model=tiny_model("llama"), layers=1).fit(TRAIN_POS, TRAIN_NEG)
    path = tmp_path / "probe.fp"
    probe.save(path)
    before = path.read_bytes()

    def fail(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(fastprobe.FastprobeIOError, match="could not save the probe .*No space left"):
        Probe(model=tiny_model("llama"), layers=2).fit(TRAIN_POS, TRAIN_NEG).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["probe.fp"], "no temporary file left behind"


def test_a_loaded_probe_refuses_a_different_model(tmp_path: Path) -> None:
    probe = Probe(model=tiny_model("llama"), layers=1).fit(TRAIN_POS, TRAIN_NEG)
    probe.save(tmp_path / "p.fp")
    moved = Probe.load(tmp_path / "p.fp", model=tiny_model("llama"))
    np.testing.assert_allclose(moved.predict_proba(TEST), probe.predict_proba(TEST))
    other = Probe.load(tmp_path / "p.fp", model=tiny_model("llama", seed=1))
    with pytest.raises(InvalidInputError, match="this probe was fitted on model .* is a different model"):
        other.predict(TEST)


# ---------------------------------------------------------------------------------------------- bad input


def test_bad_input() -> None:
    model = tiny_model("llama")
    with pytest.raises(UnknownOptionError, match="Unknown task 'ranking'"):
        Probe(task="ranking")
    with pytest.raises(UnknownOptionError, match="Invalid normalize_layers 'yes'"):  # checked by fit, as lmprobe
        Probe(normalize_layers="yes").fit_from_activations(np.zeros((4, 2)), [0, 1, 0, 1])
    with pytest.raises(UnknownOptionError, match="unknown backend 'chunked'; expected one of: local, nnsight"):
        Probe(backend="chunked")
    with pytest.raises(InvalidInputError, match="backend='local' does not support remote=True: remote runs go to NDIF"):
        Probe(remote=True)
    with pytest.raises(InvalidInputError, match=r"batch_size must be an integer >= 1 or None .*got 0"):
        Probe(batch_size=0)
    with pytest.raises(InvalidInputError, match="single class"):
        Probe(model=model).fit(TRAIN_POS, [1] * len(TRAIN_POS))
    with pytest.raises(InvalidInputError, match="no training prompts"):
        Probe(model=model).fit([], [])
    with pytest.raises(InvalidInputError, match=r"the negative prompts\[1\] must be a string"):
        Probe(model=model).fit(TRAIN_POS, ["a", None])
    with pytest.raises(InvalidInputError, match="labels contain NaN"):
        Probe(model=model, task="regression").fit(TRAIN_POS[:2], [0.5, np.nan])
    ridge = Probe(model=model, layers=1, classifier="ridge").fit(TRAIN_POS, TRAIN_NEG)
    assert ridge.score(TEST, TEST_Y) >= 0.9
    with pytest.raises(UnsupportedMethodError, match="RidgeClassifierProbe does not support predict_proba"):
        ridge.predict_proba(TEST)
    with pytest.raises(NotFittedError, match="has not been fitted yet"):
        Probe(model=model).evaluate(TEST, TEST_Y)
    with pytest.raises(ShapeMismatchError, match="got 48 prompts but labels of shape \\(2,\\)"):
        ridge.score(TEST, [0, 1])
    with pytest.raises(InvalidInputError, match="prompts must be a list of strings, not str"):
        ridge.predict("one prompt")


def test_remote_extraction_retries_with_backoff_then_gives_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A failed NDIF run is retried ``max_retries`` times (what completed stays stored); local failures are not."""
    import dataclasses

    fastprobe.set_cache_backend(tmp_path / "cache")  # a cold cache: every fit below extracts

    import fastprobe.extraction as extraction
    import fastprobe.features as features_module

    real_context, real_extract = features_module.model_context, extraction.extract_to_store

    def remote_context(*args: Any) -> Any:
        ctx = real_context(*args)
        return dataclasses.replace(ctx, loaded=dataclasses.replace(ctx.loaded, remote=True))

    failures = {"left": 2}

    def flaky(*args: Any, **kwargs: Any) -> int:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("NDIF dropped the connection")
        return real_extract(*args, **kwargs)

    sleeps: list[float] = []
    monkeypatch.setattr(features_module, "model_context", remote_context)
    monkeypatch.setattr(extraction, "extract_to_store", flaky)
    monkeypatch.setattr(features_module.time, "sleep", sleeps.append)
    with pytest.warns(RuntimeWarning, match="remote extraction failed \\(ConnectionError: NDIF dropped"):
        Probe(model=tiny_model("llama"), layers=1).fit(TRAIN_POS, TRAIN_NEG)
    assert sleeps == [1.0, 2.0]
    failures["left"] = 5
    with pytest.warns(RuntimeWarning), pytest.raises(ConnectionError):
        Probe(model=tiny_model("llama"), layers=2, max_retries=1).fit(TRAIN_POS, TRAIN_NEG)
    monkeypatch.setattr(features_module, "model_context", real_context)
    failures["left"] = 1
    with pytest.raises(ConnectionError):
        Probe(model=tiny_model("llama"), layers=3).fit(TRAIN_POS, TRAIN_NEG)


def test_the_cache_keeps_float16_and_stores_batches_beyond_its_range_in_float32(tmp_path: Path) -> None:
    """float16 (the cache's default) keeps probes on par with float32; a massive activation never becomes inf."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from fastprobe.extraction import extract_pooled, extract_to_store, load_model, model_fingerprint
    from fastprobe.store import ActivationStore, model_store

    fastprobe.set_cache_backend(tmp_path / "cache")
    model = tiny_model("llama")
    Probe(model=model, layers=1).fit(TRAIN_POS, TRAIN_NEG)
    assert model_store(model_fingerprint(load_model(model))).dtype == "float16"
    loud = tmp_path / "loud-llama"
    net = AutoModel.from_pretrained(model)
    with torch.no_grad():
        net.embed_tokens.weight.mul_(1e8)
    net.save_pretrained(loud)
    AutoTokenizer.from_pretrained(model).save_pretrained(loud)
    loaded = load_model(loud, device="cpu")
    store = ActivationStore(tmp_path / "f16", dtype="float16")
    extract_to_store(loaded, TEST[:8], [0], store, progress=False)
    exact = extract_pooled(loaded, TEST[:8], [0], progress=False)["last_token"]
    assert np.abs(exact).max() > 65504
    np.testing.assert_array_equal(store.read_pooled(TEST[:8], [0]), exact)


def test_the_cache_keeps_pooled_vectors_only_unless_a_pooling_needs_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fastprobe.extraction as extraction
    from fastprobe.extraction import load_model, model_fingerprint
    from fastprobe.store import model_store

    model = tiny_model("llama")
    prompts = TRAIN_POS + TRAIN_NEG
    ran: list[int] = []
    real = extraction.runner.forward_batches

    def spy(loaded: Any, texts: Any, *args: Any, **kwargs: Any) -> Any:
        ran.append(len(texts))
        return real(loaded, texts, *args, **kwargs)

    monkeypatch.setattr(extraction.runner, "forward_batches", spy)
    fastprobe.set_cache_backend(tmp_path / "auto")
    last = Probe(model=model, layers=[1, 2], random_state=0).fit(TRAIN_POS, TRAIN_NEG)
    store = model_store(model_fingerprint(load_model(model)))
    assert store.contains(prompts, [1, 2]).all() and not store.contains(prompts, [1, 2], tokens=True).any()
    pooled_bytes = store.stats()["live_bytes"]
    # The other stored poolings read the same records: no forward pass.
    mean = Probe(model=model, layers=[1, 2], pooling="mean", random_state=0).fit(TRAIN_POS, TRAIN_NEG)
    assert ran == [len(prompts)]
    # Max pooling needs every token: the prompts run once more, and their full records supersede the pooled ones.
    scored = Probe(model=model, layers=[1, 2], train_pooling="last_token", inference_pooling="max", random_state=0)
    scored.fit(TRAIN_POS, TRAIN_NEG)
    assert ran == [len(prompts)] * 2 and store.contains(prompts, [1, 2], tokens=True).all()
    store.compact()
    assert store.stats()["live_bytes"] > pooled_bytes

    # With every token kept from the start, the pooled vectors, and so the probes, are the same.
    fastprobe.set_cache_tokens("always")
    fastprobe.set_cache_backend(tmp_path / "always")
    for pooling, auto in (("last_token", last), ("mean", mean)):
        kept = Probe(model=model, layers=[1, 2], pooling=pooling, random_state=0).fit(TRAIN_POS, TRAIN_NEG)
        np.testing.assert_array_equal(kept.classifier_.coef_, auto.classifier_.coef_)
        np.testing.assert_array_equal(kept.predict_proba(TEST), auto.predict_proba(TEST))
    assert model_store(model_fingerprint(load_model(model))).contains(prompts, [1, 2], tokens=True).all()
    with pytest.raises(UnknownOptionError, match="unknown cache tokens mode 'never'; expected one of: auto, always"):
        fastprobe.set_cache_tokens("never")
    fastprobe.set_cache_tokens(None)
    monkeypatch.setenv("FASTPROBE_CACHE_TOKENS", "some")
    with pytest.raises(UnknownOptionError, match="FASTPROBE_CACHE_TOKENS='some'; expected one of: auto, always"):
        Probe(model=model, layers=[1], random_state=0).fit(TRAIN_POS, TRAIN_NEG)


def test_a_saved_file_is_never_taken_for_a_pickle_and_an_ensemble_file_names_its_loader(tmp_path: Path) -> None:
    """A safetensors file starts with its header length: when that length's low byte is 0x80 (one file in 256), the
    file's first byte is a pickle's, and only the header's "{" tells them apart."""
    from safetensors.numpy import save

    from fastprobe import serialization
    from fastprobe.ensemble import ProbeEnsemble

    for pad in range(256):
        meta = {"format": serialization.MAGIC, "state": json.dumps({"x": 1}), "pad": "p" * pad}
        data = save({"a": np.zeros(1, np.float32)}, metadata=meta)
        if data[0] == 0x80:
            break
    (tmp_path / "x.safetensors").write_bytes(data)
    kind, doc, _ = serialization.read(tmp_path / "x.safetensors")
    assert data[0] == 0x80 and kind == "fastprobe" and doc == {"x": 1}
    model = tiny_model("llama")
    ensemble = ProbeEnsemble([Probe(model=model, layers=1), Probe(model=model, layers=2)]).fit(TRAIN_POS, TRAIN_NEG)
    ensemble.save(tmp_path / "ens.fp")
    with pytest.raises(FastprobeError, match="holds a ProbeEnsemble, not a single probe; load it with ProbeEnsemble"):
        Probe.load(tmp_path / "ens.fp")
