"""Inside the attention: read chosen query rows of the attention weights, and remove chosen query-to-key edges.

Every supported architecture computes its attention through one call, ``attention_interface(module, query, key,
value, attention_mask, scaling=..., **kwargs)``, looked up in ``transformers``' attention registry by the
implementation the model was loaded with (eager, sdpa, flash, ...). While a pass of a model with attention handlers
runs, every registered implementation is wrapped: a call from one of that model's attention modules goes through
its handlers (which may read the rotated queries and keys, or mask more edges) and then to the implementation the
model was loaded with; a call from any other model passes straight through.

Weights are computed only for the query rows asked for, from the queries and keys the implementation is given, the
way eager attention computes them (scale, optional logit soft-capping, the mask, a float32 softmax): memory beyond the
pass itself is ``(batch, heads, keys)`` per layer, never a whole attention map. A masked edit hands the
implementation a full additive mask; implementations that take no such mask (flash, flex) run as sdpa for that call.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastprobe.exceptions import FastprobeError

__all__ = ["AttentionCall", "attention_handlers", "attention_rows"]

_lock = threading.Lock()
# id(attention module) -> (layer, handlers); the registry is wrapped while any entry exists.
_routes: dict[int, tuple[int, list[Callable[[AttentionCall], None]]]] = {}
_saved: dict[str, Any] | None = None


class AttentionCall:
    """One call of an attention implementation, as a handler sees it.

    Attributes
    ----------
    layer : int
        The block the attention module belongs to.
    module : torch.nn.Module
    query : torch.Tensor of shape (B, heads, queries, head_dim)
        After the position encoding (rotary embeddings applied).
    key : torch.Tensor of shape (B, key-value heads, keys, head_dim)
    kwargs : dict
        What the module passed besides (``scaling``, ``softcap``, ``sliding_window``, ...).
    padding : torch.Tensor of shape (B, keys), bool, or None
        The pass's real tokens (given by the runner), used when the implementation receives no 4-d mask.
    edited : bool
        Whether a handler changed the mask (the call then runs with :attr:`mask`).
    """

    def __init__(
        self, layer: int, module: Any, query: Any, key: Any, attention_mask: Any, kwargs: dict[str, Any], padding: Any
    ) -> None:
        self.layer = layer
        self.module = module
        self.query = query
        self.key = key
        self.kwargs = kwargs
        self.padding = padding
        self.edited = False
        self._given = attention_mask
        self._mask: Any = None

    @property
    def n_heads(self) -> int:
        """The number of query heads."""
        return int(self.query.shape[1])

    @property
    def mask(self) -> Any:
        """The additive mask, ``(B, 1 or heads, queries, keys)``, in the query's dtype.

        0 where attending is allowed, the dtype's minimum where not; built from what the model passed (or from
        causality, padding and the sliding window).
        """
        if self._mask is None:
            self._mask = _additive_mask(self)
        return self._mask

    def block(self, batch_rows: Any, heads: Any, queries: Any, keys: Any) -> None:
        """Forbid query ``queries[i]`` of batch row ``batch_rows[i]`` to attend to ``keys[i]`` in ``heads``.

        ``heads`` is None (every head) or a 1-d tensor of head indices.
        """
        import torch

        mask = self.mask
        if heads is not None and mask.shape[1] == 1:
            mask = mask.expand(-1, self.n_heads, -1, -1).clone()
        low = torch.finfo(mask.dtype).min
        if heads is None:
            mask[batch_rows, :, queries, keys] = low
        else:
            mask[batch_rows[:, None], heads[None, :], queries[:, None], keys[:, None]] = low
        self._mask = mask
        self.edited = True

    def weights(self, queries: Any) -> Any:
        """Return the float32 attention weights of query ``queries[b]`` in each batch row: ``(B, heads, keys)``."""
        import torch

        b = torch.arange(self.query.shape[0], device=self.query.device)
        q = self.query[b, :, queries].float()  # (B, heads, head_dim)
        k = self.key.float()
        group = self.n_heads // k.shape[1]
        if group > 1:
            k = k.repeat_interleave(group, dim=1)
        scaling = self.kwargs.get("scaling")
        if scaling is None:
            scaling = self.query.shape[-1] ** -0.5
        scores = torch.einsum("bhd,bhkd->bhk", q, k) * scaling
        softcap = self.kwargs.get("softcap")
        if softcap:
            scores = torch.tanh(scores / softcap) * softcap
        mask = self.mask[b, :, queries].float()  # (B, 1 or heads, keys)
        return torch.softmax(scores + mask, dim=-1)


def _additive_mask(call: AttentionCall) -> Any:
    import torch

    dtype = call.query.dtype
    low = torch.finfo(dtype).min
    given = call._given
    if given is not None and given.ndim == 4:
        given = given[..., : call.key.shape[2]]
        if given.dtype == torch.bool:
            return torch.zeros(given.shape, dtype=dtype, device=given.device).masked_fill(~given, low)
        return given.to(dtype).clone()
    n_q, n_k = call.query.shape[2], call.key.shape[2]
    device = call.query.device
    allowed = torch.ones(n_q, n_k, dtype=torch.bool, device=device)
    q_abs = torch.arange(n_q, device=device)[:, None] + (n_k - n_q)
    k_abs = torch.arange(n_k, device=device)[None, :]
    if getattr(call.module, "is_causal", True) and call.kwargs.get("is_causal", True) is not False:
        allowed &= k_abs <= q_abs
    window = call.kwargs.get("sliding_window")
    if window:
        allowed &= (q_abs - k_abs) < window
    allowed = allowed[None, None].expand(call.query.shape[0], 1, n_q, n_k)
    padding = given if given is not None and given.ndim == 2 else call.padding
    if padding is not None:
        allowed = allowed & padding[:, None, None, -n_k:].bool().to(device)
    return torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill(~allowed, low)


def _eager(module: Any) -> Callable[..., Any]:
    fn = getattr(sys.modules.get(type(module).__module__), "eager_attention_forward", None)
    if fn is None:
        raise FastprobeError(f"{type(module).__name__} has no eager attention function to run its attention with")
    return fn


def _wrapper(name: str, original: Callable[..., Any] | None) -> Callable[..., Any]:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    def run(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, *args: Any, **kwargs: Any) -> Any:
        route = _routes.get(id(module))
        impl = original if original is not None else _eager(module)
        if route is None:
            return impl(module, query, key, value, attention_mask, *args, **kwargs)
        layer, handlers = route
        call = AttentionCall(layer, module, query, key, attention_mask, kwargs, _padding.get(id(module)))
        for handler in handlers:
            handler(call)
        if not call.edited:
            return impl(module, query, key, value, attention_mask, *args, **kwargs)
        if name not in ("eager", "sdpa"):
            impl = _saved_impl("sdpa") or ALL_ATTENTION_FUNCTIONS["sdpa"]
        return impl(module, query, key, value, call.mask, *args, **kwargs)

    return run


# id(attention module) -> the padding mask of the pass in flight (set by the runner through set_padding).
_padding: dict[int, Any] = {}


def _saved_impl(name: str) -> Callable[..., Any] | None:
    return None if _saved is None else _saved["originals"].get(name)


def _install() -> None:
    global _saved
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    local = dict(ALL_ATTENTION_FUNCTIONS._local_mapping)
    originals = {name: ALL_ATTENTION_FUNCTIONS[name] for name in list(ALL_ATTENTION_FUNCTIONS)}
    _saved = {"local": local, "originals": originals}
    for name, fn in originals.items():
        ALL_ATTENTION_FUNCTIONS[name] = _wrapper(name, fn)
    if "eager" not in originals:  # eager is each model file's own function, the registry's default
        ALL_ATTENTION_FUNCTIONS["eager"] = _wrapper("eager", None)


def _uninstall() -> None:
    global _saved
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if _saved is not None:
        ALL_ATTENTION_FUNCTIONS._local_mapping = _saved["local"]
        _saved = None


class Routes:
    """The handlers of one model's attention modules while they are attached (see :func:`attention_handlers`)."""

    def __init__(self, modules: dict[int, int]) -> None:
        self._modules = modules

    def set_padding(self, padding: Any) -> None:
        """Tell the handlers the real tokens of the pass about to run: ``(B, keys)`` bool."""
        for mid in self._modules:
            _padding[mid] = padding


@contextmanager
def attention_handlers(blocks: Any, handlers: list[Callable[[AttentionCall], None]]) -> Iterator[Routes]:
    """Route the attention calls of the modules under ``blocks`` through ``handlers`` while the context is open.

    Parameters
    ----------
    blocks : torch.nn.ModuleList
        The model's blocks; a module under block ``L`` reports layer ``L``.
    handlers : list of callable
        Each takes an :class:`AttentionCall` and may read it or call :meth:`AttentionCall.block`.

    Raises
    ------
    FastprobeError
        If this version of ``transformers`` has no attention registry, or the model is already routed.
    """
    try:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS  # noqa: F401
    except ImportError as err:  # pragma: no cover - transformers before the attention registry
        raise FastprobeError(
            "reading or editing attention needs transformers >= 4.48 (its attention registry)"
        ) from err
    modules = {id(m): layer for layer, block in enumerate(blocks) for m in block.modules()}
    with _lock:
        if any(mid in _routes for mid in modules):
            raise FastprobeError("this model's attention is already being read or edited by another pass")
        if not _routes:
            _install()
        for mid, layer in modules.items():
            _routes[mid] = (layer, handlers)
    try:
        yield Routes(modules)
    finally:
        with _lock:
            for mid in modules:
                _routes.pop(mid, None)
                _padding.pop(mid, None)
            if not _routes:
                _uninstall()


def attention_rows(
    layers: set[int], queries: Callable[[], Any], out: dict[int, Any]
) -> Callable[[AttentionCall], None]:
    """Return a handler storing, for each block in ``layers``, the weights of query ``queries()[b]`` of each row.

    ``out[layer]`` receives a float32 ``(B, heads, keys)`` tensor per pass.
    """

    def handler(call: AttentionCall) -> None:
        if call.layer in layers:
            out[call.layer] = call.weights(queries())

    return handler
