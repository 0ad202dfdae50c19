"""Tiny random-weight Hugging Face models for tests and benchmarks, and a stand-in Hugging Face Hub.

Everything here is built locally from code: the tokenizer vocabulary is a fixed list of common English words, place
names, digits and punctuation, and the model weights are drawn from a seeded random generator. Nothing is downloaded,
so the helpers work offline and are deterministic.

- :mod:`~fastprobe.testing.architectures`: the architectures, the auto class that loads each, the size limit.
- :mod:`~fastprobe.testing.tokenizers`: :func:`build_tokenizer`.
- :mod:`~fastprobe.testing.models`: :func:`build_tiny_model` and the per-process cache behind :func:`tiny_model`.
- :mod:`~fastprobe.testing.hub_cache`: tiny models in a Hugging Face hub cache under Hub ids, used offline
  (:func:`place_in_hub_cache`, :func:`hub_model`, :func:`offline_hub`).
- :mod:`~fastprobe.testing.hub_state`, :mod:`~fastprobe.testing.hub_http`, :mod:`~fastprobe.testing.hub_handler`,
  :mod:`~fastprobe.testing.hub_server`: a stand-in Hub on 127.0.0.1 (its repositories, its HTTP plumbing and routes,
  its server and :func:`use_hub`), re-exported by :mod:`fastprobe.testing_hub`.

Examples
--------
>>> from transformers import AutoModelForCausalLM, AutoTokenizer
>>> path = tiny_model("llama")  # doctest: +SKIP
>>> model = AutoModelForCausalLM.from_pretrained(path)  # doctest: +SKIP
>>> tokenizer = AutoTokenizer.from_pretrained(path)  # doctest: +SKIP
"""

from __future__ import annotations

from fastprobe.testing.architectures import ARCHITECTURES, AUTO_CLASSES
from fastprobe.testing.architectures import MAX_POSITIONS as MAX_POSITIONS
from fastprobe.testing.hub_cache import hub_model, offline_hub, place_in_hub_cache
from fastprobe.testing.models import build_tiny_model, tiny_model
from fastprobe.testing.tokenizers import build_tokenizer

__all__ = [
    "ARCHITECTURES",
    "AUTO_CLASSES",
    "build_tiny_model",
    "build_tokenizer",
    "hub_model",
    "offline_hub",
    "place_in_hub_cache",
    "tiny_model",
]
