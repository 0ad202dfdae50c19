"""How prompts are grouped into forward passes: a fixed number of prompts, or as many as fill a token budget.

A pass over a batch costs about its padded size (prompts x longest prompt) in tokens, and small batches leave the
matrix units idle: on SmolLM2 with the CPU's two cores, a bare forward pass over short statements ran 500 tokens/s
at 8 prompts per batch, 730 at 32 and 648 at 128. When the user sets no batch size, the runner fills each batch (the
prompts sorted by length) while its padded size stays within :func:`token_budget` of the device; an explicit
``batch_size`` is a number of prompts, as before.

``Probe(batch_size=8)`` is lmprobe's default, so a probe cannot use None for "not set" without changing what
``get_params`` shows. Its default is :data:`DEFAULT_BATCH_SIZE`, an ``int`` equal to 8 of its own type
(:class:`DefaultBatchSize`), which the runner reads as "not set"; any ``batch_size`` the user passes, 8 included,
is a plain int and is honoured. The type lives in :mod:`fastprobe._config` (so a saved probe keeps it) and survives
``sklearn.base.clone``, ``copy``, pickling and fastprobe's own save format.
"""

from __future__ import annotations

from typing import Any

from fastprobe._config import DEFAULT_BATCH_SIZE, DefaultBatchSize, is_auto
from fastprobe.exceptions import InvalidInputError

__all__ = [
    "CPU_TOKEN_BUDGET",
    "DEFAULT_BATCH_SIZE",
    "Batches",
    "DefaultBatchSize",
    "check_batch_size",
    "is_auto",
    "token_budget",
]

#: Padded tokens per forward pass on the CPU when no batch size is set (measured: ``benches/batching.py``).
CPU_TOKEN_BUDGET = 1024
#: The most padded tokens per pass on a GPU, however much memory is free (beyond it, throughput no longer grows).
GPU_MAX_TOKENS = 65536
#: The share of a GPU's free memory a pass's activations may use.
GPU_MEMORY_SHARE = 0.25


def check_batch_size(batch_size: Any) -> None:
    """Refuse a batch size that is neither None (a token budget) nor a positive int.

    Raises
    ------
    InvalidInputError
    """
    if batch_size is None:
        return
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(
            f"batch_size must be a positive int (prompts per batch) or None (batches filled to a token budget); "
            f"got {batch_size!r}"
        )


def token_budget(device: str, hidden_size: int = 0, intermediate_size: int = 0, dtype_bytes: int = 4) -> int:
    """Return how many padded tokens one forward pass may hold on ``device``.

    On the CPU, :data:`CPU_TOKEN_BUDGET`. On a CUDA device, what :data:`GPU_MEMORY_SHARE` of its free memory holds
    at an estimated ``dtype_bytes x (6 x hidden_size + 3 x intermediate_size)`` bytes of activations per token in a
    block (the residual stream, attention projections and the MLP's widest layer), at most :data:`GPU_MAX_TOKENS`
    and at least the CPU's budget.

    Parameters
    ----------
    device : str
    hidden_size, intermediate_size : int
        The model's widths (0: unknown, then the CPU's budget is used on every device).
    dtype_bytes : int, default=4

    Returns
    -------
    int
    """
    if not str(device).startswith("cuda") or hidden_size <= 0:
        return CPU_TOKEN_BUDGET
    import torch

    free, _total = torch.cuda.mem_get_info(torch.device(device))
    per_token = dtype_bytes * (6 * hidden_size + 3 * max(intermediate_size, 4 * hidden_size))
    return int(min(GPU_MAX_TOKENS, max(CPU_TOKEN_BUDGET, free * GPU_MEMORY_SHARE // per_token)))


class Batches:
    """The batches still to run, as a stack; an out-of-memory error re-splits the rest at half the size.

    Parameters
    ----------
    order : list of int
        The prompts, by increasing length (:func:`fastprobe.model.length_order`).
    lengths : list of int
        Each prompt's token count (indexed by prompt), as it will be padded.
    size : int, optional
        Prompts per batch; None fills each batch to ``budget`` padded tokens instead.
    budget : int, optional
        Padded tokens per batch (``size`` None); a prompt longer than the budget runs alone.
    """

    def __init__(self, order: list[int], lengths: list[int], size: int | None, budget: int | None = None) -> None:
        if size is None and budget is None:
            raise ValueError("Batches needs a size or a token budget")
        self.size, self.budget, self.lengths = size, budget, lengths
        self._stack = self._split(order)

    def _split(self, order: list[int]) -> list[list[int]]:
        stack: list[list[int]] = []
        if self.size is not None:
            stack = [order[i : i + self.size] for i in range(0, len(order), self.size)]
        else:
            assert self.budget is not None
            current: list[int] = []
            width = 0
            for i in order:
                grown = max(width, self.lengths[i])
                if current and (len(current) + 1) * grown > self.budget:
                    stack.append(current)
                    current, grown = [], self.lengths[i]
                current.append(i)
                width = grown
            if current:
                stack.append(current)
        stack.reverse()  # the next batch is at the end
        return stack

    def __bool__(self) -> bool:
        return bool(self._stack)

    def pop(self) -> list[int]:
        """Return the next batch."""
        return self._stack.pop()

    def halve(self, chunk: list[int]) -> str:
        """Put ``chunk`` back in front of the rest, everything in batches of half its size; return the new limit."""
        if self.size is not None:
            self.size = max(1, len(chunk) // 2)
            limit = f"batch_size={self.size}"
        else:
            padded = len(chunk) * max(self.lengths[i] for i in chunk)
            self.budget = max(1, padded // 2)
            limit = f"batches of at most {self.budget} padded tokens"
        rest = [i for c in reversed(self._stack) for i in c]
        self._stack = self._split(list(chunk) + rest)
        return limit
