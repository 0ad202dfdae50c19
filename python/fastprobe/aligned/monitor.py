"""A live probe monitor: score every generated token with a fitted probe while the model generates, and stop early.

:func:`monitor_generation` runs the probe's model with its language-model head and the KV cache on
(:func:`fastprobe.extraction.generate_batches`). The hooks that read the probe's layers run during generation itself
(``on_step``): each forward pass is fed the token sampled before it, so its activations at that token are the
features of that token, read with no second pass. The probe scores them as it scores one token (its layers side by
side in its order, then its scaler, preprocessing and classifier:
:meth:`~fastprobe.probe.Probe.predict_proba_from_activations`), and the token's score is the probability of the
positive class, ``probe.classes_[1]``. The last prompt token is scored too (the score before generating).

A running statistic of the scores of the tokens generated so far (``score_pooling``: the current token's score,
their mean or their maximum) is compared with ``threshold``: a sequence whose statistic reaches it stops there. The
token that crossed is kept; the token the model sampled in the same pass (to score the crossing token, it had to be
fed, and a pass always predicts the next token) is dropped and nothing after it is generated for that sequence (a
transformers ``StoppingCriteria`` ends it, one bool per row). The other sequences of the batch go on.

Every kept token is scored, the last one included: generation runs one pass beyond ``max_new_tokens``, and the
model's own end-of-sequence stop is replaced by the monitor's, one pass later, so that an end-of-sequence token is fed
(and scored) before its sequence ends. The token sampled in that extra pass is dropped.

Which probes fit: a binary classifier whose classifier was fitted on single tokens' activations, that is trained with
``pooling`` (or ``train_pooling``) ``"last_token"`` or ``"all"``. A probe trained on ``"mean"`` or ``"first_token"``
was fitted on a vector that pools a whole prompt (the mean of its tokens, or its first token); scoring one token with
it would apply it to features unlike any it was fitted on, and the first token of a prompt never changes as tokens
are generated, so those probes are refused. The probe's inference pooling is not used: ``score_pooling`` takes its
place.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastprobe import features
from fastprobe._validation import check_prompts
from fastprobe.exceptions import ArgumentTypeError, InvalidInputError, MissingDependencyError, UnknownOptionError
from fastprobe.extraction import generate_batches
from fastprobe.extraction.runner import check_batch_size
from fastprobe.extraction.sampling import batch_seed, eos_ids, row_stopper, sampling_kwargs
from fastprobe.model import LoadedModel, causal_lm, fingerprint_of
from fastprobe.probe import Probe
from fastprobe.probe.config import check_params, check_same_model, probe_context
from fastprobe.probe.pipeline import check_fitted, require_proba
from fastprobe.sites import Site, resolve_sites

__all__ = [
    "MONITOR_TRAIN_POOLINGS",
    "SCORE_POOLINGS",
    "MonitorResult",
    "MonitoredSequence",
    "monitor_generation",
]

#: The running statistics a monitor compares with its threshold.
SCORE_POOLINGS: tuple[str, ...] = ("last", "mean", "max")
#: The training poolings of the probes a monitor accepts (each fitted on single tokens' activations).
MONITOR_TRAIN_POOLINGS: tuple[str, ...] = ("last_token", "all")


@dataclass(frozen=True, eq=False)
class MonitoredSequence:
    """One prompt's monitored continuation.

    Attributes
    ----------
    prompt : str
    continuation : str
        The kept tokens decoded (special tokens skipped).
    tokens : tuple of int
        The kept generated token ids: up to and including the end-of-sequence token or the token that crossed the
        threshold, nothing after it.
    token_texts : tuple of str
        Each kept token decoded alone (special tokens included).
    scores : numpy.ndarray of shape (len(tokens),)
        Each kept token's positive-class probability (float64).
    running : numpy.ndarray of shape (len(tokens),)
        The running statistic after each kept token (``score_pooling`` over the tokens up to it).
    stopped : bool
        Whether the monitor stopped the sequence (its running statistic reached the threshold).
    stop_index : int or None
        The index in ``tokens`` of the token that reached the threshold (the last kept token), or None.
    prompt_score : float
        The positive-class probability at the last prompt token, before generating.
    ended : bool
        Whether the last kept token is an end-of-sequence token.
    """

    prompt: str
    continuation: str
    tokens: tuple[int, ...]
    token_texts: tuple[str, ...]
    scores: np.ndarray
    running: np.ndarray
    stopped: bool
    stop_index: int | None
    prompt_score: float
    ended: bool

    @property
    def n_generated(self) -> int:
        """How many tokens were kept."""
        return len(self.tokens)


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError(
            "plotting a monitor's scores needs the matplotlib package; install it with: pip install 'fastprobe[plot]'"
        ) from None
    return plt


@dataclass
class MonitorResult:
    """What :func:`monitor_generation` gave: one :class:`MonitoredSequence` per prompt, in the prompts' order.

    Attributes
    ----------
    sequences : list of MonitoredSequence
    threshold : float or None
    score_pooling : str
    settings : dict
        The generation settings, seed and batch size.
    """

    sequences: list[MonitoredSequence]
    threshold: float | None
    score_pooling: str
    settings: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> MonitoredSequence:
        return self.sequences[i]

    def __iter__(self) -> Iterator[MonitoredSequence]:
        return iter(self.sequences)

    @property
    def continuations(self) -> list[str]:
        """The continuations, one per prompt."""
        return [s.continuation for s in self.sequences]

    @property
    def stopped(self) -> np.ndarray:
        """Whether the monitor stopped each sequence, ``(n_prompts,)`` bool."""
        return np.array([s.stopped for s in self.sequences], dtype=bool)

    @property
    def prompt_scores(self) -> np.ndarray:
        """The score before generating of each prompt, ``(n_prompts,)``."""
        return np.array([s.prompt_score for s in self.sequences], dtype=np.float64)

    def table(self, per_token: bool = False) -> Any:
        """Return the monitored sequences as a table.

        Parameters
        ----------
        per_token : bool, default=False
            One row per kept token (``prompt``, ``position``, ``token``, ``text``, ``score``, ``running``) instead of
            one row per prompt.

        Returns
        -------
        pandas.DataFrame or list of dict
            Per prompt: ``prompt`` (its index), ``text``, ``continuation``, ``n_generated``, ``prompt_score``,
            ``mean_score``, ``max_score``, ``final`` (the running statistic at the last kept token), ``stopped``,
            ``stop_index``, ``ended``. A DataFrame when pandas is installed.
        """
        rows: list[dict[str, Any]] = []
        for i, s in enumerate(self.sequences):
            if per_token:
                rows.extend(
                    {
                        "prompt": i,
                        "position": t,
                        "token": s.tokens[t],
                        "text": s.token_texts[t],
                        "score": float(s.scores[t]),
                        "running": float(s.running[t]),
                    }
                    for t in range(s.n_generated)
                )
                continue
            rows.append(
                {
                    "prompt": i,
                    "text": s.prompt,
                    "continuation": s.continuation,
                    "n_generated": s.n_generated,
                    "prompt_score": s.prompt_score,
                    "mean_score": float(s.scores.mean()) if s.n_generated else float("nan"),
                    "max_score": float(s.scores.max()) if s.n_generated else float("nan"),
                    "final": float(s.running[-1]) if s.n_generated else float("nan"),
                    "stopped": s.stopped,
                    "stop_index": s.stop_index,
                    "ended": s.ended,
                }
            )
        try:
            import pandas as pd
        except ImportError:  # pandas is optional
            return rows
        return pd.DataFrame(rows)

    def plot(self, i: int = 0, ax: Any = None) -> tuple[Any, Any]:
        """Plot the per-token scores of prompt ``i``, the tokens on the x axis, with the threshold line.

        The running statistic is drawn beside the scores (unless it is the score itself, ``"last"``), the score
        before generating as a grey point at x = -1, and the token that stopped the sequence in red.

        Parameters
        ----------
        i : int, default=0
            The prompt's index.
        ax : matplotlib.axes.Axes, optional
            Where to draw; a new figure when None.

        Returns
        -------
        (matplotlib.figure.Figure, matplotlib.axes.Axes)

        Raises
        ------
        InvalidInputError
            If ``i`` is not the index of a prompt.
        MissingDependencyError
            If matplotlib is not installed.
        """
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not -len(self) <= i < len(self):
            raise InvalidInputError(f"i must be a prompt index in [0, {len(self)}); got {i!r}")
        s = self.sequences[int(i)]
        plt = _pyplot()
        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(max(6.0, 0.45 * s.n_generated), 3.5))
        x = np.arange(s.n_generated)
        ax.plot(x, s.scores, marker="o", label="token score")
        if self.score_pooling != "last":
            ax.plot(x, s.running, linestyle="--", label=f"running {self.score_pooling}")
        ax.scatter([-1], [s.prompt_score], color="grey", label="before generating")
        if self.threshold is not None:
            ax.axhline(self.threshold, color="red", linestyle=":", label=f"threshold {self.threshold:g}")
        if s.stop_index is not None:
            ax.scatter([s.stop_index], [s.scores[s.stop_index]], color="red", zorder=3, label="stopped here")
        ax.set_xticks(np.arange(-1, s.n_generated))
        ax.set_xticklabels(["[prompt]", *(t.replace("\n", "\\n") for t in s.token_texts)], rotation=60, ha="right")
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("positive-class probability")
        ax.set_title(f"prompt {int(i)}: {s.prompt[:60]!r}")
        ax.legend(loc="best", fontsize="small")
        fig.tight_layout()
        return fig, ax


# ----------------------------------------------------------------------------------------------------- checks


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ArgumentTypeError(f"{name} must be an int; got {value!r}")
    if value < low:
        raise InvalidInputError(f"{name} must be at least {low}; got {value}")


def _check_threshold(threshold: Any) -> float | None:
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)):
        raise ArgumentTypeError(f"threshold must be None or a finite number in [0, 1]; got {threshold!r}")
    value = float(threshold)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InvalidInputError(
            f"threshold must be a finite number in [0, 1] (it is compared with probabilities); got {threshold!r}"
        )
    return value


def _check_probe(probe: Any) -> None:
    """Refuse what the monitor cannot score token by token."""
    if not isinstance(probe, Probe):
        raise ArgumentTypeError(f"probe must be a fitted fastprobe Probe; got {type(probe).__name__}")
    check_fitted(probe)
    if probe.task != "classification":
        raise InvalidInputError(
            f"the monitor scores tokens with a binary classification probe (two classes); this probe has "
            f"task={probe.task!r}"
        )
    classes = np.asarray(probe.classes_).tolist()
    if len(classes) != 2:
        raise InvalidInputError(
            f"the monitor scores tokens with a binary classification probe (two classes); this probe has "
            f"{len(classes)} classes: {classes}"
        )
    require_proba(probe)
    train = check_params(probe).train
    if train not in MONITOR_TRAIN_POOLINGS:
        raise InvalidInputError(
            f"this probe was trained with pooling {train!r}, on one vector pooled over a whole prompt, so it cannot "
            f"score one token at a time; the monitor takes probes trained with one of: "
            f"{', '.join(MONITOR_TRAIN_POOLINGS)} (pass train_pooling='last_token' or 'all')"
        )
    if not getattr(probe, "layers_", None):
        raise InvalidInputError(
            "this probe has no layers (fitted by fit_from_activations): the monitor must know which layers to read; "
            "fit it on prompts"
        )
    if getattr(probe, "interventions", None):
        raise InvalidInputError(
            "this probe was fitted on a model changed by interventions; the monitor generates with the model "
            "unchanged and does not apply them"
        )


def _context(probe: Probe, model: Any) -> LoadedModel:
    """Return the model to generate with: the probe's own or ``model``, refused unless the probe was fitted on it."""
    if model is None:
        ctx = probe_context(probe)
    elif isinstance(model, LoadedModel):
        ctx = features.ModelContext(model, fingerprint_of(model), None)
    elif isinstance(model, str) or hasattr(model, "__fspath__"):
        ctx = features.model_context(model, probe.device, probe.dtype, "local", False)
    else:
        raise ArgumentTypeError(f"model must be None, a LoadedModel or a model name; got {type(model).__name__}")
    check_same_model(probe, ctx)
    loaded: LoadedModel = ctx.loaded
    return loaded


# ----------------------------------------------------------------------------------------------------- the run


class _Run:
    """One monitored generation: scores each step's fed token, keeps the running statistic, decides the stops."""

    def __init__(
        self,
        probe: Probe,
        sites: list[Site],
        eos: list[int],
        max_new_tokens: int,
        threshold: float | None,
        score_pooling: str,
        seed: int,
    ) -> None:
        self.probe, self.sites, self.eos = probe, sites, set(eos)
        self.max_new_tokens, self.threshold, self.pooling, self.seed = max_new_tokens, threshold, score_pooling, seed
        self.finished: Any = None  # (B,) bool tensor: rows with nothing more to keep
        self.tokens: list[list[int]] = []
        self.scores: list[list[float]] = []
        self.running: list[list[float]] = []
        self.stop_index: list[int | None] = []
        self.ended: list[bool] = []
        self.prompt_score: np.ndarray = np.zeros(0)
        self.sampler: Any = None  # the run's Sampler when it samples: seeded per row

    def before_batch(self, idx: np.ndarray) -> None:
        if self.sampler is not None:  # a generator per row, seeded by its prompt's index: batching changes nothing
            self.sampler.reseed([batch_seed("monitor", self.seed, i) for i in idx.tolist()])
        n = len(idx)
        self.finished = None
        self.tokens = [[] for _ in range(n)]
        self.scores = [[] for _ in range(n)]
        self.running = [[] for _ in range(n)]
        self.stop_index = [None] * n
        self.ended = [False] * n

    def _score(self, cap: Any, rows: Any) -> np.ndarray:
        """Score the last position of this step's ``rows``: the positive-class probability."""
        import torch

        x = torch.cat([cap.full(s)[rows, -1].float() for s in self.sites], dim=-1)
        proba = self.probe.predict_proba_from_activations(x.cpu().numpy())
        return np.asarray(proba[:, 1], dtype=np.float64)

    def _statistic(self, scores: list[float]) -> float:
        if self.pooling == "mean":
            return float(np.mean(scores))
        if self.pooling == "max":
            return max(scores)
        return scores[-1]

    def on_step(self, idx: np.ndarray, step: int, cap: Any) -> None:
        import torch

        if step == 0:  # the prompts, left-padded: the last position is each prompt's last token
            self.finished = torch.zeros(len(idx), dtype=torch.bool)
            self.prompt_score = self._score(cap, slice(None))
            return
        alive = torch.nonzero(~self.finished).flatten().tolist()
        if not alive:
            return
        fed = cap.input_ids[:, -1].tolist()
        scores = self._score(cap, torch.tensor(alive, dtype=torch.long, device=cap.input_ids.device))
        for b, score in zip(alive, scores.tolist(), strict=True):
            self.tokens[b].append(int(fed[b]))
            self.scores[b].append(score)
            stat = self._statistic(self.scores[b])
            self.running[b].append(stat)
            if self.threshold is not None and stat >= self.threshold:
                self.stop_index[b] = len(self.tokens[b]) - 1
            self.ended[b] = int(fed[b]) in self.eos
            if self.stop_index[b] is not None or self.ended[b] or len(self.tokens[b]) >= self.max_new_tokens:
                self.finished[b] = True

    def stopping_criteria(self) -> Any:
        """Return a transformers ``StoppingCriteriaList`` that ends each row once it has nothing more to keep."""
        return row_stopper(lambda: self.finished)

    def finish(self, idx: np.ndarray, prompts: list[str], tokenizer: Any) -> Iterator[tuple[int, MonitoredSequence]]:
        for b, i in enumerate(idx.tolist()):
            tokens = tuple(self.tokens[b])
            yield (
                i,
                MonitoredSequence(
                    prompt=prompts[i],
                    continuation=tokenizer.decode(list(tokens), skip_special_tokens=True),
                    tokens=tokens,
                    token_texts=tuple(tokenizer.decode([t]) for t in tokens),
                    scores=np.asarray(self.scores[b], dtype=np.float64),
                    running=np.asarray(self.running[b], dtype=np.float64),
                    stopped=self.stop_index[b] is not None,
                    stop_index=self.stop_index[b],
                    prompt_score=float(self.prompt_score[b]),
                    ended=self.ended[b],
                ),
            )


def monitor_generation(
    probe: Probe,
    prompts: Sequence[str],
    *,
    model: LoadedModel | str | None = None,
    max_new_tokens: int = 20,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    threshold: float | None = None,
    score_pooling: str = "last",
    batch_size: int | None = None,
    add_special_tokens: bool = True,
    progress: bool = False,
) -> MonitorResult:
    """Generate continuations and score every generated token with a fitted probe as it is produced.

    Parameters
    ----------
    probe : Probe
        A fitted binary classification probe trained with ``"last_token"`` or ``"all"`` pooling (see the module's
        documentation). A token's score is the probability of ``probe.classes_[1]``.
    prompts : sequence of str
        Non-empty prompts.
    model : LoadedModel or str, optional
        The model to generate with (default: the probe's ``model``, loaded on its device in its dtype). It must be
        the model the probe was fitted on.
    max_new_tokens : int, default=20
        The most tokens kept per prompt.
    do_sample, temperature, top_p, top_k
        Sampling settings (``top_k=0``: no top-k filter); the default ``do_sample=False`` decodes greedily.
    seed : int, default=0
        Seeds each batch's sampling (with the batch's rows).
    threshold : float, optional
        Stop a sequence as soon as its running statistic reaches (``>=``) this value, in [0, 1]. None: never stop
        early.
    score_pooling : {"last", "mean", "max"}, default="last"
        The running statistic compared with ``threshold``: the current token's score, or the mean or maximum of the
        scores of the tokens generated so far.
    batch_size : int or None, default=None
        Prompts per ``generate`` call; None fills each call to the device's token budget. Each prompt samples from
        its own generator (seeded by ``seed`` and its index), so the batching never changes what is generated.
    add_special_tokens : bool, default=True
        False for prompts that already hold the tokenizer's special tokens (a chat template's rendering).
    progress : bool, default=False

    Returns
    -------
    MonitorResult
        One :class:`MonitoredSequence` per prompt, in the prompts' order.

    Raises
    ------
    NotFittedError
        If the probe has not been fitted.
    InvalidInputError
        For a regression probe or one with more than two classes, a probe trained with ``"mean"`` or
        ``"first_token"`` pooling, one fitted from activations only or with interventions, a model other than the
        probe's, no prompts or an empty one, ``max_new_tokens`` or ``batch_size`` below 1, or a threshold that is not
        a finite number in [0, 1].
    ArgumentTypeError
        For a probe that is not a :class:`~fastprobe.probe.Probe`, or arguments of the wrong type.
    UnknownOptionError
        For a ``score_pooling`` not in :data:`SCORE_POOLINGS`.
    UnsupportedMethodError
        If the probe's classifier has no ``predict_proba``.

    Examples
    --------
    >>> from fastprobe import Probe
    >>> from fastprobe.aligned import monitor_generation
    >>> from fastprobe.testing import tiny_model
    >>> probe = Probe(model=tiny_model("llama"), layers=-1, random_state=0)
    >>> probe = probe.fit(["I saw Paris", "We like Paris"], ["I saw Tokyo", "We like Tokyo"])
    >>> result = monitor_generation(probe, ["They love"], max_new_tokens=4, threshold=0.5)
    >>> seq = result[0]
    >>> len(seq.scores) == len(seq.tokens) <= 4
    True
    """
    prompts = check_prompts(prompts, "prompts", non_empty=True, empty_strings=False)
    _check_int("max_new_tokens", max_new_tokens, 1)
    _check_int("seed", seed, 0)
    check_batch_size(batch_size)
    limit = _check_threshold(threshold)
    if score_pooling not in SCORE_POOLINGS:
        raise UnknownOptionError(
            f"unknown score_pooling {score_pooling!r}; expected one of: {', '.join(SCORE_POOLINGS)}"
        )
    _check_probe(probe)
    loaded = _context(probe, model)
    sites = resolve_sites(list(probe.layers_), loaded.n_layers)
    tok = loaded.tokenizer
    lm = causal_lm(loaded)
    eos = eos_ids(lm, tok)
    run = _Run(probe, sites, eos, int(max_new_tokens), limit, score_pooling, int(seed))
    gen_kwargs: dict[str, Any] = {
        # one pass beyond max_new_tokens, and the monitor's own end-of-sequence stop: every kept token is fed
        "max_new_tokens": int(max_new_tokens) + 1,
        "eos_token_id": None,
        "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else (eos[0] if eos else 0),
        "stopping_criteria": run.stopping_criteria(),
    }
    sampling, run.sampler = sampling_kwargs(bool(do_sample), temperature, top_p, top_k)
    gen_kwargs |= sampling
    out: dict[int, MonitoredSequence] = {}
    batches = generate_batches(
        loaded,
        prompts,
        sites,
        batch_size,
        progress,
        add_special_tokens=add_special_tokens,
        before_batch=run.before_batch,
        on_step=run.on_step,
        **gen_kwargs,
    )
    for gen in batches:
        out.update(run.finish(gen.idx, prompts, tok))
    settings = {
        "max_new_tokens": int(max_new_tokens),
        "do_sample": bool(do_sample),
        "temperature": temperature,
        "top_p": top_p,
        "top_k": top_k,
        "seed": int(seed),
        "batch_size": batch_size,
        "add_special_tokens": add_special_tokens,
        "sites": [s.name for s in sites],
    }
    return MonitorResult([out[i] for i in range(len(prompts))], limit, score_pooling, settings)
