"""A probe's configuration: the checks of its parameters, its model context, the layers it reads.

Functions of a :class:`~fastprobe.probe.Probe` (its parameters are plain attributes, as scikit-learn requires), so
that ``Probe``, ``ProbeEnsemble`` and the layer sweep share them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from fastprobe import features
from fastprobe.estimators import build_classifier
from fastprobe.exceptions import InvalidInputError, UnknownOptionError
from fastprobe.extraction import intervened_fingerprint
from fastprobe.layers import is_auto, is_sweep, resolve_auto_candidates, resolve_layers
from fastprobe.model import check_dtype, model_identity
from fastprobe.store.pooling import PoolingSpec, resolve_pooling_spec

__all__ = [
    "COMPUTE_BACKENDS",
    "FITTED",
    "NORMALIZE_LAYERS",
    "PREPROCESSING_STEPS",
    "PROBE_BACKENDS",
    "TASKS",
    "ProbeSetup",
    "cached_reads",
    "check_params",
    "check_same_model",
    "layers_to_extract",
    "preprocessing_steps",
    "probe_context",
    "require_model",
    "retries",
]

TASKS = ("classification", "regression")
NORMALIZE_LAYERS = (True, False, "per_neuron", "per_layer")
PREPROCESSING_STEPS = ("standard", "standard_scaler", "pca", "pca:N")
PROBE_BACKENDS = ("local", "nnsight")
COMPUTE_BACKENDS = ("sklearn", "auto")
#: A fitted probe's attributes (what ``save`` writes and a sweep member hands to its probe).
FITTED = (
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
    "n_blocks_",
)


class ProbeSetup(NamedTuple):
    """What a checked configuration resolves to: the training pooling, the inference pooling, an unfitted classifier."""

    train: str
    inference: PoolingSpec
    template: Any


def check_params(probe: Any, *, construction: bool = False) -> ProbeSetup:
    """Validate a probe's configuration; return its :class:`ProbeSetup`.

    The constructor checks what lmprobe's constructor checks (so its scripts fail where they failed); with
    ``construction=True`` the rest (``normalize_layers``, which lmprobe checks when fitting) waits for ``fit``.
    """
    if probe.task not in TASKS:
        raise UnknownOptionError(f"Unknown task {probe.task!r}; expected one of: {', '.join(TASKS)}")
    interventions = getattr(probe, "interventions", None)  # None for probes unpickled from before it existed
    if interventions is not None:
        if isinstance(interventions, (str, bytes)) or not isinstance(interventions, (list, tuple)):
            raise InvalidInputError(f"interventions must be a list of ablations; got {interventions!r}")
        intervened_fingerprint({}, interventions)  # each must have an identity the cache can key
    if not construction and (
        probe.normalize_layers not in NORMALIZE_LAYERS
        or (isinstance(probe.normalize_layers, int) and not isinstance(probe.normalize_layers, bool))
    ):
        raise UnknownOptionError(
            f"Invalid normalize_layers {probe.normalize_layers!r}; expected one of: True, 'per_neuron', "
            "'per_layer', False"
        )
    if probe.backend not in PROBE_BACKENDS:
        extra = (
            " (fastprobe's local backend already stops after the deepest needed layer and streams activations "
            "to the store)"
            if probe.backend in ("chunked", "disk_offload")
            else ""
        )
        raise UnknownOptionError(
            f"unknown backend {probe.backend!r}; expected one of: {', '.join(PROBE_BACKENDS)}{extra}"
        )
    if probe.remote and probe.backend != "nnsight":
        raise InvalidInputError(
            f"backend={probe.backend!r} does not support remote=True: remote runs go to NDIF through nnsight; "
            "pass backend='nnsight'"
        )
    check_dtype(probe.dtype)
    if probe.compute_backend not in COMPUTE_BACKENDS:
        raise UnknownOptionError(
            f"Unknown compute_backend {probe.compute_backend!r}; expected one of: {', '.join(COMPUTE_BACKENDS)} "
            "(fastprobe's Rust solvers replace cuML)"
        )
    bs = probe.batch_size
    if bs is not None and (isinstance(bs, bool) or not isinstance(bs, int) or bs < 1):
        raise InvalidInputError(
            f"batch_size must be an integer >= 1 or None (batches filled to a token budget); got {bs!r}"
        )
    if not isinstance(probe.layers, (int, np.integer, str, list, tuple, range)):
        raise InvalidInputError(f"layers must be an int, a list of ints or a string; got {probe.layers!r}")
    if isinstance(probe.layers, str) and not is_sweep(probe.layers) and not is_auto(probe.layers):
        resolve_layers(probe.layers, 1 << 20)  # the names; indices are checked against the model
    if (
        isinstance(probe.auto_alpha, bool)
        or not isinstance(probe.auto_alpha, (int, float))
        or not (np.isfinite(probe.auto_alpha) and probe.auto_alpha >= 0)
    ):
        raise InvalidInputError(f"auto_alpha must be a finite number >= 0; got {probe.auto_alpha!r}")
    top_k = probe.fast_auto_top_k
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise InvalidInputError(f"fast_auto_top_k must be None or an integer >= 1; got {top_k!r}")
    if probe.mass_mean_augment and probe.task == "regression":
        raise InvalidInputError("mass_mean_augment needs two classes; it does not apply to task='regression'")
    train, inference = resolve_pooling_spec(probe.pooling, probe.train_pooling, probe.inference_pooling)
    preprocessing_steps(probe.preprocessing, probe.pca_components)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        template = build_classifier(
            probe.classifier,
            task=probe.task,
            random_state=probe.random_state,
            classifier_kwargs=probe.classifier_kwargs,
        )
    return ProbeSetup(train, inference, template)


def preprocessing_steps(preprocessing: Any, pca_components: int | None) -> list[tuple[str, Any]]:
    """Build the (unfitted) scikit-learn steps a ``preprocessing`` value names."""
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


def require_model(probe: Any) -> None:
    """Raise unless the probe names a model."""
    if probe.model is None:
        raise InvalidInputError(
            "No model specified: pass model=... to Probe to use prompts (or use the *_from_activations methods "
            "with precomputed features)"
        )


def probe_context(
    probe: Any, remote: bool | None = None, cached: Callable[[features.ModelContext], bool] | None = None
) -> features.ModelContext:
    """Return the probe's model context, ``remote`` overriding the probe's own setting.

    With ``cached`` (a test of a context: does its store hold everything the call reads?), the weights are loaded
    only when it answers False (:func:`fastprobe.features.ready_context`); without it, always.
    """
    require_model(probe)
    args = (
        probe.model,
        probe.device,
        probe.backend,
        bool(probe.remote if remote is None else remote),
    )
    revision = getattr(probe, "revision", None)  # None for probes unpickled from before it existed
    interventions = tuple(getattr(probe, "interventions", None) or ())
    if cached is None:
        model, device, backend, far = args
        return features.model_context(model, device, probe.dtype, backend, far, revision, interventions)
    return features.ready_context(*args, cached, revision, probe.dtype, interventions)


def cached_reads(
    prompts: Sequence[str], layers_of: Callable[[int], Sequence[Any]], poolings: Sequence[str] | None
) -> Callable[[features.ModelContext], bool]:
    """Return a test of a context: are ``prompts`` stored at ``layers_of(n_layers)`` for every read in ``poolings``."""
    return lambda ctx: features.is_cached(ctx, prompts, layers_of(ctx.loaded.n_layers), poolings)


def retries(probe: Any, max_retries: int | None = None) -> int:
    """How many times a failed remote extraction is retried: the call's value, else the probe's, else 3."""
    value = max_retries if max_retries is not None else probe.max_retries
    return 3 if value is None else int(value)


def check_same_model(probe: Any, ctx: features.ModelContext) -> None:
    """Refuse a model other than the one the probe was fitted on (architecture, weights, vocabulary)."""
    saved = getattr(probe, "model_fingerprint_", None)
    if saved and model_identity(saved) != model_identity(ctx.fingerprint):
        raise InvalidInputError(
            f"this probe was fitted on model {saved.get('model')!r} ({saved.get('architecture')}, weights "
            f"{saved.get('weights')}), but {ctx.fingerprint.get('model')!r} is a different model "
            f"({ctx.fingerprint.get('architecture')}, weights {ctx.fingerprint.get('weights')}); fit a new probe "
            "for it"
        )


def layers_to_extract(probe: Any, n_layers: int) -> list[int]:
    """Return the configured layers; for automatic selection, its candidates."""
    if not is_auto(probe.layers):
        return resolve_layers(probe.layers, n_layers)
    candidates = resolve_auto_candidates(probe.auto_candidates, n_layers)
    if probe.layers == "auto" and len(candidates) < 2:
        raise InvalidInputError(
            f"layers='auto' selects among candidate layers and needs at least two; auto_candidates="
            f"{probe.auto_candidates!r} gives {candidates} on a model with {n_layers} layers"
        )
    return candidates
