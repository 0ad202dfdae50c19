"""The pass in flight: which prompts a batch holds and where their real tokens are.

The runner calls :meth:`PassContext.begin` before each forward pass; interventions with positions per prompt (head
and edge ablations) read it to turn a prompt's token positions into the batch's coordinates, whatever the padding
side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["PassContext"]


class PassContext:
    """The batch of the pass in flight.

    Attributes
    ----------
    idx : numpy.ndarray or None
        The batch's prompts (indices into the prompts of the run).
    mask : torch.Tensor of shape (B, S), bool, or None
        Their real tokens.
    first : torch.Tensor of shape (B,) or None
        Each row's first real token (the left padding before it).
    """

    def __init__(self) -> None:
        self.idx: np.ndarray | None = None
        self.mask: Any = None
        self.first: Any = None

    def begin(self, idx: np.ndarray, mask: Any) -> None:
        """Start a pass over prompts ``idx`` with real tokens ``mask``."""
        self.idx = idx
        self.mask = mask
        self.first = mask.int().argmax(dim=1)

    def coordinates(self, per_prompt: Sequence[Sequence[int]]) -> tuple[Any, Any, list[int]]:
        """Batch rows and columns of token positions given per prompt of the run.

        Parameters
        ----------
        per_prompt : sequence of sequences of int
            For each prompt of the run, its token positions (non-negative, counted from its first token).

        Returns
        -------
        rows, cols : torch.Tensor of shape (n,)
            The batch coordinates of every listed position of the batch's prompts.
        order : list of int
            For each coordinate, its index within its prompt's list.
        """
        import torch

        assert self.idx is not None, "begin() was not called"
        first = self.first.tolist()
        rows: list[int] = []
        cols: list[int] = []
        order: list[int] = []
        for b, i in enumerate(self.idx.tolist()):
            for j, p in enumerate(per_prompt[i]):
                rows.append(b)
                cols.append(first[b] + int(p))
                order.append(j)
        device = self.mask.device
        return (
            torch.tensor(rows, dtype=torch.long, device=device),
            torch.tensor(cols, dtype=torch.long, device=device),
            order,
        )
