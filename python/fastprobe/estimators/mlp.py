"""A one-hidden-layer neural probe trained in torch: ``Linear -> ReLU -> Linear``, cross-entropy, Adam.

A nonlinear probe for comparison with the linear ones (does the model encode a property that a linear read-out
misses?). Training runs in torch on the CPU or a GPU; the fitted weights are kept as numpy arrays, so a fitted
:class:`MLPProbe` pickles, clones and predicts without torch state, and :meth:`MLPProbe.save` writes them to a
safetensors file that :meth:`MLPProbe.load` reads back without running any code from the file.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import _check_sample_weight, validate_data

from fastprobe.estimators._base import encode_classes, require_fitted
from fastprobe.exceptions import (
    ArgumentTypeError,
    FastprobeIOError,
    InvalidInputError,
    ShapeMismatchError,
)
from fastprobe.serialization import write_atomically

__all__ = ["MLPProbe"]

#: The ``format`` entry of a saved file's metadata, and the version of its layout.
FILE_FORMAT = "fastprobe.mlp_probe"
FILE_VERSION = 1
_PARAMS = (
    "hidden_size",
    "learning_rate",
    "weight_decay",
    "max_epochs",
    "batch_size",
    "validation_fraction",
    "early_stopping",
    "patience",
    "random_state",
    "device",
    "verbose",
)
_HISTORY = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


class MLPProbe(ClassifierMixin, BaseEstimator):
    """A one-hidden-layer MLP classifier: ``Linear(d, hidden_size) -> ReLU -> Linear(hidden_size, n_classes)``.

    Trained with the cross-entropy loss and Adam in torch (imported when needed), for two classes or more, with
    labels of any type. Early stopping watches the loss on a seeded, stratified hold-out of the training rows and
    restores the weights of its best epoch.

    The name ``"mlp"`` builds one in :class:`~fastprobe.Probe` (``classifier="mlp"``, ``classifier_kwargs`` set the
    parameters below); an instance works as ``Probe(classifier=MLPProbe(...))`` too.

    Parameters
    ----------
    hidden_size : int, default=128
        Units of the hidden layer.
    learning_rate : float, default=1e-3
        Adam's learning rate.
    weight_decay : float, default=0.0
        Adam's (coupled) L2 penalty on every weight and bias.
    max_epochs : int, default=50
        Passes over the training rows at most.
    batch_size : int, default=32
        Rows per minibatch (the last one of an epoch may be smaller).
    validation_fraction : float or None, default=0.1
        Share of the rows held out to measure the validation loss, in [0, 1); 0 or None: no hold-out. The hold-out
        is stratified: each class gives its share (rounded so that the total is ``ceil(fraction * n_samples)``) and
        keeps at least one row for training, so a class with a single row is never held out, and data too small
        for any hold-out (say one row per class) is trained on whole, with empty validation histories. The split
        is made whether or not ``early_stopping`` is on, so that the validation curves can be watched.
    early_stopping : bool, default=True
        Stop after ``patience`` epochs without a lower monitored loss and restore the weights of the epoch with the
        lowest one. The monitored loss is the validation loss, or the training loss when there is no hold-out.
        False: train ``max_epochs`` epochs and keep the last weights.
    patience : int, default=5
        Epochs without a strictly lower monitored loss before stopping.
    random_state : int, numpy.random.RandomState or None, default=None
        Seeds the hold-out, the initial weights and the order of the minibatches: one seed gives bit-identical
        weights on the CPU. None draws fresh seeds from numpy's global generator.
    device : str, default="cpu"
        Where torch trains: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, or ``"auto"`` (CUDA when available,
        else MPS, else the CPU). Prediction runs in numpy.
    verbose : bool, default=False
        Show a progress bar over epochs with the losses.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had column names (a DataFrame).
    coefs_ : list of 2 ndarrays, float32
        The weight matrices, ``(n_features, hidden_size)`` and ``(hidden_size, n_classes)``; a layer's output is
        ``input @ coefs_[i] + intercepts_[i]``.
    intercepts_ : list of 2 ndarrays, float32
        The biases, ``(hidden_size,)`` and ``(n_classes,)``.
    history_ : dict of str to list of float
        One value per epoch run: ``train_loss`` and ``train_accuracy`` (averaged over the epoch's minibatches as
        they were trained), ``val_loss`` and ``val_accuracy`` (on the hold-out after the epoch; empty lists
        without one). Weighted by ``sample_weight`` when given.
    n_epochs_ : int
        Epochs run (the length of each non-empty history list).
    best_epoch_ : int
        The epoch whose weights the estimator holds, as an index into the ``history_`` lists (0 is the first
        epoch): with early stopping the one with the lowest monitored loss, else the last.

    Notes
    -----
    ``sample_weight`` in :meth:`fit` weights each row's loss (the weights are rescaled to average 1 over the
    training rows, so only their ratios matter). Minibatch training makes a weight of 2 close to, but not exactly
    the same as, a repeated row.
    """

    def __init__(
        self,
        *,
        hidden_size: int = 128,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        max_epochs: int = 50,
        batch_size: int = 32,
        validation_fraction: float | None = 0.1,
        early_stopping: bool = True,
        patience: int = 5,
        random_state: Any = None,
        device: str = "cpu",
        verbose: bool = False,
    ) -> None:
        self.hidden_size = hidden_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------------------------------------ fitting

    def _check_params(self) -> float:
        """Check the parameters; return the validation fraction as a float (0.0 for None)."""
        for name in ("hidden_size", "max_epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ArgumentTypeError(f"{name} must be an integer >= 1; got {value!r} ({type(value).__name__})")
            if value < 1:
                raise InvalidInputError(f"{name} must be an integer >= 1; got {value!r}")
        for name, low in (("learning_rate", "> 0"), ("weight_decay", ">= 0")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ArgumentTypeError(f"{name} must be a number {low}; got {value!r} ({type(value).__name__})")
            number = float(value)
            ok = number > 0 if low == "> 0" else number >= 0
            if not (math.isfinite(number) and ok):
                raise InvalidInputError(f"{name} must be a finite number {low}; got {value!r}")
        if not isinstance(self.device, str):
            raise ArgumentTypeError(f"device must be a string such as 'cpu' or 'auto'; got {self.device!r}")
        fraction = self.validation_fraction
        if fraction is None:
            return 0.0
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real):
            raise ArgumentTypeError(
                f"validation_fraction must be a number in [0, 1) or None; got {fraction!r} ({type(fraction).__name__})"
            )
        if not 0 <= fraction < 1:
            raise InvalidInputError(f"validation_fraction must be in [0, 1) (0 or None: no hold-out); got {fraction!r}")
        return float(fraction)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPProbe:
        """Train the network, with early stopping on the hold-out (see the class parameters).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Converted to float32.
        y : array-like of shape (n_samples,)
            Labels of any type, at least two classes.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights of the rows' losses (and of the history's metrics).

        Returns
        -------
        self : MLPProbe

        Raises
        ------
        InvalidInputError
            If ``y`` has fewer than two classes, or a parameter is out of its range (the message names it, its range
            and the value given).
        ArgumentTypeError
            If a parameter has the wrong type.
        """
        import torch

        from fastprobe.model import resolve_device

        fraction = self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float32, order="C")
        idx = encode_classes(self, y)
        w = np.ones(len(idx))
        if sample_weight is not None:
            w = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        rs = check_random_state(self.random_state)
        split_seed, torch_seed = (int(s) for s in rs.randint(0, np.iinfo(np.int32).max, size=2))
        train, val = _holdout(idx, len(self.classes_), fraction, np.random.default_rng(split_seed))
        if not w[train].sum() > 0:
            raise InvalidInputError(
                f"sample_weight must have a positive sum over the training rows; got a sum of {w[train].sum()}"
            )

        device = torch.device(resolve_device(self.device))
        gen = torch.Generator().manual_seed(torch_seed)
        net = _network(torch, X.shape[1], int(self.hidden_size), len(self.classes_), gen).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=float(self.learning_rate), weight_decay=float(self.weight_decay))
        tensors = _Tensors(torch, device, X, idx, w, train, val)
        self.history_: dict[str, list[float]] = {key: [] for key in _HISTORY}
        best_loss, best_epoch, best_state, stale = math.inf, -1, None, 0
        bar = _progress(int(self.max_epochs), self.verbose)
        for epoch in bar:
            loss, acc = _train_epoch(torch, net, opt, tensors, int(self.batch_size), gen)
            self.history_["train_loss"].append(loss)
            self.history_["train_accuracy"].append(acc)
            monitored = loss
            if len(val):
                monitored, val_acc = _evaluate(torch, net, tensors)
                self.history_["val_loss"].append(monitored)
                self.history_["val_accuracy"].append(val_acc)
                bar.set_postfix(loss=f"{loss:.4g}", val_loss=f"{monitored:.4g}")
            else:
                bar.set_postfix(loss=f"{loss:.4g}")
            if not self.early_stopping:
                best_epoch = epoch
                continue
            if monitored < best_loss:
                best_loss, best_epoch, stale = monitored, epoch, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
                if stale >= self.patience:
                    break
        bar.close()
        if best_state is not None:
            net.load_state_dict(best_state)
        first, second = net[0], net[2]
        self.coefs_ = [_numpy(first.weight).T.copy(), _numpy(second.weight).T.copy()]
        self.intercepts_ = [_numpy(first.bias), _numpy(second.bias)]
        self.n_epochs_ = len(self.history_["train_loss"])
        self.best_epoch_ = int(best_epoch) if best_epoch >= 0 else self.n_epochs_ - 1  # -1: no finite loss
        return self

    # ------------------------------------------------------------------------------------------------ prediction

    def _logits(self, X: Any) -> np.ndarray:
        require_fitted(self, "coefs_")
        arr = check_array(X, dtype=[np.float64, np.float32])
        if arr.shape[1] != self.n_features_in_:
            raise ShapeMismatchError(
                f"X has {arr.shape[1]} features, but {type(self).__name__} is expecting {self.n_features_in_} "
                "features as input"
            )
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        hidden = np.maximum(np.asarray(X, dtype=np.float64) @ self.coefs_[0] + self.intercepts_[0], 0.0)
        return np.asarray(hidden @ self.coefs_[1] + self.intercepts_[1], dtype=np.float64)

    def decision_function(self, X: Any) -> np.ndarray:
        """Return the network's outputs (logits).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) for two classes, else (n_samples, n_classes)
            For two classes, the log-odds of ``classes_[1]`` (the difference of its logit and ``classes_[0]``'s), as
            scikit-learn's binary classifiers give; beyond, one logit per class, in ``classes_`` order.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        ShapeMismatchError
            If ``X`` has another number of features than the training data.
        """
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return the class probabilities (the softmax of the logits).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in ``classes_`` order; each row sums to 1.
        """
        logits = self._logits(X)
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        return np.asarray(z / z.sum(axis=1, keepdims=True))

    def predict(self, X: Any) -> np.ndarray:
        """Return the class of the largest logit for each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        logits = self._logits(X)
        return np.asarray(self.classes_[np.argmax(logits, axis=1)])

    # ------------------------------------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted probe to a safetensors file (written to a temporary file, then renamed over ``path``).

        The four weight arrays are the file's tensors (``coefs.0``, ``coefs.1``, ``intercepts.0``,
        ``intercepts.1``); its metadata holds ``format`` (``"fastprobe.mlp_probe"``) and ``state``: JSON with the
        parameters, the classes (values and numpy dtype), ``n_features_in_``, the feature names, the history,
        ``n_epochs_`` and ``best_epoch_``. There is no pickle in it. A ``random_state`` that is not an int or None
        (a ``RandomState``) is saved as None.

        Parameters
        ----------
        path : str or path-like

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        InvalidInputError
            If the classes are not numbers, booleans or strings.
        FastprobeIOError
            If the file cannot be written.
        """
        from safetensors.numpy import save

        require_fitted(self, "coefs_")
        params = self.get_params(deep=False)
        if not (params["random_state"] is None or isinstance(params["random_state"], numbers.Integral)):
            params["random_state"] = None
        elif params["random_state"] is not None:
            params["random_state"] = int(params["random_state"])
        names = getattr(self, "feature_names_in_", None)
        state = {
            "version": FILE_VERSION,
            "params": params,
            "classes": _classes_doc(self.classes_),
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": None if names is None else [str(n) for n in names],
            "history": {key: [float(v) for v in self.history_[key]] for key in _HISTORY},
            "n_epochs": int(self.n_epochs_),
            "best_epoch": int(self.best_epoch_),
        }
        tensors = {f"coefs.{i}": np.ascontiguousarray(a, dtype=np.float32) for i, a in enumerate(self.coefs_)}
        tensors |= {
            f"intercepts.{i}": np.ascontiguousarray(a, dtype=np.float32) for i, a in enumerate(self.intercepts_)
        }
        blob = save(tensors, metadata={"format": FILE_FORMAT, "state": json.dumps(state)})
        write_atomically(path, lambda f: f.write(blob), "the MLPProbe")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MLPProbe:
        """Read a probe written by :meth:`save`; it predicts exactly as the saved one did.

        Only the safetensors header (JSON) and the raw arrays are read: no code from the file runs.

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        MLPProbe
            Fitted.

        Raises
        ------
        FastprobeIOError
            If the file cannot be read.
        InvalidInputError
            If it is not a file written by :meth:`save`, or its arrays do not fit its record.
        """
        from safetensors import SafetensorError
        from safetensors.numpy import load

        target = os.fspath(path)
        try:
            with open(target, "rb") as f:
                data = f.read()
        except OSError as err:
            raise FastprobeIOError(f"could not read an MLPProbe from {target!r}: {err}") from err
        try:
            header_len = int.from_bytes(data[:8], "little")
            meta = json.loads(data[8 : 8 + header_len]).get("__metadata__") or {}
            if meta.get("format") != FILE_FORMAT:
                raise ValueError(f"its format is {meta.get('format')!r}, not {FILE_FORMAT!r}")
            state = json.loads(meta["state"])
            arrays = load(data)
            est = cls(**{k: state["params"][k] for k in _PARAMS if k in state["params"]})
            est.classes_ = _classes_from_doc(state["classes"])
            est.n_features_in_ = int(state["n_features_in"])
            if state.get("feature_names_in") is not None:
                est.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
            est.coefs_ = [arrays["coefs.0"], arrays["coefs.1"]]
            est.intercepts_ = [arrays["intercepts.0"], arrays["intercepts.1"]]
            est.history_ = {key: [float(v) for v in state["history"][key]] for key in _HISTORY}
            est.n_epochs_ = int(state["n_epochs"])
            est.best_epoch_ = int(state["best_epoch"])
        except (ValueError, KeyError, TypeError, SafetensorError, UnicodeDecodeError) as err:
            raise InvalidInputError(
                f"{target!r} is not an MLPProbe saved by MLPProbe.save, or it is truncated or corrupt: {err}"
            ) from err
        shapes = [a.shape for a in est.coefs_ + est.intercepts_]
        hidden, k = shapes[0][1] if len(shapes[0]) == 2 else -1, len(est.classes_)
        expected = [(est.n_features_in_, hidden), (hidden, k), (hidden,), (k,)]
        if shapes != expected:
            raise InvalidInputError(
                f"{target!r} holds weights of shapes {shapes}; expected {expected} for {est.n_features_in_} features "
                f"and {k} classes"
            )
        return est


# ---------------------------------------------------------------------------------------------- helpers


def _holdout(idx: np.ndarray, n_classes: int, fraction: float, rng: np.random.Generator) -> tuple[Any, Any]:
    """Split rows into (training, validation) indices: a stratified hold-out of ``ceil(fraction * n)`` rows.

    Each class contributes in proportion to its size (largest remainders first) and keeps at least one training
    row; an empty hold-out means no validation.
    """
    n = len(idx)
    counts = np.bincount(idx, minlength=n_classes)
    target = min(math.ceil(fraction * n), n - n_classes) if fraction > 0 else 0
    if target <= 0:
        return np.arange(n), np.arange(0)
    quotas = counts * target / n
    take = np.minimum(np.floor(quotas).astype(np.int64), counts - 1)
    order = np.argsort(-(quotas - np.floor(quotas)), kind="stable")
    while take.sum() < target:
        for k in order:
            if take.sum() < target and take[k] < counts[k] - 1:
                take[k] += 1
    val = np.concatenate([rng.permutation(np.flatnonzero(idx == k))[: take[k]] for k in range(n_classes)])
    held = np.zeros(n, dtype=bool)
    held[val] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


def _network(torch: Any, d_in: int, hidden: int, n_classes: int, gen: Any) -> Any:
    """Build the network, its weights and biases drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) by the seeded ``gen``."""
    net = torch.nn.Sequential(torch.nn.Linear(d_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_classes))
    with torch.no_grad():
        for layer in (net[0], net[2]):
            bound = 1.0 / math.sqrt(layer.in_features)
            for param in (layer.weight, layer.bias):
                param.copy_((torch.rand(param.shape, generator=gen) * 2 - 1) * bound)
    return net


class _Tensors:
    """The training and validation rows on the device, and their weights (the training ones rescaled to mean 1)."""

    def __init__(
        self, torch: Any, device: Any, X: np.ndarray, idx: np.ndarray, w: np.ndarray, train: Any, val: Any
    ) -> None:
        def put(a: np.ndarray) -> Any:
            return torch.from_numpy(np.ascontiguousarray(a)).to(device)

        self.X, self.y = put(X[train]), put(idx[train])
        self.w = put((w[train] / w[train].mean()).astype(np.float32))
        self.Xv, self.yv = put(X[val]), put(idx[val])
        # Hold-out weights as given (float64; equal weights if they are all zero): metrics are sum(w x) / sum(w).
        self.wv = put(w[val] if w[val].sum() > 0 else np.ones(len(val)))


def _train_epoch(torch: Any, net: Any, opt: Any, t: _Tensors, batch_size: int, gen: Any) -> tuple[float, float]:
    """One pass over shuffled minibatches; return the epoch's mean (weighted) loss and accuracy."""
    n = len(t.y)
    perm = torch.randperm(n, generator=gen).to(t.X.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=t.X.device)
    correct_sum = torch.zeros((), dtype=torch.float64, device=t.X.device)
    net.train()
    for start in range(0, n, batch_size):
        rows = perm[start : start + batch_size]
        logits = net(t.X[rows])
        w = t.w[rows]
        per_row = torch.nn.functional.cross_entropy(logits, t.y[rows], reduction="none") * w
        loss = per_row.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            loss_sum += per_row.detach().sum().double()
            correct_sum += ((logits.argmax(dim=1) == t.y[rows]).float() * w).sum().double()
    return float(loss_sum) / n, float(correct_sum) / n


def _evaluate(torch: Any, net: Any, t: _Tensors) -> tuple[float, float]:
    """Return the (weighted) mean loss and accuracy on the hold-out."""
    net.eval()
    with torch.no_grad():
        logits = net(t.Xv)
        total = t.wv.sum()
        loss = (torch.nn.functional.cross_entropy(logits, t.yv, reduction="none").double() * t.wv).sum() / total
        acc = ((logits.argmax(dim=1) == t.yv).double() * t.wv).sum() / total
    return float(loss), float(acc)


def _progress(epochs: int, verbose: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(range(epochs), desc="mlp epochs", disable=not verbose, dynamic_ncols=True)


def _numpy(param: Any) -> np.ndarray:
    return np.asarray(param.detach().cpu().numpy(), dtype=np.float32)


def _classes_doc(classes: np.ndarray) -> dict[str, Any]:
    """Return the classes as JSON: their values and numpy dtype (object arrays: str, int, float or bool values only)."""
    values = classes.tolist()
    if classes.dtype.kind not in "biufUO" or not all(isinstance(v, (str, int, float, bool)) for v in values):
        kinds = sorted({type(v).__name__ for v in values})
        raise InvalidInputError(
            f"MLPProbe.save stores classes that are numbers, booleans or strings; got {classes.dtype} classes of "
            f"type {', '.join(kinds)}"
        )
    return {"values": values, "dtype": classes.dtype.str}


def _classes_from_doc(doc: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(doc["dtype"])
    if dtype.kind == "O":
        out = np.empty(len(doc["values"]), dtype=object)
        out[:] = doc["values"]
        return out
    return np.asarray(doc["values"], dtype=dtype)
