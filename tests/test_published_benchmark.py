"""Tests of the published benchmark (coldstart.data.benchmark, coldstart.evaluation.benchmark,
coldstart.models.sequential): the benchmark's rules on a hand-made raw table, its published counts
on the real table, metric values on hand-computed cases, the baselines, the published rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from coldstart.data import benchmark as seqdata
from coldstart.data.text import context_text
from coldstart.evaluation import LEADERBOARD_COLUMNS, METHOD_KINDS, update_leaderboard
from coldstart.evaluation import benchmark as evaluation
from coldstart.models import sequential
from coldstart.training.pairs import history_pairs

A, B, C, D, E = range(5)  # catalog positions of the tiny table's items "A" .. "E"


# ------------------------------------------------------------------------------------------------
# A tiny raw table exercising every rule
# ------------------------------------------------------------------------------------------------
def _tiny_raw() -> pd.DataFrame:
    """Invoices 1, 2, 3, 4, C5, 6 survive with items A..E (see the expected sequences below).

    * invoice 1: an exact duplicate of A (dropped) and B again with another quantity (kept);
    * invoice 2: a row of E with a blank description (dropped);
    * invoice 3: D is last in the file but 5 minutes earlier than the rest (sorted first);
    * invoice C5 is a cancellation (kept: the benchmark does not remove them);
    * F is in 4 rows (dropped in round 1); H is in 5 rows, one of them in invoice 7, which falls
      to 4 rows when F goes, so H falls to 4 rows in round 2 (the 5-core is iterative);
    * invoice 8 has 2 rows (dropped).
    """
    rows = []

    def add(inv, date, items, qty=1, desc=None):
        for it in items:
            q = qty
            if isinstance(it, tuple):
                it, q = it
            rows.append((inv, it, f"{it} THING" if desc is None else desc, q, pd.Timestamp(date)))

    add("1", "2011-01-01 09:00", ["A", "B", "C", "D", "E", "F", "H", "A", ("B", 2)])
    add("2", "2011-01-02 09:00", ["E", "D", "C", "B", "A", "F", "H"])
    add("2", "2011-01-02 09:00", [("E", 3)], desc="  ")
    add("3", "2011-01-03 10:05", ["A", "B", "C", "F", "H", "E"])
    add("3", "2011-01-03 10:00", ["D"])
    add("4", "2011-01-04 09:00", ["B", "A", "C", "D", "E", "H"])
    add("C5", "2011-01-05 09:00", ["A", "B", "C", "D", "E"], qty=-1)
    add("6", "2011-01-06 09:00", ["C", "A", "E", "B", "D"])
    add("7", "2011-01-07 09:00", ["A", "B", "C", "F", "H"])
    add("8", "2011-01-08 09:00", ["A", "G"])
    df = pd.DataFrame(rows, columns=["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate"])
    return df.assign(UnitPrice=1.0, CustomerID=np.nan, Country="United Kingdom").astype(
        {"InvoiceNo": "string", "StockCode": "string", "Description": "string", "Country": "string"})


EXPECTED_TINY = {
    "1": [A, B, C, D, E, B],
    "2": [E, D, C, B, A],
    "3": [D, A, B, C, E],
    "4": [B, A, C, D, E],
    "C5": [A, B, C, D, E],
    "6": [C, A, E, B, D],
}


@pytest.fixture
def tiny():
    return seqdata.load_benchmark(_tiny_raw(), expect=None)


def test_tiny_table_follows_every_rule(tiny):
    assert list(tiny.item_ids) == ["A", "B", "C", "D", "E"]
    assert list(tiny.invoices) == list(EXPECTED_TINY)
    assert {inv: list(s) for inv, s in zip(tiny.invoices, tiny.sequences)} == EXPECTED_TINY
    assert tiny.counts() == {"invoices": 6, "items": 5, "interactions": 31}
    assert tiny.texts[0] == "a thing"  # normalised like the course's catalog


def test_leave_one_out_splits(tiny):
    assert list(tiny.targets("test")) == [B, A, E, E, E, D]
    assert list(tiny.targets("valid")) == [E, B, C, D, D, B]
    assert [list(h) for h in tiny.histories("test")][0] == [A, B, C, D, E]
    assert [list(h) for h in tiny.histories("valid")][0] == [A, B, C, D]
    assert [list(p) for p in tiny.train_sequences()][2] == [D, A, B]
    long = seqdata.SeqBenchmark(tiny.item_ids, tiny.texts, np.array(["x"]), [np.arange(60) % 5])
    assert len(long.histories("test")[0]) == seqdata.MAX_HISTORY == 50
    assert list(long.histories("test")[0][-3:]) == [1, 2, 3]  # the most recent 50 are kept
    with pytest.raises(ValueError, match="split"):
        tiny.targets("train")


def test_random_order_shuffles_only_within_a_time(tiny):
    shuffled = [seqdata.load_benchmark(_tiny_raw(), order="random", seed=s, expect=None) for s in range(6)]
    for other in shuffled:
        assert list(other.invoices) == list(tiny.invoices)
        for a, b in zip(tiny.sequences, other.sequences):
            assert sorted(a) == sorted(b)
        assert other.sequences[2][0] == D  # D is earlier in time: first whatever the shuffle
    assert any(any(not np.array_equal(a, b) for a, b in zip(tiny.sequences, o.sequences)) for o in shuffled)
    assert set(evaluation.evaluate_seq(_Fixed(), shuffled[0]).table["protocol"]) == {seqdata.PROTOCOL + ":random-order"}
    again = seqdata.load_benchmark(_tiny_raw(), order="random", seed=3, expect=None)
    assert all(np.array_equal(a, b) for a, b in zip(again.sequences, shuffled[3].sequences))


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="expect=None"):
        seqdata.load_benchmark(_tiny_raw())  # the default expects the published counts
    with pytest.raises(ValueError, match="raw UCI table"):
        seqdata.load_benchmark(_tiny_raw().drop(columns=["Quantity"]), expect=None)
    with pytest.raises(ValueError, match="order"):
        seqdata.load_benchmark(_tiny_raw(), order="time", expect=None)


# ------------------------------------------------------------------------------------------------
# Metrics on hand-computed cases
# ------------------------------------------------------------------------------------------------
def test_target_ranks_ties_and_minus_inf():
    scores = np.array([[3.0, 2.0, 1.0, 0.0], [1.0, 1.0, 0.0, 1.0], [0.0, -np.inf, 5.0, 1.0]])
    assert list(evaluation.target_ranks(scores, np.array([2, 1, 1]))) == [2, 1, 4]
    assert list(evaluation.target_ranks(scores, np.array([0, 3, 2]))) == [0, 2, 0]
    with pytest.raises(ValueError, match="NaN"):
        evaluation.target_ranks(np.array([[np.nan, 1.0]]), np.array([0]))


def test_metric_values():
    ranks = np.array([0, 1, 2, 9, 10, 60])
    assert list(evaluation.metric_values(ranks, "recall@10")) == [1, 1, 1, 1, 0, 0]
    expected = [1.0, 1 / np.log2(3), 0.5, 1 / np.log2(11), 0.0, 0.0]
    np.testing.assert_allclose(evaluation.metric_values(ranks, "ndcg@10"), expected)
    assert evaluation.metric_values(ranks, "recall@50").sum() == 5
    with pytest.raises(ValueError, match="recall@K"):
        evaluation.metric_values(ranks, "mrr@10")


class _Fixed:
    """Always the same order: E, D, C, B, A."""

    name = "fixed"

    def score(self, histories):
        return np.tile(np.array([0.0, 1.0, 2.0, 3.0, 4.0], np.float32), (len(histories), 1))


def test_evaluate_seq_by_hand(tiny):
    # test targets B A E E E D -> ranks 3 4 0 0 0 1 in the order E D C B A
    res = evaluation.evaluate_seq(_Fixed(), tiny, ks=(1, 2))
    assert list(res.ranks) == [3, 4, 0, 0, 0, 1]
    s = res.summary()
    assert s["recall@1"] == pytest.approx(3 / 6) and s["recall@2"] == pytest.approx(4 / 6)
    assert s["ndcg@2"] == pytest.approx((3 + 1 / np.log2(3)) / 6)
    assert set(res.table["protocol"]) == {seqdata.PROTOCOL} and set(res.table["segment"]) == {"test"}
    assert list(res.table.columns) == LEADERBOARD_COLUMNS + ["n_users"] and res.table["n_users"].iloc[0] == 6
    # valid targets E B C D D B -> ranks 0 3 2 1 1 3
    assert list(evaluation.evaluate_seq(_Fixed(), tiny, split="valid").ranks) == [0, 3, 2, 1, 1, 3]


def test_mask_history_removes_history_items(tiny):
    # invoice 1's test target B is also in its history: masked, it can never be found
    masked = evaluation.evaluate_seq(_Fixed(), tiny, mask_history=True, ks=(1,))
    assert masked.ranks[0] == tiny.n_items
    # invoice 6 (history C A E B, target D): E, C, B, A are removed, so D is first
    assert masked.ranks[5] == 0
    # every other invoice holds each item once: with the history gone, its target is the one item left
    assert list(masked.ranks[1:]) == [0] * 5 and masked.summary()["recall@1"] == pytest.approx(5 / 6)


def test_evaluate_seq_checks_shape_and_kind(tiny):
    with pytest.raises(ValueError, match="shape"):
        evaluation.evaluate_seq(lambda h: np.zeros((len(h), 3)), tiny)
    with pytest.raises(ValueError, match="kind"):
        evaluation.evaluate_seq(_Fixed(), tiny, kind="paper")


# ------------------------------------------------------------------------------------------------
# Baselines
# ------------------------------------------------------------------------------------------------
def test_history_weights_decay_and_last_n():
    W = sequential.history_matrix([np.array([0, 1, 0, 2])], 3, decay=0.5).toarray()[0]
    np.testing.assert_allclose(W, [0.125 + 0.5, 0.25, 1.0])  # ages 3, 2, 1, 0; repeats add up
    W = sequential.history_matrix([np.array([0, 1, 0, 2])], 3, last_n=2).toarray()[0]
    np.testing.assert_allclose(W, [1.0, 0.0, 1.0])


def test_popularity_counts_training_rows(tiny):
    # training parts: ABCD, EDC, DAB, BAC, ABC, CAE -> A 5, B 4, C 5, D 3, E 2
    assert list(sequential.SeqPopularity(tiny).counts) == [5, 4, 5, 3, 2]
    # A, C, B, D, E
    assert list(evaluation.evaluate_seq(sequential.SeqPopularity(tiny), tiny).ranks) == [2, 0, 4, 4, 4, 3]


def test_item_knn_cosine_by_hand(tiny):
    knn = sequential.SeqItemKNN(tiny)
    X = tiny.train_matrix().toarray()
    assert X.shape == (6, 5) and X.max() == 1
    co = X.T @ X
    expected = co[A, D] / np.sqrt(co[A, A] * co[D, D])  # A and D together in invoices 1 and 3
    assert knn.matrix[A, D] == pytest.approx(expected) == pytest.approx(2 / np.sqrt(15))
    assert np.all(np.diag(knn.matrix) == 0)
    decayed = knn.variant(decay=0.5).score([np.array([A, D])])[0]
    np.testing.assert_allclose(decayed, 0.5 * knn.matrix[A] + knn.matrix[D] + knn.tie, rtol=1e-6)
    dropped = knn.variant(drop_history=True).score([np.array([A, D])])[0]
    assert np.isneginf(dropped[[A, D]]).all() and np.isfinite(dropped[[B, C, E]]).all()
    with pytest.raises(TypeError, match="unknown"):
        knn.variant(decai=0.5)


def test_ease_closed_form(tiny):
    ease = sequential.SeqEASE(tiny, lam=2.0)
    X = tiny.train_matrix().toarray().astype(np.float64)
    # EASE's stationarity condition: (X^T X + lam I) B = X^T X - diag(mu) for some mu, diag(B) = 0
    G = X.T @ X
    R = (G + 2.0 * np.eye(5)) @ ease.matrix - G
    off = R - np.diag(np.diag(R))
    assert np.abs(off).max() < 1e-4 and np.all(np.diag(ease.matrix) == 0)


def test_choose_on_valid_uses_the_validation_targets(tiny):
    class Only:  # puts one item first
        def __init__(self, item):
            self.item = item

        def score(self, histories):
            s = np.zeros((len(histories), 5), np.float32)
            s[:, self.item] = 1.0
            return s

    # valid targets E B C D D B: B and D are each right twice, E once; the test targets would favour E
    best, table = evaluation.choose_on_valid({"E": Only(E), "B": Only(B), "D": Only(D)}, tiny, metric="recall@1")
    assert best == "B" and list(table["key"]) == ["B", "D", "E"]  # a tie goes to the first candidate
    assert list(table["recall@1"]) == pytest.approx([2 / 6, 2 / 6, 1 / 6])
    assert table.loc[table["key"] == "E", "recall@10"].item() == 1.0  # all 5 items are in the top 10
    assert evaluation.choose_on_valid({"D": Only(D), "B": Only(B)}, tiny, metric="recall@1")[0] == "D"
    with pytest.raises(ValueError, match="at least one"):
        evaluation.choose_on_valid({}, tiny)


def test_blend_adds_weighted_scores(tiny):
    blend = sequential.Blend([(1.0, _Fixed()), (2.0, sequential.SeqPopularity(tiny))])
    np.testing.assert_allclose(blend.score([np.array([0])])[0], np.arange(5) + 2 * np.array([5, 4, 5, 3, 2]))
    dropped = sequential.SeqItemKNN(tiny, drop_history=True)
    only_fixed = sequential.Blend([(1.0, _Fixed()), (0.0, dropped)]).score([np.array([0])])[0]
    assert list(only_fixed) == [0, 1, 2, 3, 4]  # weight 0: not run (0 x -inf would be NaN)
    assert np.isneginf(sequential.Blend([(1.0, _Fixed()), (0.5, dropped)]).score([np.array([0])])[0][0])
    with pytest.raises(ValueError, match="non-zero"):
        sequential.Blend([(0.0, _Fixed())])


def test_sample_is_deterministic_and_keeps_the_catalog(tiny):
    a, b = seqdata.sample(tiny, 3, seed=1), seqdata.sample(tiny, 3, seed=1)
    assert len(a) == 3 and list(a.invoices) == list(b.invoices) and a.n_items == tiny.n_items
    assert list(a.invoices) == [inv for inv in tiny.invoices if inv in set(a.invoices)]  # order kept
    assert seqdata.sample(tiny, None) is tiny and seqdata.sample(tiny, 100) is tiny


def test_text_pairs_come_from_the_training_parts(tiny):
    contexts, items = history_pairs(tiny, n=None)
    # every position t >= 1 of every training part: 3 + 2 + 2 + 2 + 2 + 2
    assert len(items) == 13 and len(contexts) == 13
    assert contexts[0] == "a thing" and items[0] == B  # invoice 1: A -> B
    assert contexts[2] == "c thing ; b thing ; a thing" and items[2] == D  # most recent first
    assert sorted(history_pairs(tiny, n=5, seed=0)[1]) == sorted(history_pairs(tiny, n=5, seed=0)[1])
    assert context_text(tiny.texts[np.array([A, B, C])], newest_first=True, last=2) == "c thing ; b thing"


# ------------------------------------------------------------------------------------------------
# Published rows
# ------------------------------------------------------------------------------------------------
def test_published_table_integrity():
    P = evaluation.PUBLISHED.set_index("method")
    assert len(P) == 11 and P.index.is_unique
    assert tuple(P.loc["VQ-Rec", ["recall@10", "ndcg@10", "recall@50", "ndcg@50"]]) == (0.1557, 0.0730, 0.3994, 0.1263)
    assert tuple(P.loc["TedRec", ["recall@10", "recall@20", "ndcg@10", "ndcg@20"]]) == (0.2234, 0.3073, 0.1316, 0.1527)
    assert tuple(P.loc["UniSRec (text+ID)", ["recall@10", "ndcg@10"]]) == (0.1537, 0.0724)
    assert "2402.18166" in P.loc["TedRec", "source"] and "2210.12316" in P.loc["VQ-Rec", "source"]
    assert all("2206.05941" in s for s in P.drop(index=["VQ-Rec", "TedRec"])["source"])
    for k in (10, 20, 50):
        ok = P[f"recall@{k}"].notna()
        assert (P.loc[ok, f"ndcg@{k}"] < P.loc[ok, f"recall@{k}"]).all()
    assert (P["recall@50"].dropna() > P.loc[P["recall@50"].notna(), "recall@10"]).all()
    # VQ-Rec is the best published text-based row at R@10 among the UniSRec/VQ-Rec table
    assert P.drop(index="TedRec")["recall@10"].idxmax() == "VQ-Rec"


def test_published_rows_go_into_the_leaderboard(tmp_path):
    rows = evaluation.published_rows()
    assert set(rows["kind"]) == {"published"} and "published" in METHOD_KINDS
    assert set(rows["profile"]) == {"paper"} and set(rows["protocol"]) == {seqdata.PROTOCOL}
    assert len(rows) == 10 * 4 + 4 and rows["ci_low"].isna().all()
    board = update_leaderboard(rows, tmp_path / "leaderboard.csv")
    assert len(board) == len(rows)
    again = update_leaderboard(rows, tmp_path / "leaderboard.csv")  # replaced, not duplicated
    assert len(again) == len(rows)


# ------------------------------------------------------------------------------------------------
# The real table
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real(data_file):
    from coldstart.data import retail as data

    raw = data.load_raw(data_file, download=False)
    return raw, seqdata.load_benchmark(raw)


def test_real_table_gives_the_published_counts(real):
    raw, bench = real
    assert bench.counts() == seqdata.EXPECTED == {"invoices": 16520, "items": 3469, "interactions": 519906}
    assert min(len(s) for s in bench.sequences) >= 5
    assert np.bincount(np.concatenate(bench.sequences)).min() >= 5
    assert any(inv.startswith("C") for inv in bench.invoices)  # cancellations are kept
    shuffled = seqdata.load_benchmark(raw, order="random", seed=0)
    assert shuffled.counts() == seqdata.EXPECTED
    same = sum(np.array_equal(a, b) for a, b in zip(bench.sequences, shuffled.sequences))
    assert same < len(bench) // 2  # most invoices change order: their rows share one time


def test_real_table_baseline_values(real):
    """The issue's reference values: popularity R@10 ~0.044, N@10 ~0.022; plain item-kNN ~0.12 / ~0.08."""
    _, bench = real
    pop = evaluation.evaluate_seq(sequential.SeqPopularity(bench), bench).summary()
    knn = evaluation.evaluate_seq(sequential.SeqItemKNN(bench), bench).summary()
    assert (round(pop["recall@10"], 4), round(pop["ndcg@10"], 4)) == (0.0442, 0.0223)
    assert (round(knn["recall@10"], 4), round(knn["ndcg@10"], 4)) == (0.1235, 0.0779)
    again = evaluation.evaluate_seq(sequential.SeqItemKNN(seqdata.load_benchmark(real[0])), bench).summary()
    assert again.equals(knn)  # deterministic


def test_text_model_scores_cosine_encodes_each_history_once_and_drops_history(tiny, monkeypatch):
    from coldstart.models import retrieval

    calls = []

    def fake_encode(texts, tokenizer, model, **kw):  # a history's vector: the one-hot of its first word
        calls.append(list(texts))
        out = np.zeros((len(texts), 5), np.float32)
        for r, t in enumerate(texts):
            out[r, "abcde".index(t[0])] = 1.0
        return out

    monkeypatch.setattr(retrieval, "encode", fake_encode)
    model = sequential.SeqTextModel(None, None, tiny.texts, np.eye(5, dtype=np.float32), last_m=2)
    histories = [np.array([A, C]), np.array([B, C]), np.array([A, C])]
    scores = model.score(histories)
    assert calls == [["c thing ; a thing", "c thing ; b thing"]]  # most recent first; the repeat is cached
    assert np.isneginf(scores[0, [A, C]]).all() and scores[0, [B, D, E]].tolist() == [0, 0, 0]
    kept = sequential.SeqTextModel(None, None, tiny.texts, np.eye(5, dtype=np.float32), drop_history=False)
    assert kept.score([np.array([A, C])])[0].tolist() == [0, 0, 1, 0, 0]  # the last item is most like itself
    model.score(histories)
    assert len(calls) == 2  # the first model encoded nothing again (the second one has its own cache)
