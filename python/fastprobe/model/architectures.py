"""Where each supported architecture keeps the modules that extraction hooks.

One lookup table serves every family: Llama, Mistral, Qwen and Gemma (``model.layers``), GPT-2 (``transformer.h``),
GPT-NeoX / Pythia (``gpt_neox.layers``), OPT (``decoder.layers``), BERT-style encoders (``encoder.layer``) and
multimodal models whose language model sits under ``language_model`` (their sizes come from ``text_config``).
Paths are searched in order; a model that matches none gets an error naming every path tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastprobe.exceptions import FastprobeError

__all__ = ["ATTENTION_PROJECTIONS", "BLOCK_PATHS", "MLP_PATHS", "Anatomy", "anatomy", "decoder_blocks"]

#: Attribute paths searched, in order, for a model's list of decoder (or encoder) blocks.
BLOCK_PATHS: tuple[str, ...] = (
    "model.layers",
    "model.language_model.layers",
    "model.decoder.layers",
    "transformer.h",
    "gpt_neox.layers",
    "layers",
    "language_model.layers",
    "language_model.model.layers",
    "decoder.layers",
    "h",
    "encoder.layer",
    "bert.encoder.layer",
)
#: Paths, relative to a block, of the attention output projection (whose input holds the heads side by side).
ATTENTION_PROJECTIONS: tuple[str, ...] = (
    "self_attn.o_proj",
    "self_attn.out_proj",
    "attn.c_proj",
    "attn.o_proj",
    "attn.out_proj",
    "attention.dense",
    "attention.output.dense",
    "self_attention.dense",
    "attention.o_proj",
)
#: Paths, relative to a block, of the module whose output is the MLP output.
MLP_PATHS: tuple[str, ...] = ("mlp", "feed_forward", "block_sparse_moe", "ffn", "fc2", "output.dense")


def _get_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def decoder_blocks(model: Any) -> Any:
    """Return the ``torch.nn.ModuleList`` of a model's transformer blocks.

    Raises
    ------
    FastprobeError
        If none of :data:`BLOCK_PATHS` holds a module list; the message names every path tried.
    """
    import torch

    for path in BLOCK_PATHS:
        blocks = _get_path(model, path)
        if isinstance(blocks, torch.nn.ModuleList) and len(blocks) > 0:
            return blocks
    raise FastprobeError(
        f"cannot find the transformer blocks of {type(model).__name__}: looked for a ModuleList at "
        + ", ".join(BLOCK_PATHS)
    )


def _text_config(config: Any) -> Any:
    getter = getattr(config, "get_text_config", None)
    text = getter() if callable(getter) else None
    return text if text is not None else getattr(config, "text_config", None) or config


def _first_int(config: Any, names: tuple[str, ...]) -> int | None:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


@dataclass(frozen=True)
class Anatomy:
    """The parts of one model that extraction reads.

    Attributes
    ----------
    model : torch.nn.Module
    blocks : torch.nn.ModuleList
    n_layers : int
    hidden_size : int
    n_heads : int or None
        Query heads per block (None when the configuration does not say).
    max_positions : int or None
        The longest input the model accepts, in tokens (None when the configuration does not say).
    """

    model: Any
    blocks: Any
    n_layers: int
    hidden_size: int
    n_heads: int | None
    max_positions: int | None

    def _find(self, layer: int, paths: tuple[str, ...], what: str) -> Any:
        block = self.blocks[layer]
        for path in paths:
            module = _get_path(block, path)
            if module is not None:
                return module
        raise FastprobeError(
            f"cannot find the {what} of block {layer} ({type(block).__name__}): looked for " + ", ".join(paths)
        )

    @property
    def is_causal(self) -> bool:
        """Whether every block's attention is causal (a token never reads a later one).

        Then a position's activations do not depend on the tokens after it.
        """
        flags = [m.is_causal for block in self.blocks for m in block.modules() if hasattr(m, "is_causal")]
        return bool(flags) and all(bool(f) for f in flags)

    def attention_projection(self, layer: int) -> Any:
        """Return the attention output projection of block ``layer`` (``nn.Linear`` or GPT-2's ``Conv1D``)."""
        return self._find(layer, ATTENTION_PROJECTIONS, "attention output projection")

    def mlp(self, layer: int) -> Any:
        """Return the module whose output is block ``layer``'s MLP output."""
        return self._find(layer, MLP_PATHS, "MLP")

    def head_weights(self, layer: int) -> Any:
        """Block ``layer``'s output projection split by head: ``(n_heads, head_dim, hidden)``.

        Head ``h``'s output is ``x[..., h * head_dim:(h + 1) * head_dim] @ W[h]`` for the projection's input ``x``.
        """
        proj = self.attention_projection(layer)
        if self.n_heads is None:
            raise FastprobeError(f"the configuration of {type(self.model).__name__} does not give its number of heads")
        conv1d = type(proj).__name__ == "Conv1D"  # GPT-2 style: weight is (in, out), out = x @ W + b
        weight = proj.weight if conv1d else proj.weight.T  # (in, out) either way
        width = weight.shape[0]
        if width % self.n_heads:
            raise FastprobeError(
                f"block {layer}'s attention projection takes {width} inputs, not a multiple of {self.n_heads} heads"
            )
        return weight.reshape(self.n_heads, width // self.n_heads, weight.shape[1])


def anatomy(model: Any) -> Anatomy:
    """Locate the blocks and sizes of a Hugging Face model (see the module documentation for the families)."""
    blocks = decoder_blocks(model)
    config = _text_config(model.config)
    hidden = _first_int(config, ("hidden_size", "n_embd", "d_model", "dim"))
    if hidden is None:
        raise FastprobeError(f"the configuration of {type(model).__name__} gives no hidden size")
    return Anatomy(
        model=model,
        blocks=blocks,
        n_layers=len(blocks),
        hidden_size=hidden,
        n_heads=_first_int(config, ("num_attention_heads", "n_head", "num_heads", "n_heads")),
        max_positions=_first_int(config, ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len")),
    )
