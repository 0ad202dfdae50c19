"""The architectures the tiny test models come in, the auto class that loads each, and their shared size limit."""

from __future__ import annotations

__all__ = ["ARCHITECTURES", "AUTO_CLASSES", "MAX_POSITIONS", "check_arch"]

ARCHITECTURES: tuple[str, ...] = ("llama", "gpt2", "gpt_neox", "bert", "opt", "qwen2", "gemma2", "llava")
"""Architectures supported by :func:`build_tiny_model` and :func:`tiny_model`: Llama, GPT-2, GPT-NeoX (Pythia),
BERT, OPT, Qwen2 (biased query/key/value projections), Gemma 2 (scaled embeddings, norms after attention and MLP)
and LLaVA (a multimodal model whose language model is a Llama, sized by ``text_config``)."""

#: The ``transformers`` auto class that loads each architecture with its head.
AUTO_CLASSES: dict[str, str] = {
    "llama": "AutoModelForCausalLM",
    "gpt2": "AutoModelForCausalLM",
    "gpt_neox": "AutoModelForCausalLM",
    "bert": "AutoModel",
    "opt": "AutoModelForCausalLM",
    "qwen2": "AutoModelForCausalLM",
    "gemma2": "AutoModelForCausalLM",
    "llava": "AutoModelForImageTextToText",
}

MAX_POSITIONS: int = 128
"""Maximum sequence length of the tiny models (and ``model_max_length`` of their tokenizers)."""


def check_arch(arch: str) -> None:
    """Raise ``ValueError`` naming the valid choices if ``arch`` is not a supported architecture.

    Parameters
    ----------
    arch : str
        Architecture name to validate.

    Raises
    ------
    ValueError
        If ``arch`` is not in :data:`ARCHITECTURES`.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; valid choices are: {', '.join(ARCHITECTURES)}")
