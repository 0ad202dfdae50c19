"""The classifiers a :class:`~fastprobe.Probe` accepts by name, and lmprobe's classifier classes and helpers.

Each name in :data:`CLASSIFIERS` means what it means in lmprobe (same defaults, ``classifier_kwargs`` override
them). Where a Rust solver computes the same model, the name builds a fastprobe estimator; options that solver does
not have (say ``penalty="l1"``) fall back to the scikit-learn estimator lmprobe would build, so every option keeps
working. :func:`build_classifier` says which one a configuration gets.

lmprobe's names live here too, with lmprobe's signatures: :func:`resolve_classifier`, :func:`validate_classifier`,
:func:`cuml_available`, and the classes :class:`MassMeanClassifier`, :class:`EnsembleClassifier` and
:class:`GroupLassoClassifier`, each fitted by fastprobe's Rust solvers.
"""

from __future__ import annotations

import functools
import numbers
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from fastprobe.estimators import (
    GroupLassoProbe,
    LogisticProbe,
    MassMeanProbe,
    RidgeClassifierProbe,
    RidgeProbe,
    _binary_proba,
    _encode_classes,
    _float32,
    _Plan,
    _warn_not_converged,
    _weights,
)
from fastprobe.exceptions import (
    InvalidEstimatorError,
    InvalidInputError,
    NotFittedError,
    ShapeMismatchError,
    UnknownOptionError,
)

__all__ = [
    "BUILTIN_CLASSIFIERS",
    "CLASSIFICATION_CLASSIFIERS",
    "CLASSIFIERS",
    "REGRESSION_CLASSIFIERS",
    "EnsembleClassifier",
    "GroupLassoClassifier",
    "LogisticEnsemble",
    "MassMeanClassifier",
    "SGDTorchClassifier",
    "build_classifier",
    "cuml_available",
    "resolve_classifier",
    "validate_classifier",
]

#: Every classifier name a probe accepts.
CLASSIFIERS: tuple[str, ...] = (
    "logistic_regression",
    "logistic_regression_cv",
    "ridge",
    "ridge_regression",
    "svm",
    "sgd",
    "sgd_gpu",
    "mass_mean",
    "lda",
    "ensemble",
)
#: lmprobe's sets of the same names: all of them, those for classification, those for regression.
BUILTIN_CLASSIFIERS: frozenset[str] = frozenset(CLASSIFIERS)
CLASSIFICATION_CLASSIFIERS: frozenset[str] = BUILTIN_CLASSIFIERS - {"ridge_regression"}
REGRESSION_CLASSIFIERS: frozenset[str] = frozenset({"ridge_regression"})
_REGRESSORS = ("logistic_regression", "ridge_regression")
_ENSEMBLE_CS = (0.01, 0.1, 0.5, 1.0, 5.0)
_COMPUTE_BACKENDS = ("sklearn", "auto")  # as Probe's compute_backend: fastprobe's solvers serve both; no cuML path


class SGDTorchClassifier(ClassifierMixin, BaseEstimator):
    """Binary logistic regression trained by minibatch SGD in torch, on a GPU when there is one (``"sgd_gpu"``).

    For training sets too large for a full-batch solver. The parameters are lmprobe's.

    Parameters
    ----------
    lr : float, default=0.01
    epochs : int, default=100
    batch_size : int, default=256
    weight_decay : float, default=1e-4
        L2 penalty (the optimizer's weight decay).
    device : str, default="auto"
    scheduler : {None, "cosine", "reduce_on_plateau"}, default=None
    verbose : bool, default=False
        Show a progress bar over epochs with the loss.
    early_stopping : int, optional
        Stop after this many epochs without a lower training loss, keeping the best weights.
    random_state : int, optional

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    coef_ : ndarray of shape (1, n_features)
    intercept_ : ndarray of shape (1,)
    train_loss_ : list of float
        Mean training loss of each epoch.
    n_features_in_ : int
    """

    def __init__(
        self,
        lr: float = 0.01,
        epochs: int = 100,
        batch_size: int = 256,
        weight_decay: float = 1e-4,
        device: str = "auto",
        scheduler: str | None = None,
        verbose: bool = False,
        early_stopping: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.device = device
        self.scheduler = scheduler
        self.verbose = verbose
        self.early_stopping = early_stopping
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> SGDTorchClassifier:
        """Train for ``epochs`` passes over shuffled minibatches.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Exactly two classes.
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self : SGDTorchClassifier
        """
        import torch
        from tqdm.auto import tqdm

        from fastprobe.extraction import resolve_device

        X, y = validate_data(self, X, y, dtype=np.float32)
        idx = _encode_classes(self, y)
        if len(self.classes_) != 2:
            raise InvalidInputError(f"SGDTorchClassifier is binary; y has {len(self.classes_)} classes")
        if self.scheduler not in (None, "cosine", "reduce_on_plateau"):
            raise UnknownOptionError(
                f"Unknown scheduler {self.scheduler!r}; expected one of: None, 'cosine', 'reduce_on_plateau'"
            )
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or value < 1:
                raise InvalidInputError(f"{name} must be an integer >= 1; got {value!r}")
        device = torch.device(resolve_device(self.device))
        gen = torch.Generator().manual_seed(0 if self.random_state is None else int(self.random_state))
        n, d = X.shape
        Xt = torch.from_numpy(np.ascontiguousarray(X)).to(device)
        yt = torch.from_numpy(idx.astype(np.float32)).to(device)
        wt = (
            None
            if sample_weight is None
            else torch.from_numpy(np.asarray(_weights(sample_weight, X), dtype=np.float32)).to(device)
        )
        layer = torch.nn.Linear(d, 1).to(device)
        with torch.no_grad():
            bound = 1.0 / np.sqrt(d)
            layer.weight.copy_((torch.rand((1, d), generator=gen) * 2 - 1) * bound)
            layer.bias.copy_((torch.rand((1,), generator=gen) * 2 - 1) * bound)
        opt = torch.optim.SGD(layer.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched: Any = None
        if self.scheduler == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.epochs)
        elif self.scheduler == "reduce_on_plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", patience=5, factor=0.5)
        loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
        self.train_loss_: list[float] = []
        best, best_state, stale = float("inf"), None, 0
        bar = tqdm(range(self.epochs), desc="sgd epochs", disable=not self.verbose, dynamic_ncols=True)
        for _ in bar:
            perm = torch.randperm(n, generator=gen).to(device)
            total = 0.0
            for start in range(0, n, self.batch_size):
                rows = perm[start : start + self.batch_size]
                loss = loss_fn(layer(Xt[rows]).squeeze(-1), yt[rows])
                if wt is not None:
                    loss = loss * wt[rows]
                loss = loss.mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(rows)
            epoch_loss = total / n
            self.train_loss_.append(epoch_loss)
            bar.set_postfix(loss=f"{epoch_loss:.4g}")
            if sched is not None:
                sched.step(epoch_loss) if self.scheduler == "reduce_on_plateau" else sched.step()
            if self.early_stopping is not None:
                if epoch_loss < best:
                    best, stale = epoch_loss, 0
                    best_state = {k: v.detach().clone() for k, v in layer.state_dict().items()}
                else:
                    stale += 1
                    if stale >= self.early_stopping:
                        break
        if best_state is not None:
            layer.load_state_dict(best_state)
        self.coef_ = layer.weight.detach().cpu().double().numpy()
        self.intercept_ = layer.bias.detach().cpu().double().numpy()
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits of ``classes_[1]``, shape (n,)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        return np.asarray(X, dtype=np.float64) @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Sigmoid of the logits, shape (n, 2)."""
        p1 = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X: Any) -> np.ndarray:
        """Predict class labels."""
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]


def _not_fitted(est: Any, attribute: str) -> None:
    """Raise :class:`NotFittedError` (a RuntimeError, as lmprobe's) when ``est`` lacks the fitted ``attribute``."""
    if getattr(est, attribute, None) is None:
        raise NotFittedError(f"{type(est).__name__} has not been fitted; call fit(X, y) first")


class MassMeanClassifier(MassMeanProbe):
    """lmprobe's mass-mean probe (``"mass_mean"``): the unit direction from one class mean to the other.

    :class:`~fastprobe.estimators.MassMeanProbe` without whitening, with lmprobe's interface: no parameters,
    ``coef_`` of shape (n_features,) and a float ``intercept_``, the class means stored, and a
    :class:`~fastprobe.exceptions.NotFittedError` (a RuntimeError) before ``fit``. The threshold sits at the midpoint
    of the class means; ``predict_proba`` is Platt-scaled (a slope fitted on the training scores, so probability 1/2
    sits at the threshold). Unlike lmprobe's, ``fit`` accepts ``sample_weight`` and takes the two classes from the
    labels (lmprobe fixes them to 0 and 1).

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    coef_ : ndarray of shape (n_features,)
        The unit direction from ``mean_negative_`` to ``mean_positive_``.
    intercept_ : float
        Minus the projection of the midpoint of the class means.
    mean_positive_ : ndarray of shape (n_features,)
        The (weighted) mean of the samples of ``classes_[1]``. Set by ``fit``; a layer sweep fitted in Rust
        (:func:`fastprobe.sweep.fit_layers`), which never holds a layer in Python, leaves it unset.
    mean_negative_ : ndarray of shape (n_features,)
        The mean of the samples of ``classes_[0]``; set as ``mean_positive_``.
    platt_slope_ : float
        ``P(classes_[1]) = sigmoid(platt_slope_ * decision_function(X))``.
    n_features_in_ : int

    References
    ----------
    Marks and Tegmark, "The Geometry of Truth" (2023).
    """

    whiten = False
    shrinkage = 0.0
    n_threads = None

    def __init__(self) -> None:
        pass

    def set_params(self, **params: Any) -> MassMeanClassifier:
        """Accept and ignore any parameter: this classifier has none (lmprobe's contract).

        Returns
        -------
        self : MassMeanClassifier
        """
        return self

    def _plan(self, y: Any) -> _Plan:
        present = np.unique(np.asarray(y))
        if len(present) < 2:
            raise InvalidInputError(
                f"Both classes must have at least one sample; y has only {present.tolist()} ({len(y)} samples)"
            )
        plan = super()._plan(y)
        finish = plan.finish

        def flat(est: Any, raw: Any) -> None:
            finish(est, raw)
            est.coef_ = est.coef_[0]
            est.intercept_ = float(est.intercept_[0])

        plan.finish = flat
        return plan

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MassMeanClassifier:
        """Fit on labels of exactly two classes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self : MassMeanClassifier

        Raises
        ------
        InvalidInputError
            If a class has no sample ("Both classes must have at least one sample").
        """
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        super().fit(X, y, sample_weight=sample_weight)
        side = np.searchsorted(self.classes_, y)
        given = _weights(sample_weight, X)
        w = np.ones(len(y)) if given is None else given
        X64 = np.asarray(X, dtype=np.float64)
        self.mean_negative_ = np.average(X64[side == 0], axis=0, weights=w[side == 0])
        self.mean_positive_ = np.average(X64[side == 1], axis=0, weights=w[side == 1])
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """``X @ coef_ + intercept_``, shape (n,) (positive: ``classes_[1]``)."""
        _not_fitted(self, "coef_")
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        return np.asarray(X, dtype=np.float64) @ self.coef_ + self.intercept_

    def predict_proba(self, X: Any) -> np.ndarray:
        """Platt-scaled probabilities, shape (n, 2)."""
        return _binary_proba(self.platt_slope_ * self.decision_function(X))


class EnsembleClassifier(ClassifierMixin, BaseEstimator):
    """lmprobe's ensemble (``"ensemble"``): logistic regressions over several C, class probabilities averaged.

    With the default ``solver="lbfgs"`` and only options fastprobe's solver has (``tol``, ``fit_intercept``,
    ``n_threads``), the members are fitted in Rust along one warm-started regularization path (smallest C first) and
    are :class:`~fastprobe.estimators.LogisticProbe` objects; any other solver or option fits one scikit-learn
    ``LogisticRegression`` per C with it. Unlike lmprobe's, extra options survive ``get_params`` and ``clone``, and
    ``fit`` accepts ``sample_weight``.

    Parameters
    ----------
    C_values : list of float, optional
        Inverse regularization strengths; None means ``[0.01, 0.1, 0.5, 1.0, 5.0]``.
    solver : str, default="lbfgs"
    max_iter : int, default=1000
    random_state : int, optional
        Passed to scikit-learn's solvers (fastprobe's is deterministic).
    **kwargs
        More options of ``LogisticRegression`` (say ``tol``, ``penalty``, ``class_weight``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    estimators_ : list of estimators
        One fitted logistic regression per C, in the order of ``C_values``.
    coef_ : ndarray of shape (n_rows, n_features)
        The members' mean coefficients (one row for two classes).
    intercept_ : ndarray of shape (n_rows,)
    n_features_in_ : int
    """

    _RUST_OPTIONS: Mapping[str, Any] = {
        "tol": None,
        "fit_intercept": None,
        "n_threads": None,
        "penalty": ("l2",),
        "n_jobs": None,
        "verbose": (0, False),
    }

    def __init__(
        self,
        C_values: list[float] | None = None,
        solver: str = "lbfgs",
        max_iter: int = 1000,
        random_state: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.C_values = list(_ENSEMBLE_CS) if C_values is None else C_values
        self.solver = solver
        self.max_iter = max_iter
        self.random_state = random_state
        self._options = kwargs

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the parameters, with any extra option given to the constructor or :meth:`set_params`.

        Parameters
        ----------
        deep : bool, default=True
            Unused (no nested estimators).

        Returns
        -------
        dict
        """
        params = {
            "C_values": self.C_values,
            "solver": self.solver,
            "max_iter": self.max_iter,
            "random_state": self.random_state,
        }
        return params | dict(self._options)

    def set_params(self, **params: Any) -> EnsembleClassifier:
        """Set parameters; a name that is not a constructor parameter becomes an extra option.

        Returns
        -------
        self : EnsembleClassifier
        """
        for key, value in params.items():
            if key in ("C_values", "solver", "max_iter", "random_state"):
                setattr(self, key, value)
            else:
                self._options = {**self._options, key: value}
        return self

    def _rust(self) -> bool:
        return self.solver == "lbfgs" and _only(self._options, self._RUST_OPTIONS)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> EnsembleClassifier:
        """Fit one logistic regression per C.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self : EnsembleClassifier
        """
        from sklearn.linear_model import LogisticRegression

        from fastprobe import _core

        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        cs = list(self.C_values)
        if not cs:
            raise InvalidInputError(f"C_values must be a non-empty list of numbers > 0; got {self.C_values!r}")
        if not self._rust():
            options = {k: v for k, v in self._options.items() if k != "n_threads"}
            members: list[Any] = [
                LogisticRegression(
                    C=c, solver=self.solver, max_iter=self.max_iter, random_state=self.random_state, **options
                ).fit(X, y, sample_weight=sample_weight)
                for c in cs
            ]
            self.classes_ = members[0].classes_
        else:
            for c in cs:
                _positive(c, "C_values")
            idx = _encode_classes(self, y)
            X32 = _float32(X)
            order = np.argsort(cs)
            opts = {
                "fit_intercept": bool(self._options.get("fit_intercept", True)),
                "tol": self._options.get("tol", 1e-4),
            }
            fits = _core.logistic_path(
                X32,
                idx,
                len(self.classes_),
                _weights(sample_weight, X32),
                [float(cs[i]) for i in order],
                opts["fit_intercept"],
                int(self.max_iter),
                float(opts["tol"]),
                self._options.get("n_threads"),
            )
            members = [None] * len(cs)
            for i, (coef, intercept, n_iter, converged) in zip(order, fits, strict=True):
                member = LogisticProbe(
                    C=cs[i], max_iter=self.max_iter, n_threads=self._options.get("n_threads"), **opts
                )
                member.classes_, member.coef_, member.intercept_ = self.classes_, coef, intercept
                member.n_iter_ = np.array([max(int(n_iter), 1)])
                member.n_features_in_ = self.n_features_in_
                if hasattr(self, "feature_names_in_"):
                    member.feature_names_in_ = self.feature_names_in_
                if not converged:
                    _warn_not_converged(member, stacklevel=2)
                members[i] = member
        self.estimators_ = members
        self.coef_ = np.mean([m.coef_ for m in members], axis=0)
        self.intercept_ = np.mean([m.intercept_ for m in members], axis=0)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return the mean of the members' class probabilities, columns in ``classes_`` order."""
        _not_fitted(self, "estimators_")
        return np.mean([m.predict_proba(X) for m in self.estimators_], axis=0)

    def predict(self, X: Any) -> np.ndarray:
        """Predict the class with the highest mean probability."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


#: The name an earlier release gave the ``"ensemble"`` classifier; the same class.
LogisticEnsemble = EnsembleClassifier


class GroupLassoClassifier(ClassifierMixin, BaseEstimator):
    """lmprobe's group-lasso classifier for layer selection, solved by fastprobe's Rust solver (no skglm needed).

    Binary logistic regression whose penalty, ``alpha`` times the sum of the L2 norms of the ``n_layers`` blocks of
    ``hidden_dim`` coefficients, sets whole layers to exactly zero: the blocks left are the layers selected. The
    model is :class:`~fastprobe.estimators.GroupLassoProbe` with one group per layer and an unpenalized intercept.

    Parameters
    ----------
    hidden_dim : int
        Features per layer.
    n_layers : int
        Layers side by side in the features.
    alpha : float, default=0.01
        Penalty strength; larger keeps fewer layers.
    random_state : int, optional
        Accepted for lmprobe's signature; the solver is deterministic.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    coef_ : ndarray of shape (hidden_dim * n_layers,)
    intercept_ : ndarray of shape (1,)
    group_norms_ : ndarray of shape (n_layers,)
        The L2 norm of each layer's coefficients; exactly 0 for a layer the penalty removed.
    selected_groups_ : list of int
        The layers (block indices) with a non-zero norm.
    n_iter_ : ndarray of shape (1,)
    n_features_in_ : int
    """

    def __init__(self, hidden_dim: int, n_layers: int, alpha: float = 0.01, random_state: int | None = None) -> None:
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.alpha = alpha
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> GroupLassoClassifier:
        """Fit on binary labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, hidden_dim * n_layers)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self : GroupLassoClassifier

        Raises
        ------
        ShapeMismatchError
            If ``X`` does not have ``hidden_dim * n_layers`` features.
        """
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        expected = int(self.hidden_dim) * int(self.n_layers)
        if X.shape[1] != expected:
            raise ShapeMismatchError(
                f"X has {X.shape[1]} features, expected {expected} "
                f"(hidden_dim={self.hidden_dim} x n_layers={self.n_layers})"
            )
        probe = GroupLassoProbe(alpha=self.alpha, n_groups=int(self.n_layers)).fit(X, y, sample_weight=sample_weight)
        self.classes_ = probe.classes_
        self.coef_ = probe.coef_[0]
        self.intercept_ = probe.intercept_
        self.group_norms_ = probe.group_norms_
        self.selected_groups_ = probe.selected_groups_
        self.n_iter_ = probe.n_iter_
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """``X @ coef_ + intercept_``, shape (n,) (positive: ``classes_[1]``)."""
        _not_fitted(self, "coef_")
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        return np.asarray(X, dtype=np.float64) @ self.coef_ + self.intercept_[0]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Sigmoid of the decision values, shape (n, 2)."""
        return _binary_proba(self.decision_function(X))

    def predict(self, X: Any) -> np.ndarray:
        """Predict class labels."""
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]


@functools.lru_cache(maxsize=1)
def cuml_available() -> bool:
    """Whether cuML is installed and imports (the answer is cached; ``cuml_available.cache_clear()`` resets it).

    fastprobe has no cuML path (its Rust solvers replace it); this answers the question lmprobe's function answers.

    Returns
    -------
    bool
    """
    try:
        import cuml  # noqa: F401
    except ImportError:
        return False
    return True


def _check_interface(clf: Any, *, proba: bool, stacklevel: int) -> None:
    names = ", ".join(CLASSIFIERS)
    for method in ("fit", "predict"):
        if not hasattr(clf, method):
            raise InvalidEstimatorError(
                f"Classifier {type(clf).__name__} must have a {method}() method; expected a classifier name "
                f"({names}) or an estimator with fit and predict"
            )
    if proba and not hasattr(clf, "predict_proba"):
        warnings.warn(
            f"{type(clf).__name__} does not support predict_proba(): probe.predict_proba(), AUROC and score "
            "pooling will raise",
            UserWarning,
            stacklevel=stacklevel + 1,
        )


def validate_classifier(clf: Any) -> None:
    """Check that an object can serve as a probe's classifier.

    Parameters
    ----------
    clf : estimator
        Needs ``fit`` and ``predict``; ``predict_proba`` is optional.

    Raises
    ------
    InvalidEstimatorError
        (A TypeError.) If ``clf`` has no ``fit`` or no ``predict`` method.

    Warns
    -----
    UserWarning
        If ``clf`` has no ``predict_proba`` ("does not support predict_proba").
    """
    _check_interface(clf, proba=True, stacklevel=2)


def resolve_classifier(
    classifier: str | Any,
    random_state: int | None = None,
    classifier_kwargs: Mapping[str, Any] | None = None,
    compute_backend: str = "sklearn",
) -> Any:
    """Return the estimator a classifier specification means, checked with :func:`validate_classifier`.

    Parameters
    ----------
    classifier : str or estimator
        A name (built by :func:`build_classifier`) or an estimator, returned as it is (not cloned).
    random_state : int, optional
        For a name only.
    classifier_kwargs : mapping, optional
        For a name only; an estimator object keeps its own settings.
    compute_backend : {"sklearn", "auto"}, default="sklearn"
        For a name only.

    Returns
    -------
    estimator

    Raises
    ------
    UnknownOptionError
        For an unknown name or compute_backend.
    InvalidEstimatorError
        If the estimator has no ``fit`` or ``predict``.

    Warns
    -----
    UserWarning
        If the estimator has no ``predict_proba``.
    """
    if isinstance(classifier, str):
        clf = build_classifier(classifier, random_state, classifier_kwargs, compute_backend)
    else:
        clf = classifier
    _check_interface(clf, proba=True, stacklevel=2)
    return clf


def _only(kwargs: Mapping[str, Any], allowed: Mapping[str, Any]) -> bool:
    """Whether every option is one the Rust estimator has (``allowed`` maps a name to its accepted values or None)."""
    for key, value in kwargs.items():
        if key not in allowed:
            return False
        values = allowed[key]
        if values is not None and value not in values:
            return False
    return True


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) > 0:
        raise InvalidInputError(f"classifier_kwargs[{name!r}] must be a number > 0; got {value!r}")
    return float(value)


def build_classifier(
    name: str | Any,
    random_state: int | None = None,
    classifier_kwargs: Mapping[str, Any] | None = None,
    compute_backend: str = "sklearn",
    *,
    task: str = "classification",
) -> BaseEstimator:
    """Build the unfitted estimator a probe configuration names.

    =========================  =====================================================  ==================================
    name                       estimator (defaults)                                   Rust when the kwargs allow
    =========================  =====================================================  ==================================
    ``logistic_regression``    ``LogisticRegression(max_iter=1000, solver="lbfgs")``  ``LogisticProbe`` (C, max_iter,
                                                                                      tol, fit_intercept)
    ``logistic_regression_cv`` ``LogisticRegressionCV(cv=5, max_iter=1000)``         no
    ``ridge``                  ``RidgeClassifier(alpha=1)``                           ``RidgeClassifierProbe``
    ``ridge_regression``       ``Ridge(alpha=1)``                                     ``RidgeProbe``
    ``svm``                    ``SVC(kernel="linear", probability=True)``             no
    ``sgd``                    ``SGDClassifier(loss="log_loss")``                     no
    ``sgd_gpu``                :class:`SGDTorchClassifier` (torch)                    no
    ``mass_mean``              :class:`MassMeanClassifier` (``MassMeanProbe(**kw)``   always
                               when given options)
    ``lda``                    linear discriminant analysis                           ``MassMeanProbe(whiten=True)``
                                                                                      (shrinkage); else sklearn's LDA
    ``ensemble``               :class:`EnsembleClassifier` (C in 0.01 ... 5)          solver "lbfgs"
    =========================  =====================================================  ==================================

    With ``task="regression"`` the default ``"logistic_regression"`` means ridge regression (``alpha=1``).

    Parameters
    ----------
    name : str or estimator
        A name above, or any scikit-learn estimator with ``fit`` and ``predict`` (cloned, never modified).
    random_state : int, optional
        Passed to the estimators that take one.
    classifier_kwargs : mapping, optional
        Options overriding the defaults (never modified).
    compute_backend : {"sklearn", "auto"}, default="sklearn"
        Accepted for lmprobe's signature: fastprobe's solvers serve both (there is no cuML path).
    task : {"classification", "regression"}, default="classification"

    Returns
    -------
    estimator
        Unfitted.

    Raises
    ------
    UnknownOptionError
        If the name is unknown ("Unknown classifier"; the message lists the valid ones), is a classifier used for
        regression, or ``compute_backend`` is not one of the two.
    InvalidEstimatorError
        (A TypeError.) If an estimator object lacks ``fit`` or ``predict``.
    """
    if compute_backend not in _COMPUTE_BACKENDS:
        raise UnknownOptionError(
            f"Unknown compute_backend {compute_backend!r}; expected one of: {', '.join(_COMPUTE_BACKENDS)} "
            "(fastprobe's Rust solvers replace cuML)"
        )
    kwargs = dict(classifier_kwargs or {})
    if not isinstance(name, str):
        _check_interface(name, proba=task == "classification", stacklevel=2)
        est = clone(name)
        return est.set_params(**kwargs) if kwargs else est
    if name not in CLASSIFIERS:
        raise UnknownOptionError(
            f"Unknown classifier {name!r}; expected one of: {', '.join(CLASSIFIERS)}, or an estimator object"
        )
    if task == "regression":
        if name not in _REGRESSORS:
            raise UnknownOptionError(
                f"classifier {name!r} is a classifier; for task='regression' use one of: "
                f"{', '.join(_REGRESSORS)} (both ridge regression), or a regressor object"
            )
        name = "ridge_regression"
    return _named(name, random_state, kwargs)


def _named(name: str, random_state: int | None, kwargs: dict[str, Any]) -> BaseEstimator:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import (
        LogisticRegression,
        LogisticRegressionCV,
        Ridge,
        RidgeClassifier,
        SGDClassifier,
    )
    from sklearn.svm import SVC

    if name == "logistic_regression":
        rust: dict[str, Any] = {"C": None, "max_iter": None, "tol": None, "fit_intercept": None, "random_state": None}
        rust |= {"solver": ("lbfgs",), "penalty": ("l2",), "n_jobs": None, "verbose": (0, False)}
        if _only(kwargs, rust):
            return LogisticProbe(
                C=_positive(kwargs.get("C", 1.0), "C"),
                max_iter=kwargs.get("max_iter", 1000),
                tol=kwargs.get("tol", 1e-4),
                fit_intercept=kwargs.get("fit_intercept", True),
            )
        return LogisticRegression(**{"max_iter": 1000, "solver": "lbfgs", "random_state": random_state, **kwargs})
    if name in ("ridge", "ridge_regression"):
        if _only(kwargs, {"alpha": None, "fit_intercept": None, "random_state": None}):
            alpha = _positive(kwargs.get("alpha", 1.0), "alpha")
            cls = RidgeClassifierProbe if name == "ridge" else RidgeProbe
            return cls(alphas=alpha, fit_intercept=kwargs.get("fit_intercept", True))
        if name == "ridge":
            return RidgeClassifier(**{"random_state": random_state, **kwargs})
        return Ridge(**{"alpha": 1.0, **kwargs})
    if name == "mass_mean":
        return MassMeanProbe(**kwargs) if kwargs else MassMeanClassifier()
    if name == "lda":
        shrinkage = kwargs.get("shrinkage", 0.0)
        if _only(kwargs, {"shrinkage": None, "solver": ("lsqr", "eigen")}) and isinstance(shrinkage, numbers.Real):
            return MassMeanProbe(whiten=True, shrinkage=float(shrinkage))
        return LinearDiscriminantAnalysis(**kwargs)
    if name == "ensemble":
        return EnsembleClassifier(**{"random_state": random_state, **kwargs})
    if name == "logistic_regression_cv":
        return LogisticRegressionCV(**{"cv": 5, "max_iter": 1000, "random_state": random_state, **kwargs})
    if name == "svm":
        return SVC(**{"kernel": "linear", "probability": True, "random_state": random_state, **kwargs})
    if name == "sgd":
        return SGDClassifier(**{"loss": "log_loss", "random_state": random_state, **kwargs})
    return SGDTorchClassifier(**{"random_state": random_state, **kwargs})
