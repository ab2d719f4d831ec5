"""Ranking, CTR and beyond-accuracy metrics, and bootstrap confidence intervals.

Every function is vectorised with numpy/scipy (no Python loop over items or users). This module
imports only numpy and scipy: it never pulls in TensorFlow.

Conventions (each function's docstring repeats the ones it uses)
----------------------------------------------------------------
Shapes
    ``scores`` is a dense ``(n_users, n_items)`` float matrix, higher = better. ``targets`` and
    ``exclude`` have the same shape and are a boolean/0-1 dense array or a scipy.sparse matrix
    (a stored non-zero means True). ``topk`` is an ``(n_users, k)`` int64 array of item indices,
    best first, padded with ``-1``.
Recommendable items
    An item is recommendable for a user unless its score is ``-inf`` or NaN, or ``exclude`` marks
    it (e.g. the items of the user's context). Non-recommendable items are never recommended.
Ties
    Higher score first; among equal scores, the **lower item index first**. The rule is the same
    in :func:`topk_items` and :func:`reciprocal_rank`, so results are deterministic.
Padding
    When fewer than ``k`` items are recommendable the row of ``topk`` ends with ``-1``. A ``-1`` is
    a miss: a user the method recommends nothing to scores 0 and is never dropped.
Ranking metrics (per user, position ``p`` is 1-based)
    ``recall@K = hits@K / min(|T|, K)``;
    ``ndcg@K = sum_{p<=K, item_p in T} 1/log2(p+1)  /  sum_{p=1}^{min(|T|,K)} 1/log2(p+1)``
    (binary gain); ``hit@K = 1 if hits@K > 0 else 0``; ``RR = 1/rank`` of the best-ranked target in
    the full ranking (0 when no target is recommendable), MRR is its mean. A user with no target
    (``|T| = 0``) gets NaN: such users must not be evaluated (the protocol never creates them).
CTR metrics
    :func:`auc` is the Mann-Whitney statistic with average ranks for ties; :func:`log_loss` is
    ``-mean[y log p + (1-y) log(1-p)]`` with ``p`` clipped to ``[eps, 1-eps]``.
Beyond accuracy
    ``coverage`` = distinct recommended items / n_items; ``intra_list_diversity`` = mean pairwise
    ``1 - cosine`` within a list (NaN for lists of fewer than 2 items); ``novelty`` = mean
    ``-log2 p(i)`` with add-one smoothing ``p(i) = (count_i + 1) / (n_users_train + 1)``.
Embeddings
    :func:`neighbour_recall`: of an item's strongest partners in a reference similarity (e.g.
    co-purchases), the share that are among its nearest in another (e.g. text vectors).
Bootstrap
    Percentile bootstrap over users (resampling users with replacement), ``n_boot`` resamples,
    a ``1 - alpha`` interval, a fixed ``seed`` (same inputs + same seed = same interval). NaN
    entries are dropped before resampling. :func:`coverage_ci` re-centres its interval on the
    observed value (see its docstring for why).
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

__all__ = [
    "auc",
    "bootstrap_ci",
    "coverage",
    "coverage_ci",
    "intra_list_diversity",
    "item_ranks",
    "log_loss",
    "novelty",
    "paired_bootstrap",
    "ranking_metrics",
    "reciprocal_rank",
    "summarise",
    "topk_items",
    "unpaired_bootstrap",
]

# Upper bound on the number of resampled entries drawn at once by the bootstrap functions
# (n_boot * n_users). Larger requests are split into chunks of resamples to bound memory.
MAX_BOOTSTRAP_DRAWS = 50_000_000


# --------------------------------------------------------------------------------------------
# Input helpers
# --------------------------------------------------------------------------------------------
def _as_score_matrix(scores) -> np.ndarray:
    """Return ``scores`` as a 2-D float array (float32 and float64 kept, anything else float64)."""
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a 2-D (n_users, n_items) array, got shape {scores.shape}")
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    return scores


def _as_dense_bool(matrix, shape: tuple, name: str) -> np.ndarray:
    """Return a boolean dense copy of a dense or scipy.sparse matrix (non-zero = True)."""
    if sp.issparse(matrix):
        dense = matrix.toarray() != 0
    else:
        dense = np.asarray(matrix) != 0
    if dense.shape != tuple(shape):
        raise ValueError(f"{name} has shape {dense.shape}, expected {tuple(shape)}")
    return dense


def _recommendable_scores(scores, exclude=None) -> np.ndarray:
    """Copy of ``scores`` where every non-recommendable item (NaN, -inf, excluded) is ``-inf``."""
    scores = _as_score_matrix(scores)
    masked = np.where(np.isnan(scores), -np.inf, scores)  # a copy: the caller's array is untouched
    if exclude is not None:
        masked[_as_dense_bool(exclude, scores.shape, "exclude")] = -np.inf
    return masked


def _as_topk(topk, n_items: Optional[int] = None) -> np.ndarray:
    """Validate a top-k matrix: 2-D integers, ``-1`` padding only, no repeated item in a row."""
    topk = np.asarray(topk)
    if topk.ndim != 2 or not np.issubdtype(topk.dtype, np.integer):
        raise ValueError(f"topk must be a 2-D integer array, got {topk.dtype} {topk.shape}")
    if topk.size and topk.min() < -1:
        raise ValueError("topk may contain item indices >= 0 and the padding value -1 only")
    if n_items is not None and topk.size and topk.max() >= n_items:
        raise ValueError(f"topk contains item index {topk.max()} but there are {n_items} items")
    ordered = np.sort(topk, axis=1)
    if np.any((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)):
        raise ValueError("a row of topk recommends the same item twice")
    return topk.astype(np.int64, copy=False)


def _check_alpha(alpha: float, n_boot: int) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")


# --------------------------------------------------------------------------------------------
# Top-k selection and ranking metrics
# --------------------------------------------------------------------------------------------
def topk_items(scores, k: int, exclude=None) -> np.ndarray:
    """Indices of the ``k`` highest-scoring recommendable items per user, best first.

    Parameters
    ----------
    scores: ``(n_users, n_items)`` float matrix, higher = better.
    k: list length (a positive integer; it may exceed ``n_items``).
    exclude: optional boolean array or scipy.sparse matrix of the same shape; True (a stored
        non-zero) = the item must not be recommended to that user, e.g. the user's context items.

    Returns
    -------
    ``(n_users, k)`` int64 array. Items with score ``-inf`` or NaN, and excluded items, are never
    recommended; when fewer than ``k`` items are recommendable the row is padded with ``-1``.

    Ties are broken by the **lower item index first**: the order is by ``(-score, index)``. The
    selection is exact even when ties straddle the k-th place: ``np.partition`` finds the k-th
    best score ``t``; every item scoring above ``t`` is taken, and the remaining places go to the
    lowest-index items scoring exactly ``t``. The k chosen items are then sorted with
    ``np.lexsort`` on ``(index, -score)``.
    """
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    k = int(k)
    masked = _recommendable_scores(scores, exclude)
    n_users, n_items = masked.shape
    k_sel = min(k, n_items)  # we can select at most n_items, the rest is padding
    if n_users == 0 or n_items == 0:
        return np.full((n_users, k), -1, dtype=np.int64)

    # k-th best score per user (-inf when fewer than k items are recommendable).
    kth_best = -np.partition(-masked, k_sel - 1, axis=1)[:, k_sel - 1 : k_sel]
    above = masked > kth_best
    at_threshold = masked == kth_best
    places_left = k_sel - above.sum(axis=1, keepdims=True)
    # Lowest-index items at the threshold fill the remaining places (cumsum counts them in order).
    chosen = above | (at_threshold & (np.cumsum(at_threshold, axis=1) <= places_left))

    # Exactly k_sel items per row; np.nonzero lists them row by row, in increasing index order.
    items = np.nonzero(chosen)[1].reshape(n_users, k_sel)
    item_scores = np.take_along_axis(masked, items, axis=1)
    order = np.lexsort((items, -item_scores), axis=-1)
    items = np.take_along_axis(items, order, axis=1)
    item_scores = np.take_along_axis(item_scores, order, axis=1)

    topk = np.full((n_users, k), -1, dtype=np.int64)
    topk[:, :k_sel] = np.where(item_scores == -np.inf, -1, items)
    return topk


def _dcg_discounts(max_k: int) -> np.ndarray:
    """``1 / log2(p + 1)`` for positions ``p = 1 .. max_k``."""
    return 1.0 / np.log2(np.arange(2, max_k + 2, dtype=np.float64))


def ranking_metrics(topk, targets, ks: Sequence[int] = (10, 20)) -> dict[str, np.ndarray]:
    """Per-user recall@K, ndcg@K and hit@K for each ``K`` in ``ks``.

    Parameters
    ----------
    topk: ``(n_users, k)`` int array from :func:`topk_items`, best first; ``-1`` = padding.
        ``k`` must be at least ``max(ks)``; a row must not repeat an item.
    targets: ``(n_users, n_items)`` scipy.sparse matrix of 0/1 or boolean dense array; ``T`` is
        the set of items marked for the user (the held-out purchases).
    ks: the cut-offs.

    Returns
    -------
    ``{"recall@K": ..., "ndcg@K": ..., "hit@K": ...}``, each a float64 array of shape
    ``(n_users,)`` in the order of the users, with (``p`` = 1-based position)

    * ``recall@K = hits@K / min(|T|, K)`` (so a perfect list scores 1 even when ``|T| > K``);
    * ``ndcg@K = DCG@K / IDCG@K``, ``DCG@K = sum_{p<=K, item_p in T} 1/log2(p+1)`` (binary gain),
      ``IDCG@K = sum_{p=1}^{min(|T|,K)} 1/log2(p+1)``;
    * ``hit@K = 1`` if any target is in the top K, else 0.

    A ``-1`` (padding) is a miss: a user with nothing recommended gets 0 and stays in the mean.
    A user with no target gets NaN for every metric; do not evaluate such users (the evaluation
    protocol never creates them).
    """
    ks = [int(K) for K in ks]
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be a non-empty list of positive integers, got {ks}")
    if not sp.issparse(targets):
        targets = np.asarray(targets)
    if len(targets.shape) != 2:
        raise ValueError(f"targets must be 2-D (n_users, n_items), got shape {targets.shape}")
    topk = _as_topk(topk, n_items=targets.shape[1])
    n_users, list_len = topk.shape
    if max(ks) > list_len:
        raise ValueError(f"topk has {list_len} columns, fewer than the largest cut-off {max(ks)}")
    targets = _as_dense_bool(targets, (n_users, targets.shape[1]), "targets")

    # hits[u, p] = True iff the item at position p of user u's list is one of u's targets.
    hits = np.take_along_axis(targets, np.maximum(topk, 0), axis=1) & (topk >= 0)
    n_targets = targets.sum(axis=1)
    discounts = _dcg_discounts(max(ks))
    ideal_dcg_by_length = np.concatenate([[0.0], np.cumsum(discounts)])  # index = nb of targets

    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for K in ks:
            hits_at_k = hits[:, :K].sum(axis=1)
            best_possible = np.minimum(n_targets, K)
            dcg = hits[:, :K] @ discounts[:K]
            ideal = ideal_dcg_by_length[best_possible]
            no_target = n_targets == 0
            out[f"recall@{K}"] = np.where(no_target, np.nan, hits_at_k / best_possible)
            out[f"ndcg@{K}"] = np.where(no_target, np.nan, dcg / ideal)
            out[f"hit@{K}"] = np.where(no_target, np.nan, (hits_at_k > 0).astype(np.float64))
    return out


def reciprocal_rank(scores, targets, exclude=None) -> np.ndarray:
    """Per-user ``1 / rank`` of the best-ranked target in the full ranking of recommendable items.

    The ranking is the one of :func:`topk_items` with ``k = n_items``: recommendable items only
    (not ``-inf``, not NaN, not excluded), higher score first, lower item index first on ties.
    Without sorting, for each user the best target ``i*`` (highest score ``s*``, lowest index on
    ties) has

        ``rank = 1 + #{recommendable j: s_j > s*} + #{recommendable j: s_j == s*, j < i*}``.

    A user none of whose targets is recommendable gets 0 (a miss, not NaN). MRR is the mean.

    Parameters
    ----------
    scores: ``(n_users, n_items)`` float matrix.
    targets: boolean/0-1 array or scipy.sparse matrix of the same shape.
    exclude: optional boolean array or scipy.sparse matrix; True = not recommendable.

    Returns
    -------
    float64 array of shape ``(n_users,)`` with values in ``{0} U (0, 1]``.
    """
    masked = _recommendable_scores(scores, exclude)
    targets = _as_dense_bool(targets, masked.shape, "targets")
    reachable = targets & (masked > -np.inf)
    has_target = reachable.any(axis=1)

    best_score = np.where(reachable, masked, -np.inf).max(axis=1, initial=-np.inf)[:, None]
    # First (lowest-index) reachable target scoring exactly the best target score.
    best_index = np.argmax(reachable & (masked == best_score), axis=1)
    rank = 1 + item_ranks(masked, best_index)
    return np.where(has_target, 1.0 / rank, 0.0)


def item_ranks(scores, items) -> np.ndarray:
    """0-based rank of item ``items[u]`` in row ``u`` of ``scores``: the number of items ahead of it,
    higher score first and, on equal scores, the lower item index first (the order of
    :func:`topk_items`). Returns an int64 array of shape ``(n_users,)``."""
    scores = np.asarray(scores)
    items = np.asarray(items, dtype=np.int64)
    own = scores[np.arange(len(items)), items][:, None]
    lower = np.arange(scores.shape[1])[None, :] < items[:, None]
    return ((scores > own) | ((scores == own) & lower)).sum(axis=1).astype(np.int64)


# --------------------------------------------------------------------------------------------
# CTR metrics
# --------------------------------------------------------------------------------------------
def _as_binary_labels(labels, other, other_name: str) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).ravel()
    other = np.asarray(other, dtype=np.float64).ravel()
    if labels.shape != other.shape:
        raise ValueError(f"labels and {other_name} differ in length: {labels.size} != {other.size}")
    if labels.size == 0:
        raise ValueError("labels are empty")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0/1 or boolean")
    if np.isnan(other).any():
        raise ValueError(f"{other_name} contain NaN")
    return labels.astype(bool), other


def auc(labels, scores) -> float:
    """Area under the ROC curve, computed as the Mann-Whitney U statistic.

    ``AUC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos * n_neg)`` where ``R_pos`` is the sum of the
    ranks (1-based, ascending score, **average ranks for ties**) of the positive examples. It is
    the probability that a random positive scores above a random negative, ties counting 1/2.

    Raises ValueError if the lengths differ, labels are not 0/1, scores contain NaN, or labels
    contain only one class (AUC is undefined then).
    """
    labels, scores = _as_binary_labels(labels, scores, "scores")
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC is undefined when labels contain only one class")
    ranks = rankdata(scores, method="average")
    rank_sum_pos = ranks[labels].sum()
    return float((rank_sum_pos - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(labels, probs, eps: float = 1e-7) -> float:
    """Binary cross-entropy ``-mean[y log p + (1 - y) log(1 - p)]`` (natural log).

    ``probs`` are the predicted probabilities of class 1, clipped to ``[eps, 1 - eps]`` so that a
    confident mistake costs ``-log(eps)`` (about 16.1 for the default) instead of infinity.
    Raises ValueError if the lengths differ, labels are not 0/1 or probabilities contain NaN.
    """
    labels, probs = _as_binary_labels(labels, probs, "probs")
    p = np.clip(probs, eps, 1.0 - eps)
    return float(-np.mean(np.where(labels, np.log(p), np.log1p(-p))))


# --------------------------------------------------------------------------------------------
# Beyond accuracy: coverage, diversity, novelty
# --------------------------------------------------------------------------------------------
def coverage(topk, n_items: int) -> float:
    """Catalog coverage: distinct items recommended to anybody (``-1`` ignored) / ``n_items``."""
    topk = _as_topk(topk, n_items)
    return float(np.unique(topk[topk >= 0]).size / n_items)


def intra_list_diversity(topk, item_vectors=None, *, similarity=None) -> np.ndarray:
    """Per-user intra-list diversity: mean pairwise ``1 - cosine similarity`` within the list.

    ``ILD(u) = 1 / (n (n - 1) / 2) * sum_{p < q} (1 - cos(v_p, v_q))`` over the ``n`` recommended
    items of user ``u`` (``-1`` padding skipped). Give the items' vectors ``item_vectors`` (n_items x
    d; L2-normalised here, a zero vector stays zero: its cosine with anything is 0), or their
    precomputed cosine matrix ``similarity`` (n_items x n_items). Lists with fewer than 2 items give
    NaN. Orthogonal items give 1, identical directions give 0.

    Vectorised: the ``(n_users, k, k)`` cosine matrices of the lists, with padded rows and columns
    zeroed so they add nothing -- from one batched matmul of the gathered vectors (memory
    ``n_users * k * d``) or gathered from ``similarity`` (``n_users * k * k``).
    """
    if (item_vectors is None) == (similarity is None):
        raise ValueError("give item_vectors or similarity, not both")
    if similarity is not None:
        similarity = np.asarray(similarity)
        topk = _as_topk(topk, similarity.shape[0])
        valid = topk >= 0
        idx = np.maximum(topk, 0)
        cosine = similarity[idx[:, :, None], idx[:, None, :]] * (valid[:, :, None] & valid[:, None, :])
    else:
        vectors = np.asarray(item_vectors, dtype=np.float64)
        if vectors.ndim != 2:
            raise ValueError(f"item_vectors must be 2-D (n_items, d), got shape {vectors.shape}")
        topk = _as_topk(topk, vectors.shape[0])
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = vectors / np.where(norms > 0, norms, 1.0)
        valid = topk >= 0
        gathered = unit[np.maximum(topk, 0)] * valid[:, :, None]  # (U, k, d), padding -> 0
        cosine = gathered @ gathered.transpose(0, 2, 1)  # (U, k, k)
    n = valid.sum(axis=1)
    # Sum over pairs p < q = (sum over all entries - diagonal) / 2.
    pair_similarity = (cosine.sum(axis=(1, 2)) - np.trace(cosine, axis1=1, axis2=2)) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n >= 2, 1.0 - pair_similarity / (n * (n - 1) / 2), np.nan)


def novelty(topk, item_counts, n_users_train: int) -> np.ndarray:
    """Per-user novelty: mean self-information ``-log2 p(i)`` of the recommended items.

    ``p(i) = (item_counts[i] + 1) / (n_users_train + 1)`` is the add-one smoothed share of
    training users who interacted with item ``i`` (``item_counts[i]`` of ``n_users_train``).
    The smoothing keeps cold items (count 0) finite: they get ``log2(n_users_train + 1)`` bits,
    the maximum; an item everybody bought gets 0 bits. ``-1`` padding is skipped; a user with an
    empty list gets NaN.
    """
    counts = np.asarray(item_counts, dtype=np.float64).ravel()
    if counts.size and (counts.min() < 0 or counts.max() > n_users_train):
        raise ValueError("item_counts must lie between 0 and n_users_train")
    topk = _as_topk(topk, counts.size)
    self_information = -np.log2((counts + 1.0) / (n_users_train + 1.0))
    valid = topk >= 0
    total = np.where(valid, self_information[np.maximum(topk, 0)], 0.0).sum(axis=1)
    n = valid.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, total / n, np.nan)


def neighbour_recall(similarity, reference, items, pool, n_reference: int = 10, n_similar: int = 50) -> np.ndarray:
    """Per item of ``items``: the share of its ``n_reference`` strongest partners in ``reference`` that
    are among its ``n_similar`` nearest in ``similarity``, both searched among ``pool`` only.

    ``similarity`` and ``reference`` are (items x items) arrays, e.g. the cosines of text vectors and
    of co-purchases; ``items`` are positions, ``pool`` a boolean mask of the candidates (an item is
    never its own partner). It asks whether a text model puts a product near what it is bought with.
    Partners tied with the ``n_reference``-th strongest all count (a product bought in one invoice has
    many equal partners); ties among the nearest are broken by position. An item with fewer than
    ``n_reference`` positive partners in the pool gets NaN: too few purchases to say.
    """
    if n_reference < 1 or n_similar < 1:
        raise ValueError(f"n_reference and n_similar must be at least 1, got {n_reference} and {n_similar}")
    similarity, reference = np.asarray(similarity, np.float64), np.asarray(reference, np.float64)
    pool = np.asarray(pool, bool)
    if similarity.shape != reference.shape or similarity.shape != (pool.size, pool.size):
        raise ValueError(f"similarity {similarity.shape}, reference {reference.shape} and pool ({pool.size},) "
                         "must describe the same items")
    out = np.full(len(items), np.nan)
    for j, item in enumerate(np.asarray(items, np.int64)):
        candidates = np.flatnonzero(pool & (np.arange(pool.size) != item))
        partners = reference[item, candidates]
        if (partners > 0).sum() < n_reference:
            continue
        last = np.sort(partners)[-n_reference]   # ties with the last partner count too
        strongest = candidates[partners >= last]
        nearest = candidates[np.argsort(-similarity[item, candidates], kind="stable")[:n_similar]]
        out[j] = np.isin(strongest, nearest).mean()
    return out


# --------------------------------------------------------------------------------------------
# Bootstrap confidence intervals
# --------------------------------------------------------------------------------------------
def _resample_chunks(n_boot: int, n: int) -> Iterable[int]:
    """Sizes of the chunks of resamples so that one chunk draws at most MAX_BOOTSTRAP_DRAWS."""
    per_chunk = max(1, MAX_BOOTSTRAP_DRAWS // max(n, 1))
    for start in range(0, n_boot, per_chunk):
        yield min(per_chunk, n_boot - start)


def _bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement, same size) of the 1-D array ``values``."""
    n = values.size
    means = [
        values[rng.integers(0, n, size=(size, n))].mean(axis=1)
        for size in _resample_chunks(int(n_boot), n)
    ]
    return np.concatenate(means)


def _percentile_interval(draws: np.ndarray, alpha: float) -> tuple[float, float]:
    low, high = np.percentile(draws, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def bootstrap_ci(
    values, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of a per-user array and its percentile-bootstrap ``1 - alpha`` confidence interval.

    Users are resampled with replacement ``n_boot`` times; the interval is the ``alpha/2`` and
    ``1 - alpha/2`` percentiles of the resampled means. NaN entries are dropped before resampling
    (evaluation never produces NaN for accuracy metrics; ILD/novelty may). The point value is the
    plain mean of the non-NaN values. Same inputs and ``seed`` give the same interval.

    Returns ``(mean, low, high)``; ``(nan, nan, nan)`` if no value is left.
    """
    _check_alpha(alpha, n_boot)
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (np.nan, np.nan, np.nan)
    draws = _bootstrap_means(values, n_boot, np.random.default_rng(seed))
    low, high = _percentile_interval(draws, alpha)
    return float(values.mean()), low, high


def paired_bootstrap(a, b, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> dict:
    """Paired bootstrap of ``mean(a) - mean(b)`` for two per-user arrays over the SAME users.

    ``a[u]`` and ``b[u]`` must be the two methods' values for the same user ``u`` (same length,
    same order; a ValueError otherwise). Users are resampled jointly, so the per-user differences
    ``a[u] - b[u]`` are what gets resampled. Users where either value is NaN are dropped.

    Returns ``{"diff", "low", "high", "p_value"}``: ``diff = mean(a) - mean(b)``, the percentile
    ``1 - alpha`` interval of the resampled differences, and the two-sided bootstrap p-value
    ``min(1, 2 * min(frac(diff_b <= 0), frac(diff_b >= 0)))``. Its resolution is ``1 / n_boot``:
    0 means "below 1/n_boot", not exactly 0.
    """
    _check_alpha(alpha, n_boot)
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"a and b must hold the same users: lengths {a.size} != {b.size}")
    differences = a - b
    differences = differences[~np.isnan(differences)]
    if differences.size == 0:
        return {"diff": np.nan, "low": np.nan, "high": np.nan, "p_value": np.nan}
    draws = _bootstrap_means(differences, n_boot, np.random.default_rng(seed))
    low, high = _percentile_interval(draws, alpha)
    p_value = min(1.0, 2.0 * min(np.mean(draws <= 0), np.mean(draws >= 0)))
    return {"diff": float(differences.mean()), "low": low, "high": high, "p_value": float(p_value)}


def unpaired_bootstrap(a, b, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> dict:
    """Bootstrap of ``mean(a) - mean(b)`` for two per-user arrays of DIFFERENT users.

    For two groups (new customers of two markets or two seasons) there is no pairing: each group
    is resampled on its own, with replacement and at its own size, and the interval is the
    percentile ``1 - alpha`` interval of the differences of the resampled means. NaN entries are
    dropped first. Same return value as :func:`paired_bootstrap`: ``{"diff", "low", "high",
    "p_value"}`` (all NaN if either group is empty).
    """
    _check_alpha(alpha, n_boot)
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        return {"diff": np.nan, "low": np.nan, "high": np.nan, "p_value": np.nan}
    rng = np.random.default_rng(seed)
    draws = _bootstrap_means(a, n_boot, rng) - _bootstrap_means(b, n_boot, rng)
    low, high = _percentile_interval(draws, alpha)
    p_value = min(1.0, 2.0 * min(np.mean(draws <= 0), np.mean(draws >= 0)))
    return {"diff": float(a.mean() - b.mean()), "low": low, "high": high, "p_value": float(p_value)}


def coverage_ci(
    topk, n_items: int, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """Catalog coverage with a bootstrap-over-users ``1 - alpha`` interval.

    Vectorised: ``M`` is the sparse ``(n_users, n_items)`` incidence of recommended items; a
    resample of users is a row of multinomial weights ``W[b]`` (how many times each user is drawn,
    summing to ``n_users``); item ``i`` is covered in resample ``b`` iff ``(W @ M)[b, i] > 0``.

    Centring: coverage counts *distinct* items, and a resample with replacement contains only
    about 63% distinct users, so every resample covers a subset of the observed items and the raw
    percentile interval lies entirely below the observed value. We therefore keep the bootstrap
    spread but centre it on the observed value: with ``q_lo, q_med, q_hi`` the ``alpha/2``, 50%
    and ``1 - alpha/2`` percentiles of the resampled coverages,
    ``low = value - (q_med - q_lo)`` and ``high = value + (q_hi - q_med)``, clipped to [0, 1].
    The interval always contains the observed value; read it as an approximate measure of how
    much coverage depends on the particular users evaluated.

    Returns ``(value, low, high)``.
    """
    _check_alpha(alpha, n_boot)
    topk = _as_topk(topk, n_items)
    value = coverage(topk, n_items)
    n_users = topk.shape[0]
    if n_users == 0:
        return (value, value, value)
    users, positions = np.nonzero(topk >= 0)
    incidence = sp.csr_matrix(
        (np.ones(users.size), (users, topk[users, positions])), shape=(n_users, n_items)
    )
    rng = np.random.default_rng(seed)
    uniform = np.full(n_users, 1.0 / n_users)
    draws = []
    for size in _resample_chunks(int(n_boot), max(n_users, n_items)):
        weights = rng.multinomial(n_users, uniform, size=size).astype(np.float64)  # (size, U)
        item_weight = np.asarray(incidence.T @ weights.T).T  # (size, n_items) == W @ M
        draws.append((item_weight > 0).sum(axis=1) / n_items)
    draws = np.concatenate(draws)
    q_low, q_median, q_high = np.percentile(draws, [100 * alpha / 2, 50, 100 * (1 - alpha / 2)])
    low = max(0.0, value - (q_median - q_low))
    high = min(1.0, value + (q_high - q_median))
    return value, float(low), float(high)


def summarise(
    per_user: dict[str, np.ndarray], n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> list[dict]:
    """One row per metric: ``{"metric", "value", "ci_low", "ci_high", "n_users"}``.

    Calls :func:`bootstrap_ci` on each per-user array, in the order of ``per_user``, with the same
    ``seed`` for every metric (so, for arrays without NaN, all metrics use the same user
    resamples). ``n_users`` counts the non-NaN entries the value is the mean of.
    """
    rows = []
    for name, values in per_user.items():
        values = np.asarray(values, dtype=np.float64).ravel()
        mean, low, high = bootstrap_ci(values, n_boot=n_boot, alpha=alpha, seed=seed)
        rows.append(
            {
                "metric": name,
                "value": mean,
                "ci_low": low,
                "ci_high": high,
                "n_users": int(np.count_nonzero(~np.isnan(values))),
            }
        )
    return rows
