"""``ProbeEnsemble``: several probes voting as one classifier (lmprobe's ``ProbeEnsemble``).

An ensemble is built from probes (:class:`ProbeEnsemble`), from one configuration dict per member
(:meth:`ProbeEnsemble.from_configs`), or from bootstrap copies of one probe (:meth:`ProbeEnsemble.bootstrap`). Every
member must probe the same model. :meth:`ProbeEnsemble.fit` runs the model once over the training prompts for the
union of the members' layers, reads each distinct feature matrix (layers and training pooling) from the cache once,
and fits the members from it on a thread pool (fastprobe's Rust solvers release the GIL): a bootstrap ensemble reads
one matrix and fits each member on a resample of its rows. Predictions likewise read each distinct matrix once.

Soft voting averages the members' class probabilities with the ensemble's weights; hard voting takes the weighted
majority of the members' predicted classes (ties to the lowest class; lmprobe's ``scipy.stats.mode`` ignores the
weights, which is the same rule for equal weights). :meth:`ProbeEnsemble.save` writes one safetensors file in
fastprobe's safe format, and :meth:`ProbeEnsemble.load` reads it (and lmprobe's ensemble pickles, with
``trust_pickle=True``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastprobe.exceptions import (
    FastprobeError,
    InvalidInputError,
    NotFittedError,
    ShapeMismatchError,
    UnknownOptionError,
    UnsupportedMethodError,
)
from fastprobe.layers import LAYER_SPECS, resolve_layers
from fastprobe.pooling import PoolingSpec
from fastprobe.probe import (
    _FITTED,
    Probe,
    _check_prompts,
    _Context,
    _extract,
    _hash,
    _identity,
    _proba_spec,
    _reads,
    classification_metrics,
)

__all__ = ["VOTING", "ProbeEnsemble"]

#: The voting rules: average the members' probabilities, or take the weighted majority of their predictions.
VOTING: tuple[str, ...] = ("soft", "hard")
#: Draws of a bootstrap resample before giving up on one that holds every class.
MAX_DRAWS = 100
_KIND = "ProbeEnsemble"
# Fitted attributes the ensemble's fast path leaves unset (automatic layer selection does not run there).
_SELECTION = ("selected_layers_", "candidate_layers_", "layer_importances_")


# ---------------------------------------------------------------------------------------------- checks


def _check_members(probes: Any) -> list[Probe]:
    if isinstance(probes, Probe) or not isinstance(probes, (list, tuple)):
        raise InvalidInputError(f"probes must be a list of Probe objects; got {type(probes).__name__}")
    if not probes:
        raise InvalidInputError("probes must be a non-empty list of Probe objects; got an empty list")
    seen: dict[int, int] = {}
    for i, probe in enumerate(probes):
        if not isinstance(probe, Probe):
            raise InvalidInputError(f"probes[{i}] must be a fastprobe Probe; got {type(probe).__name__}")
        if id(probe) in seen:
            raise InvalidInputError(
                f"probes[{seen[id(probe)]}] and probes[{i}] are the same Probe object; every member needs its own "
                "(sklearn.base.clone(probe) makes an unfitted copy)"
            )
        seen[id(probe)] = i
        if probe.task != "classification":
            raise InvalidInputError(
                f"an ensemble votes on classes, so its members must be classifiers; probes[{i}] has task={probe.task!r}"
            )
    _check_same_model(list(probes))
    return list(probes)


def _model_key(model: Any, revision: str | None = None) -> str | None:
    """Return a probe's ``model`` argument, a local path made absolute (so ``"m"`` and ``Path("m")`` agree).

    A Hub id's revision is part of it (``"org/name@v2"``): two revisions are two models.
    """
    if model is None:
        return None
    name = os.fspath(model) if isinstance(model, (str, os.PathLike)) else str(model)
    key = os.path.realpath(name) if os.path.exists(name) else name
    return key if revision is None else f"{key}@{revision}"


def _check_same_model(probes: list[Probe]) -> None:
    """Refuse members on different models: fitted ones by their models' identities, unfitted ones by ``model``."""
    prints: list[tuple[int, dict[str, Any]]] = []
    bare: list[int] = []
    for i, probe in enumerate(probes):
        fp = getattr(probe, "model_fingerprint_", None)
        if fp:
            prints.append((i, fp))
        else:
            bare.append(i)
    for i, fp in prints[1:]:
        i0, fp0 = prints[0]
        if _identity(fp) != _identity(fp0):
            raise InvalidInputError(
                f"ensemble members must probe the same model; probes[{i0}] was fitted on {fp0.get('model')!r} "
                f"({fp0.get('architecture')}, weights {fp0.get('weights')}) but probes[{i}] on {fp.get('model')!r} "
                f"({fp.get('architecture')}, weights {fp.get('weights')})"
            )
    if not bare:
        return
    if prints:  # a fitted member's own model argument, or the model it was fitted on
        i0, fp0 = prints[0]
        reference = [_model_key(probes[i0].model, getattr(probes[i0], "revision", None)), _model_key(fp0.get("model"))]
    else:
        i0 = bare[0]
        reference = [_model_key(probes[i0].model, getattr(probes[i0], "revision", None))]
    for i in bare:
        key = _model_key(probes[i].model, getattr(probes[i], "revision", None))
        if key not in reference:
            raise InvalidInputError(
                f"ensemble members must probe the same model; probes[{i0}] is on {reference[0]!r} but "
                f"probes[{i}] is on {key!r}"
            )


def _normalise_weights(weights: Any, n: int) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / n)
    if isinstance(weights, (str, bytes)):
        raise InvalidInputError(f"weights must be a list of numbers, one per probe; got {weights!r}")
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(f"weights must be a list of numbers, one per probe; got {weights!r}") from None
    if w.ndim != 1 or len(w) != n:
        raise ShapeMismatchError(
            f"weights length must match the number of probes: expected {n} numbers, got shape {w.shape}"
        )
    if not np.all(np.isfinite(w)):
        raise InvalidInputError(f"weights must be finite; got {w.tolist()}")
    if np.any(w < 0):
        raise InvalidInputError(f"weights must be >= 0; got {w.tolist()}")
    total = float(w.sum())
    if total <= 0:
        raise InvalidInputError(f"weights must sum to a positive number; got {w.tolist()}")
    return np.asarray(w / total)


def _check_voting(voting: Any) -> str:
    if not isinstance(voting, str) or voting not in VOTING:
        raise UnknownOptionError(f"Unknown voting strategy {voting!r}; expected one of: {', '.join(VOTING)}")
    return voting


def _check_random_state(random_state: Any) -> None:
    ok = (
        random_state is None
        or isinstance(random_state, np.random.Generator)
        or (isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool) and random_state >= 0)
    )
    if not ok:
        raise InvalidInputError(f"random_state must be None, an int >= 0 or a numpy Generator; got {random_state!r}")


# ---------------------------------------------------------------------------------------------- resampling


def _draw(rng: np.random.Generator, y: np.ndarray, groups: np.ndarray | None, w: np.ndarray | None) -> np.ndarray:
    """One bootstrap draw of row indices (see :meth:`ProbeEnsemble.bootstrap` for the procedure)."""
    n = len(y)
    if groups is None:
        return np.asarray(rng.choice(n, size=n, replace=True))
    names = np.unique(groups)
    per_group = math.ceil(n / len(names))
    parts = []
    for name in names:
        members = np.flatnonzero(groups == name)
        p = None
        if w is not None:
            p = w[members] / w[members].sum()
        parts.append(rng.choice(members, size=per_group, replace=True, p=p))
    return np.concatenate(parts)


def _resample(rng: np.random.Generator, y: np.ndarray, groups: np.ndarray | None, w: np.ndarray | None) -> np.ndarray:
    """Draw a bootstrap resample holding every class of ``y``, trying up to :data:`MAX_DRAWS` times."""
    n_classes = len(np.unique(y))
    for _ in range(MAX_DRAWS):
        idx = _draw(rng, y, groups, w)
        if len(np.unique(y[idx])) == n_classes:
            return idx
    how = " group-balanced" if groups is not None else ""
    raise InvalidInputError(
        f"no{how} bootstrap resample held every class ({np.unique(y).tolist()}) in {MAX_DRAWS} draws; "
        "give more prompts of the rarest class"
        + (" (or groups and sample_weight under which every class can be drawn)" if groups is not None else "")
    )


def _token_rows(offsets: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Return the per-token rows of prompts ``idx``, in that order, given each prompt's row offsets."""
    counts = np.diff(offsets)[idx]
    starts = offsets[:-1][idx]
    shift = np.repeat(starts - (np.cumsum(counts) - counts), counts)
    return np.asarray(np.arange(int(counts.sum())) + shift)


# ---------------------------------------------------------------------------------------------- plans


@dataclass
class _Member:
    """What one member reads: its context, its layers, and its (training or inference) pooling."""

    index: int
    probe: Probe
    ctx: _Context
    layers: list[int]
    template: Any = None
    train: str = "last_token"
    spec: PoolingSpec = field(default_factory=lambda: PoolingSpec("last_token", "activation"))
    fast: bool = True


def _extraction_layers(probe: Probe, n_layers: int) -> list[int]:
    """Return the layers a probe's fit reads (for automatic selection: its candidates)."""
    return probe._layers_to_extract(n_layers)


def _plain_layers(spec: Any) -> bool:
    """Whether a layer specification names fixed layers (not a sweep or an automatic selection)."""
    if isinstance(spec, str):
        return spec in LAYER_SPECS
    return True


def _warm(members: list[_Member], prompts: list[str], reads_of: Any) -> None:
    """One extraction pass per loaded model, over the union of its members' layers.

    ``reads_of(member)``: the poolings it reads (:func:`~fastprobe.probe._reads`): whether tokens are kept, and which
    stored records serve it (a pulled last-token-only record does not serve a mean, and is extracted again).
    """
    by_model: dict[int, list[_Member]] = {}
    for m in members:
        by_model.setdefault(id(m.ctx.loaded), []).append(m)
    for group in by_model.values():
        layers = sorted({layer for m in group for layer in m.layers})
        retries = max(m.probe._retries() for m in group)
        reads = [p for m in group for p in reads_of(m)]
        _extract(group[0].ctx, prompts, layers, group[0].probe.batch_size, retries, reads)


# ---------------------------------------------------------------------------------------------- the ensemble


class ProbeEnsemble:
    """Several probes of one model voting as one classifier, fitted from one extraction pass.

    Parameters
    ----------
    probes : list of Probe
        The members (classifiers on the same model; each a separate object). They may be fitted already, say the
        probes of a layer sweep: an ensemble whose members are all fitted predicts without :meth:`fit`.
    weights : list of float, optional
        One weight per member, >= 0 and not all zero; normalised to sum to 1 (None: equal weights).
    voting : {"soft", "hard"}, default="soft"
        ``"soft"``: the weighted mean of the members' class probabilities, and its argmax (every member needs
        ``predict_proba``). ``"hard"``: the weighted majority of the members' predicted classes, ties going to the
        lowest class.

    Attributes
    ----------
    probes_ : list of Probe
        The members.
    weights_ : numpy.ndarray of shape (n_probes,)
        The normalised weights.
    voting : str
    random_state : int, numpy.random.Generator or None
        The seed of the bootstrap draws (:meth:`bootstrap`; None otherwise).
    resample_indices_ : list of numpy.ndarray or None
        After a bootstrap :meth:`fit`: each member's training rows, as indices into the training prompts (positives
        then negatives, or the prompts of the labels form). None otherwise.
    evaluation_results_ : dict
        The last :meth:`evaluate`'s metrics.

    Raises
    ------
    InvalidInputError
        For an empty list, a member that is not a :class:`~fastprobe.Probe` (or appears twice, or is a regressor),
        members on different models, or weights that are negative, all zero or not finite.
    ShapeMismatchError
        If ``weights`` does not hold one number per probe.
    UnknownOptionError
        For a ``voting`` other than ``"soft"`` and ``"hard"``.

    Examples
    --------
    >>> from fastprobe import Probe
    >>> from fastprobe.ensemble import ProbeEnsemble
    >>> from fastprobe.testing import tiny_model
    >>> pos = ["I saw Paris", "We like Paris", "They know Paris", "You love Paris"]
    >>> neg = ["I saw Tokyo", "We like Tokyo", "They know Tokyo", "You love Tokyo"]
    >>> base = Probe(model=tiny_model("llama"), layers=-1, random_state=0)
    >>> ensemble = ProbeEnsemble.bootstrap(base, n_resamples=5, random_state=0).fit(pos, neg)
    >>> ensemble.predict(["People visited Paris", "People visited Tokyo"]).tolist()
    [1, 0]
    >>> ensemble.predict_proba(["People visited Paris"]).shape
    (1, 2)
    """

    probes_: list[Probe]
    weights_: np.ndarray
    voting: str
    random_state: Any
    resample_indices_: list[np.ndarray] | None
    evaluation_results_: dict[str, Any]

    def __init__(self, probes: list[Probe], weights: Sequence[float] | None = None, voting: str = "soft") -> None:
        self.probes_ = _check_members(probes)
        self.weights_ = _normalise_weights(weights, len(self.probes_))
        self.voting = _check_voting(voting)
        self.random_state = None
        self.resample_indices_ = None
        self._bootstrap = False

    def __len__(self) -> int:
        return len(self.probes_)

    def __repr__(self) -> str:
        kind = f"bootstrap, random_state={self.random_state!r}, " if self._bootstrap else ""
        return f"ProbeEnsemble({len(self.probes_)} probes, {kind}voting={self.voting!r})"

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_configs(
        cls,
        model: Any,
        configs: Sequence[dict[str, Any]],
        weights: Sequence[float] | None = None,
        voting: str = "soft",
        **shared_kwargs: Any,
    ) -> ProbeEnsemble:
        """Build one :class:`~fastprobe.Probe` per configuration dict, all on ``model``.

        Parameters
        ----------
        model : str or path-like
            The model every member probes.
        configs : list of dict
            Each member's own :class:`~fastprobe.Probe` options (``layers``, ``classifier``, ...); they override
            ``shared_kwargs``.
        weights : list of float, optional
        voting : {"soft", "hard"}, default="soft"
        **shared_kwargs
            :class:`~fastprobe.Probe` options for every member (``device``, ``pooling``, ``random_state``, ...).

        Returns
        -------
        ProbeEnsemble

        Raises
        ------
        InvalidInputError
            If ``configs`` is not a non-empty list of dicts, or a config sets ``model``.
        UnknownOptionError
            For an option :class:`~fastprobe.Probe` does not have.
        """
        if isinstance(configs, dict) or not isinstance(configs, (list, tuple)) or not configs:
            raise InvalidInputError(f"configs must be a non-empty list of dicts, one per probe; got {configs!r}")
        import inspect

        names = [n for n in inspect.signature(Probe.__init__).parameters if n != "self"]
        for where, options in [("shared options", shared_kwargs)] + [
            (f"configs[{i}]", cfg) for i, cfg in enumerate(configs)
        ]:
            if not isinstance(options, dict):
                raise InvalidInputError(f"{where} must be a dict of Probe options; got {type(options).__name__}")
            if "model" in options:
                raise InvalidInputError(f"{where} sets 'model'; every member probes the model given to from_configs")
            unknown = sorted(set(options) - set(names))
            if unknown:
                raise UnknownOptionError(
                    f"{where}: unknown Probe option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                    f"expected some of: {', '.join(n for n in names if n != 'model')}"
                )
        probes = [Probe(**{**shared_kwargs, **cfg, "model": model}) for cfg in configs]
        return cls(probes, weights=weights, voting=voting)

    @classmethod
    def bootstrap(
        cls,
        base_probe: Probe,
        n_resamples: int = 10,
        random_state: int | np.random.Generator | None = None,
        weights: Sequence[float] | None = None,
        voting: str = "soft",
    ) -> ProbeEnsemble:
        """Make ``n_resamples`` unfitted copies of a probe, each to be fitted on a bootstrap resample.

        :meth:`fit` reads the training matrix once and fits copy ``k`` on the rows of draw ``k``. The draws: ``rng =
        numpy.random.default_rng(random_state)``, then for each copy in order ``rng.choice(n, size=n, replace=True)``
        (``n`` training prompts), drawn again while some class is missing (at most :data:`MAX_DRAWS` times). With
        ``fit(..., groups=g)``, a draw takes ``ceil(n / G)`` prompts from each of the ``G`` groups instead, the
        groups in sorted order, each by ``rng.choice(rows_of_group, size=ceil(n / G), replace=True, p=p)`` where ``p``
        is the group's ``sample_weight`` normalised (None without weights), as lmprobe draws them. Sample weights
        also go, resampled, to each copy's classifier.

        Parameters
        ----------
        base_probe : Probe
            The configuration to copy (:func:`sklearn.base.clone`: its fitted state is not copied).
        n_resamples : int, default=10
            The number of members.
        random_state : int or numpy.random.Generator, optional
            Seed of the draws (None: fresh entropy on every fit).
        weights : list of float, optional
        voting : {"soft", "hard"}, default="soft"

        Returns
        -------
        ProbeEnsemble

        Raises
        ------
        InvalidInputError
            If ``base_probe`` is not a Probe, ``n_resamples`` is not an integer >= 1, or ``random_state`` is not a
            seed.
        """
        from sklearn.base import clone

        if not isinstance(base_probe, Probe):
            raise InvalidInputError(f"base_probe must be a fastprobe Probe; got {type(base_probe).__name__}")
        if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
            raise InvalidInputError(f"n_resamples must be an integer >= 1; got {n_resamples!r}")
        _check_random_state(random_state)
        ensemble = cls([clone(base_probe) for _ in range(int(n_resamples))], weights=weights, voting=voting)
        ensemble._bootstrap = True
        ensemble.random_state = random_state
        return ensemble

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        positive_prompts: Sequence[str],
        negative_prompts: Any = None,
        remote: bool | None = None,
        sample_weight: Any = None,
        groups: Any = None,
    ) -> ProbeEnsemble:
        """Fit every member, from one extraction pass over the union of their layers.

        Two forms, as :meth:`Probe.fit <fastprobe.Probe.fit>`: ``fit(positive_prompts, negative_prompts)`` (labels 1
        and 0) and ``fit(prompts, labels)`` (one number per prompt). Each distinct feature matrix (layers and
        training pooling) is read from the cache once; members fit in parallel threads. A bootstrap ensemble
        (:meth:`bootstrap`) fits each member on its resample's rows of the one matrix; every other ensemble fits
        every member on all the prompts.

        Parameters
        ----------
        positive_prompts : sequence of str
            Positive prompts, or every prompt in the labels form.
        negative_prompts : sequence of str or array-like of numbers
        remote : bool, optional
            Override the members' ``remote`` for this call.
        sample_weight : array-like of shape (n_prompts,), optional
            Reaches each member's classifier (resampled with the rows in a bootstrap ensemble).
        groups : array-like of shape (n_prompts,), optional
            Group labels: a bootstrap ensemble then draws ``ceil(n / G)`` prompts from each of the ``G`` groups
            (with ``sample_weight`` as the draw probabilities within a group, as lmprobe does). Ignored, with a
            warning, by other ensembles.

        Returns
        -------
        ProbeEnsemble
            ``self``, fitted.

        Raises
        ------
        InvalidInputError
            For no training data, a single class, soft voting with a classifier lacking ``predict_proba``, members
            that turn out to be on different models, or no resample holding every class.
        ShapeMismatchError
            If the labels, ``sample_weight`` or ``groups`` are not one per prompt.
        """
        import warnings

        from fastprobe.store import evict

        first = self.probes_[0]
        prompts, y, w = first._training_data(positive_prompts, negative_prompts, sample_weight)
        g = self._check_groups(groups, len(prompts), w)
        if g is not None and not self._bootstrap:
            warnings.warn(
                "the groups parameter is ignored: groups only shape the draws of a bootstrap ensemble "
                "(ProbeEnsemble.bootstrap), and this ensemble fits every member on all the prompts",
                UserWarning,
                stacklevel=2,
            )
        draws: list[np.ndarray | None] = [None] * len(self.probes_)
        if self._bootstrap:  # drawn first: a failed draw costs no extraction
            rng = np.random.default_rng(self.random_state)
            draws = [_resample(rng, y, g, w) for _ in self.probes_]
        members = self._plans(remote, training=True)
        _warm(members, prompts, lambda m: _reads(m.train, m.spec))
        self._fit_members(members, prompts, y, w, draws, remote)
        self.resample_indices_ = [d for d in draws if d is not None] if self._bootstrap else None
        evict()
        return self

    def _check_groups(self, groups: Any, n: int, w: np.ndarray | None) -> np.ndarray | None:
        if groups is None:
            return None
        if isinstance(groups, str):
            raise InvalidInputError(f"groups must hold one group label per training prompt; got the string {groups!r}")
        g = np.asarray(groups.detach().cpu().numpy() if hasattr(groups, "detach") else groups)
        if g.ndim != 1 or len(g) != n:
            raise ShapeMismatchError(
                f"groups length must match the training prompts: expected one group label per prompt ({n},), "
                f"got shape {g.shape}"
            )
        if self._bootstrap and w is not None:
            if np.any(w < 0) or not np.all(np.isfinite(w)):
                raise InvalidInputError(
                    "sample_weight must be finite and >= 0 with groups: the weights are the draw probabilities within "
                    "each group"
                )
            for name in np.unique(g):
                if w[g == name].sum() <= 0:
                    raise InvalidInputError(
                        f"sample_weight sums to 0 in group {name.item()!r}; with groups the weights are the draw "
                        "probabilities within each group"
                    )
        return g

    def _plans(self, remote: bool | None, *, training: bool) -> list[_Member]:
        """Every member's context, layers and poolings; refuses members on different models."""
        members = []
        for i, probe in enumerate(self.probes_):
            train, spec, template = probe._check_params()
            if training and self.voting == "soft" and not hasattr(template, "predict_proba"):
                raise UnsupportedMethodError(
                    f"soft voting averages class probabilities, but probes[{i}]'s classifier "
                    f"{type(template).__name__} does not support predict_proba; use voting='hard' or a classifier "
                    "with probabilities"
                )
            ctx = probe._ctx(remote)
            n_layers = ctx.loaded.n_layers
            if training:
                layers = _extraction_layers(probe, n_layers)
                fast = _plain_layers(probe.layers)
            else:
                probe._check_model(ctx)
                if not probe.layers_:
                    probe.layers_ = resolve_layers(probe.layers, n_layers)
                layers, fast = list(probe.layers_), True
            members.append(_Member(i, probe, ctx, layers, template, train, spec, fast))
        ident = _identity(members[0].ctx.fingerprint)
        for m in members[1:]:
            if _identity(m.ctx.fingerprint) != ident:
                first = members[0].ctx.fingerprint.get("model")
                raise InvalidInputError(
                    f"ensemble members must probe the same model; probes[0] loads {first!r} but probes[{m.index}] "
                    f"loads {m.ctx.fingerprint.get('model')!r}, a different model"
                )
        return members

    def _fit_members(
        self,
        members: list[_Member],
        prompts: list[str],
        y: np.ndarray,
        w: np.ndarray | None,
        draws: list[np.ndarray | None],
        remote: bool | None,
    ) -> None:
        """Read each distinct training matrix once and fit its members on it (their rows), on a thread pool."""
        from tqdm.auto import tqdm

        reads: dict[tuple[Any, ...], list[_Member]] = {}
        slow: list[_Member] = []
        for m in members:
            if m.fast:
                reads.setdefault((id(m.ctx.loaded), tuple(m.layers), m.train), []).append(m)
            else:
                slow.append(m)

        def fit_slow(m: _Member) -> None:  # sweeps and automatic selection: the probe's own fit, from the cache
            idx = draws[m.index]
            rows = np.arange(len(prompts)) if idx is None else idx
            m.probe.fit(
                [prompts[j] for j in rows], y[rows], remote=remote, sample_weight=None if w is None else w[rows]
            )

        workers = max(1, min(len(members), os.cpu_count() or 1))
        bar = tqdm(total=len(members), desc="fitting probes", unit="probe", dynamic_ncols=True)
        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for m in slow:
                    fit_slow(m)
                    bar.update(1)
                for group in reads.values():
                    X, offsets = _read_training(group[0], prompts)
                    futures = [pool.submit(_fit_one, m, X, offsets, y, w, draws[m.index]) for m in group]
                    for future in as_completed(futures):
                        future.result()
                        bar.update(1)
                    del X
        finally:
            bar.close()

    # ------------------------------------------------------------------ inference

    def _check_fitted(self) -> np.ndarray:
        """Refuse unfitted members and members that disagree on the classes; return the classes."""
        unfitted = [i for i, p in enumerate(self.probes_) if getattr(p, "classifier_", None) is None]
        if unfitted:
            which = "every member" if len(unfitted) == len(self.probes_) else f"probes {unfitted}"
            raise NotFittedError(
                f"this ProbeEnsemble has not been fitted yet ({which} unfitted); call fit before using it"
            )
        classes = np.asarray(self.probes_[0].classes_)
        for i, p in enumerate(self.probes_[1:], start=1):
            if not np.array_equal(np.asarray(p.classes_), classes):
                raise InvalidInputError(
                    f"ensemble members must share their classes; probes[0] has {classes.tolist()} but probes[{i}] has "
                    f"{np.asarray(p.classes_).tolist()}"
                )
        return classes

    def _require_proba(self, what: str) -> None:
        for i, p in enumerate(self.probes_):
            if not hasattr(p.classifier_, "predict_proba"):
                raise UnsupportedMethodError(
                    f"{what} needs every member's class probabilities, but probes[{i}]'s classifier "
                    f"{type(p.classifier_).__name__} does not support predict_proba; use predict with voting='hard'"
                )

    def _outputs(self, prompts: Any, remote: bool | None, kinds: tuple[str, ...]) -> dict[str, list[np.ndarray]]:
        """Every member's outputs on the prompts, reading each distinct feature matrix once.

        Kinds: ``"proba"`` (what the member's ``predict_proba`` returns), ``"prompt_proba"`` (one row per prompt; the
        mean over tokens for ``inference_pooling="all"``) and ``"labels"`` (the member's ``predict``).
        """
        prompts = _check_prompts(prompts, "prompts")
        if not prompts:
            raise InvalidInputError("prompts is empty; give at least one prompt")
        members = self._plans(remote, training=False)
        _warm(members, prompts, lambda m: _reads(m.spec))
        cache: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray | None]] = {}
        out: dict[str, list[np.ndarray]] = {kind: [] for kind in kinds}
        for m in members:
            spec = m.spec
            key = (id(m.ctx.loaded), tuple(m.layers), spec.base if spec.stage == "activation" else "tokens")
            if key not in cache:
                if spec.stage == "activation":
                    cache[key] = (m.ctx.store.read_pooled(prompts, m.layers, spec.base), None)
                else:
                    cache[key] = m.ctx.store.read_tokens(prompts, m.layers)
            X, offsets = cache[key]
            for kind in kinds:
                if kind == "proba":
                    out[kind].append(m.probe._proba(spec, X, offsets))
                elif kind == "prompt_proba":
                    per_prompt = _proba_spec(spec)
                    out[kind].append(m.probe._proba(per_prompt, X, offsets))
                else:
                    out[kind].append(np.asarray(m.probe._labels(spec, X, offsets)))
        return out

    def _mean(self, probas: list[np.ndarray]) -> np.ndarray:
        shapes = {p.shape for p in probas}
        if len(shapes) > 1:
            raise InvalidInputError(
                f"the members' probabilities have different shapes {sorted(shapes)}: per-token probabilities "
                "(inference_pooling='all') cannot be averaged with per-prompt ones"
            )
        return np.asarray(np.tensordot(self.weights_, np.stack(probas), axes=1))

    def _vote(self, labels: list[np.ndarray], classes: np.ndarray) -> np.ndarray:
        """Return the weighted majority of the members' labels; ties (within 1e-12) go to the lowest class."""
        votes = np.zeros((len(labels[0]), len(classes)))
        rows = np.arange(len(labels[0]))
        for i, (weight, pred) in enumerate(zip(self.weights_, labels, strict=True)):
            idx = np.searchsorted(classes, pred)
            bad = (idx >= len(classes)) | (classes[np.minimum(idx, len(classes) - 1)] != pred)
            if bad.any():
                raise InvalidInputError(
                    f"probes[{i}] predicted {pred[bad][0]!r}, which is not one of the classes {classes.tolist()}"
                )
            np.add.at(votes, (rows, idx), weight)
        top = np.isclose(votes, votes.max(axis=1, keepdims=True), rtol=0.0, atol=1e-12)
        return np.asarray(classes[np.argmax(top, axis=1)])

    def predict_proba(self, prompts: Sequence[str], remote: bool | None = None) -> np.ndarray:
        """Return the weighted mean of the members' class probabilities.

        Parameters
        ----------
        prompts : sequence of str
        remote : bool, optional
            Override the members' ``remote`` for this call.

        Returns
        -------
        numpy.ndarray
            ``(n_prompts, n_classes)``, columns in ``classes_`` order (``(n_prompts, max_tokens, n_classes)`` when
            the members' ``inference_pooling`` is ``"all"``).

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        InvalidInputError
            If a member's classifier has no ``predict_proba``.
        """
        self._check_fitted()
        self._require_proba("predict_proba")
        return self._mean(self._outputs(prompts, remote, ("proba",))["proba"])

    def predict(self, prompts: Sequence[str], remote: bool | None = None) -> np.ndarray:
        """Each prompt's class: the argmax of the weighted mean probability (soft), or the weighted majority (hard).

        Parameters
        ----------
        prompts : sequence of str
        remote : bool, optional
            Override the members' ``remote`` for this call.

        Returns
        -------
        numpy.ndarray of shape (n_prompts,)
            Labels from ``classes_``. Ties go to the lowest class. With ``inference_pooling="all"``, a member's
            probabilities for a prompt are the mean over its tokens.
        """
        classes = self._check_fitted()
        if self.voting == "soft":
            self._require_proba("soft voting")
            proba = self._mean(self._outputs(prompts, remote, ("prompt_proba",))["prompt_proba"])
            return np.asarray(classes[np.argmax(proba, axis=1)])
        return self._vote(self._outputs(prompts, remote, ("labels",))["labels"], classes)

    @property
    def classes_(self) -> np.ndarray:
        """The class labels the members share, sorted."""
        return self._check_fitted()

    def score(self, prompts: Sequence[str], labels: Any, remote: bool | None = None) -> float:
        """Accuracy of :meth:`predict` on labelled prompts.

        Parameters
        ----------
        prompts : sequence of str
        labels : array-like of shape (n_prompts,)
        remote : bool, optional

        Returns
        -------
        float
        """
        y = _labels(prompts, labels)
        return float(np.mean(self.predict(prompts, remote=remote) == y))

    def prediction_std(self, prompts: Sequence[str], remote: bool | None = None) -> np.ndarray:
        """How much the members disagree: the standard deviation over members of the positive-class probability.

        The positive class is ``classes_[1]``; the standard deviation is unweighted, over all members (``ddof=0``),
        as lmprobe computes it.

        Parameters
        ----------
        prompts : sequence of str
        remote : bool, optional

        Returns
        -------
        numpy.ndarray of shape (n_prompts,)
        """
        self._check_fitted()
        self._require_proba("prediction_std")
        probas = self._outputs(prompts, remote, ("prompt_proba",))["prompt_proba"]
        return np.asarray(np.std(np.stack([p[:, 1] for p in probas]), axis=0))

    def evaluate(self, prompts: Sequence[str], labels: Any, remote: bool | None = None) -> dict[str, Any]:
        """Metrics of the ensemble's predictions, from one read of the prompts' activations.

        ``accuracy``, ``f1``, ``precision``, ``recall`` (of ``classes_[1]`` for two classes, macro averages
        beyond), ``auroc`` (from :meth:`predict_proba`'s per-prompt probabilities, when every member has them and
        the labels hold two classes or more), ``n_eval`` and ``eval_hash`` (as :meth:`Probe.evaluate
        <fastprobe.Probe.evaluate>`).

        Parameters
        ----------
        prompts : sequence of str
        labels : array-like of shape (n_prompts,)
        remote : bool, optional

        Returns
        -------
        dict
        """
        classes = self._check_fitted()
        y = _labels(prompts, labels)
        has_proba = all(hasattr(p.classifier_, "predict_proba") for p in self.probes_)
        if self.voting == "soft":
            self._require_proba("soft voting")
        kinds: tuple[str, ...] = ("prompt_proba",) if has_proba else ()
        kinds += ("labels",) if self.voting == "hard" else ()
        out = self._outputs(prompts, remote, kinds)
        proba = self._mean(out["prompt_proba"]) if has_proba else None
        if self.voting == "soft" and proba is not None:
            pred = np.asarray(classes[np.argmax(proba, axis=1)])
        else:
            pred = self._vote(out["labels"], classes)
        results = classification_metrics(y, pred, proba, classes)
        results["n_eval"] = len(y)
        results["eval_hash"] = _hash(list(prompts), y)
        self.evaluation_results_ = results
        return results

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save the fitted ensemble to one file: arrays in safetensors, every member's configuration as JSON.

        Loading it runs no code, unless a member's classifier is a custom estimator class (stored as a pickle,
        needing ``trust_pickle=True`` in :meth:`load`), as for :meth:`Probe.save <fastprobe.Probe.save>`. The file
        is written to a temporary name and renamed, so an interrupted save leaves any earlier file intact.

        Parameters
        ----------
        path : str or path-like

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        """
        from fastprobe import _persist

        self._check_fitted()
        members = []
        for probe in self.probes_:
            fitted = {name: getattr(probe, name, None) for name in _FITTED}
            fitted["evaluation_results_"] = getattr(probe, "evaluation_results_", None)
            members.append({"params": probe.get_params(deep=False), "fitted": fitted})
        seed = self.random_state
        tree = {
            "kind": _KIND,
            "version": 1,
            "voting": self.voting,
            "weights": self.weights_,
            "bootstrap": self._bootstrap,
            "random_state": int(seed) if isinstance(seed, (int, np.integer)) else None,
            "resample_indices": self.resample_indices_,
            "evaluation_results": getattr(self, "evaluation_results_", None),
            "members": members,
        }
        doc, arrays, _ = _persist.encode(tree)
        _persist.write(path, doc, arrays)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        trust_pickle: bool = False,
        *,
        model: Any = None,
        revision: str | None = None,
    ) -> ProbeEnsemble:
        """Load an ensemble saved by :meth:`save`, or by lmprobe (a pickle: needs ``trust_pickle=True``).

        Parameters
        ----------
        path : str or path-like
        trust_pickle : bool, default=False
            Allow unpickling: lmprobe's files, and fastprobe files holding a custom estimator. Unpickling can run
            arbitrary code; only allow it for files from a trusted source.
        model : str or path-like, optional
            Use this model for every member instead of the saved one (say, the same model at a new path, or its Hub
            id).
        revision : str, optional
            The Hub revision of ``model`` (only with ``model``).

        Returns
        -------
        ProbeEnsemble

        Raises
        ------
        FastprobeError
            If the file is not an ensemble (a single probe's file names :meth:`Probe.load <fastprobe.Probe.load>`),
            or holds a pickle and ``trust_pickle`` is false.
        """
        from fastprobe import _persist

        kind, doc, arrays = _persist.read(path)
        if kind == "pickle":
            if not trust_pickle:
                raise _persist.PickleRefused(
                    f"{os.fspath(path)!r} is a pickle (lmprobe's save format), and unpickling can run arbitrary "
                    "code; pass trust_pickle=True to load it if you trust the file's source"
                )
            return cls._from_lmprobe(path, model, revision)
        if revision is not None and model is None:
            raise InvalidInputError("revision= goes with model=: pass the model it belongs to")
        tree = _persist.decode(doc, arrays, trust_pickle=trust_pickle)
        if not isinstance(tree, dict) or tree.get("kind") != _KIND:
            raise FastprobeError(
                f"{os.fspath(path)!r} holds a single probe, not a ProbeEnsemble; load it with Probe.load"
            )
        probes = []
        for entry in tree["members"]:
            params = dict(entry["params"])
            if model is not None:
                params["model"] = model
                params["revision"] = revision
            probe = Probe(**params)
            for name, value in entry["fitted"].items():
                setattr(probe, name, value)
            probe.sweep_result_ = None
            probes.append(probe)
        ensemble = cls(probes, voting=tree["voting"])
        ensemble.weights_ = np.asarray(tree["weights"], dtype=np.float64)
        ensemble._bootstrap = bool(tree["bootstrap"])
        ensemble.random_state = tree["random_state"]
        ensemble.resample_indices_ = tree["resample_indices"]
        if tree.get("evaluation_results") is not None:
            ensemble.evaluation_results_ = tree["evaluation_results"]
        return ensemble

    @classmethod
    def _from_lmprobe(cls, path: str | os.PathLike[str], model: Any, revision: str | None = None) -> ProbeEnsemble:
        """Convert lmprobe's ensemble pickle: each member through :meth:`Probe.load <fastprobe.Probe.load>`."""
        import pickle
        import tempfile

        with open(path, "rb") as f:
            state = pickle.load(f)
        if not isinstance(state, dict) or "probes_" not in state:
            raise FastprobeError(f"{os.fspath(path)!r} is a pickle but not an lmprobe ProbeEnsemble")
        probes = []
        with tempfile.TemporaryDirectory() as tmp:
            for i, member in enumerate(state["probes_"]):
                member_path = os.path.join(tmp, f"probe{i}.pkl")
                member.save(member_path)
                probes.append(Probe.load(member_path, trust_pickle=True, model=model, revision=revision))
        ensemble = cls(probes, voting=state.get("voting", "soft"))
        ensemble.weights_ = np.asarray(state["weights_"], dtype=np.float64)
        ensemble._bootstrap = bool(state.get("_bootstrap_mode", False))
        ensemble.random_state = state.get("_bootstrap_seed")
        return ensemble


# ---------------------------------------------------------------------------------------------- helpers


def _labels(prompts: Sequence[str], labels: Any) -> np.ndarray:
    y = np.asarray(labels.detach().cpu().numpy() if hasattr(labels, "detach") else labels)
    if isinstance(prompts, str) or y.ndim != 1 or len(y) != len(prompts):
        n = 1 if isinstance(prompts, str) else len(prompts)
        raise ShapeMismatchError(f"got {n} prompts but labels of shape {y.shape}; give one per prompt")
    return y


def _read_training(m: _Member, prompts: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a member's training matrix: pooled rows, or token rows with their offsets."""
    if m.train != "all":
        return m.ctx.store.read_pooled(prompts, m.layers, m.train), None
    values, offsets = m.ctx.store.read_tokens(prompts, m.layers)
    return values, np.asarray(offsets)


def _fit_one(
    m: _Member, X: np.ndarray, offsets: np.ndarray | None, y: np.ndarray, w: np.ndarray | None, idx: np.ndarray | None
) -> None:
    """Fit one member on rows ``idx`` of the shared matrix (all rows for None), as its own ``fit`` would."""
    if offsets is None:
        Xi = X if idx is None else X[idx]
        yi = y if idx is None else y[idx]
        wi = w if w is None or idx is None else w[idx]
    else:
        prompt_rows = np.arange(len(offsets) - 1) if idx is None else idx
        counts = np.diff(offsets)[prompt_rows]
        Xi = X if idx is None else X[_token_rows(offsets, prompt_rows)]
        yi = np.repeat(y[prompt_rows], counts)
        wi = None if w is None else np.repeat(w[prompt_rows], counts)
    probe = m.probe
    probe.sweep_result_ = None
    for name in _SELECTION:
        setattr(probe, name, None)
    probe.layers_ = list(m.layers)
    probe._fit_matrix(Xi, yi, wi, len(m.layers), m.template)
    probe.model_fingerprint_ = m.ctx.fingerprint
