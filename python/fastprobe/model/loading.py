"""Load a model and its tokenizer once per process, for extraction: locally, through nnsight, or as an NDIF stub.

:func:`load_model` is the one loader of the full model without its language-model head (``AutoModel``); its memo is
registered with :func:`~fastprobe.model.registry.register_model_cache`, so
:func:`~fastprobe.model.registry.clear_model_cache` frees it.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from typing import Any

from fastprobe.exceptions import (
    ArgumentTypeError,
    FastprobeError,
    InvalidInputError,
    MissingDependencyError,
    UnknownOptionError,
)
from fastprobe.model.architectures import anatomy
from fastprobe.model.registry import register_model_cache
from fastprobe.model.source import ModelSource, from_pretrained, resolve_model

__all__ = [
    "BACKENDS",
    "MODEL_DTYPES",
    "PRECISIONS",
    "QUANTIZATIONS",
    "LoadedModel",
    "as_loaded",
    "check_dtype",
    "import_nnsight",
    "load_model",
    "resolve_device",
]

#: How forward passes run: transformers with forward hooks, or nnsight traces.
BACKENDS: tuple[str, ...] = ("local", "nnsight")
#: Compute dtypes a model can be loaded in (a ``torch.dtype`` of these is accepted too).
MODEL_DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16")
#: Weight quantizations (bitsandbytes, CUDA only).
QUANTIZATIONS: tuple[str, ...] = ("8bit", "4bit")
#: The precisions a model can run in: a compute dtype, or a quantization.
PRECISIONS: tuple[str, ...] = MODEL_DTYPES + QUANTIZATIONS


def resolve_device(device: str) -> str:
    """Resolve ``"auto"`` to ``"cuda"`` when a GPU is present, else ``"mps"`` when available, else ``"cpu"``.

    Parameters
    ----------
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Returns
    -------
    str
    """
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for extraction.

    Attributes
    ----------
    name : str
        The model id or path it was loaded from.
    model : torch.nn.Module
        The model, in eval mode, without gradients.
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer, with a pad token.
    device : str
        Where the model runs.
    n_layers : int
        The number of transformer blocks.
    hidden_size : int
        The width of a block's output.
    backend : {"local", "nnsight"}
        How forward passes run: transformers with forward hooks, or an nnsight trace.
    remote : bool
        Whether nnsight traces run on NDIF instead of this machine.
    tracer : nnsight.NNsight or nnsight.LanguageModel or None
        The nnsight wrapper (``backend="nnsight"`` only).
    source : ModelSource or None
        Where its files are (the directory, or the Hub snapshot and commit); None for a model hosted on NDIF.
    quantization : {"8bit", "4bit"} or None
        The bitsandbytes quantization of its weights, if any.
    """

    name: str
    model: Any
    tokenizer: Any
    device: str
    n_layers: int
    hidden_size: int
    backend: str = "local"
    remote: bool = False
    tracer: Any = None
    source: ModelSource | None = None
    quantization: str | None = None


_MODELS: dict[tuple[str, str | None, str, str, str], LoadedModel] = register_model_cache({})
_MODELS_LOCK = threading.Lock()


def check_dtype(dtype: Any) -> str:
    """Return a model dtype's name (None is float32; a ``torch.dtype`` gives its name).

    Parameters
    ----------
    dtype : str, torch.dtype or None

    Returns
    -------
    str
        One of :data:`MODEL_DTYPES`.

    Raises
    ------
    UnknownOptionError
        For anything else; the message lists the accepted names.
    """
    name = "float32" if dtype is None else str(dtype).removeprefix("torch.")
    if name not in MODEL_DTYPES:
        raise UnknownOptionError(
            f"Unknown dtype {dtype!r}; expected one of: {', '.join(MODEL_DTYPES)} (or None for float32)"
        )
    return name


def load_model(
    name: str | os.PathLike[str],
    *,
    device: str = "auto",
    dtype: str | None = None,
    backend: str = "local",
    remote: bool = False,
    revision: str | None = None,
) -> LoadedModel:
    """Load (once per process) a model and its tokenizer for extraction.

    The model is loaded without its language-model head (``AutoModel``): extraction never needs logits.

    Parameters
    ----------
    name : str or path-like
        A Hugging Face Hub id (``"org/name"``), read from the local Hugging Face cache when offline
        (``HF_HUB_OFFLINE=1``) and downloaded into it otherwise, or a local directory; see
        :func:`fastprobe.model.resolve_model`.
    device : str, default="auto"
        See :func:`resolve_device`.
    dtype : {"float32", "float16", "bfloat16"} or torch.dtype, optional
        The model's compute dtype; None means float32.
    backend : {"local", "nnsight"}, default="local"
        ``"local"`` runs transformers with forward hooks. ``"nnsight"`` runs the same model through nnsight traces
        (``nnsight.NNsight``), saving the same modules' inputs and outputs and stopping after the last one.
    remote : bool, default=False
        Run the nnsight traces on NDIF (``backend="nnsight"`` only; needs ``NDIF_API_KEY`` in the environment and a
        Hub model id). No weights are loaded here: only the configuration and tokenizer.
    revision : str, optional
        The Hub revision (branch, tag or commit) of a Hub id; None is the default branch. The configuration,
        tokenizer and weights all come from the commit it resolves to.

    Returns
    -------
    LoadedModel

    Raises
    ------
    ModelLoadError
        If the model is neither a local directory nor a Hub model transformers can find (offline: in the local
        cache), or its files cannot be loaded. Also an :class:`OSError`.
    FastprobeError
        If the dtype is not one of the accepted names, nnsight is missing for ``backend="nnsight"``, or
        ``remote=True`` lacks ``NDIF_API_KEY`` or names a local path.
    UnknownOptionError
        If ``backend`` is not one of :data:`BACKENDS`.
    InvalidInputError
        If ``remote=True`` is given without ``backend="nnsight"``, or ``revision`` with a local directory.
    """
    key_dtype = check_dtype(dtype)
    if backend not in BACKENDS:
        raise UnknownOptionError(f"unknown backend {backend!r}; expected one of: {', '.join(BACKENDS)}")
    if remote and backend != "nnsight":
        raise InvalidInputError(f"remote=True runs on NDIF through nnsight; pass backend='nnsight' (got {backend!r})")
    if remote:
        return _load_remote(os.fspath(name))
    resolved = resolve_device(device)
    key = (os.fspath(name), revision, resolved, key_dtype, backend)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = _load_local(name, revision, resolved, key_dtype, backend)
        return _MODELS[key]


def _load_local(
    name: str | os.PathLike[str], revision: str | None, device: str, dtype: str, backend: str
) -> LoadedModel:
    import torch
    from transformers import AutoModel

    source = resolve_model(name, revision)
    tracer = import_nnsight().NNsight if backend == "nnsight" else None
    tokenizer = load_tokenizer(source)
    model = from_pretrained(AutoModel, source, dtype=getattr(torch, dtype))
    model.to(device)
    model.eval()
    model.requires_grad_(False)
    body = anatomy(model)
    wrapper = None
    if tracer is not None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*which nnsight already serves on every module")
            wrapper = tracer(model)
    return LoadedModel(
        source.name, model, tokenizer, device, body.n_layers, body.hidden_size, backend, False, wrapper, source
    )


def split_precision(precision: str | None) -> tuple[str | None, str | None]:
    """Split a precision name into ``(dtype, quantization)``.

    ``"bfloat16"`` gives ``("bfloat16", None)``, ``"4bit"`` gives ``(None, "4bit")`` and None ``(None, None)``.

    Raises
    ------
    UnknownOptionError
        If ``precision`` is not one of :data:`PRECISIONS`.
    """
    if precision is None:
        return None, None
    if precision not in PRECISIONS:
        raise UnknownOptionError(f"unknown precision {precision!r}; expected one of: {', '.join(PRECISIONS)}")
    return (None, precision) if precision in QUANTIZATIONS else (precision, None)


def quantization_kwargs(quantization: str | None, device: str, dtype: str) -> dict[str, Any]:
    """Return the ``from_pretrained`` options that load the weights quantized by bitsandbytes (empty for None).

    Raises
    ------
    UnknownOptionError
        If ``quantization`` is not one of :data:`QUANTIZATIONS`.
    InvalidInputError
        If the device is not CUDA: bitsandbytes quantizes on the GPU.
    MissingDependencyError
        If bitsandbytes is not installed.
    """
    if quantization is None:
        return {}
    if quantization not in QUANTIZATIONS:
        raise UnknownOptionError(f"unknown quantization {quantization!r}; expected one of: {', '.join(QUANTIZATIONS)}")
    if not device.startswith("cuda"):
        raise InvalidInputError(
            f"{quantization} loading quantizes the weights with bitsandbytes on a CUDA GPU; this run's device is "
            f"{device!r} (on it, use a dtype: float32, float16 or bfloat16)"
        )
    import torch

    try:
        import bitsandbytes  # noqa: F401
    except ImportError as err:
        raise MissingDependencyError(
            f"{quantization} loading needs the bitsandbytes package; install it with: pip install bitsandbytes"
        ) from err
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=getattr(torch, dtype))
    else:
        config = BitsAndBytesConfig(load_in_8bit=True)
    return {"quantization_config": config, "device_map": {"": device}}


def load_tokenizer(source: ModelSource) -> Any:
    """Load a model's tokenizer, with its end-of-sequence token as the pad token when it has none."""
    from transformers import AutoTokenizer

    tokenizer = from_pretrained(AutoTokenizer, source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def import_nnsight() -> Any:
    """Return the ``nnsight`` module.

    Raises
    ------
    FastprobeError
        If nnsight is not installed; the message says how to install it.
    """
    try:
        import nnsight
    except ImportError as err:
        raise FastprobeError(
            "backend='nnsight' needs the nnsight package; install it with: pip install 'fastprobe[nnsight]'"
        ) from err
    return nnsight


def _load_remote(name: str) -> LoadedModel:
    """Build an NDIF stub: nnsight's ``LanguageModel`` on the meta device (configuration and tokenizer only)."""
    nnsight = import_nnsight()
    key = os.environ.get("NDIF_API_KEY")
    if not key:
        raise FastprobeError(
            "remote=True needs an NDIF API key in the NDIF_API_KEY environment variable (get one at "
            "https://login.ndif.us)"
        )
    if os.path.exists(name):
        raise FastprobeError(
            f"remote=True runs a model hosted on NDIF, named by its Hugging Face Hub id; {name!r} is a local path"
        )
    nnsight.CONFIG.API.APIKEY = key
    stub = nnsight.LanguageModel(name, dispatch=False)
    model = stub._model
    tokenizer = stub.tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    body = anatomy(model)
    return LoadedModel(name, model, tokenizer, "remote", body.n_layers, body.hidden_size, "nnsight", True, stub)


def as_loaded(model: Any) -> LoadedModel:
    """Return ``model`` if it is a :class:`LoadedModel`, else load it by name or path (:func:`load_model`).

    Raises
    ------
    ArgumentTypeError
        If ``model`` is neither a loaded model nor a name or path.
    """
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, (str, os.PathLike)):
        return load_model(os.fspath(model))
    raise ArgumentTypeError(f"model must be a LoadedModel or a model name; got {type(model).__name__}")
