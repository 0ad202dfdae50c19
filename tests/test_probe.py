"""The Probe on tiny models (wiring, labels forms, errors) and on the real SmolLM2 (accuracy)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from fastprobe import InvalidInputError, LinearProbe, NotFittedError, Probe, ShapeMismatchError, UnknownOptionError
from fastprobe.datasets import city_facts
from fastprobe.testing import tiny_model

SUBJECTS = ["I", "We", "They", "You", "People", "Tourists", "Students", "Friends"]
VERBS = ["saw", "like", "love", "visited", "remember", "know"]


def contrast() -> tuple[list[str], list[str]]:
    """Statements ending in 'Paris' (positive) or 'Tokyo' (negative): separable from the last token alone."""
    pos = [f"{s} {v} Paris" for s in SUBJECTS for v in VERBS]
    neg = [f"{s} {v} Tokyo" for s in SUBJECTS for v in VERBS]
    return pos, neg


def test_fit_predict_score_on_a_tiny_model() -> None:
    pos, neg = contrast()
    probe = Probe(model=tiny_model("llama"), layers="all", random_state=0).fit(pos[::2], neg[::2])
    test = pos[1::2] + neg[1::2]
    labels = [1] * len(pos[1::2]) + [0] * len(neg[1::2])
    assert probe.score(test, labels) == 1.0
    proba = probe.predict_proba(test)
    assert proba.shape == (len(test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert probe.layers_ == [0, 1, 2, 3]
    assert probe.n_features_in_ == 4 * 32
    assert LinearProbe is Probe


@pytest.mark.parametrize("label_dtype", [np.int64, np.int8, np.float64, bool])
def test_labels_form_accepts_any_numeric_labels(label_dtype: type) -> None:
    pos, neg = contrast()
    prompts = pos[:12] + neg[:12]
    labels = np.array([1] * 12 + [0] * 12).astype(label_dtype)
    probe = Probe(model=tiny_model("gpt2"), layers=-1, random_state=0).fit(prompts, labels)
    assert probe.classes_.dtype == labels.dtype
    contrastive = Probe(model=tiny_model("gpt2"), layers=-1, random_state=0).fit(pos[:12], neg[:12])
    np.testing.assert_allclose(probe.predict_proba(pos[12:]), contrastive.predict_proba(pos[12:]), rtol=1e-6)


def test_sklearn_params_roundtrip() -> None:
    probe = Probe(model="m", layers=[1, 2], pooling="mean", random_state=3)
    assert probe.get_params()["layers"] == [1, 2]
    cloned = clone(probe)
    assert cloned.get_params() == probe.get_params()


def test_bad_input_gives_clear_errors() -> None:
    pos, neg = contrast()
    model = tiny_model("llama")
    with pytest.raises(UnknownOptionError, match="Invalid train_pooling 'median' .*expected one of: last_token"):
        Probe(model=model, pooling="median").fit(pos, neg)
    with pytest.raises(UnknownOptionError, match="Unknown classifier 'forest'; expected one of: logistic_regression"):
        Probe(model=model, classifier="forest").fit(pos, neg)
    with pytest.raises(InvalidInputError, match="single class"):
        Probe(model=model).fit(pos, [])
    with pytest.raises(ShapeMismatchError, match="got 48 prompts but 3 labels"):
        Probe(model=model).fit(pos, [1, 0, 1])
    with pytest.raises(InvalidInputError, match="fit\\(\\) requires two arguments: negative prompts"):
        Probe(model=model).fit(pos)
    with pytest.raises(NotFittedError, match="has not been fitted yet"):
        Probe(model=model).predict(pos)
    with pytest.raises(InvalidInputError, match="No model specified"):
        Probe().fit(pos, neg)
    probe = Probe(model=model, layers=0).fit(pos, neg)
    with pytest.raises(ShapeMismatchError, match="X has 5 features, but the probe was fitted on 32"):
        probe.predict_from_activations(np.zeros((2, 5), dtype=np.float32))
    with pytest.raises(InvalidInputError, match="out of range"):
        Probe(model=model, layers=4).fit(pos, neg)


def test_fit_from_activations_matches_prompt_path(exact_cache: object) -> None:
    from fastprobe.extraction import extract_pooled, load_model

    pos, neg = contrast()
    model = tiny_model("gpt_neox")
    probe = Probe(model=model, layers=2, random_state=0).fit(pos, neg)
    X = extract_pooled(load_model(model), pos + neg, [2], progress=False)["last_token"]
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    offline = Probe(random_state=0).fit_from_activations(X, y)
    np.testing.assert_allclose(offline.predict_proba_from_activations(X), probe.predict_proba(pos + neg), rtol=1e-5)
    assert offline.score_from_activations(X, y) == probe.score(pos + neg, y)


def test_smollm2_probe_is_far_above_chance(smollm2_path) -> None:  # type: ignore[no-untyped-def]
    """On the real model, a middle-layer truth probe generalises to cities it never saw."""
    train, test = city_facts(seed=0).split(0.25, seed=0)
    probe = Probe(model=smollm2_path, layers=14, batch_size=32, random_state=0)
    probe.fit(train.positives, train.negatives)
    accuracy = probe.score(test.statements, test.labels)
    assert accuracy >= 0.85, accuracy
    # Layer 0 carries far less of the signal: the probe's accuracy must come from the model, not the template.
    early = Probe(model=smollm2_path, layers=0, batch_size=32, random_state=0).fit(train.positives, train.negatives)
    assert early.score(test.statements, test.labels) < accuracy - 0.15


def test_smollm2_answers_paris(smollm2_path) -> None:  # type: ignore[no-untyped-def]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2_path)
    model = AutoModelForCausalLM.from_pretrained(smollm2_path)
    ids = tok("The capital of France is", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=2, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids["input_ids"].shape[1] :])
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
