"""An ensemble's members as plans: what each reads (context, layers, poolings), one extraction, shared reads."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastprobe import features
from fastprobe._validation import check_prompts
from fastprobe.ensemble.resampling import token_rows
from fastprobe.exceptions import InvalidInputError, UnsupportedMethodError
from fastprobe.features import ModelContext
from fastprobe.layers import LAYER_SPECS, resolve_layers
from fastprobe.model import model_identity
from fastprobe.probe import Probe
from fastprobe.probe.config import cached_reads, check_params, layers_to_extract, probe_context, retries
from fastprobe.probe.config import check_same_model as check_probe_model
from fastprobe.probe.pipeline import fit_matrix, predict_proba_rows, predict_rows, proba_spec
from fastprobe.store.pooling import PoolingSpec

__all__ = [
    "SELECTION",
    "Member",
    "fit_members",
    "fit_one",
    "member_outputs",
    "plain_layers",
    "plan_members",
    "read_training",
    "warm",
]

# Fitted attributes the ensemble's fast path leaves unset (automatic layer selection does not run there).
SELECTION = ("selected_layers_", "candidate_layers_", "layer_importances_")


@dataclass
class Member:
    """What one member reads: its context, its layers, and its (training or inference) pooling."""

    index: int
    probe: Probe
    ctx: ModelContext
    layers: list[int]
    template: Any = None
    train: str = "last_token"
    spec: PoolingSpec = field(default_factory=lambda: PoolingSpec("last_token", "activation"))
    fast: bool = True


def plain_layers(spec: Any) -> bool:
    """Whether a layer specification names fixed layers (not a sweep or an automatic selection)."""
    if isinstance(spec, str):
        return spec in LAYER_SPECS
    return True


def warm(members: list[Member], prompts: list[str], reads_of: Callable[[Member], list[str]]) -> None:
    """One extraction pass per loaded model, over the union of its members' layers.

    ``reads_of(member)``: the poolings it reads (:func:`fastprobe.features.reads`): whether tokens are kept, and which
    stored records serve it (a pulled last-token-only record does not serve a mean, and is extracted again).
    """
    by_model: dict[int, list[Member]] = {}
    for m in members:
        by_model.setdefault(id(m.ctx.loaded), []).append(m)
    for group in by_model.values():
        layers = sorted({layer for m in group for layer in m.layers})
        n_retries = max(retries(m.probe) for m in group)
        reads = [p for m in group for p in reads_of(m)]
        features.ensure_extracted(group[0].ctx, prompts, layers, group[0].probe.batch_size, n_retries, reads)


def read_training(m: Member, prompts: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a member's training matrix: pooled rows, or token rows with their offsets."""
    read = features.read_features(m.ctx, prompts, m.layers, m.train)
    return read.X, read.offsets


def fit_one(
    m: Member, X: np.ndarray, offsets: np.ndarray | None, y: np.ndarray, w: np.ndarray | None, idx: np.ndarray | None
) -> None:
    """Fit one member on rows ``idx`` of the shared matrix (all rows for None), as its own ``fit`` would."""
    if offsets is None:
        Xi = X if idx is None else X[idx]
        yi = y if idx is None else y[idx]
        wi = w if w is None or idx is None else w[idx]
    else:
        prompt_rows = np.arange(len(offsets) - 1) if idx is None else idx
        counts = np.diff(offsets)[prompt_rows]
        Xi = X if idx is None else X[token_rows(offsets, prompt_rows)]
        yi = np.repeat(y[prompt_rows], counts)
        wi = None if w is None else np.repeat(w[prompt_rows], counts)
    probe = m.probe
    probe.sweep_result_ = None
    for name in SELECTION:
        setattr(probe, name, None)
    probe.layers_ = list(m.layers)
    fit_matrix(probe, Xi, yi, wi, len(m.layers), m.template)
    probe.model_fingerprint_ = m.ctx.fingerprint


def plan_members(
    probes: list[Probe], voting: str, remote: bool | None, *, training: bool, prompts: Sequence[str] = ()
) -> list[Member]:
    """Return every member's plan: context, layers and poolings; refuse members on different models.

    A member whose reads of ``prompts`` are all cached gets its context without loading the model's weights.
    """
    members = []
    for i, probe in enumerate(probes):
        train, spec, template = check_params(probe)
        if training and voting == "soft" and not hasattr(template, "predict_proba"):
            raise UnsupportedMethodError(
                f"soft voting averages class probabilities, but probes[{i}]'s classifier "
                f"{type(template).__name__} does not support predict_proba; use voting='hard' or a classifier "
                "with probabilities"
            )

        def layers_of(n_layers: int, probe: Probe = probe) -> list[int]:
            if training:
                return list(layers_to_extract(probe, n_layers))
            return list(probe.layers_) if probe.layers_ else list(resolve_layers(probe.layers, n_layers))

        reads = features.reads(train, spec) if training else features.reads(spec)
        ctx = probe_context(probe, remote, cached_reads(prompts, layers_of, reads) if prompts else None)
        n_layers = ctx.loaded.n_layers
        if training:
            layers = layers_of(n_layers)
            fast = plain_layers(probe.layers)
        else:
            check_probe_model(probe, ctx)
            if not probe.layers_:
                probe.layers_ = resolve_layers(probe.layers, n_layers)
            layers, fast = list(probe.layers_), True
        members.append(Member(i, probe, ctx, layers, template, train, spec, fast))
    ident = model_identity(members[0].ctx.fingerprint)
    for m in members[1:]:
        if model_identity(m.ctx.fingerprint) != ident:
            first = members[0].ctx.fingerprint.get("model")
            raise InvalidInputError(
                f"ensemble members must probe the same model; probes[0] loads {first!r} but probes[{m.index}] "
                f"loads {m.ctx.fingerprint.get('model')!r}, a different model"
            )
    return members


def fit_members(
    members: list[Member],
    prompts: list[str],
    y: np.ndarray,
    w: np.ndarray | None,
    draws: list[np.ndarray | None],
    remote: bool | None,
) -> None:
    """Read each distinct training matrix once and fit its members on it (their rows), on a thread pool."""
    from tqdm.auto import tqdm

    reads: dict[tuple[Any, ...], list[Member]] = {}
    slow: list[Member] = []
    for m in members:
        if m.fast:
            reads.setdefault((id(m.ctx.loaded), tuple(m.layers), m.train), []).append(m)
        else:
            slow.append(m)

    def fit_slow(m: Member) -> None:  # sweeps and automatic selection: the probe's own fit, from the cache
        idx = draws[m.index]
        rows = np.arange(len(prompts)) if idx is None else idx
        m.probe.fit([prompts[j] for j in rows], y[rows], remote=remote, sample_weight=None if w is None else w[rows])

    workers = max(1, min(len(members), os.cpu_count() or 1))
    bar = tqdm(total=len(members), desc="fitting probes", unit="probe", dynamic_ncols=True)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for m in slow:
                fit_slow(m)
                bar.update(1)
            for group in reads.values():
                X, offsets = read_training(group[0], prompts)
                futures = [pool.submit(fit_one, m, X, offsets, y, w, draws[m.index]) for m in group]
                for future in as_completed(futures):
                    future.result()
                    bar.update(1)
                del X
    finally:
        bar.close()


def member_outputs(
    probes: list[Probe], voting: str, prompts: Any, remote: bool | None, kinds: tuple[str, ...]
) -> dict[str, list[np.ndarray]]:
    """Return every member's outputs on the prompts, reading each distinct feature matrix once.

    Kinds: ``"proba"`` (what the member's ``predict_proba`` returns), ``"prompt_proba"`` (one row per prompt; the
    mean over tokens for ``inference_pooling="all"``) and ``"labels"`` (the member's ``predict``).
    """
    prompts = check_prompts(prompts, "prompts", non_empty=True)
    members = plan_members(probes, voting, remote, training=False, prompts=prompts)
    warm(members, prompts, lambda m: features.reads(m.spec))
    cache: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray | None]] = {}
    out: dict[str, list[np.ndarray]] = {kind: [] for kind in kinds}
    for m in members:
        spec = m.spec
        pooling = spec.base if spec.stage == "activation" else "all"
        key = (id(m.ctx.loaded), tuple(m.layers), pooling)
        if key not in cache:
            read = features.read_features(m.ctx, prompts, m.layers, pooling)
            cache[key] = (read.X, read.offsets)
        X, offsets = cache[key]
        for kind in kinds:
            if kind == "proba":
                out[kind].append(predict_proba_rows(m.probe, spec, X, offsets))
            elif kind == "prompt_proba":
                per_prompt = proba_spec(spec)
                out[kind].append(predict_proba_rows(m.probe, per_prompt, X, offsets))
            else:
                out[kind].append(np.asarray(predict_rows(m.probe, spec, X, offsets)))
    return out
