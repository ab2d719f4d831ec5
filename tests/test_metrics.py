"""Tests of coldstart.evaluation.metrics: hand-computed cases, brute-force and sklearn cross-checks, speed."""

import ast
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from coldstart.evaluation import metrics as M

INV_LOG2_3 = 0.6309297535714575  # 1 / log2(3): discount of position 2
INV_LOG2_5 = 0.43067655807339306  # 1 / log2(5): discount of position 4


# ------------------------------------------------------------------------------------------
# helpers: brute-force references (full sort, one user at a time)
# ------------------------------------------------------------------------------------------
def _recommendable(scores, exclude=None):
    s = np.where(np.isnan(scores), -np.inf, scores.astype(np.float64))
    if exclude is not None:
        s[np.asarray(exclude, dtype=bool)] = -np.inf
    return s


def _full_ranking(row):
    """Recommendable items of one user, sorted by (-score, index)."""
    order = np.lexsort((np.arange(row.size), -row))
    return [int(i) for i in order if row[i] > -np.inf]


def brute_topk(scores, k, exclude=None):
    s = _recommendable(scores, exclude)
    out = np.full((s.shape[0], k), -1, dtype=np.int64)
    for u, row in enumerate(s):
        ranked = _full_ranking(row)[:k]
        out[u, : len(ranked)] = ranked
    return out


def brute_reciprocal_rank(scores, targets, exclude=None):
    s = _recommendable(scores, exclude)
    out = np.zeros(s.shape[0])
    for u, row in enumerate(s):
        for position, item in enumerate(_full_ranking(row), start=1):
            if targets[u, item]:
                out[u] = 1.0 / position
                break
    return out


def random_int_scores(rng, n_users, n_items, n_levels=5, frac_neg_inf=0.1):
    """Integer-valued scores (many ties) with some -inf."""
    scores = rng.integers(0, n_levels, size=(n_users, n_items)).astype(np.float32)
    scores[rng.random((n_users, n_items)) < frac_neg_inf] = -np.inf
    return scores


# ------------------------------------------------------------------------------------------
# module hygiene
# ------------------------------------------------------------------------------------------
def test_module_imports_only_numpy_and_scipy():
    tree = ast.parse(Path(M.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "typing", "numpy", "scipy"}, imported


# ------------------------------------------------------------------------------------------
# topk_items
# ------------------------------------------------------------------------------------------
def test_topk_orders_best_first_and_returns_int64():
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [3.0, 1.0, 2.0, 0.0]], dtype=np.float32)
    top = M.topk_items(scores, 3)
    assert top.dtype == np.int64
    np.testing.assert_array_equal(top, [[1, 3, 2], [0, 2, 1]])


def test_topk_ties_broken_by_lower_index():
    # all four items tie on 1.0; item 4 is best; the tie at the k-th place goes to indices 0, 1
    scores = np.array([[1.0, 1.0, 1.0, 1.0, 2.0, 0.0]])
    np.testing.assert_array_equal(M.topk_items(scores, 3), [[4, 0, 1]])
    # tie straddling the boundary, with the tied items not at the front
    scores = np.array([[0.0, 5.0, 3.0, 5.0, 3.0, 3.0]])
    np.testing.assert_array_equal(M.topk_items(scores, 4), [[1, 3, 2, 4]])


def test_topk_never_recommends_neg_inf_nan_or_excluded_and_pads():
    scores = np.array(
        [
            [0.3, -np.inf, 0.9, np.nan, 0.5],
            [0.3, 0.2, 0.9, 0.8, 0.5],
        ]
    )
    exclude = np.array(
        [
            [False, False, False, False, True],  # item 4 excluded for user 0
            [False, False, True, True, False],  # items 2, 3 excluded for user 1
        ]
    )
    # user 0: recommendable = {0: 0.3, 2: 0.9} -> [2, 0, -1, -1]
    # user 1: recommendable = {0: 0.3, 1: 0.2, 4: 0.5} -> [4, 0, 1, -1]
    expected = [[2, 0, -1, -1], [4, 0, 1, -1]]
    np.testing.assert_array_equal(M.topk_items(scores, 4, exclude=exclude), expected)
    np.testing.assert_array_equal(M.topk_items(scores, 4, exclude=sp.csr_matrix(exclude)), expected)


def test_topk_sparse_exclude_ignores_explicit_zeros():
    scores = np.array([[1.0, 2.0, 3.0]])
    exclude = sp.csr_matrix((np.array([0, 1]), (np.array([0, 0]), np.array([1, 2]))), shape=(1, 3))
    # stored 0 at item 1 is not an exclusion; stored 1 at item 2 is
    np.testing.assert_array_equal(M.topk_items(scores, 3, exclude=exclude), [[1, 0, -1]])


def test_topk_k_larger_than_catalog_and_all_excluded():
    scores = np.array([[0.2, 0.1], [-np.inf, -np.inf]])
    np.testing.assert_array_equal(M.topk_items(scores, 4), [[0, 1, -1, -1], [-1, -1, -1, -1]])


def test_topk_does_not_modify_input():
    scores = np.array([[1.0, np.nan, 3.0]])
    exclude = np.array([[True, False, False]])
    copy = scores.copy()
    M.topk_items(scores, 2, exclude=exclude)
    np.testing.assert_array_equal(scores, copy)


@pytest.mark.parametrize("k", [0, -1, 2.5])
def test_topk_rejects_bad_k(k):
    with pytest.raises(ValueError):
        M.topk_items(np.zeros((2, 3)), k)


@pytest.mark.parametrize("seed", range(5))
def test_topk_equals_brute_force_full_sort_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = random_int_scores(rng, 30, 40)
    scores[rng.random(scores.shape) < 0.05] = np.nan
    exclude = rng.random(scores.shape) < 0.2
    for k in (1, 7, 40, 45):
        np.testing.assert_array_equal(
            M.topk_items(scores, k, exclude=exclude), brute_topk(scores, k, exclude)
        )


# ------------------------------------------------------------------------------------------
# ranking_metrics
# ------------------------------------------------------------------------------------------
def _hand_case():
    topk = np.array(
        [
            [2, 0, 5, 1],  # user 0, targets {0, 1}: hits at positions 2 and 4
            [3, 4, -1, -1],  # user 1, targets {3, 4, 5}: hits at positions 1 and 2, then padding
            [-1, -1, -1, -1],  # user 2, target {2}: nothing recommended
        ]
    )
    targets = np.zeros((3, 6), dtype=bool)
    targets[0, [0, 1]] = True
    targets[1, [3, 4, 5]] = True
    targets[2, 2] = True
    return topk, targets


def test_ranking_metrics_hand_case():
    topk, targets = _hand_case()
    out = M.ranking_metrics(topk, targets, ks=(2, 4))
    # user 0 @2: 1 hit / min(2, 2) = 0.5 ; DCG = 1/log2(3) = 0.63093 ;
    #   IDCG = 1 + 1/log2(3) = 1.63093 -> 0.38685
    # user 0 @4: 2 hits / min(2, 4) = 1.0 ; DCG = 1/log2(3) + 1/log2(5) = 1.06161 ;
    #   IDCG = 1.63093 -> 0.65092
    # user 1 @2: 2 hits / min(3, 2) = 1.0 ; DCG = 1 + 0.63093 = IDCG -> 1.0
    # user 1 @4: 2 hits / min(3, 4) = 0.66667 ; DCG = 1.63093 ; IDCG = 1 + 0.63093 + 0.5 = 2.13093
    #   -> 0.76536
    # user 2: nothing recommended -> 0 everywhere
    np.testing.assert_allclose(out["recall@2"], [0.5, 1.0, 0.0])
    np.testing.assert_allclose(out["recall@4"], [1.0, 0.666667, 0.0], rtol=1e-5)
    np.testing.assert_allclose(out["ndcg@2"], [0.386853, 1.0, 0.0], rtol=1e-5)
    np.testing.assert_allclose(out["ndcg@4"], [0.650921, 0.765361, 0.0], rtol=1e-5)
    np.testing.assert_allclose(out["hit@2"], [1.0, 1.0, 0.0])
    np.testing.assert_allclose(out["hit@4"], [1.0, 1.0, 0.0])
    assert set(out) == {f"{m}@{k}" for m in ("recall", "ndcg", "hit") for k in (2, 4)}
    assert all(v.shape == (3,) and v.dtype == np.float64 for v in out.values())
    # the constants used above
    assert INV_LOG2_3 == pytest.approx(1 / np.log2(3))
    assert INV_LOG2_5 == pytest.approx(1 / np.log2(5))


def test_ranking_metrics_sparse_targets_equal_dense():
    topk, targets = _hand_case()
    dense = M.ranking_metrics(topk, targets, ks=(2, 4))
    sparse = M.ranking_metrics(topk, sp.csr_matrix(targets.astype(np.int8)), ks=(2, 4))
    for key in dense:
        np.testing.assert_array_equal(dense[key], sparse[key])


def test_recall_is_normalised_by_min_of_targets_and_k():
    # 5 targets, K = 2, both recommended items are targets
    topk = np.array([[0, 1, 7, 6]])
    targets = np.zeros((1, 8), dtype=bool)
    targets[0, :5] = True
    out = M.ranking_metrics(topk, targets, ks=(2, 4))
    # @2: 2 hits / min(5, 2) = 1.0  (not 2/5 = 0.4)
    assert out["recall@2"][0] == pytest.approx(1.0)
    # @4: 2 hits / min(5, 4) = 0.5
    assert out["recall@4"][0] == pytest.approx(0.5)
    # one target, K = 4, found at position 3: recall 1 / min(1, 4) = 1.0
    out = M.ranking_metrics(np.array([[5, 6, 0, 7]]), np.eye(1, 8, 0, dtype=bool), ks=(4,))
    assert out["recall@4"][0] == pytest.approx(1.0)
    # ... ndcg = (1/log2(4)) / 1 = 0.5
    assert out["ndcg@4"][0] == pytest.approx(0.5)


def test_padding_is_a_miss_and_empty_user_counts_as_zero_in_the_mean():
    topk = np.array([[0, 1], [-1, -1]])
    targets = np.array([[1, 0, 0], [0, 1, 0]], dtype=bool)
    out = M.ranking_metrics(topk, targets, ks=(2,))
    # user 0: hit at position 1 -> 1.0 ; user 1: nothing recommended -> 0.0 ; mean 0.5, not 1.0
    np.testing.assert_array_equal(out["recall@2"], [1.0, 0.0])
    assert np.mean(out["recall@2"]) == pytest.approx(0.5)
    assert np.mean(out["ndcg@2"]) == pytest.approx(0.5)
    # a -1 in topk must not be read as numpy's "last item": with a target on the last item,
    # padding is still a miss
    targets_last = np.array([[0, 0, 1], [0, 0, 1]], dtype=bool)
    out = M.ranking_metrics(np.array([[-1, -1], [2, -1]]), targets_last, ks=(2,))
    np.testing.assert_array_equal(out["hit@2"], [0.0, 1.0])
    # ... nor as item 0 (the index padding is clipped to internally)
    targets_first = np.array([[1, 0, 0], [1, 0, 0]], dtype=bool)
    out = M.ranking_metrics(np.array([[-1, -1], [2, 0]]), targets_first, ks=(2,))
    np.testing.assert_array_equal(out["hit@2"], [0.0, 1.0])
    np.testing.assert_array_equal(out["recall@2"], [0.0, 1.0])


def test_user_without_targets_gets_nan():
    out = M.ranking_metrics(np.array([[0, 1], [0, 1]]), np.array([[1, 0], [0, 0]]), ks=(1, 2))
    # user 0: target {0} at position 1 -> 1.0 for every metric; user 1: no target -> NaN
    for values in out.values():
        assert values[0] == 1.0
        assert np.isnan(values[1])


def test_ranking_metrics_rejects_bad_topk():
    targets = np.eye(2, 4, dtype=bool)
    with pytest.raises(ValueError, match="columns"):
        M.ranking_metrics(np.array([[0, 1], [1, 2]]), targets, ks=(3,))
    with pytest.raises(ValueError, match="twice"):
        M.ranking_metrics(np.array([[0, 0], [1, 2]]), targets, ks=(2,))
    with pytest.raises(ValueError):
        M.ranking_metrics(np.array([[0, 9], [1, 2]]), targets, ks=(2,))


@pytest.mark.parametrize("seed", range(3))
def test_ndcg_matches_sklearn_when_targets_fit_in_k(seed):
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(seed)
    n_users, n_items, K = 50, 60, 10
    scores = rng.random((n_users, n_items))  # continuous: no ties (sklearn averages over ties)
    targets = np.zeros((n_users, n_items), dtype=int)
    for u in range(n_users):  # 1..K targets per user, so |T| <= K
        targets[u, rng.choice(n_items, size=rng.integers(1, K + 1), replace=False)] = 1
    ours = M.ranking_metrics(M.topk_items(scores, K), targets, ks=(K,))[f"ndcg@{K}"]
    per_user = [ndcg_score(targets[u : u + 1], scores[u : u + 1], k=K) for u in range(n_users)]
    np.testing.assert_allclose(ours, per_user, rtol=1e-10)
    assert ours.mean() == pytest.approx(ndcg_score(targets, scores, k=K))


def test_ndcg_min_targets_k_convention_when_targets_exceed_k():
    """|T| = 5 > K = 2: the ideal list has min(5, 2) = 2 hits, so a perfect top-2 scores 1."""
    from sklearn.metrics import ndcg_score

    targets = np.array([[1, 1, 1, 1, 1, 0, 0, 0]])
    perfect = np.array([[8, 7, 1, 2, 3, 6, 5, 4.0]])  # top-2 = items 0, 1, both targets
    half = np.array([[8, 1, 0, 2, 3, 7, 5, 4.0]])  # top-2 = items 0, 5: one hit at position 1
    out = M.ranking_metrics(M.topk_items(perfect, 2), targets, ks=(2,))
    # DCG = 1 + 1/log2(3) = IDCG over min(5, 2) = 2 positions -> 1.0
    # (an ideal over all 5 targets would give 1.63093 / 2.94835 = 0.55316 instead)
    assert out["ndcg@2"][0] == pytest.approx(1.0)
    out = M.ranking_metrics(M.topk_items(half, 2), targets, ks=(2,))
    # DCG = 1 ; IDCG = 1 + 1/log2(3) = 1.63093 -> 0.61315
    assert out["ndcg@2"][0] == pytest.approx(0.613147, rel=1e-5)
    # sklearn truncates its ideal ranking at k too, so it agrees here as well
    assert ndcg_score(targets, perfect, k=2) == pytest.approx(1.0)
    assert ndcg_score(targets, half, k=2) == pytest.approx(0.613147, rel=1e-5)


# ------------------------------------------------------------------------------------------
# reciprocal_rank
# ------------------------------------------------------------------------------------------
def test_reciprocal_rank_hand_case():
    scores = np.array(
        [
            [0.5, 0.9, 0.9, 0.1],  # target 2 ties with item 1 (lower index first) -> rank 2
            [0.5, 0.9, 0.9, 0.1],  # same, item 1 excluded -> rank 1
            [0.5, 0.9, -np.inf, 0.1],  # the only target has -inf -> 0
            [0.5, 0.9, np.nan, 0.1],  # the only target is NaN -> 0
            [0.5, 0.9, 0.8, 0.1],  # the only target is excluded -> 0
            [0.5, 0.9, 0.8, 0.1],  # targets 0 (rank 3) and 3 (rank 4): best is 0 -> 1/3
        ]
    )
    targets = np.zeros((6, 4), dtype=bool)
    targets[:5, 2] = True
    targets[5, [0, 3]] = True
    exclude = np.zeros((6, 4), dtype=bool)
    exclude[1, 1] = True
    exclude[4, 2] = True
    rr = M.reciprocal_rank(scores, targets, exclude=exclude)
    np.testing.assert_allclose(rr, [0.5, 1.0, 0.0, 0.0, 0.0, 1 / 3])
    # the same with sparse inputs
    rr_sparse = M.reciprocal_rank(scores, sp.csr_matrix(targets), exclude=sp.csr_matrix(exclude))
    np.testing.assert_allclose(rr_sparse, rr)


def test_reciprocal_rank_among_tied_targets_takes_the_lowest_index():
    # targets 1 and 3 both score 2; item 0 also scores 2 -> order 0, 1, 3 ... -> target 1 at rank 2
    scores = np.array([[2.0, 2.0, 1.0, 2.0]])
    targets = np.array([[0, 1, 0, 1]])
    assert M.reciprocal_rank(scores, targets)[0] == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(5))
def test_reciprocal_rank_equals_brute_force_with_ties(seed):
    rng = np.random.default_rng(100 + seed)
    scores = random_int_scores(rng, 40, 50, n_levels=4)
    scores[rng.random(scores.shape) < 0.03] = np.nan
    targets = rng.random(scores.shape) < 0.05
    exclude = rng.random(scores.shape) < 0.15
    np.testing.assert_allclose(
        M.reciprocal_rank(scores, targets, exclude), brute_reciprocal_rank(scores, targets, exclude)
    )
    np.testing.assert_allclose(
        M.reciprocal_rank(scores, targets), brute_reciprocal_rank(scores, targets)
    )


def test_reciprocal_rank_consistent_with_topk():
    rng = np.random.default_rng(7)
    scores = random_int_scores(rng, 100, 30, n_levels=3, frac_neg_inf=0.0)
    targets = rng.random(scores.shape) < 0.1
    targets[:, 0] |= ~targets.any(axis=1)  # every user has a target
    top = M.topk_items(scores, 30)
    hits = np.take_along_axis(targets, np.maximum(top, 0), axis=1) & (top >= 0)
    first_hit = np.argmax(hits, axis=1) + 1
    np.testing.assert_allclose(M.reciprocal_rank(scores, targets), 1.0 / first_hit)


# ------------------------------------------------------------------------------------------
# auc and log_loss
# ------------------------------------------------------------------------------------------
def test_auc_hand_case_with_tie():
    # positives {0.8, 0.4}, negatives {0.4, 0.1}; pairs: (0.8>0.4)=1, (0.8>0.1)=1, (0.4=0.4)=0.5,
    # (0.4>0.1)=1 -> 3.5 / 4 = 0.875
    assert M.auc([1, 0, 1, 0], [0.8, 0.4, 0.4, 0.1]) == pytest.approx(0.875)
    assert M.auc([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == pytest.approx(1.0)
    assert M.auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == pytest.approx(0.0)


@pytest.mark.parametrize("seed", range(3))
def test_auc_matches_sklearn_with_ties(seed):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=500)
    scores = np.round(rng.random(500) + 0.3 * labels, 1)  # rounding creates many ties
    assert M.auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert M.auc(labels.astype(bool), scores) == pytest.approx(roc_auc_score(labels, scores))


def test_auc_errors():
    with pytest.raises(ValueError, match="one class"):
        M.auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="length"):
        M.auc([1, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        M.auc([1, 2], [0.1, 0.2])


def test_log_loss_hand_case_and_clipping():
    # -(ln 0.8 + ln(1 - 0.4)) / 2 = (0.223144 + 0.510826) / 2 = 0.366985
    assert M.log_loss([1, 0], [0.8, 0.4]) == pytest.approx(0.366985, rel=1e-5)
    # p = 0 for a positive is clipped to eps = 1e-7: -ln(1e-7) = 16.118096
    assert M.log_loss([1], [0.0]) == pytest.approx(16.118096, rel=1e-6)
    assert M.log_loss([0], [1.0]) == pytest.approx(16.118096, rel=1e-6)
    assert np.isfinite(M.log_loss([1, 0], [0.0, 1.0], eps=1e-15))


def test_log_loss_matches_sklearn():
    from sklearn.metrics import log_loss as sk_log_loss

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=1000)
    probs = np.clip(rng.random(1000), 0.01, 0.99)
    assert M.log_loss(labels, probs) == pytest.approx(sk_log_loss(labels, probs), rel=1e-10)


def test_log_loss_length_mismatch():
    with pytest.raises(ValueError, match="length"):
        M.log_loss([1, 0, 1], [0.5, 0.5])


# ------------------------------------------------------------------------------------------
# coverage, intra-list diversity, novelty
# ------------------------------------------------------------------------------------------
def test_coverage_hand_case():
    # distinct items {0, 1} (padding ignored) out of 5 -> 0.4
    assert M.coverage(np.array([[0, 1], [1, -1]]), 5) == pytest.approx(0.4)
    assert M.coverage(np.array([[-1, -1]]), 5) == 0.0


def test_ild_orthogonal_identical_and_hand_case():
    orthogonal = np.eye(3) * np.array([[1.0], [2.0], [5.0]])  # scaled axes: normalised inside
    assert M.intra_list_diversity(np.array([[0, 1, 2]]), orthogonal)[0] == pytest.approx(1.0)
    same_direction = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])
    assert M.intra_list_diversity(np.array([[0, 1, 2]]), same_direction)[0] == pytest.approx(
        0.0, abs=1e-12
    )
    # a = (1, 0), b = (1, 1), c = (0, 1): cos(a,b) = cos(b,c) = 1/sqrt(2) = 0.707107, cos(a,c) = 0
    # ILD = ((1 - 0.707107) + 1 + (1 - 0.707107)) / 3 = 0.528595
    vectors = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    assert M.intra_list_diversity(np.array([[0, 1, 2]]), vectors)[0] == pytest.approx(
        0.528595, rel=1e-5
    )


def test_ild_skips_padding_and_short_lists_are_nan():
    vectors = np.eye(3)
    ild = M.intra_list_diversity(np.array([[0, 1, -1], [2, -1, -1], [-1, -1, -1]]), vectors)
    assert ild[0] == pytest.approx(1.0)  # one pair (0, 1), orthogonal; padding not a zero vector
    assert np.isnan(ild[1]) and np.isnan(ild[2])


def test_novelty_hand_case():
    # n_users_train = 3, counts [3, 1, 0] -> p = [4/4, 2/4, 1/4] -> -log2 p = [0, 1, 2] bits
    topk = np.array([[0, 1], [1, 2], [2, -1], [-1, -1]])
    nov = M.novelty(topk, item_counts=[3, 1, 0], n_users_train=3)
    # user 0: (0 + 1) / 2 = 0.5 ; user 1: (1 + 2) / 2 = 1.5 ; user 2: 2 (padding skipped) ;
    # user 3: nothing recommended -> NaN
    np.testing.assert_allclose(nov[:3], [0.5, 1.5, 2.0])
    assert np.isnan(nov[3])


def test_novelty_rejects_counts_above_n_users():
    with pytest.raises(ValueError):
        M.novelty(np.array([[0]]), item_counts=[5], n_users_train=3)


# ------------------------------------------------------------------------------------------
# bootstrap
# ------------------------------------------------------------------------------------------
def test_bootstrap_ci_contains_mean_and_is_reproducible():
    values = np.random.default_rng(0).random(300)
    mean, low, high = M.bootstrap_ci(values, n_boot=500, seed=1)
    assert mean == pytest.approx(values.mean())
    assert low < mean < high
    assert M.bootstrap_ci(values, n_boot=500, seed=1) == (mean, low, high)
    assert M.bootstrap_ci(values, n_boot=500, seed=2) != (mean, low, high)


def test_bootstrap_ci_width_shrinks_with_n_and_matches_normal_theory():
    rng = np.random.default_rng(0)
    small = rng.random(100)
    large = rng.random(4000)
    _, lo_s, hi_s = M.bootstrap_ci(small, n_boot=2000)
    _, lo_l, hi_l = M.bootstrap_ci(large, n_boot=2000)
    assert (hi_l - lo_l) < (hi_s - lo_s) / 3  # width ~ 1/sqrt(n): ratio ~ sqrt(40) = 6.3
    # normal theory: width = 2 * 1.96 * sd / sqrt(n)
    expected = 2 * 1.96 * large.std() / np.sqrt(large.size)
    assert hi_l - lo_l == pytest.approx(expected, rel=0.1)


def test_bootstrap_ci_constant_values_and_nan_dropped():
    assert M.bootstrap_ci(np.full(10, 0.25)) == pytest.approx((0.25, 0.25, 0.25))
    values = np.array([0.0, 1.0, np.nan, 1.0, np.nan])
    mean, low, high = M.bootstrap_ci(values, n_boot=200)
    assert mean == pytest.approx(2 / 3)  # NaN dropped: (0 + 1 + 1) / 3
    assert 0.0 <= low <= mean <= high <= 1.0
    assert all(np.isnan(M.bootstrap_ci([np.nan, np.nan])))


def test_bootstrap_chunking_gives_the_same_draws(monkeypatch):
    values = np.random.default_rng(5).random(50)
    whole = M.bootstrap_ci(values, n_boot=300, seed=3)
    monkeypatch.setattr(M, "MAX_BOOTSTRAP_DRAWS", 50 * 7)  # chunks of 7 resamples
    assert M.bootstrap_ci(values, n_boot=300, seed=3) == pytest.approx(whole)


def test_bootstrap_rejects_bad_alpha():
    with pytest.raises(ValueError):
        M.bootstrap_ci([1.0, 2.0], alpha=1.5)


def test_paired_bootstrap_detects_a_real_difference():
    rng = np.random.default_rng(0)
    a = rng.random(500)
    b = a - 0.1 + 0.01 * rng.standard_normal(500)
    out = M.paired_bootstrap(a, b, n_boot=1000, seed=0)
    assert out["diff"] == pytest.approx(a.mean() - b.mean())
    assert out["diff"] == pytest.approx(0.1, abs=0.005)
    assert 0 < out["low"] < out["diff"] < out["high"]
    assert out["p_value"] < 0.01
    # the sign flips with the order of the arguments
    rev = M.paired_bootstrap(b, a, n_boot=1000, seed=0)
    assert rev["high"] < 0 and rev["diff"] == pytest.approx(-out["diff"])


def test_paired_bootstrap_null_difference_contains_zero():
    rng = np.random.default_rng(1)
    a = rng.random(500)
    b = rng.random(500)  # same distribution, independent
    out = M.paired_bootstrap(a, b, n_boot=1000, seed=0)
    assert out["low"] < 0 < out["high"]
    assert out["p_value"] > 0.05
    # identical arrays: every resampled difference is 0 -> p = min(1, 2 * 1) = 1
    same = M.paired_bootstrap(a, a)
    assert same["diff"] == 0 and same["p_value"] == 1.0


def test_paired_bootstrap_p_value_formula():
    """p = min(1, 2 * min(frac(diff_b <= 0), frac(diff_b >= 0))) over resampled differences."""
    rng = np.random.default_rng(2)
    a = rng.random(60)
    b = a - 0.03 + 0.2 * rng.standard_normal(60)  # a weak difference: p well inside (0, 1)
    out = M.paired_bootstrap(a, b, n_boot=500, alpha=0.1, seed=9)
    # the same resamples, drawn by hand: users resampled jointly, i.e. the differences are
    resample = np.random.default_rng(9).integers(0, 60, size=(500, 60))
    diffs = (a - b)[resample].mean(axis=1)
    expected_p = min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0)))
    assert 0.01 < expected_p < 0.9
    assert out["p_value"] == pytest.approx(expected_p)
    assert (out["low"], out["high"]) == pytest.approx(tuple(np.percentile(diffs, [5, 95])))


def test_paired_bootstrap_needs_same_users():
    with pytest.raises(ValueError, match="same users"):
        M.paired_bootstrap(np.zeros(5), np.zeros(4))


def test_coverage_ci_brackets_value_and_is_reproducible():
    rng = np.random.default_rng(0)
    topk = np.stack([rng.choice(2000, size=5, replace=False) for _ in range(200)])
    topk[:10, 3:] = -1  # some padding
    value, low, high = M.coverage_ci(topk, 2000, n_boot=300, seed=0)
    assert value == pytest.approx(M.coverage(topk, 2000))
    assert low < value < high
    assert M.coverage_ci(topk, 2000, n_boot=300, seed=0) == (value, low, high)


def test_coverage_ci_is_degenerate_when_every_user_gets_the_same_list():
    topk = np.tile(np.array([[0, 1, 2]]), (50, 1))
    # every resample covers items {0, 1, 2} -> 3 / 10 with zero spread
    assert M.coverage_ci(topk, 10, n_boot=100) == pytest.approx((0.3, 0.3, 0.3))


def test_coverage_ci_matches_its_definition_on_disjoint_lists():
    """Users with disjoint lists of 2 items: a resample covers 2 * (#distinct users drawn) items."""
    n_users, n_items, n_boot, alpha, seed = 40, 100, 200, 0.1, 4
    topk = np.arange(2 * n_users).reshape(n_users, 2)
    weights = np.random.default_rng(seed).multinomial(
        n_users, np.full(n_users, 1 / n_users), size=n_boot
    )
    draws = 2 * (weights > 0).sum(axis=1) / n_items
    q_lo, q_med, q_hi = np.percentile(draws, [5, 50, 95])
    value = 2 * n_users / n_items  # 0.8
    expected = (value, value - (q_med - q_lo), min(1.0, value + (q_hi - q_med)))
    got = M.coverage_ci(topk, n_items, n_boot=n_boot, alpha=alpha, seed=seed)
    assert got == pytest.approx(expected)
    # raw resampled coverages all lie below the observed value: why the interval is re-centred
    assert draws.max() < value


def test_summarise_rows():
    rng = np.random.default_rng(0)
    per_user = {"recall@10": rng.random(100), "ild@10": np.r_[rng.random(90), [np.nan] * 10]}
    rows = M.summarise(per_user, n_boot=200, alpha=0.1, seed=3)
    assert [r["metric"] for r in rows] == ["recall@10", "ild@10"]
    assert [r["n_users"] for r in rows] == [100, 90]
    for row, values in zip(rows, per_user.values()):
        assert set(row) == {"metric", "value", "ci_low", "ci_high", "n_users"}
        expected = M.bootstrap_ci(values, n_boot=200, alpha=0.1, seed=3)
        assert (row["value"], row["ci_low"], row["ci_high"]) == expected
        assert row["value"] == pytest.approx(np.nanmean(values))


# ------------------------------------------------------------------------------------------
# speed
# ------------------------------------------------------------------------------------------
def test_topk_and_ranking_metrics_are_fast():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((1000, 3700)).astype(np.float32)
    targets = sp.random(1000, 3700, density=0.003, format="csr", random_state=0)
    targets.data[:] = 1
    exclude = sp.random(1000, 3700, density=0.003, format="csr", random_state=1)
    start = time.perf_counter()
    top = M.topk_items(scores, 20, exclude=exclude)
    out = M.ranking_metrics(top, targets, ks=(10, 20))
    elapsed = time.perf_counter() - start
    assert top.shape == (1000, 20) and out["recall@20"].shape == (1000,)
    assert elapsed < 2.0, f"topk_items + ranking_metrics took {elapsed:.2f}s"


# ------------------------------------------------------------------------------------------------
# neighbour_recall
# ------------------------------------------------------------------------------------------------
def test_neighbour_recall_values():
    # five items; item 0's co-purchase partners are 1 and 2 (2 the stronger); 3 has only one partner
    reference = np.array([[0, 1, 2, 0, 0],
                          [1, 0, 0, 0, 0],
                          [2, 0, 0, 0, 0],
                          [0, 0, 0, 0, 1],
                          [0, 0, 0, 1, 0]], float)
    similarity = np.array([[9, 0.1, 0.9, 0.5, 0.3],   # nearest of 0 (itself excluded): 2, 3, 4, 1
                           [0, 9, 0, 0, 0],
                           [0, 0, 9, 0, 0],
                           [0, 0, 0, 9, 0],
                           [0, 0, 0, 0, 9]], float)
    pool = np.ones(5, bool)
    out = M.neighbour_recall(similarity, reference, [0, 3], pool, n_reference=2, n_similar=2)
    assert out[0] == pytest.approx(0.5)       # partners {2, 1}, nearest {2, 3}: one of two
    assert np.isnan(out[1])                   # one partner only: too few to say
    assert M.neighbour_recall(similarity, reference, [0], pool, n_reference=2, n_similar=4)[0] == 1.0
    # the pool limits both searches: without item 3 among the candidates, 0's nearest two are 2 and 4
    pool[3] = False
    assert M.neighbour_recall(similarity, reference, [0], pool, n_reference=1, n_similar=2)[0] == 1.0
    assert M.neighbour_recall(similarity, reference, [0], pool, n_reference=2, n_similar=2)[0] == 0.5


def test_neighbour_recall_counts_every_partner_tied_with_the_last():
    # item 0 was bought once with 1, 2 and 3: three equal partners, so "its strongest two" are all three
    reference = np.zeros((5, 5))
    reference[0, [1, 2, 3]] = reference[[1, 2, 3], 0] = 1.0
    reference[0, 4] = reference[4, 0] = 0.5
    similarity = np.eye(5)
    similarity[0] = [1, 0.9, 0.1, 0.2, 0.8]    # nearest two of 0: 1 and 4
    out = M.neighbour_recall(similarity, reference, [0], np.ones(5, bool), n_reference=2, n_similar=2)
    assert out[0] == pytest.approx(1 / 3)      # of the tied partners {1, 2, 3}, only 1 is near


def test_neighbour_recall_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same items"):
        M.neighbour_recall(np.zeros((3, 3)), np.zeros((4, 4)), [0], np.ones(4, bool))
    with pytest.raises(ValueError, match="at least 1"):
        M.neighbour_recall(np.zeros((3, 3)), np.zeros((3, 3)), [0], np.ones(3, bool), n_reference=0)
