"""Protocol-like training examples: built from training rows only, deterministic, labelled right."""

import numpy as np
import pandas as pd
import pytest

from coldstart.training import pairs


def test_tiny_examples_follow_invoice_order_and_customer_history(tiny_split):
    ex = pairs.training_examples(tiny_split, max_k=5, seed=0)
    ids = tiny_split.item_ids
    # training invoices with >= 2 items: customer 1 (10001 10002 10003), customer 2 (six items)
    assert len(ex) == 2
    for ctx, tgt in zip(ex.context, ex.targets):
        basket = (["10001", "10002", "10003"] if len(ctx) + len(tgt) == 3
                  else ["10001", "10003", "10004", "10005", "10006", "10007"])
        k = len(ctx)
        assert 1 <= k <= len(basket) - 1
        assert [ids[i] for i in ctx] == basket[:k]            # the first k items, in line order
        assert sorted(ids[i] for i in tgt) == sorted(basket[k:])  # the rest (no later invoice before the cutoff)
        assert not set(ctx) & set(tgt)
    assert set(ex.country) == {"United Kingdom"}


def test_examples_use_training_rows_only_on_real_split(split):
    ex = pairs.training_examples(split, seed=1, max_examples=3000)
    assert len(ex) == 3000
    cold = set(np.flatnonzero(split.catalog["cold"].to_numpy()))
    assert not any(set(c) & cold or set(t) & cold for c, t in zip(ex.context, ex.targets))
    assert (ex.date < np.datetime64(split.cutoff)).all()
    assert all(1 <= len(c) <= 5 for c in ex.context)
    assert all(len(t) > 0 and not set(c) & set(t) for c, t in zip(ex.context, ex.targets))


def test_examples_are_deterministic_under_a_seed(valid_split):
    a = pairs.training_examples(valid_split, seed=3, max_examples=500)
    b = pairs.training_examples(valid_split, seed=3, max_examples=500)
    c = pairs.training_examples(valid_split, seed=4, max_examples=500)
    assert all(np.array_equal(x, y) for x, y in zip(a.context, b.context))
    assert not all(np.array_equal(x, y) for x, y in zip(a.context, c.context))


def test_first_invoice_only_gives_one_example_per_customer(valid_split):
    ex = pairs.training_examples(valid_split, first_invoice_only=True)
    full = pairs.training_examples(valid_split)
    assert len(ex) < len(full) / 2
    assert len(ex) <= valid_split.train["customer"].nunique()


def test_ctr_pairs_labels_and_negatives():
    ex = pairs.Examples(context=[np.array([0]), np.array([1, 2])], targets=[np.array([3, 4]), np.array([5])],
                        country=np.array(["UK", "UK"], dtype=object),
                        date=np.array(["2011-01-01", "2011-01-02"], dtype="datetime64[ns]"))
    frame = pairs.ctr_pairs(ex, n_items=50, negatives=3, seed=0)
    assert list(frame.columns) == ["example", "context", "candidate", "label"]
    assert frame.groupby("example")["label"].agg(["sum", "size"]).values.tolist() == [[1, 4], [1, 4]]
    pos = frame[frame["label"] == 1]
    assert pos.loc[pos["example"] == 0, "candidate"].iloc[0] in (3, 4)
    assert pos.loc[pos["example"] == 1, "candidate"].iloc[0] == 5
    neg = frame[frame["label"] == 0]
    assert not neg.loc[neg["example"] == 0, "candidate"].isin([0, 3, 4]).any()
    assert not neg.loc[neg["example"] == 1, "candidate"].isin([1, 2, 5]).any()
    again = pairs.ctr_pairs(ex, n_items=50, negatives=3, seed=0)
    pd.testing.assert_frame_equal(frame, again)


def test_popularity_weighted_negatives_prefer_popular_items():
    ex = pairs.Examples(context=[np.array([0])] * 400, targets=[np.array([1])] * 400,
                        country=np.array(["UK"] * 400, dtype=object),
                        date=np.array(["2011-01-01"] * 400, dtype="datetime64[ns]"))
    pop = np.ones(10)
    pop[9] = 1000.0
    neg = pairs.ctr_pairs(ex, 10, negatives=1, seed=0, popularity=pop).query("label == 0")["candidate"]
    assert (neg == 9).mean() > 0.8   # 1000**0.75 = 178 vs 1 for the others
    uniform = pairs.ctr_pairs(ex, 10, negatives=1, seed=0).query("label == 0")["candidate"]
    assert (uniform == 9).mean() < 0.3


def test_positive_pairs_draws_from_targets():
    ex = pairs.Examples(context=[np.array([0])] * 3, targets=[np.array([4, 5]), np.array([6]), np.array([7, 8, 9])],
                        country=np.array(["UK"] * 3, dtype=object),
                        date=np.array(["2011-01-01"] * 3, dtype="datetime64[ns]"))
    ctx, pos = pairs.positive_pairs(ex, seed=0)
    assert pos[0] in (4, 5) and pos[1] == 6 and pos[2] in (7, 8, 9)


class _WordTokenizer:
    """Stands in for a Hugging Face tokenizer: one id per word, truncated like the real one."""

    def __call__(self, texts, truncation=True, max_length=None):
        ids = [[len(w) for w in t.split()][:max_length] for t in texts]
        return {"input_ids": ids}


def test_tokenized_tower_pairs_draw_join_and_truncate():
    texts = ["red cake stand", "tea cup", "zinc heart", "paper chain kit", "a b c d e f g h"]
    ex = pairs.Examples(context=[np.array([0, 1]), np.array([2]), np.array([4, 0, 1])],
                        targets=[np.array([3]), np.array([1]), np.array([2])],
                        country=np.array(["UK"] * 3, dtype=object),
                        date=np.array(["2011-01-01"] * 3, dtype="datetime64[ns]"))
    got = pairs.tokenized_tower_pairs(ex, texts, _WordTokenizer(), n=10, seed=0, context_len=6, item_len=2)
    assert len(got["item"]) == 3 and got["item"].dtype == np.int32        # n larger than the examples: all of them
    by_item = {int(i): (c, v) for i, c, v in zip(got["item"], got["context_ids"], got["item_ids"])}
    assert by_item[3] == ([3, 4, 5, 1, 3, 3], [5, 5])                       # "red cake stand ; tea cup", "paper chain"
    assert by_item[1] == ([4, 5], [3, 3])
    assert len(by_item[2][0]) == 6                                           # the long context is truncated
    once = pairs.tokenized_tower_pairs(ex, texts, _WordTokenizer(), n=2, seed=1)
    twice = pairs.tokenized_tower_pairs(ex, texts, _WordTokenizer(), n=2, seed=1)
    assert len(once["item"]) == 2 and once["context_ids"] == twice["context_ids"]   # deterministic under a seed
    np.testing.assert_array_equal(once["item"], twice["item"])


def test_tokenized_tower_pairs_rejects_empty_draw():
    ex = pairs.Examples(context=[np.array([0])], targets=[np.array([1])], country=np.array(["UK"], dtype=object),
                        date=np.array(["2011-01-01"], dtype="datetime64[ns]"))
    with pytest.raises(ValueError, match="at least 1"):
        pairs.tokenized_tower_pairs(ex, ["a", "b"], _WordTokenizer(), n=0)


def test_teacher_pairs_follow_the_id_parts_positive_neighbours():
    B = np.array([[0.0, 3.0, 1.0, -2.0, 0.0],     # item 0: neighbours 1 (3/4) and 2 (1/4); never 3 (negative)
                  [3.0, 0.0, 0.0, 0.0, 0.0],
                  [1.0, 0.0, 0.0, 0.0, 0.0],
                  [0.0, 0.0, 0.0, 0.0, 0.0],      # never bought: no lesson
                  [0.0, 0.0, 0.0, 0.0, 0.0]])
    anchors, positives = pairs.teacher_pairs(B, 20000, seed=0, neighbours=2)
    assert set(anchors) == {0, 1, 2}                                   # uniform over the items with a lesson
    assert abs(np.mean(anchors == 0) - 1 / 3) < 0.02
    from_0 = positives[anchors == 0]
    assert set(from_0) == {1, 2} and abs(np.mean(from_0 == 1) - 0.75) < 0.03
    assert set(positives[anchors == 1]) == {0} and set(positives[anchors == 2]) == {0}
    again = pairs.teacher_pairs(B, 20000, seed=0, neighbours=2)
    np.testing.assert_array_equal(again[1], positives)                   # deterministic under a seed
    # with one neighbour, item 0 is taught its strongest only
    one_a, one_p = pairs.teacher_pairs(B, 500, seed=1, neighbours=1)
    assert set(one_p[one_a == 0]) == {1}
    with pytest.raises(ValueError, match="no positive weight"):
        pairs.teacher_pairs(np.zeros((3, 3)), 5)


def test_item_pair_dataset_carries_both_items_and_a_fresh_draw_per_epoch():
    texts = ["red cake stand", "tea cup", "zinc heart", "paper chain kit"]
    B = np.array([[0, 1, 1, 0], [1, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32)
    data, steps = pairs.item_pair_dataset(B, texts, _WordTokenizer(), n_pairs=8, epochs=2, batch_size=4, item_len=8)
    assert steps == 2
    seen = [b for b in data.take(4)]
    for b in seen:
        assert set(b) >= {"context_ids", "item_ids", "item", "context_item"}
        for anchor, item in zip(b["context_item"].numpy(), b["item"].numpy()):
            assert B[anchor, item] > 0                                  # each pair is a taught neighbour
    n_words = {i: len(t.split()) for i, t in enumerate(texts)}
    b = seen[0]
    for anchor, ids in zip(b["context_item"].numpy(), b["context_ids"].numpy()):
        assert (ids != 0).sum() == n_words[int(anchor)]                  # the context is the anchor's own text


def test_hard_negatives_share_words_with_the_anchor_but_not_its_purchases():
    B = np.array([[0, 2, -1, 0, 1],      # item 0 is bought with 1 and 4, against 2
                  [2, 0, 0, 1, 0],
                  [-1, 0, 0, 1, 0],
                  [0, 1, 1, 0, 0],
                  [1, 0, 0, 0, 0]], dtype=np.float32)
    S = np.array([[1.0, 0.9, 0.8, 0.7, 0.1],
                  [0.9, 1.0, 0.5, 0.2, 0.3],
                  [0.8, 0.5, 1.0, 0.4, 0.6],
                  [0.7, 0.2, 0.4, 1.0, 0.1],
                  [0.1, 0.3, 0.6, 0.1, 1.0]], dtype=np.float32)
    anchors = np.zeros(400, np.int64)
    neg = pairs.hard_negatives(B, S, anchors, pool=3, seed=0)
    # item 0's three nearest other items are 1, 2, 3; 1 is bought with it: 2 and 3, about equally often
    assert set(neg) == {2, 3} and abs(np.mean(neg == 2) - 0.5) < 0.1
    np.testing.assert_array_equal(pairs.hard_negatives(B, S, anchors, pool=3, seed=0), neg)   # seeded
    # the one nearest (1) is bought with it: any other known item the ID part keeps apart, never 0, 1, 4
    assert set(pairs.hard_negatives(B, S, anchors, pool=1, seed=0)) == {2, 3}
    # an item the ID part does not know is never drawn
    B2 = B.copy()
    B2[3] = 0
    assert set(pairs.hard_negatives(B2, S, anchors, pool=3, seed=0)) == {2}
    with pytest.raises(ValueError, match="square shape"):
        pairs.hard_negatives(B, S[:4], anchors)
    with pytest.raises(ValueError, match="pool"):
        pairs.hard_negatives(B, S, anchors, pool=0)


def test_item_pair_dataset_with_hard_negatives_carries_them_with_their_text():
    texts = ["red cake stand", "tea cup", "zinc heart", "paper chain kit"]
    B = np.array([[0, 1, -1, 0], [1, 0, 0, 1], [-1, 0, 0, 1], [0, 1, 1, 0]], dtype=np.float32)
    S = np.array([[1, .2, .9, .5], [.2, 1, .1, .8], [.9, .1, 1, .3], [.5, .8, .3, 1]], dtype=np.float32)
    data, steps = pairs.item_pair_dataset(B, texts, _WordTokenizer(), n_pairs=8, epochs=2, batch_size=4,
                                          item_len=8, negatives_from=S, pool=2)
    n_words = {i: len(t.split()) for i, t in enumerate(texts)}
    for b in data.take(4):
        assert set(b) >= {"neg_ids", "neg_item"}
        for anchor, neg, ids in zip(b["context_item"].numpy(), b["neg_item"].numpy(), b["neg_ids"].numpy()):
            assert B[anchor, neg] <= 0 and neg != anchor              # not bought with the anchor
            assert (ids != 0).sum() == n_words[int(neg)]              # the negative's own text
