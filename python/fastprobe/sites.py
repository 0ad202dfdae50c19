"""Sites: the places in a model where an activation is read, in one naming scheme.

=================  ==========================================================================================
name               activation (one ``hidden_size`` vector per token)
=================  ==========================================================================================
``L`` (an int),    the residual stream after decoder block ``L``: the block's output (lmprobe's layer ``L``;
``"resid.L"``      the last block's output is taken before the model's final norm)
``"embed"``        the embeddings entering block 0 (Hugging Face's ``hidden_states[0]``)
``"attn.L"``       block ``L``'s attention output: the output of its attention output projection (``o_proj``,
                   ``out_proj``, ``c_proj``, ``dense``), before any post-attention norm and the residual add
``"mlp.L"``        block ``L``'s MLP output, before any post-MLP norm and the residual add
``"head.L.H"``     head ``H`` of block ``L``: that head's slice of the attention output projection's input times
                   its block of the projection's weight (no bias). The heads of a block, summed, plus the
                   projection's bias, give ``"attn.L"``.
=================  ==========================================================================================

Negative ``L`` (and ``H``) count from the end. A site is usable wherever a layer is: in extraction, in the store and
in layer sweeps. In the store, each site has a fixed integer id (:attr:`Site.store_id`); residual site ``L`` has id
``L``, so stores written with plain layer numbers read the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from fastprobe.exceptions import InvalidInputError, UnknownOptionError

__all__ = ["SITE_KINDS", "Site", "SiteSpec", "parse_site", "resolve_sites", "store_ids"]

#: The kinds of site, in the order they occur within a block.
SITE_KINDS: tuple[str, ...] = ("embed", "attn", "head", "mlp", "resid")
_FORMS = 'an int (block output), "resid.L", "embed", "attn.L", "mlp.L" or "head.L.H"'
_KIND_CODE = {"embed": 1, "attn": 2, "mlp": 3, "head": 4}
_PATTERN = re.compile(r"^(?:(resid|attn|mlp)\.(-?\d+)|head\.(-?\d+)\.(-?\d+)|embed)$")


@dataclass(frozen=True)
class Site:
    """One activation site.

    Attributes
    ----------
    kind : {"embed", "resid", "attn", "mlp", "head"}
    layer : int
        The block (-1 for ``"embed"``); negative until resolved against a model when given that way.
    head : int
        The head for ``"head"`` sites, else -1.
    """

    kind: str
    layer: int
    head: int = -1

    @property
    def name(self) -> str:
        """The site's name in the scheme (``"resid.3"``, ``"head.5.0"``, ...)."""
        if self.kind == "embed":
            return "embed"
        if self.kind == "head":
            return f"head.{self.layer}.{self.head}"
        return f"{self.kind}.{self.layer}"

    @property
    def store_id(self) -> int:
        """The site's integer id in an activation store (residual ``L`` is ``L``)."""
        if (self.kind != "embed" and self.layer < 0) or (self.kind == "head" and self.head < 0):
            raise InvalidInputError(f"site {self.name!r} has a negative index; resolve it against a model first")
        if self.kind == "resid":
            return self.layer
        if self.kind == "embed":
            return _KIND_CODE["embed"] << 24
        return (_KIND_CODE[self.kind] << 24) | (self.layer << 12) | max(self.head, 0)

    @classmethod
    def from_store_id(cls, site_id: int) -> Site:
        """Invert :attr:`store_id`."""
        code, layer, head = site_id >> 24, (site_id >> 12) & 0xFFF, site_id & 0xFFF
        if code == 0:
            return cls("resid", site_id)
        kinds = {v: k for k, v in _KIND_CODE.items()}
        if code not in kinds:
            raise InvalidInputError(f"{site_id} is not a site id")
        kind = kinds[code]
        if kind == "embed":
            return cls("embed", -1)
        return cls(kind, layer, head if kind == "head" else -1)

    @property
    def order(self) -> tuple[int, int, int]:
        """Sort key: the order in which a forward pass produces the sites."""
        return (self.layer, SITE_KINDS.index(self.kind), self.head)

    def __str__(self) -> str:
        return self.name


SiteSpec = int | str | Site


def parse_site(spec: SiteSpec) -> Site:
    """Read one site name (or int, or :class:`Site`) without resolving negative indices.

    Raises
    ------
    UnknownOptionError
        If a string is not a site name; the message lists the accepted forms.
    InvalidInputError
        If the value is neither an int, a string nor a :class:`Site`.
    """
    if isinstance(spec, Site):
        return spec
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return Site("resid", int(spec))
    if not isinstance(spec, str):
        raise InvalidInputError(f"a site must be {_FORMS}; got {spec!r} of type {type(spec).__name__}")
    m = _PATTERN.match(spec.strip())
    if m is None:
        raise UnknownOptionError(f"unknown site {spec!r}; expected {_FORMS}")
    if m.group(1):
        return Site(m.group(1), int(m.group(2)))
    if m.group(3):
        return Site("head", int(m.group(3)), int(m.group(4)))
    return Site("embed", -1)


def _resolve_index(value: int, count: int, what: str, site: Site) -> int:
    resolved = value + count if value < 0 else value
    if not 0 <= resolved < count:
        raise InvalidInputError(
            f"{what} {value} of site {site.name!r} is out of range for a model with {count} {what}s "
            f"(valid: {-count} to {count - 1})"
        )
    return resolved


def resolve_sites(spec: SiteSpec | Iterable[SiteSpec], n_layers: int, n_heads: int | None = None) -> list[Site]:
    """Turn site names into resolved, distinct sites in forward-pass order.

    Parameters
    ----------
    spec : int, str, Site, or an iterable of them
        See the module documentation for the names.
    n_layers : int
        The model's number of blocks.
    n_heads : int, optional
        Its number of attention heads (needed for head sites).

    Returns
    -------
    list of Site
        Without duplicates, ordered as the forward pass produces them (block by block; within a block attention,
        heads, MLP, then the block output); features of several sites are concatenated in this order.

    Raises
    ------
    InvalidInputError
        If a layer or head is out of range, or the list is empty.
    UnknownOptionError
        If a name is not a site.
    """
    items: Sequence[SiteSpec] = [spec] if isinstance(spec, (int, np.integer, str, Site)) else list(spec)
    if not items:
        raise InvalidInputError("the site list is empty; give at least one site")
    out: dict[Site, None] = {}
    for item in items:
        site = parse_site(item)
        if site.kind == "embed":
            out[Site("embed", -1)] = None
            continue
        layer = _resolve_index(site.layer, n_layers, "layer", site)
        head = -1
        if site.kind == "head":
            if n_heads is None:
                raise InvalidInputError(f"site {site.name!r} needs the model's number of heads")
            head = _resolve_index(site.head, n_heads, "head", site)
        out[Site(site.kind, layer, head)] = None
    return sorted(out, key=lambda s: s.order)


def store_ids(sites: Iterable[SiteSpec]) -> list[int]:
    """Return the store ids of already-resolved sites (ints pass through as residual layers)."""
    return [parse_site(s).store_id for s in sites]
