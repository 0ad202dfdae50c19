"""The extraction plan: which modules a pass reads (for which sites), and which it changes (interventions).

A plan is built against one model (the body :func:`~fastprobe.model.load_model` gives, or the model with its
language-model head for generation) and knows nothing of batching: :mod:`fastprobe.extraction.runner` installs its
hooks and runs the passes. :class:`Captured` turns what one pass read back into site activations.

What each site reads
--------------------
``resid.L`` block ``L``'s output; ``embed`` block 0's input; ``attn.L`` the attention output projection's output;
``head.L.H`` the projection's input (times head ``H``'s block of its weight); ``mlp.L`` the MLP's output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastprobe.exceptions import InvalidInputError, UnknownOptionError
from fastprobe.extraction.ablation import EdgeAblation, HeadAblation
from fastprobe.extraction.attention import AttentionCall
from fastprobe.extraction.batch import PassContext
from fastprobe.model import Anatomy, anatomy
from fastprobe.sites import Site, SiteSpec, parse_site, resolve_sites

__all__ = ["Captured", "ExtractionPlan", "Intervention", "Read", "build_plan"]

#: What a module can have replaced: the first argument it is called with, or (the first element of) what it returns.
INTERVENTION_SIDES: tuple[str, ...] = ("input", "output")
# Within a block, the order in which a forward pass reaches the modules read.
_RANK = {"embed": 0, "proj": 1, "mlp": 2, "resid": 3}


@dataclass(frozen=True)
class Intervention:
    """Replace a module's input or output during the forward pass.

    Parameters
    ----------
    target : int, str or Site
        A site (an int, ``"resid.L"``, ``"embed"``, ``"attn.L"``, ``"mlp.L"``; see :mod:`fastprobe.sites`), or the
        dotted path of a module in ``model.named_modules()`` (``"layers.1.mlp"``). A site fixes the side: ``embed``
        replaces block 0's input, the others their module's output. A head is changed by :class:`HeadAblation`.
    fn : callable
        Called with the tensor (``(batch, tokens, hidden)`` for a block) and returning its replacement, of the
        same shape. It runs inside ``torch.inference_mode``.
    on : {"input", "output"}, optional
        For a module path: which side to replace (default ``"output"``). For a site it must be None or the site's
        own side.

    Notes
    -----
    An intervened pass gives activations of a changed model. A function has no identity to store them under, so
    :func:`~fastprobe.extraction.extract_to_store` refuses it; head and edge ablations (which have one) are stored
    under the changed model's own fingerprint.
    """

    target: SiteSpec
    fn: Callable[[Any], Any]
    on: str | None = None


@dataclass(frozen=True)
class Read:
    """One module a pass reads: capture key ``(kind, layer)``, the module, and whether its input / output is kept."""

    key: tuple[str, int]
    module: Any
    want_in: bool
    want_out: bool


@dataclass(frozen=True)
class ExtractionPlan:
    """What one forward pass reads and changes.

    Attributes
    ----------
    body : Anatomy
        The model's blocks and sizes.
    sites : list of Site
        The resolved sites, in forward-pass order.
    reads : list of Read
        The modules to read, in the order the pass reaches them.
    changes : list of tuple
        ``(module, side, fn)`` per intervention (a head ablation gives one per block), in the order given.
    attention : list of callable
        Handlers of the attention calls (edge ablations), in the order given
        (:func:`fastprobe.extraction.attention.attention_handlers`).
    context : PassContext
        The batch in flight, which the runner sets before each pass and position-wise interventions read.
    """

    body: Anatomy
    sites: list[Site]
    reads: list[Read]
    changes: list[tuple[Any, str, Callable[[Any], Any]]] = field(default_factory=list)
    attention: list[Callable[[AttentionCall], None]] = field(default_factory=list)
    context: PassContext = field(default_factory=PassContext)

    @property
    def needed(self) -> set[tuple[str, int]]:
        """The capture keys a pass must reach."""
        return {r.key for r in self.reads}


def build_plan(
    model: Any,
    sites: SiteSpec | Sequence[SiteSpec],
    interventions: Sequence[Any] = (),
    *,
    prompts: Sequence[str] | None = None,
    lengths: Sequence[int] | None = None,
    means: dict[int, Any] | None = None,
) -> ExtractionPlan:
    """Plan the reads of ``sites`` and the changes of ``interventions`` on ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        A Hugging Face model (with or without its language-model head).
    sites : int, str, Site or a sequence of them
        Resolved against the model (:func:`fastprobe.sites.resolve_sites`).
    interventions : sequence of Intervention, HeadAblation or EdgeAblation, default=()
    prompts, lengths : sequences, optional
        The run's prompts and their token counts (needed by ablations with positions per prompt).
    means : dict, optional
        For mean head ablations: each block's ``(heads, head_dim)`` mean output-projection input.

    Returns
    -------
    ExtractionPlan

    Raises
    ------
    InvalidInputError
        If a site is out of range, an intervention names a module the model lacks or a head site, or gives a side
        its site does not have, or an ablation names a head the model lacks or a position outside a prompt.
    FastprobeError
        If a head site's block cannot be split into heads.
    """
    body = anatomy(model)
    resolved = resolve_sites(sites, body.n_layers, body.n_heads)
    plan = ExtractionPlan(body, resolved, _reads(body, resolved))
    for item in interventions:
        if isinstance(item, HeadAblation):
            plan.changes.extend(item.compile(body, prompts, lengths, plan.context, means))
        elif isinstance(item, EdgeAblation):
            plan.attention.append(item.compile(body, prompts, lengths, plan.context))
        else:
            plan.changes.append(_change(body, item))
    return plan


def _reads(body: Anatomy, sites: list[Site]) -> list[Read]:
    plan: list[Read] = []
    proj_layers: dict[int, list[bool]] = {}
    for site in sites:
        if site.kind == "resid":
            plan.append(Read(("resid", site.layer), body.blocks[site.layer], False, True))
        elif site.kind == "embed":
            plan.append(Read(("embed", -1), body.blocks[0], True, False))
        elif site.kind in ("attn", "head"):
            flags = proj_layers.setdefault(site.layer, [False, False])
            flags[0 if site.kind == "head" else 1] = True
        elif site.kind == "mlp":
            plan.append(Read(("mlp", site.layer), body.mlp(site.layer), False, True))
    for layer, (want_in, want_out) in proj_layers.items():
        if want_in:
            body.head_weights(layer)  # fails early, naming the problem, if heads cannot be split
        plan.append(Read(("proj", layer), body.attention_projection(layer), want_in, want_out))
    unique = {r.key: r for r in plan}.values()
    return sorted(unique, key=lambda r: (r.key[1], _RANK[r.key[0]]))


def _site_target(target: SiteSpec) -> Site | None:
    if isinstance(target, str):
        try:
            return parse_site(target)
        except UnknownOptionError:
            return None  # a module path
    return parse_site(target)


def _change(body: Anatomy, item: Intervention) -> tuple[Any, str, Callable[[Any], Any]]:
    if not isinstance(item, Intervention):
        raise InvalidInputError(
            f"interventions must be Intervention, HeadAblation or EdgeAblation objects; got {type(item).__name__}"
        )
    if not callable(item.fn):
        raise InvalidInputError(f"the intervention on {item.target!r} needs a callable fn; got {item.fn!r}")
    site = _site_target(item.target)
    if site is None:
        side = item.on or "output"
        if side not in INTERVENTION_SIDES:
            raise UnknownOptionError(f"unknown side {side!r}; expected one of: {', '.join(INTERVENTION_SIDES)}")
        path = str(item.target)
        try:
            module = body.model.get_submodule(path)
        except AttributeError as err:
            raise InvalidInputError(f"{type(body.model).__name__} has no module {path!r} to intervene on") from err
        return module, side, item.fn
    if site.kind == "head":
        raise InvalidInputError(f"site {site.name!r}: a head is changed with HeadAblation, not Intervention")
    site = resolve_sites(site, body.n_layers, body.n_heads)[0]
    module, side = {
        "resid": lambda: (body.blocks[site.layer], "output"),
        "embed": lambda: (body.blocks[0], "input"),
        "attn": lambda: (body.attention_projection(site.layer), "output"),
        "mlp": lambda: (body.mlp(site.layer), "output"),
    }[site.kind]()
    if item.on is not None and item.on != side:
        raise InvalidInputError(f"site {site.name!r} is its module's {side}; got on={item.on!r}")
    return module, side, item.fn


class Captured:
    """One forward pass's captures, turned into site activations on demand.

    Head sites are computed from the attention projection's input only where asked: at one position per prompt
    (:meth:`at`), at the real tokens (:meth:`tokens`) or everywhere (:meth:`full`).

    Attributes
    ----------
    idx : numpy.ndarray
        The prompts of the pass (indices into the prompts the run was given).
    mask : torch.Tensor of shape (B, S), bool
        The real tokens of the pass, on the model's device.
    """

    def __init__(self, idx: np.ndarray, mask: Any, captured: dict[tuple[str, int], Any], body: Anatomy) -> None:
        self.idx = idx
        self.mask = mask
        self._captured = captured
        self._body = body
        self._heads: dict[int, Any] = {}
        #: Attention rows read during the pass (``forward_batches(attention_queries=...)``): block -> ``(B, heads, S)``.
        self.attention: dict[int, Any] = {}
        #: The pass's logits, ``(B, S, vocabulary)``, when it ran with the language-model head (else None).
        self.logits: Any = None
        #: The tokens fed to a generation step (``generate_batches(on_step=...)``), else None.
        self.input_ids: Any = None

    def _head_weight(self, site: Site) -> Any:
        if site.layer not in self._heads:
            self._heads[site.layer] = self._body.head_weights(site.layer)
        return self._heads[site.layer][site.head]

    def _get(self, key: tuple[str, int]) -> Any:
        x = self._captured[key]
        # Some blocks (OPT's MLP) flatten the batch and sequence dimensions.
        return x.reshape(*self.mask.shape, -1) if x.ndim == 2 else x

    def _source(self, site: Site) -> Any:
        if site.kind == "head":
            x = self._get(("proj_in", site.layer))
            width = x.shape[-1] // (self._body.n_heads or 1)
            return x[..., site.head * width : (site.head + 1) * width]
        key = {"resid": "resid", "embed": "embed", "attn": "proj_out", "mlp": "mlp"}[site.kind]
        return self._get((key, site.layer))

    def _finish(self, site: Site, rows: Any) -> Any:
        if site.kind == "head":
            w = self._head_weight(site)
            return rows.to(w.dtype) @ w
        return rows

    def full(self, site: Site) -> Any:
        """``(B, S, hidden)`` at every position (padding included)."""
        return self._finish(site, self._source(site))

    def at(self, site: Site, positions: Any) -> Any:
        """``(B, hidden)``: each prompt's row at ``positions[b]``."""
        import torch

        src = self._source(site)
        rows = src[torch.arange(src.shape[0], device=src.device), positions.to(src.device)]
        return self._finish(site, rows)

    def head_inputs(self, layer: int) -> Any:
        """``(real tokens, heads, head_dim)``: block ``layer``'s output-projection input at the real tokens, by head.

        Needs a head site of that block among the pass's sites.
        """
        x = self._get(("proj_in", layer))[self.mask]
        n_heads = self._body.n_heads or 1
        return x.reshape(x.shape[0], n_heads, x.shape[-1] // n_heads)

    def tokens(self, site: Site) -> Any:
        """``(real tokens, hidden)``: prompt 0's real tokens, then prompt 1's, ... (padding dropped)."""
        return self._finish(site, self._source(site)[self.mask])
