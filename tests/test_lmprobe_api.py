"""lmprobe's documented names at fastprobe's mirrored module paths, with lmprobe's signatures, errors and meaning.

References: lmprobe 0.10.3 itself (installed as a dev dependency) for names and signatures; transformers' forward
pass for activations; scikit-learn for the scaler.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import pathlib

import numpy as np
import pytest

import fastprobe
from fastprobe import (
    ArgumentTypeError,
    InvalidEstimatorError,
    MissingDependencyError,
    NotFittedError,
    Probe,
    UnknownOptionError,
    UnsupportedMethodError,
)
from fastprobe.testing import tiny_model

#: lmprobe's API reference: module -> names it documents there (docs/reference/*.md of lmprobe 0.10.3).
DOCUMENTED = {
    "probe": ["Probe", "LayerSweepResult"],
    "ensemble": ["ProbeEnsemble"],
    "baseline": ["BaselineProbe"],
    "activation_baseline": ["ActivationBaseline"],
    "battery": ["BaselineBattery", "BaselineResults"],
    "unified_cache": ["UnifiedCache", "WarmupStats"],
    "pooling": [
        "parse_pooling_strategy",
        "get_pooling_fn",
        "resolve_pooling",
        "pool_last_token",
        "pool_mean",
        "pool_first_token",
        "pool_max",
        "pool_min",
        "pool_all",
        "reduce_scores",
    ],
    "classifiers": [
        "resolve_classifier",
        "build_classifier",
        "validate_classifier",
        "MassMeanClassifier",
        "EnsembleClassifier",
        "GroupLassoClassifier",
    ],
    "cache": [
        "set_cache_backend",
        "set_cache_limit",
        "set_cache_dtype",
        "enable_cache_logging",
        "cache_info",
        "CacheInfo",
        "ModelCacheInfo",
        "discover_cached",
        "CachedPromptInfo",
        "clear_cache",
        "invalidate_extraction_cache",
        "CachedExtractor",
    ],
    "scaling": ["PerLayerScaler"],
}
DOCUMENTED_PAIRS = [(m, n) for m, names in DOCUMENTED.items() for n in names]
SUBJECTS = ["I", "We", "They", "You", "People", "Tourists"]
POS = [f"{s} saw Paris" for s in SUBJECTS] + [f"{s} like Paris" for s in SUBJECTS]
NEG = [f"{s} saw Tokyo" for s in SUBJECTS] + [f"{s} like Tokyo" for s in SUBJECTS]


def _parameters(obj: object) -> list[str]:
    target = obj.__init__ if inspect.isclass(obj) else obj  # type: ignore[misc]
    return [
        p.name
        for p in inspect.signature(target).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


@pytest.mark.parametrize(("module", "name"), DOCUMENTED_PAIRS, ids=[f"{m}.{n}" for m, n in DOCUMENTED_PAIRS])
def test_documented_names_exist_at_the_mirrored_path_with_lmprobe_parameters(module: str, name: str) -> None:
    ours = getattr(importlib.import_module(f"fastprobe.{module}"), name)
    theirs = getattr(importlib.import_module(f"lmprobe.{module}"), name)
    assert callable(ours)
    mine, lm = _parameters(ours), _parameters(theirs)
    # Every lmprobe parameter exists; those lmprobe takes positionally keep its order (fastprobe may add more after).
    assert set(lm) <= set(mine), f"missing {sorted(set(lm) - set(mine))}"
    positional = [
        p.name
        for p in inspect.signature(theirs.__init__ if inspect.isclass(theirs) else theirs).parameters.values()
        if p.kind == p.POSITIONAL_OR_KEYWORD and p.name != "self"
    ]
    assert mine[: len(positional)] == positional


def test_lmprobe_top_level_names_that_fastprobe_provides() -> None:
    import lmprobe

    provided = set(fastprobe.__all__)
    documented = {n for names in DOCUMENTED.values() for n in names} & set(lmprobe.__all__)
    assert documented <= provided
    for name in sorted(provided & set(lmprobe.__all__)):
        assert getattr(fastprobe, name) is not None
    with pytest.raises(AttributeError, match="module 'fastprobe' has no attribute 'nonexistent'"):
        _ = fastprobe.nonexistent  # type: ignore[attr-defined]


def test_error_types_follow_lmprobe() -> None:
    model = tiny_model("llama")
    with pytest.raises(RuntimeError, match="has not been fitted"):
        Probe(model=model).predict(["a"])
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, RuntimeError)
    ridge = Probe(classifier="ridge").fit_from_activations(np.random.default_rng(0).normal(size=(8, 4)), [0, 1] * 4)
    with pytest.raises(UnsupportedMethodError, match="does not support predict_proba") as info:
        ridge.predict_proba_from_activations(np.zeros((2, 4)))
    assert isinstance(info.value, TypeError | AttributeError | ValueError)
    with pytest.raises(UnknownOptionError, match="Unknown dtype 'float8'"):
        Probe(dtype="float8")
    with pytest.raises(ArgumentTypeError, match="Expected CacheBackend, str, or None") as type_info:
        fastprobe.set_cache_backend(42)  # type: ignore[arg-type]
    assert isinstance(type_info.value, TypeError)
    with pytest.raises(UnknownOptionError, match="Unsupported cache backend 's3://bucket/prefix'"):
        fastprobe.set_cache_backend("s3://bucket/prefix")
    assert issubclass(InvalidEstimatorError, TypeError) and issubclass(MissingDependencyError, ImportError)


def test_single_layer_probes_standardize_with_scikit_learn_and_several_layers_per_layer() -> None:
    from sklearn.preprocessing import StandardScaler

    from fastprobe.scaling import PerLayerScaler

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 12)).astype(np.float32) * np.arange(1, 13, dtype=np.float32)
    y = np.r_[np.zeros(20, int), np.ones(20, int)]
    one = Probe(random_state=0).fit_from_activations(X, y)
    assert type(one.scaler_) is StandardScaler
    np.testing.assert_allclose(one.scaler_.mean_, StandardScaler().fit(X).mean_, rtol=1e-6)
    three = Probe(normalize_layers="per_layer", random_state=0).fit_from_activations(X, y, n_layers=3)
    assert isinstance(three.scaler_, PerLayerScaler) and three.scaler_.strategy == "per_layer"
    with pytest.warns(UserWarning, match="normalize_layers auto-disabled"):
        assert Probe(preprocessing="standard").fit_from_activations(X, y, n_layers=3).scaler_ is None


def test_profiling_records_the_sections_of_each_operation(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 8)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    assert fastprobe.is_profiling() is False
    probe = Probe(random_state=0).fit_from_activations(X, y)
    assert getattr(probe, "last_profile_", None) is None
    fastprobe.set_profiling(True)
    try:
        with caplog.at_level(logging.INFO, logger="fastprobe.profiling"):
            probe.fit_from_activations(X, y)
            fit_profile = probe.last_profile_
            probe.predict_proba_from_activations(X)
        assert {"total", "scale", "fit"} <= set(fit_profile)
        assert {"total", "transform", "predict"} <= set(probe.last_profile_)
        assert fit_profile["total"] >= fit_profile["fit"] > 0
        assert any("Probe.fit_from_activations" in r.message for r in caplog.records)
    finally:
        fastprobe.set_profiling(False)


def test_set_max_threads_bounds_torch_and_the_blas_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    before = torch.get_num_threads()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    try:
        fastprobe.set_max_threads(1)
        assert torch.get_num_threads() == 1
        assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["NUMEXPR_NUM_THREADS"] == "1"
    finally:
        torch.set_num_threads(before)
    with pytest.raises(fastprobe.InvalidInputError, match="integer >= 1; got 0"):
        fastprobe.set_max_threads(0)


def test_clear_model_cache_forgets_loaded_models() -> None:
    from fastprobe.extraction import load_model

    model = tiny_model("gpt2")
    first = load_model(model, device="cpu")
    assert load_model(model, device="cpu") is first
    fastprobe.clear_model_cache()
    assert load_model(model, device="cpu") is not first


def _hidden(model: pathlib.Path, prompts: list[str], layer: int) -> list[np.ndarray]:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    net = AutoModel.from_pretrained(model).eval()
    with torch.no_grad():
        return [
            net(**tok(p, return_tensors="pt"), output_hidden_states=True).hidden_states[layer + 1][0].numpy()
            for p in prompts
        ]


def test_cache_module_reads_and_extracts_like_lmprobe_documents(
    exact_cache: object, caplog: pytest.LogCaptureFixture
) -> None:
    from fastprobe.cache import (
        CachedExtractor,
        invalidate_extraction_cache,
        load_layer_across_prompts,
        load_layer_last_token,
    )

    model = tiny_model("llama")
    prompts = POS[:3] + NEG[:2]

    class Extractor:  # lmprobe's extractor object, as CachedExtractor reads it
        model_name = str(model)
        layer_indices = (2, 1)
        batch_size = 2
        device = "cpu"

    fastprobe.enable_cache_logging()
    with caplog.at_level(logging.INFO, logger="fastprobe.cache"):
        acts, mask = CachedExtractor(Extractor()).extract(prompts)
    want = [
        np.concatenate([a, b], axis=1)
        for a, b in zip(_hidden(model, prompts, 1), _hidden(model, prompts, 2), strict=True)
    ]
    lengths = [len(w) for w in want]
    assert acts.shape == (5, max(lengths), 2 * 32) and mask.sum(1).tolist() == lengths
    for i, w in enumerate(want):
        np.testing.assert_allclose(acts[i, : lengths[i]].numpy(), w, rtol=1e-5, atol=1e-5)
        assert not acts[i, lengths[i] :].any()
    assert CachedExtractor(Extractor()).extract(prompts, cache_only=True) is None
    assert any("5 to extract" in r.message for r in caplog.records)
    assert any("5/5 prompts cached" in r.message for r in caplog.records)

    layer1, masks = load_layer_across_prompts(str(model), prompts, 1)
    for got, m, ref in zip(layer1, masks, _hidden(model, prompts, 1), strict=True):
        assert got.shape == (1, len(ref), 32) and m.tolist() == [[1] * len(ref)]
        np.testing.assert_allclose(got[0].numpy(), ref, rtol=1e-5, atol=1e-5)
    last = load_layer_last_token(str(model), prompts, 2).numpy()
    np.testing.assert_allclose(last, np.stack([h[-1] for h in _hidden(model, prompts, 2)]), rtol=1e-5, atol=1e-5)
    with pytest.raises(fastprobe.MissingActivationsError, match="No cached activations"):
        load_layer_across_prompts(str(model), ["never extracted"], 1)

    info = fastprobe.cache_info(str(model))
    store = next(m for m in info.models if m.num_prompts == 5)
    assert "5 prompts" in repr(store) and "Cache directory" in repr(info)
    invalidate_extraction_cache(info.cache_dir / store.model_hash)
    assert not (info.cache_dir / store.model_hash).exists()
    assert fastprobe.discover_cached(str(model), prompts[0]) is None
