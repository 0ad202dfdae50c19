"""UnifiedCache, WarmupStats and CachedLogits against lmprobe 0.10.3 itself and hand computations.

References: lmprobe's ``UnifiedCache`` on the same tiny model (right padding, where lmprobe's batches are exact);
transformers' causal LM run one prompt at a time (logits, per-token cross-entropy); numpy.
"""

from __future__ import annotations

import math
import os
import pathlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

import fastprobe.extraction.perplexity as perplexity_home
import fastprobe.features as features_module
import fastprobe.perplexity as perplexity_module
from fastprobe.exceptions import InvalidInputError, UnknownOptionError
from fastprobe.store import set_cache_backend
from fastprobe.testing import tiny_model
from fastprobe.unified_cache import CachedLogits, UnifiedCache, WarmupStats

# Mixed token lengths, so batches are padded.
PROMPTS = ["the big red city", "hello world", "a small blue river in Paris near the old town", "the cold town"]


def _reference(model: pathlib.Path, prompts: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
    """Each prompt alone through transformers' causal LM: its logits (tokens, vocab) and [mean, min, max] perplexity."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    lm = AutoModelForCausalLM.from_pretrained(model).eval()
    logits, ppl = [], []
    for prompt in prompts:
        ids = torch.tensor([tok(prompt)["input_ids"]])
        with torch.no_grad():
            out = lm(ids).logits[0].double()
        loss = torch.nn.functional.cross_entropy(out[:-1], ids[0, 1:], reduction="none")
        logits.append(out.numpy())
        ppl.append([math.exp(loss.mean()), math.exp(loss.min()), math.exp(loss.max())])
    return logits, np.array(ppl)


@pytest.fixture
def lmprobe_cache(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """lmprobe's UnifiedCache class, with lmprobe's cache in a fresh directory (fastprobe's is set explicitly)."""
    module = pytest.importorskip("lmprobe.unified_cache")
    import lmprobe.cache

    monkeypatch.setenv("LMPROBE_CACHE_DIR", str(tmp_path / "lmprobe-cache"))
    lmprobe.cache._backend = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lmprobe's own deprecation and progress warnings are not under test
        yield module.UnifiedCache
    lmprobe.cache._backend = None


def _no_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make loading the model's weights fail: what follows must be served by the cache alone."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the model's weights were loaded")

    monkeypatch.setattr(features_module, "model_context", refuse)


# ---------------------------------------------------------------------------------------------- WarmupStats


def test_warmup_stats_fields_rate_and_repr() -> None:
    stats = WarmupStats(
        total_prompts=10,
        activations_cached=7,
        activations_extracted=3,
        perplexity_cached=5,
        perplexity_extracted=5,
        elapsed_seconds=1.25,
    )
    assert stats.cache_hit_rate == 0.7
    assert (stats.logits_cached, stats.logits_extracted) == (0, 0)
    text = repr(stats)
    assert "10 prompts" in text and "7 cached / 3 extracted" in text and "5 cached / 5 extracted" in text
    assert "1.2 s" in text and "logits" not in text
    with_logits = WarmupStats(4, 0, 4, 0, 0, 0.5, logits_cached=1, logits_extracted=3)
    assert "logits 1 cached / 3 extracted" in repr(with_logits)
    assert WarmupStats(0, 0, 0, 0, 0, 0.0).cache_hit_rate == 0.0


# ---------------------------------------------------------------------------------------------- warmup


def test_warmup_counts_extractions_then_cache_hits(exact_cache: object, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model("llama")
    first = UnifiedCache(model, layers=[0, 1], device="cpu", batch_size=2).warmup(PROMPTS)
    assert (first.total_prompts, first.activations_cached, first.activations_extracted) == (4, 0, 4)
    assert (first.perplexity_cached, first.perplexity_extracted) == (0, 4)
    assert (first.logits_cached, first.logits_extracted) == (0, 0)
    assert first.elapsed_seconds > 0 and first.cache_hit_rate == 0.0

    # A new instance reuses what the first cached; duplicates count once each time they appear.
    prompts = [PROMPTS[0], "the new city", PROMPTS[1], PROMPTS[0]]
    second = UnifiedCache(model, layers=[0, 1], device="cpu").warmup(prompts)
    assert (second.activations_cached, second.activations_extracted) == (3, 1)
    assert (second.perplexity_cached, second.perplexity_extracted) == (3, 1)
    assert second.cache_hit_rate == 0.75

    # Everything cached: no weights are loaded at all.
    _no_weights(monkeypatch)
    third = UnifiedCache(model, layers=[1], device="cpu").warmup(prompts + PROMPTS)
    assert (third.activations_cached, third.perplexity_cached, third.activations_extracted) == (8, 8, 0)
    # Another pooling of a pooled cache is read from the same pooled-only records.
    fourth = UnifiedCache(model, layers=[0, 1], device="cpu", pooling="mean", compute_perplexity=False)
    stats = fourth.warmup(PROMPTS)
    assert (stats.activations_cached, stats.perplexity_cached, stats.perplexity_extracted) == (4, 0, 0)
    assert fourth.get_activations(PROMPTS)[0].shape == (4, 2 * 32)


def test_warmup_of_no_prompts_and_layer_indices(exact_cache: object, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model("llama")  # 4 layers
    _no_weights(monkeypatch)  # the layers resolve against the configuration alone
    stats = UnifiedCache(model, device="cpu").warmup([])
    assert (stats.total_prompts, stats.activations_extracted, stats.cache_hit_rate) == (0, 0, 0.0)
    assert UnifiedCache(model).layer_indices == [0, 1, 2, 3]
    assert UnifiedCache(model, layers="last").layer_indices == [3]
    assert UnifiedCache(model, layers="middle").layer_indices == [1, 2]
    assert UnifiedCache(model, layers=[-1, 0, 0]).layer_indices == [0, 3]
    with pytest.raises(InvalidInputError, match="out of range"):
        _ = UnifiedCache(model, layers=[7]).layer_indices


def test_warning_when_cached_prompts_miss_requested_layers(exact_cache: object) -> None:
    model = tiny_model("llama")
    UnifiedCache(model, layers=[0], device="cpu", compute_perplexity=False).warmup(PROMPTS[:2])
    later = UnifiedCache(model, layers=[0, 2], device="cpu", compute_perplexity=False)
    with pytest.warns(UserWarning, match=r"2 prompt\(s\) are cached at layer\(s\) \[0\] but missing layer\(s\) \[2\]"):
        stats = later.warmup(PROMPTS[:2] + PROMPTS[2:3])
    assert stats.activations_extracted == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert later.warmup(PROMPTS[:3]).activations_cached == 3  # fully cached: no warning
        UnifiedCache(model, layers=[1], device="cpu", compute_perplexity=False).warmup(["the brand new town"])


# ---------------------------------------------------------------------------------------------- against lmprobe


@pytest.mark.parametrize("pooling", ["last_token", "mean", "first_token"])
def test_pooled_activations_equal_lmprobe(pooling: str, exact_cache: object, lmprobe_cache: Any) -> None:
    model = tiny_model("llama")  # right padding: lmprobe's batches are exact there
    reference = lmprobe_cache(str(model), layers=[1, 3], device="cpu", compute_perplexity=False, pooling=pooling)
    theirs, theirs_mask = reference.get_activations(PROMPTS)
    ours = UnifiedCache(model, layers=[1, 3], device="cpu", compute_perplexity=False, pooling=pooling)
    got, got_mask = ours.get_activations(PROMPTS)
    assert got_mask is None and theirs_mask is None
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32 and got.shape == (4, 64)
    np.testing.assert_allclose(got.numpy(), theirs.float().numpy(), rtol=1e-5, atol=1e-6)


def test_token_activations_equal_lmprobe(exact_cache: object, lmprobe_cache: Any) -> None:
    model = tiny_model("llama")
    reference = lmprobe_cache(str(model), layers=[0, 2], device="cpu", compute_perplexity=False, cache_pooled=False)
    theirs, theirs_mask = reference.get_activations(PROMPTS)
    ours = UnifiedCache(model, layers=[0, 2], device="cpu", compute_perplexity=False, cache_pooled=False)
    got, got_mask = ours.get_activations(PROMPTS)
    assert got_mask is not None
    assert got.dtype == torch.float32 and got_mask.dtype == torch.int64
    assert got.shape == theirs.shape and got.shape[2] == 64
    np.testing.assert_array_equal(got_mask.numpy(), theirs_mask.numpy())
    real = got_mask.numpy().astype(bool)
    np.testing.assert_allclose(got.numpy()[real], theirs.float().numpy()[real], rtol=1e-5, atol=1e-6)
    assert not got.numpy()[~real].any()  # padding is zeros


def test_perplexity_equals_lmprobe_and_each_prompt_alone(exact_cache: object, lmprobe_cache: Any) -> None:
    model = tiny_model("llama")
    _, reference = _reference(model, PROMPTS)
    theirs = lmprobe_cache(str(model), layers=[0], device="cpu").get_perplexity(PROMPTS)
    got = UnifiedCache(model, layers=[0], device="cpu", batch_size=3).get_perplexity(PROMPTS)
    assert isinstance(got, np.ndarray) and got.shape == (4, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference, rtol=1e-5)
    np.testing.assert_allclose(got, theirs, rtol=1e-5)
    assert np.all(got[:, 1] <= got[:, 0]) and np.all(got[:, 0] <= got[:, 2])


def test_perplexity_under_left_padding_is_each_prompt_alone(exact_cache: object) -> None:
    model = tiny_model("llama", padding_side="left")
    _, reference = _reference(model, PROMPTS)
    got = UnifiedCache(model, layers=[0], device="cpu", batch_size=4).get_perplexity(PROMPTS)
    np.testing.assert_allclose(got, reference, rtol=1e-5)


@pytest.mark.parametrize("top_k", [None, 7])
def test_last_position_logits_equal_lmprobe(top_k: int | None, exact_cache: object, lmprobe_cache: Any) -> None:
    model = tiny_model("llama")
    logits, _ = _reference(model, PROMPTS)
    last = np.stack([x[-1] for x in logits])
    options: dict[str, Any] = {"layers": [0], "device": "cpu", "compute_perplexity": False, "cache_logits": True}
    theirs = lmprobe_cache(str(model), logit_top_k=top_k, **options).get_logits(PROMPTS)
    got = UnifiedCache(model, logit_top_k=top_k, **options).get_logits(PROMPTS)
    assert isinstance(got, CachedLogits) and (got.top_k, got.positions) == (top_k, "last")
    assert got.values.dtype == torch.float32 and got.values.shape == theirs.values.shape
    np.testing.assert_allclose(got.values.numpy(), theirs.values.float().numpy(), rtol=1e-5, atol=1e-6)
    if top_k is None:
        assert got.indices is None
        np.testing.assert_allclose(got.values.numpy()[:, 0], last, rtol=1e-5, atol=1e-6)
    else:
        assert got.indices is not None and theirs.indices is not None
        assert got.values.shape == (4, 1, top_k) and got.indices.dtype == torch.int32
        np.testing.assert_array_equal(got.indices.numpy(), theirs.indices.numpy())
        order = np.argsort(-last, axis=1)[:, :top_k]
        np.testing.assert_array_equal(got.indices.numpy()[:, 0], order)
        np.testing.assert_allclose(got.values.numpy()[:, 0], np.take_along_axis(last, order, 1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_all_position_logits_are_each_prompts_real_tokens(padding_side: str, exact_cache: object) -> None:
    model = tiny_model("llama", padding_side=padding_side)
    logits, _ = _reference(model, PROMPTS)
    lengths = [len(x) for x in logits]
    options: dict[str, Any] = {"layers": [0], "device": "cpu", "compute_perplexity": False, "cache_logits": True}
    full = UnifiedCache(model, logit_positions="all", **options).get_logits(PROMPTS)
    top = UnifiedCache(model, logit_positions="all", logit_top_k=3, **options).get_logits(PROMPTS)
    assert full.values.shape == (4, max(lengths), logits[0].shape[1]) and full.positions == "all"
    assert top.indices is not None
    assert top.values.shape == top.indices.shape == (4, max(lengths), 3)
    for i, (ref, n) in enumerate(zip(logits, lengths, strict=True)):
        np.testing.assert_allclose(full.values[i, :n].numpy(), ref, rtol=1e-5, atol=1e-6)
        assert torch.isnan(full.values[i, n:]).all() and torch.isnan(top.values[i, n:]).all()
        assert (top.indices[i, n:] == -1).all()
        np.testing.assert_array_equal(top.indices[i, :n].numpy(), np.argsort(-ref, axis=1)[:, :3])


def test_perplexity_and_logits_come_from_one_shared_pass(exact_cache: object, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model("llama")
    cache = UnifiedCache(model, layers=[0], device="cpu", batch_size=3, cache_logits=True, logit_top_k=2)
    ctx = features_module.model_context(model, "cpu", None, "local", False)
    calls: list[int] = []
    handle = perplexity_module.causal_lm(ctx).register_forward_pre_hook(
        lambda _m, args, kwargs: calls.append(len(kwargs["input_ids"])), with_kwargs=True
    )
    try:
        stats = cache.warmup(PROMPTS)
    finally:
        handle.remove()
    assert sorted(calls) == [1, 3]  # one language-model pass for both, in batches of batch_size
    assert (stats.perplexity_extracted, stats.logits_extracted, stats.activations_extracted) == (4, 4, 4)
    again = cache.warmup(PROMPTS)
    assert (again.perplexity_cached, again.logits_cached, again.activations_cached) == (4, 4, 4)
    assert (again.perplexity_extracted, again.logits_extracted) == (0, 0)

    # The perplexity cache is the one BaselineProbe(method="perplexity") reads.
    def refuse(*args: Any) -> None:
        raise AssertionError("perplexity computed again")

    monkeypatch.setattr(perplexity_home, "compute_perplexity", refuse)
    np.testing.assert_allclose(
        perplexity_module.perplexity_features(ctx, PROMPTS), cache.get_perplexity(PROMPTS), rtol=1e-6
    )


# ---------------------------------------------------------------------------------------------- from the cache


@pytest.mark.parametrize("arch", ["llama", "gpt2", "gemma2"])
def test_logits_from_cached_activations_equal_the_forward_pass(
    arch: str, exact_cache: object, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tiny_model(arch)
    logits, _ = _reference(model, PROMPTS)
    cache = UnifiedCache(model, layers="last", device="cpu", compute_perplexity=False)  # pooled: last tokens
    cache.warmup(PROMPTS)
    assert cache.compute_logits_from_cache(PROMPTS) == 4
    assert cache.compute_logits_from_cache(PROMPTS[:2]) == 0  # cached
    assert cache.compute_logits_from_cache(PROMPTS, top_k=5, batch_size=3) == 4
    _no_weights(monkeypatch)  # get_logits reads what compute_logits_from_cache wrote
    options: dict[str, Any] = {"layers": "last", "device": "cpu", "compute_perplexity": False, "cache_logits": True}
    full = UnifiedCache(model, **options).get_logits(PROMPTS)
    np.testing.assert_allclose(full.values[:, 0].numpy(), np.stack([x[-1] for x in logits]), rtol=1e-5, atol=1e-5)
    top = UnifiedCache(model, logit_top_k=5, **options).get_logits(PROMPTS)
    assert top.indices is not None
    np.testing.assert_array_equal(top.indices[:, 0].numpy(), np.argsort(-np.stack([x[-1] for x in logits]))[:, :5])


def test_all_position_logits_from_cached_tokens(exact_cache: object) -> None:
    model = tiny_model("llama", padding_side="left")
    logits, _ = _reference(model, PROMPTS)
    cache = UnifiedCache(model, layers="all", device="cpu", compute_perplexity=False, cache_pooled=False)
    cache.warmup(PROMPTS)
    assert cache.compute_logits_from_cache(PROMPTS, positions="all") == 4
    options: dict[str, Any] = {"layers": "all", "device": "cpu", "compute_perplexity": False, "cache_logits": True}
    got = UnifiedCache(model, logit_positions="all", **options).get_logits(PROMPTS)
    for i, ref in enumerate(logits):
        np.testing.assert_allclose(got.values[i, : len(ref)].numpy(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_perplexity_from_cached_activations_equals_each_prompt_alone(
    padding_side: str, exact_cache: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tiny_model("llama", padding_side=padding_side)
    _, reference = _reference(model, PROMPTS)
    cache = UnifiedCache(model, layers="all", device="cpu", compute_perplexity=False, cache_pooled=False)
    cache.warmup(PROMPTS)
    assert cache.compute_perplexity_from_cache(PROMPTS, batch_size=3) == 4
    assert cache.compute_perplexity_from_cache(PROMPTS) == 0
    _no_weights(monkeypatch)
    got = UnifiedCache(model, layers="all", device="cpu", cache_pooled=False).get_perplexity(PROMPTS)
    np.testing.assert_allclose(got, reference, rtol=1e-5)


def test_from_cache_extracts_what_the_cache_lacks(exact_cache: object) -> None:
    model = tiny_model("llama")
    _, reference = _reference(model, PROMPTS)
    cache = UnifiedCache(model, layers=[1, 3], device="cpu", compute_perplexity=False)  # pooled, nothing cached
    assert cache.compute_perplexity_from_cache(PROMPTS) == 4  # runs the prompts to cache their tokens
    stats = cache.warmup(PROMPTS)
    assert (stats.activations_cached, stats.total_prompts) == (4, 4)
    np.testing.assert_allclose(
        UnifiedCache(model, layers=[3], device="cpu").get_perplexity(PROMPTS), reference, rtol=1e-5
    )


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"pooling": "all"}, InvalidInputError, "pooling='all' is not valid"),
        ({"pooling": "max"}, UnknownOptionError, "unknown pooling 'max'"),
        ({"dtype": "float64"}, UnknownOptionError, "Unknown dtype 'float64'"),
        ({"logit_positions": "first"}, UnknownOptionError, "unknown logit_positions 'first'"),
        ({"backend": "chunked"}, UnknownOptionError, "unknown backend 'chunked'"),
        ({"batch_size": 0}, InvalidInputError, "batch_size must be a positive int"),
        ({"logit_top_k": 0}, InvalidInputError, "logit_top_k must be a positive int or None"),
    ],
)
def test_bad_options_are_refused_at_construction(options: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match) as info:
        UnifiedCache("any/model", **options)
    assert isinstance(info.value, ValueError)


def test_pooling_all_is_fine_without_a_pooled_cache() -> None:
    assert UnifiedCache("any/model", pooling="all", cache_pooled=False).pooling == "all"
    assert UnifiedCache("any/model", dtype="bfloat16").dtype == "bfloat16"
    assert UnifiedCache("any/model").dtype is None


def test_reading_what_the_cache_does_not_hold(exact_cache: object) -> None:
    model = tiny_model("llama")
    cache = UnifiedCache(model, layers=[0], device="cpu", compute_perplexity=False)
    with pytest.raises(InvalidInputError, match="compute_perplexity=False"):
        cache.get_perplexity(["the city"])
    with pytest.raises(InvalidInputError, match="cache_logits=False"):
        cache.get_logits(["the city"])
    with pytest.raises(InvalidInputError, match="prompts is empty"):
        cache.get_activations([])
    with pytest.raises(InvalidInputError, match="must be a list of strings"):
        cache.warmup("the city")
    for method in (cache.compute_logits_from_cache, cache.compute_perplexity_from_cache):
        with pytest.raises(InvalidInputError, match=r"Last layer \(3\) is not among this cache's layers \[0\]"):
            method(["the city"])
    last = UnifiedCache(model, layers="last", device="cpu", compute_perplexity=False)
    with pytest.raises(UnknownOptionError, match="unknown positions 'first'"):
        last.compute_logits_from_cache(["the city"], positions="first")
    vocab = len(_reference(model, ["the city"])[0][0][0])
    too_many = UnifiedCache(model, layers=[0], device="cpu", cache_logits=True, logit_top_k=vocab + 1)
    with pytest.raises(InvalidInputError, match="more than the model's vocabulary"):
        too_many.warmup(["the city"])


def test_single_token_prompts_have_no_perplexity(exact_cache: object) -> None:
    model = tiny_model("qwen2")  # no BOS token: "hello" is one token
    cache = UnifiedCache(model, layers=[0], device="cpu")
    with pytest.raises(InvalidInputError, match="is a single token"):
        cache.warmup(["hello", "hello world"])
    stats = UnifiedCache(model, layers=[0], device="cpu", compute_perplexity=False).warmup(["hello"])
    assert stats.activations_extracted == 1


def test_cache_follows_the_configured_directory(tmp_path: pathlib.Path) -> None:
    set_cache_backend(tmp_path / "one")
    try:
        model = tiny_model("llama")
        cache = UnifiedCache(model, layers=[0], device="cpu", compute_perplexity=False)
        assert cache.warmup(PROMPTS[:1]).activations_extracted == 1
        assert any((tmp_path / "one").iterdir())
        set_cache_backend(tmp_path / "two")
        assert cache.warmup(PROMPTS[:1]).activations_extracted == 1  # a fresh cache directory
        assert os.listdir(tmp_path / "two")
    finally:
        set_cache_backend(None)
