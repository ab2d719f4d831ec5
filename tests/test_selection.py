"""Choices made on the validation split: one procedure for every text model beside the ID part."""

import numpy as np
import pytest

from coldstart.data import tfidf_vectors
from coldstart.evaluation import mean_ndcg
from coldstart.models import Retriever
from coldstart.models.baselines import ItemRegression, TextSimilarity
from coldstart.training import fair_text_retriever, tune_id_part, tune_retriever, tune_softness


@pytest.fixture(scope="module")
def parts(valid_split):
    return TextSimilarity(tfidf_vectors(valid_split.texts())), ItemRegression.for_split(valid_split, lam=300.0)


def test_tune_retriever_scores_every_pair_and_returns_the_best(valid_split, parts):
    text, id_part = parts
    choice, grid = tune_retriever(valid_split, text, id_part, weights=(0.0, 0.02), betas=(0.0, 0.01), max_users=60)
    assert len(grid) == 4 and list(grid.columns) == ["w_text", "beta", "val_ndcg@10"]
    best = grid.loc[grid["val_ndcg@10"].idxmax()]
    assert choice == {"w_text": best["w_text"], "beta": best["beta"]}
    # a grid row is exactly the harness's number for that retriever
    again = mean_ndcg(Retriever(text, id_part, w_text=0.02, beta=0.01, is_new=valid_split.new_items, no_text="zero"),
                      valid_split, max_users=60)
    assert grid.query("w_text == 0.02 and beta == 0.01")["val_ndcg@10"].item() == pytest.approx(again)
    # w = 0, beta = 0 is the ID part alone
    assert grid.query("w_text == 0 and beta == 0")["val_ndcg@10"].item() == pytest.approx(
        mean_ndcg(id_part, valid_split, max_users=60))


def test_tune_id_part_tries_every_combination(valid_split):
    choice, table = tune_id_part(valid_split, grid={"customers": (False,), "lam": (300.0, 3000.0), "dropout": (0.0,)},
                                 max_users=60)
    assert len(table) == 2 and set(choice) == {"customers", "lam", "dropout"}
    assert choice["lam"] == table.loc[table["val_ndcg@10"].idxmax(), "lam"]
    assert np.isfinite(table["val_ndcg@10"]).all()


def test_tune_softness_returns_the_best_of_the_grid(valid_split):
    vectors = tfidf_vectors(valid_split.texts())
    softness, curve = tune_softness(valid_split, vectors, grid=(None, 0.05), max_users=60)
    assert list(curve.index) == ["average", "softness 0.05"]
    assert softness == (None, 0.05)[int(np.argmax(curve.values))]
    assert curve["softness 0.05"] == pytest.approx(mean_ndcg(TextSimilarity(vectors, softness=0.05), valid_split,
                                                            max_users=60))


def test_fair_text_retriever_makes_every_choice_on_validation(valid_split, split):
    val_vectors, test_vectors = tfidf_vectors(valid_split.texts()), tfidf_vectors(split.texts())
    id_choice = {"customers": False, "lam": 300.0, "dropout": 0.0}
    retriever, text, choices = fair_text_retriever(valid_split, split, val_vectors, test_vectors, id_choice, "tfidf",
                                                   softness_grid=(None, 0.1), max_users=60)
    softness, _ = tune_softness(valid_split, val_vectors, grid=(None, 0.1), max_users=60)
    recipe, _ = tune_retriever(valid_split, TextSimilarity(val_vectors, softness=softness),
                               ItemRegression.for_split(valid_split, **id_choice), max_users=60)
    assert choices == {"softness": softness, **recipe}
    assert (retriever.name, text.name, text.softness) == ("id-part+tfidf", "tfidf", softness)
    assert (retriever.w_text, retriever.beta, retriever.no_text) == (recipe["w_text"], recipe["beta"], "zero")
    # the ID part is refitted on the test split's rows, the text is the test catalog's
    np.testing.assert_allclose(retriever.id_part.B, ItemRegression.for_split(split, **id_choice).B)
    assert text.vectors.shape[0] == split.n_items
