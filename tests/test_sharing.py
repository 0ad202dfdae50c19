"""Activation datasets (fastprobe.sharing) against a loopback stand-in for the Hub, side by side with lmprobe.

Every test runs offline: the Hub is :class:`fastprobe.testing_hub.HubStandIn` on 127.0.0.1, and both fastprobe and
lmprobe 0.10.3 (whose non-streaming push needs ``HfApi.upload_large_folder``, absent from huggingface_hub 2.4, so its
pushes here stream) talk to it through ``huggingface_hub``.
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

import numpy as np
import pytest

from fastprobe import Probe
from fastprobe.exceptions import (
    ArgumentTypeError,
    InvalidInputError,
    MissingActivationsError,
    MissingDependencyError,
    UnknownOptionError,
)
from fastprobe.testing import tiny_model
from fastprobe.testing_hub import HubStandIn, use_hub

pytestmark = [
    # huggingface_hub's plain-LFS upload passes a file object as `data=` (its HTTP client deprecates that)
    pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning"),
]

TOKEN = "test"
PROMPTS = [f"statement {i} about " + "things " * (i % 4) + ("true" if i % 2 else "false") for i in range(14)]
LABELS = [i % 2 for i in range(14)]
HIDDEN = 32  # the tiny llama's hidden size
ROW = HIDDEN * 4


@pytest.fixture(scope="module")
def model() -> str:
    return str(tiny_model("llama"))


@pytest.fixture
def hub(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh stand-in Hub, with huggingface_hub pointed at it, a private Hugging Face home and the token "test"."""
    from huggingface_hub import constants

    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # what calls without a token (lmprobe's model_info) send
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    stand_in = HubStandIn()
    with use_hub(stand_in.url, tmp_path / "hf-cache"):
        yield stand_in
    stand_in.stop()


@pytest.fixture
def lm_cache(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch):
    """An empty lmprobe cache (lmprobe keeps process-wide registries: cleared before and after)."""
    import lmprobe.cache as lc

    def reset() -> None:
        lc.set_cache_backend(None)
        for memo in (lc._shard_manifests, lc._shard_indices, lc._header_cache, lc._mask_cache):
            memo.clear()

    monkeypatch.setenv("LMPROBE_CACHE_DIR", str(tmp_path / "lmprobe-cache"))
    reset()
    yield tmp_path / "lmprobe-cache"
    reset()


def _store(model: str):
    from fastprobe.features import weightless_context

    ctx = weightless_context(model, "cpu", "local")
    assert ctx is not None
    return ctx.store


def _warm(model: str, layers: list[int], prompts: list[str] = PROMPTS, tokens: bool = False) -> None:
    from fastprobe.store import set_cache_tokens

    set_cache_tokens("always" if tokens else None)
    try:
        Probe(model=model, layers=layers, device="cpu").warmup(prompts)
    finally:
        set_cache_tokens(None)


def _lm_warm(model: str, prompts: list[str] = PROMPTS, pooled: bool = True) -> None:
    from lmprobe import UnifiedCache

    UnifiedCache(model=model, layers="all", compute_perplexity=False, device="cpu", cache_pooled=pooled).warmup(prompts)


def _no_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    import fastprobe.extraction as extraction

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a forward pass ran")

    monkeypatch.setattr(extraction.runner, "forward_batches", forbidden)


def _count_forward(monkeypatch: pytest.MonkeyPatch, real: Any) -> list[int]:
    """Let forward passes run (``real``: the unpatched function), recording how many prompts each extraction runs."""
    import fastprobe.extraction as extraction

    ran: list[int] = []

    def spy(loaded: object, texts: list[str], *args: object, **kwargs: object) -> object:
        ran.append(len(texts))
        return real(loaded, texts, *args, **kwargs)

    monkeypatch.setattr(extraction.runner, "forward_batches", spy)
    return ran


# ---------------------------------------------------------------------------------------------- fastprobe round trips


def test_push_then_load_gives_the_cached_vectors(model, hub, exact_cache):
    from fastprobe.sharing import fetch_dataset_metadata, load_activation_dataset, load_activations, push_dataset

    _warm(model, [0, 2, 3])
    store = _store(model)
    url = push_dataset(
        "me/pooled", model, PROMPTS, labels=LABELS, token=TOKEN, shard_max_bytes=5 * ROW, description="Tiny."
    )
    assert url == f"{hub.url}/datasets/me/pooled"
    files = hub.state.files("dataset", "me/pooled")
    assert sorted(f for f in files if f.startswith("tensors/")) == [
        f"tensors/hidden_layer{layer:03d}_shard{s:03d}.safetensors" for layer in (0, 2, 3) for s in range(3)
    ]
    assert "Tiny." in files["README.md"].decode()
    meta = fetch_dataset_metadata("me/pooled", token=TOKEN)
    assert (meta.model_name, meta.available_layers, meta.num_prompts, meta.format_version) == (
        model,
        [0, 2, 3],
        14,
        "2.0",
    )
    assert sorted(meta.prompts) == sorted(PROMPTS) and meta.prompts != PROMPTS  # shuffled
    hidden = meta.tensor_descriptors["hidden_layers"]
    assert hidden["storage"] == "pooled" and hidden["pooling"] == "last_token" and hidden["dim"] == HIDDEN
    assert hidden["shards"] == [{"num_prompts": 5}, {"num_prompts": 5}, {"num_prompts": 4}]
    acts, labels = load_activations("me/pooled", prompts=PROMPTS, token=TOKEN, return_labels=True, show_progress=False)
    assert list(acts) == [0, 2, 3]
    for layer, x in acts.items():
        assert x.dtype == np.float32 and np.array_equal(x, store.read_pooled(PROMPTS, [layer]))
    assert labels.tolist() == LABELS
    tensors, info = load_activation_dataset("me/pooled", layers=[2], token=TOKEN)
    assert list(tensors) == ["hidden.layer_2"] and info["num_prompts"] == 14
    np.testing.assert_array_equal(tensors["hidden.layer_2"].numpy(), store.read_pooled(meta.prompts, [2]))
    stacked = load_activations("me/pooled", layers=[3, 0], as_dict=False, token=TOKEN, show_progress=False)
    assert stacked.shape == (14, 2, HIDDEN)
    np.testing.assert_array_equal(stacked[:, 1], store.read_pooled(meta.prompts, [3]))


def test_push_full_sequence_then_pull_restores_every_token(model, hub, exact_cache, tmp_path, monkeypatch):
    from fastprobe.sharing import fetch_dataset_metadata, load_activations, pull_dataset, push_dataset
    from fastprobe.store import set_cache_backend

    _warm(model, [1, 2], tokens=True)
    source = _store(model)
    push_dataset("me/full", model, PROMPTS, labels=LABELS, token=TOKEN, shard_max_bytes=5 * ROW, private=True)
    assert hub.state.repo("dataset", "me/full").private
    meta = fetch_dataset_metadata("me/full", token=TOKEN)
    hidden = meta.tensor_descriptors["hidden_layers"]
    assert hidden["storage"] == "full_sequence" and hidden["last_token_shards"] == 3
    for pooling in ("last_token", "mean", "first_token", "max"):
        acts = load_activations("me/full", pooling=pooling, token=TOKEN, show_progress=False)
        for layer in (1, 2):
            np.testing.assert_allclose(acts[layer], source.read_pooled(meta.prompts, [layer], pooling), rtol=1e-6)

    set_cache_backend(tmp_path / "other-machine")
    assert pull_dataset("me/full", token=TOKEN) == 14
    pulled = _store(model)
    assert pulled.path != source.path
    want, want_offsets = source.read_tokens(PROMPTS, [1, 2])
    got, got_offsets = pulled.read_tokens(PROMPTS, [1, 2])
    assert np.array_equal(got, want) and np.array_equal(got_offsets, want_offsets)

    _no_forward(monkeypatch)
    options = dict(model=model, layers=[1, 2], device="cpu", train_pooling="mean", inference_pooling="max")
    probe = Probe(**options).fit(PROMPTS, LABELS)
    set_cache_backend(tmp_path / "float32-cache")  # the cache the dataset was pushed from
    reference = Probe(**options).fit(PROMPTS, LABELS)
    np.testing.assert_array_equal(probe.predict_proba(PROMPTS), reference.predict_proba(PROMPTS))


def test_pull_of_a_pooled_dataset_serves_probes_without_the_model(model, hub, exact_cache, tmp_path, monkeypatch):
    from fastprobe.sharing import pull_dataset, push_dataset
    from fastprobe.store import discover_cached, set_cache_backend

    _warm(model, [0, 3])
    source = _store(model)
    push_dataset("me/pooled", model, PROMPTS, labels=LABELS, token=TOKEN)
    reference = Probe(model=model, layers=[0, 3], device="cpu").fit(PROMPTS, LABELS)

    set_cache_backend(tmp_path / "fresh")
    assert pull_dataset("me/pooled", layers=[0, 3], token=TOKEN, materialize=True) == 14
    assert pull_dataset("me/pooled", token=TOKEN, materialize=True) == 0  # already there
    pulled = _store(model)
    np.testing.assert_array_equal(pulled.read_pooled(PROMPTS, [0, 3]), source.read_pooled(PROMPTS, [0, 3]))
    # the token counts come along; the mean and first token are not in the dataset, so not in the cache either
    counts = {p: c for p, _, c in source.prompts()}
    assert {p: c for p, _, c in pulled.prompts()} == counts
    assert pulled.contains(PROMPTS, [0, 3], pooling="last_token").all()
    assert not pulled.contains(PROMPTS, [0, 3], pooling="mean").any()
    with pytest.raises(MissingActivationsError, match="as its last-token vector only.*its mean vector"):
        pulled.read_pooled(PROMPTS, [0], "mean")
    info = discover_cached(model, PROMPTS[5])
    assert info is not None and info.num_tokens == counts[PROMPTS[5]]
    assert info.pooled == {"last_token": [0, 3], "mean": [], "first_token": []}

    import fastprobe.extraction as extraction

    real_forward = extraction.runner.forward_batches
    _no_forward(monkeypatch)
    probe = Probe(model=model, layers=[0, 3], device="cpu").fit(PROMPTS, LABELS)
    np.testing.assert_array_equal(probe.predict_proba(PROMPTS), reference.predict_proba(PROMPTS))

    # A mean probe finds the prompts not cached for it: the model runs once, and the probe is a fresh cache's.
    ran = _count_forward(monkeypatch, real_forward)
    mean = Probe(model=model, layers=[0, 3], device="cpu", pooling="mean").fit(PROMPTS, LABELS)
    assert ran == [len(PROMPTS)]
    mean_proba = mean.predict_proba(PROMPTS)
    Probe(model=model, layers=[0, 3], device="cpu", pooling="first_token").fit(PROMPTS, LABELS)
    assert ran == [len(PROMPTS)], "the records written for the mean serve the first token too"
    assert pulled.contains(PROMPTS, [0, 3], pooling="mean").all() and pulled.verify() == []
    np.testing.assert_array_equal(probe.predict_proba(PROMPTS), reference.predict_proba(PROMPTS))
    set_cache_backend(tmp_path / "fresh-for-mean")
    fresh = Probe(model=model, layers=[0, 3], device="cpu", pooling="mean").fit(PROMPTS, LABELS)
    assert ran == [len(PROMPTS)] * 2
    np.testing.assert_array_equal(mean_proba, fresh.predict_proba(PROMPTS))
    np.testing.assert_array_equal(mean.classifier_.coef_, fresh.classifier_.coef_)


# ---------------------------------------------------------------------------------------------- lmprobe side by side


def test_lmprobe_pooled_push_loads_in_fastprobe(model, hub, lm_cache, exact_cache, tmp_path, monkeypatch):
    import lmprobe.sharing as lms

    from fastprobe.sharing import fetch_dataset_metadata, load_activations, pull_dataset, push_dataset

    _lm_warm(model)
    lms.push_dataset("me/lm", model, PROMPTS, labels=LABELS, token=TOKEN, stream=True, shard_max_bytes=4 * ROW)
    ours = load_activations("me/lm", token=TOKEN, show_progress=False, return_labels=True)
    theirs = lms.load_activations("me/lm", token=TOKEN, show_progress=False, return_labels=True)
    assert list(ours[0]) == list(theirs[0]) == [0, 1, 2, 3]
    for layer in ours[0]:
        np.testing.assert_array_equal(ours[0][layer], theirs[0][layer])
    np.testing.assert_array_equal(ours[1], theirs[1])
    theirs_meta = lms.fetch_dataset_metadata("me/lm", token=TOKEN)
    ours_meta = fetch_dataset_metadata("me/lm", token=TOKEN)
    assert ours_meta.prompts == theirs_meta.prompts
    assert ours_meta.tensor_descriptors == theirs_meta.tensor_descriptors

    # the same prompts pushed by fastprobe to the same repository id: same order, same shard boundaries
    _warm(model, [0, 1, 2, 3])
    second = HubStandIn()
    with use_hub(second.url, tmp_path / "hf-cache-2"):
        push_dataset("me/lm", model, PROMPTS, labels=LABELS, token=TOKEN, shard_max_bytes=4 * ROW)
        mine = fetch_dataset_metadata("me/lm", token=TOKEN)
    second.stop()
    assert mine.prompts == theirs_meta.prompts
    assert (
        mine.tensor_descriptors["hidden_layers"]["shards"] == theirs_meta.tensor_descriptors["hidden_layers"]["shards"]
    )

    # pulled into the store of a probe on the model (lmprobe's pooled cache has no token counts: the tokenizer's)
    from fastprobe.store import set_cache_backend

    set_cache_backend(tmp_path / "pull-target")
    assert pull_dataset("me/lm", token=TOKEN) == 14
    store = _store(model)
    for layer in range(4):
        np.testing.assert_array_equal(store.read_pooled(theirs_meta.prompts, [layer]), theirs[0][layer])
    set_cache_backend(tmp_path / "float32-cache")
    extracted = {p: c for p, _, c in _store(model).prompts()}
    set_cache_backend(tmp_path / "pull-target")
    assert {p: c for p, _, c in store.prompts()} == extracted  # token counts from the model's tokenizer
    _no_forward(monkeypatch)
    Probe(model=model, layers=[1, 2], device="cpu").fit(PROMPTS, LABELS)


def test_lmprobe_full_sequence_push_loads_in_fastprobe(model, hub, lm_cache, exact_cache, tmp_path):
    import lmprobe.sharing as lms

    from fastprobe.sharing import fetch_dataset_metadata, load_activations, pull_dataset, push_dataset

    _lm_warm(model, pooled=False)
    lms.push_dataset("me/raw", model, PROMPTS, token=TOKEN, stream=True, shard_max_bytes=6 * ROW)
    meta = fetch_dataset_metadata("me/raw", token=TOKEN)
    assert meta.tensor_descriptors["hidden_layers"]["storage"] == "full_sequence"
    import lmprobe.cache as lc

    ours = load_activations("me/raw", layers=[0, 3], token=TOKEN, show_progress=False)
    lc.set_cache_backend(str(tmp_path / "lmprobe-elsewhere"))  # lmprobe cannot load from the cache it pushed raw
    theirs = lms.load_activations("me/raw", layers=[0, 3], token=TOKEN, show_progress=False)
    lc.set_cache_backend(str(lm_cache))
    for layer in (0, 3):
        np.testing.assert_array_equal(ours[layer], theirs[layer])
    from lmprobe.cache import load_prompt_activations

    from fastprobe.store import set_cache_backend

    set_cache_backend(tmp_path / "pull")
    pull_dataset("me/raw", layers=[3], token=TOKEN)
    values, offsets = _store(model).read_tokens(PROMPTS, [3])
    for i, prompt in enumerate(PROMPTS):
        raw, mask = load_prompt_activations(model, prompt, [3])
        np.testing.assert_array_equal(values[offsets[i] : offsets[i + 1]], raw[0][mask[0].bool()].numpy())

    # fastprobe's full-sequence push of the same prompts plans the same shards and per-token addresses
    set_cache_backend(tmp_path / "float32-cache")
    _warm(model, [0, 1, 2, 3], tokens=True)
    second = HubStandIn()
    with use_hub(second.url, tmp_path / "hf-cache-2"):
        push_dataset("me/raw", model, PROMPTS, token=TOKEN, shard_max_bytes=6 * ROW)
        mine = fetch_dataset_metadata("me/raw", token=TOKEN)
    second.stop()
    from fastprobe.sharing import read_index

    ours_index = read_index(_saved(second, "me/raw", tmp_path / "ours"))
    theirs_index = read_index(_saved(hub, "me/raw", tmp_path / "theirs"))
    assert mine.tensor_descriptors["hidden_layers"] == meta.tensor_descriptors["hidden_layers"]
    for column in ("text", "num_tokens", "shard_index", "row_offset", "token_shard_ids", "token_shard_offsets"):
        assert ours_index[column] == theirs_index[column], column


def _saved(stand_in: HubStandIn, repo: str, folder: pathlib.Path) -> pathlib.Path:
    from fastprobe.sharing import PARQUET_PATH

    path = folder / "index.parquet"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(stand_in.state.files("dataset", repo)[PARQUET_PATH])
    return path


def test_fastprobe_push_loads_in_lmprobe(model, hub, lm_cache, exact_cache):
    import lmprobe.sharing as lms

    from fastprobe.sharing import load_activations, push_dataset

    _warm(model, [0, 2])
    push_dataset("me/fp", model, PROMPTS, labels=LABELS, token=TOKEN, metadata=[{"i": i} for i in range(14)])
    theirs, their_labels = lms.load_activations("me/fp", token=TOKEN, show_progress=False, return_labels=True)
    ours, our_labels = load_activations("me/fp", token=TOKEN, show_progress=False, return_labels=True)
    assert list(theirs) == list(ours) == [0, 2]
    for layer in ours:
        np.testing.assert_array_equal(theirs[layer], ours[layer])
    np.testing.assert_array_equal(their_labels, our_labels)
    tensors, info = lms.load_activation_dataset("me/fp", layers=[2], token=TOKEN)
    assert list(tensors) == ["hidden.layer_2"] and info["format_version"] == "2.0"
    np.testing.assert_array_equal(tensors["hidden.layer_2"].numpy(), ours[2])


def test_fastprobe_full_sequence_push_loads_in_lmprobe(model, hub, lm_cache, exact_cache):
    import lmprobe.sharing as lms
    from lmprobe.cache import load_prompt_activations

    from fastprobe.sharing import push_dataset

    _warm(model, [1, 3], tokens=True)
    store = _store(model)
    push_dataset("me/fpfull", model, PROMPTS, token=TOKEN, shard_max_bytes=4 * ROW)
    theirs = lms.load_activations("me/fpfull", token=TOKEN, show_progress=False)
    for layer in (1, 3):
        np.testing.assert_array_equal(
            theirs[layer], store.read_pooled(lms.fetch_dataset_metadata("me/fpfull").prompts, [layer])
        )
    assert lms.pull_dataset("me/fpfull", token=TOKEN, materialize=True, overwrite=True) == 14
    values, offsets = store.read_tokens(PROMPTS, [1, 3])
    for i, prompt in enumerate(PROMPTS):
        raw, mask = load_prompt_activations(model, prompt, [1, 3])
        assert int(mask.sum()) == offsets[i + 1] - offsets[i]
        np.testing.assert_array_equal(raw[0].numpy(), values[offsets[i] : offsets[i + 1]])


def test_hub_model_revision_is_recorded(hub, exact_cache, lm_cache, tmp_path, model):
    import lmprobe.sharing as lms
    from huggingface_hub import HfApi

    from fastprobe.sharing import fetch_dataset_metadata, load_activation_dataset, pull_dataset, push_dataset
    from fastprobe.store import set_cache_backend

    api = HfApi(token=TOKEN)
    api.create_repo("org/tiny")
    api.upload_folder(repo_id="org/tiny", folder_path=model)
    commit = hub.state.repo("model", "org/tiny").branches["main"]
    prompts = PROMPTS[:6]
    Probe(model="org/tiny", layers=[0, 1], device="cpu").warmup(prompts)
    push_dataset("me/hubmodel", "org/tiny", prompts, token=TOKEN)
    _, info = load_activation_dataset("me/hubmodel", token=TOKEN)
    assert info["model"] == {"name": "org/tiny", "revision": commit}
    assert info["provenance"]["fastprobe_fingerprint"]["revision"] == commit
    assert lms.fetch_dataset_metadata("me/hubmodel", token=TOKEN).model_name == "org/tiny"
    _lm_warm("org/tiny", prompts)
    lms.push_dataset("me/lm-hubmodel", "org/tiny", prompts, token=TOKEN, stream=True)
    _, theirs = load_activation_dataset("me/lm-hubmodel", token=TOKEN)
    assert theirs["model"] == {"name": "org/tiny", "revision": commit}
    set_cache_backend(tmp_path / "fresh")
    assert pull_dataset("me/lm-hubmodel", token=TOKEN) == 6
    assert fetch_dataset_metadata("me/lm-hubmodel", token=TOKEN).model_name == "org/tiny"
    assert _store("org/tiny").contains(prompts, [0, 1, 2, 3], pooling="last_token").all()


# ---------------------------------------------------------------------------------------------- resumable pushes


@pytest.mark.parametrize("stream", [False, True])
def test_a_push_interrupted_by_the_hub_going_away_resumes(model, hub, exact_cache, stream):
    from fastprobe.sharing import PARQUET_PATH, load_activations, push_dataset

    _warm(model, [0, 1, 2])
    store = _store(model)
    kwargs = dict(token=TOKEN, shard_max_bytes=3 * ROW, stream=stream, stream_batch_size=2, commit_batch_size=2)
    hub.state.fail_after(3)  # 3 commits of 2 shards land, then the Hub goes away in the middle of the 4th
    with pytest.raises(Exception):  # noqa: B017 - the client's connection error
        push_dataset("me/resumed", model, PROMPTS, **kwargs)
    kept = hub.state.files("dataset", "me/resumed")
    assert PARQUET_PATH not in kept and len([p for p in kept if p.startswith("tensors/")]) == 6
    uploads_before = len(hub.state.lfs_uploads)

    hub.restart()
    with use_hub(hub.url):
        push_dataset("me/resumed", model, PROMPTS, **kwargs)  # the same call: no exist_ok needed to resume
        files = hub.state.files("dataset", "me/resumed")
        assert len([p for p in files if p.startswith("tensors/")]) == 15
        assert PARQUET_PATH in files
        # nothing went up twice: of the 9 missing shards, the 2 of the interrupted commit were already uploaded, so
        # 7 shards and the index are the new uploads
        new_uploads = hub.state.lfs_uploads[uploads_before:]
        assert len(new_uploads) == 8
        assert not set(new_uploads) & set(hub.state.lfs_uploads[:uploads_before])
        acts = load_activations("me/resumed", prompts=PROMPTS, token=TOKEN, show_progress=False)
    for layer in (0, 1, 2):
        np.testing.assert_array_equal(acts[layer], store.read_pooled(PROMPTS, [layer]))


def test_lmprobe_streaming_push_resumes_too(model, hub, lm_cache):
    import lmprobe.sharing as lms

    _lm_warm(model)
    kwargs = dict(token=TOKEN, stream=True, stream_batch_size=2, shard_max_bytes=4 * ROW)
    hub.state.fail_after(2)
    with pytest.raises(Exception):  # noqa: B017 - the client's connection error
        lms.push_dataset("me/lm-resumed", model, PROMPTS, **kwargs)
    assert len(hub.state.files("dataset", "me/lm-resumed")) == 4
    hub.restart()
    with use_hub(hub.url):
        lms.push_dataset("me/lm-resumed", model, PROMPTS, **kwargs)
        from fastprobe.sharing import load_activations

        acts = load_activations("me/lm-resumed", token=TOKEN, show_progress=False)
    assert acts[0].shape == (14, HIDDEN)


def test_a_second_push_replaces_the_dataset(model, hub, exact_cache):
    from fastprobe.sharing import fetch_dataset_metadata, push_dataset

    _warm(model, [0, 1, 2])
    push_dataset("me/again", model, PROMPTS, token=TOKEN, shard_max_bytes=4 * ROW)
    with pytest.raises(Exception, match="409"):
        push_dataset("me/again", model, PROMPTS[:5], token=TOKEN)
    push_dataset("me/again", model, PROMPTS[:5], token=TOKEN, exist_ok=True, tensors=["hidden_layers"])
    assert fetch_dataset_metadata("me/again", token=TOKEN).num_prompts == 5
    shards = [p for p in hub.state.files("dataset", "me/again") if p.startswith("tensors/")]
    assert len(shards) == 3  # one shard per layer now; the old ones are gone


# ---------------------------------------------------------------------------------------------- migrate and upgrade


def _legacy_full_sequence(hub: HubStandIn, tmp_path: pathlib.Path, repo: str) -> dict[str, dict[int, np.ndarray]]:
    """A full-sequence dataset of the layout before last-token shards, written by hand per the format spec."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from huggingface_hub import HfApi
    from safetensors.numpy import save_file

    from fastprobe.sharing import PARQUET_PATH, embed_metadata

    rng = np.random.default_rng(0)
    prompts = ["alpha", "beta", "gamma", "delta", "epsilon"]
    lengths = [3, 1, 4, 2, 5]
    shard_sizes = [3, 2]
    tokens = {
        p: {layer: rng.standard_normal((n, 8)).astype(np.float32) for layer in (0, 5)}
        for p, n in zip(prompts, lengths, strict=True)
    }
    folder = tmp_path / repo
    (folder / "tensors").mkdir(parents=True)
    (folder / "index").mkdir()
    start = 0
    for s, size in enumerate(shard_sizes):
        members = prompts[start : start + size]
        start += size
        for layer in (0, 5):
            save_file(
                {f"hidden.layer_{layer}": np.concatenate([tokens[p][layer] for p in members])},
                str(folder / f"tensors/hidden_layer{layer:03d}_shard{s:03d}.safetensors"),
            )
    info = {
        "format_version": "2.0",
        "model": {"name": "org/legacy-model", "revision": None},
        "num_prompts": 5,
        "prompt_ordering": "random",
        "tensors": {
            "hidden_layers": {
                "type": "hidden",
                "layers": [0, 5],
                "dim": 8,
                "dtype": "float32",
                "layout": "per_layer",
                "file_pattern": "tensors/hidden_layer{layer:03d}_shard{shard:03d}.safetensors",
                "key_pattern": "hidden.layer_{layer}",
                "storage": "full_sequence",
                "shards": [{"num_prompts": 3, "num_tokens": 8}, {"num_prompts": 2, "num_tokens": 7}],
            }
        },
        "provenance": {"lmprobe_version": "0.8.0"},
    }
    table = pa.table(
        {
            "text": pa.array(prompts, type=pa.string()),
            "label": pa.array([0, 1, 0, 1, 1], type=pa.int32()),
            "num_tokens": pa.array(lengths, type=pa.int32()),
            "shard_index": pa.array([0, 0, 0, 1, 1], type=pa.int32()),
            "row_offset": pa.array([0, 1, 2, 0, 1], type=pa.int32()),
            "token_offset": pa.array([0, 3, 4, 8, 10], type=pa.int64()),
            "source": pa.array(["a", "b", "c", "d", "e"], type=pa.string()),
        }
    )
    pq.write_table(embed_metadata(table, info), str(folder / PARQUET_PATH))
    api = HfApi(token=TOKEN)
    api.create_repo(repo, repo_type="dataset")
    api.upload_folder(repo_id=repo, folder_path=str(folder), repo_type="dataset")
    return tokens


def test_migrate_dataset_splits_last_tokens(hub, tmp_path):
    import lmprobe.sharing as lms

    from fastprobe.sharing import fetch_dataset_metadata, load_activations, migrate_dataset

    tokens = _legacy_full_sequence(hub, tmp_path, "me/legacy")
    # the old layout reads too: the last token is found from the token offsets
    before = load_activations("me/legacy", token=TOKEN, show_progress=False)
    for layer in (0, 5):
        np.testing.assert_array_equal(before[layer], np.stack([tokens[p][layer][-1] for p in tokens]))
    summary = migrate_dataset("me/legacy", token=TOKEN, dry_run=True, shard_max_bytes=2 * 8 * 4)
    assert summary == "[DRY RUN] Would migrate me/legacy: 5 prompts, 2 layers, 3 lt shards + 2 rest shards"
    commits = hub.state.commits_made
    assert migrate_dataset("me/legacy", token=TOKEN, shard_max_bytes=2 * 8 * 4, private=True).endswith(
        "/datasets/me/legacy"
    )
    assert hub.state.commits_made == commits + 1 and hub.state.repo("dataset", "me/legacy").private
    meta = fetch_dataset_metadata("me/legacy", token=TOKEN)
    hidden = meta.tensor_descriptors["hidden_layers"]
    assert hidden["last_token_shards"] == 3
    assert hidden["shards"] == [
        {"num_prompts": 2, "num_tokens": 2},
        {"num_prompts": 2, "num_tokens": 2},
        {"num_prompts": 1, "num_tokens": 1},
        {"num_prompts": 3, "num_tokens": 5},
        {"num_prompts": 2, "num_tokens": 5},
    ]
    for pooling in ("last_token", "mean", "first_token"):
        after = load_activations("me/legacy", pooling=pooling, token=TOKEN, show_progress=False)
        theirs = (
            lms.load_activations("me/legacy", token=TOKEN, show_progress=False) if pooling == "last_token" else None
        )
        for layer in (0, 5):
            reduce = {"last_token": lambda t: t[-1], "mean": lambda t: t.mean(0), "first_token": lambda t: t[0]}[
                pooling
            ]
            np.testing.assert_allclose(after[layer], np.stack([reduce(tokens[p][layer]) for p in tokens]), rtol=1e-6)
            if theirs is not None:
                np.testing.assert_array_equal(theirs[layer], after[layer])
    import pyarrow.parquet as pq

    index = pq.read_table(_saved(hub, "me/legacy", tmp_path / "migrated")).to_pydict()
    assert index["source"] == ["a", "b", "c", "d", "e"] and index["label"] == [0, 1, 0, 1, 1]
    assert index["token_shard_ids"][2] == [3, 3, 3, 1] and index["token_shard_offsets"][2] == [2, 3, 4, 0]
    with pytest.raises(InvalidInputError, match="already has last-token shard splitting"):
        migrate_dataset("me/legacy", token=TOKEN)


def test_migrate_dataset_agrees_with_lmprobe(hub, tmp_path, monkeypatch):
    """lmprobe's migration of the same dataset (its upload adapted to huggingface_hub 2.4) gives the same dataset."""
    import lmprobe.sharing as lms
    from huggingface_hub import HfApi
    from safetensors.numpy import load

    from fastprobe.sharing import fetch_dataset_metadata, migrate_dataset, read_index

    def upload_large_folder(self, repo_id, folder_path, repo_type=None, **kwargs):  # absent from huggingface_hub 2.4
        return self.upload_folder(repo_id=repo_id, folder_path=folder_path, repo_type=repo_type)

    monkeypatch.setattr(HfApi, "upload_large_folder", upload_large_folder, raising=False)
    _legacy_full_sequence(hub, tmp_path / "a", "me/ours")
    _legacy_full_sequence(hub, tmp_path / "b", "me/theirs")
    migrate_dataset("me/ours", token=TOKEN, shard_max_bytes=64)
    lms.migrate_dataset("me/theirs", token=TOKEN, shard_max_bytes=64)
    ours, theirs = (fetch_dataset_metadata(r, token=TOKEN) for r in ("me/ours", "me/theirs"))
    assert ours.tensor_descriptors == theirs.tensor_descriptors
    ours_index = read_index(_saved(hub, "me/ours", tmp_path / "ours"))
    theirs_index = read_index(_saved(hub, "me/theirs", tmp_path / "theirs"))
    assert ours_index == theirs_index
    ours_files = {k: v for k, v in hub.state.files("dataset", "me/ours").items() if k.startswith("tensors/")}
    theirs_files = {k: v for k, v in hub.state.files("dataset", "me/theirs").items() if k.startswith("tensors/")}
    assert sorted(ours_files) == sorted(theirs_files)
    for name, content in ours_files.items():
        mine, other = load(content), load(theirs_files[name])
        assert list(mine) == list(other)
        for key in mine:
            np.testing.assert_array_equal(mine[key], other[key])


def test_migrate_refuses_pooled_datasets(model, hub, exact_cache):
    from fastprobe.sharing import migrate_dataset, push_dataset

    _warm(model, [0])
    push_dataset("me/pooled", model, PROMPTS[:3], token=TOKEN)
    with pytest.raises(InvalidInputError, match="not full_sequence"):
        migrate_dataset("me/pooled", token=TOKEN)


def _v1_dataset(hub: HubStandIn, tmp_path: pathlib.Path, repo: str) -> np.ndarray:
    """A format 1.1 dataset: metadata in lmprobe_info.json, per-type hidden columns in the index."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from huggingface_hub import HfApi
    from safetensors.numpy import save_file

    from fastprobe.sharing import INFO_FILENAME, PARQUET_PATH

    rows = np.arange(3 * 4, dtype=np.float32).reshape(3, 4)
    folder = tmp_path / repo
    (folder / "tensors").mkdir(parents=True)
    (folder / "index").mkdir()
    save_file({"hidden.layer_7": rows}, str(folder / "tensors/hidden_layer007_shard000.safetensors"))
    info = {
        "format_version": "1.1",
        "model": {"name": "org/old", "revision": None},
        "num_prompts": 3,
        "prompt_ordering": "random",
        "tensor_types": {
            "hidden_layers": {
                "type": "hidden",
                "layers": [7],
                "dim": 4,
                "dtype": "float32",
                "layout": "per_layer",
                "storage": "pooled",
                "pooling": "last_token",
                "row_bytes": 16,
                "shards": [{"num_prompts": 3}],
            }
        },
        "provenance": {"lmprobe_version": "0.7.0"},
    }
    (folder / INFO_FILENAME).write_text(json.dumps(info))
    table = pa.table(
        {
            "text": pa.array(["x", "y", "z"], type=pa.string()),
            "label": pa.array([1, 0, 1], type=pa.int32()),
            "num_tokens": pa.array([2, 2, 3], type=pa.int32()),
            "shard_index": pa.array([0, 0, 0], type=pa.int32()),
            "row_offset": pa.array([0, 1, 2], type=pa.int32()),
            "shard_index_hidden": pa.array([0, 0, 0], type=pa.int32()),
            "row_offset_hidden": pa.array([0, 1, 2], type=pa.int32()),
        }
    )
    pq.write_table(table, str(folder / PARQUET_PATH))
    api = HfApi(token=TOKEN)
    api.create_repo(repo, repo_type="dataset")
    api.upload_folder(repo_id=repo, folder_path=str(folder), repo_type="dataset")
    return rows


def test_upgrade_dataset_format_embeds_the_json(hub, tmp_path):
    import lmprobe.sharing as lms
    import pyarrow.parquet as pq

    from fastprobe.sharing import INFO_FILENAME, fetch_dataset_metadata, load_activations, upgrade_dataset_format

    rows = _v1_dataset(hub, tmp_path, "me/v1")
    _v1_dataset(hub, tmp_path / "copy", "me/v1-lmprobe")
    with pytest.raises(InvalidInputError, match="uses v1 format"):
        fetch_dataset_metadata("me/v1", token=TOKEN)
    assert upgrade_dataset_format("me/v1", token=TOKEN, dry_run=True) == (
        "[DRY RUN] Would upgrade me/v1: model=org/old, 3 prompts, format 2.0"
    )
    assert INFO_FILENAME in hub.state.files("dataset", "me/v1")
    assert upgrade_dataset_format("me/v1", token=TOKEN) == f"{hub.url}/datasets/me/v1"
    assert INFO_FILENAME not in hub.state.files("dataset", "me/v1")
    meta = fetch_dataset_metadata("me/v1", token=TOKEN)
    assert (meta.format_version, meta.model_name, meta.available_layers) == ("2.0", "org/old", [7])
    hidden = meta.tensor_descriptors["hidden_layers"]
    assert hidden["file_pattern"] == "tensors/hidden_layer{layer:03d}_shard{shard:03d}.safetensors"
    assert hidden["key_pattern"] == "hidden.layer_{layer}"
    acts, labels = load_activations("me/v1", token=TOKEN, show_progress=False, return_labels=True)
    np.testing.assert_array_equal(acts[7], rows)
    assert labels.tolist() == [1, 0, 1]
    ours = pq.read_table(_saved(hub, "me/v1", tmp_path / "ours"))
    assert "shard_index_hidden" not in ours.column_names and "row_offset_hidden" not in ours.column_names
    # lmprobe's upgrade of the same dataset gives the same index
    lms.upgrade_dataset_format("me/v1-lmprobe", token=TOKEN)
    theirs = pq.read_table(_saved(hub, "me/v1-lmprobe", tmp_path / "theirs"))
    assert theirs.schema.metadata == ours.schema.metadata and theirs.to_pydict() == ours.to_pydict()
    # already 2.0: nothing to do (lmprobe needs the JSON file for this; fastprobe does not)
    assert upgrade_dataset_format("me/v1", token=TOKEN, dry_run=True) == f"{hub.url}/datasets/me/v1 (already v2)"
    assert upgrade_dataset_format("me/v1", token=TOKEN) == f"{hub.url}/datasets/me/v1"


# ---------------------------------------------------------------------------------------------- errors


def test_missing_packages_name_the_extra(monkeypatch):
    from fastprobe.sharing import fetch_dataset_metadata, push_dataset

    for package in ("pyarrow", "huggingface_hub"):
        with monkeypatch.context() as m:
            m.setitem(sys.modules, package, None)
            if package == "pyarrow":
                m.setitem(sys.modules, "pyarrow.parquet", None)
            with pytest.raises(MissingDependencyError, match=r"pip install 'fastprobe\[hub\]'") as err:
                push_dataset("me/x", "model", ["a"])
            assert isinstance(err.value, ImportError) and package in str(err.value)
            with pytest.raises(MissingDependencyError, match=package):
                fetch_dataset_metadata("me/x")


def test_missing_datasets_and_files(hub, model, exact_cache):
    from huggingface_hub.errors import RepositoryNotFoundError

    from fastprobe.sharing import fetch_dataset_metadata, load_activations, pull_dataset, push_dataset

    for call in (fetch_dataset_metadata, load_activations, pull_dataset):
        with pytest.raises(RepositoryNotFoundError):
            call("me/nothing-here", token=TOKEN)
    _warm(model, [0])
    push_dataset("me/some", model, PROMPTS[:4], token=TOKEN)
    with pytest.raises(MissingActivationsError, match="No cached activations for 1 prompt") as err:
        load_activations("me/some", prompts=[PROMPTS[0], "never pushed"], token=TOKEN, show_progress=False)
    assert "never pushed" in str(err.value)
    with pytest.raises(InvalidInputError, match=r"Layers \[9\] not in dataset. Available: \[0\]"):
        load_activations("me/some", layers=[0, 9], token=TOKEN)
    with pytest.raises(InvalidInputError, match="stores only the last-token vector"):
        load_activations("me/some", pooling="mean", token=TOKEN)
    with pytest.raises(UnknownOptionError, match="unknown pooling 'median'"):
        load_activations("me/some", pooling="median", token=TOKEN)


def test_prompts_missing_from_the_cache(model, hub, exact_cache):
    from fastprobe.sharing import fetch_dataset_metadata, push_dataset

    _warm(model, [0], PROMPTS[:3])
    prompts = [*PROMPTS[:3], "not cached", "nor this"]
    with pytest.raises(MissingActivationsError, match="No cached data for prompt index 3: 'not cached'"):
        push_dataset("me/partial", model, prompts, token=TOKEN, skip_missing=False)
    with pytest.warns(UserWarning, match="2 of 5 prompts are not cached"):
        push_dataset("me/partial", model, prompts, labels=[1, 0, 1, 0, 1], token=TOKEN)
    assert sorted(fetch_dataset_metadata("me/partial", token=TOKEN).prompts) == sorted(PROMPTS[:3])
    with pytest.raises(MissingActivationsError, match="No prompts have cached data"):
        push_dataset("me/none", model, ["not cached"], token=TOKEN)
    with pytest.raises(MissingActivationsError, match="No prompts have cached data"):
        push_dataset("me/none", "another/model", PROMPTS[:3], token=TOKEN)


def test_bad_push_arguments(model, hub, exact_cache):
    from fastprobe.sharing import push_dataset

    _warm(model, [0], PROMPTS[:3])
    prompts = PROMPTS[:3]
    cases = [
        (dict(prompts=[]), InvalidInputError, "No prompts provided"),
        (dict(prompts="one prompt"), ArgumentTypeError, "list of strings"),
        (dict(prompts=["fine", 3]), ArgumentTypeError, r"prompts\[1\] must be a string"),
        (dict(labels=[1, 0]), InvalidInputError, r"labels length \(2\) != prompts length \(3\)"),
        (dict(metadata=[{"a": 1}]), InvalidInputError, r"metadata length \(1\) != prompts length \(3\)"),
        (dict(metadata=[{"a": 1}, {"a": 2}, {"b": 3}]), InvalidInputError, r"metadata\[2\] has keys \['b'\]"),
        (dict(metadata=[{"text": "x"}] * 3), InvalidInputError, "index columns"),
        (dict(shard_max_bytes=0), InvalidInputError, "shard_max_bytes must be a positive integer"),
        (dict(stream_batch_size=0), InvalidInputError, "stream_batch_size must be a positive integer"),
        (dict(preload="all"), UnknownOptionError, "preload must be one of"),
        (dict(tensors=["logits_topk"]), InvalidInputError, "No tensor types available to push"),
        (dict(repo_id=""), InvalidInputError, "repo_id must be a repository id"),
    ]
    for overrides, error, message in cases:
        args = {"repo_id": "me/bad", "model_name": model, "prompts": prompts, "token": TOKEN, **overrides}
        with pytest.raises(error, match=message):
            push_dataset(**args)
    assert hub.state.repo("dataset", "me/bad") is None
    with pytest.warns(UserWarning, match="Unknown tensor filter key"):
        push_dataset("me/ok", model, prompts, token=TOKEN, tensors=["hidden_layers", "attention"])


def test_pull_of_an_lmprobe_dataset_whose_model_is_absent_downloads_and_warns(hub, tmp_path, exact_cache):
    from fastprobe.sharing import load_activations, pull_dataset

    tokens = _legacy_full_sequence(hub, tmp_path, "me/absent")
    with pytest.warns(UserWarning, match="not written into fastprobe's activation cache"):
        assert pull_dataset("me/absent", token=TOKEN) == 5
    hub.stop()  # everything needed is in the Hugging Face cache now
    from huggingface_hub.utils import close_session

    close_session()  # a later process: no connection to the old server is left
    acts = load_activations("me/absent", token=TOKEN, show_progress=False)
    np.testing.assert_array_equal(acts[5], np.stack([tokens[p][5][-1] for p in tokens]))


# ---------------------------------------------------------------------------------------------- the example


def test_example_script_runs_against_the_stand_in(model, hub, tmp_path, exact_cache, capsys):
    import runpy

    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "share_activations.py"
    namespace = runpy.run_path(str(script))
    namespace["main"](["me/example", "--model", model, "--endpoint", hub.url, "--token", TOKEN, "--layers", "0,1"])
    out = capsys.readouterr().out
    assert "pushed" in out and "best layer" in out


# ---------------------------------------------------------------------------------------------- the API


@pytest.mark.parametrize(
    "name",
    [
        "push_dataset",
        "pull_dataset",
        "load_activations",
        "load_activation_dataset",
        "fetch_dataset_metadata",
        "migrate_dataset",
        "upgrade_dataset_format",
        "DatasetMetadata",
    ],
)
def test_signatures_are_lmprobes(name):
    import inspect

    import lmprobe
    import lmprobe.sharing as lms

    import fastprobe
    import fastprobe.sharing as fps

    def params(obj):
        return [(p.name, p.kind, p.default) for p in inspect.signature(obj).parameters.values()]

    assert params(getattr(fps, name)) == params(getattr(lms, name))
    assert getattr(fastprobe, name) is getattr(fps, name)
    assert getattr(lmprobe, name) is getattr(lms, name)
    for constant in ("FORMAT_VERSION", "DEFAULT_SHARD_BYTES", "INFO_FILENAME", "PARQUET_PATH"):
        assert getattr(fps, constant) == getattr(lms, constant)
