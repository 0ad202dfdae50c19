"""ProbeEnsemble: voting, bootstrap resamples, one extraction pass, save/load, bad input.

References are independent of the ensemble: each member's own ``Probe`` methods, probes fitted by hand on resamples
reproduced from the documented random procedure, lmprobe (its ensemble, its group-balanced draw, its pickles),
scipy's ``mode``, numpy and hand-computed votes.
"""

from __future__ import annotations

import csv
import json
import math
import os
import pickle
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from fastprobe import (
    FastprobeError,
    InvalidInputError,
    NotFittedError,
    Probe,
    ShapeMismatchError,
    UnknownOptionError,
    UnsupportedMethodError,
)
from fastprobe.ensemble import MAX_DRAWS, ProbeEnsemble
from fastprobe.testing import tiny_model

PEOPLE = ["I", "We", "They", "You", "People", "Tourists", "Students", "Friends"]
ACTIONS = ["saw", "like", "love", "visited", "remember", "know"]
POS = [f"{p} {a} Rome" for p in PEOPLE for a in ACTIONS]
NEG = [f"{p} {a} Cairo" for p in PEOPLE for a in ACTIONS]
TRAIN_POS, TRAIN_NEG = POS[::2], NEG[::2]
TEST = POS[1::2] + NEG[1::2]
TEST_Y = np.r_[np.ones(len(POS[1::2]), dtype=int), np.zeros(len(NEG[1::2]), dtype=int)]


def fresh(prompts: list[str], tag: str) -> list[str]:
    """Prompts no other test has cached (the suite shares one activation cache)."""
    return [f"{p} ({tag})" for p in prompts]


def spy_forward(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, list[int]]]:
    """Record every forward pass over a list of prompts: (number of prompts, layers)."""
    import fastprobe.extraction as extraction

    calls: list[tuple[int, list[int]]] = []
    real = extraction.runner.forward_batches

    def spy(loaded: Any, texts: Any, sites: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append((len(texts), sorted(s.layer for s in sites)))
        return real(loaded, texts, sites, *args, **kwargs)

    monkeypatch.setattr(extraction.runner, "forward_batches", spy)
    return calls


def bootstrap_indices(seed: int, y: np.ndarray, n_members: int) -> tuple[list[np.ndarray], int]:
    """The documented draws: ``default_rng(seed)``, then ``choice(n, n)`` per member until every class is present."""
    rng = np.random.default_rng(seed)
    draws, retries = [], 0
    for _ in range(n_members):
        while True:
            idx = rng.choice(len(y), size=len(y), replace=True)
            if set(y[idx].tolist()) == set(y.tolist()):
                break
            retries += 1
        draws.append(idx)
    return draws, retries


# ---------------------------------------------------------------------------------------------- voting


def test_soft_voting_is_the_weighted_mean_of_the_members() -> None:
    model = tiny_model("llama")
    configs = [
        {"layers": 0},
        {"layers": [1, 3], "classifier": "mass_mean"},
        {"layers": 2, "pooling": "mean", "classifier_kwargs": {"C": 0.1}},
    ]
    ensemble = ProbeEnsemble.from_configs(model, configs, weights=[3, 1, 2], random_state=0)
    assert len(ensemble) == 3 and [p.layers for p in ensemble.probes_] == [0, [1, 3], 2]
    np.testing.assert_allclose(ensemble.weights_, [0.5, 1 / 6, 1 / 3])
    assert ensemble.fit(TRAIN_POS, TRAIN_NEG) is ensemble
    for member, cfg in zip(ensemble.probes_, configs, strict=True):
        alone = Probe(model=model, random_state=0, **cfg).fit(TRAIN_POS, TRAIN_NEG)
        np.testing.assert_allclose(member.predict_proba(TEST), alone.predict_proba(TEST), rtol=1e-6, atol=1e-9)
    expected = sum(w * p.predict_proba(TEST) for w, p in zip([0.5, 1 / 6, 1 / 3], ensemble.probes_, strict=True))
    proba = ensemble.predict_proba(TEST)
    np.testing.assert_allclose(proba, expected, rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    pred = ensemble.predict(TEST)
    np.testing.assert_array_equal(pred, np.argmax(expected, axis=1))
    assert ensemble.score(TEST, TEST_Y) == np.mean(pred == TEST_Y) >= 0.9
    np.testing.assert_array_equal(ensemble.classes_, [0, 1])


def test_evaluate_matches_sklearn_metrics_of_the_ensemble() -> None:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    model = tiny_model("llama")
    ensemble = ProbeEnsemble.from_configs(model, [{"layers": 0}, {"layers": 1}], random_state=0)
    ensemble.fit(TRAIN_POS[:6] + POS[1:7], TRAIN_NEG[:10])
    metrics = ensemble.evaluate(TEST, TEST_Y)
    pred, proba = ensemble.predict(TEST), ensemble.predict_proba(TEST)
    assert metrics["accuracy"] == accuracy_score(TEST_Y, pred)
    assert metrics["f1"] == f1_score(TEST_Y, pred)
    assert metrics["precision"] == precision_score(TEST_Y, pred, zero_division=0)
    assert metrics["recall"] == recall_score(TEST_Y, pred)
    assert metrics["auroc"] == roc_auc_score(TEST_Y, proba[:, 1])
    assert metrics["n_eval"] == len(TEST)
    assert metrics["eval_hash"] == ensemble.probes_[0].evaluate(TEST, TEST_Y)["eval_hash"]
    assert ensemble.evaluation_results_ == metrics


def test_hard_voting_is_the_weighted_majority_with_ties_to_the_lowest_class() -> None:
    from scipy.stats import mode

    model = tiny_model("llama")
    a = Probe(model=model, layers=1, random_state=0).fit(TRAIN_POS, TRAIN_NEG)
    flipped = Probe(model=model, layers=1, random_state=0).fit(TRAIN_NEG, TRAIN_POS)  # labels swapped
    arbitrary = (np.arange(48) // 3) % 2  # a third member that agrees with the first only sometimes
    c = Probe(model=model, layers=3, classifier="ridge").fit(TRAIN_POS + TRAIN_NEG, arbitrary)
    preds = [p.predict(TEST) for p in (a, flipped, c)]
    assert (preds[0] != preds[1]).all() and (preds[0] != preds[2]).any() and (preds[0] == preds[2]).any()

    # Already-fitted members: the ensemble predicts without fit.
    tie = ProbeEnsemble([a, flipped], voting="hard")
    np.testing.assert_array_equal(tie.predict(TEST), np.zeros(len(TEST), dtype=int))  # every prompt ties: class 0
    weights = [0.2, 0.45, 0.35]
    weighted = ProbeEnsemble([a, flipped, c], weights=weights, voting="hard")
    expected = []
    for i in range(len(TEST)):
        votes = {0: 0.0, 1: 0.0}
        for w, p in zip(weights, preds, strict=True):
            votes[int(p[i])] += w
        expected.append(0 if votes[0] >= votes[1] else 1)
    np.testing.assert_array_equal(weighted.predict(TEST), expected)
    # Equal weights: lmprobe's rule, scipy's mode (no ties with three members and two classes).
    plain = ProbeEnsemble([a, flipped, c], voting="hard")
    np.testing.assert_array_equal(plain.predict(TEST), mode(np.stack(preds), axis=0, keepdims=False).mode)
    assert plain.score(TEST, TEST_Y) == np.mean(plain.predict(TEST) == TEST_Y)
    with pytest.raises(
        UnsupportedMethodError, match=r"predict_proba needs every member's class probabilities, but probes\[2\]"
    ):
        plain.predict_proba(TEST)
    metrics = plain.evaluate(TEST, TEST_Y)
    assert metrics["accuracy"] == plain.score(TEST, TEST_Y) and "auroc" not in metrics


# ---------------------------------------------------------------------------------------------- bootstrap


def test_bootstrap_members_equal_probes_fitted_on_the_same_resamples(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model("gpt2")
    calls = spy_forward(monkeypatch)
    pos, neg = fresh(TRAIN_POS[:2], "boot"), fresh(TRAIN_NEG[:24], "boot")  # 2 of 26: some draws miss a class
    prompts, y = pos + neg, np.r_[np.ones(2, dtype=int), np.zeros(24, dtype=int)]
    base = Probe(model=model, layers=[1, 3], random_state=0)
    ensemble = ProbeEnsemble.bootstrap(base, n_resamples=6, random_state=13)
    assert all(p is not base and not hasattr(p, "classifier_") for p in ensemble.probes_)
    ensemble.fit(pos, neg)
    assert calls == [(26, [1, 3])], "one extraction pass"
    assert not hasattr(base, "classifier_"), "the base probe is copied, not fitted"
    draws, retries = bootstrap_indices(13, y, 6)
    assert retries > 0, "this seed exercises a redraw"
    assert ensemble.resample_indices_ is not None
    for member, idx, got in zip(ensemble.probes_, draws, ensemble.resample_indices_, strict=True):
        np.testing.assert_array_equal(got, idx)
        hand = Probe(model=model, layers=[1, 3], random_state=0).fit([prompts[i] for i in idx], y[idx])
        np.testing.assert_allclose(member.classifier_.coef_, hand.classifier_.coef_, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(member.predict_proba(TEST), hand.predict_proba(TEST), rtol=1e-6, atol=1e-9)
    coefs = [m.classifier_.coef_ for m in ensemble.probes_]
    assert not np.allclose(coefs[0], coefs[1]), "different resamples, different members"
    # predict_std: numpy over the members' own probabilities; every query is one more pass, over the new prompts.
    stds = np.std(np.stack([m.predict_proba(TEST)[:, 1] for m in ensemble.probes_]), axis=0)
    np.testing.assert_allclose(ensemble.prediction_std(TEST), stds, rtol=1e-9, atol=1e-12)
    assert stds.max() > 0
    # The same seed gives the same ensemble; sample weights are resampled with the rows.
    w = np.linspace(0.5, 2.0, 26)
    weighted = ProbeEnsemble.bootstrap(base, n_resamples=2, random_state=13).fit(prompts, y, sample_weight=w)
    for member, idx in zip(weighted.probes_, draws[:2], strict=True):
        hand = Probe(model=model, layers=[1, 3], random_state=0).fit(
            [prompts[i] for i in idx], y[idx], sample_weight=w[idx]
        )
        np.testing.assert_allclose(member.classifier_.coef_, hand.classifier_.coef_, rtol=1e-6, atol=1e-9)
    assert calls[1:] == [(len(TEST), [1, 3])], "hand fits and the second ensemble read the cache"


def test_bootstrap_with_token_pooling_resamples_each_prompts_tokens() -> None:
    model = tiny_model("llama", padding_side="left")
    base = Probe(model=model, layers=2, pooling="all", random_state=0)
    ensemble = ProbeEnsemble.bootstrap(base, n_resamples=2, random_state=3).fit(TRAIN_POS, TRAIN_NEG)
    prompts = TRAIN_POS + TRAIN_NEG
    y = np.r_[np.ones(len(TRAIN_POS), dtype=int), np.zeros(len(TRAIN_NEG), dtype=int)]
    draws, _ = bootstrap_indices(3, y, 2)
    for member, idx in zip(ensemble.probes_, draws, strict=True):
        hand = Probe(model=model, layers=2, pooling="all", random_state=0).fit([prompts[i] for i in idx], y[idx])
        np.testing.assert_allclose(member.classifier_.coef_, hand.classifier_.coef_, rtol=1e-6, atol=1e-9)
    proba = ensemble.predict_proba(TEST[:4])
    expected = 0.5 * ensemble.probes_[0].predict_proba(TEST[:4]) + 0.5 * ensemble.probes_[1].predict_proba(TEST[:4])
    assert proba.ndim == 3
    np.testing.assert_allclose(proba, expected, equal_nan=True)
    # One label per prompt: the weighted mean over members of each member's mean token probability.
    means = [np.nanmean(m.predict_proba(TEST[:4]), axis=1) for m in ensemble.probes_]
    np.testing.assert_array_equal(ensemble.predict(TEST[:4]), np.argmax(0.5 * means[0] + 0.5 * means[1], axis=1))


def test_group_balanced_draws_take_ceil_n_over_g_from_each_group(monkeypatch: pytest.MonkeyPatch) -> None:
    from lmprobe.ensemble import ProbeEnsemble as LmEnsemble

    model = tiny_model("llama")
    prompts = TRAIN_POS + TRAIN_NEG
    y = np.r_[np.ones(len(TRAIN_POS), dtype=int), np.zeros(len(TRAIN_NEG), dtype=int)]
    names = ("north", "south", "east", "west", "centre")
    groups = np.repeat(names, [20, 12, 8, 5, 3])  # 48 prompts, 5 groups of unequal sizes
    np.random.default_rng(1).shuffle(groups)
    per_group = math.ceil(48 / 5)
    assert per_group == 10
    base = Probe(model=model, layers=2, random_state=0)
    for w in (None, np.linspace(0.1, 1.0, 48)):
        ensemble = ProbeEnsemble.bootstrap(base, n_resamples=3, random_state=11)
        ensemble.fit(TRAIN_POS, TRAIN_NEG, groups=groups, sample_weight=w)
        rng = np.random.default_rng(11)
        assert ensemble.resample_indices_ is not None
        for member, got in zip(ensemble.probes_, ensemble.resample_indices_, strict=True):
            assert Counter(groups[got].tolist()) == dict.fromkeys(names, per_group)
            while True:  # lmprobe's own draw, with its retry rule
                idx = LmEnsemble._group_balanced_resample(groups, y, w, rng)
                if len(np.unique(y[idx])) == 2:
                    break
            np.testing.assert_array_equal(got, idx)
            hand = Probe(model=model, layers=2, random_state=0).fit(
                [prompts[i] for i in idx], y[idx], sample_weight=None if w is None else w[idx]
            )
            np.testing.assert_allclose(member.classifier_.coef_, hand.classifier_.coef_, rtol=1e-6, atol=1e-9)
    # Positives with no weight are never drawn: after MAX_DRAWS draws, a clear error.
    w = np.r_[np.zeros(len(TRAIN_POS)), np.ones(len(TRAIN_NEG))]
    with pytest.raises(
        InvalidInputError, match=f"no group-balanced bootstrap resample held every class .* {MAX_DRAWS}"
    ):
        ProbeEnsemble.bootstrap(base, n_resamples=2, random_state=0).fit(
            TRAIN_POS, TRAIN_NEG, groups=np.arange(48) % 2, sample_weight=w
        )
    with pytest.raises(InvalidInputError, match="sample_weight sums to 0 in group 'b'"):
        ProbeEnsemble.bootstrap(base, n_resamples=2).fit(
            TRAIN_POS, TRAIN_NEG, groups=["a"] * 24 + ["b"] * 24, sample_weight=w[::-1]
        )
    with pytest.warns(UserWarning, match="groups only shape the draws of a bootstrap ensemble"):
        ProbeEnsemble([Probe(model=model, layers=2)]).fit(TRAIN_POS, TRAIN_NEG, groups=groups)


# ---------------------------------------------------------------------------------------------- extraction


def test_one_extraction_pass_for_every_members_layers_and_poolings(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model("opt")
    calls = spy_forward(monkeypatch)
    pos, neg, test = fresh(TRAIN_POS, "union"), fresh(TRAIN_NEG, "union"), fresh(TEST, "union")
    configs = [
        {"layers": 0},
        {"layers": [1, 3], "pooling": "mean"},
        {"layers": 2, "train_pooling": "last_token", "inference_pooling": "max"},
        {"layers": 0, "classifier": "lda", "classifier_kwargs": {"shrinkage": 0.1}},
    ]
    ensemble = ProbeEnsemble.from_configs(model, configs, random_state=0).fit(pos, neg)
    assert calls == [(48, [0, 1, 2, 3])], "one pass over the union of the layers (with tokens, for max pooling)"
    proba = ensemble.predict_proba(test)
    ensemble.predict(test)
    ensemble.prediction_std(test)
    assert calls[1:] == [(48, [0, 1, 2, 3])], "one pass for the test prompts, then the cache"
    alone = [Probe(model=model, random_state=0, **cfg).fit(pos, neg).predict_proba(test) for cfg in configs]
    np.testing.assert_allclose(proba, np.mean(alone, axis=0), rtol=1e-6, atol=1e-9)
    assert len(calls) == 2


# ---------------------------------------------------------------------------------------------- lmprobe


def test_matches_lmprobes_bootstrap_and_loads_its_pickle(
    exact_cache: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lmprobe
    from lmprobe.ensemble import ProbeEnsemble as LmEnsemble

    monkeypatch.setenv("LMPROBE_CACHE_DIR", str(tmp_path / "lm"))
    lmprobe.set_cache_backend(None)
    model = str(tiny_model("llama"))
    kwargs: dict[str, Any] = {"model": model, "layers": [1, 3], "device": "cpu", "random_state": 0}
    theirs = LmEnsemble.bootstrap(lmprobe.Probe(**kwargs), n_resamples=3, random_state=5).fit(TRAIN_POS, TRAIN_NEG)
    ours = ProbeEnsemble.bootstrap(Probe(**kwargs), n_resamples=3, random_state=5).fit(TRAIN_POS, TRAIN_NEG)
    np.testing.assert_allclose(ours.predict_proba(TEST), theirs.predict_proba(TEST), atol=1e-3)
    np.testing.assert_allclose(ours.prediction_std(TEST), theirs.prediction_std(TEST), atol=1e-3)
    assert ours.score(TEST, TEST_Y) == theirs.score(TEST, TEST_Y)
    theirs.save(str(tmp_path / "lm.pkl"))
    with pytest.raises(FastprobeError, match="is a pickle .*pass trust_pickle=True"):
        ProbeEnsemble.load(tmp_path / "lm.pkl")
    loaded = ProbeEnsemble.load(tmp_path / "lm.pkl", trust_pickle=True)
    assert len(loaded) == 3 and loaded.voting == "soft"
    np.testing.assert_allclose(loaded.predict_proba(TEST), theirs.predict_proba(TEST), atol=1e-6)


# ---------------------------------------------------------------------------------------------- save and load


def test_save_load_round_trip_runs_no_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors import safe_open

    model = tiny_model("llama")
    base = Probe(model=model, layers=[0, 2], classifier_kwargs={"C": 0.5}, random_state=0)
    ensemble = ProbeEnsemble.bootstrap(base, n_resamples=3, random_state=2, weights=[1, 2, 1], voting="hard")
    ensemble.fit(TRAIN_POS, TRAIN_NEG)
    ensemble.evaluate(TEST, TEST_Y)
    path = tmp_path / "ensemble.fp"
    ensemble.save(path)
    with safe_open(str(path), "np") as f:  # a safetensors file, not a pickle
        assert f.metadata()["format"] == "fastprobe.probe"

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("loading unpickled something")

    with monkeypatch.context() as m:
        m.setattr(pickle, "loads", refuse)
        m.setattr(pickle, "load", refuse)
        loaded = ProbeEnsemble.load(path)
    assert loaded.voting == "hard" and loaded.random_state == 2 and loaded.is_bootstrap
    np.testing.assert_array_equal(loaded.weights_, ensemble.weights_)
    assert loaded.resample_indices_ is not None and ensemble.resample_indices_ is not None
    for a, b in zip(loaded.resample_indices_, ensemble.resample_indices_, strict=True):
        np.testing.assert_array_equal(a, b)
    assert loaded.evaluation_results_ == ensemble.evaluation_results_
    for a, b in zip(loaded.probes_, ensemble.probes_, strict=True):
        assert a.get_params() == b.get_params()
        np.testing.assert_array_equal(a.classifier_.coef_, b.classifier_.coef_)
    np.testing.assert_array_equal(loaded.predict(TEST), ensemble.predict(TEST))
    np.testing.assert_array_equal(loaded.predict_proba(TEST), ensemble.predict_proba(TEST))
    moved = ProbeEnsemble.load(path, model=tiny_model("llama"))
    np.testing.assert_array_equal(moved.predict(TEST), ensemble.predict(TEST))
    # A refit from the loaded ensemble repeats the same draws.
    loaded.fit(TRAIN_POS, TRAIN_NEG)
    np.testing.assert_allclose(loaded.predict_proba(TEST), ensemble.predict_proba(TEST), rtol=1e-9)


def test_load_refuses_code_single_probes_and_untrusted_pickles(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    evil = {"__estimator__": "os:system", "state": {"__dict__": {}}}
    member = {"__dict__": {"params": {"__dict__": {}}, "fitted": {"__dict__": {"classifier_": evil}}}}
    state = {"__dict__": {"kind": "ProbeEnsemble", "version": 1, "voting": "soft", "members": [member]}}
    save_file(
        {"a0": np.zeros(1)},
        str(tmp_path / "evil.fp"),
        metadata={"format": "fastprobe.probe", "state": json.dumps(state)},
    )
    with pytest.raises(FastprobeError, match="refusing to load class 'os:system'"):
        ProbeEnsemble.load(tmp_path / "evil.fp")
    model = tiny_model("llama")
    Probe(model=model, layers=1).fit(TRAIN_POS, TRAIN_NEG).save(tmp_path / "single.fp")
    with pytest.raises(FastprobeError, match="holds a single probe, not a ProbeEnsemble; load it with Probe.load"):
        ProbeEnsemble.load(tmp_path / "single.fp")
    custom = ProbeEnsemble([Probe(model=model, layers=1, classifier=MyClassifier())]).fit(TRAIN_POS, TRAIN_NEG)
    custom.save(tmp_path / "custom.fp")
    with pytest.raises(
        FastprobeError, match=r"probe\.members\[0\]\.params\.classifier \(a MyClassifier\) is stored as a pickle"
    ):
        ProbeEnsemble.load(tmp_path / "custom.fp")
    trusted = ProbeEnsemble.load(tmp_path / "custom.fp", trust_pickle=True)
    np.testing.assert_allclose(trusted.predict_proba(TEST), custom.predict_proba(TEST))
    with pytest.raises(NotFittedError, match="has not been fitted yet"):
        ProbeEnsemble([Probe(model=model)]).save(tmp_path / "unfitted.fp")


class MyClassifier(ClassifierMixin, BaseEstimator):
    """A user's own estimator (not scikit-learn's or fastprobe's): saved as a pickle."""

    def fit(self, X: Any, y: Any) -> MyClassifier:
        self.inner_ = LogisticRegression().fit(X, y)
        self.classes_ = self.inner_.classes_
        return self

    def predict(self, X: Any) -> Any:
        return self.inner_.predict(X)

    def predict_proba(self, X: Any) -> Any:
        return self.inner_.predict_proba(X)


# ---------------------------------------------------------------------------------------------- bad input


def test_bad_input() -> None:
    model = tiny_model("llama")
    probe = Probe(model=model, layers=1)
    with pytest.raises(InvalidInputError, match="probes must be a non-empty list of Probe objects; got an empty list"):
        ProbeEnsemble([])
    with pytest.raises(InvalidInputError, match="probes must be a list of Probe objects; got Probe"):
        ProbeEnsemble(probe)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"probes\[1\] must be a fastprobe Probe; got str"):
        ProbeEnsemble([probe, "probe"])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match=r"probes\[0\] and probes\[1\] are the same Probe object"):
        ProbeEnsemble([probe, probe])
    with pytest.raises(InvalidInputError, match=r"members must be classifiers; probes\[1\] has task='regression'"):
        ProbeEnsemble([probe, Probe(model=model, task="regression")])
    with pytest.raises(
        ShapeMismatchError,
        match=r"weights length must match the number of probes: expected 2 numbers, got shape \(3,\)",
    ):
        ProbeEnsemble([probe, Probe(model=model)], weights=[1, 2, 3])
    with pytest.raises(InvalidInputError, match=r"weights must be >= 0; got \[1.0, -0.5\]"):
        ProbeEnsemble([probe, Probe(model=model)], weights=[1, -0.5])
    with pytest.raises(InvalidInputError, match=r"weights must sum to a positive number; got \[0.0, 0.0\]"):
        ProbeEnsemble([probe, Probe(model=model)], weights=[0, 0])
    with pytest.raises(InvalidInputError, match="weights must be finite"):
        ProbeEnsemble([probe, Probe(model=model)], weights=[1, float("nan")])
    with pytest.raises(UnknownOptionError, match="Unknown voting strategy 'majority'; expected one of: soft, hard"):
        ProbeEnsemble([probe], voting="majority")
    other = tiny_model("llama", seed=1)
    with pytest.raises(
        InvalidInputError, match=r"must probe the same model; probes\[0\] is on .* but probes\[1\] is on"
    ):
        ProbeEnsemble([probe, Probe(model=other)])
    fitted_a = Probe(model=model, layers=1).fit(TRAIN_POS, TRAIN_NEG)
    fitted_b = Probe(model=other, layers=1).fit(TRAIN_POS, TRAIN_NEG)
    with pytest.raises(InvalidInputError, match=r"probes\[0\] was fitted on .* but probes\[1\] on"):
        ProbeEnsemble([fitted_a, fitted_b])
    assert len(ProbeEnsemble([Probe(model=Path(model)), Probe(model=str(model))])) == 2, "the same path"
    with pytest.raises(NotFittedError, match="ProbeEnsemble has not been fitted yet \\(every member unfitted\\)"):
        ProbeEnsemble([Probe(model=model), Probe(model=model)]).predict(TEST)
    with pytest.raises(NotFittedError, match=r"not been fitted yet \(probes \[1\] unfitted\)"):
        ProbeEnsemble([fitted_a, Probe(model=model)]).predict_proba(TEST)
    with pytest.raises(InvalidInputError, match="n_resamples must be an integer >= 1; got 0"):
        ProbeEnsemble.bootstrap(probe, n_resamples=0)
    with pytest.raises(InvalidInputError, match="n_resamples must be an integer >= 1; got 2.5"):
        ProbeEnsemble.bootstrap(probe, n_resamples=2.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="random_state must be None, an int >= 0 or a numpy Generator"):
        ProbeEnsemble.bootstrap(probe, random_state="seed")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="base_probe must be a fastprobe Probe; got list"):
        ProbeEnsemble.bootstrap([probe])  # type: ignore[arg-type]
    with pytest.raises(
        ShapeMismatchError,
        match=r"groups length must match the training prompts: expected one group label per prompt \(48,\), got "
        r"shape \(3,\)",
    ):
        ProbeEnsemble.bootstrap(probe, n_resamples=2).fit(TRAIN_POS, TRAIN_NEG, groups=[0, 1, 0])
    with pytest.raises(
        ShapeMismatchError,
        match=r"sample_weight length must match the training prompts: expected shape \(48,\), got \(2,\)",
    ):
        ProbeEnsemble.bootstrap(probe, n_resamples=2).fit(TRAIN_POS, TRAIN_NEG, sample_weight=[1, 2])
    with pytest.raises(InvalidInputError, match="single class"):
        ProbeEnsemble.bootstrap(probe, n_resamples=2).fit(TRAIN_POS, [1] * len(TRAIN_POS))
    with pytest.raises(
        UnknownOptionError, match=r"configs\[1\]: unknown Probe option 'depth'; expected some of: layers"
    ):
        ProbeEnsemble.from_configs(model, [{"layers": 0}, {"depth": 2}])
    with pytest.raises(UnknownOptionError, match="shared options: unknown Probe option 'colour'"):
        ProbeEnsemble.from_configs(model, [{"layers": 0}], colour="red")
    with pytest.raises(InvalidInputError, match=r"configs\[0\] sets 'model'"):
        ProbeEnsemble.from_configs(model, [{"model": other}])
    with pytest.raises(InvalidInputError, match="configs must be a non-empty list of dicts"):
        ProbeEnsemble.from_configs(model, [])
    ridge = ProbeEnsemble.from_configs(model, [{"layers": 0, "classifier": "ridge"}, {"layers": 1}])
    with pytest.raises(
        UnsupportedMethodError, match=r"soft voting averages class probabilities, but probes\[0\]'s classifier"
    ):
        ridge.fit(TRAIN_POS, TRAIN_NEG)
    three = Probe(model=model, layers=1).fit(TRAIN_POS + TRAIN_NEG, np.arange(48) % 3)
    with pytest.raises(
        InvalidInputError, match=r"must share their classes; probes\[0\] has \[0, 1\] but probes\[1\] has \[0, 1, 2\]"
    ):
        ProbeEnsemble([fitted_a, three]).predict(TEST)
    with pytest.raises(ShapeMismatchError, match=r"got 48 prompts but labels of shape \(2,\)"):
        ProbeEnsemble([fitted_a]).score(TEST, [0, 1])
    with pytest.raises(InvalidInputError, match="prompts must be a list of strings, not str"):
        ProbeEnsemble([fitted_a]).predict("one prompt")
    with pytest.raises(InvalidInputError, match="prompts is empty"):
        ProbeEnsemble([fitted_a]).predict([])


# ---------------------------------------------------------------------------------------------- real model

DATA = Path(os.environ.get("FASTPROBE_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def cities() -> tuple[list[str], list[str], list[str], np.ndarray]:
    """The seeded 1,000 / 496 cities split (or, without ../shared, the built-in city statements split alike)."""
    if (DATA / "cities.csv").is_file():
        with (DATA / "cities.csv").open() as f:
            rows = [(r["statement"], int(r["label"])) for r in csv.DictReader(f)]
    else:
        from fastprobe.datasets import city_facts

        facts = city_facts(seed=0)
        rows = [(s, int(v)) for s, v in zip(facts.statements, facts.labels, strict=True)]
    order = np.random.default_rng(0).permutation(len(rows))
    n_train = round(len(rows) * 1000 / 1496)
    train, test = [rows[i] for i in order[:n_train]], [rows[i] for i in order[n_train:]]
    pos, neg = [s for s, y in train if y == 1], [s for s, y in train if y == 0]
    return pos, neg, [s for s, _ in test], np.array([y for _, y in test])


def test_bootstrap_ensemble_on_smollm2_cities(smollm2_path: Path) -> None:
    """On real data the ensemble is as accurate as one probe, and its members disagree most where it errs."""
    pos, neg, test, labels = cities()
    base = Probe(model=smollm2_path, layers=16, device="cpu", random_state=0)
    single = Probe(model=smollm2_path, layers=16, device="cpu", random_state=0).fit(pos, neg).score(test, labels)
    ensemble = ProbeEnsemble.bootstrap(base, n_resamples=5, random_state=0).fit(pos, neg)
    accuracy = ensemble.score(test, labels)
    majority = max(labels.mean(), 1 - labels.mean())
    assert accuracy >= majority + 0.2 and abs(accuracy - single) <= 0.03, (accuracy, single, majority)
    std = ensemble.prediction_std(test)
    wrong = ensemble.predict(test) != labels
    assert std[wrong].mean() > std[~wrong].mean(), (std[wrong].mean(), std[~wrong].mean())
