"""What every sampled generation shares: the sampler, end-of-sequence ids, per-batch seeds and a per-row stop.

:func:`~fastprobe.extraction.generate_batches` drives ``model.generate``; the workflows that sample through it (the
aligned-probing capture, the live monitor) draw each token with :class:`Sampler` (a seeded generator per row),
end each row themselves one pass after its end-of-sequence token (so that token's activations are read), and take
the end-of-sequence ids from the model's generation config and its tokenizer, as ``generate`` does.

Why a sampler of our own: ``generate``'s nucleus (top-p) filter sorts the whole vocabulary of every row at every
step, and its draw makes one random number per vocabulary entry. On SmolLM2 (49,152 entries, 16 rows, CPU) those
two take about 40 ms of a 157 ms step. :class:`Sampler` finds the nucleus among the 1,024 most probable tokens
(widening the search only when a row's nucleus is larger) and draws among the nucleus alone: about 5 ms there
(nuclei of 300 to 1,600 tokens). It keeps ``generate``'s definitions: the temperature divides the logits, top-k
keeps the ``top_k`` largest, and the nucleus is the smallest set of most probable tokens whose probabilities (after
top-k) sum to at least ``top_p``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Any

from fastprobe.exceptions import ArgumentTypeError, InvalidInputError

__all__ = ["SAMPLER_VERSION", "Sampler", "batch_seed", "eos_ids", "row_stopper", "sampling_kwargs"]

#: names the way tokens are drawn; a capture store records it, so a resumed run never mixes two ways of drawing
SAMPLER_VERSION = "fastprobe-nucleus-1"
#: how many of the most probable tokens the nucleus is first looked for among (widened 8x for a row that needs more)
FIRST_CANDIDATES = 1024


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


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or (not isinstance(value, (int, float)) and not hasattr(value, "__float__")):
        raise ArgumentTypeError(f"{name} must be a number; got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise InvalidInputError(f"{name} must be finite; got {value!r}")
    return out


class Sampler:
    """Draw each row's next token from its logits: temperature, then top-k, then the nucleus (top-p), then one draw.

    Used as a ``generate`` logits processor with ``do_sample=False``: it returns scores that are 0 at the drawn token
    and -inf elsewhere, so the greedy step takes the drawn token. :meth:`reseed` seeds the draws (call it before each
    batch); the same seed and logits give the same tokens.

    Parameters
    ----------
    temperature : float, default=1.0
        Above 0; the logits are divided by it.
    top_p : float, default=1.0
        In (0, 1]; 1 keeps every token.
    top_k : int, default=0
        0 keeps every token.
    """

    def __init__(self, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0) -> None:
        self.temperature = _number("temperature", temperature)
        if self.temperature <= 0:
            raise InvalidInputError(
                f"temperature must be above 0 (do_sample=False decodes greedily); got {temperature!r}"
            )
        self.top_p = _number("top_p", top_p)
        if not 0.0 < self.top_p <= 1.0:
            raise InvalidInputError(f"top_p must be in (0, 1]; got {top_p!r}")
        if isinstance(top_k, bool) or (not isinstance(top_k, int) and not hasattr(top_k, "__index__")):
            raise ArgumentTypeError(f"top_k must be an int (0: no top-k filter); got {top_k!r}")
        self.top_k = int(top_k)
        if self.top_k < 0:
            raise InvalidInputError(f"top_k must be at least 0 (0: no top-k filter); got {top_k!r}")
        self.seed: int | list[int] = 0
        self._generator: list[Any] | None = None

    def reseed(self, seed: int | Sequence[int]) -> None:
        """Seed the draws that follow: one seed for the batch, or one per row (fresh generators at the next step).

        With a seed per row, each row draws from its own generator, one uniform number per step, so its tokens do
        not depend on the rows batched with it (nor on the batch size).
        """
        self.seed = [int(v) for v in seed] if isinstance(seed, Sequence) else int(seed)
        self._generator = None

    def _uniforms(self, rows: int, device: Any) -> Any:
        """One uniform number in [0, 1) per row, float64, from the batch's generator or each row's own."""
        import torch

        seeds = self.seed if isinstance(self.seed, list) else [self.seed]
        if self._generator is None or self._generator[0].device != torch.device(device):
            self._generator = [torch.Generator(device=device).manual_seed(v) for v in seeds]
        if not isinstance(self.seed, list):
            return torch.rand(rows, generator=self._generator[0], dtype=torch.float64, device=device)
        if len(self._generator) != rows:
            raise InvalidInputError(f"the sampler was seeded for {len(self._generator)} rows; this batch has {rows}")
        return torch.cat([torch.rand(1, generator=g, dtype=torch.float64, device=device) for g in self._generator])

    def candidates(self, logits: Any) -> tuple[Any, Any]:
        """Return each row's candidate token ids and their weights (unnormalized; 0 outside the nucleus)."""
        import torch

        x = logits.float()
        if self.temperature != 1.0:
            x = x / self.temperature
        vocab = x.shape[-1]
        k = vocab if self.top_k == 0 else min(self.top_k, vocab)
        if self.top_p >= 1.0 and k == vocab:  # plain sampling: every token
            ids = torch.arange(vocab, device=x.device).expand_as(x)
            return ids, torch.softmax(x.double(), dim=-1)
        # the normalizer: over the top-k tokens when there is a top-k filter, else over the vocabulary
        norm = (x.topk(k, dim=-1).values if k < vocab else x).double().logsumexp(dim=-1, keepdim=True)
        n = k if k < vocab else min(FIRST_CANDIDATES, vocab)
        while True:
            values, ids = x.topk(n, dim=-1)  # sorted, most probable first
            p = torch.exp(values.double() - norm)
            total = p.cumsum(dim=-1)
            if n == k or bool((total[:, -1] >= self.top_p).all()):  # every row's nucleus is among the candidates
                break
            n = min(n * 8, k)
        keep = (total - p) < self.top_p  # the mass before a token is below top_p: it is in the nucleus
        keep[:, 0] = True
        return ids, torch.where(keep, p, torch.zeros_like(p))

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """Draw one token per row; return scores that are 0 at it and -inf elsewhere (``input_ids`` is unused).

        The draw inverts the nucleus's cumulative weights at one uniform number per row: what a row draws depends
        only on its own logits and generator.
        """
        import torch

        ids, weights = self.candidates(scores)
        cdf = weights.cumsum(dim=-1)
        u = self._uniforms(weights.shape[0], weights.device) * cdf[:, -1]
        j = torch.searchsorted(cdf, u[:, None], right=True).clamp_max(weights.shape[1] - 1)
        out = torch.full_like(scores, -math.inf)
        return out.scatter_(1, ids.gather(1, j), 0.0)


def sampling_kwargs(do_sample: bool, temperature: float, top_p: float, top_k: int) -> tuple[dict[str, Any], Any]:
    """Return the ``generate`` keyword arguments for these settings and the :class:`Sampler` (None when greedy).

    Greedy decoding (``do_sample=False``) ignores the sampling settings, as ``generate`` does.
    """
    from transformers import LogitsProcessorList

    if not do_sample:
        return {"do_sample": False}, None
    sampler = Sampler(temperature, top_p, top_k)
    return {"do_sample": False, "logits_processor": LogitsProcessorList([sampler])}, sampler
