"""The nnsight backend: local traces equal the hook backend; the NDIF (remote) path's construction and errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fastprobe import FastprobeError, InvalidInputError, UnknownOptionError
from fastprobe.extraction import extract_pooled, load_model
from fastprobe.testing import tiny_model

nnsight = pytest.importorskip("nnsight")

PROMPTS = ["The city of Paris is in France.", "Tokyo is in Japan.", "Rome", "Cairo is in Egypt."]
SITES = ["embed", 0, "attn.1", "head.1.2", "mlp.2", 3]


@pytest.mark.parametrize("arch", ["llama", "gpt2", "gpt_neox", "bert", "opt", "llava"])
def test_local_traces_equal_hooks(arch: str) -> None:
    path = tiny_model(arch, padding_side="left")
    hooks = load_model(path, device="cpu")
    traced = load_model(path, device="cpu", backend="nnsight")
    assert traced.backend == "nnsight" and traced.tracer is not None and not traced.remote
    want = extract_pooled(hooks, PROMPTS, SITES, ("last_token", "mean"), batch_size=3, progress=False)
    got = extract_pooled(traced, PROMPTS, SITES, ("last_token", "mean"), batch_size=3, progress=False)
    for pooling in want:
        np.testing.assert_allclose(got[pooling], want[pooling], atol=1e-6)


def test_backend_and_remote_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    path = tiny_model("llama")
    with pytest.raises(UnknownOptionError, match="unknown backend 'vllm'; expected one of: local, nnsight"):
        load_model(path, backend="vllm")
    with pytest.raises(InvalidInputError, match="remote=True runs on NDIF through nnsight; pass backend='nnsight'"):
        load_model("HuggingFaceTB/SmolLM2-135M", remote=True)
    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    with pytest.raises(FastprobeError, match="NDIF_API_KEY"):
        load_model("HuggingFaceTB/SmolLM2-135M", backend="nnsight", remote=True)
    monkeypatch.setenv("NDIF_API_KEY", "test-key")
    with pytest.raises(FastprobeError, match="named by its Hugging Face Hub id; .* is a local path"):
        load_model(path, backend="nnsight", remote=True)


def test_remote_request_is_built_from_the_stub(monkeypatch: pytest.MonkeyPatch) -> None:
    """No NDIF here: a stand-in for nnsight.LanguageModel records how fastprobe builds the stub and its traces, and
    runs them locally, so the saved values can be checked against the hook backend."""
    from transformers import AutoModel, AutoTokenizer

    path = tiny_model("llama", padding_side="left")
    calls: dict[str, Any] = {"init": [], "trace": []}

    class StubLanguageModel:
        def __init__(self, name: str, **kwargs: Any) -> None:
            calls["init"].append((name, kwargs))
            self._model = AutoModel.from_pretrained(path).eval()
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self._inner = nnsight.NNsight(self._model)

        def trace(self, *args: Any, remote: bool = False, **kwargs: Any) -> Any:
            calls["trace"].append((remote, sorted(kwargs)))
            return self._inner.trace(*args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

    monkeypatch.setattr(nnsight, "LanguageModel", StubLanguageModel)
    monkeypatch.setenv("NDIF_API_KEY", "test-key")
    remote = load_model("org/tiny-llama", backend="nnsight", remote=True)
    assert calls["init"] == [("org/tiny-llama", {"dispatch": False})]  # no weights are loaded for NDIF
    assert nnsight.CONFIG.API.APIKEY == "test-key"
    assert remote.remote and remote.device == "remote" and remote.n_layers == 4
    got = extract_pooled(remote, PROMPTS, ["attn.1", 2], ("last_token",), batch_size=2, progress=False)
    assert calls["trace"] and all(flag for flag, _ in calls["trace"])  # every trace was sent with remote=True
    assert all("use_cache" in keys and "input_ids" in keys for _, keys in calls["trace"])
    want = extract_pooled(load_model(path, device="cpu"), PROMPTS, ["attn.1", 2], progress=False)
    np.testing.assert_allclose(got["last_token"], want["last_token"], atol=1e-6)
