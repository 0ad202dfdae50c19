"""Tiny random-weight Hugging Face models of each test architecture, built from code and cached per process."""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

from fastprobe.testing.architectures import MAX_POSITIONS, check_arch
from fastprobe.testing.tokenizers import build_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

__all__ = ["build_tiny_model", "tiny_model"]


def _build_model(
    arch: str,
    tokenizer: PreTrainedTokenizerFast,
    *,
    num_layers: int,
    hidden_size: int,
    num_heads: int,
    max_positions: int = MAX_POSITIONS,
) -> PreTrainedModel:
    """Instantiate a randomly initialised model of ``arch`` sized to ``tokenizer``.

    Parameters
    ----------
    arch : str
        One of :data:`ARCHITECTURES`.
    tokenizer : transformers.PreTrainedTokenizerFast
        Tokenizer from :func:`build_tokenizer`; provides the vocabulary size and special-token ids.
    num_layers : int
        Number of transformer blocks.
    hidden_size : int
        Width of the residual stream.
    num_heads : int
        Number of attention heads; must divide ``hidden_size``.
    max_positions : int, default :data:`MAX_POSITIONS`
        Maximum sequence length.

    Returns
    -------
    transformers.PreTrainedModel
        The model in evaluation mode, with weights drawn from the current torch random state.
    """
    import transformers

    vocab_size = len(tokenizer)
    intermediate = 4 * hidden_size
    if arch == "llama":
        llama_config = transformers.LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            intermediate_size=intermediate,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            num_key_value_heads=num_heads,
            max_position_embeddings=max_positions,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=False,
        )
        return transformers.LlamaForCausalLM(llama_config).eval()
    if arch == "gpt2":
        gpt2_config = transformers.GPT2Config(
            vocab_size=vocab_size,
            n_embd=hidden_size,
            n_inner=intermediate,
            n_layer=num_layers,
            n_head=num_heads,
            n_positions=max_positions,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        return transformers.GPT2LMHeadModel(gpt2_config).eval()
    if arch == "gpt_neox":
        neox_config = transformers.GPTNeoXConfig(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            intermediate_size=intermediate,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            max_position_embeddings=max_positions,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=False,
        )
        return transformers.GPTNeoXForCausalLM(neox_config).eval()
    common = {
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_attention_heads": num_heads,
        "max_position_embeddings": max_positions,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if arch == "opt":
        opt_config = transformers.OPTConfig(
            **common, ffn_dim=intermediate, num_hidden_layers=num_layers, word_embed_proj_dim=hidden_size
        )
        return transformers.OPTForCausalLM(opt_config).eval()
    if arch == "qwen2":
        qwen_config = transformers.Qwen2Config(
            **common,
            intermediate_size=intermediate,
            num_hidden_layers=num_layers,
            num_key_value_heads=max(1, num_heads // 2),
            tie_word_embeddings=False,
        )
        return transformers.Qwen2ForCausalLM(qwen_config).eval()
    if arch == "gemma2":
        gemma_config = transformers.Gemma2Config(
            **common,
            intermediate_size=intermediate,
            num_hidden_layers=num_layers,
            num_key_value_heads=num_heads,
            head_dim=hidden_size // num_heads,
            sliding_window=max_positions,
        )
        return transformers.Gemma2ForCausalLM(gemma_config).eval()
    if arch == "llava":
        text = transformers.LlamaConfig(
            **common,
            intermediate_size=intermediate,
            num_hidden_layers=num_layers,
            num_key_value_heads=num_heads,
            tie_word_embeddings=False,
        )
        vision = transformers.CLIPVisionConfig(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=8, patch_size=4
        )
        llava_config = transformers.LlavaConfig(
            vision_config=vision, text_config=text, image_token_index=tokenizer.unk_token_id
        )
        return transformers.LlavaForConditionalGeneration(llava_config).eval()
    # arch == "bert" (validated by the caller)
    bert_config = transformers.BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        max_position_embeddings=max_positions,
        type_vocab_size=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    return transformers.BertModel(bert_config).eval()


def build_tiny_model(
    arch: str,
    directory: str | os.PathLike[str],
    *,
    seed: int = 0,
    padding_side: str = "right",
    num_layers: int = 4,
    hidden_size: int = 32,
    num_heads: int = 4,
    vocabulary: str = "words",
    max_positions: int = MAX_POSITIONS,
) -> pathlib.Path:
    """Build a tiny random-weight model and its tokenizer, and save both to ``directory``.

    The saved directory loads back offline with the auto class named in :data:`AUTO_CLASSES` (``"llama"``, ``"gpt2"``,
    ...), and with ``AutoTokenizer.from_pretrained``.
    Weights are drawn after ``torch.manual_seed(seed)`` inside a forked RNG, so the caller's global torch random
    state is left untouched and the same arguments always give bit-identical weights.

    Parameters
    ----------
    arch : str
        One of :data:`ARCHITECTURES`.
    directory : str or os.PathLike
        Target directory; created if missing. Existing model/tokenizer files in it are overwritten.
    seed : int, default 0
        Seed for the weight initialisation.
    padding_side : {"right", "left"}, default "right"
        Padding side stored with the tokenizer.
    num_layers : int, default 4
        Number of transformer blocks (the model returns ``num_layers + 1`` hidden states).
    hidden_size : int, default 32
        Width of the residual stream. Intermediate (MLP) size is ``4 * hidden_size``.
    num_heads : int, default 4
        Number of attention heads; must divide ``hidden_size``.
    vocabulary : {"words", "bytes"}, default "words"
        The tokenizer's vocabulary (see :func:`build_tokenizer`).
    max_positions : int, default :data:`MAX_POSITIONS`
        Maximum sequence length of the model and its tokenizer.

    Returns
    -------
    pathlib.Path
        The directory the model and tokenizer were saved to.

    Raises
    ------
    ValueError
        If ``arch`` is not in :data:`ARCHITECTURES`, ``padding_side`` is invalid, or the sizes are inconsistent.
    """
    import torch

    check_arch(arch)
    if num_layers < 1 or hidden_size < 1 or num_heads < 1:
        raise ValueError(
            f"num_layers, hidden_size and num_heads must be positive, got {num_layers}, {hidden_size}, {num_heads}"
        )
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})")

    path = pathlib.Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(padding_side, arch=arch, vocabulary=vocabulary, max_positions=max_positions)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _build_model(
            arch,
            tokenizer,
            num_layers=num_layers,
            hidden_size=hidden_size,
            num_heads=num_heads,
            max_positions=max_positions,
        )
    with _no_progress_bars():
        model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """Temporarily disable transformers' tqdm progress bars (e.g. "Writing model shards"), restoring the setting after.

    Yields
    ------
    None
        Control returns to the ``with`` block while progress bars are off.
    """
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    if was_enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


_CACHE_ROOT: pathlib.Path | None = None


def _cache_root() -> pathlib.Path:
    """Return the per-process temporary directory holding cached models, creating it on first use.

    Returns
    -------
    pathlib.Path
        A directory from :func:`tempfile.mkdtemp` that is removed at interpreter exit.
    """
    global _CACHE_ROOT
    if _CACHE_ROOT is None:
        _CACHE_ROOT = pathlib.Path(tempfile.mkdtemp(prefix="fastprobe-tiny-models-"))
        atexit.register(shutil.rmtree, _CACHE_ROOT, ignore_errors=True)
    return _CACHE_ROOT


@functools.cache
def _cached_tiny_model(arch: str, seed: int, padding_side: str) -> pathlib.Path:
    """Build the default-sized model for one ``(arch, seed, padding_side)`` key into the cache directory.

    Parameters
    ----------
    arch : str
        One of :data:`ARCHITECTURES`.
    seed : int
        Seed for the weight initialisation.
    padding_side : str
        Padding side stored with the tokenizer.

    Returns
    -------
    pathlib.Path
        The directory holding the saved model and tokenizer.
    """
    directory = _cache_root() / f"{arch}-seed{seed}-{padding_side}"
    return build_tiny_model(arch, directory, seed=seed, padding_side=padding_side)


def tiny_model(arch: str, *, seed: int = 0, padding_side: str = "right") -> pathlib.Path:
    """Return the directory of a default-sized tiny model, building it at most once per process.

    Models are saved under a temporary directory created with :func:`tempfile.mkdtemp` and removed at interpreter
    exit. Callers must treat the returned directory as read-only, since it is shared by every caller asking for the
    same ``(arch, seed, padding_side)``.

    Parameters
    ----------
    arch : str
        One of :data:`ARCHITECTURES`.
    seed : int, default 0
        Seed for the weight initialisation.
    padding_side : {"right", "left"}, default "right"
        Padding side stored with the tokenizer.

    Returns
    -------
    pathlib.Path
        Directory loadable with ``from_pretrained`` (see :func:`build_tiny_model`).

    Raises
    ------
    ValueError
        If ``arch`` is not in :data:`ARCHITECTURES` or ``padding_side`` is invalid.
    """
    check_arch(arch)
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    return _cached_tiny_model(arch, int(seed), padding_side)
