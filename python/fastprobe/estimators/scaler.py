"""Standardization of several layers' activations side by side: :class:`LayerScaler` and lmprobe's class.

:class:`PerLayerScaler` is :class:`LayerScaler` with lmprobe's constructor and attributes (``fastprobe.scaling``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from fastprobe import _core
from fastprobe.estimators._base import float32
from fastprobe.exceptions import NotFittedError, ShapeMismatchError, UnknownOptionError

__all__ = ["LayerScaler", "PerLayerScaler"]


class LayerScaler(TransformerMixin, BaseEstimator):
    """Standardize features that are several layers' activations side by side.

    Parameters
    ----------
    n_layers : int, default=1
        Number of equal-width layer blocks in the features.
    mode : {"per_neuron", "per_layer"}, default="per_neuron"
        One mean and standard deviation per feature, or per layer block (keeping the relative scale of a layer's
        neurons). Standard deviations use ddof=0; a zero one becomes 1.
    n_threads : int, optional

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    scale_ : ndarray of shape (n_features,)
    n_features_in_ : int
    """

    def __init__(self, n_layers: int = 1, *, mode: str = "per_neuron", n_threads: int | None = None) -> None:
        self.n_layers = n_layers
        self.mode = mode
        self.n_threads = n_threads

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def fit(self, X: Any, y: Any = None) -> LayerScaler:
        """Compute the means and scales."""
        X = validate_data(self, X, dtype=[np.float32, np.float64])
        self.mean_, self.scale_ = _core.fit_scaler(float32(X), int(self.n_layers), self.mode, self.n_threads)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Return ``(X - mean_) / scale_`` as a new float32 array."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        out = np.array(X, dtype=np.float32, order="C", copy=True)
        _core.scale_in_place(out, self.mean_, self.scale_, self.n_threads)
        return out

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Undo :meth:`transform`."""
        check_is_fitted(self)
        X = np.asarray(X, dtype=np.float64)
        return (X * self.scale_ + self.mean_).astype(np.float32)


class PerLayerScaler(LayerScaler):
    """Standardize features made of ``n_layers`` blocks of ``hidden_dim`` activations each, one layer at a time.

    A :class:`~fastprobe.estimators.LayerScaler` with lmprobe's constructor and attributes. ``"per_neuron"`` gives
    every feature its own mean and standard deviation; ``"per_layer"`` gives all the features of a layer one shared
    mean and standard deviation, keeping the relative scale of its neurons (fewer statistics to estimate when
    samples are few). Standard deviations use ddof=0; a zero one becomes 1.

    float32 input is fitted and scaled by fastprobe's Rust kernels (statistics accumulated in float64, output
    float32). Any other input is computed in float64 (the kernels read float32 only), so float64 data keeps full
    precision; a result's dtype is that of ``X`` and the fitted data promoted together, as lmprobe's.

    Parameters
    ----------
    n_layers : int
        Number of layer blocks in the features.
    hidden_dim : int
        Features per layer block; ``X`` must have ``n_layers * hidden_dim`` columns.
    strategy : {"per_neuron", "per_layer"}, default="per_neuron"
        Checked here, as lmprobe does (an unknown name raises at construction).
    n_threads : int, optional
        Threads for the Rust kernels; None uses fastprobe's default pool.

    Attributes
    ----------
    means_ : ndarray of shape (n_layers, hidden_dim) for "per_neuron", (n_layers,) for "per_layer", or None
        The fitted means (None before :meth:`fit`).
    stds_ : ndarray, same shape as ``means_``, or None
        The fitted standard deviations, zeros replaced by 1.
    mean_, scale_ : ndarray of shape (n_layers * hidden_dim,), float64
        The same statistics per feature (:class:`~fastprobe.estimators.LayerScaler`'s attributes).
    n_features_in_ : int

    Raises
    ------
    UnknownOptionError
        If ``strategy`` is not one of :attr:`VALID_STRATEGIES` ("Unknown strategy ...").

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 2.0, 10.0, 30.0], [3.0, 6.0, 20.0, 50.0]])
    >>> scaler = PerLayerScaler(n_layers=2, hidden_dim=2).fit(X)
    >>> scaler.means_
    array([[ 2.,  4.],
           [15., 40.]])
    >>> scaler.transform(X)
    array([[-1., -1., -1., -1.],
           [ 1.,  1.,  1.,  1.]])
    """

    #: The accepted ``strategy`` names.
    VALID_STRATEGIES: tuple[str, ...] = ("per_neuron", "per_layer")

    def __init__(self, n_layers: int, hidden_dim: int, strategy: str = "per_neuron", *, n_threads: int | None = None):
        if strategy not in self.VALID_STRATEGIES:
            raise UnknownOptionError(
                f"Unknown strategy {strategy!r} for PerLayerScaler; expected one of: {', '.join(self.VALID_STRATEGIES)}"
            )
        self.n_layers = n_layers
        self.hidden_dim = hidden_dim
        self.strategy = strategy
        self.n_threads = n_threads

    @property
    def mode(self) -> str:  # type: ignore[override]
        """The scaling mode, ``strategy`` (the name :class:`~fastprobe.estimators.LayerScaler` reads)."""
        return self.strategy

    # ------------------------------------------------------------------------------------------------- helpers

    def _checked(self, X: Any) -> np.ndarray:
        X = np.asarray(X)
        expected = int(self.n_layers) * int(self.hidden_dim)
        if X.ndim != 2 or X.shape[1] != expected:
            got = f"{X.shape[1]}" if X.ndim == 2 else f"an array of shape {X.shape}"
            raise ShapeMismatchError(
                f"Expected {expected} features (n_layers={self.n_layers} x hidden_dim={self.hidden_dim}) in a 2-D "
                f"array (n_samples, n_features), got {got}"
            )
        return X

    def _check_fitted(self) -> None:
        if getattr(self, "mean_", None) is None:
            raise NotFittedError("PerLayerScaler has not been fitted; call fit(X) first")

    @staticmethod
    def _computes_in_float32(X: np.ndarray) -> bool:
        return X.dtype in (np.float32, np.float16)

    def _out_dtype(self, X: np.ndarray) -> np.dtype[Any]:
        fitted = np.float32 if self._fit_float32 else np.float64
        return np.result_type(np.float32 if self._computes_in_float32(X) else np.float64, fitted)

    def _by_layer(self, values: np.ndarray) -> np.ndarray:
        block = values.reshape(int(self.n_layers), int(self.hidden_dim))
        out = block if self.strategy == "per_neuron" else block[:, 0]
        return np.array(out, dtype=np.float32 if self._fit_float32 else np.float64)

    # ---------------------------------------------------------------------------------------------- public API

    @property
    def means_(self) -> np.ndarray | None:
        """The fitted means by layer: (n_layers, hidden_dim) or (n_layers,); None before :meth:`fit`."""
        mean = getattr(self, "mean_", None)
        return None if mean is None else self._by_layer(mean)

    @property
    def stds_(self) -> np.ndarray | None:
        """The fitted standard deviations (zeros replaced by 1), shaped as :attr:`means_`; None before :meth:`fit`."""
        scale = getattr(self, "scale_", None)
        return None if scale is None else self._by_layer(scale)

    def fit(self, X: Any, y: Any = None) -> PerLayerScaler:
        """Compute the means and standard deviations.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_layers * hidden_dim)
        y : None
            Ignored (scikit-learn's signature).

        Returns
        -------
        PerLayerScaler
            ``self``.

        Raises
        ------
        ShapeMismatchError
            If ``X`` does not have ``n_layers * hidden_dim`` columns ("Expected N features ...").
        """
        X = self._checked(X)
        self._fit_float32 = self._computes_in_float32(X)
        if self._fit_float32:
            super().fit(X)
            return self
        X = validate_data(self, X, dtype=np.float64)
        n_samples = X.shape[0]
        if self.strategy == "per_neuron":
            mean, std = X.mean(axis=0), X.std(axis=0)
        else:
            blocks = X.reshape(n_samples, int(self.n_layers), int(self.hidden_dim))
            mean = np.repeat(blocks.mean(axis=(0, 2)), self.hidden_dim)
            std = np.repeat(blocks.std(axis=(0, 2)), self.hidden_dim)
        self.mean_ = mean
        self.scale_ = np.where(std == 0, 1.0, std)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Standardize: ``(X - mean) / std`` with the fitted statistics.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_layers * hidden_dim)

        Returns
        -------
        ndarray of the same shape
            float32 when ``X`` and the fitted data are float32 (the Rust kernel), float64 otherwise.

        Raises
        ------
        NotFittedError
            Before :meth:`fit` ("has not been fitted"; also a RuntimeError).
        ShapeMismatchError
            If ``X`` does not have ``n_layers * hidden_dim`` columns.
        """
        self._check_fitted()
        X = self._checked(X)
        if self._out_dtype(X) == np.float32:
            return super().transform(X)
        return (X.astype(np.float64, copy=False) - self.mean_) / self.scale_

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """Fit, then standardize ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_layers * hidden_dim)
        y : None
            Ignored.
        **fit_params
            Ignored (scikit-learn's signature).

        Returns
        -------
        ndarray of the same shape
        """
        return self.fit(X).transform(X)

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Undo :meth:`transform`: ``X * std + mean``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_layers * hidden_dim)

        Returns
        -------
        ndarray of the same shape, with :meth:`transform`'s dtype rule

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        ShapeMismatchError
            If ``X`` does not have ``n_layers * hidden_dim`` columns.
        """
        self._check_fitted()
        X = self._checked(X)
        out = X.astype(np.float64, copy=False) * self.scale_ + self.mean_
        return out.astype(self._out_dtype(X), copy=False)

    def get_layer_stats(self) -> dict[str, np.ndarray]:
        """Summarize the fitted statistics by layer.

        Returns
        -------
        dict of str to ndarray of shape (n_layers,)
            ``"per_neuron"``: ``mean_norms`` and ``std_norms`` (the L2 norm of each layer's means and standard
            deviations) and ``mean_per_layer`` and ``std_per_layer`` (their averages over the layer's neurons).
            ``"per_layer"``: ``means`` and ``stds``, copies of :attr:`means_` and :attr:`stds_`.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        """
        self._check_fitted()
        means, stds = self.means_, self.stds_
        assert means is not None and stds is not None
        if self.strategy == "per_layer":
            return {"means": means, "stds": stds}
        return {
            "mean_norms": np.linalg.norm(means, axis=1),
            "std_norms": np.linalg.norm(stds, axis=1),
            "mean_per_layer": means.mean(axis=1),
            "std_per_layer": stds.mean(axis=1),
        }
