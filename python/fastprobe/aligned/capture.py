"""Capture during generation: sample continuations and, in the same pass, pool chosen sites over three spans.

For every (prompt, template, sample), :func:`capture_generation` renders the templated input
(:mod:`fastprobe.aligned.templates`), samples a continuation with the model's language-model head and the KV cache on,
and pools each site over

- ``"prompt"``: the prompt's own tokens inside the templated input (from its character span);
- ``"instruction"``: every other token of the templated input (system message, template text, special tokens);
- ``"generation"``: the generated tokens, each one up to and including the end-of-sequence token, the last one too
  (nothing after it).

The hooks accumulate as the model runs (:func:`fastprobe.extraction.generate_batches` with ``on_step``): memory is
that of generation plus one running sum (or maximum, ...) per (sequence, span, site), never every hidden state of
every step. The last sampled token is fed to the model too: generation runs one step beyond ``max_new_tokens`` and
the token that step samples is dropped, so the activations of every kept token are read; and a sequence ends one
step after its end-of-sequence token is sampled (the model's own stop is replaced by the capture's), so that token
is fed and pooled too, even when it ends the last sequence of a batch.

Sampling is seeded: the same prompts, templates, settings, batch size and seed give the same continuations.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastprobe.aligned.capture_store import CaptureStore
from fastprobe.aligned.templates import PromptTemplate, TemplatedInput, render_all
from fastprobe.exceptions import ArgumentTypeError, InvalidInputError, UnknownOptionError
from fastprobe.extraction import generate_batches
from fastprobe.extraction.sampling import SAMPLER_VERSION, batch_seed, eos_ids, row_stopper, sampling_kwargs
from fastprobe.model import (
    LoadedModel,
    anatomy,
    causal_lm,
    fingerprint_of,
    load_with_head,
    model_identity,
    split_precision,
)
from fastprobe.sites import Site, SiteSpec, resolve_sites

__all__ = ["CAPTURE_POOLINGS", "PLAIN_TEMPLATE", "SPANS", "CaptureRow", "GenerationCapture", "capture_generation"]

#: The spans a capture pools over.
SPANS: tuple[str, ...] = ("prompt", "instruction", "generation")
#: The poolings a capture computes (as the activation store names them).
CAPTURE_POOLINGS: tuple[str, ...] = ("mean", "max", "min", "first_token", "last_token")


@dataclass(frozen=True)
class CaptureRow:
    """One sampled continuation: which prompt, template and sample, and what was generated.

    ``tokens`` are the kept generated token ids (up to and including the end-of-sequence token); ``ended`` says
    whether the sequence ended before ``max_new_tokens``.
    """

    prompt: int
    template: str
    sample: int
    continuation: str
    tokens: tuple[int, ...]
    ended: bool

    @property
    def n_generated(self) -> int:
        """How many tokens were kept."""
        return len(self.tokens)


@dataclass
class GenerationCapture:
    """The pooled activations of every (prompt, template, sample), with the continuations.

    Attributes
    ----------
    rows : list of CaptureRow
        In the order prompt, then template, then sample.
    prompts : list of str
    sites : list of str
        The resolved site names, in column order.
    vectors : mapping of (span, pooling) to numpy.ndarray
        ``(len(rows), len(sites) * hidden_size)`` float32 arrays. A capture into a store reads each one from the
        store when it is first asked for, so the capture holds none until then.
    settings : dict
        The sampling settings and seed.
    """

    rows: list[CaptureRow]
    prompts: list[str]
    sites: list[str]
    vectors: Mapping[tuple[str, str], np.ndarray]
    settings: dict[str, Any] = field(default_factory=dict)

    def span(self, span: str, pooling: str = "mean") -> np.ndarray:
        """Return the ``(rows, sites * hidden)`` matrix of one span and pooling."""
        if (span, pooling) not in self.vectors:
            have = sorted({f"{s}/{p}" for s, p in self.vectors})
            raise UnknownOptionError(f"no {span!r} span pooled by {pooling!r}; this capture has: {', '.join(have)}")
        return self.vectors[(span, pooling)]

    @property
    def continuations(self) -> list[str]:
        """The generated texts, one per row."""
        return [r.continuation for r in self.rows]


class _Pool:
    """Running reductions of one (span, site) for the rows of one batch."""

    def __init__(self, poolings: Sequence[str]) -> None:
        self.poolings = poolings
        self.sum: Any = None
        self.count: Any = None
        self.max: Any = None
        self.min: Any = None
        self.first: Any = None
        self.last: Any = None

    def add(self, x: Any, mask: Any) -> None:
        """Fold in ``x`` of shape (B, T, H) at the positions ``mask`` (B, T) marks.

        The masked sum is one batched product (no (B, T, H) temporary), added into a float64 running sum; the other
        reductions exist only when asked for.
        """
        import torch

        x = x.float()
        m = mask.to(x.device)
        if self.sum is None:
            b, h = x.shape[0], x.shape[-1]
            self.sum = torch.zeros(b, h, dtype=torch.float64, device=x.device)
            self.count = torch.zeros(b, dtype=torch.float64, device=x.device)
            if "max" in self.poolings:
                self.max = torch.full((b, h), -torch.inf, device=x.device)
            if "min" in self.poolings:
                self.min = torch.full((b, h), torch.inf, device=x.device)
            if "first_token" in self.poolings or "last_token" in self.poolings:
                self.first = torch.full((b, h), torch.nan, device=x.device)
                self.last = torch.full((b, h), torch.nan, device=x.device)
        if x.shape[1] == 1:
            self.sum += x[:, 0] * m[:, :1]
        else:
            self.sum += torch.bmm(m[:, None, :].to(x.dtype), x)[:, 0]
        self.count += m.sum(dim=1)
        if self.max is not None:
            self.max = torch.maximum(self.max, x.masked_fill(~m[..., None], -torch.inf).amax(dim=1))
        if self.min is not None:
            self.min = torch.minimum(self.min, x.masked_fill(~m[..., None], torch.inf).amin(dim=1))
        if self.first is not None:
            for t in range(x.shape[1]):
                here = m[:, t]
                fresh = here & torch.isnan(self.first[:, 0])
                self.first[fresh] = x[fresh, t]
                self.last[here] = x[here, t]

    def result(self, pooling: str) -> Any:
        if pooling == "mean":
            return (self.sum / self.count.clamp_min(1)[:, None]).float()
        return {"max": self.max, "min": self.min, "first_token": self.first, "last_token": self.last}[pooling]


def _check(n_samples: Any, max_new_tokens: Any, poolings: Sequence[str]) -> None:
    for name, value in (("n_samples", n_samples), ("max_new_tokens", max_new_tokens)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ArgumentTypeError(f"{name} must be an int; got {value!r}")
        if value < 1:
            raise InvalidInputError(f"{name} must be at least 1; got {value}")
    if not poolings:
        raise InvalidInputError("poolings is empty; give at least one (default: mean)")
    for p in poolings:
        if p not in CAPTURE_POOLINGS:
            raise UnknownOptionError(f"unknown pooling {p!r}; expected one of: {', '.join(CAPTURE_POOLINGS)}")


class _TemplateRun:
    """One template's generation: seeds each batch, folds each step into the span pools, reads the results."""

    def __init__(
        self,
        spans: list[tuple[list[int], list[int]]],
        keys: list[tuple[int, int, int]],
        sites: list[Site],
        poolings: Sequence[str],
        eos: Sequence[int],
        seed: int,
        name: str,
    ) -> None:
        self.spans, self.keys, self.sites, self.poolings = spans, keys, sites, poolings
        self.eos, self.seed, self.name = sorted(eos), seed, name
        self.pools: dict[tuple[str, str], _Pool] = {}
        self.ended: Any = None
        self.masks: dict[str, Any] | None = None
        # residual-stream and embedding sites are pooled inside their hooks, as each block runs (on_read), so a step
        # never holds every layer's activations at once; other sites are pooled when the step ends (on_step)
        self.streamed = {(s.kind, s.layer): s for s in sites if s.kind in ("resid", "embed")}
        self.folded: set[str] = set()  # the sites pooled in their hooks during the current step
        self.sampler: Any = None  # the run's Sampler when it samples: seeded per row
        self.texts: list[str] = []  # the prompts, whose texts seed their rows

    def before_batch(self, idx: np.ndarray) -> None:
        if self.sampler is not None:  # a generator per row, seeded by its prompt and sample: batching changes nothing
            keys = [self.keys[i] for i in idx.tolist()]
            self.sampler.reseed([batch_seed(self.seed, self.name, self.texts[p], k) for p, _, k in keys])
        self.pools = {(span, s.name): _Pool(self.poolings) for span in SPANS for s in self.sites}
        self.masks = None

    def _span_masks(self, idx: np.ndarray, prompt_mask: Any) -> dict[str, Any]:
        """Return the batch's prompt and instruction positions as (B, S) masks of the padded templated inputs."""
        import torch

        if self.masks is None:
            first = prompt_mask.int().argmax(dim=1)
            masks = {name: torch.zeros_like(prompt_mask) for name in ("prompt", "instruction")}
            for b, i in enumerate(idx.tolist()):
                for name, tokens in zip(("prompt", "instruction"), self.spans[self.keys[i][0]], strict=True):
                    masks[name][b, first[b] + torch.tensor(tokens, dtype=torch.long, device=first.device)] = True
            self.masks = masks
        return self.masks

    def _fold(self, idx: np.ndarray, step: int, site: Site, x: Any, prompt_mask: Any) -> None:
        if step == 0:  # the templated input: its prompt and instruction tokens
            masks = self._span_masks(idx, prompt_mask)
            for name in ("prompt", "instruction"):
                self.pools[(name, site.name)].add(x, masks[name])
        else:  # a later step is fed the token sampled before it: count it unless its sequence has ended
            self.pools[("generation", site.name)].add(x[:, -1:], ~self.ended[:, None])

    def on_read(self, idx: np.ndarray, step: int, key: tuple[str, int], value: Any, prompt_mask: Any) -> bool:
        """Pool a streamed site's activations as its block runs; True: the read is consumed."""
        site = self.streamed.get(key)
        if site is None:
            return False
        self._fold(idx, step, site, value, prompt_mask)
        self.folded.add(site.name)
        return True

    def on_step(self, idx: np.ndarray, step: int, cap: Any) -> None:
        import torch

        for s in self.sites:
            if s.name not in self.folded:
                self._fold(idx, step, s, cap.full(s), cap.mask if step == 0 else None)
        self.folded.clear()
        if step == 0:
            self.ended = torch.zeros(len(idx), dtype=torch.bool, device=cap.mask.device)
            return
        ids = cap.input_ids[:, -1].to(self.ended.device)
        self.ended = self.ended | torch.isin(ids, torch.tensor(self.eos, device=ids.device))

    def stopping_criteria(self) -> Any:
        """Return a ``StoppingCriteriaList`` ending each row once its end-of-sequence token has been fed."""
        return row_stopper(lambda: self.ended)

    def finish(
        self, gen: Any, tokenizer: Any, max_new_tokens: int
    ) -> list[tuple[tuple[int, int, int], CaptureRow, dict[tuple[str, str, int], np.ndarray]]]:
        width = gen.prompt_mask.shape[1]
        reduced = {  # each pool's result once for the whole batch
            (span, pooling, j): self.pools[(span, s.name)].result(pooling).cpu().numpy()
            for j, s in enumerate(self.sites)
            for span in SPANS
            for pooling in self.poolings
        }
        self.pools = {}
        out = []
        for b, i in enumerate(gen.idx.tolist()):
            key = self.keys[i]
            new = gen.sequences[b, width : width + max_new_tokens].tolist()
            cut = next((k + 1 for k, v in enumerate(new) if v in self.eos), len(new))
            row = CaptureRow(
                prompt=key[0],
                template=self.name,
                sample=key[2],
                continuation=tokenizer.decode(new[:cut], skip_special_tokens=True),
                tokens=tuple(int(v) for v in new[:cut]),
                ended=bool(new) and new[cut - 1] in self.eos,
            )
            pooled = {name: batch[b] for name, batch in reduced.items()}
            out.append((key, row, pooled))
        return out


#: The template used when none is given: the prompt alone.
PLAIN_TEMPLATE = PromptTemplate("{prompt}", name="plain")


def capture_generation(
    model: LoadedModel | str,
    prompts: Sequence[str],
    sites: SiteSpec | Sequence[SiteSpec],
    *,
    templates: PromptTemplate | Sequence[PromptTemplate] = PLAIN_TEMPLATE,
    n_samples: int = 1,
    max_new_tokens: int = 20,
    do_sample: bool = True,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    poolings: Sequence[str] = ("mean",),
    chat_template_from: Any = None,
    batch_size: int | None = None,
    progress: bool = True,
    store: CaptureStore | str | os.PathLike[str] | None = None,
    precision: str | None = None,
) -> GenerationCapture:
    """Sample continuations and pool ``sites`` over the prompt, the instruction and the generated tokens.

    Parameters
    ----------
    model : LoadedModel or str
        A loaded model (its files are used to load the language-model head), or a name or path, loaded with its
        head once (:func:`~fastprobe.model.load_with_head`: the weights are held once).
    prompts : sequence of str
        Non-empty prompts.
    sites : int, str or a sequence of them
        Layers or site names (:mod:`fastprobe.sites`); ``"all"`` is every block's output.
    templates : PromptTemplate or a sequence of them
        Each prompt is rendered with each template (:func:`~fastprobe.aligned.templates.render`).
    n_samples : int, default=1
        Continuations per (prompt, template).
    max_new_tokens : int, default=20
    do_sample, temperature, top_p, top_k
        Sampling settings (``top_k=0``: no top-k filter); ``do_sample=False`` decodes greedily.
    seed : int, default=0
        Seeds each batch's sampling (with the batch's rows).
    poolings : sequence of str, default=("mean",)
        Any of :data:`CAPTURE_POOLINGS`.
    chat_template_from : tokenizer, optional
        Render the templates with this tokenizer's chat template.
    batch_size : int or None, default=None
        Sequences per ``generate`` call (samples of a prompt count one each); None fills each call to the device's
        token budget, counting each sequence's prompt and ``max_new_tokens``. Each sequence draws from its own
        generator, seeded by its prompt's text, template and sample, so the batching never changes a continuation.
    progress : bool, default=True
    store : CaptureStore or path, optional
        Stream every finished batch into this :class:`~fastprobe.aligned.CaptureStore` (a directory), keyed by
        prompt, template, sample, span and pooling, with the continuations. Rows the store already holds are not
        generated again: a killed run resumes where it stopped (every finished batch is kept), and a rerun with more
        prompts or templates stores only the new rows (a batch that mixes stored and new rows is generated whole,
        and only its new rows are stored, so stored continuations never change). The store records the model's
        identity and precision, the sites, poolings, sampling settings, seed and batch size of its first capture,
        and refuses a capture with others. The result is read back from the store.
    precision : {"float32", "float16", "bfloat16", "8bit", "4bit"}, optional
        For a model given by name: its compute dtype, or a bitsandbytes quantization (CUDA only). For a loaded
        model: None, or its own precision. The precision is part of the model's fingerprint, and so of a store's
        settings.

    Returns
    -------
    GenerationCapture

    Raises
    ------
    InvalidInputError
        An empty prompt, a prompt not found as-is in its templated input, ``n_samples`` or ``max_new_tokens`` below
        1, a site out of range, a store made with other settings, a quantization without CUDA, or a precision that
        is not the loaded model's.
    UnknownOptionError
        An unknown pooling or precision.
    """
    _check(n_samples, max_new_tokens, poolings)
    loaded = _with_head(model, precision)
    tok = loaded.tokenizer
    prompts = list(prompts)
    template_list = [templates] if isinstance(templates, PromptTemplate) else list(templates)
    rendered = render_all(template_list, prompts, tok, chat_template_from=chat_template_from)
    body = anatomy(loaded.model)
    every_block = isinstance(sites, str) and sites == "all"
    resolved: list[Site] = resolve_sites(range(body.n_layers) if every_block else sites, body.n_layers, body.n_heads)
    lm = causal_lm(loaded)
    eos = eos_ids(lm, tok)
    h = body.hidden_size
    rows: list[tuple[int, int, int]] = [
        (p, t, s) for p in range(len(prompts)) for t in range(len(template_list)) for s in range(n_samples)
    ]
    out = {  # in memory; a capture into a store keeps none of it
        (span, pooling): np.full((0 if store is not None else len(rows), len(resolved) * h), np.nan, np.float32)
        for span in SPANS
        for pooling in poolings
    }
    info: dict[int, CaptureRow] = {}
    row_of = {key: i for i, key in enumerate(rows)}
    settings = {
        "n_samples": n_samples,
        "max_new_tokens": max_new_tokens,
        "do_sample": do_sample,
        "temperature": temperature,
        "top_p": top_p,
        "top_k": top_k,
        "seed": seed,
    }
    sampling, sampler = sampling_kwargs(do_sample, temperature, top_p, top_k)
    gen_kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens + 1, **sampling}
    names = [template.name or "" for template in template_list]
    cstore = _open_store(store)
    done: set[tuple[str, str, int]] = set()
    if cstore is not None:
        cstore.check_settings(
            {
                "model": _model_key(loaded),
                "sites": [s.name for s in resolved],
                "poolings": list(poolings),
                "chat_template_from": getattr(chat_template_from, "name_or_path", None),
                "sampler": SAMPLER_VERSION if do_sample else None,
            }
            | {k: v for k, v in settings.items() if k != "n_samples"},
            {template.name: {"user": template.user, "system": template.system} for template in template_list},
        )
        done = cstore.done((prompts[p], names[t], k) for p, t, k in rows)
    for t, template in enumerate(template_list):
        inputs: list[TemplatedInput] = rendered[t]
        keys = [(p, tt, k) for p, tt, k in rows if tt == t]
        run = _TemplateRun(
            [ti.token_spans(tok) for ti in inputs], keys, resolved, poolings, eos, seed, template.name or ""
        )
        run.sampler, run.texts = sampler, prompts

        def finished(idx: np.ndarray, keys: list[tuple[int, int, int]] = keys, name: str = names[t]) -> bool:
            return all((prompts[keys[i][0]], name, keys[i][2]) in done for i in idx.tolist())

        batches = generate_batches(
            loaded,
            [inputs[p].text for p, _, _ in keys],
            resolved,
            batch_size,
            progress,
            add_special_tokens=inputs[0].add_special_tokens,
            before_batch=run.before_batch,
            on_step=run.on_step,
            on_read=run.on_read,
            skip_batch=finished if cstore is not None else None,
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else (eos[0] if eos else 0),
            eos_token_id=None,  # the run's own stop, one pass later: an end-of-sequence token is fed and pooled
            stopping_criteria=run.stopping_criteria(),
            **gen_kwargs,
        )
        for gen in batches:
            results = run.finish(gen, tok, max_new_tokens)
            if cstore is not None:  # rows stored before keep their continuations
                fresh = [x for x in results if (prompts[x[0][0]], names[t], x[0][2]) not in done]
                _commit(cstore, fresh, prompts, [s.name for s in resolved], poolings, run.spans)
                continue
            for key, row, pooled in results:
                r = row_of[key]
                info[r] = row
                for (span, pooling, j), vec in pooled.items():
                    out[(span, pooling)][r, j * h : (j + 1) * h] = vec
    if cstore is not None:
        return _from_store(cstore, prompts, rows, names, [s.name for s in resolved], poolings, settings)
    return GenerationCapture([info[r] for r in range(len(rows))], prompts, [s.name for s in resolved], out, settings)


def _with_head(model: Any, precision: str | None) -> LoadedModel:
    split_precision(precision)  # an unknown name is refused before any loading
    if isinstance(model, LoadedModel):
        have = loaded_precision(model)
        if precision is not None and precision != have:
            raise InvalidInputError(
                f"precision={precision!r} applies to a model loaded here by name; this model is already loaded in "
                f"{have!r} (load it in {precision!r}, or pass its name)"
            )
        return model
    if isinstance(model, (str, os.PathLike)):
        return load_with_head(model, precision=precision)
    raise ArgumentTypeError(f"model must be a LoadedModel or a model name; got {type(model).__name__}")


def loaded_precision(loaded: LoadedModel) -> str:
    """Return a loaded model's precision: its quantization, else its parameters' dtype name."""
    return loaded.quantization or str(fingerprint_of(loaded).get("dtype"))


def _model_key(loaded: LoadedModel) -> dict[str, Any]:
    """Return what a store's rows depend on in the model: its identity and its precision."""
    fp = fingerprint_of(loaded)
    return {"identity": list(model_identity(fp)), "dtype": fp.get("dtype"), "quantization": fp.get("quantization")}


def _open_store(store: Any) -> CaptureStore | None:
    if store is None or isinstance(store, CaptureStore):
        return store
    if isinstance(store, (str, os.PathLike)):
        return CaptureStore(store)
    raise ArgumentTypeError(f"store must be a CaptureStore, a path or None; got {type(store).__name__}")


def _commit(
    cstore: CaptureStore,
    results: list[tuple[tuple[int, int, int], CaptureRow, dict[tuple[str, str, int], np.ndarray]]],
    prompts: list[str],
    sites: list[str],
    poolings: Sequence[str],
    spans: list[tuple[list[int], list[int]]],
) -> None:
    """Store one batch's rows and vectors (``vectors[(span, pooling)]`` of shape (sites, rows, hidden))."""
    counts = {
        "prompt": [len(spans[row.prompt][0]) for _, row, _ in results],
        "instruction": [len(spans[row.prompt][1]) for _, row, _ in results],
        "generation": [row.n_generated for _, row, _ in results],
    }
    rows = [
        {
            "prompt": prompts[row.prompt],
            "template": row.template,
            "sample": row.sample,
            "continuation": row.continuation,
            "tokens": row.tokens,
            "ended": row.ended,
        }
        for _, row, _ in results
    ]
    vectors = {
        (span, pooling): np.stack(
            [np.stack([pooled[(span, pooling, j)] for _, _, pooled in results]) for j in range(len(sites))]
        )
        for span in SPANS
        for pooling in poolings
    }
    cstore.commit(rows, vectors, counts, sites)


def _from_store(
    cstore: CaptureStore,
    prompts: list[str],
    rows: list[tuple[int, int, int]],
    names: list[str],
    sites: list[str],
    poolings: Sequence[str],
    settings: dict[str, Any],
) -> GenerationCapture:
    keys = [(prompts[p], names[t], k) for p, t, k in rows]
    stored = cstore.rows(keys)
    info = [
        CaptureRow(p, names[t], k, r["continuation"], r["tokens"], r["ended"])
        for (p, t, k), r in zip(rows, stored, strict=True)
    ]
    vectors = _StoredVectors(cstore, keys, sites, [(span, pooling) for span in SPANS for pooling in poolings])
    return GenerationCapture(info, prompts, sites, vectors, settings)


class _StoredVectors(Mapping[tuple[str, str], np.ndarray]):
    """A capture's vectors in its store, each (span, pooling) read on first access and kept."""

    def __init__(
        self, cstore: CaptureStore, keys: list[tuple[str, str, int]], sites: list[str], names: list[tuple[str, str]]
    ) -> None:
        self._store, self._keys, self._sites, self._names = cstore, keys, sites, names
        self._read: dict[tuple[str, str], np.ndarray] = {}

    def __getitem__(self, name: tuple[str, str]) -> np.ndarray:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._read:
            self._read[name] = self._store.read(self._keys, name[0], name[1], self._sites)
        return self._read[name]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)
