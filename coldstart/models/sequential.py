"""Models of the published benchmark (notebook 08): each scores all items for invoice histories.

A model here has ``score(histories) -> (n, n_items)`` array, where ``histories`` is a list of int
arrays of item positions, oldest first (:mod:`coldstart.data.benchmark`). Baselines fitted on the
training part only: :class:`SeqPopularity`, :class:`SeqItemKNN` (co-occurrence cosine),
:class:`SeqEASE` (ridge regression on baskets), each with optional recency decay over the history,
a last-n cut and dropping history items. The course's text model is notebook 03's two-tower model
(:class:`SeqTextModel`); :class:`Blend` adds it to an ID model such as :class:`SeqEASE`.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np
import scipy.sparse as sp

from ..data.benchmark import SeqBenchmark, without_history
from ..data.text import context_text
from .baselines import cooccurrence_cosine, ease_matrix, tie_breaker
from .retrieval import EncodedContextSimilarity


def history_matrix(histories: Sequence[np.ndarray], n_items: int, decay: Optional[float] = None,
                   last_n: Optional[int] = None) -> sp.csr_matrix:
    """Sparse (n x items) weights of each history's items: 1 each, or ``decay ** age`` with age 0
    for the most recent item; ``last_n`` keeps only the most recent items. Repeats add up."""
    rows, cols, vals = [], [], []
    for r, h in enumerate(histories):
        h = np.asarray(h, dtype=np.int64)
        if last_n is not None:
            h = h[-last_n:]
        age = np.arange(len(h))[::-1]
        rows.append(np.full(len(h), r))
        cols.append(h)
        vals.append(np.ones(len(h)) if decay is None else float(decay) ** age)
    def cat(xs, dt):
        return np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)

    return sp.csr_matrix((cat(vals, np.float32), (cat(rows, np.int64), cat(cols, np.int64))),
                         shape=(len(histories), n_items))


class SeqPopularity:
    """The items with the most training rows, the same list for every invoice."""

    name = "popularity"

    def __init__(self, bench: SeqBenchmark):
        self.counts = bench.train_counts().astype(np.float32)

    def score(self, histories) -> np.ndarray:
        return np.tile(self.counts, (len(histories), 1))


class _HistoryWeighted:
    """Shared scoring: history weights (decay, last n) times an item-item matrix, plus options."""

    def __init__(self, bench, decay, last_n, drop_history, name):
        self.n_items, self.decay, self.last_n, self.drop_history = bench.n_items, decay, last_n, drop_history
        self.tie = tie_breaker(bench.train_counts(), scale=1e-6)
        self.name = name

    def variant(self, **options):
        """A copy with other ``decay``, ``last_n``, ``drop_history`` or ``name`` (the fitted matrix is shared)."""
        unknown = set(options) - {"decay", "last_n", "drop_history", "name"}
        if unknown:
            raise TypeError(f"unknown option(s) {sorted(unknown)}")
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__.update(options)
        return new

    def score(self, histories) -> np.ndarray:
        W = history_matrix(histories, self.n_items, decay=self.decay, last_n=self.last_n)
        scores = np.asarray(W @ self.matrix, dtype=np.float32) + self.tie
        return without_history(scores, histories) if self.drop_history else scores


class SeqItemKNN(_HistoryWeighted):
    """Item-kNN on co-occurrence: sim(i, j) = cosine of the items' training-invoice vectors,
    sim(i, i) = 0; score(j) = sum over history items h of w_h * sim(h, j), with w_h = 1 (plain) or
    ``decay ** age`` (age 0 = the most recent item), over the ``last_n`` most recent items."""

    def __init__(self, bench: SeqBenchmark, decay: Optional[float] = None, last_n: Optional[int] = None,
                 drop_history: bool = False, name: str = "item-knn"):
        super().__init__(bench, decay, last_n, drop_history, name)
        self.matrix = cooccurrence_cosine(bench.train_matrix())


class SeqEASE(_HistoryWeighted):
    """EASE (Steck 2019) on the training baskets: B = argmin ||X - XB||^2 + lam ||B||^2, diag(B) = 0;
    score(j) = sum over history items h of w_h * B[h, j] (weights as :class:`SeqItemKNN`)."""

    def __init__(self, bench: SeqBenchmark, lam: float = 100.0, decay: Optional[float] = None,
                 last_n: Optional[int] = None, drop_history: bool = False, name: str = "ease"):
        super().__init__(bench, decay, last_n, drop_history, name)
        self.lam, self.matrix = lam, ease_matrix(bench.train_matrix(), lam)


class Blend:
    """score = sum of ``weight * model.score`` over ``parts`` (``[(weight, model), ...]``): e.g. a text
    model plus an ID model. ``-inf`` from any part stays ``-inf``; a part of weight 0 is not run."""

    def __init__(self, parts: Iterable, name: str = "blend"):
        self.parts, self.name = list(parts), name
        if not any(w != 0 for w, _ in self.parts):
            raise ValueError("a blend needs at least one part with a non-zero weight")

    def score(self, histories) -> np.ndarray:
        out = None
        for w, model in self.parts:
            if w == 0:
                continue
            s = np.asarray(model.score(histories), dtype=np.float32)
            s = w * s if w != 1 else s
            out = s if out is None else out + s
        return out


# -- a text model for the benchmark ---------------------------------------------------------------------


class SeqTextModel(EncodedContextSimilarity):
    """Text-only scores on the benchmark: cosine between the encoded history text and every item's
    encoded text (``item_vectors``, e.g. :meth:`of_catalog`). A history is written as the ``last_m``
    most recent items' texts, the most recent *first*, so that truncation to ``context_len`` tokens
    drops the oldest ones. ``drop_history`` removes the history's items (otherwise the last item,
    identical to itself, would top every list). Encoded histories are kept, by their text."""

    desc = "encoding histories"

    def __init__(self, tokenizer, encoder, texts, item_vectors, last_m: int = 5, context_len: int = 48,
                 batch_size: int = 128, drop_history: bool = True, name: str = "text",
                 progress: Optional[bool] = None):
        super().__init__(tokenizer, encoder, texts, item_vectors, context_len=context_len, batch_size=batch_size,
                         name=name, progress=progress)
        self.last_m, self.drop_history = last_m, drop_history

    def context_key(self, history) -> str:
        return context_text(self.texts[np.asarray(history, dtype=np.int64)], newest_first=True, last=self.last_m)

    def key_text(self, key: str) -> str:
        return key

    def score(self, histories) -> np.ndarray:
        scores = self.context_vectors(histories) @ self.item_vectors.T
        return without_history(scores, histories) if self.drop_history else scores
