"""The ``Probe``: lmprobe's ``Probe`` API on fastprobe's activation store and Rust solvers.

A probe reads a language model's activations at some layers, pools each prompt's tokens, scales the features, and
fits a classifier (or a regressor). Activations go through the activation cache (:mod:`fastprobe.store`): a prompt is
run through the model once per layer, ever, and later fits, sweeps and predictions read it back in one batched call.
Layer sweeps (:meth:`Probe.sweep_layers`, ``layers="sweep"``) extract every layer in one pass and fit the layers in
parallel.

Where lmprobe has known faults, the probe fixes them; the README lists each difference.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from fastprobe.classifiers import build_classifier
from fastprobe.estimators import LayerScaler, LogisticProbe, MassMeanProbe, RidgeClassifierProbe, RidgeProbe
from fastprobe.exceptions import (
    FastprobeError,
    InvalidInputError,
    NotFittedError,
    ShapeMismatchError,
    UnknownOptionError,
    UnsupportedMethodError,
)
from fastprobe.extraction import check_dtype
from fastprobe.layers import LayerSpec, is_auto, is_sweep, resolve_auto_candidates, resolve_layers
from fastprobe.model import register_model_cache
from fastprobe.pooling import PoolingSpec, reduce_scores, resolve_pooling_spec
from fastprobe.profiling import profiled, section

__all__ = ["LayerSweepResult", "LinearProbe", "Probe"]

TASKS = ("classification", "regression")
NORMALIZE_LAYERS = (True, False, "per_neuron", "per_layer")
PREPROCESSING_STEPS = ("standard", "standard_scaler", "pca", "pca:N")
PROBE_BACKENDS = ("local", "nnsight")
COMPUTE_BACKENDS = ("sklearn", "auto")
_RUST = (LogisticProbe, RidgeProbe, RidgeClassifierProbe, MassMeanProbe)
_FITTED = (
    "classifier_",
    "classes_",
    "scaler_",
    "preprocessing_pipeline_",
    "mass_mean_direction_",
    "layers_",
    "n_features_in_",
    "model_fingerprint_",
    "selected_layers_",
    "candidate_layers_",
    "layer_importances_",
)
#: Metrics of :meth:`Probe.compute_layer_importance`.
IMPORTANCE_METRICS = ("l2", "l1", "mean_abs", "max_abs")


# ---------------------------------------------------------------------------------------------- model context


@dataclass
class _Context:
    """A loaded model with its fingerprint and its activation store."""

    loaded: Any
    fingerprint: dict[str, Any]
    store: Any


_FINGERPRINTS: dict[int, tuple[Any, dict[str, Any]]] = register_model_cache({})


def _context(
    model: Any, device: str, dtype: str | None, backend: str, remote: bool, revision: str | None = None
) -> _Context:
    from fastprobe.extraction import load_model, model_fingerprint
    from fastprobe.store import model_store

    loaded = load_model(model, device=device, dtype=dtype, backend=backend, remote=remote, revision=revision)
    memo = _FINGERPRINTS.get(id(loaded))
    if memo is None or memo[0] is not loaded:
        memo = (loaded, model_fingerprint(loaded))
        _FINGERPRINTS[id(loaded)] = memo
    return _Context(loaded, memo[1], model_store(memo[1]))


def _identity(fp: dict[str, Any]) -> tuple[Any, ...]:
    """Return what must match for a probe to apply to a model: architecture, weights (or name), vocabulary."""
    weights = fp.get("weights") or fp.get("model")
    return fp.get("architecture"), weights, fp.get("tokenizer", {}).get("vocab_size")


def _extract(
    ctx: _Context,
    prompts: Sequence[str],
    layers: Sequence[int],
    batch_size: int,
    retries: int,
    poolings: Sequence[str] | None = None,
    overwrite: bool = False,
) -> None:
    """Put the prompts' activations at ``layers`` into the store (a no-op for what is there), retrying remote runs.

    ``poolings``: what the caller will read (:func:`_reads`; None: the three pooled vectors). A pooling that reads
    tokens (``"all"``) keeps every token; otherwise the cache stores pooled vectors only, unless
    :func:`~fastprobe.store.set_cache_tokens` asks for every token always. A stored record that does not serve the
    reads (a pulled dataset's last-token-only record, for a mean) counts as missing.
    """
    from fastprobe.extraction import extract_to_store
    from fastprobe.store import cache_keeps_tokens, required_content

    keep = cache_keeps_tokens(required_content(poolings) == "tokens")
    attempt = 0
    while True:
        try:
            extract_to_store(
                ctx.loaded,
                prompts,
                list(layers),
                ctx.store,
                batch_size=batch_size,
                overwrite=overwrite,
                keep_tokens=keep,
                poolings=poolings,
            )
            return
        except FastprobeError:
            raise
        except Exception as err:  # a remote run failed: what completed is stored, so a retry resumes
            if not ctx.loaded.remote or attempt >= retries:
                raise
            attempt += 1
            delay = 2.0 ** (attempt - 1)
            warnings.warn(
                f"remote extraction failed ({type(err).__name__}: {err}); retry {attempt} of {retries} in {delay:g} s",
                RuntimeWarning,
                stacklevel=3,
            )
            time.sleep(delay)


# ---------------------------------------------------------------------------------------------- inputs


def _pyplot() -> Any:
    """Matplotlib's pyplot (the optional ``plot`` extra), or a clear error."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a dev dependency
        raise ImportError("plots need matplotlib: pip install 'fastprobe[plot]'") from None
    return plt


def _reads(*poolings: str | PoolingSpec) -> list[str]:
    """Return what a store read with each pooling (a training pooling's name or a parsed spec) takes from a record.

    That is the stored pooled vector's name, or ``"all"`` for a pooling that reads tokens: the ``poolings`` argument
    of :func:`_extract`.
    """
    out = []
    for p in poolings:
        if isinstance(p, str):
            out.append(p if p in ("last_token", "mean", "first_token") else "all")
        else:
            out.append("all" if p.needs_tokens else p.base)
    return out


def _check_prompts(prompts: Any, what: str) -> list[str]:
    if isinstance(prompts, str) or prompts is None:
        raise InvalidInputError(f"{what} must be a list of strings, not {type(prompts).__name__}")
    out = list(prompts)
    for i, p in enumerate(out):
        if not isinstance(p, str):
            raise InvalidInputError(f"{what}[{i}] must be a string; got {type(p).__name__} {p!r}")
    return out


def _training_data(
    first: Any, second: Any, sample_weight: Any = None, *, classification: bool = True
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """``fit(positive, negative)`` or ``fit(prompts, labels)`` -> (prompts, labels, weights), checked."""
    if second is None:
        raise InvalidInputError(
            "fit() requires two arguments: negative prompts (fit(positive, negative)) or one label per prompt "
            "(fit(prompts, labels)); the second one is missing (None)"
        )
    prompts = _check_prompts(first, "the prompts")
    if _looks_like_labels(second):
        y = _as_array(second)
        if y.ndim != 1:
            raise ShapeMismatchError(f"labels must be 1-D (one per prompt); got shape {y.shape}")
        if len(y) != len(prompts):
            raise ShapeMismatchError(f"got {len(prompts)} prompts but {len(y)} labels; give one label per prompt")
    else:
        negatives = _check_prompts(second, "the negative prompts")
        y = np.concatenate([np.ones(len(prompts), dtype=np.int64), np.zeros(len(negatives), dtype=np.int64)])
        prompts = prompts + negatives
    if not prompts:
        raise InvalidInputError("no training prompts were given")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise InvalidInputError("labels contain NaN or infinity")
    if classification:
        classes = np.unique(y)
        if len(classes) < 2:
            raise InvalidInputError(
                f"training data has a single class ({classes.tolist()}); a classifier needs at least two"
            )
    w = None
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape != (len(prompts),):
            raise ShapeMismatchError(
                f"sample_weight length must match the training prompts: expected shape ({len(prompts)},), got {w.shape}"
            )
    return prompts, y, w


def _fit_scaler(X: np.ndarray, n_layers: int, mode: str) -> Any:
    """Fit a probe's feature scaler, as lmprobe builds it.

    One layer: scikit-learn's ``StandardScaler`` (a single layer is always standardized). Several: a
    :class:`~fastprobe.scaling.PerLayerScaler` (Rust kernels) per neuron or per layer block.
    """
    from sklearn.preprocessing import StandardScaler

    from fastprobe.scaling import PerLayerScaler

    if n_layers == 1:
        return StandardScaler().fit(X)
    return PerLayerScaler(n_layers, X.shape[1] // n_layers, strategy=mode).fit(X)


def _standard_scaler_from(fitted: LayerScaler, n_samples: int) -> Any:
    """Express a fitted one-block :class:`LayerScaler` (the Rust sweep's) as the ``StandardScaler`` it equals.

    ``var_`` is ``scale_ ** 2``: a feature of zero variance, whose scale the fit set to 1, reports a variance of 1.
    """
    from sklearn.preprocessing import StandardScaler

    out = StandardScaler()
    out.mean_ = np.asarray(fitted.mean_, dtype=np.float64)
    out.scale_ = np.asarray(fitted.scale_, dtype=np.float64)
    out.var_ = out.scale_**2
    out.n_features_in_ = int(fitted.n_features_in_)
    out.n_samples_seen_ = int(n_samples)
    return out


def _looks_like_labels(second: Any) -> bool:
    if second is None or isinstance(second, str):
        return False
    arr = _as_array(second)
    return arr.ndim >= 1 and arr.size > 0 and arr.dtype.kind in "biuf"


def _as_array(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _hash(prompts: Sequence[str], labels: np.ndarray) -> str:
    combined = "\n".join(sorted(list(prompts) + [str(v) for v in labels.tolist()]))
    return "sha256:" + hashlib.sha256(combined.encode()).hexdigest()


def _preprocessing_steps(preprocessing: Any, pca_components: int | None) -> list[tuple[str, Any]]:
    """Build the sklearn steps a ``preprocessing`` value names (unfitted)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    if preprocessing is None:
        return []
    if isinstance(preprocessing, str):
        names = preprocessing.split("+")
    elif isinstance(preprocessing, (list, tuple)):
        names = [s for item in preprocessing for s in str(item).split("+")]
    else:
        raise InvalidInputError(f"preprocessing must be a string or a list of strings; got {preprocessing!r}")
    steps: list[tuple[str, Any]] = []

    def add(kind: str, step: Any) -> None:  # lmprobe's step names, "scaler" and "pca"; "_2"... on a repeat
        count = sum(1 for name, _ in steps if name.split("_")[0] == kind)
        steps.append((kind if count == 0 else f"{kind}_{count + 1}", step))

    for raw in names:
        name = raw.strip()
        if name in ("standard", "standard_scaler"):
            add("scaler", StandardScaler())
        elif name == "pca":
            if pca_components is None:
                raise InvalidInputError(
                    "PCA requested but no component count: preprocessing 'pca' needs pca_components=N (or write "
                    "'pca:N')"
                )
            add("pca", PCA(n_components=pca_components))
        elif name.startswith("pca:"):
            try:
                n = int(name[4:])
            except ValueError:
                raise InvalidInputError(
                    f"malformed preprocessing step {name!r}; expected 'pca:N' with N an int"
                ) from None
            add("pca", PCA(n_components=n))
        else:
            raise UnknownOptionError(
                f"Unknown preprocessing step {name!r}; expected one of: {', '.join(PREPROCESSING_STEPS)} "
                "(joined with '+' or given as a list)"
            )
    return steps


# ---------------------------------------------------------------------------------------------- the probe


class Probe(BaseEstimator):
    """A linear probe on a language model's activations, with lmprobe's constructor and methods.

    Parameters
    ----------
    model : str or path-like, optional
        The model to probe, as transformers accepts it: a Hugging Face Hub id (``"org/name"``; read from the local
        Hugging Face cache when offline, ``HF_HUB_OFFLINE=1``, and downloaded into it otherwise; on NDIF with
        ``remote=True``) or a local directory. Only the ``*_from_activations`` methods work without one.
    layers : int, list of int, or str, default="middle"
        Layer ``i`` is block ``i``'s output (not the embeddings; the last layer is taken before the final norm).
        Negative indices count from the end. ``"middle"`` (the middle third), ``"last"``, ``"all"``; ``"sweep"``,
        ``"sweep:K"`` (every K-th layer) and ``"sweep:A-B"`` (layers A to B) fit one probe per layer (see
        :meth:`evaluate`). ``"auto"`` selects layers among ``auto_candidates`` with a group lasso (the blocks it keeps
        non-zero), ``"fast_auto"`` keeps the ``fast_auto_top_k`` candidates with the largest coefficient norm; the
        probe is then refitted on the selected layers. Several layers' features are concatenated in ascending layer
        order.
    pooling : str, default="last_token"
        How tokens become one score per prompt, for training and inference unless overridden: ``last_token``,
        ``first_token``, ``mean`` (pool activations), ``max``, ``min`` (classify every token, then reduce the
        scores), ``all`` (every token is a training row; per-token scores at inference), or a staged name
        (``"activation:max"``, ``"score:mean"``). Padding never counts.
    train_pooling, inference_pooling : str, optional
        Overrides of ``pooling`` for training (``last_token``, ``first_token``, ``mean`` or ``all``) and for
        inference (any pooling).
    classifier : str or estimator, default="logistic_regression"
        A name from :data:`fastprobe.classifiers.CLASSIFIERS` or any scikit-learn estimator (cloned). Logistic
        regression, ridge, mass-mean, LDA and the ensemble run on fastprobe's Rust solvers.
    task : {"classification", "regression"}, default="classification"
        For regression the default classifier is ridge regression (``alpha=1``) and :meth:`score` is R^2.
    device : str, default="auto"
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    remote : bool, default=False
        Run the model on NDIF through nnsight (``backend="nnsight"``; needs ``NDIF_API_KEY``).
    random_state : int, optional
        Seed for the estimators that take one.
    batch_size : int, default=8
        Prompts per forward pass.
    auto_candidates : list of float or int, optional
        Candidate layers of ``layers="auto"`` / ``"fast_auto"``: fractions of the depth (all floats in [0, 1]) or
        layer indices. None: 0.25, 0.5 and 0.75 of the depth.
    auto_alpha : float, default=0.01
        Group-lasso penalty of ``layers="auto"``; larger keeps fewer layers.
    fast_auto_top_k : int, optional
        Layers kept by ``layers="fast_auto"`` (None: half the candidates, at least one).
    normalize_layers : {True, "per_neuron", "per_layer", False}, default=True
        Standardization of several layers' features: per feature, per layer block, or none. A single layer is
        always standardized per feature.
    backend : {"local", "nnsight"}, default="local"
    dtype : {"float32", "float16", "bfloat16"}, optional
        The model's compute dtype (None: float32).
    max_retries : int, optional
        Retries of a failed remote extraction (None: 3), with exponential backoff; completed batches are kept.
    classifier_kwargs : dict, optional
        Options overriding the classifier's defaults.
    preprocessing : str or list of str, optional
        Steps after scaling: ``"standard"``, ``"pca"`` (needs ``pca_components``), ``"pca:N"``, joined by ``+`` or
        listed.
    pca_components : int, optional
    mass_mean_augment : bool, default=False
        Append the projection on the (scaled) class-mean difference as one extra feature.
    compute_backend : {"sklearn", "auto"}, default="sklearn"
        Accepted for compatibility; fastprobe's solvers serve both.
    revision : str, optional
        The Hub revision (branch, tag or commit) when ``model`` is a Hub id; None is the default branch. Activations
        are cached per resolved commit, so two revisions never share them.

    Attributes
    ----------
    classifier_ : estimator
        The fitted classifier (or regressor).
    classes_ : numpy.ndarray or None
        The class labels, sorted (None for regression).
    layers_ : list of int
        The layers in use, ascending.
    scaler_ : sklearn.preprocessing.StandardScaler, PerLayerScaler or None
        The fitted feature scaler: scikit-learn's ``StandardScaler`` for one layer, a
        :class:`~fastprobe.scaling.PerLayerScaler` for several (None with ``normalize_layers=False`` on several).
    preprocessing_pipeline_ : sklearn.pipeline.Pipeline or None
    mass_mean_direction_ : numpy.ndarray or None
    n_features_in_ : int
        Activation features (``len(layers_) * hidden_size``).
    sweep_result_ : LayerSweepResult or None
        Set by a sweep-mode fit.
    model_fingerprint_ : dict or None
        What identifies the model the probe was fitted on.
    selected_layers_ : list of int or None
        The layers automatic selection kept (``layers="auto"`` / ``"fast_auto"``).
    candidate_layers_ : list of int or None
        The layers ``layer_importances_`` refer to.
    layer_importances_ : numpy.ndarray or None
        Per-layer importance: group norms (``"auto"``), coefficient norms (``"fast_auto"``), or the last
        :meth:`compute_layer_importance`.

    Examples
    --------
    >>> from fastprobe import Probe
    >>> from fastprobe.testing import tiny_model
    >>> probe = Probe(model=tiny_model("llama"), layers=-1, random_state=0)
    >>> probe = probe.fit(["I saw Paris", "We like Paris"], ["I saw Tokyo", "We like Tokyo"])
    >>> probe.predict(["They love Paris", "They love Tokyo"]).tolist()
    [1, 0]
    """

    classifier_: Any
    classes_: Any
    layers_: list[int]
    scaler_: Any
    preprocessing_pipeline_: Any
    mass_mean_direction_: np.ndarray | None
    n_features_in_: int | None
    selected_layers_: list[int] | None
    candidate_layers_: list[int] | None
    layer_importances_: np.ndarray | None
    model_fingerprint_: dict[str, Any] | None
    sweep_result_: LayerSweepResult | None
    evaluation_results_: dict[str, Any]

    def __init__(
        self,
        model: Any = None,
        layers: LayerSpec = "middle",
        pooling: str = "last_token",
        train_pooling: str | None = None,
        inference_pooling: str | None = None,
        classifier: Any = "logistic_regression",
        task: str = "classification",
        device: str = "auto",
        remote: bool = False,
        random_state: int | None = None,
        batch_size: int = 8,
        auto_candidates: Any = None,
        auto_alpha: float = 0.01,
        normalize_layers: bool | str = True,
        fast_auto_top_k: int | None = None,
        backend: str = "local",
        dtype: str | None = None,
        max_retries: int | None = None,
        classifier_kwargs: dict[str, Any] | None = None,
        preprocessing: str | list[str] | None = None,
        pca_components: int | None = None,
        mass_mean_augment: bool = False,
        compute_backend: str = "sklearn",
        revision: str | None = None,
    ) -> None:
        self.model = model
        self.layers = layers
        self.pooling = pooling
        self.train_pooling = train_pooling
        self.inference_pooling = inference_pooling
        self.classifier = classifier
        self.task = task
        self.device = device
        self.remote = remote
        self.random_state = random_state
        self.batch_size = batch_size
        self.auto_candidates = auto_candidates
        self.auto_alpha = auto_alpha
        self.normalize_layers = normalize_layers
        self.fast_auto_top_k = fast_auto_top_k
        self.backend = backend
        self.dtype = dtype
        self.max_retries = max_retries
        self.classifier_kwargs = classifier_kwargs
        self.preprocessing = preprocessing
        self.pca_components = pca_components
        self.mass_mean_augment = mass_mean_augment
        self.compute_backend = compute_backend
        self.revision = revision
        self._check_params(construction=True)

    # ------------------------------------------------------------------ configuration

    def _check_params(self, *, construction: bool = False) -> tuple[str, PoolingSpec, Any]:
        """Validate the configuration; return (train pooling, inference pooling, unfitted classifier).

        The constructor checks what lmprobe's constructor checks (so its scripts fail where they failed); with
        ``construction=True`` the rest (``normalize_layers``, which lmprobe checks when fitting) waits for ``fit``.
        """
        if self.task not in TASKS:
            raise UnknownOptionError(f"Unknown task {self.task!r}; expected one of: {', '.join(TASKS)}")
        if not construction and (
            self.normalize_layers not in NORMALIZE_LAYERS
            or (isinstance(self.normalize_layers, int) and not isinstance(self.normalize_layers, bool))
        ):
            raise UnknownOptionError(
                f"Invalid normalize_layers {self.normalize_layers!r}; expected one of: True, 'per_neuron', "
                "'per_layer', False"
            )
        if self.backend not in PROBE_BACKENDS:
            extra = (
                " (fastprobe's local backend already stops after the deepest needed layer and streams activations "
                "to the store)"
                if self.backend in ("chunked", "disk_offload")
                else ""
            )
            raise UnknownOptionError(
                f"unknown backend {self.backend!r}; expected one of: {', '.join(PROBE_BACKENDS)}{extra}"
            )
        if self.remote and self.backend != "nnsight":
            raise InvalidInputError(
                f"backend={self.backend!r} does not support remote=True: remote runs go to NDIF through nnsight; "
                "pass backend='nnsight'"
            )
        check_dtype(self.dtype)
        if self.compute_backend not in COMPUTE_BACKENDS:
            raise UnknownOptionError(
                f"Unknown compute_backend {self.compute_backend!r}; expected one of: {', '.join(COMPUTE_BACKENDS)} "
                "(fastprobe's Rust solvers replace cuML)"
            )
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InvalidInputError(f"batch_size must be an integer >= 1; got {self.batch_size!r}")
        if not isinstance(self.layers, (int, np.integer, str, list, tuple, range)):
            raise InvalidInputError(f"layers must be an int, a list of ints or a string; got {self.layers!r}")
        if isinstance(self.layers, str) and not is_sweep(self.layers) and not is_auto(self.layers):
            resolve_layers(self.layers, 1 << 20)  # the names; indices are checked against the model
        if (
            isinstance(self.auto_alpha, bool)
            or not isinstance(self.auto_alpha, (int, float))
            or not (np.isfinite(self.auto_alpha) and self.auto_alpha >= 0)
        ):
            raise InvalidInputError(f"auto_alpha must be a finite number >= 0; got {self.auto_alpha!r}")
        top_k = self.fast_auto_top_k
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
            raise InvalidInputError(f"fast_auto_top_k must be None or an integer >= 1; got {top_k!r}")
        if self.mass_mean_augment and self.task == "regression":
            raise InvalidInputError("mass_mean_augment needs two classes; it does not apply to task='regression'")
        train, inference = resolve_pooling_spec(self.pooling, self.train_pooling, self.inference_pooling)
        _preprocessing_steps(self.preprocessing, self.pca_components)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            template = build_classifier(
                self.classifier,
                task=self.task,
                random_state=self.random_state,
                classifier_kwargs=self.classifier_kwargs,
            )
        return train, inference, template

    def _ctx(self, remote: bool | None = None) -> _Context:
        self._require_model()
        return _context(
            self.model,
            self.device,
            self.dtype,
            self.backend,
            bool(self.remote if remote is None else remote),
            getattr(self, "revision", None),  # None for probes unpickled from before it existed
        )

    def _require_model(self) -> None:
        if self.model is None:
            raise InvalidInputError(
                "No model specified: pass model=... to Probe to use prompts (or use the *_from_activations methods "
                "with precomputed features)"
            )

    def _retries(self, max_retries: int | None = None) -> int:
        value = max_retries if max_retries is not None else self.max_retries
        return 3 if value is None else int(value)

    # ------------------------------------------------------------------ training data

    def _training_data(
        self, first: Any, second: Any, sample_weight: Any
    ) -> tuple[list[str], np.ndarray, np.ndarray | None]:
        return _training_data(first, second, sample_weight, classification=self.task == "classification")

    # ------------------------------------------------------------------ fitting on features

    def _fit_matrix(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None, n_layers: int, template: Any) -> None:
        """Scale, preprocess, augment and fit on a feature matrix (rows: prompts or tokens)."""
        from sklearn.pipeline import Pipeline

        if len(X) != len(y):
            raise ShapeMismatchError(f"got {len(X)} rows of activations but {len(y)} labels")
        if X.shape[1] % n_layers:
            raise ShapeMismatchError(f"{X.shape[1]} features cannot be split into {n_layers} equal layer blocks")
        steps = _preprocessing_steps(self.preprocessing, self.pca_components)
        mode = "per_layer" if self.normalize_layers == "per_layer" else "per_neuron"
        scale = n_layers == 1 or self.normalize_layers is not False
        if self.normalize_layers is not False and any(name.startswith("scaler") for name, _ in steps):
            warnings.warn(
                "normalize_layers auto-disabled: preprocessing includes StandardScaler, which standardizes every "
                "feature, so the per-layer scaling (normalize_layers) is skipped (a single layer is standardized "
                "either way); set normalize_layers=False to silence this warning",
                UserWarning,
                stacklevel=3,
            )
            scale = n_layers == 1
        with section("scale"):
            self.scaler_ = _fit_scaler(X, n_layers, mode) if scale else None
            Xs = self.scaler_.transform(X) if self.scaler_ is not None else np.asarray(X, dtype=np.float32)
        self.mass_mean_direction_ = None
        if self.mass_mean_augment:
            classes = np.unique(y)
            if len(classes) != 2:
                raise InvalidInputError(f"mass_mean_augment needs exactly two classes; got {len(classes)}")
            diff = Xs[y == classes[1]].mean(axis=0, dtype=np.float64) - Xs[y == classes[0]].mean(
                axis=0, dtype=np.float64
            )
            norm = float(np.linalg.norm(diff))
            self.mass_mean_direction_ = diff / norm if norm > 0 else diff
        self.preprocessing_pipeline_ = Pipeline(steps) if steps else None
        with section("preprocess"):
            Xp = self.preprocessing_pipeline_.fit_transform(Xs) if self.preprocessing_pipeline_ is not None else Xs
        if self.mass_mean_direction_ is not None:
            Xp = np.column_stack([Xp, Xs @ self.mass_mean_direction_])
        if self.task == "regression":
            y = y.astype(np.float64)
        try:
            with section("fit"):
                clf = template.fit(Xp, y) if w is None else template.fit(Xp, y, sample_weight=w)
        except TypeError as err:
            if w is not None and "sample_weight" in str(err):
                raise InvalidInputError(f"{type(template).__name__} does not accept sample_weight") from err
            raise
        self.classifier_ = clf
        self.classes_ = np.asarray(clf.classes_) if self.task == "classification" else None
        self.n_features_in_ = int(X.shape[1])
        self._n_blocks = n_layers

    def _transform(self, X: np.ndarray) -> np.ndarray:
        if getattr(self, "n_features_in_", None) is not None and X.shape[1] != self.n_features_in_:
            raise ShapeMismatchError(f"X has {X.shape[1]} features, but the probe was fitted on {self.n_features_in_}")
        with section("transform"):
            Xs = self.scaler_.transform(X) if self.scaler_ is not None else np.asarray(X, dtype=np.float32)
            Xp = self.preprocessing_pipeline_.transform(Xs) if self.preprocessing_pipeline_ is not None else Xs
            if self.mass_mean_direction_ is not None:
                Xp = np.column_stack([Xp, Xs @ self.mass_mean_direction_])
            return np.asarray(Xp)

    # ------------------------------------------------------------------ fitting

    @profiled("fit")
    def fit(
        self,
        positive_prompts: Sequence[str],
        negative_prompts: Any = None,
        remote: bool | None = None,
        invalidate_cache: bool = False,
        max_retries: int | None = None,
        batch_size: int | None = None,
        sample_weight: Any = None,
    ) -> Probe:
        """Train the probe.

        Two forms: ``fit(positive_prompts, negative_prompts)`` (labels 1 and 0) and ``fit(prompts, labels)`` with one
        number per prompt (ints, bools or floats; float targets for ``task="regression"``).

        Parameters
        ----------
        positive_prompts : sequence of str
            Positive prompts, or every prompt in the labels form.
        negative_prompts : sequence of str or array-like of numbers
        remote : bool, optional
            Override ``remote`` for this call.
        invalidate_cache : bool, default=False
            Drop these prompts' cached activations first and extract them again.
        max_retries : int, optional
            Override ``max_retries`` for this call.
        batch_size : int, optional
            Override ``batch_size`` for this call.
        sample_weight : array-like of shape (n_prompts,), optional

        Returns
        -------
        Probe
            ``self``, fitted.

        Raises
        ------
        InvalidInputError
            For no training data, a single class, NaN labels, or a missing model.
        ShapeMismatchError
            If the labels (or weights) are not one per prompt.
        """
        from fastprobe.store import evict

        train, spec, template = self._check_params()
        self._require_model()
        prompts, y, w = self._training_data(positive_prompts, negative_prompts, sample_weight)
        with section("extract_and_pool"):
            ctx = self._ctx(remote)
        bs = batch_size or self.batch_size
        if is_sweep(self.layers):
            layers = resolve_layers(self.layers, ctx.loaded.n_layers)
            result = _sweep(self, ctx, prompts, y, w, layers, bs, self._retries(max_retries), invalidate_cache)
            self.sweep_result_ = result
            self._adopt(result.probes[result.layers[0]])
            return self
        self.sweep_result_ = None
        layers = self._layers_to_extract(ctx.loaded.n_layers)
        with section("extract_and_pool"):
            _extract(ctx, prompts, layers, bs, self._retries(max_retries), _reads(train, spec), invalidate_cache)
            X, y_rows, w_rows = _train_rows(ctx, prompts, layers, train, y, w)
        if is_auto(self.layers):
            X, layers = self._select_layers(X, y_rows, w_rows, layers, template)
        else:
            self.selected_layers_ = self.candidate_layers_ = self.layer_importances_ = None
        self.layers_ = layers
        self._fit_matrix(X, y_rows, w_rows, len(self.layers_), template)
        self.model_fingerprint_ = ctx.fingerprint
        evict()
        return self

    def _layers_to_extract(self, n_layers: int) -> list[int]:
        """Return the configured layers; for automatic selection, its candidates."""
        if not is_auto(self.layers):
            return resolve_layers(self.layers, n_layers)
        candidates = resolve_auto_candidates(self.auto_candidates, n_layers)
        if self.layers == "auto" and len(candidates) < 2:
            raise InvalidInputError(
                f"layers='auto' selects among candidate layers and needs at least two; auto_candidates="
                f"{self.auto_candidates!r} gives {candidates} on a model with {n_layers} layers"
            )
        return candidates

    def _select_layers(
        self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None, candidates: list[int], template: Any
    ) -> tuple[np.ndarray, list[int]]:
        """Choose layers among the candidates (``layers="auto"`` or ``"fast_auto"``); return their columns and indices.

        ``auto``: group-lasso logistic regression (one group per candidate layer, on the layer-scaled features, in
        Rust), keeping the layers whose coefficient block is not zero; ``layer_importances_`` are the block norms.
        ``fast_auto``: the probe's own classifier on every candidate, keeping the ``fast_auto_top_k`` layers (default
        half, at least one) with the largest coefficient norm; ``layer_importances_`` are those norms.
        """
        from sklearn.base import clone

        from fastprobe.estimators import GroupLassoProbe

        n = len(candidates)
        self.candidate_layers_ = list(candidates)
        if self.layers == "auto":
            if self.task == "regression" or len(np.unique(y)) != 2:
                raise InvalidInputError(
                    "layers='auto' selects layers with a group-lasso logistic regression, which needs two classes; "
                    "use layers='fast_auto' (or a sweep) for regression or more classes"
                )
            mode = "per_layer" if self.normalize_layers == "per_layer" else "per_neuron"
            Xs = LayerScaler(n, mode=mode).fit_transform(X) if self.normalize_layers is not False else X
            lasso = GroupLassoProbe(alpha=float(self.auto_alpha), n_groups=n).fit(Xs, y, sample_weight=w)
            importances = np.asarray(lasso.group_norms_, dtype=np.float64)
            chosen = [int(g) for g in lasso.selected_groups_]
            if not chosen:
                warnings.warn(
                    f"the group lasso kept no layer at auto_alpha={self.auto_alpha}; using every candidate layer "
                    f"{candidates} (lower auto_alpha to select among them)",
                    UserWarning,
                    stacklevel=3,
                )
                chosen = list(range(n))
        else:
            self.layers_ = list(candidates)
            self._fit_matrix(X, y, w, n, clone(template))
            importances = self.compute_layer_importance(metric="l2", normalize=False)
            k = min(int(self.fast_auto_top_k or max(1, n // 2)), n)
            chosen = sorted(int(g) for g in np.argsort(-importances, kind="stable")[:k])
        self.layer_importances_ = importances
        self.selected_layers_ = [candidates[g] for g in chosen]
        h = X.shape[1] // n
        columns = np.concatenate([np.arange(g * h, (g + 1) * h) for g in chosen])
        return np.ascontiguousarray(X[:, columns]), self.selected_layers_

    def _layer_blocks(self) -> list[int]:
        """Return the layers of the feature blocks: ``layers_``, else block numbers (``fit_from_activations``)."""
        return list(getattr(self, "layers_", None) or range(getattr(self, "_n_blocks", 1)))

    def compute_layer_importance(self, metric: str = "l2", normalize: bool = True) -> np.ndarray:
        """How much of the fitted classifier's weight falls on each layer.

        The classifier's coefficients (on the scaled features) are split into one equal block per layer of
        ``layers_`` (the mass-mean column of ``mass_mean_augment`` left out), and each block is reduced by ``metric``;
        for several coefficient rows (more than two classes) the rows' values are summed.

        Parameters
        ----------
        metric : {"l2", "l1", "mean_abs", "max_abs"}, default="l2"
            Block norm, sum of absolute values, their mean, or their maximum.
        normalize : bool, default=True
            Divide by the total so the importances sum to 1.

        Returns
        -------
        numpy.ndarray of shape (n_layers,)
            Also stored as ``layer_importances_``, with the layers in ``candidate_layers_``.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        InvalidInputError
            If the classifier has no coefficients (``coef_``), or they do not live in the layers' feature space
            (PCA preprocessing).
        """
        self._check_fitted()
        if metric not in IMPORTANCE_METRICS:
            raise UnknownOptionError(
                f"Unknown metric {metric!r} for layer importance; expected one of: {', '.join(IMPORTANCE_METRICS)}"
            )
        coef = getattr(self.classifier_, "coef_", None)
        if coef is None:
            raise UnsupportedMethodError(
                f"layer importance needs a linear classifier with coef_; {type(self.classifier_).__name__} has none"
            )
        if any(name.startswith("pca") for name, _ in _preprocessing_steps(self.preprocessing, self.pca_components)):
            raise InvalidInputError(
                "layer importance needs coefficients per feature; PCA preprocessing mixes the layers"
            )
        coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
        if self.mass_mean_direction_ is not None:
            coef = coef[:, :-1]
        layers = self._layer_blocks()
        if coef.shape[1] % len(layers):
            raise InvalidInputError(
                f"{coef.shape[1]} coefficients cannot be split into {len(layers)} equal layer blocks"
            )
        blocks = np.abs(coef).reshape(coef.shape[0], len(layers), -1)
        reduce = {
            "l2": lambda b: np.sqrt((b**2).sum(axis=-1)),
            "l1": lambda b: b.sum(axis=-1),
            "mean_abs": lambda b: b.mean(axis=-1),
            "max_abs": lambda b: b.max(axis=-1),
        }[metric]
        importance = reduce(blocks).sum(axis=0)
        if normalize and importance.sum() > 0:
            importance = importance / importance.sum()
        self.candidate_layers_ = layers
        self.layer_importances_ = importance
        return importance

    def steering_vectors(
        self, path: str | os.PathLike[str] | None = None, *, normalize: bool = True, target: Any = None
    ) -> dict[int, np.ndarray]:
        """Return the probe's direction in activation space, one vector per layer, for activation steering.

        The probe's score is linear in the raw activations (through the layer scaling, the ``standard`` and ``pca``
        preprocessing and the mass-mean column), so its gradient with respect to them is exact: split into one
        block per layer of ``layers_``, each block is where that layer's activation must move to raise the score of
        ``target``. Added to the residual stream at layer ``i`` (the output of decoder block ``i``, transformers'
        ``hidden_states[i + 1]``), a positive multiple pushes the model towards what the probe detects.

        Parameters
        ----------
        path : str or path-like, optional
            Also write the vectors to this safetensors file: one float32 tensor ``layer.{i}`` per layer, and metadata
            naming the model, the target class and what a layer index means.
        normalize : bool, default=True
            Unit vectors (each layer's block divided by its norm); False gives the raw gradient blocks.
        target : optional
            The class whose score the vectors raise: ``classes_[1]`` by default (binary); required beyond two classes.

        Returns
        -------
        dict of int to numpy.ndarray of shape (hidden_size,)

        Raises
        ------
        InvalidInputError
            If the classifier has no coefficients (``coef_``), or ``target`` is not a class.
        """
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import StandardScaler

        self._check_fitted()
        coef = getattr(self.classifier_, "coef_", None)
        if coef is None:
            raise InvalidInputError(
                f"a steering vector needs a linear classifier with coef_; {type(self.classifier_).__name__} has none"
            )
        coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
        classes = [] if self.classes_ is None else np.asarray(self.classes_).tolist()
        if coef.shape[0] == 1:
            if target is not None and (len(classes) != 2 or target != classes[1]):
                if len(classes) == 2 and target == classes[0]:
                    coef = -coef
                else:
                    raise InvalidInputError(f"target {target!r} is not one of the classes {classes}")
            w = coef[0]
        else:
            if target not in classes:
                raise InvalidInputError(f"this probe has {len(classes)} classes; pass target= one of {classes}")
            w = coef[classes.index(target)]
        if self.mass_mean_direction_ is not None:
            w, along = w[:-1], w[-1]
        pipeline = self.preprocessing_pipeline_
        for _, step in reversed(pipeline.steps if pipeline is not None else []):
            if isinstance(step, PCA):
                if step.whiten:
                    w = w / np.sqrt(step.explained_variance_)
                w = step.components_.T @ w
            elif isinstance(step, StandardScaler):
                w = w / step.scale_ if step.scale_ is not None else w
            else:  # pragma: no cover - _preprocessing_steps builds only these two
                raise InvalidInputError(f"cannot map a direction back through {type(step).__name__}")
        if self.mass_mean_direction_ is not None:
            w = w + along * self.mass_mean_direction_
        if self.scaler_ is not None:
            w = w / np.asarray(self.scaler_.scale_, dtype=np.float64)
        layers = self._layer_blocks()
        blocks = w.reshape(len(layers), -1)
        if normalize:
            norms = np.linalg.norm(blocks, axis=1, keepdims=True)
            blocks = blocks / np.where(norms > 0, norms, 1.0)
        vectors = {int(layer): blocks[i].copy() for i, layer in enumerate(layers)}
        if path is not None:
            from safetensors.numpy import save_file

            meta = {
                "format": "fastprobe-steering",
                "model": str((getattr(self, "model_fingerprint_", None) or {}).get("model", self.model)),
                "target": str(target if target is not None else (classes[1] if len(classes) == 2 else "")),
                "layers": "layer.{i}: added to the output of decoder block i (transformers hidden_states[i + 1])",
                "normalized": str(bool(normalize)),
            }
            save_file({f"layer.{k}": v.astype(np.float32) for k, v in vectors.items()}, os.fspath(path), metadata=meta)
        return vectors

    def plot_layer_importance(self, ax: Any = None) -> tuple[Any, Any]:
        """Bar chart of ``layer_importances_`` by layer (computing L2 importance first if needed).

        With automatic selection, the selected layers are drawn in a darker colour.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw; a new figure when None.

        Returns
        -------
        (matplotlib.figure.Figure, matplotlib.axes.Axes)
        """
        plt = _pyplot()
        if getattr(self, "layer_importances_", None) is None:
            self.compute_layer_importance()
        layers = list(self.candidate_layers_ or [])
        values = np.asarray(self.layer_importances_, dtype=np.float64)
        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(max(4.0, 0.35 * len(layers) + 2), 3.2))
        selected = set(getattr(self, "selected_layers_", None) or [])
        colours = ["#1f4e79" if layer in selected else "#7fa7cc" for layer in layers]
        ax.bar([str(layer) for layer in layers], values, color=colours)
        ax.set_xlabel("layer")
        ax.set_ylabel("importance")
        title = "layer importance" + (" (dark: selected)" if selected else "")
        ax.set_title(title)
        return fig, ax

    @profiled("fit_from_activations")
    def fit_from_activations(self, X: Any, y: Any, sample_weight: Any = None, n_layers: int = 1) -> Probe:
        """Train on precomputed pooled activations (the same scaling, preprocessing and classifier as :meth:`fit`).

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)
            Pooled activations; ``n_layers`` layers side by side.
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional
        n_layers : int, default=1
            How many equal layer blocks ``X`` holds (for per-layer scaling).

        Returns
        -------
        Probe
            ``self``, fitted.
        """
        from fastprobe._arrays import to_numpy

        _, _, template = self._check_params()
        Xa = to_numpy(X, dtype=np.float32, name="X", ndim=2)
        y = _as_array(y)
        if y.ndim != 1 or len(y) != len(Xa):
            raise ShapeMismatchError(f"got {len(Xa)} rows of activations but labels of shape {y.shape}")
        if self.task == "classification" and len(np.unique(y)) < 2:
            raise InvalidInputError(f"training data has a single class ({np.unique(y).tolist()})")
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if w is not None and w.shape != (len(Xa),):
            raise ShapeMismatchError(
                f"sample_weight length must match the rows of X: expected shape ({len(Xa)},), got {w.shape}"
            )
        if not isinstance(n_layers, int) or n_layers < 1:
            raise InvalidInputError(f"n_layers must be an integer >= 1; got {n_layers!r}")
        self._fit_matrix(Xa, y, w, n_layers, template)
        if not hasattr(self, "layers_"):
            self.layers_ = []
        self.model_fingerprint_ = getattr(self, "model_fingerprint_", None)
        self.sweep_result_ = getattr(self, "sweep_result_", None)
        return self

    def warmup(
        self,
        prompts: Sequence[str],
        remote: bool | None = None,
        max_retries: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        """Extract and cache the prompts' activations at the configured layers (all swept layers in sweep mode).

        Parameters
        ----------
        prompts : sequence of str
        remote, max_retries, batch_size
            Overrides for this call.
        """
        train, spec, _ = self._check_params()
        ctx = self._ctx(remote)
        layers = self._layers_to_extract(ctx.loaded.n_layers)
        prompts = _check_prompts(prompts, "prompts")
        bs = batch_size or self.batch_size
        _extract(ctx, prompts, layers, bs, self._retries(max_retries), _reads(train, spec))

    def _adopt(self, other: Probe) -> None:
        for name in _FITTED:
            setattr(self, name, getattr(other, name, None))

    # ------------------------------------------------------------------ inference

    def _check_fitted(self) -> None:
        if getattr(self, "classifier_", None) is None:
            raise NotFittedError(f"this {type(self).__name__} has not been fitted yet; call fit before using it")

    def _check_model(self, ctx: _Context) -> None:
        saved = getattr(self, "model_fingerprint_", None)
        if saved and _identity(saved) != _identity(ctx.fingerprint):
            raise InvalidInputError(
                f"this probe was fitted on model {saved.get('model')!r} ({saved.get('architecture')}, weights "
                f"{saved.get('weights')}), but {ctx.fingerprint.get('model')!r} is a different model "
                f"({ctx.fingerprint.get('architecture')}, weights {ctx.fingerprint.get('weights')}); fit a new probe "
                "for it"
            )

    def _inference_rows(
        self, prompts: Sequence[str], remote: bool | None, batch_size: int | None
    ) -> tuple[PoolingSpec, np.ndarray, np.ndarray | None]:
        """(inference pooling, features, token offsets or None) for the prompts."""
        self._check_fitted()
        _, spec, _ = self._check_params()
        prompts = _check_prompts(prompts, "prompts")
        if not prompts:
            raise InvalidInputError("prompts is empty; give at least one prompt")
        ctx = self._ctx(remote)
        self._check_model(ctx)
        if not self.layers_:
            self.layers_ = resolve_layers(self.layers, ctx.loaded.n_layers)
        with section("extract_and_pool"):
            bs = batch_size or self.batch_size
            _extract(ctx, prompts, self.layers_, bs, self._retries(), _reads(spec))
            if spec.stage == "activation":
                return spec, ctx.store.read_pooled(prompts, self.layers_, spec.base), None
            values, offsets = ctx.store.read_tokens(prompts, self.layers_)
        return spec, values, offsets

    def _require_proba(self) -> None:
        if self.task == "regression":
            raise InvalidInputError("predict_proba is for classification; this probe has task='regression'")
        if not hasattr(self.classifier_, "predict_proba"):
            raise UnsupportedMethodError(
                f"the classifier {type(self.classifier_).__name__} does not support predict_proba; use predict, or a "
                "classifier with probabilities (e.g. 'logistic_regression')"
            )

    def _proba(self, spec: PoolingSpec, X: np.ndarray, offsets: np.ndarray | None) -> np.ndarray:
        Xt = self._transform(X)
        with section("predict"):
            proba = np.asarray(self.classifier_.predict_proba(Xt), dtype=np.float64)
        if offsets is None:
            return proba
        if spec.stage == "tokens":
            return _pad(proba, offsets)
        if proba.shape[1] == 2:
            p1 = reduce_scores(proba[:, 1], offsets, spec.base)
            return np.column_stack([1.0 - p1, p1])
        reduced = reduce_scores(proba, offsets, spec.base)
        return reduced / reduced.sum(axis=1, keepdims=True)

    def _labels(self, spec: PoolingSpec, X: np.ndarray, offsets: np.ndarray | None) -> np.ndarray:
        """One prediction per prompt (for ``"all"``: the class with the highest mean token probability)."""
        clf = self.classifier_
        if self.task == "regression":
            Xt = self._transform(X)
            with section("predict"):
                values = np.asarray(clf.predict(Xt), dtype=np.float64)
            if offsets is None:
                return values
            return reduce_scores(values, offsets, "mean" if spec.stage == "tokens" else spec.base)
        if offsets is None:
            Xt = self._transform(X)
            with section("predict"):
                if hasattr(clf, "predict_proba"):
                    return np.asarray(self.classes_[np.argmax(clf.predict_proba(Xt), axis=1)])
                return np.asarray(clf.predict(Xt))
        method = "mean" if spec.stage == "tokens" else spec.base
        if hasattr(clf, "predict_proba"):
            proba = self._proba(PoolingSpec(method, "score"), X, offsets)
            return np.asarray(self.classes_[np.argmax(proba, axis=1)])
        scores = np.asarray(clf.decision_function(self._transform(X)), dtype=np.float64)
        reduced = reduce_scores(scores, offsets, method)
        idx = (reduced > 0).astype(int) if reduced.ndim == 1 else np.argmax(reduced, axis=1)
        return np.asarray(self.classes_[idx])

    @profiled("predict_proba")
    def predict_proba(
        self, prompts: Sequence[str], remote: bool | None = None, batch_size: int | None = None
    ) -> np.ndarray:
        """Class probabilities of each prompt.

        Parameters
        ----------
        prompts : sequence of str
        remote, batch_size
            Overrides for this call.

        Returns
        -------
        numpy.ndarray
            ``(n_prompts, n_classes)``, columns in ``classes_`` order. With ``inference_pooling="all"``:
            ``(n_prompts, max_tokens, n_classes)``, token ``t`` of prompt ``i`` at ``[i, t]`` (the first real token at
            0) and NaN past each prompt's end. Score poolings (``max``, ``min``, ``score:*``) reduce the positive
            class's per-token probability (every class's, renormalized, beyond two classes).

        Raises
        ------
        InvalidInputError
            For regression, or a classifier without ``predict_proba``.
        NotFittedError
            Before :meth:`fit`.
        """
        self._check_fitted()
        self._require_proba()
        return self._proba(*self._inference_rows(prompts, remote, batch_size))

    @profiled("predict")
    def predict(self, prompts: Sequence[str], remote: bool | None = None, batch_size: int | None = None) -> np.ndarray:
        """Predict the class (or value, for regression) of each prompt.

        Parameters
        ----------
        prompts : sequence of str
        remote, batch_size
            Overrides for this call.

        Returns
        -------
        numpy.ndarray of shape (n_prompts,)
            With ``inference_pooling="all"``, the class with the highest mean probability over the prompt's tokens.
        """
        self._check_fitted()
        return self._labels(*self._inference_rows(prompts, remote, batch_size))

    def score(
        self, prompts: Sequence[str], labels: Any, remote: bool | None = None, batch_size: int | None = None
    ) -> float:
        """Accuracy (classification) or R^2 (regression) on labelled prompts.

        Parameters
        ----------
        prompts : sequence of str
        labels : array-like of shape (n_prompts,)
        remote, batch_size
            Overrides for this call.

        Returns
        -------
        float
        """
        y = self._check_labels(prompts, labels)
        return self._score(self.predict(prompts, remote=remote, batch_size=batch_size), y)

    def _check_labels(self, prompts: Sequence[str], labels: Any) -> np.ndarray:
        y = _as_array(labels)
        if y.ndim != 1 or len(y) != len(prompts):
            raise ShapeMismatchError(f"got {len(prompts)} prompts but labels of shape {y.shape}; give one per prompt")
        return y

    def _score(self, pred: np.ndarray, y: np.ndarray) -> float:
        if self.task == "regression":
            from sklearn.metrics import r2_score

            return float(r2_score(y, pred))
        return float(np.mean(pred == y))

    @profiled("evaluate")
    def evaluate(
        self,
        prompts: Sequence[str],
        labels: Any,
        remote: bool | None = None,
        batch_size: int | None = None,
        *,
        control_prompts: Sequence[str] | None = None,
        target_fpr: float = 0.01,
        confidence: float = 0.95,
        n_bootstrap: int = 1000,
    ) -> dict[str, Any]:
        """Metrics on labelled prompts, from one read of their activations.

        Classification: ``accuracy``, ``f1``, ``precision``, ``recall`` (of ``classes_[1]`` for two classes, macro
        averages beyond), ``auroc`` (when the classifier has probabilities and both classes occur). Regression:
        ``r2``, ``mse``, ``mae``. Always ``n_eval`` and ``eval_hash`` (SHA-256 of the sorted prompts and labels,
        lmprobe's formula). In sweep mode: ``layer_results`` (the metrics of every layer), ``best_layer`` and
        ``best_accuracy`` (R^2 for regression) plus the best layer's metrics, and the probe switches to that layer.

        With probabilities, also (see :mod:`fastprobe.metrics`): ``accuracy_ci`` and, for two classes, ``auroc_ci``
        (percentile bootstrap intervals at ``confidence`` over ``n_bootstrap`` resamples, seeded by ``random_state``
        or else by the data, so a call is reproducible), and ``ece`` (expected calibration error, 10 bins). With
        ``control_prompts`` (benign examples, all negatives) and two classes: ``threshold``, the lowest
        positive-class probability that flags at most ``target_fpr`` of the control set, ``control_fpr`` (what it
        flags there), and on the evaluated prompts ``tpr_at_threshold`` and ``fpr_at_threshold``: how a monitor
        tuned to that false-positive budget would do.

        Parameters
        ----------
        prompts : sequence of str
        labels : array-like of shape (n_prompts,)
        remote, batch_size
            Overrides for this call.
        control_prompts : sequence of str, optional
        target_fpr : float, default=0.01
        confidence : float, default=0.95
        n_bootstrap : int, default=1000
            0 leaves the intervals out.

        Returns
        -------
        dict
        """
        self._check_fitted()
        y = self._check_labels(prompts, labels)
        options: dict[str, Any] = {
            "control_prompts": control_prompts,
            "target_fpr": target_fpr,
            "confidence": confidence,
            "n_bootstrap": n_bootstrap,
        }
        sweep = getattr(self, "sweep_result_", None)
        if sweep is not None:
            layer_results = sweep.evaluate(prompts, y, remote=remote, batch_size=batch_size, **options)
            key = "r2" if self.task == "regression" else "accuracy"
            best = max(sweep.layers, key=lambda layer: layer_results[layer][key])
            self._adopt(sweep.probes[best])
            results: dict[str, Any] = {
                "layer_results": layer_results,
                "best_layer": best,
                "best_accuracy": layer_results[best][key],
                **layer_results[best],
            }
            self.evaluation_results_ = results
            return results
        spec, X, offsets = self._inference_rows(prompts, remote, batch_size)
        results, proba = _metrics(self, spec, X, offsets, y)
        results["n_eval"] = len(prompts)
        results["eval_hash"] = _hash(prompts, y)
        results.update(self._monitor_metrics(spec, proba, y, results["eval_hash"], remote, batch_size, **options))
        self.evaluation_results_ = results
        return results

    def _monitor_metrics(
        self,
        spec: PoolingSpec,
        proba: np.ndarray | None,
        y: np.ndarray,
        eval_hash: str,
        remote: bool | None,
        batch_size: int | None,
        *,
        control_prompts: Sequence[str] | None,
        target_fpr: float,
        confidence: float,
        n_bootstrap: int,
    ) -> dict[str, Any]:
        """Compute the intervals, calibration and control-set threshold of :meth:`evaluate`.

        ``proba`` is the evaluated prompts' class probabilities (None without them).
        """
        from fastprobe import metrics

        if proba is None:
            if control_prompts is not None:
                raise InvalidInputError("control_prompts need a classifier with probabilities (predict_proba)")
            return {}
        if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
            raise InvalidInputError(f"n_bootstrap must be an integer >= 0 (0: no intervals); got {n_bootstrap!r}")
        classes = self.classes_
        pred = classes[np.argmax(proba, axis=1)]
        out: dict[str, Any] = {"ece": metrics.expected_calibration_error(y, proba, classes)}
        binary = len(classes) == 2
        if n_bootstrap:
            seed = self.random_state if self.random_state is not None else int(eval_hash[7:23], 16)
            rng = np.random.default_rng(seed)
            kw: dict[str, Any] = {"confidence": confidence, "n_resamples": n_bootstrap, "random_state": rng}
            out["accuracy_ci"] = metrics.accuracy_ci(y, pred, **kw)
            if binary and len(np.unique(y == classes[1])) == 2:
                out["auroc_ci"] = metrics.auroc_ci(y == classes[1], proba[:, 1], **kw)
        if control_prompts is not None:
            if not binary:
                raise InvalidInputError(f"control_prompts need two classes; this probe has {len(classes)}")
            _, Xc, oc = self._inference_rows(_check_prompts(control_prompts, "control_prompts"), remote, batch_size)
            threshold, control_fpr = metrics.threshold_at_fpr(self._proba(_proba_spec(spec), Xc, oc)[:, 1], target_fpr)
            flagged = proba[:, 1] > threshold
            positive = y == classes[1]
            out |= {
                "target_fpr": float(target_fpr),
                "threshold": threshold,
                "control_fpr": control_fpr,
                "tpr_at_threshold": float(flagged[positive].mean()) if positive.any() else float("nan"),
                "fpr_at_threshold": float(flagged[~positive].mean()) if (~positive).any() else float("nan"),
            }
        return out

    # ------------------------------------------------------------------ precomputed activations

    def _activations(self, X: Any) -> np.ndarray:
        from fastprobe._arrays import to_numpy

        self._check_fitted()
        return to_numpy(X, dtype=np.float32, name="X", ndim=2)

    @profiled("predict_from_activations")
    def predict_from_activations(self, X: Any) -> np.ndarray:
        """Predictions from precomputed pooled activations, shape (n_samples,)."""
        return self._labels(PoolingSpec("last_token", "activation"), self._activations(X), None)

    @profiled("predict_proba_from_activations")
    def predict_proba_from_activations(self, X: Any) -> np.ndarray:
        """Class probabilities from precomputed pooled activations, shape (n_samples, n_classes)."""
        X = self._activations(X)
        self._require_proba()
        return self._proba(PoolingSpec("last_token", "activation"), X, None)

    def score_from_activations(self, X: Any, y: Any) -> float:
        """Accuracy (classification) or R^2 (regression) on precomputed pooled activations."""
        X = self._activations(X)
        y = _as_array(y)
        if len(y) != len(X):
            raise ShapeMismatchError(f"got {len(X)} rows of activations but {len(y)} labels")
        return self._score(self.predict_from_activations(X), y)

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Any) -> None:
        """Save the fitted probe to one file: arrays in safetensors, configuration and classes as JSON.

        Loading it never runs code, unless the classifier is a custom estimator class (from outside scikit-learn and
        fastprobe): that is stored as a pickle, and :meth:`load` then needs ``trust_pickle=True``. The file is written
        to a temporary name and renamed, so an interrupted save leaves any earlier file intact.

        Parameters
        ----------
        path : str or path-like
        """
        from fastprobe import _persist

        self._check_fitted()
        fitted = {name: getattr(self, name, None) for name in _FITTED}
        fitted["evaluation_results_"] = getattr(self, "evaluation_results_", None)
        doc, arrays, _ = _persist.encode({"version": 1, "params": self.get_params(deep=False), "fitted": fitted})
        _persist.write(path, doc, arrays)

    @classmethod
    def load(
        cls, path: str | Any, *, trust_pickle: bool = False, model: Any = None, revision: str | None = None
    ) -> Probe:
        """Load a probe saved by :meth:`save`, or by lmprobe (a pickle: needs ``trust_pickle=True``).

        Parameters
        ----------
        path : str or path-like
        trust_pickle : bool, default=False
            Allow unpickling: lmprobe's files, and fastprobe files holding a custom estimator. Unpickling can run
            arbitrary code; only allow it for files from a trusted source.
        model : str or path-like, optional
            Use this model instead of the saved one (say, the same model at a new path, or its Hub id). A model with
            different weights or architecture is refused when the probe first reads prompts.
        revision : str, optional
            The Hub revision of ``model`` (only with ``model``; the saved probe's own revision otherwise).

        Returns
        -------
        Probe

        Raises
        ------
        FastprobeError
            If the file is not a probe, or holds a pickle and ``trust_pickle`` is false.
        """
        from fastprobe import _persist

        kind, doc, arrays = _persist.read(path)
        if kind == "pickle":
            if not trust_pickle:
                raise _persist.PickleRefused(
                    f"{str(path)!r} is a pickle (lmprobe's save format), and unpickling can run arbitrary code; pass "
                    "trust_pickle=True to load it if you trust the file's source"
                )
            return cls._from_lmprobe(path, model, revision)
        tree = _persist.decode(doc, arrays, trust_pickle=trust_pickle)
        if not isinstance(tree, dict) or "params" not in tree:
            kind_name = tree.get("kind") if isinstance(tree, dict) else None
            hint = "; load it with ProbeEnsemble.load" if kind_name == "ProbeEnsemble" else ""
            raise FastprobeError(f"{str(path)!r} holds a {kind_name or 'different object'}, not a single probe{hint}")
        params = tree["params"]
        if model is not None:
            params["model"] = model
            params["revision"] = revision
        elif revision is not None:
            raise InvalidInputError("revision= goes with model=: pass the model it belongs to")
        probe = cls(**params)
        for name, value in tree["fitted"].items():
            setattr(probe, name, value)
        probe.sweep_result_ = None
        return probe

    @classmethod
    def _from_lmprobe(cls, path: Any, model: Any, revision: str | None = None) -> Probe:
        import pickle

        with open(path, "rb") as f:
            state = pickle.load(f)
        names = (
            "model layers pooling train_pooling inference_pooling classifier task device remote random_state "
            "batch_size auto_candidates auto_alpha normalize_layers fast_auto_top_k backend dtype "
            "mass_mean_augment preprocessing pca_components"
        ).split()
        params = {k: state[k] for k in names if k in state}
        if model is not None:
            params["model"] = model
            params["revision"] = revision
        layers = params.get("layers")
        selected = state.get("selected_layers_")
        if layers in ("auto", "fast_auto") or (isinstance(layers, str) and is_sweep(layers)):
            params["layers"] = sorted(selected) if selected else "middle"
        probe = cls(**params)
        probe.classifier_ = state["classifier_"]
        probe.classes_ = state.get("classes_")
        probe.scaler_ = state.get("scaler_")
        probe.preprocessing_pipeline_ = state.get("preprocessing_pipeline_")
        direction = state.get("_mass_mean_direction_")
        probe.mass_mean_direction_ = None if direction is None else np.asarray(direction, dtype=np.float64)
        probe.layers_ = sorted(selected) if selected else []
        scaler = probe.scaler_
        probe.n_features_in_ = getattr(scaler, "n_features_in_", None)
        probe.model_fingerprint_ = None
        probe.sweep_result_ = None
        probe.selected_layers_ = list(selected) if selected else None
        candidates = state.get("candidate_layers_")
        probe.candidate_layers_ = list(candidates) if candidates is not None else None
        importances = state.get("layer_importances_")
        probe.layer_importances_ = None if importances is None else np.asarray(importances, dtype=np.float64)
        return probe

    # ------------------------------------------------------------------ sweeps

    @classmethod
    def sweep_layers(
        cls,
        model: Any,
        positive_prompts: Sequence[str],
        negative_prompts: Any,
        layers: LayerSpec = "all",
        pooling: str = "last_token",
        classifier: Any = "logistic_regression",
        device: str = "auto",
        remote: bool = False,
        random_state: int | None = None,
        batch_size: int = 8,
        backend: str = "local",
        dtype: str | None = None,
        normalize_layers: bool | str = True,
        classifier_kwargs: dict[str, Any] | None = None,
        preprocessing: str | list[str] | None = None,
        pca_components: int | None = None,
        *,
        task: str = "classification",
        train_pooling: str | None = None,
        inference_pooling: str | None = None,
        mass_mean_augment: bool = False,
        sample_weight: Any = None,
        revision: str | None = None,
    ) -> LayerSweepResult:
        """Fit one single-layer probe per layer, from one extraction pass, the layers fitted in parallel.

        Every option reaches every per-layer probe (lmprobe drops ``task``, the pooling overrides and
        ``mass_mean_augment``). Logistic regression, ridge, mass-mean and LDA without preprocessing fit all layers
        in Rust, each worker reading its layer straight from the store.

        Parameters
        ----------
        model, positive_prompts, negative_prompts
            As for :class:`Probe` and :meth:`fit` (``negative_prompts`` may be labels).
        layers : int, list of int or str, default="all"
            Any layer specification, including ``"sweep:K"`` and ``"sweep:A-B"``.
        pooling, classifier, device, remote, random_state, batch_size, backend, dtype, normalize_layers,
        classifier_kwargs, preprocessing, pca_components, task, train_pooling, inference_pooling, mass_mean_augment,
        revision
            As for :class:`Probe`.
        sample_weight : array-like of shape (n_prompts,), optional

        Returns
        -------
        LayerSweepResult
        """
        config = cls(
            model=model,
            layers=0,
            pooling=pooling,
            train_pooling=train_pooling,
            inference_pooling=inference_pooling,
            classifier=classifier,
            task=task,
            device=device,
            remote=remote,
            random_state=random_state,
            batch_size=batch_size,
            normalize_layers=normalize_layers,
            backend=backend,
            dtype=dtype,
            classifier_kwargs=classifier_kwargs,
            preprocessing=preprocessing,
            pca_components=pca_components,
            mass_mean_augment=mass_mean_augment,
            revision=revision,
        )
        prompts, y, w = config._training_data(positive_prompts, negative_prompts, sample_weight)
        ctx = config._ctx()
        resolved = resolve_layers(layers, ctx.loaded.n_layers)
        return _sweep(config, ctx, prompts, y, w, resolved, batch_size, config._retries())


#: lmprobe's alias.
LinearProbe = Probe


# ---------------------------------------------------------------------------------------------- helpers


def _train_rows(
    ctx: _Context, prompts: list[str], layers: list[int], train: str, y: np.ndarray, w: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read the training matrix: one pooled row per prompt, or (``"all"``) one row per real token."""
    if train != "all":
        return ctx.store.read_pooled(prompts, layers, train), y, w
    values, offsets = ctx.store.read_tokens(prompts, layers)
    counts = np.diff(offsets)
    return values, np.repeat(y, counts), None if w is None else np.repeat(w, counts)


def _pad(rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-token rows to ``(n_prompts, max_tokens, k)``, NaN past each prompt's end."""
    counts = np.diff(offsets)
    out = np.full((len(counts), int(counts.max()), rows.shape[1]), np.nan)
    mask = np.arange(out.shape[1])[None, :] < counts[:, None]
    out[mask] = rows
    return out


def _proba_spec(spec: PoolingSpec) -> PoolingSpec:
    """Return the pooling that gives one probability row per prompt (``"all"`` averages its token scores)."""
    return PoolingSpec("mean", "score") if spec.stage == "tokens" else spec


def _metrics(
    probe: Probe, spec: PoolingSpec, X: np.ndarray, offsets: np.ndarray | None, y: np.ndarray
) -> tuple[dict[str, Any], np.ndarray | None]:
    """Point metrics of :meth:`Probe.evaluate`, and the per-prompt class probabilities (None without them)."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    if probe.task == "regression":
        pred = probe._labels(spec, X, offsets)
        scores = {
            "r2": float(r2_score(y, pred)),
            "mse": float(mean_squared_error(y, pred)),
            "mae": float(mean_absolute_error(y, pred)),
        }
        return scores, None
    classes = probe.classes_
    proba = None
    if hasattr(probe.classifier_, "predict_proba"):
        proba = probe._proba(_proba_spec(spec), X, offsets)
        pred = np.asarray(classes[np.argmax(proba, axis=1)])
    else:
        pred = probe._labels(spec, X, offsets)
    return classification_metrics(y, pred, proba, classes), proba


def classification_metrics(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: Any) -> dict[str, Any]:
    """Compute accuracy, f1, precision and recall, and the AUROC when there are probabilities.

    f1, precision and recall are those of ``classes[1]`` for two classes, macro averages beyond; the AUROC needs at
    least two classes in ``y``.
    """
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    binary = len(classes) == 2
    avg: dict[str, Any] = {"average": "binary", "pos_label": classes[1]} if binary else {"average": "macro"}
    out: dict[str, Any] = {
        "accuracy": float(accuracy_score(y, pred)),
        "f1": float(f1_score(y, pred, zero_division=0, **avg)),
        "precision": float(precision_score(y, pred, zero_division=0, **avg)),
        "recall": float(recall_score(y, pred, zero_division=0, **avg)),
    }
    if proba is not None and len(np.unique(y)) >= 2:
        if binary:
            out["auroc"] = float(roc_auc_score(y == classes[1], proba[:, 1]))
        elif set(np.unique(y).tolist()) <= set(np.asarray(classes).tolist()):
            out["auroc"] = float(roc_auc_score(y, proba, multi_class="ovr", labels=classes))
    return out


@dataclass
class LayerSweepResult:
    """One fitted single-layer probe per layer.

    Attributes
    ----------
    probes : dict of int to Probe
    metrics_ : dict of int to dict
        Every layer's metrics from the last :meth:`evaluate` (also run by :meth:`Probe.evaluate` in sweep mode);
        :meth:`table` and :meth:`plot` show them.
    """

    probes: dict[int, Probe] = field(default_factory=dict)
    metrics_: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def layers(self) -> list[int]:
        """The swept layers, ascending."""
        return sorted(self.probes)

    def __len__(self) -> int:
        return len(self.probes)

    def __getitem__(self, layer: int) -> Probe:
        return self.probes[layer]

    def _warm(self, prompts: Sequence[str], remote: bool | None = None, batch_size: int | None = None) -> None:
        """Extract every swept layer for the prompts in one pass."""
        first = self.probes[self.layers[0]]
        _, spec, _ = first._check_params()
        ctx = first._ctx(remote)
        prompts = _check_prompts(prompts, "prompts")
        bs = batch_size or first.batch_size
        _extract(ctx, prompts, self.layers, bs, first._retries(), _reads(spec))

    def score(self, prompts: Sequence[str], labels: Any) -> dict[int, float]:
        """Accuracy (R^2 for regression) of every layer's probe."""
        self._warm(prompts)
        return {layer: self.probes[layer].score(prompts, labels) for layer in self.layers}

    def best_layer(self, prompts: Sequence[str], labels: Any) -> int:
        """Return the layer with the highest score (the lowest such layer on ties)."""
        scores = self.score(prompts, labels)
        return max(self.layers, key=lambda layer: scores[layer])

    def predict(self, prompts: Sequence[str]) -> dict[int, np.ndarray]:
        """Every layer's predictions."""
        self._warm(prompts)
        return {layer: self.probes[layer].predict(prompts) for layer in self.layers}

    def predict_proba(self, prompts: Sequence[str]) -> dict[int, np.ndarray]:
        """Every layer's class probabilities."""
        self._warm(prompts)
        return {layer: self.probes[layer].predict_proba(prompts) for layer in self.layers}

    def evaluate(self, prompts: Sequence[str], labels: Any, **options: Any) -> dict[int, dict[str, Any]]:
        """Every layer's :meth:`Probe.evaluate` (the same options), after one extraction pass; kept in ``metrics_``.

        Parameters
        ----------
        prompts : sequence of str
        labels : array-like of shape (n_prompts,)
        **options
            ``remote``, ``batch_size``, ``control_prompts``, ``target_fpr``, ``confidence``, ``n_bootstrap``.

        Returns
        -------
        dict of int to dict
        """
        control = list(options.get("control_prompts") or [])
        self._warm(list(_check_prompts(prompts, "prompts")) + control, options.get("remote"), options.get("batch_size"))
        self.metrics_ = {layer: self.probes[layer].evaluate(prompts, labels, **options) for layer in self.layers}
        return self.metrics_

    def table(self) -> Any:
        """Return the metrics of the last :meth:`evaluate`, one row per layer.

        Interval metrics become two columns (``accuracy_ci_low``, ``accuracy_ci_high``, ...).

        Returns
        -------
        pandas.DataFrame or list of dict
            A DataFrame indexed by layer when pandas is installed, else a list of row dicts (each with ``layer``).
        """
        if not self.metrics_:
            raise NotFittedError("no metrics yet; call evaluate(prompts, labels) first")
        rows = []
        for layer in self.layers:
            row: dict[str, Any] = {"layer": layer}
            for key, value in self.metrics_[layer].items():
                if isinstance(value, tuple) and len(value) == 2:
                    row[f"{key}_low"], row[f"{key}_high"] = value
                elif key != "eval_hash":
                    row[key] = value
            rows.append(row)
        try:
            import pandas as pd
        except ImportError:
            return rows
        return pd.DataFrame(rows).set_index("layer")

    def plot(self, metric: str | None = None, baseline: Any = None, ax: Any = None) -> tuple[Any, Any]:
        """Plot a metric of the last :meth:`evaluate` by layer, with its bootstrap interval and a baseline line.

        Parameters
        ----------
        metric : str, optional
            A key of the metrics; default ``"accuracy"`` (``"r2"`` for regression).
        baseline : float, dict of str to float, or an object with ``get_best()``, optional
            Drawn as a horizontal dashed line: a score; the best of named scores; or the best result of a baseline
            battery (``BaselineResults``: its ``get_best()`` gives results with ``name`` and ``score``).
        ax : matplotlib.axes.Axes, optional

        Returns
        -------
        (matplotlib.figure.Figure, matplotlib.axes.Axes)
        """
        if not self.metrics_:
            raise NotFittedError("no metrics yet; call evaluate(prompts, labels) first")
        first = self.metrics_[self.layers[0]]
        metric = metric or ("r2" if "r2" in first else "accuracy")
        if metric not in first:
            raise UnknownOptionError(f"unknown metric {metric!r}; expected one of: {', '.join(sorted(first))}")
        plt = _pyplot()
        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 3.5))
        values = [self.metrics_[layer][metric] for layer in self.layers]
        ax.plot(self.layers, values, marker="o", label=f"probe {metric}")
        if all(f"{metric}_ci" in self.metrics_[layer] for layer in self.layers):
            low, high = zip(*(self.metrics_[layer][f"{metric}_ci"] for layer in self.layers), strict=True)
            ax.fill_between(self.layers, low, high, alpha=0.25, label="bootstrap interval")
        name, score = _baseline_line(baseline)
        if score is not None:
            ax.axhline(score, linestyle="--", color="grey", label=f"best baseline: {name} ({score:.3f})")
        ax.set_xlabel("layer")
        ax.set_ylabel(metric)
        ax.legend(loc="best", fontsize="small")
        return fig, ax


def _baseline_line(baseline: Any) -> tuple[str, float | None]:
    """(name, score) of the baseline to draw: a number, the best of a dict, or the best of a battery's results."""
    if baseline is None:
        return "", None
    if isinstance(baseline, (int, float)):
        return "baseline", float(baseline)
    if isinstance(baseline, dict):
        name = max(baseline, key=lambda k: baseline[k])
        return str(name), float(baseline[name])
    if hasattr(baseline, "get_best"):
        best = baseline.get_best(1)
        best = best[0] if isinstance(best, (list, tuple)) else best
        return str(best.name), float(best.score)
    raise InvalidInputError(
        "baseline must be a number, a dict of scores or baseline results with get_best(); got "
        f"{type(baseline).__name__}"
    )


def _sweep(
    config: Probe,
    ctx: _Context,
    prompts: list[str],
    y: np.ndarray,
    w: np.ndarray | None,
    layers: list[int],
    batch_size: int,
    retries: int,
    overwrite: bool = False,
) -> LayerSweepResult:
    """Extract every layer once, then fit one probe per layer (in Rust, in parallel, when the classifier allows)."""
    from sklearn.base import clone
    from tqdm.auto import tqdm

    from fastprobe.store import evict
    from fastprobe.sweep import StoreLayers, fit_layers

    train, spec, template = config._check_params()
    _extract(ctx, prompts, layers, batch_size, retries, _reads(train, spec), overwrite)
    params = config.get_params(deep=False)

    def member(layer: int) -> Probe:
        probe = type(config)(**{**params, "layers": layer})
        probe.layers_ = [layer]
        probe.model_fingerprint_ = ctx.fingerprint
        probe.sweep_result_ = None
        return probe

    probes: dict[int, Probe] = {}
    fast = isinstance(template, _RUST) and train != "all" and not config.preprocessing and not config.mass_mean_augment
    if fast:
        y_fit = y.astype(np.float64) if config.task == "regression" else y
        fitted = fit_layers(StoreLayers(ctx.store, prompts, layers, train), y_fit, template, sample_weight=w)
        for layer, pipe in zip(layers, fitted, strict=True):
            probe = member(layer)
            probe.scaler_ = _standard_scaler_from(pipe.named_steps["scale"], len(prompts))
            probe.classifier_ = pipe.named_steps["probe"]
            probe.classes_ = probe.classifier_.classes_ if config.task == "classification" else None
            probe.preprocessing_pipeline_ = None
            probe.mass_mean_direction_ = None
            probe.n_features_in_ = ctx.loaded.hidden_size
            probes[layer] = probe
    else:
        for layer in tqdm(layers, desc="fitting layers", unit="layer", dynamic_ncols=True):
            probe = member(layer)
            X, y_rows, w_rows = _train_rows(ctx, prompts, [layer], train, y, w)
            probe._fit_matrix(X, y_rows, w_rows, 1, clone(template))
            probes[layer] = probe
    evict()
    return LayerSweepResult(probes)
