"""Run one batch of an extraction plan as an nnsight trace, on this machine or on NDIF."""

from __future__ import annotations

from typing import Any

from fastprobe.extraction.plan import ExtractionPlan
from fastprobe.model import LoadedModel

__all__ = ["first_tensor", "module_paths", "trace_batch"]


def first_tensor(output: Any) -> Any:
    """Return a module's output tensor: the first element of a tuple or list, else the output itself."""
    return output[0] if isinstance(output, (tuple, list)) else output


def module_paths(model: Any) -> dict[int, str]:
    """Map each module of ``model`` (by ``id``) to its dotted name in it."""
    return {id(m): n for n, m in model.named_modules()}


def _envoy(root: Any, path: str) -> Any:
    for part in path.split("."):
        if part.isdigit():
            root = root[int(part)]
        else:
            # nnsight serves a submodule whose name it reserves (BERT's "output") as "E_<name>".
            root = getattr(root, f"E_{part}") if hasattr(root, f"E_{part}") else getattr(root, part)
    return root


def trace_batch(
    loaded: LoadedModel, batch: dict[str, Any], plan: ExtractionPlan, paths: dict[int, str]
) -> dict[tuple[str, int], Any]:
    """Run one batch as an nnsight trace that saves what ``plan`` reads, then stops (locally or on NDIF).

    Parameters
    ----------
    loaded : LoadedModel
        A model loaded with ``backend="nnsight"``.
    batch : dict of str to torch.Tensor
        The padded batch.
    plan : ExtractionPlan
        Its reads are saved; it must hold no interventions.
    paths : dict of int to str
        :func:`module_paths` of the model.

    Returns
    -------
    dict
        The captures, keyed as the local hooks key them (:class:`~fastprobe.extraction.plan.Captured` reads them).
    """
    wrapper = loaded.tracer
    saved: dict[tuple[str, int], Any] = {}
    options: dict[str, Any] = {"use_cache": False}
    if loaded.remote:
        options["remote"] = True
    with wrapper.trace(**batch, **options) as tracer:
        for read in plan.reads:
            kind, layer = read.key
            envoy = _envoy(wrapper, paths[id(read.module)])
            if kind == "proj":
                if read.want_in:
                    saved[("proj_in", layer)] = envoy.input.save()
                if read.want_out:
                    saved[("proj_out", layer)] = envoy.output.save()
            elif kind == "embed":
                saved[read.key] = envoy.input.save()
            else:
                saved[read.key] = envoy.output.save()
        tracer.stop()
    out: dict[tuple[str, int], Any] = {}
    for key, value in saved.items():
        value = getattr(value, "value", value)
        out[key] = value if key[0] in ("proj_in", "proj_out", "embed") else first_tensor(value)
    for read in plan.reads:
        if read.key[0] == "proj":
            out[read.key] = None
    return out
