"""Baseline recommenders: what a fine-tuned model has to beat, and the ID part of the course's retriever.

Each baseline is fitted on the *training* rows of a split only (``split.train``, before the
cutoff) and scores the whole catalog for a batch of :class:`~coldstart.data.protocol.Cases`, so
:func:`coldstart.evaluation.evaluate` can run it. All scoring is matrix algebra over the catalog;
nothing loops over items.

* :class:`Popularity` -- items bought by the most training customers (optionally only in the last
  ``window_days`` before the cutoff). Ignores the context.
* :class:`CountryPopularity` -- popularity among training customers of the same country, backed off
  to global popularity: the recommender for a user we know nothing about but their country (k=0).
* :class:`ItemKNN` -- co-purchase similarity: cosine between items' basket (invoice) vectors
  (:func:`cooccurrence_cosine`), averaged over the context items. ID-based: an item never bought
  before the cutoff has no basket vector, so it can never be recommended (cold items score zero).
* :class:`ItemRegression` -- the ID part of the course's retriever: a ridge regression from a
  basket's items to its other items (:func:`ease_matrix`: EASE, and with ``dropout`` DLAE).
* :class:`TextSimilarity` -- content-based: cosine between the mean of the context items' text
  vectors and every item's text vector. Works for cold items, since an item needs only its text.
  The vectors are TF-IDF (:func:`coldstart.data.text.tfidf_vectors`) or a pretrained LM's
  mean-pooled embeddings (zero-shot). It is also a text scorer for the retrieval recipe.
* :class:`Hybrid` -- item-kNN plus a weighted text similarity: the retrieval recipe
  (:class:`~coldstart.models.retrieval.Retriever`) with a TF-IDF text part.

ID-based methods break ties (e.g. items with no co-purchase) by global popularity, scaled small
enough never to override a real similarity (:func:`tie_breaker`).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data.protocol import Cases, ColdStartSplit, item_counts
from ..data.text import tfidf_vectors
from .retrieval import Retriever


def _customer_counts(train: pd.DataFrame, item_ids: np.ndarray, since=None) -> np.ndarray:
    rows = train if since is None else train[train["date"] >= since]
    return item_counts(rows, item_ids, "customer").astype(np.float32)


def tie_breaker(counts: np.ndarray, scale: float = 1e-3) -> np.ndarray:
    """Popularity ``counts`` squeezed into [0, ``scale``) (float32): added to scores, it breaks ties
    among equal similarities and overrides nothing larger than ``scale``."""
    return (scale * counts / (counts.max() + 1.0)).astype(np.float32)


class Popularity:
    """Recommend the items most training customers bought (same list for everyone).

    ``window_days`` restricts the count to the last days before the cutoff ("recent popularity").
    """

    def __init__(self, split: ColdStartSplit, window_days: Optional[int] = None):
        since = None if window_days is None else split.cutoff - pd.Timedelta(days=window_days)
        self.scores = _customer_counts(split.train, split.item_ids, since)
        # an item never bought in the window still outranks nothing; keep all-time order as tie-break
        self.scores = self.scores + tie_breaker(_customer_counts(split.train, split.item_ids))
        self.name = "popularity" if window_days is None else f"popularity-{window_days}d"

    def score(self, cases: Cases) -> np.ndarray:
        return np.broadcast_to(self.scores, (len(cases), len(self.scores))).copy()


class CountryPopularity:
    """Popularity among training customers of the user's country, backed off to global popularity.

    score(i | country) = share of that country's customers who bought i, plus ``backoff`` times the
    global share (so countries with few customers still get a sensible list).
    """

    name = "country-popularity"

    def __init__(self, split: ColdStartSplit, backoff: float = 0.1):
        train = split.train
        n_cust = train.groupby("country")["customer"].nunique()
        pairs = train.drop_duplicates(["country", "customer", "item"]).groupby(["country", "item"]).size()
        table = pairs.unstack("item", fill_value=0).reindex(columns=split.item_ids, fill_value=0)
        self.countries = {c: i for i, c in enumerate(table.index)}
        self.share = (table.to_numpy(np.float32) / n_cust.reindex(table.index).to_numpy(np.float32)[:, None])
        glob = _customer_counts(train, split.item_ids)
        self.glob = glob / max(train["customer"].nunique(), 1)
        self.backoff = backoff

    def score(self, cases: Cases) -> np.ndarray:
        out = np.tile(self.backoff * self.glob, (len(cases), 1))
        for row, country in enumerate(cases.country):
            idx = self.countries.get(country)
            if idx is not None:
                out[row] += self.share[idx]
        return out


def basket_matrix(split: ColdStartSplit, customers: bool = False, rows: Optional[pd.DataFrame] = None) -> sp.csr_matrix:
    """Binary (invoice x item) matrix of training baskets, columns in ``split``'s catalog order.

    ``customers=True`` appends one row per customer: every item they bought before the cutoff, over
    all their invoices (what a customer buys across visits, not only within one). Rows of customers
    with no id are not added. ``rows`` replaces the training rows by others with the same columns
    (e.g. the season after the cutoff, to analyse what happened there); items outside the catalog
    are left out.
    """
    pos = pd.Series(np.arange(split.n_items), index=split.item_ids)
    lines = split.train if rows is None else rows[rows["item"].isin(pos.index)]

    def entries(frame, key):
        frame = frame.dropna(subset=[key]).drop_duplicates([key, "item"])
        return pd.factorize(frame[key])[0], pos.reindex(frame["item"]).to_numpy()

    row, col = entries(lines, "invoice")
    if customers:
        c_row, c_col = entries(lines, "customer")
        row, col = np.concatenate([row, c_row + (row.max() + 1 if len(row) else 0)]), np.concatenate([col, c_col])
    n_rows = int(row.max()) + 1 if len(row) else 0
    return sp.csr_matrix((np.ones(len(row), np.float32), (row, col)), shape=(n_rows, split.n_items))


def cooccurrence_cosine(baskets) -> np.ndarray:
    """Item-item cosine similarity of the items' basket vectors (the columns of ``baskets``, a sparse
    basket x item matrix), with a zero diagonal: how often two items are bought together, relative
    to how often each is bought. Taught verbatim in notebook 02."""
    co = (baskets.T @ baskets).toarray().astype(np.float32)   # co-purchase counts
    norms = np.sqrt(np.diag(co))
    sim = co / np.maximum(np.outer(norms, norms), 1e-9)       # cosine similarity
    np.fill_diagonal(sim, 0.0)
    return sim


class ItemKNN:
    """Item-to-item collaborative filtering on co-purchases within training baskets.

    sim(i, j) = cosine of the items' invoice vectors, sim(i, i) = 0; only the ``neighbours`` largest
    similarities of each item are kept. score(j | context) = mean over context items c of sim(c, j).
    """

    name = "item-knn"

    def __init__(self, split: ColdStartSplit, neighbours: Optional[int] = 200):
        sim = cooccurrence_cosine(basket_matrix(split))
        if neighbours is not None and neighbours < sim.shape[1]:
            cut = np.partition(sim, -neighbours, axis=1)[:, -neighbours][:, None]
            sim = np.where(sim >= cut, sim, 0.0).astype(np.float32)
        self.sim = sim
        self.tie = tie_breaker(_customer_counts(split.train, split.item_ids))
        self.n_items = split.n_items

    def score(self, cases: Cases) -> np.ndarray:
        ctx = cases.context_matrix(self.n_items, weights="mean")
        return np.asarray(ctx @ self.sim) + self.tie


def ease_matrix(baskets: sp.csr_matrix, lam: float, dropout: float = 0.0) -> np.ndarray:
    """B = argmin ||X - X B||^2 + ||Lambda^(1/2) B||^2 with diag(B) = 0 (EASE, Steck 2019), float32.

    ``X`` (``baskets``) is the (basket x item) matrix of training baskets. Closed form:
    P = (X^T X + Lambda)^-1, B = -P / diag(P), diag(B) = 0. ``Lambda = lam I`` is EASE. ``dropout =
    p > 0`` adds ``p / (1 - p) x diag(X^T X)``: the penalty of a denoising autoencoder that drops each
    input item with probability ``p`` (DLAE, Steck 2020), so a popular item's weights shrink more
    and one basket's co-purchases count less. Items never bought get a zero row and column.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    gram = (baskets.T @ baskets).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += lam + dropout / (1.0 - dropout) * np.diag(gram)
    P = np.linalg.inv(gram)
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    return B.astype(np.float32)


class ItemRegression:
    """The ID part: the ridge regression :func:`ease_matrix` of training baskets, ``B``.

    A context's scores are the *sum* of its items' rows of ``B`` (``x B`` for the context's 0/1 row
    ``x``: the model's own prediction; averaging instead flattens the scores of longer contexts).
    Items never bought before the cutoff get a zero column: the ID part cannot recommend them. Items
    beyond ``B``'s size (products added to a catalog after training, :meth:`from_matrix`) have no row
    or column at all: they add nothing to a context and score 0.
    """

    def __init__(self, baskets: sp.csr_matrix, lam: float = 500.0, dropout: float = 0.0):
        self.B = ease_matrix(baskets, lam, dropout)
        self.n_items = baskets.shape[1]

    @classmethod
    def for_split(cls, split: ColdStartSplit, lam: float = 500.0, dropout: float = 0.0,
                  customers: bool = False) -> "ItemRegression":
        """Fitted on the split's training baskets (:func:`basket_matrix`, with ``customers``)."""
        return cls(basket_matrix(split, customers=customers), lam=lam, dropout=dropout)

    @classmethod
    def from_matrix(cls, B: np.ndarray, n_items: Optional[int] = None) -> "ItemRegression":
        """The ID part of a fitted ``B`` (e.g. a saved one) over a catalog of ``n_items`` items (default:
        the ones ``B`` knows; more when products were added since)."""
        model = cls.__new__(cls)
        model.B = np.asarray(B, dtype=np.float32)
        model.n_items = B.shape[1] if n_items is None else int(n_items)
        return model

    def score(self, cases: Cases) -> np.ndarray:
        x = cases.context_matrix(self.n_items, weights="uniform")
        known = self.B.shape[0]
        if known == self.n_items:
            return np.asarray(x @ self.B)
        out = np.zeros((len(cases), self.n_items), np.float32)
        out[:, :known] = np.asarray(x[:, :known] @ self.B)
        return out


class TextSimilarity:
    """Content-based recommender: how close each item's text vector is to the context's.

    ``item_vectors`` is a (n_items x d) array or sparse matrix, rows L2-normalised (TF-IDF or LM
    embeddings). ``softness`` says how a context of several clicks becomes one score per item:

    * ``None``: the cosine of the item with the context's *mean* vector;
    * ``t > 0``: ``t * log(mean over clicks c of exp(cos(c, item) / t))``, a soft maximum over the
      clicks. Small ``t`` scores an item by the click it matches best, large ``t`` by the average.
      A customer who clicked a lunch bag and a candle wants items like either; the mean of the two
      vectors is like neither. Chosen on the validation split.

    With one click the two agree. A context with no item gets a row of ``-inf``: nothing to say. A
    text scorer for :class:`~coldstart.models.retrieval.Retriever`.
    """

    def __init__(self, item_vectors, name: str = "text-similarity", softness: Optional[float] = None):
        if softness is not None and not softness > 0:
            raise ValueError(f"softness must be a positive number or None, got {softness!r}")
        self.vectors = item_vectors
        self.name = name
        self.softness = softness

    def score(self, cases: Cases) -> np.ndarray:
        if self.softness is None:
            ctx = cases.context_matrix(self.vectors.shape[0], weights="mean")
            user = ctx @ self.vectors
            user = user.toarray() if sp.issparse(user) else np.asarray(user)
            norms = np.linalg.norm(user, axis=1, keepdims=True)
            scores = _dense((user / np.maximum(norms, 1e-12)) @ self.vectors.T)
            scores[norms[:, 0] == 0] = -np.inf  # no known context item: nothing to say
            return scores
        return self._soft_max(cases)

    def _soft_max(self, cases: Cases) -> np.ndarray:
        lens = np.array([len(c) for c in cases.context])
        scores = np.full((len(cases), self.vectors.shape[0]), -np.inf, np.float32)
        if not lens.sum():
            return scores
        clicks = np.concatenate([c for c in cases.context if len(c)]).astype(np.int64)
        sims = _dense(self.vectors[clicks] @ self.vectors.T) / self.softness   # one row per click
        starts = np.concatenate([[0], np.cumsum(lens[lens > 0])[:-1]])
        top = np.maximum.reduceat(sims, starts, axis=0)
        total = np.add.reduceat(np.exp(sims - np.repeat(top, lens[lens > 0], axis=0)), starts, axis=0)
        scores[lens > 0] = self.softness * (top + np.log(total / lens[lens > 0, None]))
        return scores


def _dense(matrix) -> np.ndarray:
    return (matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)).astype(np.float32)


class Hybrid(Retriever):
    """The course's hybrid baseline: ``id_part + weight * text``, the retrieval recipe without the
    new-product term. Where the text part has nothing to say (a row of ``-inf``) it adds nothing, and
    the ID part alone ranks.

    The course adds text similarity (cosine, in [0, 1]) to item-kNN (mean cosine of co-purchase
    vectors, in [0, 1]): where item-kNN knows an item the two signals add up; where it knows nothing
    (cold items, items never bought with the context) text similarity alone decides the order.
    ``weight`` is chosen on the validation split (:func:`coldstart.training.selection.tune_hybrid`).
    """

    def __init__(self, id_part, text, weight: float = 0.2, name: str = "hybrid"):
        super().__init__(text, id_part=id_part, w_text=weight, no_text="zero", name=name)

    @property
    def weight(self) -> float:
        """The text part's weight (``w_text``)."""
        return self.w_text


def hybrid_for(split: ColdStartSplit, weight: float) -> Hybrid:
    """The course's hybrid baseline on a split: item-kNN + ``weight`` x TF-IDF similarity."""
    return Hybrid(ItemKNN(split), TextSimilarity(tfidf_vectors(split.texts()), name="tfidf"), weight, name="hybrid")
