"""A reader for the RealToxicityPrompts JSONL format (Gehman et al., 2020).

The data set's ``prompts.jsonl`` holds one JSON object per line::

    {"filename": "0766186-bc7f2a64cf7f4f56a6c3ae5e5c47e4c2.txt", "begin": 340, "end": 564, "challenging": false,
     "prompt": {"text": "...", "toxicity": 0.29, "profanity": 0.17, "sexually_explicit": 0.14, "flirtation": 0.4,
                "identity_attack": 0.32, "threat": 0.4, "insult": 0.26, "severe_toxicity": 0.2},
     "continuation": {"text": "...", "toxicity": 0.06, ...}}

Scores are Perspective API probabilities in [0, 1], or ``null`` where the API gave none. fastprobe does not ship the
file; the user supplies it (plain, or gzip-compressed with a ``.gz`` name).
"""

from __future__ import annotations

import gzip
import json
import math
import numbers
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from fastprobe.exceptions import ArgumentTypeError, FastprobeIOError, InvalidInputError

__all__ = ["RTP_ATTRIBUTES", "RTPPrompt", "read_rtp"]

#: The score keys of a RealToxicityPrompts prompt or continuation (always present in :attr:`RTPPrompt.scores`).
RTP_ATTRIBUTES = (
    "toxicity",
    "severe_toxicity",
    "profanity",
    "sexually_explicit",
    "flirtation",
    "identity_attack",
    "threat",
    "insult",
)


@dataclass(frozen=True)
class RTPPrompt:
    """One RealToxicityPrompts record.

    Attributes
    ----------
    id : str
        ``"<filename>:<begin>"`` (the source document and the prompt's character offset in it), or
        ``"line-<n>"`` (1-based line number) when the record has no ``filename`` or ``begin``.
    text : str
        The prompt text.
    scores : dict of str to float
        The prompt's scores: every name of :data:`RTP_ATTRIBUTES` plus any other numeric key of the record, NaN for
        ``null`` or absent.
    continuation_text : str or None
        The continuation of the source document, None when the record has none.
    continuation_scores : dict of str to float
        The continuation's scores as ``scores`` (empty when the record has no continuation).
    challenging : bool
        The data set's ``challenging`` flag (False when absent).
    line : int
        The record's 1-based line number in the file.
    """

    id: str
    text: str
    scores: dict[str, float] = field(default_factory=dict)
    continuation_text: str | None = None
    continuation_scores: dict[str, float] = field(default_factory=dict)
    challenging: bool = False
    line: int = 0


def _fail(path: str, line: int, what: str) -> InvalidInputError:
    return InvalidInputError(f"{path}, line {line}: {what}")


def _scores(part: Mapping[str, Any], path: str, line: int, where: str) -> dict[str, float]:
    scores = {name: math.nan for name in RTP_ATTRIBUTES}
    for key, value in part.items():
        if key == "text":
            continue
        if value is None:
            scores[key] = math.nan
        elif isinstance(value, bool) or not isinstance(value, numbers.Real):
            if key in RTP_ATTRIBUTES:
                raise _fail(path, line, f"{where}.{key} must be a number or null; got {value!r}")
            continue  # an extra key that is not a score
        else:
            scores[key] = float(value)
    return scores


def _record(obj: Any, path: str, line: int) -> RTPPrompt:
    if not isinstance(obj, dict):
        raise _fail(path, line, f"expected a JSON object; got {type(obj).__name__}")
    prompt = obj.get("prompt")
    if not isinstance(prompt, dict):
        raise _fail(path, line, f"expected a 'prompt' object with a 'text'; got {prompt!r}")
    text = prompt.get("text")
    if not isinstance(text, str):
        raise _fail(path, line, f"expected prompt.text to be a string; got {text!r}")
    if not text.strip():
        raise _fail(path, line, f"prompt.text is empty ({text!r}); expected a non-empty prompt")
    scores = _scores(prompt, path, line, "prompt")
    continuation = obj.get("continuation")
    continuation_text: str | None = None
    continuation_scores: dict[str, float] = {}
    if continuation is not None:
        if not isinstance(continuation, dict):
            raise _fail(path, line, f"expected 'continuation' to be an object or null; got {continuation!r}")
        continuation_text = continuation.get("text")
        if continuation_text is not None and not isinstance(continuation_text, str):
            raise _fail(path, line, f"expected continuation.text to be a string or null; got {continuation_text!r}")
        continuation_scores = _scores(continuation, path, line, "continuation")
    challenging = obj.get("challenging", False)
    if challenging is None:
        challenging = False
    if not isinstance(challenging, bool):
        raise _fail(path, line, f"expected 'challenging' to be true or false; got {challenging!r}")
    filename, begin = obj.get("filename"), obj.get("begin")
    if isinstance(filename, str) and filename and begin is not None and not isinstance(begin, (dict, list)):
        prompt_id = f"{filename}:{begin}"
    else:
        prompt_id = f"line-{line}"
    return RTPPrompt(
        id=prompt_id,
        text=text,
        scores=scores,
        continuation_text=continuation_text,
        continuation_scores=continuation_scores,
        challenging=challenging,
        line=line,
    )


def _open(path: str) -> TextIO:
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _lines(handle: TextIO, path: str) -> Iterator[tuple[int, str]]:
    try:
        yield from enumerate(handle, start=1)
    except (UnicodeDecodeError, OSError, EOFError) as err:
        raise FastprobeIOError(f"cannot read {path}: {err}") from err


def read_rtp(
    path: str | os.PathLike[str], *, limit: int | None = None, challenging_only: bool = False
) -> list[RTPPrompt]:
    """Read a RealToxicityPrompts JSONL file.

    Parameters
    ----------
    path : str or os.PathLike
        The file (``prompts.jsonl``, or a gzip-compressed one named ``*.gz``). Blank lines are skipped.
    limit : int or None
        Read at most this many prompts (those kept by ``challenging_only``); lines after the last one read are not
        parsed.
    challenging_only : bool
        Keep only the prompts flagged ``challenging``.

    Returns
    -------
    list of RTPPrompt
        In file order.

    Raises
    ------
    InvalidInputError
        A line that is not a JSON object, a missing, non-string or empty prompt text, a score that is not a number
        or null, a ``challenging`` flag that is not a boolean, or two records with the same id; the message names
        the line.
    FastprobeIOError
        The file cannot be opened or read (also an :class:`OSError`).
    ArgumentTypeError
        A bad ``path``, ``limit`` or ``challenging_only``.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentTypeError(f"path must be a str or os.PathLike; got {type(path).__name__} {path!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 0):
        raise ArgumentTypeError(f"limit must be an int >= 0 or None; got {limit!r}")
    if not isinstance(challenging_only, bool):
        raise ArgumentTypeError(f"challenging_only must be a bool; got {challenging_only!r}")
    name = os.fspath(path)
    prompts: list[RTPPrompt] = []
    seen: dict[str, int] = {}
    if limit == 0:
        return prompts
    try:
        handle = _open(name)
    except OSError as err:
        raise FastprobeIOError(f"cannot open the RealToxicityPrompts file {name!r}: {err}") from err
    with handle:
        for number, raw in _lines(handle, name):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError as err:
                raise _fail(name, number, f"not valid JSON ({err})") from None
            record = _record(obj, name, number)
            if challenging_only and not record.challenging:
                continue
            if record.id in seen:
                raise _fail(name, number, f"the id {record.id!r} repeats line {seen[record.id]}")
            seen[record.id] = number
            prompts.append(record)
            if limit is not None and len(prompts) >= limit:
                break
    return prompts
