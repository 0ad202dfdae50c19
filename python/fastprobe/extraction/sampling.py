"""What every sampled generation shares: the end-of-sequence ids, seeds derived from a batch's rows, and a per-row stop.

:func:`~fastprobe.extraction.generate_batches` drives ``model.generate``; the workflows that sample through it (the
aligned-probing capture, the live monitor) seed each batch from its rows, end each row themselves one pass after its
end-of-sequence token (so that token's activations are read), and take the end-of-sequence ids from the model's
generation config and its tokenizer, as ``generate`` does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

__all__ = ["batch_seed", "eos_ids", "row_stopper"]


def eos_ids(lm: Any, tokenizer: Any) -> list[int]:
    """Return the sorted end-of-sequence ids of the model's generation config and its tokenizer."""
    out: set[int] = set()
    for value in (getattr(lm.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            out.add(value)
        elif value is not None:
            out.update(int(v) for v in value)
    return sorted(out)


def batch_seed(*parts: object) -> int:
    """Return a 63-bit seed from the SHA-256 of ``parts`` (their ``str``, joined): the same parts, the same seed."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def row_stopper(finished: Callable[[], Any]) -> Any:
    """Return a transformers ``StoppingCriteriaList`` that ends each row ``finished()`` marks (a (B,) bool tensor)."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class RowStop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return finished().to(input_ids.device).clone()

    return StoppingCriteriaList([RowStop()])
