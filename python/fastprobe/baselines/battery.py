"""``BaselineBattery``: every applicable baseline on one split, sharing one extraction and one read, ranked."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastprobe import features
from fastprobe._validation import check_labels, check_prompts
from fastprobe.baselines.activation import ActivationBaseline, fit_shared_activations
from fastprobe.baselines.common import (
    ACTIVATION_METHODS,
    BASELINES,
    DEFAULT_SENTENCE_MODEL,
    NEEDS_MODEL,
    BaselineNotFoundError,
    sentence_available,
    training_data,
)
from fastprobe.baselines.text import BaselineProbe, fit_shared_text
from fastprobe.exceptions import InvalidInputError, ModelLoadError, NotFittedError, UnknownOptionError
from fastprobe.extraction.perplexity import perplexity_features, perplexity_store
from fastprobe.features import ModelContext
from fastprobe.layers import LayerSpec, resolve_layers
from fastprobe.metrics import accuracy

__all__ = ["Baseline", "BaselineBattery", "BaselineResult", "BaselineResults"]


Baseline = BaselineProbe | ActivationBaseline


@dataclass
class BaselineResult:
    """One baseline's outcome in a battery.

    Attributes
    ----------
    name : str
        The baseline's name (one of :data:`BASELINES`).
    score : float
        Its score on the test prompts (accuracy unless the battery has a ``scorer``).
    baseline : BaselineProbe or ActivationBaseline
        The fitted baseline.
    fit_time : float
        Seconds to fit it, including its equal share of feature work it shares with other baselines of the
        battery (one extraction and one read for the activation baselines; one tokenization for bow and tfidf).
    predict_time : float
        Seconds to predict the test prompts from their features.
    """

    name: str
    score: float
    baseline: Baseline
    fit_time: float = 0.0
    predict_time: float = 0.0

    def __repr__(self) -> str:
        return f"BaselineResult(name={self.name!r}, score={self.score:.4f})"


@dataclass
class BaselineResults:
    """The results of :meth:`BaselineBattery.fit`, in the order the baselines ran.

    Iterate over it, take ``len``, index it by position or by name, rank it with :meth:`get_best`, print
    :meth:`summary`.

    Attributes
    ----------
    results : list of BaselineResult
    """

    results: list[BaselineResult] = field(default_factory=list)

    def get_best(self, n: int = 1) -> list[BaselineResult]:
        """Return the ``n`` highest-scoring baselines, best first (ties keep the running order).

        Parameters
        ----------
        n : int, default=1

        Returns
        -------
        list of BaselineResult

        Raises
        ------
        InvalidInputError
            If ``n`` is not a positive integer.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InvalidInputError(f"n must be an integer >= 1; got {n!r}")
        return sorted(self.results, key=lambda r: r.score, reverse=True)[: int(n)]

    def __iter__(self) -> Iterator[BaselineResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, key: str | int) -> BaselineResult:
        """Return a result by position or by baseline name.

        Raises
        ------
        BaselineNotFoundError
            If no result has that name (also a :class:`KeyError`).
        """
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            return self.results[int(key)]
        for r in self.results:
            if r.name == key:
                return r
        raise BaselineNotFoundError(
            f"no result for baseline {key!r}; these baselines ran: {', '.join(r.name for r in self.results) or 'none'}"
        )

    @property
    def names(self) -> list[str]:
        """The names of the baselines that ran, in running order."""
        return [r.name for r in self.results]

    def summary(self) -> str:
        """Format every result as a table, best first: name, score, fit and predict seconds.

        Returns
        -------
        str
        """
        width = max([len("baseline"), *(len(r.name) for r in self.results)])
        lines = [
            f"Baseline results ({len(self.results)}, best first)",
            f"{'baseline':<{width}}  {'score':>7}  {'fit (s)':>8}  {'predict (s)':>11}",
            f"{'-' * width}  {'-' * 7}  {'-' * 8}  {'-' * 11}",
        ]
        for r in self.get_best(len(self.results)) if self.results else []:
            lines.append(f"{r.name:<{width}}  {r.score:>7.4f}  {r.fit_time:>8.2f}  {r.predict_time:>11.2f}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


class BaselineBattery:
    """Run every applicable baseline on one task and compare them.

    Text baselines always run (``sentence_transformers`` only when its package and encoder are on this machine, or
    when named in ``include``); ``perplexity`` and the activation baselines need ``model``. A baseline that fails
    becomes a warning and is left out of the results, except when the model itself cannot be loaded: that is an
    error (a :class:`~fastprobe.exceptions.ModelLoadError` for a missing model), never a shorter table. The
    activation baselines share one extraction and one read of the cache; bag of words and TF-IDF share one
    tokenization; each feature set is computed once for the training and test prompts together.

    Parameters
    ----------
    model : str or path-like, optional
        The model for ``perplexity`` and the activation baselines.
    layers : int, list of int or str, default=-1
        Layers of the activation baselines (``layer_0`` always reads the embeddings).
    pooling : str, default="last_token"
        Pooling of the activation baselines (one of :data:`ACTIVATION_POOLINGS`).
    classifier : str or estimator, default="logistic_regression"
        The classifier of every baseline (except ``random`` and ``majority``).
    device : str, default="auto"
    remote : bool, default=False
        Run the model on NDIF through nnsight.
    random_state : int, optional
    include : list of str, optional
        Run only these baselines (names from :data:`BASELINES`).
    exclude : list of str, optional
        Do not run these.
    scorer : callable, optional
        ``scorer(y_true, y_pred) -> float``, higher is better; accuracy when None.
    revision : str, optional
        The Hub revision (branch, tag or commit) when ``model`` is a Hub id; None is the default branch.

    Attributes
    ----------
    results_ : BaselineResults or None
        The last :meth:`fit`'s results (None before).
    baselines_ : dict of str to BaselineProbe or ActivationBaseline
        The fitted baselines of the last :meth:`fit`.

    Examples
    --------
    >>> from fastprobe.baselines import BaselineBattery
    >>> battery = BaselineBattery(random_state=0)  # no model: the text baselines
    >>> results = battery.fit(["I saw Paris", "We like Paris"], ["I saw Tokyo", "We like Tokyo"])
    >>> results.names
    ['bow', 'tfidf', 'random', 'majority', 'sentence_length']
    >>> results["bow"].score
    1.0
    """

    def __init__(
        self,
        model: Any = None,
        layers: LayerSpec = -1,
        pooling: str = "last_token",
        classifier: Any = "logistic_regression",
        device: str = "auto",
        remote: bool = False,
        random_state: int | None = None,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        scorer: Callable[[np.ndarray, np.ndarray], float] | None = None,
        revision: str | None = None,
    ) -> None:
        self.model = model
        self.layers = layers
        self.pooling = pooling
        self.classifier = classifier
        self.device = device
        self.remote = remote
        self.random_state = random_state
        self.include = include
        self.exclude = exclude
        self.scorer = scorer
        self.revision = revision
        self.results_: BaselineResults | None = None
        self.baselines_: dict[str, Baseline] = {}

    def __repr__(self) -> str:
        return (
            f"BaselineBattery(model={self.model!r}, layers={self.layers!r}, pooling={self.pooling!r}, "
            f"classifier={self.classifier!r}, include={self.include!r}, exclude={self.exclude!r})"
        )

    # ------------------------------------------------------------------ which baselines

    def _names(self, what: str) -> list[str]:
        value = getattr(self, what)
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        names = list(value)
        for name in names:
            if name not in BASELINES:
                raise UnknownOptionError(
                    f"unknown baseline {name!r} in {what}; expected names from: {', '.join(BASELINES)}"
                )
        return names

    @property
    def available_baselines(self) -> list[str]:
        """Every baseline name a battery knows (:data:`BASELINES`)."""
        return list(BASELINES)

    @property
    def applicable_baselines(self) -> list[str]:
        """The baselines :meth:`fit` would run with this configuration, in running order.

        Raises
        ------
        UnknownOptionError
            If ``include`` or ``exclude`` names an unknown baseline.
        """
        include = self._names("include") if self.include is not None else None
        exclude = self._names("exclude")
        out = []
        for name in BASELINES:
            if name in NEEDS_MODEL and self.model is None:
                continue
            if include is not None and name not in include:
                continue
            if name in exclude:
                continue
            if name == "sentence_transformers" and include is None and not sentence_available(DEFAULT_SENTENCE_MODEL):
                continue
            out.append(name)
        return out

    def _require_some(self, names: list[str]) -> None:
        if names:
            return
        include = self._names("include") if self.include is not None else None
        exclude = self._names("exclude")
        reasons = []
        for name in include if include is not None else list(BASELINES):
            if name in exclude:
                reasons.append(f"{name} is excluded")
            elif name in NEEDS_MODEL and self.model is None:
                reasons.append(f"{name} needs model=...")
        detail = f" ({'; '.join(reasons)})" if reasons else ""
        raise InvalidInputError(
            f"no baseline applies to this battery (include={self.include!r}, exclude={self.exclude!r}, "
            f"model={self.model!r}){detail}; the text baselines (bow, tfidf, random, majority, sentence_length) "
            "need no model"
        )

    # ------------------------------------------------------------------ running

    def fit(
        self,
        positive_prompts: Sequence[str],
        negative_prompts: Any = None,
        test_prompts: Sequence[str] | None = None,
        test_labels: Any = None,
    ) -> BaselineResults:
        """Fit every applicable baseline and score it.

        Parameters
        ----------
        positive_prompts : sequence of str
            Positive training prompts, or every training prompt in the labels form.
        negative_prompts : sequence of str or array-like of labels
            Negative training prompts, or one label per training prompt.
        test_prompts : sequence of str, optional
            Prompts to score on; the training prompts when None.
        test_labels : array-like, optional
            Their labels (required with ``test_prompts``).

        Returns
        -------
        BaselineResults
            One result per baseline that ran, in running order.

        Raises
        ------
        InvalidInputError
            If no baseline applies, the training data is empty or has one class, or ``test_prompts`` come without
            labels.
        ShapeMismatchError
            If labels are not one per prompt.
        """
        from tqdm.auto import tqdm

        from fastprobe.store import evict

        names = self.applicable_baselines
        self._require_some(names)
        train, y = training_data(positive_prompts, negative_prompts)
        if test_prompts is None:
            if test_labels is not None:
                raise InvalidInputError("test_labels were given without test_prompts")
            test, y_test = train, y
        else:
            test = check_prompts(test_prompts, "prompts", non_empty=True)
            if test_labels is None:
                raise InvalidInputError("test_prompts need test_labels (one per test prompt)")
            y_test = check_labels(test, test_labels)
        scorer = self.scorer if self.scorer is not None else accuracy
        shared = SharedRun(self, names, train, test)
        results: list[BaselineResult] = []
        self.baselines_ = {}
        with tqdm(total=len(names), desc="baselines", unit="baseline", dynamic_ncols=True) as bar:
            for name in names:
                bar.set_postfix_str(name)
                try:
                    baseline, fit_time, pred, predict_time = shared.run(name, y)
                except Exception as err:
                    if isinstance(err, ModelLoadError):
                        raise  # a model that cannot be loaded is an error, never a shorter table
                    warnings.warn(
                        f"baseline {name!r} failed and is left out of the results: {type(err).__name__}: {err}",
                        UserWarning,
                        stacklevel=2,
                    )
                else:
                    score = float(scorer(y_test, pred))
                    self.baselines_[name] = baseline
                    results.append(BaselineResult(name, score, baseline, fit_time, predict_time))
                bar.update(1)
        self.results_ = BaselineResults(results)
        if shared.used_model:
            evict()
        return self.results_

    def _check_fitted(self) -> BaselineResults:
        if self.results_ is None:
            raise NotFittedError("this BaselineBattery is not fitted: it has not run yet; call fit first")
        return self.results_

    def get_best(self, n: int = 1) -> list[BaselineResult]:
        """Return the ``n`` highest-scoring baselines of the last :meth:`fit`, best first.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        """
        return self._check_fitted().get_best(n)

    def get_baseline(self, name: str) -> Baseline:
        """Return the fitted baseline of that name from the last :meth:`fit`.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        BaselineNotFoundError
            If the name is unknown or that baseline did not run (also a :class:`KeyError`).
        """
        self._check_fitted()
        if name not in BASELINES:
            raise BaselineNotFoundError(f"unknown baseline {name!r}; expected one of: {', '.join(BASELINES)}")
        if name not in self.baselines_:
            ran = ", ".join(self.baselines_) or "none"
            raise BaselineNotFoundError(f"baseline {name!r} did not run in this battery; these ran: {ran}")
        return self.baselines_[name]


class SharedRun:
    """One battery run: builds each baseline and computes features shared by several of them once, lazily."""

    def __init__(self, battery: BaselineBattery, names: list[str], train: list[str], test: list[str]) -> None:
        self.battery = battery
        self.names = names
        self.train = train
        self.test = test
        self.used_model = False
        self._ctx: ModelContext | None = None
        self._ctx_error: Exception | None = None
        self._acts_failed: Exception | None = None
        self._counts: tuple[Any, Any, Any, float] | None = None
        self._acts: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
        self._acts_time = 0.0
        self._sites: list[int | str] = []

    # -------------------------------------------------------------- shared features

    def ctx(self) -> ModelContext:
        if self._ctx_error is not None:  # the model's context failed once: every baseline that needs it fails alike
            raise self._ctx_error
        if self._ctx is None:
            b = self.battery
            backend = "nnsight" if b.remote else "local"
            try:
                self._ctx = features.ready_context(
                    b.model, b.device, backend, bool(b.remote), self._all_cached, b.revision
                )
            except Exception as err:
                self._ctx_error = err
                raise
            self.used_model = True
        return self._ctx

    def _layers(self, ctx: ModelContext) -> list[int]:
        methods = [n for n in self.names if n in ACTIVATION_METHODS]
        if any(m != "layer_0" for m in methods):
            return list(resolve_layers(self.battery.layers, ctx.loaded.n_layers))
        return []

    def _activation_sites(self, ctx: ModelContext) -> list[int | str]:
        """Return the sites the battery's activation baselines read, together: layers, then ``"embed"``."""
        embed: list[int | str] = ["embed"] if "layer_0" in self.names else []
        return [*self._layers(ctx), *embed]

    def _all_cached(self, ctx: ModelContext) -> bool:
        """Whether the cache holds every perplexity and activation this battery reads."""
        unique = self._everything()[0]
        if "perplexity" in self.names and not np.all(perplexity_store(ctx).contains(unique, [0])):
            return False
        sites = self._activation_sites(ctx)
        return not sites or features.is_extracted(ctx, unique, sites, self.battery.pooling)

    def _everything(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Distinct prompts of training and test, and the rows of each in it."""
        unique = list(dict.fromkeys(self.train + self.test))
        index = {p: i for i, p in enumerate(unique)}
        return unique, np.array([index[p] for p in self.train]), np.array([index[p] for p in self.test])

    def counts(self) -> tuple[Any, Any, Any, float]:
        """(fitted word counter, training counts, test counts, seconds per sharing baseline)."""
        if self._counts is None:
            from sklearn.feature_extraction.text import CountVectorizer

            t0 = time.perf_counter()
            vec = CountVectorizer(max_features=10000, ngram_range=(1, 1))
            train = vec.fit_transform(self.train)
            test = vec.transform(self.test)
            users = sum(n in ("bow", "tfidf") for n in self.names)
            self._counts = (vec, train, test, (time.perf_counter() - t0) / users)
        return self._counts

    def activations(self, method: str) -> tuple[np.ndarray, np.ndarray, float]:
        """(training, test) activations of an activation baseline, and its share of the one extraction and read."""
        if self._acts_failed is not None:  # the shared extraction failed: so does every baseline reading it
            raise self._acts_failed
        if self._acts is None:
            try:
                self._read_activations()
            except Exception as err:
                self._acts_failed = err
                raise
        assert self._acts is not None
        train, test = self._acts[method]
        return train, test, self._acts_time

    def _read_activations(self) -> None:
        """Extract what is missing and read every activation site of the battery's activation baselines, once."""
        b = self.battery
        t0 = time.perf_counter()
        methods = [n for n in self.names if n in ACTIVATION_METHODS]
        ctx = self.ctx()
        layers = self._layers(ctx)
        sites = self._activation_sites(ctx)
        unique, rows_train, rows_test = self._everything()
        X = features.pooled_features(ctx, unique, sites, b.pooling, 8)
        split = len(layers) * ctx.loaded.hidden_size
        self._acts = {}
        for m in methods:
            block = X[:, split:] if m == "layer_0" else X[:, :split]
            self._acts[m] = (block[rows_train], block[rows_test])
        self._sites = sites
        self._acts_time = (time.perf_counter() - t0) / len(methods)

    # -------------------------------------------------------------- one baseline

    def run(self, name: str, y: np.ndarray) -> tuple[Baseline, float, np.ndarray, float]:
        """Fit and predict one baseline: (fitted baseline, fit seconds, test predictions, predict seconds)."""
        if name in ACTIVATION_METHODS:
            return self._run_activation(name, y)
        return self._run_text(name, y)

    def _run_text(self, name: str, y: np.ndarray) -> tuple[Baseline, float, np.ndarray, float]:
        b = self.battery
        extra: dict[str, Any] = {}
        if name == "perplexity":
            extra = {"model": b.model, "device": b.device, "remote": b.remote, "revision": b.revision}
        baseline = BaselineProbe(method=name, classifier=b.classifier, random_state=b.random_state, **extra)
        return fit_shared_text(baseline, self.train, self.test, y, self.counts, self._perplexity)

    def _perplexity(self) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
        """Return the model's fingerprint and the training and test perplexity features, from the cache."""
        ctx = self.ctx()
        unique, rows_train, rows_test = self._everything()
        feats = perplexity_features(ctx, unique)
        return ctx.fingerprint, feats[rows_train], feats[rows_test]

    def _run_activation(self, name: str, y: np.ndarray) -> tuple[Baseline, float, np.ndarray, float]:
        b = self.battery
        baseline = ActivationBaseline(
            b.model,
            method=name,
            layers=b.layers,
            pooling=b.pooling,
            classifier=b.classifier,
            device=b.device,
            remote=b.remote,
            random_state=b.random_state,
            backend="nnsight" if b.remote else "local",
            revision=b.revision,
        )
        X_train, X_test, share = self.activations(name)
        layers: list[int | str] = ["embed"] if name == "layer_0" else [s for s in self._sites if s != "embed"]
        return fit_shared_activations(baseline, X_train, X_test, y, share, layers, self.ctx().fingerprint)
