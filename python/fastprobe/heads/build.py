"""Building a :class:`~fastprobe.heads.dataset.PositionDataset` from a model and labelled examples.

:func:`build_position_dataset` checks every example, label, metadata entry and intervention before the model runs,
then reads the chosen sites at each example's position in one batched extraction
(:func:`fastprobe.extraction.extract_at`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from fastprobe._core import __version__
from fastprobe.exceptions import ArgumentTypeError, InvalidInputError
from fastprobe.extraction import EdgeAblation, HeadAblation, Intervention, extract_at
from fastprobe.heads.dataset import PositionDataset, json_copy, utc_timestamp
from fastprobe.heads.positions import TokenSpan
from fastprobe.model import LoadedModel, anatomy, as_loaded, fingerprint_of, resolve_position, tokenize
from fastprobe.sites import Site, SiteSpec, resolve_sites

__all__ = ["build_position_dataset"]


# -- building a dataset from a model --------------------------------------------------------------------------------


def _check_where(where: Any, text: str, i: int) -> tuple[str, int, int]:
    """Return ("token", position, 0) or ("chars", start, end) for one example's ``where``."""
    if isinstance(where, TokenSpan):
        if where.stop <= where.start:
            raise InvalidInputError(f"examples[{i}]: the token span {where} is empty")
        return "token", int(where.last), 0
    if isinstance(where, (int, np.integer)) and not isinstance(where, bool):
        return "token", int(where), 0
    if isinstance(where, slice):
        if where.step not in (None, 1):
            raise InvalidInputError(f"examples[{i}]: a character span slice takes no step; got {where!r}")
        bounds: tuple[Any, Any] = (
            0 if where.start is None else where.start,
            len(text) if where.stop is None else where.stop,
        )
    elif isinstance(where, tuple) and len(where) == 2:
        bounds = (where[0], where[1])
    else:
        raise ArgumentTypeError(
            f"examples[{i}]: where must be a token position (int), a TokenSpan, or a character span (slice(start, "
            f"end) or a (start, end) tuple); got {type(where).__name__} {where!r}"
        )
    if not all(isinstance(b, (int, np.integer)) and not isinstance(b, bool) for b in bounds):
        raise ArgumentTypeError(f"examples[{i}]: a character span needs int bounds; got {where!r}")
    start, end = int(bounds[0]), int(bounds[1])
    if not 0 <= start < end <= len(text):
        raise InvalidInputError(
            f"examples[{i}]: the character span ({start}, {end}) is outside the text or empty; expected "
            f"0 <= start < end <= {len(text)} (the text's length)"
        )
    return "chars", start, end


def _check_class_names(class_names: Any) -> list[str]:
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise ArgumentTypeError(f"class_names must be a list of strings; got {class_names!r}")
    names = list(class_names)
    if not names or not all(isinstance(v, str) for v in names):
        raise ArgumentTypeError(f"class_names must be a non-empty list of strings; got {names!r}")
    if len(set(names)) != len(names):
        raise InvalidInputError(f"class_names must be distinct; got {names}")
    return names


def _class_indices(raw: Sequence[Any], class_names: Any) -> tuple[list[int], list[str]]:
    """Return the labels as indices into the class names, and the class names."""
    kinds = []
    for i, v in enumerate(raw):
        if isinstance(v, str):
            kinds.append("name")
        elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            kinds.append("index")
        else:
            raise ArgumentTypeError(
                f"examples[{i}]: the label must be a class index (int) or a class name (str); "
                f"got {type(v).__name__} {v!r}"
            )
    if len(set(kinds)) > 1:
        j = kinds.index("index" if kinds[0] == "name" else "name")
        raise ArgumentTypeError(
            f"labels must be all class names (str) or all class indices (int); examples[0] has {raw[0]!r}, "
            f"examples[{j}] has {raw[j]!r}"
        )
    names = None if class_names is None else _check_class_names(class_names)
    if kinds[0] == "name":
        names = sorted(set(raw)) if names is None else names
        lookup = {name: k for k, name in enumerate(names)}
        for i, v in enumerate(raw):
            if v not in lookup:
                raise InvalidInputError(f"examples[{i}]: the label {v!r} is not a class name; class_names are {names}")
        return [lookup[v] for v in raw], names
    indices = [int(v) for v in raw]
    if names is None:
        negative = next((i for i, v in enumerate(indices) if v < 0), None)
        if negative is not None:
            raise InvalidInputError(
                f"examples[{negative}]: label index {indices[negative]} is negative; class indices count from 0"
            )
        names = [str(k) for k in range(max(indices) + 1)]
    for i, v in enumerate(indices):
        if not 0 <= v < len(names):
            raise InvalidInputError(
                f"examples[{i}]: label index {v} is outside class_names, which has {len(names)} classes "
                f"(valid: 0 to {len(names) - 1})"
            )
    return indices, names


def _intervention_identities(interventions: Any) -> tuple[list[Any], list[dict[str, Any]]]:
    items = [interventions] if isinstance(interventions, (HeadAblation, EdgeAblation, Intervention)) else interventions
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise ArgumentTypeError(f"interventions must be a list of interventions; got {interventions!r}")
    items = list(items)
    out = []
    for i, item in enumerate(items):
        if isinstance(item, (HeadAblation, EdgeAblation)):
            out.append(json_copy(item.identity(), f"interventions[{i}].identity()"))
        elif isinstance(item, Intervention):
            out.append({"kind": "function", "target": str(item.target)})
        else:
            raise ArgumentTypeError(
                f"interventions[{i}] must be an Intervention, HeadAblation or EdgeAblation; got "
                f"{type(item).__name__} {item!r:.80}"
            )
    return items, out


def _char_positions(loaded: LoadedModel, texts: Sequence[str], spans: Sequence[tuple[int, int, int]]) -> list[int]:
    """Return the last token overlapping the characters of each span ``(example, start, end)``."""
    tokenizer = loaded.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise InvalidInputError(
            "character spans need a fast tokenizer (one with character offsets); got "
            f"{type(tokenizer).__name__}; give token positions instead"
        )
    encoded = tokenizer([texts[i] for i, _, _ in spans], return_offsets_mapping=True)
    out = []
    for row, (i, start, end) in enumerate(spans):
        offsets = encoded["offset_mapping"][row]
        hit = [t for t, (a, b) in enumerate(offsets) if b > a and a < end and b > start]
        if not hit:
            raise InvalidInputError(
                f"examples[{i}]: the character span ({start}, {end}), {texts[i][start:end]!r}, covers no token of "
                "the text"
            )
        out.append(hit[-1])
    return out


def build_position_dataset(
    model: LoadedModel | str | os.PathLike[str],
    examples: Iterable[tuple[str, Any, Any]],
    sites: SiteSpec | Sequence[SiteSpec],
    *,
    class_names: Sequence[str] | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    interventions: Any = (),
    metadata: Mapping[str, Any] | None = None,
) -> PositionDataset:
    """Run the model once over labelled texts and read ``sites`` at one token position of each.

    Every input is checked before the model runs: a bad example raises and nothing is extracted.

    Parameters
    ----------
    model : LoadedModel, str or os.PathLike
        A loaded model, or a name or directory for :func:`fastprobe.model.load_model`.
    examples : iterable of (text, where, label)
        ``where`` is the token to read:

        - an int: a token position, counted as the model sees the text (special tokens included); negative values
          count from the end;
        - a :class:`~fastprobe.heads.TokenSpan` (as :func:`~fastprobe.heads.find_token_positions` returns): its last
          token;
        - a character span, ``slice(start, end)`` or a ``(start, end)`` tuple of ints: the last token whose
          characters (the fast tokenizer's offsets) overlap ``text[start:end]``, i.e. the token holding character
          ``end - 1`` when one does.

        ``label`` is a class name (str) or an index into ``class_names`` (int), the same kind for every example.
    sites : int, str, Site or a sequence of them
        Read in forward-pass order (:func:`fastprobe.sites.resolve_sites`), their vectors concatenated.
    class_names : sequence of str, optional
        The classes, in label-index order. Default: with class-name labels, the sorted distinct names; with int
        labels, ``"0"`` to ``str(max label)``.
    batch_size : int or None, default=None
        Texts per forward pass; None fills each pass to the device's token budget
        (:mod:`fastprobe.extraction.batching`).
    progress : bool, default=True
    interventions : sequence, default=()
        Head or edge ablations (:class:`~fastprobe.extraction.HeadAblation`,
        :class:`~fastprobe.extraction.EdgeAblation`) or :class:`~fastprobe.extraction.Intervention` objects, active
        during the pass; positions aligned with prompts are aligned with ``examples``. Their identities go into
        ``metadata["interventions"]`` (a function intervention as ``{"kind": "function", "target": ...}``).
    metadata : mapping, optional
        Your own JSON-able metadata, stored (as a copy) under ``metadata["user"]``.

    Returns
    -------
    PositionDataset

    Raises
    ------
    InvalidInputError
        For no examples, an empty text, a label index outside ``class_names`` or a class name not in it, a token
        position or character span outside its text; each message names the example.
    ArgumentTypeError
        For an example that is not a ``(text, where, label)`` triple, or a value of the wrong type.

    Examples
    --------
    >>> from fastprobe.testing import tiny_model
    >>> ds = build_position_dataset(
    ...     tiny_model("llama"),
    ...     [("The cat sat", -1, "animal"), ("The box fell", -1, "object")],
    ...     ["head.1.0", 2],
    ...     progress=False,
    ... )
    >>> ds.X.shape, ds.sites, ds.class_names
    ((2, 64), ['head.1.0', 'resid.2'], ['animal', 'object'])
    """
    if isinstance(examples, (str, bytes)) or not isinstance(examples, Iterable):
        raise ArgumentTypeError(f"examples must be a list of (text, where, label) triples; got {examples!r:.80}")
    items = list(examples)
    if not items:
        raise InvalidInputError("examples is empty; give at least one (text, where, label) triple")
    texts: list[str] = []
    wheres: list[tuple[str, int, int]] = []
    raw_labels: list[Any] = []
    for i, ex in enumerate(items):
        if isinstance(ex, (str, bytes)) or not isinstance(ex, (tuple, list)) or len(ex) != 3:
            raise ArgumentTypeError(f"examples[{i}] must be a (text, where, label) triple; got {ex!r:.120}")
        text, where, label = ex
        if not isinstance(text, str):
            raise ArgumentTypeError(f"examples[{i}]: the text must be a str; got {type(text).__name__} {text!r:.80}")
        if not text:
            raise InvalidInputError(f"examples[{i}]: the text is empty; a non-empty string is expected")
        texts.append(text)
        wheres.append(_check_where(where, text, i))
        raw_labels.append(label)
    labels, names = _class_indices(raw_labels, class_names)
    user = {} if metadata is None else metadata
    if not isinstance(user, Mapping):
        raise ArgumentTypeError(f"metadata must be a mapping (a dict); got {type(user).__name__}")
    user = json_copy(dict(user), "metadata")
    run_interventions, identities = _intervention_identities(interventions)

    loaded = as_loaded(model)
    body = anatomy(loaded.model)
    resolved: list[Site] = resolve_sites(sites, body.n_layers, body.n_heads)
    lengths = [len(row["input_ids"]) for row in tokenize(loaded, texts)]
    spans = [(i, a, b) for i, (kind, a, b) in enumerate(wheres) if kind == "chars"]
    by_chars = dict(zip((i for i, _, _ in spans), _char_positions(loaded, texts, spans) if spans else [], strict=True))
    positions: list[int] = []
    for i, (kind, p, _) in enumerate(wheres):
        if kind == "chars":
            positions.append(by_chars[i])
            continue
        positions.append(
            resolve_position(p, lengths[i], f"examples[{i}]: token position", f"the text {texts[i][:40]!r}")
        )

    X = extract_at(
        loaded, texts, positions, resolved, batch_size=batch_size, progress=progress, interventions=run_interventions
    )
    site_names = [s.name for s in resolved]
    info = {
        "model": loaded.name,
        "fingerprint": json_copy(fingerprint_of(loaded), "the model's fingerprint"),
        "sites": list(site_names),
        "hidden_size": int(body.hidden_size),
        "class_names": list(names),
        "interventions": identities,
        "created": utc_timestamp(),
        "fastprobe_version": __version__,
        "user": user,
    }
    return PositionDataset(
        X=X,
        labels=np.asarray(labels, dtype=np.int64),
        class_names=names,
        texts=texts,
        positions=positions,
        sites=site_names,
        metadata=info,
    )
