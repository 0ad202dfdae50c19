"""Attention-head probing: where in a text a token is, and (to come) which heads move it and what they carry.

So far: :func:`find_token_positions`, a substring's token positions from the fast tokenizer's character offsets.
"""

from __future__ import annotations

from fastprobe.heads.positions import OCCURRENCES, TokenSpan, find_token_positions

__all__ = ["OCCURRENCES", "TokenSpan", "find_token_positions"]
