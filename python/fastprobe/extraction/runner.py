"""The runner: batch prompts by length, install a plan's hooks, run the passes, halve batches that run out of memory.

:func:`forward_batches` is the forward loop every extraction goes through (looked up on this module at call time,
so a test can replace it to count forward passes); :func:`generate_batches` drives ``model.generate`` with the same
hooks and yields what they captured at each step.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastprobe.exceptions import FastprobeError, InvalidInputError
from fastprobe.extraction.ablation import HeadAblation
from fastprobe.extraction.attention import attention_handlers, attention_rows
from fastprobe.extraction.batching import Batches, check_batch_size, is_auto, token_budget
from fastprobe.extraction.nnsight import first_tensor, module_paths, trace_batch
from fastprobe.extraction.plan import Captured, ExtractionPlan, Intervention, Read, build_plan
from fastprobe.model import LoadedModel, accepts_kwarg, causal_lm, length_order, pad_batch, tokenize
from fastprobe.sites import Site

__all__ = [
    "Generation",
    "StopForward",
    "check_batch_size",
    "forward_batches",
    "generate_batches",
    "head_means",
    "install_hooks",
    "plan_batches",
]


class StopForward(Exception):
    """Raised by the last hook a pass needs, to end the forward pass early."""


def _oom_errors() -> tuple[type[BaseException], ...]:
    import torch

    return (getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError),)


class _Capture:
    """What the hooks of one pass captured; with ``stop``, the pass ends as soon as every read has fired."""

    def __init__(self, plan: ExtractionPlan, stop: bool) -> None:
        self.captured: dict[tuple[str, int], Any] = {}
        self.needed = plan.needed
        self.stop = stop
        #: Called with each read as its hook fires; a read it answers True for is consumed (kept as None).
        self.sink: Callable[[tuple[str, int], Any], bool] | None = None

    def keep(self, key: tuple[str, int], value: Any) -> None:
        if self.sink is not None and value is not None and self.sink(key, value):
            value = None
        self.captured[key] = value
        if self.stop and self.needed.issubset(self.captured):
            raise StopForward

    def check(self, model: Any, captured: dict[tuple[str, int], Any]) -> None:
        if not self.needed.issubset(captured):
            missing = sorted(k for k in self.needed if k not in captured)
            raise FastprobeError(f"the forward pass of {type(model).__name__} never reached {missing}")


def _read_hook(read: Read, state: _Capture) -> tuple[bool, Callable[..., None]]:
    """Return (is a pre-hook with kwargs, the hook) that captures one read."""
    kind, layer = read.key
    if kind == "embed":
        return True, lambda _m, args, kwargs: state.keep(read.key, args[0] if args else kwargs["hidden_states"])
    if kind != "proj":
        return False, lambda _m, _i, output: state.keep(read.key, first_tensor(output))

    def on_proj(_m: Any, inputs: Any, output: Any) -> None:
        if read.want_in:
            state.captured[("proj_in", layer)] = inputs[0]
        if read.want_out:
            state.captured[("proj_out", layer)] = output
        state.keep(read.key, None)

    return False, on_proj


def _replace_output(fn: Callable[[Any], Any]) -> Callable[..., Any]:
    def hook(_m: Any, _inputs: Any, output: Any) -> Any:
        if isinstance(output, tuple):
            return (fn(output[0]), *output[1:])
        if isinstance(output, list):
            return [fn(output[0]), *output[1:]]
        return fn(output)

    return hook


def _replace_input(fn: Callable[[Any], Any]) -> Callable[..., Any]:
    def hook(_m: Any, args: Any, kwargs: Any) -> Any:
        if args:
            return (fn(args[0]), *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": fn(kwargs["hidden_states"])}

    return hook


def install_hooks(plan: ExtractionPlan, state: _Capture) -> list[Any]:
    """Register the plan's interventions, then its reads (so a read sees a replaced value); return the handles."""
    handles = []
    for module, side, fn in plan.changes:
        if side == "output":
            handles.append(module.register_forward_hook(_replace_output(fn)))
        else:
            handles.append(module.register_forward_pre_hook(_replace_input(fn), with_kwargs=True))
    for read in plan.reads:
        pre, hook = _read_hook(read, state)
        if pre:
            handles.append(read.module.register_forward_pre_hook(hook, with_kwargs=True))
        else:
            handles.append(read.module.register_forward_hook(hook))
    return handles


class _Progress:
    """A progress bar of prompts, with tokens per second beside it."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="prompt", disable=not enabled, dynamic_ncols=True)
        self.tokens = 0

    def update(self, prompts: int, tokens: int) -> None:
        self.tokens += tokens
        self.bar.update(prompts)
        elapsed = self.bar.format_dict.get("elapsed") or 0.0
        if elapsed > 0:
            self.bar.set_postfix(tokens_per_s=f"{self.tokens / elapsed:,.0f}", refresh=False)

    def close(self) -> None:
        self.bar.close()


def _out_of_memory(
    loaded: LoadedModel, chunk: list[int], rows: list[dict[str, list[int]]], err: BaseException, chunks: Batches
) -> None:
    """Refuse a single prompt that does not fit; otherwise halve the batches and warn."""
    import torch

    if len(chunk) == 1:
        raise FastprobeError(
            f"out of memory on {loaded.device} running a single prompt of "
            f"{len(rows[chunk[0]]['input_ids'])} tokens; use a smaller dtype or another device"
        ) from err
    limit = chunks.halve(chunk)
    warnings.warn(
        f"out of memory on {loaded.device} with a batch of {len(chunk)} prompts; retrying with {limit}",
        RuntimeWarning,
        stacklevel=4,
    )
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def plan_batches(loaded: LoadedModel, order: list[int], lengths: list[int], batch_size: int | None) -> Batches:
    """Return the batches of a run: ``batch_size`` prompts each, or (None, or the probe's default) a token budget.

    ``lengths``: each prompt's padded token count (for generation, its prompt and the new tokens).
    """
    if not is_auto(batch_size):
        assert batch_size is not None
        return Batches(order, lengths, int(batch_size))
    config = getattr(loaded.model, "config", None)
    intermediate = int(getattr(config, "intermediate_size", 0) or 0)
    try:
        width = next(loaded.model.parameters()).element_size()
    except (AttributeError, StopIteration, TypeError):
        width = 4
    budget = token_budget(loaded.device, loaded.hidden_size, intermediate, width)
    return Batches(order, lengths, None, budget)


def _run_pass(
    loaded: LoadedModel,
    batch: dict[str, Any],
    plan: ExtractionPlan,
    state: _Capture,
    paths: dict[int, str],
    lm: Any = None,
) -> dict[tuple[str, int], Any]:
    """Run one pass; with ``lm`` (the model with its head), run it to the end and keep its logits."""
    import torch

    state.captured.clear()
    with torch.inference_mode():
        if loaded.backend == "nnsight":
            return trace_batch(loaded, batch, plan, paths)
        if lm is not None:
            logits = lm(**batch, use_cache=False).logits
            return {**state.captured, ("logits", 0): logits}
        try:
            loaded.model(**batch, use_cache=False)
        except StopForward:
            pass
    return dict(state.captured)


def head_means(
    loaded: LoadedModel, texts: Sequence[str], layers: Sequence[int], batch_size: int | None = None
) -> dict[int, Any]:
    """Each block's mean output-projection input over every real token of ``texts``, by head: ``(heads, head_dim)``.

    What a mean head ablation puts in place of a head (float32, on the model's device).
    """
    import torch

    sites = [Site("head", layer, 0) for layer in sorted(set(layers))]
    sums: dict[int, Any] = {}
    count = 0
    for batch in forward_batches(loaded, texts, sites, batch_size, progress=False):
        for site in sites:
            x = batch.head_inputs(site.layer).float()
            sums[site.layer] = x.sum(dim=0) + sums.get(site.layer, torch.zeros_like(x[0]))
        count += int(batch.mask.sum())
    return {layer: total / count for layer, total in sums.items()}


def _reference_means(
    loaded: LoadedModel, interventions: Sequence[Any], batch_size: int | None
) -> dict[int, Any] | None:
    """Return the means the mean head ablations among ``interventions`` need (None when there are none)."""
    from fastprobe.model import anatomy

    means: dict[int, Any] = {}
    body = None
    for item in interventions:
        if isinstance(item, HeadAblation) and item.mode == "mean":
            body = body or anatomy(loaded.model)
            assert item.reference is not None
            means.update(head_means(loaded, list(item.reference), list(item.layers(body)), batch_size))
    return means or None


def forward_batches(
    loaded: LoadedModel,
    prompts: Sequence[str],
    sites: Sequence[Site],
    batch_size: int | None = None,
    progress: bool = True,
    *,
    interventions: Sequence[Any] = (),
    attention_queries: Sequence[int] | None = None,
    attention_layers: Sequence[int] | None = None,
    logits: bool = False,
    keep: Sequence[int] | None = None,
) -> Iterator[Captured]:
    """Yield one :class:`~fastprobe.extraction.plan.Captured` per forward pass, prompts batched by (token length, text).

    Hooks capture what ``sites`` need; the pass stops as soon as the last of them has fired (no later module, no
    language-model head, no KV cache). A CUDA out-of-memory error halves the batch size and retries.

    Parameters
    ----------
    loaded : LoadedModel
    prompts : sequence of str
    sites : sequence of Site
        Resolved sites (:func:`fastprobe.sites.resolve_sites`).
    batch_size : int or None, default=None
        Prompts per batch; None fills each batch to the device's token budget (:mod:`fastprobe.extraction.batching`).
    progress : bool, default=True
    interventions : sequence of Intervention, HeadAblation or EdgeAblation, default=()
        What the passes change (local backend only).
    attention_queries : sequence of int, optional
        One query position per prompt (non-negative, counted from its first token): each pass's
        :attr:`~fastprobe.extraction.plan.Captured.attention` then holds, for each block of ``attention_layers``,
        the attention weights of that query, ``(B, heads, S)`` in float32 (the deepest such block must be reached by
        ``sites``).
    attention_layers : sequence of int, optional
        The blocks whose attention rows are read (default: every block).
    logits : bool, default=False
        Run the model with its language-model head (:func:`fastprobe.model.causal_lm`) to the end: each pass's
        :attr:`~fastprobe.extraction.plan.Captured.logits` holds its ``(B, S, vocabulary)`` logits.
    keep : sequence of int, optional
        Per prompt, how many of its first tokens to run (the rest are dropped before the pass). In a causal model
        the activations of the tokens kept do not depend on those dropped.

    Raises
    ------
    InvalidInputError
        For a bad batch size or prompt, interventions, attention reads or logits on the nnsight backend, or an ablation
        naming a head the model lacks or a position outside a prompt.
    FastprobeError
        If a single prompt runs out of memory, or the pass never reaches a site.
    """
    check_batch_size(batch_size)
    rows = tokenize(loaded, prompts)
    if keep is not None:
        rows = [{k: v[: max(1, int(n))] for k, v in r.items()} for r, n in zip(rows, keep, strict=True)]
    lengths = [len(r["input_ids"]) for r in rows]
    means = _reference_means(loaded, interventions, batch_size) if interventions else None
    lm = causal_lm(loaded) if logits else None
    plan = build_plan(
        loaded.model if lm is None else lm, list(sites), interventions, prompts=prompts, lengths=lengths, means=means
    )
    reads_attention = attention_queries is not None
    if (plan.changes or plan.attention or reads_attention or logits) and loaded.backend != "local":
        raise InvalidInputError(
            f"interventions and attention reads run on the local backend; this model uses {loaded.backend!r}"
        )
    rows_out: dict[int, Any] = {}
    handlers = list(plan.attention)
    if reads_attention:
        queries = list(attention_queries or [])
        layers = set(range(plan.body.n_layers) if attention_layers is None else attention_layers)
        handlers.append(attention_rows(layers, lambda: plan.context.first + _batch_queries(plan, queries), rows_out))
    chunks = plan_batches(loaded, length_order(prompts, rows), lengths, batch_size)
    state = _Capture(plan, stop=lm is None)
    handles = install_hooks(plan, state) if loaded.backend == "local" else []
    paths = module_paths(loaded.model) if loaded.backend == "nnsight" else {}
    use_positions = accepts_kwarg(loaded.model if lm is None else lm, "position_ids")
    meter = _Progress(len(prompts), "extracting", progress)
    routing = attention_handlers(plan.body.blocks, handlers) if handlers else None
    try:
        routes = routing.__enter__() if routing is not None else None
        while chunks:
            chunk = chunks.pop()
            batch = pad_batch(loaded, [rows[i] for i in chunk])
            if not use_positions:
                batch.pop("position_ids")
            batch = {k: v.to("cpu" if loaded.remote else loaded.device) for k, v in batch.items()}
            mask = batch["attention_mask"].bool()
            idx = np.asarray(chunk, dtype=np.int64)
            plan.context.begin(idx, mask)
            if routes is not None:
                routes.set_padding(mask)
            rows_out.clear()
            try:
                captured = _run_pass(loaded, batch, plan, state, paths, lm)
            except _oom_errors() as err:
                state.captured.clear()
                del batch
                _out_of_memory(loaded, chunk, rows, err, chunks)
                continue
            state.check(loaded.model, captured)
            done = Captured(idx, mask, captured, plan.body)
            done.attention = dict(rows_out)
            done.logits = captured.get(("logits", 0))
            yield done
            state.captured.clear()
            meter.update(len(chunk), int(mask.sum()))
    finally:
        for h in handles:
            h.remove()
        if routing is not None:
            routing.__exit__(None, None, None)
        meter.close()


def _batch_queries(plan: ExtractionPlan, queries: list[int]) -> Any:
    import torch

    idx = plan.context.idx
    assert idx is not None
    return torch.tensor([queries[i] for i in idx.tolist()], dtype=torch.long, device=plan.context.mask.device)


@dataclass
class Generation:
    """What one batch of :func:`generate_batches` gave.

    Attributes
    ----------
    idx : numpy.ndarray
        The batch's prompts (indices into the prompts given).
    sequences : torch.Tensor of shape (B, S + new tokens)
        ``model.generate``'s output: the left-padded prompts, then the generated tokens.
    prompt_mask : torch.Tensor of shape (B, S), bool
        The prompts' real tokens.
    steps : list of Captured
        One per forward pass of the generation, in order: the first over the prompts, each later one over what it
        was fed (with a KV cache, the one token generated before it). Each step's ``mask`` covers its own tokens;
        as in ``generate``, a token fed after a sequence has ended (its padding) counts as real.
    """

    idx: np.ndarray
    sequences: Any
    prompt_mask: Any
    steps: list[Captured]


def _step_hooks(
    lm: Any,
    state: _Capture,
    fed: list[Any],
    steps: list[dict[tuple[str, int], Any]],
    on_step: Callable[[int, Any, dict[tuple[str, int], Any]], None] | None = None,
) -> list[Any]:
    """Hooks on the whole model that note each step's input and close its captures.

    With ``on_step``, each step's captures go to ``on_step(step, input_ids, captured)`` as soon as the step ends and
    are not kept.
    """

    def before(_m: Any, args: Any, kwargs: Any) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        fed.append(ids)
        state.captured.clear()

    def after(_m: Any, _inputs: Any, _output: Any) -> None:
        state.check(lm, state.captured)
        if on_step is None:
            steps.append(dict(state.captured))
        else:
            on_step(len(fed) - 1, fed[-1], dict(state.captured))
            state.captured.clear()

    return [lm.register_forward_pre_hook(before, with_kwargs=True), lm.register_forward_hook(after)]


def generate_batches(
    loaded: LoadedModel,
    prompts: Sequence[str],
    sites: Sequence[Site],
    batch_size: int | None = None,
    progress: bool = True,
    *,
    interventions: Sequence[Intervention] = (),
    add_special_tokens: bool = True,
    before_batch: Callable[[np.ndarray], None] | None = None,
    on_step: Callable[[np.ndarray, int, Captured], None] | None = None,
    skip_batch: Callable[[np.ndarray], bool] | None = None,
    on_read: Callable[[np.ndarray, int, tuple[str, int], Any, Any], bool] | None = None,
    **generate_kwargs: Any,
) -> Iterator[Generation]:
    """Run ``model.generate`` over the prompts (batched by length, padded on the left), capturing ``sites`` each step.

    The model with its language-model head (:func:`fastprobe.model.causal_lm`) generates; the plan's hooks
    (captures and ``interventions``) are installed on it for the whole generation, and never stop a pass early.

    Parameters
    ----------
    loaded : LoadedModel
        A local model with its files (``backend="local"``).
    prompts : sequence of str
    sites : sequence of Site
    batch_size : int or None, default=None
        Prompts per batch; None fills each batch to the device's token budget (:mod:`fastprobe.extraction.batching`).
    progress : bool, default=True
    interventions : sequence of Intervention, default=()
    add_special_tokens : bool, default=True
        False for prompts that already hold the tokenizer's special tokens (a chat template's rendering).
    before_batch : callable, optional
        Called with a batch's prompt indices just before it generates (to seed its sampling, for example).
    on_step : callable, optional
        ``on_step(idx, step, captured)`` is called as soon as each forward pass of the generation ends, with the
        batch's prompt indices, the step number and the step's :class:`~fastprobe.extraction.plan.Captured` (whose
        ``input_ids`` are the tokens fed to that step); the steps are then not kept (``Generation.steps`` is empty),
        so memory holds one step's activations at a time.
    skip_batch : callable, optional
        Called with each batch's prompt indices; a batch it answers True for is not generated (nor yielded). The
        batches are formed as without it, so a run that skips the batches an earlier run finished generates the
        others exactly as that run would have (to resume a capture).
    on_read : callable, optional
        ``on_read(idx, step, key, value, prompt_mask)`` is called inside each read's hook, as the module runs, with
        the batch's prompt indices, the step, the read's key (``("resid", layer)``, ...), its output and the batch's
        prompt attention mask. A read it answers True for is consumed: not kept for the step (its value in
        ``on_step``'s captures is None), so a step holds no more than the reads still to be consumed.
    **generate_kwargs
        Passed to ``generate`` (``max_new_tokens``, ``do_sample``, ...); ``pad_token_id`` defaults to the
        tokenizer's.

    Yields
    ------
    Generation
    """
    import torch

    check_batch_size(batch_size)
    if loaded.backend != "local" or loaded.remote:
        raise InvalidInputError(f"generation runs on the local backend; this model uses {loaded.backend!r}")
    lm = causal_lm(loaded)
    plan = build_plan(lm, list(sites), interventions)
    rows = tokenize(loaded, prompts, add_special_tokens)
    new_tokens = int(generate_kwargs.get("max_new_tokens") or 0)
    lengths = [len(r["input_ids"]) + new_tokens for r in rows]
    chunks = plan_batches(loaded, length_order(prompts, rows), lengths, batch_size)
    state = _Capture(plan, stop=False)
    fed: list[Any] = []
    steps: list[dict[tuple[str, int], Any]] = []
    current: dict[str, Any] = {}

    def stream(step: int, ids: Any, captured: dict[tuple[str, int], Any]) -> None:
        assert on_step is not None
        done = _step(current["idx"], current["mask"], step, int(ids.shape[1]), captured, plan)
        done.input_ids = ids
        on_step(current["idx"], step, done)

    handles = install_hooks(plan, state) + _step_hooks(lm, state, fed, steps, stream if on_step else None)
    if on_read is not None:
        state.sink = lambda key, value: on_read(current["idx"], len(fed) - 1, key, value, current["mask"])
    generate_kwargs.setdefault("pad_token_id", loaded.tokenizer.pad_token_id)
    meter = _Progress(len(prompts), "generating", progress)
    try:
        while chunks:
            chunk = chunks.pop()
            if skip_batch is not None and skip_batch(np.asarray(chunk, dtype=np.int64)):
                meter.update(len(chunk), 0)
                continue
            batch = pad_batch(loaded, [rows[i] for i in chunk], side="left")
            inputs = {k: batch[k].to(loaded.device) for k in ("input_ids", "attention_mask")}
            fed.clear()
            steps.clear()
            prompt_mask = inputs["attention_mask"].bool()
            idx = np.asarray(chunk, dtype=np.int64)
            current.update(idx=idx, mask=prompt_mask)
            if before_batch is not None:
                before_batch(idx)
            with torch.inference_mode():
                sequences = lm.generate(**inputs, **generate_kwargs)
            done = [  # empty when the steps went to on_step
                _step(idx, prompt_mask, t, int(ids.shape[1]), captured, plan)
                for t, (ids, captured) in enumerate(zip(fed, steps, strict=on_step is None))
            ]
            yield Generation(idx, sequences, prompt_mask, done)
            meter.update(len(chunk), int(prompt_mask.sum()))
    finally:
        for h in handles:
            h.remove()
        meter.close()


def _step(
    idx: np.ndarray, prompt_mask: Any, t: int, width: int, captured: dict[tuple[str, int], Any], plan: ExtractionPlan
) -> Captured:
    """Step ``t`` of a generation, fed ``width`` tokens: the last ``width`` columns of the mask so far."""
    import torch

    grown = torch.ones(prompt_mask.shape[0], t, dtype=torch.bool, device=prompt_mask.device)
    mask = torch.cat([prompt_mask, grown], dim=1)[:, -width:]
    return Captured(idx, mask, captured, plan.body)
