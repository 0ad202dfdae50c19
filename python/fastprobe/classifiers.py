"""The classifiers a :class:`~fastprobe.Probe` accepts by name, and the two estimators only this table needs.

Each name in :data:`CLASSIFIERS` means what it means in lmprobe (same defaults, ``classifier_kwargs`` override
them). Where a Rust solver computes the same model, the name builds a fastprobe estimator; options that solver does
not have (say ``penalty="l1"``) fall back to the scikit-learn estimator lmprobe would build, so every option keeps
working. :func:`build_classifier` says which one a configuration gets.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from fastprobe.estimators import (
    LogisticProbe,
    MassMeanProbe,
    RidgeClassifierProbe,
    RidgeProbe,
    _encode_classes,
    _float32,
    _weights,
)
from fastprobe.exceptions import InvalidInputError, UnknownOptionError

__all__ = ["CLASSIFIERS", "LogisticEnsemble", "SGDTorchClassifier", "build_classifier"]

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
_REGRESSORS = ("logistic_regression", "ridge_regression")
_ENSEMBLE_CS = (0.01, 0.1, 0.5, 1.0, 5.0)


class LogisticEnsemble(ClassifierMixin, BaseEstimator):
    """Logistic regressions over several regularization strengths, probabilities averaged (``"ensemble"``).

    The fits share one warm-started regularization path in Rust (smallest C first).

    Parameters
    ----------
    C_values : sequence of float, default=(0.01, 0.1, 0.5, 1, 5)
    max_iter : int, default=1000
    tol : float, default=1e-4
    fit_intercept : bool, default=True
    n_threads : int, optional

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coefs_ : ndarray of shape (n_C, n_rows, n_features)
        Each member's coefficients (one row for two classes).
    intercepts_ : ndarray of shape (n_C, n_rows)
    coef_ : ndarray of shape (n_rows, n_features)
        The members' mean coefficients (for layer importance).
    intercept_ : ndarray of shape (n_rows,)
    n_features_in_ : int
    """

    def __init__(
        self,
        C_values: Sequence[float] = _ENSEMBLE_CS,
        *,
        max_iter: int = 1000,
        tol: float = 1e-4,
        fit_intercept: bool = True,
        n_threads: int | None = None,
    ) -> None:
        self.C_values = C_values
        self.max_iter = max_iter
        self.tol = tol
        self.fit_intercept = fit_intercept
        self.n_threads = n_threads

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticEnsemble:
        """Fit one logistic regression per C.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self : LogisticEnsemble
        """
        from fastprobe import _core

        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        cs = [float(c) for c in np.atleast_1d(np.asarray(self.C_values, dtype=np.float64))]
        if not cs or any(not np.isfinite(c) or c <= 0 for c in cs):
            raise InvalidInputError(f"C_values must be a non-empty sequence of numbers > 0; got {self.C_values!r}")
        idx = _encode_classes(self, y)
        X32 = _float32(X)
        order = np.argsort(cs)
        fits = _core.logistic_path(
            X32,
            idx,
            len(self.classes_),
            _weights(sample_weight, X32),
            [cs[i] for i in order],
            bool(self.fit_intercept),
            int(self.max_iter),
            float(self.tol),
            self.n_threads,
        )
        back = np.argsort(order)
        self.coefs_ = np.stack([fits[i][0] for i in back])
        self.intercepts_ = np.stack([fits[i][1] for i in back])
        self.coef_ = self.coefs_.mean(axis=0)
        self.intercept_ = self.intercepts_.mean(axis=0)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Mean of the members' class probabilities, columns in ``classes_`` order."""
        check_is_fitted(self)
        X = np.asarray(validate_data(self, X, dtype=[np.float32, np.float64], reset=False), dtype=np.float64)
        total = np.zeros((len(X), len(self.classes_)))
        for coef, intercept in zip(self.coefs_, self.intercepts_, strict=True):
            z = X @ coef.T + intercept
            if z.shape[1] == 1:
                p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
                total += np.column_stack([1.0 - p1, p1])
            else:
                e = np.exp(z - z.max(axis=1, keepdims=True))
                total += e / e.sum(axis=1, keepdims=True)
        return total / len(self.coefs_)

    def predict(self, X: Any) -> np.ndarray:
        """Predict the class with the highest mean probability."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


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
                f"unknown scheduler {self.scheduler!r}; expected one of: None, 'cosine', 'reduce_on_plateau'"
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
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


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
    classifier: Any,
    *,
    task: str = "classification",
    random_state: int | None = None,
    classifier_kwargs: Mapping[str, Any] | None = None,
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
    ``mass_mean``              ``MassMeanProbe()``                                    always
    ``lda``                    linear discriminant analysis                           ``MassMeanProbe(whiten=True)``
                                                                                      (shrinkage); else sklearn's LDA
    ``ensemble``               :class:`LogisticEnsemble` (C in 0.01 ... 5)            always
    =========================  =====================================================  ==================================

    With ``task="regression"`` the default ``"logistic_regression"`` means ridge regression (``alpha=1``).

    Parameters
    ----------
    classifier : str or estimator
        A name above, or any scikit-learn estimator with ``fit`` and ``predict`` (cloned, never modified).
    task : {"classification", "regression"}, default="classification"
    random_state : int, optional
        Passed to the estimators that take one.
    classifier_kwargs : mapping, optional
        Options overriding the defaults (never modified).

    Returns
    -------
    estimator
        Unfitted.

    Raises
    ------
    UnknownOptionError
        If the name is unknown (the message lists the valid ones) or is a classifier used for regression.
    InvalidInputError
        If an estimator object lacks ``fit`` or ``predict``.
    """
    kwargs = dict(classifier_kwargs or {})
    if not isinstance(classifier, str):
        if not (hasattr(classifier, "fit") and hasattr(classifier, "predict")):
            raise InvalidInputError(
                f"classifier must be one of: {', '.join(CLASSIFIERS)}, or an estimator with fit and predict; got "
                f"{type(classifier).__name__}"
            )
        if task == "classification" and not hasattr(classifier, "predict_proba"):
            warnings.warn(
                f"{type(classifier).__name__} has no predict_proba: predict_proba, AUROC and score pooling will raise",
                UserWarning,
                stacklevel=3,
            )
        est = clone(classifier)
        return est.set_params(**kwargs) if kwargs else est
    if classifier not in CLASSIFIERS:
        raise UnknownOptionError(
            f"unknown classifier {classifier!r}; expected one of: {', '.join(CLASSIFIERS)}, or an estimator object"
        )
    if task == "regression":
        if classifier not in _REGRESSORS:
            raise UnknownOptionError(
                f"classifier {classifier!r} is a classifier; for task='regression' use one of: "
                f"{', '.join(_REGRESSORS)} (both ridge regression), or a regressor object"
            )
        classifier = "ridge_regression"
    return _named(classifier, random_state, kwargs)


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
        return MassMeanProbe(**kwargs)
    if name == "lda":
        shrinkage = kwargs.get("shrinkage", 0.0)
        if _only(kwargs, {"shrinkage": None, "solver": ("lsqr", "eigen")}) and isinstance(shrinkage, numbers.Real):
            return MassMeanProbe(whiten=True, shrinkage=float(shrinkage))
        return LinearDiscriminantAnalysis(**kwargs)
    if name == "ensemble":
        return LogisticEnsemble(**{k: v for k, v in kwargs.items() if k not in ("solver", "random_state")})
    if name == "logistic_regression_cv":
        return LogisticRegressionCV(**{"cv": 5, "max_iter": 1000, "random_state": random_state, **kwargs})
    if name == "svm":
        return SVC(**{"kernel": "linear", "probability": True, "random_state": random_state, **kwargs})
    if name == "sgd":
        return SGDClassifier(**{"loss": "log_loss", "random_state": random_state, **kwargs})
    return SGDTorchClassifier(**{"random_state": random_state, **kwargs})
