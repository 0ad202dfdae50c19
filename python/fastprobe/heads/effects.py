"""The causal check: what a head carries, measured by what is lost when it is ablated.

A head that attends from a query to a key need not carry anything the rest of the model uses. For each head,
:func:`head_effects` runs one batched pass over the examples with that head ablated (:class:`HeadAblation`) and
measures either

- the model's log-probability of a chosen next token at the query position (``targets=``), or
- a fitted probe's accuracy on a site read at the query position (``classifier=``, ``site=``, ``labels=``),

against the clean model. The drop is the head's effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastprobe.exceptions import ArgumentTypeError, InvalidInputError
from fastprobe.extraction import HeadAblation, extract_at, forward_batches, parse_heads
from fastprobe.model import LoadedModel, anatomy, as_loaded, resolve_position, tokenize
from fastprobe.probe.inspection import pyplot
from fastprobe.sites import Site, resolve_sites

__all__ = ["HeadEffects", "head_effects"]


@dataclass
class HeadEffects:
    """The effect of ablating each head.

    Attributes
    ----------
    heads : list of (int, int)
        ``(layer, head)``, in the order given.
    metric : {"log_prob", "accuracy"}
        Mean log-probability of the targets (nats), or the probe's accuracy.
    clean : float
        The metric on the clean model.
    ablated : numpy.ndarray of shape (n_heads,)
        The metric with each head ablated.
    example_drop : numpy.ndarray of shape (n_heads, n_examples) or None
        For log-probabilities, each example's drop.
    """

    heads: list[tuple[int, int]]
    metric: str
    clean: float
    ablated: np.ndarray
    example_drop: np.ndarray | None = None

    @property
    def drop(self) -> np.ndarray:
        """``clean - ablated`` per head: how much the metric falls without the head."""
        return self.clean - self.ablated

    def table(self) -> Any:
        """Return one row per head, largest drop first (``head_name``, ``layer``, ``head``, the metric, the drop)."""
        order = np.argsort(-self.drop, kind="stable")
        rows = [
            {
                "head_name": f"{self.heads[i][0]}.{self.heads[i][1]}",
                "layer": self.heads[i][0],
                "head": self.heads[i][1],
                "clean": self.clean,
                "ablated": float(self.ablated[i]),
                "drop": float(self.drop[i]),
            }
            for i in order
        ]
        try:
            import pandas as pd
        except ImportError:  # pandas is optional
            return rows
        return pd.DataFrame(rows)

    def plot(self, ax: Any = None, path: Any = None) -> tuple[Any, Any]:
        """Draw the drop per head as bars; save to ``path`` if given. Returns ``(figure, axes)``."""
        plt = pyplot()
        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(max(4.0, 0.6 * len(self.heads)), 3.0))
        ax.bar([f"{layer}.{head}" for layer, head in self.heads], self.drop)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xlabel("ablated head")
        ax.set_ylabel("log-probability drop (nats)" if self.metric == "log_prob" else "accuracy drop")
        if path is not None:
            fig.savefig(path, bbox_inches="tight", dpi=120)
        return fig, ax


def _target_ids(tokenizer: Any, targets: Sequence[Any], n: int) -> list[int]:
    if len(targets) != n:
        raise InvalidInputError(f"targets must have one entry per text ({n}); got {len(targets)}")
    out = []
    for i, t in enumerate(targets):
        if isinstance(t, (int, np.integer)) and not isinstance(t, bool):
            if not 0 <= int(t) < len(tokenizer):
                raise InvalidInputError(f"targets[{i}]: token id {t} is outside the vocabulary of {len(tokenizer)}")
            out.append(int(t))
        elif isinstance(t, str) and t:
            ids = tokenizer(t, add_special_tokens=False)["input_ids"]
            if len(ids) != 1:
                raise InvalidInputError(
                    f"targets[{i}]: {t!r} is {len(ids)} tokens ({tokenizer.convert_ids_to_tokens(ids)}); give one "
                    "token (its text, with a leading space where the model expects one, or its id)"
                )
            out.append(int(ids[0]))
        else:
            raise ArgumentTypeError(f"targets[{i}] must be a token id or a one-token string; got {t!r}")
    return out


def _log_probs(
    loaded: LoadedModel,
    texts: list[str],
    positions: list[int],
    ids: list[int],
    interventions: list[Any],
    batch_size: int,
) -> np.ndarray:
    import torch

    out = np.empty(len(texts))
    site = [Site("resid", 0)]  # the pass runs to the logits; the read itself is unused
    for batch in forward_batches(loaded, texts, site, batch_size, False, interventions=interventions, logits=True):
        first = batch.mask.int().argmax(dim=1)
        rows = torch.arange(len(batch.idx), device=first.device)
        cols = first + torch.tensor([positions[i] for i in batch.idx.tolist()], device=first.device)
        logp = torch.log_softmax(batch.logits[rows, cols].float(), dim=-1)
        target = torch.tensor([ids[i] for i in batch.idx.tolist()], device=logp.device)
        out[batch.idx] = logp[rows, target].double().cpu().numpy()
    return out


def head_effects(
    model: LoadedModel | str,
    texts: Sequence[str],
    positions: Sequence[int],
    heads: Any,
    *,
    targets: Sequence[Any] | None = None,
    classifier: Any = None,
    site: Any = None,
    labels: Any = None,
    mode: str = "zero",
    reference: Sequence[str] | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> HeadEffects:
    """Measure what is lost when each head is ablated: one batched pass per head, plus one clean pass.

    Parameters
    ----------
    model : LoadedModel or str
    texts : sequence of str
    positions : sequence of int
        Each text's query position (negative: from its end).
    heads : str, tuple or a list of them
        The heads to test, each ablated alone (``"L.H"``, ``(L, H)``; for example the finder's top-ranked).
    targets : sequence of int or str, optional
        The next token whose log-probability at the position is measured (an id, or a string of one token).
    classifier : fitted estimator, optional
        A probe with ``predict``, fitted on ``site`` read at the positions of the clean model; its accuracy on
        ``labels`` is measured. Give either ``targets`` or ``classifier``.
    site : int or str, optional
        The site the classifier reads (``"head.L.H"``, a layer, ``"resid.L"``, ...).
    labels : array-like, optional
        The classifier's true labels for the texts.
    mode : {"zero", "mean"}, default="zero"
        How a head is ablated (``"mean"`` needs ``reference`` texts).
    reference : sequence of str, optional
    batch_size : int, default=32
        Texts per forward pass (short sentences run fastest on a CPU in batches of about 32).
    progress : bool, default=True
        A progress bar over the heads.

    Returns
    -------
    HeadEffects

    Raises
    ------
    InvalidInputError
        If neither or both of ``targets`` and ``classifier`` are given, a head is out of range, a position is
        outside its text, or the lengths disagree.
    """
    from tqdm.auto import tqdm

    loaded = as_loaded(model)
    texts = list(texts)
    if (targets is None) == (classifier is None):
        raise InvalidInputError("give either targets (log-probabilities) or classifier with site and labels")
    if len(positions) != len(texts):
        raise InvalidInputError(f"positions must have one entry per text ({len(texts)}); got {len(positions)}")
    body = anatomy(loaded.model)
    resolved = [resolve_sites(s, body.n_layers, body.n_heads)[0] for s in parse_heads(heads)]
    pairs = [(s.layer, s.head) for s in resolved]
    lengths = [len(r["input_ids"]) for r in tokenize(loaded, texts)]
    fixed = [
        resolve_position(int(p), n, "position", f"text {i} ({texts[i][:40]!r})")
        for i, (p, n) in enumerate(zip(positions, lengths, strict=True))
    ]
    ablations = [HeadAblation(pair, mode=mode, reference=reference) for pair in pairs]
    bar = tqdm(total=len(pairs) + 1, desc="ablating heads", unit="head", disable=not progress)
    try:
        if targets is not None:
            ids = _target_ids(loaded.tokenizer, targets, len(texts))
            clean = _log_probs(loaded, texts, fixed, ids, [], batch_size)
            bar.update(1)
            per_head = []
            for ablation in ablations:
                per_head.append(_log_probs(loaded, texts, fixed, ids, [ablation], batch_size))
                bar.update(1)
            ablated = np.stack(per_head)
            return HeadEffects(pairs, "log_prob", float(clean.mean()), ablated.mean(axis=1), clean[None] - ablated)
        if site is None or labels is None:
            raise InvalidInputError("a classifier needs the site it reads (site=) and the true labels (labels=)")
        y = np.asarray(labels)
        if y.shape != (len(texts),):
            raise InvalidInputError(f"labels must have one entry per text ({len(texts)}); got shape {y.shape}")

        def accuracy(interventions: list[Any]) -> float:
            X = extract_at(
                loaded, texts, fixed, site, batch_size=batch_size, progress=False, interventions=interventions
            )
            return float(np.mean(np.asarray(classifier.predict(X)) == y))

        base = accuracy([])
        bar.update(1)
        scores = []
        for ablation in ablations:
            scores.append(accuracy([ablation]))
            bar.update(1)
        return HeadEffects(pairs, "accuracy", base, np.asarray(scores))
    finally:
        bar.close()
