"""Baseline recommenders: what a fine-tuned model has to beat.

Each baseline is fitted on the *training* rows of a split only (``split.train``, before the
cutoff) and scores the whole catalog for a :class:`~coldstart.evaluate.Batch` of contexts, so
:func:`coldstart.evaluate.evaluate` can run it. All scoring is matrix algebra over the catalog;
nothing loops over items.

* :class:`Popularity` -- items bought by the most training customers (optionally only in the last
  ``window_days`` before the cutoff). Ignores the context.
* :class:`CountryPopularity` -- popularity among training customers of the same country, backed off
  to global popularity: the recommender for a user we know nothing about but their country (k=0).
* :class:`ItemKNN` -- co-purchase similarity: cosine between items' basket (invoice) vectors, summed
  over the context items. ID-based: an item never bought before the cutoff has no basket vector, so
  it can never be recommended (cold items score zero).
* :class:`TextSimilarity` -- content-based: cosine between the mean of the context items' text vectors
  and every item's text vector. Works for cold items, since an item needs only its text. The vectors
  are TF-IDF (:func:`tfidf_vectors`) or a pretrained LM's mean-pooled embeddings (zero-shot).
* :class:`Hybrid` -- item-kNN plus a weighted text similarity.

ID-based methods break ties (e.g. items with no co-purchase) by global popularity, scaled small
enough never to override a real similarity.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..evaluation.harness import Batch
from ..data.protocol import ColdStartSplit


def _customer_counts(train: pd.DataFrame, item_ids: np.ndarray, since=None) -> np.ndarray:
    rows = train if since is None else train[train["date"] >= since]
    counts = rows.groupby("item")["customer"].nunique()
    return counts.reindex(item_ids).fillna(0).to_numpy(dtype=np.float32)


def _tie_breaker(pop: np.ndarray) -> np.ndarray:
    """Popularity squeezed into [0, 1e-3): breaks ties among equal similarities, nothing more."""
    return (1e-3 * pop / (pop.max() + 1.0)).astype(np.float32)


class Popularity:
    """Recommend the items most training customers bought (same list for everyone).

    ``window_days`` restricts the count to the last days before the cutoff ("recent popularity").
    """

    def __init__(self, split: ColdStartSplit, window_days: Optional[int] = None):
        since = None if window_days is None else split.cutoff - pd.Timedelta(days=window_days)
        self.scores = _customer_counts(split.train, split.item_ids, since)
        # an item never bought in the window still outranks nothing; keep all-time order as tie-break
        self.scores = self.scores + _tie_breaker(_customer_counts(split.train, split.item_ids))
        self.name = "popularity" if window_days is None else f"popularity-{window_days}d"

    def score(self, batch: Batch) -> np.ndarray:
        return np.broadcast_to(self.scores, (len(batch), len(self.scores))).copy()


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

    def score(self, batch: Batch) -> np.ndarray:
        out = np.tile(self.backoff * self.glob, (len(batch), 1))
        for row, country in enumerate(batch.country):
            idx = self.countries.get(country)
            if idx is not None:
                out[row] += self.share[idx]
        return out


def basket_matrix(split: ColdStartSplit, customers: bool = False) -> sp.csr_matrix:
    """Binary (invoice x item) matrix of training baskets.

    ``customers=True`` appends one row per customer: every item they bought before the cutoff, over
    all their invoices (what a customer buys across visits, not only within one). Rows of customers
    with no id are not added.
    """
    pos = pd.Series(np.arange(split.n_items), index=split.item_ids)

    def rows(frame, key):
        frame = frame.dropna(subset=[key]).drop_duplicates([key, "item"])
        return pd.factorize(frame[key])[0], pos.reindex(frame["item"]).to_numpy()

    row, col = rows(split.train, "invoice")
    if customers:
        c_row, c_col = rows(split.train, "customer")
        row, col = np.concatenate([row, c_row + (row.max() + 1 if len(row) else 0)]), np.concatenate([col, c_col])
    n_rows = int(row.max()) + 1 if len(row) else 0
    return sp.csr_matrix((np.ones(len(row), np.float32), (row, col)), shape=(n_rows, split.n_items))


class ItemKNN:
    """Item-to-item collaborative filtering on co-purchases within training baskets.

    sim(i, j) = cosine of the items' invoice vectors, sim(i, i) = 0; only the ``neighbours`` largest
    similarities of each item are kept. score(j | context) = mean over context items c of sim(c, j).
    """

    name = "item-knn"

    def __init__(self, split: ColdStartSplit, neighbours: Optional[int] = 200):
        X = basket_matrix(split)
        co = (X.T @ X).toarray().astype(np.float32)
        norms = np.sqrt(np.diag(co))
        sim = co / np.maximum(np.outer(norms, norms), 1e-9)
        np.fill_diagonal(sim, 0.0)
        if neighbours is not None and neighbours < sim.shape[1]:
            cut = np.partition(sim, -neighbours, axis=1)[:, -neighbours][:, None]
            sim = np.where(sim >= cut, sim, 0.0).astype(np.float32)
        self.sim = sim
        self.tie = _tie_breaker(_customer_counts(split.train, split.item_ids))
        self.n_items = split.n_items

    def score(self, batch: Batch) -> np.ndarray:
        ctx = batch.context_matrix(self.n_items, weights="mean")
        return np.asarray(ctx @ self.sim) + self.tie


def tfidf_vectors(texts, ngram_range=(1, 2)) -> sp.csr_matrix:
    """L2-normalised TF-IDF vectors of item texts (word uni- and bigrams)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=ngram_range, sublinear_tf=True).fit_transform(texts).astype(np.float32)


class TextSimilarity:
    """Content-based recommender: cosine between the context's mean text vector and each item's.

    ``item_vectors`` is a (n_items x d) array or sparse matrix, rows L2-normalised (TF-IDF or LM
    embeddings). The context vector is the mean of its items' vectors.
    """

    def __init__(self, item_vectors, name: str = "text-similarity"):
        self.vectors = item_vectors
        self.name = name

    def score(self, batch: Batch) -> np.ndarray:
        ctx = batch.context_matrix(self.vectors.shape[0], weights="mean")
        user = ctx @ self.vectors
        user = user.toarray() if sp.issparse(user) else np.asarray(user)
        norms = np.linalg.norm(user, axis=1, keepdims=True)
        user = user / np.maximum(norms, 1e-12)
        scores = user @ self.vectors.T
        scores = scores.toarray() if sp.issparse(scores) else np.asarray(scores)
        scores = scores.astype(np.float32)
        scores[norms[:, 0] == 0] = -np.inf  # no known context item: nothing to say
        return scores


class Hybrid:
    """``first + weight * second``: a weighted sum of two recommenders' scores.

    The course adds text similarity (cosine, in [0, 1]) to item-kNN (mean cosine of co-purchase
    vectors, in [0, 1]): where item-kNN knows an item the two signals add up; where it knows nothing
    (cold items, items never bought with the context) text similarity alone decides the order.
    ``-inf`` ("nothing to say") counts as 0. ``weight`` is chosen on the validation split.
    """

    def __init__(self, first, second, weight: float = 0.2, name: str = "hybrid"):
        self.first, self.second, self.weight, self.name = first, second, weight, name

    def score(self, batch: Batch) -> np.ndarray:
        a = np.nan_to_num(self.first.score(batch), neginf=0.0)
        b = np.nan_to_num(self.second.score(batch), neginf=0.0)
        return (a + self.weight * b).astype(np.float32)


def hybrid_for(split: ColdStartSplit, weight: float) -> Hybrid:
    """The course's hybrid baseline on a split: item-kNN + ``weight`` x TF-IDF similarity."""
    return Hybrid(ItemKNN(split), TextSimilarity(tfidf_vectors(split.texts()), name="tfidf"), weight, name="hybrid")


def tune_hybrid(valid: ColdStartSplit, weights=(0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0), max_users=None):
    """Choose the hybrid's text weight on the validation split (mean NDCG@10 over k = 1, 3, 5).

    Returns ``(best_weight, curve)`` where ``curve`` is a Series of the validation metric by weight.
    """
    from ..evaluation.harness import evaluate

    knn = ItemKNN(valid)
    text = TextSimilarity(tfidf_vectors(valid.texts()))
    values = []
    for w in weights:
        r = evaluate(Hybrid(knn, text, w), valid, segments=["k=1", "k=3", "k=5"], max_users=max_users, n_boot=0)
        values.append(r.table.query("metric == 'ndcg@10'")["value"].mean())
    curve = pd.Series(values, index=list(weights), name="validation ndcg@10")
    return float(curve.idxmax()), curve
