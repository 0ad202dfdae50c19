"""Baselines (BaselineProbe, ActivationBaseline, BaselineBattery) against independent references.

References: scikit-learn's vectorizers, dummy classifiers, PCA and LogisticRegression on features computed here;
transformers run prompt by prompt (``output_hidden_states``, causal-LM logits); numpy; hand-computed features.
"""

from __future__ import annotations

import csv
import importlib.machinery
import math
import os
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

import fastprobe.baselines.battery as baselines_battery
import fastprobe.baselines.common as baselines_common
import fastprobe.extraction.perplexity as perplexity_home
import fastprobe.model as model_layer
import fastprobe.perplexity as perplexity_module
from fastprobe import (
    FastprobeError,
    InvalidInputError,
    MissingDependencyError,
    NotFittedError,
    Probe,
    ShapeMismatchError,
    UnknownOptionError,
    UnsupportedMethodError,
)
from fastprobe.baselines import (
    BASELINES,
    ActivationBaseline,
    BaselineBattery,
    BaselineNotFoundError,
    BaselineProbe,
    BaselineResult,
    BaselineResults,
)
from fastprobe.features import model_context, weightless_context
from fastprobe.store import ActivationStore
from fastprobe.testing import tiny_model

# Short statements whose labels depend on words and on length, with 10% label noise, so no baseline is trivially
# perfect and each has something to learn.
_WORDS = "the a big small red blue old new cold warm city river town Paris Tokyo Berlin Rome Lima".split()


def _statements(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    prompts: list[str] = []
    labels: list[int] = []
    while len(prompts) < n:
        words = list(rng.choice(_WORDS, size=int(rng.integers(2, 9))))
        text = " ".join(words)
        if text in prompts:
            continue
        label = int(("Paris" in words or "red" in words) != (len(words) > 6))
        prompts.append(text)
        labels.append(label if rng.random() > 0.1 else 1 - label)
    return prompts, np.array(labels)


TEXT_TRAIN, TEXT_Y = _statements(160, 0)
TEXT_TEST, TEXT_TEST_Y = _statements(80, 1)
_LENGTH_NAMES = ["char_count", "word_count", "chars_per_word"]

SUBJECTS = ["I", "We", "They", "You", "People", "Tourists", "Students", "Friends"]
VERBS = ["saw", "like", "love", "visited", "remember", "know"]
POS = [f"{s} {v} Paris" for s in SUBJECTS for v in VERBS]
NEG = [f"{s} {v} Tokyo" for s in SUBJECTS for v in VERBS]
TRAIN_POS, TRAIN_NEG = POS[::2], NEG[::2]
TRAIN_Y = np.r_[np.ones(len(TRAIN_POS), dtype=int), np.zeros(len(TRAIN_NEG), dtype=int)]
TEST = POS[1::2] + NEG[1::2]
TEST_Y = np.r_[np.ones(len(POS[1::2]), dtype=int), np.zeros(len(NEG[1::2]), dtype=int)]


def _lr() -> LogisticRegression:
    """scikit-learn's L2 logistic regression (what ``classifier="logistic_regression"`` names), solved to the optimum.

    Both libraries stop L-BFGS at a gradient tolerance of 1e-4, which leaves their probabilities up to about 1e-3
    from the optimum (and from each other); the reference is the optimum itself.
    """
    return LogisticRegression(max_iter=100_000, tol=1e-12)


#: How far a probability may be from the optimum's (see :func:`_lr`).
PROBA_ATOL = 2e-3


def hidden_states(model_dir: Path, prompts: list[str]) -> np.ndarray:
    """Last-token ``output_hidden_states`` of each prompt run alone: shape (n_prompts, n_layers + 1, hidden)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    out = []
    with torch.no_grad():
        for p in prompts:
            hs = model(**tok(p, return_tensors="pt"), output_hidden_states=True).hidden_states
            out.append(np.stack([h[0, -1].numpy() for h in hs]))
    return np.stack(out)


def reference_perplexity(model_dir: Path, prompts: list[str]) -> np.ndarray:
    """[mean, min, max] per-token perplexity of each prompt, one prompt at a time through the causal LM."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    out = []
    with torch.no_grad():
        for p in prompts:
            ids = tok(p, return_tensors="pt")["input_ids"]
            logits = model(input_ids=ids).logits[0, :-1].double()
            loss = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none").numpy()
            out.append(np.exp([loss.mean(), loss.min(), loss.max()]))
    return np.array(out)


# ---------------------------------------------------------------------------------------------- text baselines


@pytest.mark.parametrize("method", ["bow", "tfidf"])
def test_bow_and_tfidf_equal_sklearn_vectorizers_with_logistic_regression(method: str) -> None:
    vec = CountVectorizer() if method == "bow" else TfidfVectorizer()
    X = vec.fit_transform(TEXT_TRAIN)
    ref = _lr().fit(X, TEXT_Y)
    ours = BaselineProbe(method=method, random_state=0).fit(TEXT_TRAIN, TEXT_Y)
    assert ours.get_feature_names() == vec.get_feature_names_out().tolist()
    X_test = vec.transform(TEXT_TEST)
    np.testing.assert_array_equal(ours.predict(TEXT_TEST), ref.predict(X_test))
    np.testing.assert_allclose(ours.predict_proba(TEXT_TEST), ref.predict_proba(X_test), atol=PROBA_ATOL)
    np.testing.assert_allclose(ours.classifier_.coef_, ref.coef_, atol=1e-2)
    assert ours.score(TEXT_TEST, TEXT_TEST_Y) == pytest.approx(np.mean(ref.predict(X_test) == TEXT_TEST_Y))
    assert 0.6 < ours.score(TEXT_TEST, TEXT_TEST_Y) < 1.0  # words carry signal, label noise caps it


def test_ngram_range_and_max_features_reach_the_vectorizer() -> None:
    vec = TfidfVectorizer(ngram_range=(1, 2), max_features=25)
    ref = _lr().fit(vec.fit_transform(TEXT_TRAIN), TEXT_Y)
    ours = BaselineProbe(method="tfidf", ngram_range=(1, 2), max_features=25).fit(TEXT_TRAIN, TEXT_Y)
    assert ours.get_feature_names() == vec.get_feature_names_out().tolist()
    assert any(" " in name for name in ours.get_feature_names() or [])  # bigrams
    np.testing.assert_allclose(
        ours.predict_proba(TEXT_TEST), ref.predict_proba(vec.transform(TEXT_TEST)), atol=PROBA_ATOL
    )


def _by_hand(prompts: list[str]) -> np.ndarray:
    """Characters, words and characters per word of each prompt."""
    rows = []
    for p in prompts:
        chars, words = len(p), len(p.split())
        rows.append([chars, words, chars / max(words, 1)])
    return np.array(rows, dtype=float)


def test_sentence_length_features_by_hand() -> None:
    by_hand = _by_hand
    # The features are standardized, then the default (Rust) logistic regression fits them.
    ours = BaselineProbe(method="sentence_length").fit(TEXT_TRAIN, TEXT_Y)
    assert ours.get_feature_names() == ["char_count", "word_count", "chars_per_word"]
    np.testing.assert_allclose(ours.scaler_.mean_, by_hand(TEXT_TRAIN).mean(axis=0), rtol=1e-12)
    ref = make_pipeline(StandardScaler(), _lr()).fit(by_hand(TEXT_TRAIN), TEXT_Y)
    np.testing.assert_allclose(ours.predict_proba(TEXT_TEST), ref.predict_proba(by_hand(TEXT_TEST)), atol=PROBA_ATOL)
    np.testing.assert_array_equal(ours.predict(TEXT_TEST), ref.predict(by_hand(TEXT_TEST)))
    top = ours.get_top_features(n=3)
    assert top is not None and {name for name, _ in top["positive"]} == set(_LENGTH_NAMES)
    # Any scikit-learn classifier, on the same standardized features.
    svm = BaselineProbe(method="sentence_length", classifier=LinearSVC()).fit(TEXT_TRAIN, TEXT_Y)
    ref_svm = make_pipeline(StandardScaler(), LinearSVC()).fit(by_hand(TEXT_TRAIN), TEXT_Y)
    np.testing.assert_array_equal(svm.predict(TEXT_TEST), ref_svm.predict(by_hand(TEXT_TEST)))


def test_random_and_majority_equal_dummy_classifiers() -> None:
    zeros, zeros_test = np.zeros((len(TEXT_TRAIN), 1)), np.zeros((len(TEXT_TEST), 1))
    rand = BaselineProbe(method="random", random_state=3).fit(TEXT_TRAIN, TEXT_Y)
    ref = DummyClassifier(strategy="uniform", random_state=3).fit(zeros, TEXT_Y)
    np.testing.assert_array_equal(rand.predict(TEXT_TEST), ref.predict(zeros_test))
    np.testing.assert_allclose(rand.predict_proba(TEXT_TEST), 0.5)
    majority = BaselineProbe(method="majority").fit(TEXT_TRAIN, TEXT_Y)
    most = np.bincount(TEXT_Y).argmax()
    assert majority.predict(TEXT_TEST).tolist() == [most] * len(TEXT_TEST)
    assert majority.score(TEXT_TEST, TEXT_TEST_Y) == pytest.approx(np.mean(TEXT_TEST_Y == most))
    assert majority.get_feature_names() is None and majority.get_top_features() is None


def test_shuffled_labels_trains_on_permuted_labels() -> None:
    y_perm = np.random.RandomState(5).permutation(TEXT_Y)
    for base in ("tfidf", "sentence_length"):
        ours = BaselineProbe(method="shuffled_labels", base_method=base, random_state=5).fit(TEXT_TRAIN, TEXT_Y)
        if base == "tfidf":
            vec = TfidfVectorizer()
            X, X_test = vec.fit_transform(TEXT_TRAIN), vec.transform(TEXT_TEST)
            ref = _lr().fit(X, y_perm)
        else:
            X, X_test = _by_hand(TEXT_TRAIN), _by_hand(TEXT_TEST)
            ref = make_pipeline(StandardScaler(), _lr()).fit(X, y_perm)
        np.testing.assert_allclose(ours.predict_proba(TEXT_TEST), ref.predict_proba(X_test), atol=PROBA_ATOL)


def test_top_features_follow_the_coefficients() -> None:
    ours = BaselineProbe(method="bow", random_state=0).fit(TEXT_TRAIN, TEXT_Y)
    names = ours.get_feature_names()
    assert names is not None
    coef = ours.classifier_.coef_.ravel()
    top = ours.get_top_features(n=3)
    assert top is not None
    assert [w for _, w in top["positive"]] == sorted(coef, reverse=True)[:3]
    assert [w for _, w in top["negative"]] == sorted(coef)[:3]
    assert {name for name, _ in top["positive"]} & {"paris", "red"}  # the words that make a statement positive
    for name, weight in top["positive"] + top["negative"]:
        assert coef[names.index(name)] == weight
    # Three classes: one list per class.
    y3 = np.array([i % 3 for i in range(len(TEXT_TRAIN))])
    multi = BaselineProbe(method="bow").fit(TEXT_TRAIN, y3).get_top_features(n=2)
    assert multi is not None and sorted(multi) == ["0", "1", "2"] and all(len(v) == 2 for v in multi.values())


def test_fit_forms_and_labels_of_any_type() -> None:
    a = BaselineProbe(method="bow").fit(TRAIN_POS, TRAIN_NEG)
    b = BaselineProbe(method="bow").fit(TRAIN_POS + TRAIN_NEG, TRAIN_Y)
    np.testing.assert_array_equal(a.predict(TEST), b.predict(TEST))
    assert a.score(TEST, TEST_Y) == 1.0
    assert a.classes_.tolist() == [0, 1]


# ---------------------------------------------------------------------------------------------- perplexity


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_perplexity_equals_a_direct_per_prompt_computation(padding_side: str, exact_cache: object) -> None:
    model = tiny_model("llama", padding_side=padding_side)
    prompts = TEXT_TRAIN[:40]
    ref = reference_perplexity(model, prompts)
    ctx = model_context(model, "cpu", None, "local", False)
    lm = perplexity_module.causal_lm(ctx)
    batches: list[int] = []
    handle = lm.register_forward_pre_hook(
        lambda _m, args, kwargs: batches.append(len(kwargs["input_ids"])), with_kwargs=True
    )
    try:
        got = perplexity_module.perplexity_features(ctx, prompts)
        np.testing.assert_allclose(got, ref, rtol=1e-4)
        assert batches == [16, 16, 8]  # batched, not one prompt at a time
        again = perplexity_module.perplexity_features(ctx, prompts[::-1] + prompts[:3])
        assert len(batches) == 3  # cached: no forward pass
        np.testing.assert_allclose(again, np.concatenate([ref[::-1], ref[:3]]), rtol=1e-4)
    finally:
        handle.remove()


def test_perplexity_baseline_fits_on_the_perplexity_features(
    monkeypatch: pytest.MonkeyPatch, exact_cache: object
) -> None:
    model = tiny_model("llama")
    train, test = TEXT_TRAIN[:80], TEXT_TEST[:40]
    ours = BaselineProbe(method="perplexity", model=model, device="cpu").fit(train, TEXT_Y[:80])
    assert ours.get_feature_names() == ["mean_perplexity", "min_perplexity", "max_perplexity"]
    ref = make_pipeline(StandardScaler(), _lr()).fit(reference_perplexity(model, train), TEXT_Y[:80])
    np.testing.assert_allclose(
        ours.predict_proba(test), ref.predict_proba(reference_perplexity(model, test)), atol=PROBA_ATOL
    )
    # The cache is shared with a shuffled-labels baseline on perplexity features: no new forward pass.
    calls: list[int] = []
    monkeypatch.setattr(perplexity_home, "compute_perplexity", lambda *a: calls.append(1))
    shuffled = BaselineProbe(method="shuffled_labels", base_method="perplexity", model=model, device="cpu")
    shuffled.fit(train, TEXT_Y[:80])
    assert calls == []


def test_remote_perplexity_runs_as_nnsight_traces(monkeypatch: pytest.MonkeyPatch, exact_cache: object) -> None:
    """No NDIF here: a stand-in for nnsight.LanguageModel runs the traces locally and records that each was remote."""
    nnsight = pytest.importorskip("nnsight")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_model("llama")
    traces: list[bool] = []

    class StubLanguageModel:
        def __init__(self, name: str, **kwargs: Any) -> None:
            self._model = AutoModelForCausalLM.from_pretrained(path).eval()
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self._inner = nnsight.NNsight(self._model)

        def trace(self, *args: Any, remote: bool = False, **kwargs: Any) -> Any:
            traces.append(remote)
            return self._inner.trace(*args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

    monkeypatch.setattr(nnsight, "LanguageModel", StubLanguageModel)
    monkeypatch.setattr(nnsight.CONFIG.API, "APIKEY", nnsight.CONFIG.API.APIKEY)
    monkeypatch.setenv("NDIF_API_KEY", "test-key")
    prompts = TEXT_TRAIN[:20]
    baseline = BaselineProbe(method="perplexity", model="org/tiny-llama", remote=True)
    got = perplexity_module.perplexity_features(
        model_context(baseline.model, baseline.device, None, "nnsight", True), prompts
    )
    assert traces == [True, True]  # 20 prompts in batches of 16, each trace sent to NDIF
    np.testing.assert_allclose(got, reference_perplexity(path, prompts), rtol=1e-4)


# ---------------------------------------------------------------------------------------------- sentence encoders


def test_sentence_transformers_without_the_package_says_what_is_missing() -> None:
    if importlib.util.find_spec("sentence_transformers") is not None:
        pytest.skip("sentence-transformers is installed here")
    with pytest.raises(MissingDependencyError, match="sentence-transformers is required .* and it is not installed"):
        BaselineProbe(method="sentence_transformers").fit(TRAIN_POS, TRAIN_NEG)


def test_sentence_transformers_uses_the_encoder_embeddings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A stand-in for the package (not installed here): the baseline must fit on exactly what the encoder returns."""
    seen: dict[str, Any] = {}

    def embed(prompts: list[str]) -> np.ndarray:
        return np.array([[len(p), p.count("a"), p.count("Paris"), p.count("e")] for p in prompts], dtype=np.float32)

    class Encoder:
        def __init__(self, name: str, device: str = "cpu", local_files_only: bool = False) -> None:
            seen.update(name=name, local_files_only=local_files_only)

        def encode(self, prompts: list[str], show_progress_bar: bool = True) -> np.ndarray:
            return embed(prompts)

    fake = types.ModuleType("sentence_transformers")
    fake.__spec__ = importlib.machinery.ModuleSpec("sentence_transformers", None)
    fake.SentenceTransformer = Encoder  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    with pytest.raises(FastprobeError, match="needs the sentence encoder .* on this machine"):
        BaselineProbe(method="sentence_transformers").fit(TEXT_TRAIN, TEXT_Y)
    ours = BaselineProbe(method="sentence_transformers", model=tmp_path).fit(TEXT_TRAIN, TEXT_Y)
    assert seen == {"name": os.fspath(tmp_path), "local_files_only": True}
    ref = _lr().fit(embed(TEXT_TRAIN), TEXT_Y)
    np.testing.assert_allclose(ours.predict_proba(TEXT_TEST), ref.predict_proba(embed(TEXT_TEST)), atol=PROBA_ATOL)
    # A battery runs it by default only when the package and the default encoder are both here.
    assert "sentence_transformers" not in BaselineBattery().applicable_baselines  # the encoder is not cached
    monkeypatch.setattr(baselines_common, "sentence_model_here", lambda name: True)
    text = ["bow", "tfidf", "random", "majority", "sentence_length", "sentence_transformers"]
    assert BaselineBattery().applicable_baselines == text


# ---------------------------------------------------------------------------------------------- activation baselines


@pytest.fixture(scope="module")
def states() -> tuple[np.ndarray, np.ndarray]:
    """Reference hidden states (transformers, prompt by prompt) of the training and test prompts."""
    model = tiny_model("llama")
    return hidden_states(model, TRAIN_POS + TRAIN_NEG), hidden_states(model, TEST)


def test_random_direction_projects_on_a_seeded_gaussian_unit_vector(
    exact_cache: object, states: tuple[np.ndarray, np.ndarray]
) -> None:
    train, test = states
    X, X_test = np.hstack([train[:, 2], train[:, 3]]), np.hstack([test[:, 2], test[:, 3]])  # blocks 1 and 2
    ours = ActivationBaseline(tiny_model("llama"), layers=[2, 1], random_state=7, device="cpu")
    ours.fit(TRAIN_POS, TRAIN_NEG)
    direction = np.random.RandomState(7).randn(X.shape[1])
    direction /= np.linalg.norm(direction)
    np.testing.assert_array_equal(ours.random_direction_, direction)
    assert ours.layers_ == [1, 2] and ours.n_features_in_ == X.shape[1]
    ref = _lr().fit((X @ direction)[:, None], TRAIN_Y)
    np.testing.assert_allclose(
        ours.predict_proba(TEST), ref.predict_proba((X_test @ direction)[:, None]), atol=PROBA_ATOL
    )
    np.testing.assert_array_equal(ours.predict(TEST), ref.predict((X_test @ direction)[:, None]))


def test_pca_equals_sklearn_pca(exact_cache: object, states: tuple[np.ndarray, np.ndarray]) -> None:
    from sklearn.decomposition import PCA

    train, test = states
    ours = ActivationBaseline(tiny_model("llama"), method="pca", layers=2, n_components=4, random_state=0)
    ours.fit(TRAIN_POS + TRAIN_NEG, TRAIN_Y)
    pca = PCA(n_components=4, random_state=0).fit(train[:, 3])
    np.testing.assert_allclose(ours.pca_.explained_variance_, pca.explained_variance_, rtol=1e-4)
    np.testing.assert_allclose(np.abs(ours.pca_.components_), np.abs(pca.components_), atol=1e-4)
    ref = _lr().fit(pca.transform(train[:, 3]), TRAIN_Y)
    np.testing.assert_allclose(ours.predict_proba(TEST), ref.predict_proba(pca.transform(test[:, 3])), atol=PROBA_ATOL)
    # At most min(n_components, n_prompts, n_features) components.
    few = ActivationBaseline(tiny_model("llama"), method="pca", n_components=50).fit(POS[:3], NEG[:3])
    assert few.pca_.n_components_ == 6


def test_layer_0_is_the_embeddings(exact_cache: object, states: tuple[np.ndarray, np.ndarray]) -> None:
    train, test = states
    model = tiny_model("llama")
    ours = ActivationBaseline(model, method="layer_0", layers=3, device="cpu").fit(TRAIN_POS, TRAIN_NEG)
    assert ours.layers_ == ["embed"] and ours.n_features_in_ == train.shape[2]
    read = model_context(model, "cpu", None, "local", False).store.read_pooled(TRAIN_POS + TRAIN_NEG, ["embed"])
    np.testing.assert_allclose(read, train[:, 0], atol=1e-6)  # output_hidden_states[0]
    assert not np.allclose(read, train[:, 1], atol=1e-2)  # not block 0's output (lmprobe's layer_0)
    ref = _lr().fit(train[:, 0], TRAIN_Y)
    np.testing.assert_allclose(ours.predict_proba(TEST), ref.predict_proba(test[:, 0]), atol=PROBA_ATOL)
    assert ours.score(TEST, TEST_Y) == 1.0  # the last token's embedding names the city


def test_activation_baselines_share_the_probe_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    import fastprobe.extraction as extraction

    model = tiny_model("llama")
    prompts = [f"{p} today" for p in POS[:10] + NEG[:10]]
    y = np.r_[np.ones(10, dtype=int), np.zeros(10, dtype=int)]
    ran: list[int] = []
    original = extraction.extract_to_store
    monkeypatch.setattr(extraction, "extract_to_store", lambda *a, **k: ran.append(original(*a, **k)) or ran[-1])
    Probe(model=model, layers=-1, device="cpu").fit(prompts, y)
    assert ran == [20]
    ActivationBaseline(model, layers=-1, device="cpu").fit(prompts, y)
    ActivationBaseline(model, method="pca", layers=-1, device="cpu").fit(prompts, y)
    assert ran == [20]  # the probe's activations, read back: no extraction runs at all


def test_cached_runs_load_no_weights(monkeypatch: pytest.MonkeyPatch, exact_cache: object) -> None:
    """Once everything is cached, baselines read it with a weightless model whose fingerprint is the loaded one's."""

    for padding_side in ("right", "left"):
        model = tiny_model("llama", padding_side=padding_side)
        light = weightless_context(model, "cpu", "local")
        assert light is not None and str(next(light.loaded.model.parameters()).device) == "meta"
        assert light.fingerprint == model_context(model, "cpu", None, "local", False).fingerprint
    model = tiny_model("llama")
    prompts = [f"{p} now" for p in POS[:6] + NEG[:6]]
    y = np.r_[np.ones(6, dtype=int), np.zeros(6, dtype=int)]
    cold = BaselineBattery(model=model, device="cpu", random_state=0).fit(prompts, y)
    loads: list[Any] = []
    original = model_layer.load_model
    monkeypatch.setattr(model_layer, "load_model", lambda *a, **k: loads.append(a) or original(*a, **k))
    warm = BaselineBattery(model=model, device="cpu", random_state=0).fit(prompts, y)
    assert loads == []
    assert [(r.name, r.score) for r in warm] == [(r.name, r.score) for r in cold]
    fitted = ActivationBaseline(model, method="pca", device="cpu").fit(prompts, y)
    fitted.predict(prompts)
    BaselineProbe(method="perplexity", model=model, device="cpu").fit(prompts, y).predict(prompts)
    assert loads == []
    fitted.predict(["We saw Rome"])  # not cached: the weights load
    assert len(loads) == 1


# ---------------------------------------------------------------------------------------------- the battery


def test_text_battery_equals_each_baseline_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(baselines_battery, "sentence_available", lambda name: False)
    battery = BaselineBattery(random_state=0)
    results = battery.fit(TEXT_TRAIN, TEXT_Y, TEXT_TEST, TEXT_TEST_Y)
    expected = ["bow", "tfidf", "random", "majority", "sentence_length"]
    assert results.names == expected == battery.applicable_baselines
    assert battery.available_baselines == list(BASELINES) and len(BASELINES) == 10
    assert len(results) == 5 and [r.name for r in results] == expected
    for name in expected:
        alone = BaselineProbe(method=name, random_state=0).fit(TEXT_TRAIN, TEXT_Y)
        assert results[name].score == alone.score(TEXT_TEST, TEXT_TEST_Y), name
        # measured durations in seconds: not the default 0.0, not a timestamp, not NaN
        assert all(0 < t < 60 for t in (results[name].fit_time, results[name].predict_time)), name
        fitted = battery.get_baseline(name)
        assert fitted is results[name].baseline
        np.testing.assert_array_equal(fitted.predict(TEXT_TEST), alone.predict(TEXT_TEST))
    assert results[0] is results["bow"] and results[-1] is results["sentence_length"]
    scores = [r.score for r in results]
    best = results.get_best(3)
    assert [r.score for r in best] == sorted(scores, reverse=True)[:3]
    assert battery.get_best() == [best[0]] and best[0].score == max(scores)
    summary = results.summary()
    lines = summary.splitlines()
    assert lines[0] == "Baseline results (5, best first)"
    body = lines[3:]
    assert [line.split()[0] for line in body] == [r.name for r in results.get_best(5)]
    for line, r in zip(body, results.get_best(5), strict=True):
        assert line.split()[1] == f"{r.score:.4f}"
    assert str(results) == summary
    assert repr(results["bow"]) == f"BaselineResult(name='bow', score={results['bow'].score:.4f})"


def test_battery_with_a_model_shares_one_extraction_and_one_read(
    monkeypatch: pytest.MonkeyPatch, exact_cache: object
) -> None:
    import fastprobe.extraction as extraction

    model = tiny_model("llama")
    runs: list[list[Any]] = []
    original_extract = extraction.extract_to_store
    monkeypatch.setattr(
        extraction, "extract_to_store", lambda *a, **k: runs.append(list(a[2])) or original_extract(*a, **k)
    )
    reads: list[list[Any]] = []
    original_read = ActivationStore.read_pooled

    def read(self: ActivationStore, prompts: Any, sites: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        if self.fingerprint.get("site") != "perplexity":
            reads.append(list(sites))
        return original_read(self, prompts, sites, *args, **kwargs)

    monkeypatch.setattr(ActivationStore, "read_pooled", read)
    counted: list[int] = []
    original_counts = CountVectorizer.fit_transform
    monkeypatch.setattr(
        CountVectorizer, "fit_transform", lambda self, *a, **k: counted.append(1) or original_counts(self, *a, **k)
    )
    battery = BaselineBattery(model=model, layers=[1, 2], device="cpu", random_state=0)
    results = battery.fit(TRAIN_POS, TRAIN_NEG, TEST, TEST_Y)
    assert results.names == [n for n in BASELINES if n != "sentence_transformers"]
    assert runs == [[1, 2, "embed"]] and reads == [[1, 2, "embed"]]  # one extraction, one read
    assert counted == [1]  # bow and tfidf tokenize once
    monkeypatch.setattr(extraction, "extract_to_store", original_extract)
    monkeypatch.setattr(ActivationStore, "read_pooled", original_read)
    for name in ("random_direction", "pca", "layer_0"):
        alone = ActivationBaseline(model, method=name, layers=[1, 2], device="cpu", random_state=0)
        alone.fit(TRAIN_POS, TRAIN_NEG)
        assert results[name].score == alone.score(TEST, TEST_Y), name
        fitted = battery.get_baseline(name)
        assert isinstance(fitted, ActivationBaseline)
        assert fitted.layers_ == alone.layers_
        np.testing.assert_allclose(fitted.predict_proba(TEST), alone.predict_proba(TEST), atol=1e-12)
    alone_ppl = BaselineProbe(method="perplexity", model=model, device="cpu", random_state=0).fit(TRAIN_POS, TRAIN_NEG)
    assert results["perplexity"].score == alone_ppl.score(TEST, TEST_Y)
    assert results["layer_0"].score == 1.0 and results["bow"].score == 1.0


def test_battery_training_set_scoring_custom_scorer_and_filters() -> None:
    battery = BaselineBattery(include=["bow", "sentence_length", "random"], exclude=["random"], scorer=f1_score)
    assert battery.applicable_baselines == ["bow", "sentence_length"]
    results = battery.fit(TEXT_TRAIN, TEXT_Y)  # scored on the training prompts
    for r in results:
        assert r.score == pytest.approx(f1_score(TEXT_Y, r.baseline.predict(TEXT_TRAIN)))
    assert BaselineBattery(model="unused", include=["bow", "pca"]).applicable_baselines == ["bow", "pca"]


def test_a_failing_baseline_becomes_a_warning() -> None:
    battery = BaselineBattery(include=["bow", "sentence_transformers"])
    with pytest.warns(UserWarning, match="baseline 'sentence_transformers' failed and is left out of the results"):
        results = battery.fit(TEXT_TRAIN, TEXT_Y, TEXT_TEST, TEXT_TEST_Y)
    assert results.names == ["bow"]
    with pytest.raises(
        BaselineNotFoundError, match="'sentence_transformers' did not run in this battery; these ran: bow"
    ):
        battery.get_baseline("sentence_transformers")
    # A shared step that fails (here, a layer the model lacks) fails each baseline that shares it, tried once.
    model = tiny_model("llama")
    battery = BaselineBattery(model=model, layers=9, device="cpu", include=["bow", "pca", "random_direction"])
    with pytest.warns(UserWarning, match="layer 9 is out of range for a model with 4 layers") as caught:
        results = battery.fit(TRAIN_POS, TRAIN_NEG)
    assert [str(w.message).split(":")[0] for w in caught] == [
        "baseline 'random_direction' failed and is left out of the results",
        "baseline 'pca' failed and is left out of the results",
    ]
    assert results.names == ["bow"]


# ---------------------------------------------------------------------------------------------- bad input


def test_bad_configuration_errors() -> None:
    with pytest.raises(UnknownOptionError, match="Unknown method 'ngrams'; expected one of: bow, tfidf, random"):
        BaselineProbe(method="ngrams")
    with pytest.raises(
        InvalidInputError,
        match="method='perplexity' requires the 'model' parameter \\(the language model\\): pass model=",
    ):
        BaselineProbe(method="perplexity")
    with pytest.raises(InvalidInputError, match="method='perplexity' requires the 'model' parameter"):
        BaselineProbe(method="shuffled_labels", base_method="perplexity")
    with pytest.raises(UnknownOptionError, match="unknown base_method 'random' for method='shuffled_labels'"):
        BaselineProbe(method="shuffled_labels", base_method="random")
    with pytest.raises(InvalidInputError, match=r"ngram_range must be a pair \(min_n, max_n\).*got \(2, 1\)"):
        BaselineProbe(ngram_range=(2, 1))
    with pytest.raises(InvalidInputError, match="max_features must be an integer >= 1 or None; got 0"):
        BaselineProbe(max_features=0)
    with pytest.raises(UnknownOptionError, match="Unknown classifier 'forest'"):
        BaselineProbe(classifier="forest")
    model = tiny_model("llama")
    with pytest.raises(
        UnknownOptionError, match="Unknown method 'ica'; expected one of: random_direction, pca, layer_0"
    ):
        ActivationBaseline(model, method="ica")
    with pytest.raises(UnknownOptionError, match="unknown pooling 'all' for an activation baseline; expected one of"):
        ActivationBaseline(model, pooling="all")
    with pytest.raises(InvalidInputError, match="ActivationBaseline needs a model"):
        ActivationBaseline(None)
    with pytest.raises(InvalidInputError, match="n_components must be an integer >= 1; got 0"):
        ActivationBaseline(model, method="pca", n_components=0)
    with pytest.raises(InvalidInputError, match="remote=True runs on NDIF through nnsight; pass backend='nnsight'"):
        ActivationBaseline(model, remote=True)


def test_battery_errors() -> None:
    with pytest.raises(InvalidInputError, match=r"no baseline applies .*\(perplexity needs model=\.\.\.\)"):
        BaselineBattery(include=["perplexity"]).fit(TRAIN_POS, TRAIN_NEG)
    with pytest.raises(InvalidInputError, match="no baseline applies .*bow is excluded"):
        BaselineBattery(include=["bow"], exclude=["bow"]).fit(TRAIN_POS, TRAIN_NEG)
    with pytest.raises(
        UnknownOptionError, match="unknown baseline 'bag_of_words' in include; expected names from: bow"
    ):
        BaselineBattery(include=["bag_of_words"]).fit(TRAIN_POS, TRAIN_NEG)
    with pytest.raises(UnknownOptionError, match="unknown baseline 'pcaa' in exclude"):
        _ = BaselineBattery(exclude=["pcaa"]).applicable_baselines
    with pytest.raises(InvalidInputError, match="test_prompts need test_labels"):
        BaselineBattery().fit(TRAIN_POS, TRAIN_NEG, TEST)
    with pytest.raises(ShapeMismatchError, match="got 48 prompts but labels of shape \\(3,\\)"):
        BaselineBattery().fit(TRAIN_POS, TRAIN_NEG, TEST, [1, 0, 1])
    battery = BaselineBattery()
    with pytest.raises(NotFittedError, match="has not run yet; call fit first"):
        battery.get_best()
    with pytest.raises(NotFittedError):
        battery.get_baseline("bow")
    results = battery.fit(TRAIN_POS, TRAIN_NEG)
    with pytest.raises(BaselineNotFoundError, match="unknown baseline 'bows'; expected one of: bow, tfidf") as info:
        battery.get_baseline("bows")
    assert isinstance(info.value, KeyError) and isinstance(info.value, UnknownOptionError)
    with pytest.raises(KeyError, match="no result for baseline 'pca'; these baselines ran: bow, tfidf"):
        results["pca"]
    with pytest.raises(InvalidInputError, match="n must be an integer >= 1; got 0"):
        results.get_best(0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: BaselineProbe(method="bow"),
        lambda: ActivationBaseline(tiny_model("llama"), device="cpu"),
        lambda: BaselineBattery(),
    ],
    ids=["text", "activation", "battery"],
)
def test_bad_training_data(make: Any) -> None:
    with pytest.raises(InvalidInputError, match="no training prompts were given"):
        make().fit([], [])
    with pytest.raises(InvalidInputError, match=r"training data has a single class \(\[1\]\)"):
        make().fit(TRAIN_POS, [])
    with pytest.raises(InvalidInputError, match=r"training data has a single class \(\[0\]\)"):
        make().fit(TRAIN_POS, np.zeros(len(TRAIN_POS), dtype=int))
    with pytest.raises(ShapeMismatchError, match="got 24 prompts but 2 labels"):
        make().fit(TRAIN_POS, [0, 1])
    with pytest.raises(InvalidInputError, match="fit\\(\\) requires two arguments"):
        make().fit(TRAIN_POS)
    with pytest.raises(InvalidInputError, match=r"the prompts\[1\] must be a string; got int 3"):
        make().fit(["a", 3], [0, 1])


def test_use_before_fit_and_inference_errors() -> None:
    for baseline in (BaselineProbe(), ActivationBaseline(tiny_model("llama"), device="cpu")):
        for call in (baseline.predict, baseline.predict_proba):
            with pytest.raises(NotFittedError, match="has not been fitted yet; call fit before using it"):
                call(TEST)
        with pytest.raises(NotFittedError):
            baseline.score(TEST, TEST_Y)
    with pytest.raises(NotFittedError):
        BaselineProbe().get_top_features()
    fitted = BaselineProbe(method="bow", classifier="ridge").fit(TRAIN_POS, TRAIN_NEG)
    with pytest.raises(UnsupportedMethodError, match="does not support predict_proba; use predict"):
        fitted.predict_proba(TEST)
    with pytest.raises(InvalidInputError, match="prompts is empty"):
        fitted.predict([])
    with pytest.raises(ShapeMismatchError, match="got 48 prompts but labels of shape \\(2,\\)"):
        fitted.score(TEST, [0, 1])
    with pytest.raises(InvalidInputError, match="n must be an integer >= 1; got -1"):
        fitted.get_top_features(n=-1)


# ---------------------------------------------------------------------------------------------- the real model

DATA = Path(os.environ.get("FASTPROBE_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def cities_split() -> tuple[list[str], list[str], list[str], list[int]]:
    """The seeded 1,000 / 496 split of ../shared/data/cities.csv, or the same split of the built-in statements."""
    if (DATA / "cities.csv").is_file():
        with (DATA / "cities.csv").open() as f:
            rows = [(r["statement"], int(r["label"])) for r in csv.DictReader(f)]
    else:
        from fastprobe.datasets import city_facts

        facts = city_facts(seed=0)
        rows = list(zip(facts.statements, [int(v) for v in facts.labels], strict=True))
    order = np.random.default_rng(0).permutation(len(rows))
    n_train = round(len(rows) * 1000 / 1496)
    train, test = [rows[i] for i in order[:n_train]], [rows[i] for i in order[n_train:]]
    return [s for s, y in train if y == 1], [s for s, y in train if y == 0], [s for s, _ in test], [y for _, y in test]


@pytest.mark.slow
def test_smollm2_probe_beats_every_text_baseline(smollm2_path: Path) -> None:
    pos, neg, test, labels = cities_split()
    model = str(smollm2_path)
    sweep = Probe.sweep_layers(model, pos, neg, layers=[8, 12, 16, 20], device="cpu", random_state=0)
    probe_scores = sweep.score(test, labels)
    best = max(probe_scores.values())
    battery = BaselineBattery(model=model, layers=16, device="cpu", random_state=0)
    results = battery.fit(pos, neg, test, labels)
    text = [r for r in results if isinstance(r.baseline, BaselineProbe)]
    assert {r.name for r in text} >= {"bow", "tfidf", "random", "majority", "sentence_length", "perplexity"}
    margin = 2 / len(test) if len(test) < 496 else 0.1  # measured: 0.85 (layer 20) against 0.63 (perplexity)
    for r in text:
        assert best >= r.score + margin, (r.name, r.score, probe_scores)
    # Every statement names a city and a country: the words alone do not say whether it is true.
    majority = max(np.mean(labels), 1 - np.mean(labels))
    assert best >= majority + 0.25, probe_scores
    assert math.isfinite(results["perplexity"].score)
    assert isinstance(results, BaselineResults) and all(isinstance(r, BaselineResult) for r in results)
