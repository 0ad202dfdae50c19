"""Layer importance and automatic layer selection: the group-lasso solver against a numpy reference, importance on
synthetic layers where the informative one is known, and ``layers="auto"`` / ``"fast_auto"`` against the same steps
done by hand."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fastprobe import InvalidInputError, NotFittedError, Probe, UnknownOptionError, UnsupportedMethodError
from fastprobe.estimators import GroupLassoProbe, LayerScaler
from fastprobe.layers import resolve_auto_candidates
from fastprobe.testing import tiny_model

SUBJECTS = ["I", "We", "They", "You", "People", "Tourists", "Students", "Friends"]
VERBS = ["saw", "like", "love", "visited", "remember", "know"]
POS = [f"{s} {v} Paris" for s in SUBJECTS for v in VERBS]
NEG = [f"{s} {v} Tokyo" for s in SUBJECTS for v in VERBS]


def reference_group_lasso(
    X: np.ndarray, y: np.ndarray, groups: list[int], alpha: float, w: np.ndarray | None = None, iters: int = 40000
) -> tuple[np.ndarray, float]:
    """Plain proximal gradient (fixed step 1/L) on the same objective, written directly from its definition."""
    n, d = X.shape
    w = np.ones(n) if w is None else w
    A = np.column_stack([X.astype(np.float64), np.ones(n)])
    lip = np.linalg.norm(A * np.sqrt(w)[:, None], 2) ** 2 / (4 * w.sum())
    theta = np.zeros(d + 1)
    for _ in range(iters):
        z = A @ theta
        grad = A.T @ (w * (1 / (1 + np.exp(-z)) - y)) / w.sum()
        theta = theta - grad / lip
        for a, b in itertools.pairwise(groups):
            nrm = np.linalg.norm(theta[a:b])
            theta[a:b] *= max(0.0, 1 - alpha / lip / nrm) if nrm > 0 else 0.0
    return theta[:d], theta[d]


def synthetic_layers(n: int, informative: int, n_layers: int = 3, hidden: int = 6, seed: int = 0) -> Any:
    """``n_layers`` blocks of features side by side; only block ``informative`` carries the label."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_layers * hidden)).astype(np.float32)
    signal = X[:, informative * hidden : informative * hidden + 2].sum(axis=1)
    y = (signal + 0.3 * rng.standard_normal(n) > 0).astype(int)
    return X, y


def test_group_lasso_matches_a_proximal_gradient_reference_and_its_optimality_conditions() -> None:
    X, y = synthetic_layers(150, informative=1, hidden=4)
    groups = [0, 4, 8, 12]
    for alpha in (0.005, 0.05):
        ours = GroupLassoProbe(alpha=alpha, n_groups=3, tol=1e-10, max_iter=20000).fit(X, y)
        coef, intercept = reference_group_lasso(X, y, groups, alpha)
        np.testing.assert_allclose(ours.coef_[0], coef, atol=2e-6)
        np.testing.assert_allclose(ours.intercept_[0], intercept, atol=2e-6)
        # Optimality, checked independently: for a kept group the gradient balances the penalty; a dropped group's
        # gradient is within the penalty's reach.
        z = X.astype(np.float64) @ ours.coef_[0] + ours.intercept_[0]
        grad = X.T.astype(np.float64) @ (1 / (1 + np.exp(-z)) - y) / len(y)
        for g, (a, b) in enumerate(itertools.pairwise(groups)):
            beta = ours.coef_[0, a:b]
            if ours.group_norms_[g] > 0:
                np.testing.assert_allclose(grad[a:b] + alpha * beta / np.linalg.norm(beta), 0, atol=1e-8)
            else:
                assert np.linalg.norm(grad[a:b]) <= alpha + 1e-8
    strong = GroupLassoProbe(alpha=0.05, n_groups=3).fit(X, y)
    assert strong.selected_groups_ == [1], strong.group_norms_
    assert strong.group_norms_[0] == 0.0 and strong.group_norms_[2] == 0.0
    assert strong.score(X, y) > 0.85


def test_group_lasso_weights_equal_repeated_rows_and_labels_keep_their_type() -> None:
    X, y = synthetic_layers(80, informative=2, hidden=3, seed=3)
    counts = np.random.default_rng(1).integers(0, 3, size=len(y))
    labels = np.where(y == 1, "yes", "no")
    weighted = GroupLassoProbe(alpha=0.01, n_groups=3, tol=1e-10, max_iter=20000).fit(X, labels, sample_weight=counts)
    repeated = GroupLassoProbe(alpha=0.01, n_groups=3, tol=1e-10, max_iter=20000).fit(
        np.repeat(X, counts, axis=0), np.repeat(labels, counts)
    )
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, atol=1e-7)
    assert set(weighted.predict(X)) <= {"yes", "no"}
    np.testing.assert_allclose(weighted.predict_proba(X).sum(axis=1), 1.0)


def test_group_lasso_bad_input() -> None:
    X, y = synthetic_layers(30, informative=0)
    with pytest.raises(InvalidInputError, match=r"n_groups must be a positive integer that divides .* \(18\); got 4"):
        GroupLassoProbe(n_groups=4).fit(X, y)
    with pytest.raises(InvalidInputError, match="binary classifier; y has 3 classes"):
        GroupLassoProbe(n_groups=3).fit(X, np.arange(30) % 3)
    with pytest.raises(InvalidInputError, match="alpha must be finite and >= 0; got -1"):
        GroupLassoProbe(alpha=-1.0, n_groups=3).fit(X, y)


@pytest.mark.parametrize("informative", [0, 1, 2])
def test_layer_importance_picks_the_informative_layer(informative: int) -> None:
    X, y = synthetic_layers(400, informative=informative)
    probe = Probe(random_state=0).fit_from_activations(X, y, n_layers=3)
    probe.layers_ = [4, 9, 14]
    coef = np.abs(probe.classifier_.coef_[0]).reshape(3, -1)
    expected = {
        "l2": np.sqrt((coef**2).sum(axis=1)),
        "l1": coef.sum(axis=1),
        "mean_abs": coef.mean(axis=1),
        "max_abs": coef.max(axis=1),
    }
    for metric, raw in expected.items():
        importance = probe.compute_layer_importance(metric=metric)
        np.testing.assert_allclose(importance, raw / raw.sum())
        assert int(np.argmax(importance)) == informative
        np.testing.assert_allclose(probe.compute_layer_importance(metric, normalize=False), raw)
    assert probe.candidate_layers_ == [4, 9, 14]
    np.testing.assert_allclose(probe.layer_importances_, expected["max_abs"])


def test_layer_importance_errors() -> None:
    X, y = synthetic_layers(60, informative=0)
    with pytest.raises(NotFittedError):
        Probe().compute_layer_importance()
    probe = Probe(random_state=0).fit_from_activations(X, y, n_layers=3)
    with pytest.raises(UnknownOptionError, match="Unknown metric 'l3' for layer importance; expected one of: l2, l1"):
        probe.compute_layer_importance("l3")
    from sklearn.neighbors import KNeighborsClassifier

    knn = Probe(classifier=KNeighborsClassifier()).fit_from_activations(X, y, n_layers=3)
    with pytest.raises(
        UnsupportedMethodError, match="needs a linear classifier with coef_; KNeighborsClassifier has none"
    ):
        knn.compute_layer_importance()
    pca = Probe(preprocessing="pca:4", random_state=0).fit_from_activations(X, y, n_layers=3)
    with pytest.raises(InvalidInputError, match="PCA preprocessing mixes the layers"):
        pca.compute_layer_importance()


def test_auto_candidates() -> None:
    assert resolve_auto_candidates(None, 30) == [7, 14, 21]
    assert resolve_auto_candidates([0.0, 1.0, 0.5], 5) == [0, 2, 4]
    assert resolve_auto_candidates([3, -1, 3], 6) == [3, 5]
    with pytest.raises(InvalidInputError, match="mixes fractions with other values"):
        resolve_auto_candidates([0.5, 3], 6)
    with pytest.raises(InvalidInputError, match="non-empty list"):
        resolve_auto_candidates([], 6)


def hand_features(model: Path, prompts: list[str], layers: list[int]) -> np.ndarray:
    """Last-token features at ``layers``, read from transformers' hidden states, one prompt at a time."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    net = AutoModel.from_pretrained(model).eval()
    rows = []
    with torch.no_grad():
        for p in prompts:
            hs = net(**tok(p, return_tensors="pt"), output_hidden_states=True).hidden_states
            rows.append(np.concatenate([hs[layer + 1][0, -1].numpy() for layer in layers]))
    return np.asarray(rows, dtype=np.float32)


def test_auto_selects_with_the_group_lasso_then_refits_on_the_selected_layers(exact_cache: Any) -> None:
    model = tiny_model("llama")
    candidates = [0, 1, 2, 3]
    prompts, y = POS + NEG, np.r_[np.ones(len(POS), int), np.zeros(len(NEG), int)]
    auto = Probe(model=model, layers="auto", auto_candidates=candidates, auto_alpha=0.02, random_state=0)
    auto.fit(POS, NEG)
    # The same steps by hand: per-layer scaling of the candidates, the group lasso, a probe on what it kept.
    X = hand_features(model, prompts, candidates)
    lasso = GroupLassoProbe(alpha=0.02, n_groups=4).fit(LayerScaler(4).fit_transform(X), y)
    np.testing.assert_allclose(auto.layer_importances_, lasso.group_norms_, rtol=2e-3, atol=1e-6)  # both stop at tol
    expected = [candidates[g] for g in lasso.selected_groups_]
    assert auto.selected_layers_ == auto.layers_ == expected and 0 < len(expected) < 4
    assert auto.candidate_layers_ == candidates
    plain = Probe(model=model, layers=expected, random_state=0).fit(POS, NEG)
    np.testing.assert_allclose(auto.classifier_.coef_, plain.classifier_.coef_, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(auto.predict(prompts), plain.predict(prompts))
    # Too strong a penalty keeps nothing: every candidate, with a warning.
    with pytest.warns(UserWarning, match="the group lasso kept no layer at auto_alpha=5"):
        every = Probe(model=model, layers="auto", auto_candidates=candidates, auto_alpha=5.0).fit(POS, NEG)
    assert every.layers_ == candidates


def test_fast_auto_keeps_the_layers_with_the_largest_coefficient_norm(exact_cache: Any) -> None:
    model = tiny_model("llama")
    fast = Probe(model=model, layers="fast_auto", auto_candidates=[0, 1, 2, 3], fast_auto_top_k=2, random_state=0)
    fast.fit(POS, NEG)
    full = Probe(model=model, layers=[0, 1, 2, 3], random_state=0).fit(POS, NEG)
    norms = np.linalg.norm(full.classifier_.coef_[0].reshape(4, -1), axis=1)
    np.testing.assert_allclose(fast.layer_importances_, norms, rtol=1e-6)
    top = sorted(int(i) for i in np.argsort(-norms)[:2])
    assert fast.selected_layers_ == fast.layers_ == top
    refit = Probe(model=model, layers=top, random_state=0).fit(POS, NEG)
    np.testing.assert_allclose(fast.classifier_.coef_, refit.classifier_.coef_, rtol=1e-6, atol=1e-9)
    default_k = Probe(model=model, layers="fast_auto", auto_candidates=[0, 1, 2, 3], random_state=0).fit(POS, NEG)
    assert len(default_k.layers_) == 2


def test_auto_bad_input_and_save_load(tmp_path: Path) -> None:
    model = tiny_model("llama")
    with pytest.raises(InvalidInputError, match=r"needs at least two; auto_candidates=\[2\] gives \[2\]"):
        Probe(model=model, layers="auto", auto_candidates=[2]).fit(POS, NEG)
    with pytest.raises(InvalidInputError, match="auto_alpha must be a finite number >= 0; got -0.1"):
        Probe(model=model, layers="auto", auto_alpha=-0.1).fit(POS, NEG)
    with pytest.raises(InvalidInputError, match="fast_auto_top_k must be None or an integer >= 1; got 0"):
        Probe(model=model, layers="fast_auto", fast_auto_top_k=0).fit(POS, NEG)
    with pytest.raises(InvalidInputError, match="needs two classes; use layers='fast_auto'"):
        Probe(model=model, layers="auto", auto_candidates=[0, 1], task="regression").fit(POS + NEG, np.arange(96.0))
    probe = Probe(model=model, layers="auto", auto_candidates=[0, 1, 3], auto_alpha=0.02, random_state=0)
    probe.fit(POS, NEG)
    probe.save(tmp_path / "auto.fp")
    loaded = Probe.load(tmp_path / "auto.fp")
    assert loaded.selected_layers_ == probe.selected_layers_ and loaded.layers_ == probe.layers_
    np.testing.assert_array_equal(loaded.layer_importances_, probe.layer_importances_)
    np.testing.assert_array_equal(loaded.predict_proba(POS[:5]), probe.predict_proba(POS[:5]))


def test_plot_layer_importance_draws_one_bar_per_candidate() -> None:
    import matplotlib

    matplotlib.use("Agg")
    X, y = synthetic_layers(200, informative=1)
    probe = Probe(random_state=0).fit_from_activations(X, y, n_layers=3)
    probe.layers_ = [2, 5, 8]
    fig, ax = probe.plot_layer_importance()
    heights = [bar.get_height() for bar in ax.patches]
    np.testing.assert_allclose(heights, probe.layer_importances_)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "5", "8"]
    import matplotlib.pyplot as plt

    plt.close(fig)
