"""The models of notebook 03 behave (the notebook's cells are the package's code: tests/test_taught_cells.py)."""

import numpy as np
import pytest
import scipy.sparse as sp

import coldstart
from coldstart import training
from coldstart.data import Cases
from coldstart.data.text import context_text
from coldstart.models.baselines import ItemRegression
from coldstart.models.bert import CrossEncoder, TwoTower
from coldstart.models.retrieval import EncodedContextSimilarity, NewProductSlots, Retriever

tf = coldstart.import_tensorflow()


def test_item_regression_is_the_ridge_solution_with_zero_diagonal():
    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((60, 6)) < 0.4).astype(np.float32))
    lam = 2.0
    reg = ItemRegression(X, lam=lam)
    assert np.allclose(np.diag(reg.B), 0)
    Xd = X.toarray().astype(np.float64)
    for j in range(6):   # column j: ridge regression of item j on the other items
        others = [i for i in range(6) if i != j]
        A = Xd[:, others]
        w = np.linalg.solve(A.T @ A + lam * np.eye(5), A.T @ Xd[:, j])
        assert np.allclose(reg.B[others, j], w, atol=1e-4)
    batch = Cases(context=[np.array([0, 2]), np.array([], dtype=np.int64)], country=np.array(["UK", "UK"]),
                  date=np.array(["2011-01-01"] * 2, dtype="datetime64[ns]"))
    scores = reg.score(batch)
    assert np.allclose(scores[0], reg.B[0] + reg.B[2], atol=1e-6)   # x B: the sum of the context rows
    assert np.allclose(scores[1], 0)


def test_item_regression_dropout_is_a_ridge_with_a_popularity_scaled_penalty():
    rng = np.random.default_rng(1)
    X = sp.csr_matrix((rng.random((80, 6)) < 0.4).astype(np.float32))
    lam, p = 2.0, 0.5
    reg = ItemRegression(X, lam=lam, dropout=p)
    Xd = X.toarray().astype(np.float64)
    penalty = lam + p / (1 - p) * (Xd ** 2).sum(0)     # DLAE: lam + p/(1-p) x diag(X^T X), per item
    for j in range(6):
        others = [i for i in range(6) if i != j]
        A = Xd[:, others]
        w = np.linalg.solve(A.T @ A + np.diag(penalty[others]), A.T @ Xd[:, j])
        assert np.allclose(reg.B[others, j], w, atol=1e-5)
    assert np.allclose(np.diag(reg.B), 0)
    assert np.allclose(ItemRegression(X, lam=lam, dropout=0.0).B, ItemRegression(X, lam=lam).B)
    assert not np.allclose(reg.B, ItemRegression(X, lam=lam).B, atol=1e-3)   # the penalty changes B
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="dropout"):
            ItemRegression(X, lam=lam, dropout=bad)


def test_item_regression_cannot_score_never_bought_items():
    X = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 1, 0]], dtype=np.float32))
    reg = ItemRegression(X, lam=1.0)
    assert np.allclose(reg.B[:, 2], 0) and np.allclose(reg.B[2], 0)


def _tiny_bert():
    from transformers import BertConfig, TFBertForSequenceClassification, TFBertModel

    cfg = BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=16, max_position_embeddings=16, num_labels=1)
    return TFBertModel(cfg), TFBertForSequenceClassification(cfg)


def test_cross_encoder_gives_one_logit_per_pair_and_ignores_padding():
    _, clf = _tiny_bert()
    model = CrossEncoder(clf)
    ids = np.array([[2, 5, 3, 6, 3, 0, 0], [2, 7, 3, 8, 3, 9, 3]], dtype=np.int32)
    tt = np.array([[0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1, 1]], dtype=np.int32)
    out = model({"input_ids": ids, "token_type_ids": tt})
    assert out.shape == (2,) and out.dtype == tf.float32
    short = model({"input_ids": ids[:1, :5], "token_type_ids": tt[:1, :5]})
    assert np.allclose(out[0], short[0], atol=1e-5)        # padding changes nothing


def test_two_tower_masks_duplicate_positives_and_learns():
    body, _ = _tiny_bert()
    tf.keras.utils.set_random_seed(0)
    model = TwoTower(body, temperature=0.1)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    item = np.array([0, 1, 1, 2], dtype=np.int32)         # users 1 and 2 bought the same item
    batch = {"context_ids": np.array([[2, 10, 3], [2, 11, 3], [2, 11, 3], [2, 12, 3]], np.int32),
             "item_ids": np.array([[2, 10, 3], [2, 11, 3], [2, 11, 3], [2, 12, 3]], np.int32), "item": item}
    logits = model(batch).numpy()
    assert logits.shape == (4, 4)
    losses = [float(model.train_step(batch)["loss"]) for _ in range(30)]
    assert losses[-1] < losses[0]
    # with the duplicate masked, a perfect model reaches loss ~0 (it could not if item 1 counted as a negative)
    assert losses[-1] < 0.3


def test_two_tower_on_item_pairs_does_not_count_an_anchor_as_its_own_negative():
    body, _ = _tiny_bert()
    tf.keras.utils.set_random_seed(0)
    model = TwoTower(body, temperature=0.1)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    text = {0: [2, 10, 3], 1: [2, 11, 3], 2: [2, 12, 3], 3: [2, 13, 3]}
    anchors, positives = np.array([0, 1, 2, 3], np.int32), np.array([1, 0, 3, 2], np.int32)  # two pairs, both ways
    batch = {"context_ids": np.array([text[a] for a in anchors], np.int32),
             "item_ids": np.array([text[p] for p in positives], np.int32), "item": positives}
    with_anchor = {**batch, "context_item": anchors}
    masked = [float(model.train_step(with_anchor)["loss"]) for _ in range(40)]
    # pair 0's text is pair 1's positive: unmasked, that identical text is a negative no model can beat
    model.loss_tracker.reset_state()
    unmasked = float(model.train_step(batch)["loss"])
    assert masked[-1] < 0.3 < unmasked


def test_two_tower_scores_hard_negatives_and_masks_a_negative_that_is_a_positive():
    from transformers import BertConfig, TFBertModel

    body = TFBertModel(BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=16, max_position_embeddings=16, hidden_dropout_prob=0.0,
                                  attention_probs_dropout_prob=0.0))   # no dropout: the step's loss is exact
    tf.keras.utils.set_random_seed(0)
    model = TwoTower(body, temperature=0.1)
    text = {i: [2, 10 + i, 3] for i in range(6)}
    anchors, positives = np.array([0, 1, 2], np.int32), np.array([3, 4, 5], np.int32)
    negatives = np.array([4, 0, 2], np.int32)   # pair 0's negative is pair 1's positive; pair 2's is its anchor
    batch = {"context_ids": np.array([text[a] for a in anchors], np.int32),
             "item_ids": np.array([text[p] for p in positives], np.int32), "item": positives,
             "context_item": anchors, "neg_ids": np.array([text[n] for n in negatives], np.int32),
             "neg_item": negatives}
    logits = model(batch).numpy()
    assert logits.shape == (3, 6)                                # the batch's positives, then the negatives
    plain = model({k: v for k, v in batch.items() if not k.startswith("neg")}).numpy()
    np.testing.assert_allclose(logits[:, :3], plain, rtol=1e-5, atol=1e-5)
    # the loss train_step takes, by hand: a candidate that is my positive or my anchor is masked,
    # except my own positive (column i)
    cand = np.concatenate([positives, negatives])
    masked = (positives[:, None] == cand[None]) | (anchors[:, None] == cand[None])
    masked[np.arange(3), np.arange(3)] = False
    assert masked[1, 3] and masked[2, 5] and not masked[0, 3]
    z = np.where(masked, -1e9, logits.astype(np.float64))
    expected = np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(3), np.arange(3)])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.0))         # a step that changes nothing: its loss
    assert abs(float(model.train_step(batch)["loss"]) - expected) < 1e-4
    # a hard negative is a real negative: the loss with it is above the loss without it
    model.loss_tracker.reset_state()
    without = float(model.train_step({k: v for k, v in batch.items() if not k.startswith("neg")})["loss"])
    assert without < expected


@pytest.mark.parametrize("kind", ["two-tower", "cross-encoder"])
def test_training_step_is_traced_once_for_every_batch_shape(kind):
    # the optimizer's state is made in compile, so the first step creates no variables: one trace, not two
    body, clf = _tiny_bert()
    ids = np.array([[2, 5, 3]], np.int32)
    if kind == "two-tower":
        body(input_ids=ids)                                # built, like a from_pretrained model
        model = TwoTower(body, temperature=0.1)
        model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
        x = {"context_ids": [[2, 5, 6, 3], [2, 7, 8, 9, 10, 3]] * 4, "item_ids": [[2, 5, 3], [2, 7, 3]] * 4,
             "item": np.arange(8, dtype=np.int32)}
        data = training.bucketed_dataset(x, np.array([len(c) for c in x["context_ids"]]), 2, boundaries=(5,))
    else:
        clf(input_ids=ids)
        model = CrossEncoder(clf)
        model.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                      loss=tf.keras.losses.BinaryCrossentropy(from_logits=True))
        x = {"input_ids": [[2, 5, 3, 6, 3], [2, 7, 3, 8, 9, 10, 3]] * 4,
             "token_type_ids": [[0, 0, 0, 1, 1], [0] * 3 + [1] * 4] * 4}
        data = training.bucketed_dataset(x, np.array([len(c) for c in x["input_ids"]]), 2, boundaries=(5,),
                                                   labels=np.arange(8) % 2)
    assert len(model.optimizer.variables) > 1              # Adam's moments exist before any step
    model.fit(data, epochs=2, verbose=0)                   # batches of length 5 and 7
    assert model.train_function.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("progress", [None, False])
def test_encoded_context_scorer_is_silent_in_catalog_and_contexts_when_asked(progress, monkeypatch, capsys):
    """A loop that scores many times (notebook 05 trains and scores six models) passes progress=False:
    neither the catalog nor the contexts then print a line; by default both print one summary each."""
    monkeypatch.setenv("COLDSTART_QUIET_PROGRESS", "1")
    encoder, _ = _tiny_bert()
    texts = [f"item {i}" for i in range(10)]
    tokenizer = lambda batch, **kw: {"input_ids": [[1, 2 + len(x) % 20, 3] for x in batch]}  # noqa: E731
    scorer = EncodedContextSimilarity.of_catalog(tokenizer, encoder, texts, batch_size=1, progress=progress)
    scorer.batch_size = 1
    contexts = [np.array([i]) for i in range(9)]
    cases = Cases(context=contexts, country=np.array(["United Kingdom"] * 9, dtype=object),
                  date=np.array(["2011-09-02"] * 9, dtype="datetime64[ns]"))
    scores = scorer.score(cases)
    out = capsys.readouterr().out
    assert scores.shape == (9, 10) and np.isfinite(scores).all()
    if progress is False:
        assert out == ""
    else:
        assert "encoding the catalog: done" in out and "encoding contexts: done" in out


def test_the_benchmark_text_model_takes_progress_through_of_catalog(monkeypatch, capsys):
    """Subclasses build through the parent's of_catalog, which passes progress to their constructor."""
    from coldstart.models.sequential import SeqTextModel

    monkeypatch.setenv("COLDSTART_QUIET_PROGRESS", "1")
    encoder, _ = _tiny_bert()
    texts = [f"item {i}" for i in range(10)]
    tokenizer = lambda batch, **kw: {"input_ids": [[1, 2 + len(x) % 20, 3] for x in batch]}  # noqa: E731
    model = SeqTextModel.of_catalog(tokenizer, encoder, texts, batch_size=1, last_m=2, progress=False)
    model.batch_size = 1
    scores = model.score([np.array([i, i + 1]) for i in range(8)])
    assert scores.shape == (8, 10) and capsys.readouterr().out == ""
    assert np.isneginf(scores[0, [0, 1]]).all()          # the history's own items are dropped


def test_the_retrieval_recipe_combines_the_parts():
    contexts = {(0,): np.array([1.0, 0.0, 0.0], np.float32), (1, 2): np.array([0.0, 0.6, 0.8], np.float32)}
    text = EncodedContextSimilarity(None, None, ["a", "b", "c"], np.eye(3, dtype=np.float32), contexts=contexts)
    rec = Retriever(text, w_text=0.5, beta=0.1, is_new=np.array([0, 0, 1]))
    batch = Cases(context=[np.array([0]), np.array([1, 2])], country=np.array(["UK", "UK"]),
                  date=np.array(["2011-01-01"] * 2, dtype="datetime64[ns]"))
    assert np.allclose(rec.score(batch), [[0.5, 0.0, 0.1], [0.0, 0.3, 0.5]])

    class IDPart:
        def score(self, b):
            return np.full((len(b), 3), 2.0, np.float32)

    rec.id_part = IDPart()
    assert np.allclose(rec.score(batch), [[2.5, 2.0, 2.1], [2.0, 2.3, 2.5]])
    assert context_text(np.array(["x y", "z"])[[1, 0]]) == "z ; x y"


class _Fixed:
    """A recommender (or text scorer) giving every case the same scores."""

    def __init__(self, scores):
        self.s = np.asarray(scores, float)

    def score(self, batch):
        return np.tile(self.s, (len(batch), 1))


def test_new_product_slots_keep_the_top_and_place_the_closest_new_products_next():
    #               0    1    2    3    4    5    6    7
    base = _Fixed([9.0, 8.0, 7.0, 6.0, 0.0, 0.0, 5.0, 0.0])
    text = _Fixed([0.1, 0.2, 0.3, 0.4, 0.5, 0.9, 0.0, 0.7])
    is_new = np.array([0, 0, 0, 0, 1, 1, 0, 1], bool)
    slots = NewProductSlots(base, text, is_new, first=2, n=2)
    batch = Cases(context=[np.array([1])], country=np.array(["UK"]),
                  date=np.array(["2011-10-01"], dtype="datetime64[ns]"))
    scores = slots.score(batch)[0]
    order = [int(i) for i in np.argsort(-scores, kind="stable") if np.isfinite(scores[i])]
    # item 1 is the context: gone; top 2 by base: 0, 2; then new items by text: 5, 7; then the rest by base
    assert order[:4] == [0, 2, 5, 7]
    assert order[4:] == [3, 6, 4]
    assert scores[1] == -np.inf


def test_new_product_slots_with_no_new_products_keep_the_base_order():
    base = _Fixed([3.0, 1.0, 2.0])
    text = _Fixed([0.0, 1.0, 0.5])
    slots = NewProductSlots(base, text, np.zeros(3, bool), first=1, n=5)
    batch = Cases(context=[np.array([], dtype=np.int64)], country=np.array(["UK"]),
                  date=np.array(["2011-10-01"], dtype="datetime64[ns]"))
    assert list(np.argsort(-slots.score(batch)[0])) == [0, 2, 1]
