"""Head and edge ablation: interventions with positions per prompt, that the extraction runner understands.

- :class:`HeadAblation`: chosen heads contribute nothing: their slice of the attention output projection's input is
  set to zero, or to its mean over the real tokens of a reference set of texts, at every position or at chosen
  positions of each prompt.
- :class:`EdgeAblation`: a query position may not attend to a key position, in chosen layers and heads; the row's
  other weights are renormalized (the score is masked before the softmax).

Positions count a prompt's tokens as the model sees them (special tokens included; negative values count from its
end). Per-prompt values are given either as one value for every prompt, as a sequence aligned with the prompts of
the call, or as a mapping from prompt text (the form a cache can key; :attr:`HeadAblation.aligned`).

Both are passed where an :class:`~fastprobe.extraction.Intervention` is (``interventions=``), and each has an
:meth:`identity` (a JSON-able description) that makes the fingerprint of the changed model, so that its
activations are stored apart from the clean model's.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastprobe.exceptions import ArgumentTypeError, InvalidInputError, UnknownOptionError
from fastprobe.extraction.attention import AttentionCall
from fastprobe.extraction.batch import PassContext
from fastprobe.model import Anatomy, resolve_position
from fastprobe.sites import Site, parse_site, resolve_sites

__all__ = [
    "ABLATION_MODES",
    "EdgeAblation",
    "HeadAblation",
    "as_positions",
    "identities",
    "intervened_fingerprint",
    "parse_heads",
    "prefix_safe",
]

_BARE_HEAD = re.compile(r"^-?\d+\.-?\d+$")
#: What an ablated head's input slice becomes.
ABLATION_MODES: tuple[str, ...] = ("zero", "mean")


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def parse_heads(spec: Any) -> list[Site]:
    """Read heads given as ``"L.H"``, ``"head.L.H"``, ``(L, H)``, a head :class:`~fastprobe.sites.Site`, or a list.

    Returns
    -------
    list of Site
        Head sites, not yet resolved against a model (negative indices kept).

    Raises
    ------
    ArgumentTypeError
        If an entry has none of those forms.
    """
    if isinstance(spec, (str, Site)) or (
        isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(v, (int, np.integer)) for v in spec)
    ):
        spec = [spec]
    if not isinstance(spec, Sequence) or not spec:
        raise ArgumentTypeError(f'heads must be "L.H", (L, H), a head site, or a non-empty list of them; got {spec!r}')
    out = []
    for item in spec:
        if isinstance(item, tuple) and len(item) == 2 and all(isinstance(v, (int, np.integer)) for v in item):
            out.append(Site("head", int(item[0]), int(item[1])))
            continue
        name = f"head.{item.strip()}" if isinstance(item, str) and _BARE_HEAD.match(item.strip()) else item
        try:
            site = parse_site(name)
        except (UnknownOptionError, InvalidInputError):
            site = None
        if site is None or site.kind != "head":
            raise ArgumentTypeError(f'a head is "L.H", "head.L.H" or (L, H); got {item!r}')
        out.append(site)
    return out


def as_positions(value: Any, what: str) -> list[int]:
    """Read token positions given as an int, a list of ints, or a span (``TokenSpan``, ``range``: its every token).

    Raises
    ------
    ArgumentTypeError
        For anything else (the message names ``what``).
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return [int(value)]
    if hasattr(value, "start") and hasattr(value, "stop") and not isinstance(value, (str, Mapping)):
        return list(range(int(value.start), int(value.stop)))  # a TokenSpan or a range
    if isinstance(value, Sequence) and not isinstance(value, str):
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
            return [int(v) for v in value]
    raise ArgumentTypeError(f"{what} must be a token position, a list of them or a token span; got {value!r}")


def _as_edges(value: Any, what: str) -> list[tuple[int, int]]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ArgumentTypeError(f"{what} must be a list of (query, key) position pairs; got {value!r}")
    out = []
    for pair in value:
        if (
            not isinstance(pair, Sequence)
            or len(pair) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)
        ):
            raise ArgumentTypeError(f"{what} must be a list of (query, key) position pairs; got {pair!r} in it")
        out.append((int(pair[0]), int(pair[1])))
    return out


def _per_prompt(
    spec: Any, prompts: Sequence[str], read: Callable[[Any, str], Any], shared: bool, what: str
) -> list[Any]:
    """One value per prompt from ``spec``: shared by every prompt, aligned with ``prompts``, or keyed by text."""
    if shared:
        value = read(spec, what)
        return [value] * len(prompts)
    if isinstance(spec, Mapping):
        out = []
        for p in prompts:
            if p not in spec:
                raise InvalidInputError(f"{what} has no entry for the prompt {p[:60]!r}; give one for every prompt")
            out.append(read(spec[p], f"{what}[{p[:30]!r}]"))
        return out
    if len(spec) != len(prompts):
        raise InvalidInputError(
            f"{what} has {len(spec)} entries, one per prompt was expected ({len(prompts)} prompts); give one value "
            "for every prompt, a list aligned with the prompts, or a mapping from prompt text"
        )
    return [read(v, f"{what}[{i}]") for i, v in enumerate(spec)]


def _check_positions(
    per_prompt: list[list[int]], prompts: Sequence[str], lengths: Sequence[int], what: str
) -> list[list[int]]:
    return [
        [resolve_position(p, n, f"{what}: position", f"prompt {i} ({prompts[i][:40]!r})") for p in positions]
        for i, (positions, n) in enumerate(zip(per_prompt, lengths, strict=True))
    ]


def _spec_identity(spec: Any) -> Any:
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        return {"by_text": _digest(sorted((str(k), _jsonable(v)) for k, v in spec.items()))}
    return {"value": _digest(_jsonable(spec))}


def _jsonable(value: Any) -> Any:
    if hasattr(value, "start") and hasattr(value, "stop") and not isinstance(value, (str, Mapping)):
        return [int(value.start), int(value.stop)]
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclass(frozen=True, eq=False)
class HeadAblation:
    """Make attention heads contribute nothing.

    Parameters
    ----------
    heads : str, tuple, Site or a list of them
        ``"L.H"`` (or ``"head.L.H"``), ``(L, H)`` or a head site; negative indices count from the end.
    mode : {"zero", "mean"}, default="zero"
        ``"zero"``: the head's slice of the output projection's input is zero, so the attention output is the sum of
        the other heads plus the bias. ``"mean"``: the slice is its mean over every real token of ``reference``.
    positions : int, list, token span, sequence or mapping, optional
        Where to ablate: every position (None); one position or span for every prompt (an int, a ``range``); per
        prompt, a sequence aligned with the call's prompts (each entry an int, a list of ints or a
        :class:`~fastprobe.heads.TokenSpan`) or a mapping from prompt text to such an entry.
    reference : sequence of str, optional
        The texts whose mean the ``"mean"`` mode uses (required there).
    """

    heads: Any
    mode: str = "zero"
    positions: Any = None
    reference: Sequence[str] | None = None

    def __post_init__(self) -> None:
        parse_heads(self.heads)
        if self.mode not in ABLATION_MODES:
            raise UnknownOptionError(
                f"unknown ablation mode {self.mode!r}; expected one of: {', '.join(ABLATION_MODES)}"
            )
        if self.mode == "mean" and not self.reference:
            raise InvalidInputError('mode="mean" needs reference texts (reference=[...]) to take the mean over')
        if self.reference is not None and (
            isinstance(self.reference, str) or not all(isinstance(t, str) and t for t in self.reference)
        ):
            raise ArgumentTypeError("reference must be a list of non-empty strings")

    @property
    def aligned(self) -> bool:
        """Whether positions are a sequence aligned with one call's prompts (then they cannot key a cache)."""
        return _aligned(self.positions, _shared_positions(self.positions))

    def identity(self) -> dict[str, Any]:
        """Return a JSON-able description (what makes the changed model's fingerprint)."""
        return {
            "kind": "head_ablation",
            "heads": sorted(s.name for s in parse_heads(self.heads)),
            "mode": self.mode,
            "positions": _spec_identity(self.positions),
            "reference": None if self.reference is None else _digest(list(self.reference)),
        }

    def layers(self, body: Anatomy) -> dict[int, list[int]]:
        """Return the resolved heads, by layer (raises :class:`InvalidInputError` for one the model lacks)."""
        out: dict[int, list[int]] = {}
        for site in parse_heads(self.heads):
            try:
                resolved = resolve_sites(site, body.n_layers, body.n_heads)[0]
            except InvalidInputError as err:
                raise InvalidInputError(f"cannot ablate {site.name!r}: {err}") from None
            out.setdefault(resolved.layer, []).append(resolved.head)
        return {layer: sorted(set(h)) for layer, h in sorted(out.items())}

    def compile(
        self,
        body: Anatomy,
        prompts: Sequence[str] | None,
        lengths: Sequence[int] | None,
        ctx: PassContext,
        means: Mapping[int, Any] | None = None,
    ) -> list[tuple[Any, str, Callable[[Any], Any]]]:
        """Return the hooks that ablate: ``(output projection, "input", function)`` per layer.

        ``means``: for the ``"mean"`` mode, each layer's ``(heads, head_dim)`` mean input.
        """
        import torch

        by_layer = self.layers(body)
        positions = None
        if self.positions is not None:
            if prompts is None or lengths is None:
                raise InvalidInputError("a head ablation at positions needs the prompts of the run")
            shared = _shared_positions(self.positions)
            raw = _per_prompt(self.positions, prompts, as_positions, shared, "positions")
            positions = _check_positions(raw, prompts, lengths, "head ablation positions")
        if self.mode == "mean" and means is None:
            raise InvalidInputError('mode="mean" needs the reference means (the runner computes them)')
        changes: list[tuple[Any, str, Callable[[Any], Any]]] = []
        for layer, heads in by_layer.items():
            n_heads = body.n_heads or 1
            fill = None if self.mode == "zero" else means[layer][heads]  # type: ignore[index]

            def fn(x: Any, heads: list[int] = heads, fill: Any = fill, n_heads: int = n_heads) -> Any:
                view = x.reshape(*x.shape[:-1], n_heads, x.shape[-1] // n_heads).clone()
                idx = torch.tensor(heads, device=x.device)
                value = 0.0 if fill is None else fill.to(device=x.device, dtype=x.dtype)
                if positions is None:
                    view[..., idx, :] = value
                else:
                    rows, cols, _ = ctx.coordinates(positions)
                    if len(rows):
                        view[rows[:, None], cols[:, None], idx[None, :]] = value
                return view.reshape(x.shape)

            changes.append((body.attention_projection(layer), "input", fn))
        return changes


def _shared_positions(spec: Any) -> bool:
    if spec is None or isinstance(spec, Mapping):
        return False
    return isinstance(spec, (int, np.integer)) or (hasattr(spec, "start") and hasattr(spec, "stop"))


def _aligned(spec: Any, shared: bool) -> bool:
    return spec is not None and not shared and not isinstance(spec, Mapping)


def _shared_edges(spec: Any) -> bool:
    if not isinstance(spec, Sequence) or isinstance(spec, str):
        return False
    first = spec[0] if spec else ()
    return isinstance(first, Sequence) and all(isinstance(v, (int, np.integer)) for v in first)


def _indices(spec: Any, count: int | None, what: str) -> list[int] | None:
    if spec is None:
        return None
    items = [spec] if isinstance(spec, (int, np.integer)) else spec
    if not isinstance(items, Sequence) or not items:
        raise ArgumentTypeError(f"{what} must be None (all), an int or a non-empty list of ints; got {spec!r}")
    out = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ArgumentTypeError(f"{what} must be ints; got {v!r}")
        n = count or 0
        r = int(v) + n if v < 0 else int(v)
        if not 0 <= r < n:
            raise InvalidInputError(
                f"{what[:-1]} {v} is out of range for a model with {n} {what} (valid: {-n} to {n - 1})"
            )
        out.append(r)
    return sorted(set(out))


@dataclass(frozen=True, eq=False)
class EdgeAblation:
    """Forbid query positions to attend to key positions (the edge's score is masked before the softmax).

    Parameters
    ----------
    edges : list of (query, key) pairs, or a sequence or mapping of such lists
        The same pairs for every prompt, a list per prompt (aligned with the call's prompts) or per prompt text.
    layers : int or list of int, optional
        The blocks where the edges are removed (default: every block).
    heads : int or list of int, optional
        The heads (in every chosen block) where they are removed (default: every head).
    """

    edges: Any
    layers: Any = None
    heads: Any = None

    def __post_init__(self) -> None:
        if self.edges is None or isinstance(self.edges, str):
            raise ArgumentTypeError(f"edges must be a list of (query, key) pairs; got {self.edges!r}")

    @property
    def aligned(self) -> bool:
        """Whether the edges are a sequence aligned with one call's prompts."""
        return _aligned(self.edges, _shared_edges(self.edges))

    def identity(self) -> dict[str, Any]:
        """Return a JSON-able description (what makes the changed model's fingerprint)."""
        return {
            "kind": "edge_ablation",
            "edges": _spec_identity(self.edges),
            "layers": None if self.layers is None else _jsonable(self.layers),
            "heads": None if self.heads is None else _jsonable(self.heads),
        }

    def compile(
        self, body: Anatomy, prompts: Sequence[str] | None, lengths: Sequence[int] | None, ctx: PassContext
    ) -> Callable[[AttentionCall], None]:
        """Return the attention handler that removes the edges."""
        import torch

        if prompts is None or lengths is None:
            raise InvalidInputError("an edge ablation needs the prompts of the run")
        layers = set(_indices(self.layers, body.n_layers, "layers") or range(body.n_layers))
        heads = _indices(self.heads, body.n_heads, "heads")
        pairs = _per_prompt(self.edges, prompts, _as_edges, _shared_edges(self.edges), "edges")
        queries = _check_positions([[q for q, _ in p] for p in pairs], prompts, lengths, "edge query")
        keys = _check_positions([[k for _, k in p] for p in pairs], prompts, lengths, "edge key")
        for i, (qs, ks) in enumerate(zip(queries, keys, strict=True)):
            for q, k in zip(qs, ks, strict=True):
                if k > q:
                    raise InvalidInputError(
                        f"edge ({q}, {k}) of prompt {i}: a query at {q} never attends to a later key {k} in a causal "
                        "model; give (query, key) with key <= query"
                    )
        state: dict[str, Any] = {}

        def handler(call: AttentionCall) -> None:
            if call.layer not in layers:
                return
            if state.get("idx") is not ctx.idx:
                rows, q_cols, order = ctx.coordinates(queries)
                first = ctx.first[rows] if len(rows) else rows
                k_abs = [keys[i][j] for i in ctx.idx.tolist() for j in range(len(keys[i]))]  # type: ignore[union-attr]
                del order
                k_cols = first + torch.tensor(k_abs, dtype=torch.long, device=first.device)
                head_idx = None if heads is None else torch.tensor(heads, device=first.device)
                state.update(idx=ctx.idx, rows=rows, q=q_cols, k=k_cols, heads=head_idx)
            if len(state["rows"]):
                call.block(state["rows"], state["heads"], state["q"], state["k"])

        return handler


def identities(interventions: Sequence[Any]) -> list[dict[str, Any]]:
    """Return the identities of head and edge ablations (what a fingerprint records).

    Raises
    ------
    InvalidInputError
        For an intervention that has no identity (an :class:`~fastprobe.extraction.Intervention` with a function),
        or positions aligned with one call's prompts: neither can key a cache.
    """
    out = []
    for item in interventions:
        if not isinstance(item, (HeadAblation, EdgeAblation)):
            raise InvalidInputError(
                f"{type(item).__name__} has no identity to store its activations under; cached runs take head and "
                "edge ablations (HeadAblation, EdgeAblation)"
            )
        if item.aligned:
            raise InvalidInputError(
                f"{type(item).__name__} with positions aligned to one call's prompts cannot key a cache; give them as "
                "a mapping from prompt text"
            )
        out.append(item.identity())
    return out


def intervened_fingerprint(fingerprint: Mapping[str, Any], interventions: Sequence[Any]) -> dict[str, Any]:
    """Return the fingerprint of the model changed by ``interventions``: the clean one plus their identities.

    No interventions: the clean fingerprint. Its store is never the clean model's, so ablated activations never mix
    with clean ones in the cache.

    Raises
    ------
    InvalidInputError
        As :func:`identities`.
    """
    out = dict(fingerprint)
    if interventions:
        out["interventions"] = identities(interventions)
    return out


def prefix_safe(interventions: Sequence[Any]) -> bool:
    """Whether ``interventions`` leave a token's activations independent of later tokens in a causal model.

    True for none, and for head ablations everywhere (zero or a fixed mean); positions per prompt and functions
    may refer to later tokens.
    """
    return all(isinstance(i, HeadAblation) and i.positions is None for i in interventions)
