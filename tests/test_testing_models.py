"""Tests for ``fastprobe.testing``: the tiny random-weight models must be real, loadable Hugging Face models."""

from __future__ import annotations

import pathlib

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

import fastprobe.testing as testing

ARCHITECTURES = testing.ARCHITECTURES

SENTENCES = ["The city of Paris is in France.", "Tokyo is in Japan."]


def _auto_class(arch: str) -> type:
    import transformers

    return getattr(transformers, testing.AUTO_CLASSES[arch])  # type: ignore[no-any-return]


def _weights(path: pathlib.Path) -> dict[str, torch.Tensor]:
    return load_file(path / "model.safetensors")


def test_architectures() -> None:
    assert ARCHITECTURES == ("llama", "gpt2", "gpt_neox", "bert", "opt", "qwen2", "gemma2", "llava")
    assert set(testing.AUTO_CLASSES) == set(ARCHITECTURES)


@pytest.mark.parametrize("padding_side", ["left", "right"])
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_build_load_forward(arch: str, padding_side: str, tmp_path: pathlib.Path) -> None:
    path = testing.build_tiny_model(arch, tmp_path / "model", padding_side=padding_side)
    assert path == tmp_path / "model"
    assert (path / "config.json").is_file()
    assert (path / "model.safetensors").stat().st_size < 1_000_000

    model = _auto_class(arch).from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert model.config.model_type == arch
    assert not model.training
    assert tokenizer.padding_side == padding_side
    assert tokenizer.pad_token is not None
    text = model.config.get_text_config()  # the model's own config, or a multimodal model's language model's
    assert text.vocab_size == len(tokenizer)
    assert text.pad_token_id == tokenizer.pad_token_id
    if arch != "bert":
        assert text.bos_token_id == tokenizer.bos_token_id
        assert text.eos_token_id == tokenizer.eos_token_id

    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    lengths = mask.sum(dim=1)
    assert lengths[0] > lengths[1], "the two sentences must tokenize to different lengths"
    seq = ids.shape[1]
    n_pad = int(seq - lengths[1])
    pad_positions = slice(0, n_pad) if padding_side == "left" else slice(seq - n_pad, seq)
    assert torch.all(mask[1, pad_positions] == 0)
    assert torch.all(ids[1, pad_positions] == tokenizer.pad_token_id)

    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    assert len(out.hidden_states) == text.num_hidden_layers + 1 == 4 + 1
    for hidden in out.hidden_states:
        assert hidden.shape == (2, seq, 32)
        assert torch.isfinite(hidden).all()
    if arch != "bert":
        assert out.logits.shape == (2, seq, len(tokenizer))


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_custom_sizes(arch: str, tmp_path: pathlib.Path) -> None:
    path = testing.build_tiny_model(arch, tmp_path, num_layers=2, hidden_size=16, num_heads=2)
    model = _auto_class(arch).from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    with torch.no_grad():
        out = model(**tokenizer(SENTENCES, padding=True, return_tensors="pt"), output_hidden_states=True)
    assert len(out.hidden_states) == 3
    assert out.hidden_states[-1].shape[::2] == (2, 16)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_seed_determinism(arch: str, tmp_path: pathlib.Path) -> None:
    first = _weights(testing.build_tiny_model(arch, tmp_path / "a", seed=0))
    again = _weights(testing.build_tiny_model(arch, tmp_path / "b", seed=0))
    other = _weights(testing.build_tiny_model(arch, tmp_path / "c", seed=1))
    assert first.keys() == again.keys() == other.keys()
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)
    # Every randomly initialised matrix differs between seeds.
    assert all(not torch.equal(first[name], other[name]) for name in first if first[name].ndim == 2)


def test_global_rng_untouched(tmp_path: pathlib.Path) -> None:
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    testing.build_tiny_model("llama", tmp_path, seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_unknown_arch_raises(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="mistral") as excinfo:
        testing.build_tiny_model("mistral", tmp_path)
    assert all(arch in str(excinfo.value) for arch in ARCHITECTURES)
    with pytest.raises(ValueError, match="llama, gpt2, gpt_neox, bert"):
        testing.tiny_model("mistral")
    with pytest.raises(ValueError, match="llama, gpt2, gpt_neox, bert"):
        testing.build_tokenizer(arch="mistral")


def test_invalid_padding_side() -> None:
    with pytest.raises(ValueError, match="padding_side"):
        testing.build_tokenizer("middle")


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_tiny_model_is_cached(arch: str) -> None:
    path = testing.tiny_model(arch)
    assert testing.tiny_model(arch) == path
    assert testing.tiny_model(arch, seed=1) != path
    left = testing.tiny_model(arch, padding_side="left")
    assert left != path
    assert AutoTokenizer.from_pretrained(left).padding_side == "left"
    assert AutoTokenizer.from_pretrained(path).padding_side == "right"
    assert _auto_class(arch).from_pretrained(path).config.model_type == arch


def test_tokenizer_is_deterministic() -> None:
    assert testing.build_tokenizer().get_vocab() == testing.build_tokenizer().get_vocab()
    assert testing.build_tokenizer(arch="bert").get_vocab() == testing.build_tokenizer(arch="bert").get_vocab()


def test_causal_tokenizer() -> None:
    tokenizer = testing.build_tokenizer()
    assert tokenizer.padding_side == "right"
    assert len(tokenizer) > 500
    tokens = tokenizer.tokenize("The city of Paris is in France.")
    assert tokens == ["The", "city", "of", "Paris", "is", "in", "France", "."]
    ids = tokenizer("The city of Paris is in France.")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.unk_token_id not in ids
    for name in ["Tokyo", "Japan", "Berlin", "Germany", "Rome", "Italy", "Madrid", "Spain", "Cairo", "Egypt"]:
        assert name in tokenizer.get_vocab()
    # Unknown words become the unk token; digits are split individually.
    assert tokenizer.tokenize("Zyxwv 42!") == [tokenizer.unk_token, "4", "2", "!"]


def test_bert_tokenizer() -> None:
    tokenizer = testing.build_tokenizer("left", arch="bert")
    assert tokenizer.padding_side == "left"
    for token in ["[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"]:
        assert token in tokenizer.all_special_tokens
    ids = tokenizer("Lima is in Peru.")["input_ids"]
    assert ids[0] == tokenizer.cls_token_id
    assert ids[-1] == tokenizer.sep_token_id
    assert tokenizer.unk_token_id not in ids
