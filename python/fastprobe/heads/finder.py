"""The head finder: score every attention head by how much a query token reads chosen key tokens.

For examples of (text, query position, key positions), one batched forward pass per batch reads, in every block, the
attention weights of the query row only (:mod:`fastprobe.extraction.attention`; never the whole attention map), and
scores each ``(layer, head)``:

``attention``
    the weight the query puts on the keys (summed over the keys), averaged over examples; with the first token left
    out (``ignore_bos``), the row is renormalized without it;
``rank``
    the rank of the keys among the positions the query can read (1 is the highest weight; for several keys, the
    rank of the lowest of them), averaged over examples; the first token is left out with ``ignore_bos``;
``top_k``
    the fraction of examples where the keys are the query's top-k positions (k = number of keys): the head
    criterion of the attention-head probing workflow, whose set intersection over sentences is the heads with
    ``top_k == 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastprobe.exceptions import InvalidInputError, UnknownOptionError
from fastprobe.extraction import as_positions, forward_batches, prefix_safe
from fastprobe.model import LoadedModel, anatomy, as_loaded, resolve_position, tokenize
from fastprobe.probe.inspection import pyplot
from fastprobe.sites import Site

__all__ = ["HEAD_METRICS", "HeadScores", "score_heads"]

#: The scores of :class:`HeadScores`, and the direction in which each is better.
HEAD_METRICS: dict[str, str] = {"attention": "higher", "rank": "lower", "top_k": "higher"}


@dataclass
class HeadScores:
    """Scores of every (layer, head) for one set of examples (see the module's description).

    Attributes
    ----------
    attention, rank, top_k : numpy.ndarray of shape (n_layers, n_heads)
        The mean scores over the examples (rows are the blocks in :attr:`layers`).
    example_attention, example_rank : numpy.ndarray of shape (n_examples, n_layers, n_heads)
        Each example's scores.
    layers : list of int
        The blocks scored.
    ignore_bos : bool
        Whether the first token was left out.
    model : str
        The model's name.
    """

    attention: np.ndarray
    rank: np.ndarray
    top_k: np.ndarray
    example_attention: np.ndarray
    example_rank: np.ndarray
    layers: list[int]
    ignore_bos: bool
    model: str
    n_keys: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    @property
    def n_heads(self) -> int:
        """Heads per block."""
        return int(self.attention.shape[1])

    def _metric(self, by: str) -> np.ndarray:
        if by not in HEAD_METRICS:
            raise UnknownOptionError(f"unknown head metric {by!r}; expected one of: {', '.join(HEAD_METRICS)}")
        return np.asarray(getattr(self, by))

    def ranked(self, by: str = "attention", top: int | None = None) -> list[tuple[int, int]]:
        """Return ``(layer, head)`` pairs from the best to the worst by a metric (ties: lower layer, then head)."""
        values = self._metric(by)
        sign = -1.0 if HEAD_METRICS[by] == "higher" else 1.0
        order = sorted(
            (sign * float(values[i, h]), self.layers[i], h)
            for i in range(len(self.layers))
            for h in range(self.n_heads)
        )
        pairs = [(layer, head) for _, layer, head in order]
        return pairs if top is None else pairs[:top]

    def heads_where(self, top_k: float = 1.0) -> list[tuple[int, int]]:
        """Return the heads whose keys are the query's top-k in at least this fraction of examples (default: all).

        With ``top_k=1.0`` this is the intersection, over the examples, of the heads where the query looks at the
        keys.
        """
        return [
            (self.layers[i], h)
            for i in range(len(self.layers))
            for h in range(self.n_heads)
            if self.top_k[i, h] >= top_k - 1e-12
        ]

    def table(self, by: str = "attention", top: int | None = None) -> Any:
        """Return one row per head, best first by ``by``: ``layer``, ``head``, ``head_name``, and the three scores.

        Returns
        -------
        pandas.DataFrame or list of dict
            A DataFrame when pandas is installed, else a list of row dicts.
        """
        index = {layer: i for i, layer in enumerate(self.layers)}
        rows = [
            {
                "layer": layer,
                "head": head,
                "head_name": f"{layer}.{head}",
                "attention": float(self.attention[index[layer], head]),
                "rank": float(self.rank[index[layer], head]),
                "top_k": float(self.top_k[index[layer], head]),
            }
            for layer, head in self.ranked(by, top)
        ]
        try:
            import pandas as pd
        except ImportError:  # pandas is optional
            return rows
        return pd.DataFrame(rows)

    def plot(self, by: str = "attention", ax: Any = None, path: Any = None) -> tuple[Any, Any]:
        """Draw a heatmap of a metric, layer by head, the best heads marked; save it to ``path`` if given.

        Returns
        -------
        (matplotlib.figure.Figure, matplotlib.axes.Axes)
        """
        values = self._metric(by)
        plt = pyplot()
        if ax is None:
            width = min(14.0, 2.0 + 0.45 * self.n_heads)
            fig, ax = plt.subplots(figsize=(width, 1.5 + 0.3 * len(self.layers)))
        else:
            fig = ax.figure
        cmap = "viridis" if HEAD_METRICS[by] == "higher" else "viridis_r"
        image = ax.imshow(values, aspect="auto", cmap=cmap, origin="lower")
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_yticks(range(len(self.layers)), [str(layer) for layer in self.layers])
        for layer, head in self.ranked(by, top=3):
            ax.add_patch(
                plt.Rectangle((head - 0.5, self.layers.index(layer) - 0.5), 1, 1, fill=False, edgecolor="red", lw=1.5)
            )
        label = {"attention": "attention on the keys", "rank": "mean rank of the keys", "top_k": "top-k fraction"}[by]
        fig.colorbar(image, ax=ax, label=label)
        ax.set_title(f"{self.model}: {label} ({self.example_rank.shape[0]} examples)")
        if path is not None:
            fig.savefig(path, bbox_inches="tight", dpi=120)
        return fig, ax


def adds_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer starts every text with a special token (a BOS the model sees)."""
    ids = tokenizer("hello")["input_ids"]
    return bool(ids) and ids[0] in set(tokenizer.all_special_ids)


def score_heads(
    model: LoadedModel | str,
    texts: Sequence[str],
    queries: Sequence[Any],
    keys: Sequence[Any],
    *,
    ignore_bos: bool | str = "auto",
    layers: Sequence[int] | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    interventions: Sequence[Any] = (),
) -> HeadScores:
    """Score every attention head by how much each text's query token reads its key tokens.

    Parameters
    ----------
    model : LoadedModel or str
        A loaded model, or a name :func:`~fastprobe.model.load_model` takes (loaded on the best device).
    texts : sequence of str
    queries : sequence of int or TokenSpan
        Each text's query position (a span's last token), counted as the model sees the text.
    keys : sequence of int, list of int or TokenSpan
        Each text's key position or positions (a span's every token).
    ignore_bos : bool or "auto", default="auto"
        Leave the first token out of the weights (renormalized) and ranks; ``"auto"``: when the tokenizer starts
        every text with a special token.
    layers : sequence of int, optional
        The blocks to score (default: all).
    batch_size : int or None, default=None
        Texts per forward pass; None fills each pass to the device's token budget
        (:mod:`fastprobe.extraction.batching`).
    progress : bool, default=True
    interventions : sequence, default=()
        Head or edge ablations (or other interventions) active during the passes.

    Returns
    -------
    HeadScores

    Raises
    ------
    InvalidInputError
        If the three sequences differ in length or are empty, a position is outside its text, a key is the left-out
        first token, or a layer is out of range.
    """
    loaded = as_loaded(model)
    texts = list(texts)
    if not texts:
        raise InvalidInputError("score_heads needs at least one example; got no texts")
    if len(queries) != len(texts) or len(keys) != len(texts):
        raise InvalidInputError(
            f"texts, queries and keys must have one entry per example; got {len(texts)}, {len(queries)} and {len(keys)}"
        )
    body = anatomy(loaded.model)
    chosen = sorted(
        {v + body.n_layers if v < 0 else v for v in (layers if layers is not None else range(body.n_layers))}
    )
    if not chosen or chosen[0] < 0 or chosen[-1] >= body.n_layers:
        raise InvalidInputError(
            f"layers must lie in -{body.n_layers}..{body.n_layers - 1} for a model with {body.n_layers} layers; "
            f"got {list(layers or [])}"
        )
    drop = adds_bos(loaded.tokenizer) if ignore_bos == "auto" else bool(ignore_bos)
    lengths = [len(r["input_ids"]) for r in tokenize(loaded, texts)]
    q_pos = [
        resolve_position(as_positions(q, "query")[-1], n, "query position", f"the text {t[:40]!r}")
        for q, n, t in zip(queries, lengths, texts, strict=True)
    ]
    k_pos = [
        [resolve_position(k, n, "key position", f"the text {t[:40]!r}") for k in as_positions(key, "keys")]
        for key, n, t in zip(keys, lengths, texts, strict=True)
    ]
    if drop and any(0 in k for k in k_pos):
        i = next(i for i, k in enumerate(k_pos) if 0 in k)
        raise InvalidInputError(
            f"example {i}: key position 0 is the first token, which ignore_bos leaves out; pass ignore_bos=False to "
            "score it"
        )
    if body.is_causal:
        for i, (q, k) in enumerate(zip(q_pos, k_pos, strict=True)):
            if max(k) > q:
                raise InvalidInputError(
                    f"example {i}: key position {max(k)} is after the query {q}; in a causal model a query reads only "
                    "earlier tokens"
                )
    # In a causal model nothing after the query changes its row: run each text up to its query only.
    keep = [q + 1 for q in q_pos] if body.is_causal and prefix_safe(interventions) else None
    n, n_heads = len(texts), body.n_heads or 1
    attention = np.zeros((n, len(chosen), n_heads))
    rank = np.zeros((n, len(chosen), n_heads))
    n_keys = np.array([len(k) for k in k_pos])
    sites = [Site("attn", chosen[-1])]
    for batch in forward_batches(
        loaded,
        texts,
        sites,
        batch_size,
        progress,
        interventions=interventions,
        attention_queries=q_pos,
        attention_layers=chosen,
        keep=keep,
    ):
        _score_batch(batch, chosen, k_pos, drop, attention, rank)
    top_k = (rank <= n_keys[:, None, None]).mean(axis=0)
    return HeadScores(
        attention=attention.mean(axis=0),
        rank=rank.mean(axis=0),
        top_k=top_k,
        example_attention=attention,
        example_rank=rank,
        layers=chosen,
        ignore_bos=drop,
        model=str(loaded.name),
        n_keys=n_keys,
    )


def _score_batch(
    batch: Any, layers: list[int], k_pos: list[list[int]], drop: bool, attention: np.ndarray, rank: np.ndarray
) -> None:
    import torch

    mask = batch.mask
    first = mask.int().argmax(dim=1)
    idx = batch.idx.tolist()
    keymask = torch.zeros_like(mask)
    for b, i in enumerate(idx):
        keymask[b, first[b] + torch.tensor(k_pos[i], device=mask.device)] = True
    considered = mask.clone()
    rows_b = torch.arange(mask.shape[0], device=mask.device)
    if drop:
        considered[rows_b, first] = False
    for j, layer in enumerate(layers):
        rows = batch.attention[layer]  # (B, H, S) float32
        on_keys = (rows * keymask[:, None, :]).sum(dim=-1)
        if drop:
            rest = (1.0 - rows[rows_b, :, first]).clamp_min(1e-12)
            on_keys = on_keys / rest
        lowest = rows.masked_fill(~keymask[:, None, :], float("inf")).amin(dim=-1)
        above = (rows > lowest[..., None]) & considered[:, None, :]
        r = 1 + above.sum(dim=-1)
        attention[idx, j] = on_keys.double().cpu().numpy()
        rank[idx, j] = r.double().cpu().numpy()
