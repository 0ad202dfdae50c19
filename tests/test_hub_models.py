"""Models named by Hugging Face Hub id, read offline from a Hugging Face cache, through every entry point.

A tiny Llama is placed in a temporary hub cache under ``acme/tiny-llama`` (default branch) and, with other weights,
under the revision ``v2``, as a download would have left them (blobs, a snapshot per commit, refs). Every test runs
with ``HF_HUB_OFFLINE=1`` and that cache. References: the same weights loaded from their local directory, the
snapshot's commit hash, and transformers' own forward pass.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from fastprobe import (
    ActivationBaseline,
    BaselineBattery,
    BaselineProbe,
    InvalidInputError,
    ModelLoadError,
    Probe,
    ProbeEnsemble,
    cache_info,
)
from fastprobe.extraction import extract_pooled, load_model, model_fingerprint
from fastprobe.model import resolve_model, weights_digest
from fastprobe.store import model_store
from fastprobe.testing import build_tiny_model, hub_model, offline_hub, place_in_hub_cache

REPO = "acme/tiny-llama"
SUBJECTS = ["I", "We", "They", "You", "People", "Tourists"]
VERBS = ["saw", "like", "love", "visited", "remember", "know"]
POS = [f"{s} {v} Paris" for s in SUBJECTS for v in VERBS]
NEG = [f"{s} {v} Tokyo" for s in SUBJECTS for v in VERBS]
TRAIN_POS, TRAIN_NEG = POS[::2], NEG[::2]
TEST = POS[1::2] + NEG[1::2]
TEST_Y = np.r_[np.ones(len(POS[1::2]), dtype=int), np.zeros(len(NEG[1::2]), dtype=int)]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    """A hub cache with two commits of ``acme/tiny-llama``, and the local directory of the first one's weights."""
    cache = tmp_path_factory.mktemp("hf-hub")
    local = build_tiny_model("llama", tmp_path_factory.mktemp("local") / "tiny", seed=0)
    main = place_in_hub_cache(local, REPO, cache)
    v2 = hub_model(REPO, cache, "llama", revision="v2", seed=1)
    return {"cache": cache, "local": local, "main": main, "v2": v2}


@pytest.fixture
def offline(hub: dict[str, pathlib.Path]) -> Iterator[dict[str, pathlib.Path]]:
    with offline_hub(hub["cache"]):
        yield hub


def test_resolution_pins_the_commit_and_reads_the_snapshot(offline: dict[str, pathlib.Path]) -> None:
    source = resolve_model(REPO)
    assert source.hub and source.commit == offline["main"].name and source.path == str(offline["main"])
    assert resolve_model(REPO, "v2").commit == offline["v2"].name
    assert resolve_model(REPO, offline["v2"].name).commit == offline["v2"].name  # a commit hash is a revision too
    local = resolve_model(offline["local"])
    assert not local.hub and local.commit is None
    # The snapshot's files are links into the cache's blobs; the digest follows them to the same bytes.
    assert weights_digest(offline["main"]) == weights_digest(offline["local"])


def test_a_hub_model_extracts_what_its_local_copy_extracts(offline: dict[str, pathlib.Path]) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    by_id = load_model(REPO, device="cpu")
    by_path = load_model(offline["local"], device="cpu")
    got = extract_pooled(by_id, POS[:6], [1], ("mean",), progress=False)["mean"]
    want = extract_pooled(by_path, POS[:6], [1], ("mean",), progress=False)["mean"]
    np.testing.assert_array_equal(got, want)
    # And transformers itself, given the id: block 1's output is hidden_states[2].
    tok = AutoTokenizer.from_pretrained(REPO)
    ref = AutoModel.from_pretrained(REPO).eval()
    with torch.no_grad():
        hidden = ref(**tok(POS[0], return_tensors="pt"), output_hidden_states=True).hidden_states[2][0]
    np.testing.assert_allclose(got[0], hidden.mean(0).numpy(), rtol=1e-5, atol=1e-6)
    fp = model_fingerprint(by_id)
    assert fp["model"] == REPO and fp["revision"] == offline["main"].name
    assert fp["weights"] == model_fingerprint(by_path)["weights"]


def test_two_revisions_never_share_activations(offline: dict[str, pathlib.Path]) -> None:
    main, v2 = load_model(REPO, device="cpu"), load_model(REPO, device="cpu", revision="v2")
    fp_main, fp_v2 = model_fingerprint(main), model_fingerprint(v2)
    assert fp_main["revision"] != fp_v2["revision"] and fp_main["weights"] != fp_v2["weights"]
    assert model_store(fp_main).path != model_store(fp_v2).path
    a = Probe(model=REPO, layers=1, device="cpu", random_state=0).fit(TRAIN_POS, TRAIN_NEG)
    b = Probe(model=REPO, revision="v2", layers=1, device="cpu", random_state=0).fit(TRAIN_POS, TRAIN_NEG)
    assert a.model_fingerprint_["revision"] == offline["main"].name
    assert b.model_fingerprint_["revision"] == offline["v2"].name
    stores = {m.model_hash for m in cache_info(REPO).models}
    assert {model_store(fp_main).path.name, model_store(fp_v2).path.name} <= stores
    assert not np.allclose(a.classifier_.coef_, b.classifier_.coef_)


def test_probe_sweep_and_save_load_by_hub_id(offline: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    by_id = Probe(model=REPO, layers=[1, 2], device="cpu", random_state=0).fit(TRAIN_POS, TRAIN_NEG)
    by_path = Probe(model=offline["local"], layers=[1, 2], device="cpu", random_state=0).fit(TRAIN_POS, TRAIN_NEG)
    np.testing.assert_allclose(by_id.predict_proba(TEST), by_path.predict_proba(TEST), rtol=1e-6)
    assert by_id.score(TEST, TEST_Y) == by_path.score(TEST, TEST_Y)
    sweep = Probe.sweep_layers(REPO, TRAIN_POS, TRAIN_NEG, layers="all", device="cpu", random_state=0)
    assert sweep.layers == [0, 1, 2, 3]
    np.testing.assert_allclose(
        sweep[1].predict_proba(TEST),
        Probe(model=REPO, layers=1, device="cpu", random_state=0).fit(TRAIN_POS, TRAIN_NEG).predict_proba(TEST),
        rtol=1e-6,
    )
    # Saved with a local path, loaded onto the Hub id of the same weights: it predicts as before.
    by_path.save(tmp_path / "probe.safetensors")
    moved = Probe.load(tmp_path / "probe.safetensors", model=REPO)
    np.testing.assert_allclose(moved.predict_proba(TEST), by_path.predict_proba(TEST), rtol=1e-6)
    # Onto another revision (other weights): refused when it first reads prompts.
    other = Probe.load(tmp_path / "probe.safetensors", model=REPO, revision="v2")
    with pytest.raises(InvalidInputError, match="different model"):
        other.predict(TEST)


def test_ensemble_and_baselines_by_hub_id(offline: dict[str, pathlib.Path]) -> None:
    ensemble = ProbeEnsemble.from_configs(REPO, [{"layers": 1}, {"layers": 2}], device="cpu", random_state=0)
    ensemble.fit(TRAIN_POS, TRAIN_NEG)
    by_path = ProbeEnsemble.from_configs(
        offline["local"], [{"layers": 1}, {"layers": 2}], device="cpu", random_state=0
    ).fit(TRAIN_POS, TRAIN_NEG)
    np.testing.assert_allclose(ensemble.predict_proba(TEST), by_path.predict_proba(TEST), rtol=1e-6)

    perplexity = BaselineProbe(method="perplexity", model=REPO, device="cpu", random_state=0)
    perplexity.fit(TRAIN_POS, TRAIN_NEG)
    local_ppl = BaselineProbe(method="perplexity", model=offline["local"], device="cpu", random_state=0)
    np.testing.assert_allclose(
        perplexity.predict_proba(TEST), local_ppl.fit(TRAIN_POS, TRAIN_NEG).predict_proba(TEST), rtol=1e-6
    )
    pca = ActivationBaseline(REPO, method="pca", layers=2, device="cpu", random_state=0, n_components=3)
    assert pca.fit(TRAIN_POS, TRAIN_NEG).predict(TEST).shape == (len(TEST),)

    battery = BaselineBattery(model=REPO, layers=2, device="cpu", random_state=0)
    results = battery.fit(TRAIN_POS, TRAIN_NEG, TEST, TEST_Y)
    assert {"perplexity", "random_direction", "pca", "layer_0"} <= set(results.names)


def test_a_model_that_cannot_be_loaded_is_an_error_everywhere(offline: dict[str, pathlib.Path]) -> None:
    missing = "acme/missing-model"
    with pytest.raises(ModelLoadError, match="'acme/missing-model' could not be loaded.*HF_HUB_OFFLINE=1"):
        load_model(missing, device="cpu")
    with pytest.raises(ModelLoadError, match="at revision 'v9'"):
        Probe(model=REPO, revision="v9", layers=1, device="cpu").fit(TRAIN_POS, TRAIN_NEG)
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        Probe(model=missing, layers=1, device="cpu").fit(TRAIN_POS, TRAIN_NEG)
    with pytest.raises(ModelLoadError):  # never a warning and a shorter table
        BaselineBattery(model=missing, device="cpu").fit(TRAIN_POS, TRAIN_NEG)
    with pytest.raises(ModelLoadError):
        BaselineProbe(method="perplexity", model=missing, device="cpu").fit(TRAIN_POS, TRAIN_NEG)
    with pytest.raises(ModelLoadError):
        ProbeEnsemble.from_configs(missing, [{"layers": 1}], device="cpu").fit(TRAIN_POS, TRAIN_NEG)
    with pytest.raises(OSError, match="does not exist or is not a directory"):  # also an OSError, as transformers'
        load_model("./no/such/model", device="cpu")
    with pytest.raises(InvalidInputError, match="revision='v2' applies to Hugging Face Hub ids"):
        load_model(offline["local"], device="cpu", revision="v2")


def test_environment_variables_alone_select_the_offline_cache(hub: dict[str, pathlib.Path]) -> None:
    """A new process configured only by HF_HUB_OFFLINE and HF_HUB_CACHE, as a user's shell would set them."""
    script = (
        "from fastprobe import Probe\n"
        f"p = Probe(model={REPO!r}, layers=1, device='cpu', random_state=0).fit({TRAIN_POS!r}, {TRAIN_NEG!r})\n"
        "print(p.model_fingerprint_['revision'])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(hub["cache"]), FASTPROBE_CACHE_DIR=str(hub["cache"] / "acts"))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == hub["main"].name


# huggingface_hub's LFS upload passes bytes through httpx's deprecated data= argument.
@pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning")
def test_online_a_hub_id_is_downloaded_and_a_new_commit_gets_its_own_activations(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Online, against a Hub stand-in on loopback: first use downloads into the cache; a push to main moves the id."""
    from huggingface_hub import HfApi, constants

    from fastprobe import clear_model_cache
    from fastprobe.testing_hub import HubStandIn, use_hub

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_TOKEN", "test")
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf-home" / "stored_tokens"))

    first = build_tiny_model("llama", tmp_path / "first", seed=0)
    second = build_tiny_model("llama", tmp_path / "second", seed=1)
    hub = HubStandIn()
    try:
        with use_hub(hub.url, hub_cache=tmp_path / "hf-cache"):
            api = HfApi(token="test")
            api.create_repo("online/tiny")
            api.upload_folder(repo_id="online/tiny", folder_path=first)
            commit1 = hub.state.repo("model", "online/tiny").branches["main"]
            a = Probe(model="online/tiny", layers=1, device="cpu", random_state=0).fit(TRAIN_POS, TRAIN_NEG)
            assert a.model_fingerprint_["revision"] == commit1
            snapshot = tmp_path / "hf-cache" / "models--online--tiny" / "snapshots" / commit1
            assert (snapshot / "model.safetensors").exists(), "downloaded into the Hugging Face cache"
            assert a.model_fingerprint_["weights"] == weights_digest(first)
            a_proba = a.predict_proba(TEST)

            api.upload_folder(repo_id="online/tiny", folder_path=second)  # a new commit on main
            commit2 = hub.state.repo("model", "online/tiny").branches["main"]
            clear_model_cache()  # a new process would resolve main again
            b = Probe(model="online/tiny", layers=1, device="cpu", random_state=0).fit(TRAIN_POS, TRAIN_NEG)
            assert commit2 != commit1 and b.model_fingerprint_["revision"] == commit2
            assert b.model_fingerprint_["weights"] == weights_digest(second)
            stores = {m.model_hash for m in cache_info("online/tiny").models}
            assert len(stores) == 2, "the two commits never share activations"
            with pytest.raises(InvalidInputError, match="different model"):  # main moved: not the weights of `a`
                a.predict_proba(TEST)
            old = Probe(model="online/tiny", revision=commit1, layers=1, device="cpu", random_state=0)
            np.testing.assert_allclose(old.fit(TRAIN_POS, TRAIN_NEG).predict_proba(TEST), a_proba, rtol=1e-6)
    finally:
        hub.stop()
