"""The ``Probe`` estimator: lmprobe's constructor and methods, orchestrating the named parts of this package.

Each method is a few calls: the configuration checks and model context (:mod:`~fastprobe.probe.config`), the
features API (:mod:`fastprobe.features`: extract what the cache lacks, read it back through the pooling stage), the
feature pipeline (:mod:`~fastprobe.probe.pipeline`), layer selection and inspection
(:mod:`~fastprobe.probe.inspection`), evaluation (:mod:`~fastprobe.probe.evaluation`), persistence
(:mod:`~fastprobe.probe.persistence`) and the layer sweep (:mod:`~fastprobe.probe.layer_sweep`).

Layer inspection, the ``*_from_activations`` methods and ``save`` / ``load`` come from the mixins of
:mod:`~fastprobe.probe.methods`. The class stays past the usual 400 lines because it carries lmprobe's documented
constructor, fitting and inference: its docstrings are more than half of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from fastprobe import features
from fastprobe._validation import check_labels, check_prompts, check_training_data
from fastprobe.extraction import DEFAULT_BATCH_SIZE
from fastprobe.layers import LayerSpec, is_auto, is_sweep, resolve_layers
from fastprobe.metrics import eval_hash
from fastprobe.probe import evaluation, inspection, pipeline
from fastprobe.probe.config import (
    FITTED,
    cached_reads,
    check_params,
    layers_to_extract,
    probe_context,
    require_model,
    retries,
)
from fastprobe.probe.layer_sweep import LayerSweepResult, run_sweep
from fastprobe.probe.methods import ActivationMethods, LayerMethods, PersistenceMethods
from fastprobe.profiling import profiled, section

__all__ = ["LinearProbe", "Probe"]

#: Metrics of :meth:`Probe.compute_layer_importance`.
IMPORTANCE_METRICS = inspection.IMPORTANCE_METRICS


class Probe(LayerMethods, ActivationMethods, PersistenceMethods, BaseEstimator):
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
    batch_size : int or None, default=8
        Prompts per forward pass. Left at its default (lmprobe's 8, :data:`~fastprobe.extraction.DEFAULT_BATCH_SIZE`)
        or None, each pass is filled to the device's token budget instead (faster; results differ by float rounding
        at most); any number given, 8 included, is honoured.
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
    interventions : list of HeadAblation or EdgeAblation, optional
        Probe the model changed by these ablations (:mod:`fastprobe.extraction.ablation`); positions per prompt
        are given by prompt text. Its activations are cached under the changed model's own fingerprint.

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
        batch_size: int | None = DEFAULT_BATCH_SIZE,
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
        interventions: Any = None,
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
        self.interventions = interventions
        check_params(self, construction=True)

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

        train, spec, template = check_params(self)
        require_model(self)
        prompts, y, w = check_training_data(
            positive_prompts, negative_prompts, sample_weight, classification=self.task == "classification"
        )
        reads = features.reads(train, spec)
        sweep = is_sweep(self.layers)

        def layers_of(n_layers: int) -> list[int]:
            return list(resolve_layers(self.layers, n_layers)) if sweep else layers_to_extract(self, n_layers)

        with section("extract_and_pool"):  # the weights load only when the cache lacks something
            ctx = probe_context(self, remote, None if invalidate_cache else cached_reads(prompts, layers_of, reads))
        bs = batch_size or self.batch_size
        n_retries = retries(self, max_retries)
        layers = layers_of(ctx.loaded.n_layers)
        if sweep:
            result = run_sweep(self, ctx, prompts, y, w, layers, bs, n_retries, invalidate_cache)
            self.sweep_result_ = result
            self._adopt(result.probes[result.layers[0]])
            return self
        self.sweep_result_ = None
        with section("extract_and_pool"):
            features.ensure_extracted(ctx, prompts, layers, bs, n_retries, reads, invalidate_cache)
            X, y_rows, w_rows = pipeline.training_rows(ctx, prompts, layers, train, y, w)
        if is_auto(self.layers):
            X, layers = inspection.select_layers(self, X, y_rows, w_rows, layers, template)
        else:
            self.selected_layers_ = self.candidate_layers_ = self.layer_importances_ = None
        self.layers_ = layers
        pipeline.fit_matrix(self, X, y_rows, w_rows, len(self.layers_), template)
        self.model_fingerprint_ = ctx.fingerprint
        evict()
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
        train, spec, _ = check_params(self)
        prompts = check_prompts(prompts, "prompts")
        reads = features.reads(train, spec)
        ctx = probe_context(self, remote, cached_reads(prompts, lambda n: layers_to_extract(self, n), reads))
        layers = layers_to_extract(self, ctx.loaded.n_layers)
        bs = batch_size or self.batch_size
        features.ensure_extracted(ctx, prompts, layers, bs, retries(self, max_retries), reads)

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_n_blocks" in state:  # pickled before fastprobe's reorganisation: the block count's earlier name
            state["n_blocks_"] = state.pop("_n_blocks")
        self.__dict__.update(state)

    def _adopt(self, other: Probe) -> None:
        for name in FITTED:
            setattr(self, name, getattr(other, name, None))

    # ------------------------------------------------------------------ inference

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
        pipeline.check_fitted(self)
        pipeline.require_proba(self)
        return pipeline.predict_proba_rows(self, *pipeline.inference_rows(self, prompts, remote, batch_size))

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
        pipeline.check_fitted(self)
        return pipeline.predict_rows(self, *pipeline.inference_rows(self, prompts, remote, batch_size))

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
        y = check_labels(prompts, labels)
        return pipeline.score_values(self, self.predict(prompts, remote=remote, batch_size=batch_size), y)

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
        averages beyond), ``auroc`` (when the classifier has probabilities and both classes occur), ``per_class``
        (each class's precision, recall, f1 and support) and ``confusion_matrix`` (rows: true class, columns:
        predicted, in ``classes_`` order). Regression:
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
        pipeline.check_fitted(self)
        y = check_labels(prompts, labels)
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
        else:
            spec, X, offsets = pipeline.inference_rows(self, prompts, remote, batch_size)
            results, proba = evaluation.point_metrics(self, spec, X, offsets, y)
            results["n_eval"] = len(prompts)
            results["eval_hash"] = eval_hash(prompts, y)
            results.update(
                evaluation.monitor_metrics(self, spec, proba, y, results["eval_hash"], remote, batch_size, **options)
            )
        self.evaluation_results_ = results
        return results

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
        batch_size: int | None = DEFAULT_BATCH_SIZE,
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
        setup = cls(
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
        prompts, y, w = check_training_data(
            positive_prompts, negative_prompts, sample_weight, classification=task == "classification"
        )
        train, spec, _ = check_params(setup)
        reads = features.reads(train, spec)
        ctx = probe_context(setup, cached=cached_reads(prompts, lambda n: list(resolve_layers(layers, n)), reads))
        resolved = list(resolve_layers(layers, ctx.loaded.n_layers))
        return run_sweep(setup, ctx, prompts, y, w, resolved, batch_size, retries(setup))


#: lmprobe's alias.
LinearProbe = Probe
