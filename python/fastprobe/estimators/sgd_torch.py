"""Binary logistic regression trained by minibatch SGD in torch (lmprobe's ``"sgd_gpu"`` classifier)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from fastprobe.estimators._base import encode_classes, weights
from fastprobe.exceptions import InvalidInputError, UnknownOptionError

__all__ = ["SGDTorchClassifier"]


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

        from fastprobe.model import resolve_device

        X, y = validate_data(self, X, y, dtype=np.float32)
        idx = encode_classes(self, y)
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
            else torch.from_numpy(np.asarray(weights(sample_weight, X), dtype=np.float32)).to(device)
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
