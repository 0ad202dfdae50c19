"""Token positions of a substring, counted as the model sees the text (special tokens included).

Two ways to match:

- by characters (the default): the needle is found in the text, and its tokens are those whose character span (the
  fast tokenizer's offsets) overlaps the needle's characters; a needle that spans several tokens gives their range,
  and one that is part of a token gives that token (``"it"`` inside ``"its"`` gives the token of ``"its"``);
- whole tokens (``whole_token=True``): the needle matches a token whose text equals it, or equals it after the
  tokenizer's space marker (``"Ġit"``, ``"▁it"``) when ``space_marker`` is true; ``"it"`` never matches ``"its"``.

Positions count exactly the tokens extraction gives the model: the tokenizer's defaults, special tokens included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from fastprobe.exceptions import ArgumentTypeError, InvalidInputError, UnknownOptionError

__all__ = ["OCCURRENCES", "SPACE_MARKERS", "TokenSpan", "find_token_positions"]

#: Which matches :func:`find_token_positions` returns.
OCCURRENCES: tuple[str, ...] = ("first", "last", "all")
#: The marks tokenizers put before a word that follows a space (byte-level BPE, SentencePiece).
SPACE_MARKERS: tuple[str, ...] = ("Ġ", "▁")


class TokenSpan(NamedTuple):
    """Token positions ``start`` to ``stop`` (exclusive) of one match."""

    start: int
    stop: int

    @property
    def last(self) -> int:
        """The match's last token (where a causal model has read all of it)."""
        return self.stop - 1


def _encode(tokenizer: Any, text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Return the tokens of ``text`` as the model sees them, with each one's character span."""
    if not getattr(tokenizer, "is_fast", False):
        raise InvalidInputError(
            f"token positions need a fast tokenizer (one with character offsets); got {type(tokenizer).__name__}"
        )
    encoded = tokenizer(text, return_offsets_mapping=True)
    tokens = list(tokenizer.convert_ids_to_tokens(encoded["input_ids"]))
    return tokens, [(int(a), int(b)) for a, b in encoded["offset_mapping"]]


def _check_scope(scope: Any, n_tokens: int) -> tuple[int, int]:
    if scope is None:
        return 0, n_tokens
    try:
        start, stop = (int(v) for v in scope)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"scope must be a (start, stop) pair of token positions; got {scope!r}") from None
    if not 0 <= start < stop <= n_tokens:
        raise InvalidInputError(
            f"scope must satisfy 0 <= start < stop <= {n_tokens} (the text's token count); got ({start}, {stop})"
        )
    return start, stop


def _by_characters(text: str, needle: str, spans: Sequence[tuple[int, int]]) -> list[TokenSpan]:
    out = []
    at = text.find(needle)
    while at >= 0:
        end = at + len(needle)
        hit = [i for i, (a, b) in enumerate(spans) if b > a and a < end and b > at]
        if hit:
            out.append(TokenSpan(hit[0], hit[-1] + 1))
        at = text.find(needle, end)
    return out


def _by_tokens(needle: str, tokens: Sequence[str], space_marker: bool) -> list[TokenSpan]:
    accepted = {needle} | ({m + needle for m in SPACE_MARKERS} if space_marker else set())
    return [TokenSpan(i, i + 1) for i, token in enumerate(tokens) if token in accepted]


def find_token_positions(
    tokenizer: Any,
    text: str,
    needle: str,
    *,
    occurrence: str = "first",
    whole_token: bool = False,
    space_marker: bool = True,
    scope: tuple[int, int] | None = None,
) -> TokenSpan | list[TokenSpan]:
    """Return the token positions of ``needle`` in ``text``.

    Parameters
    ----------
    tokenizer : transformers fast tokenizer or fastprobe.model.LoadedModel
        The model's tokenizer (a loaded model's is used).
    text, needle : str
    occurrence : {"first", "last", "all"}, default="first"
        The first match, the last, or every match in order (a list).
    whole_token : bool, default=False
        Match whole tokens equal to ``needle`` instead of characters (see the module's description).
    space_marker : bool, default=True
        With ``whole_token``, also match the token of ``needle`` after a space (``"Ġit"``, ``"▁it"``).
    scope : (int, int), optional
        Only matches whose tokens lie within token positions ``start`` to ``stop`` (exclusive).

    Returns
    -------
    TokenSpan or list of TokenSpan
        ``TokenSpan(start, stop)``: the match's tokens (``span.last`` is its last token).

    Raises
    ------
    InvalidInputError
        If ``needle`` is not found (the message names it and lists the text's tokens with their positions), is
        empty, or the tokenizer has no character offsets; or ``scope`` is outside the text.
    ArgumentTypeError
        If ``text`` or ``needle`` is not a string, or ``scope`` not a pair of ints.
    UnknownOptionError
        For an ``occurrence`` other than the three above.

    Examples
    --------
    >>> from transformers import AutoTokenizer
    >>> from fastprobe.testing import tiny_model
    >>> tokenizer = AutoTokenizer.from_pretrained(tiny_model("llama"))
    >>> find_token_positions(tokenizer, "The cat sat because it was tired", "it")
    TokenSpan(start=5, stop=6)
    """
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a LoadedModel's
    for name, value in (("text", text), ("needle", needle)):
        if not isinstance(value, str):
            raise ArgumentTypeError(f"{name} must be a string; got {type(value).__name__} {value!r}")
    if not needle:
        raise InvalidInputError("needle must be a non-empty string; got ''")
    if occurrence not in OCCURRENCES:
        raise UnknownOptionError(f"unknown occurrence {occurrence!r}; expected one of: {', '.join(OCCURRENCES)}")
    tokens, spans = _encode(tokenizer, text)
    start, stop = _check_scope(scope, len(tokens))
    found = _by_tokens(needle, tokens, space_marker) if whole_token else _by_characters(text, needle, spans)
    found = [m for m in found if m.start >= start and m.stop <= stop]
    if not found:
        how = "as a whole token" if whole_token else "in the text"
        where = "" if scope is None else f" within token positions {start}..{stop - 1}"
        listed = ", ".join(f"{i}:{t!r}" for i, t in enumerate(tokens))
        raise InvalidInputError(f"{needle!r} not found {how}{where}; the text's tokens are [{listed}]")
    if occurrence == "all":
        return found
    return found[0] if occurrence == "first" else found[-1]
