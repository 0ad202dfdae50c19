"""``ProbeEnsemble``: several probes voting as one classifier (lmprobe's ``ProbeEnsemble``).

An ensemble is built from probes (:class:`ProbeEnsemble`), from one configuration dict per member
(:meth:`ProbeEnsemble.from_configs`), or from bootstrap copies of one probe (:meth:`ProbeEnsemble.bootstrap`). Every
member must probe the same model. :meth:`ProbeEnsemble.fit` runs the model once over the training prompts for the
union of the members' layers (the features API), reads each distinct feature matrix (layers and training pooling)
once, and fits the members from it on a thread pool through the probe's feature pipeline (fastprobe's Rust solvers
release the GIL): a bootstrap ensemble reads one matrix and fits each member on a resample of its rows. Predictions
likewise read each distinct matrix once.

Soft voting averages the members' class probabilities with the ensemble's weights; hard voting takes the weighted
majority of the members' predicted classes (ties to the lowest class; lmprobe's ``scipy.stats.mode`` ignores the
weights, which is the same rule for equal weights). :meth:`ProbeEnsemble.save` writes one safetensors file in
fastprobe's safe format, and :meth:`ProbeEnsemble.load` reads it (and lmprobe's ensemble pickles, with
``trust_pickle=True``).

The class holds lmprobe's documented API (its docstrings are most of its length); the work is in the sibling
modules: ``checks``, ``resampling`` and ``members``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from fastprobe import features, metrics
from fastprobe._validation import check_labels, check_training_data
from fastprobe.ensemble.checks import (
    VOTING,
    check_members,
    check_random_state,
    check_voting,
    normalise_weights,
)
from fastprobe.ensemble.members import fit_members, member_outputs, plan_members, warm
from fastprobe.ensemble.persistence import load_ensemble, save_ensemble
from fastprobe.ensemble.resampling import resample
from fastprobe.exceptions import (
    InvalidInputError,
    NotFittedError,
    ShapeMismatchError,
    UnknownOptionError,
    UnsupportedMethodError,
)
from fastprobe.metrics import eval_hash
from fastprobe.probe import Probe

__all__ = ["VOTING", "ProbeEnsemble"]


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
    is_bootstrap : bool
        Whether the members are bootstrap copies of one probe (:meth:`bootstrap`).

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
    #: Whether the members are bootstrap copies of one probe (:meth:`bootstrap`), each fitted on its own resample.
    is_bootstrap: bool

    def __init__(self, probes: list[Probe], weights: Sequence[float] | None = None, voting: str = "soft") -> None:
        self.probes_ = check_members(probes)
        self.weights_ = normalise_weights(weights, len(self.probes_))
        self.voting = check_voting(voting)
        self.random_state = None
        self.resample_indices_ = None
        self.is_bootstrap = False

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_bootstrap" in state:  # pickled before fastprobe's reorganisation: the flag's earlier name
            state["is_bootstrap"] = state.pop("_bootstrap")
        self.__dict__.update(state)

    def __len__(self) -> int:
        return len(self.probes_)

    def __repr__(self) -> str:
        kind = f"bootstrap, random_state={self.random_state!r}, " if self.is_bootstrap else ""
        return f"ProbeEnsemble({len(self.probes_)} probes, {kind}voting={self.voting!r})"

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
        check_random_state(random_state)
        ensemble = cls([clone(base_probe) for _ in range(int(n_resamples))], weights=weights, voting=voting)
        ensemble.is_bootstrap = True
        ensemble.random_state = random_state
        return ensemble

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
        prompts, y, w = check_training_data(
            positive_prompts, negative_prompts, sample_weight, classification=first.task == "classification"
        )
        g = self._check_groups(groups, len(prompts), w)
        if g is not None and not self.is_bootstrap:
            warnings.warn(
                "the groups parameter is ignored: groups only shape the draws of a bootstrap ensemble "
                "(ProbeEnsemble.bootstrap), and this ensemble fits every member on all the prompts",
                UserWarning,
                stacklevel=2,
            )
        draws: list[np.ndarray | None] = [None] * len(self.probes_)
        if self.is_bootstrap:  # drawn first: a failed draw costs no extraction
            rng = np.random.default_rng(self.random_state)
            draws = [resample(rng, y, g, w) for _ in self.probes_]
        members = plan_members(self.probes_, self.voting, remote, training=True, prompts=prompts)
        warm(members, prompts, lambda m: features.reads(m.train, m.spec))
        fit_members(members, prompts, y, w, draws, remote)
        self.resample_indices_ = [d for d in draws if d is not None] if self.is_bootstrap else None
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
        if self.is_bootstrap and w is not None:
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
        return member_outputs(self.probes_, self.voting, prompts, remote, kinds)

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
        y = check_labels(prompts, labels)
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
        y = check_labels(prompts, labels)
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
        results = metrics.classification_metrics(y, pred, proba, classes)
        results["n_eval"] = len(y)
        results["eval_hash"] = eval_hash(list(prompts), y)
        self.evaluation_results_ = results
        return results

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
        self._check_fitted()
        save_ensemble(self, path)

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
        ensemble: ProbeEnsemble = load_ensemble(cls, path, trust_pickle, model, revision)
        return ensemble
