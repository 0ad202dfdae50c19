"""fastprobe.model: the one place models are loaded (full, weightless, with the LM head), fingerprints and tokens."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from fastprobe.model import (
    causal_lm,
    clear_model_cache,
    fingerprint_of,
    load_model,
    load_weightless,
    model_fingerprint,
    model_identity,
    pad_batch,
    tokenize,
)
from fastprobe.testing import tiny_model


def test_fingerprint_of_is_model_fingerprint_computed_once_per_model() -> None:
    loaded = load_model(tiny_model("gpt2"), device="cpu")
    fp = fingerprint_of(loaded)
    assert fp == model_fingerprint(loaded) and fingerprint_of(loaded) is fp
    assert model_identity(fp) == ("GPT2Model", fp["weights"], fp["tokenizer"]["vocab_size"])
    assert model_identity({"model": "m", "architecture": "A"}) == ("A", "m", None)
    clear_model_cache()
    again = load_model(tiny_model("gpt2"), device="cpu")
    assert again is not loaded and fingerprint_of(again) is not fp and fingerprint_of(again) == fp


def test_the_weightless_model_has_the_full_models_fingerprint_and_no_weights() -> None:
    path = tiny_model("llama")
    light = load_weightless(path, "cpu", "local")
    assert light is not None and load_weightless(path, "cpu", "local") is light
    assert next(light.model.parameters()).device.type == "meta"
    full = load_model(path, device="cpu")
    assert fingerprint_of(light) == fingerprint_of(full)
    assert (light.n_layers, light.hidden_size) == (full.n_layers, full.hidden_size)
    # Both describe the same files, device and dtype: one model with its head serves both.
    assert causal_lm(light) is causal_lm(full)
    assert type(causal_lm(full)).__name__ == "LlamaForCausalLM"


def test_weightless_is_none_without_weight_files(tmp_path: Path) -> None:
    copy = tmp_path / "no-weights"
    shutil.copytree(tiny_model("llama"), copy)
    for f in copy.glob("*.safetensors"):
        f.unlink()
    assert load_weightless(copy, "cpu", "local") is None


def test_pad_batch_pads_on_the_asked_side_with_positions_of_real_tokens() -> None:
    loaded = load_model(tiny_model("llama"), device="cpu")
    rows = tokenize(loaded, ["a b c d", "a"])
    n = len(rows[0]["input_ids"])
    right, left = pad_batch(loaded, rows), pad_batch(loaded, rows, side="left")
    short = len(rows[1]["input_ids"])
    assert right["attention_mask"][1].tolist() == [1] * short + [0] * (n - short)
    assert left["attention_mask"][1].tolist() == [0] * (n - short) + [1] * short
    assert left["input_ids"][1, n - short :].tolist() == rows[1]["input_ids"]
    assert torch.equal(left["position_ids"][1, n - short :], torch.arange(short))


def test_tokenize_refuses_what_a_forward_pass_cannot_run() -> None:
    from fastprobe import InvalidInputError

    loaded = load_model(tiny_model("llama"), device="cpu")
    with pytest.raises(InvalidInputError, match="prompt 1 must be a non-empty string"):
        tokenize(loaded, ["fine", ""])
