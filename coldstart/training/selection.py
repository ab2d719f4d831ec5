"""Choices made on the validation split with a model and the evaluation harness together.

:func:`tune_softness` -- how a text model combines several clicks (their average or a soft maximum).
:func:`tune_retriever` -- the recipe's text weight and new-product bias for one text model and ID part.
:func:`tune_id_part` -- the ID part's fit.
:func:`fair_text_retriever` -- all of the above for one text model: the fair baseline of notebooks 02
and 03, and the course's own retriever, made by one procedure.

:func:`tune_hybrid` -- the hybrid baseline's text weight (notebooks 02 and 03), chosen on the
validation split's mean NDCG@10 (:func:`coldstart.evaluation.mean_ndcg`).
"""

from __future__ import annotations

import itertools
from typing import Optional

import numpy as np
import pandas as pd

from ..data.protocol import ColdStartSplit
from ..data.text import tfidf_vectors
from ..evaluation.harness import mean_ndcg
from ..models.baselines import Hybrid, ItemKNN, ItemRegression, TextSimilarity
from ..models.retrieval import Retriever


def tune_hybrid(valid: ColdStartSplit, weights=(0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0), max_users=None):
    """Choose the hybrid's text weight on the validation split (mean NDCG@10 over k = 1, 3, 5).

    Returns ``(best_weight, curve)`` where ``curve`` is a Series of the validation metric by weight.
    """
    knn = ItemKNN(valid)
    text = TextSimilarity(tfidf_vectors(valid.texts()))
    values = [mean_ndcg(Hybrid(knn, text, w), valid, max_users=max_users) for w in weights]
    curve = pd.Series(values, index=list(weights), name="validation ndcg@10")
    return float(curve.idxmax()), curve


RECIPE_WEIGHTS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)
RECIPE_BETAS = (0.0, 0.001, 0.003, 0.01)


def tune_retriever(valid: ColdStartSplit, text, id_part, weights=RECIPE_WEIGHTS, betas=RECIPE_BETAS,
                   max_users=None) -> tuple[dict, pd.DataFrame]:
    """Choose ``w_text`` and ``beta`` of :class:`~coldstart.models.retrieval.Retriever` on the validation
    split: every pair of the grid, scored by mean NDCG@10 over k = 1, 3, 5; ties go to the first pair
    (the smaller weights).

    ``text`` is a text scorer and ``id_part`` an ID part, both fitted on ``valid``'s training rows.
    Returns ``({"w_text": .., "beta": ..}, grid)`` where ``grid`` has one row per pair with its
    validation NDCG@10 (``val_ndcg@10``).
    """
    is_new = valid.new_items.astype(np.float32)
    rows = [(w, b, mean_ndcg(Retriever(text, id_part, w_text=w, beta=b, is_new=is_new, no_text="zero"), valid,
                             max_users=max_users))
            for w in weights for b in betas]
    grid = pd.DataFrame(rows, columns=["w_text", "beta", "val_ndcg@10"])
    best = grid.loc[grid["val_ndcg@10"].idxmax()]
    return {"w_text": float(best["w_text"]), "beta": float(best["beta"])}, grid


ID_PART_GRID = {"customers": (False, True), "lam": (300.0, 1000.0), "dropout": (0.0, 0.5, 0.9)}


def tune_id_part(valid: ColdStartSplit, grid: Optional[dict] = None, max_users=None) -> tuple[dict, pd.DataFrame]:
    """Choose the ID part's fit (:meth:`ItemRegression.for_split <coldstart.models.baselines.ItemRegression.for_split>`:
    ``customers``, ``lam``, ``dropout``) on the validation split, every combination of ``grid``
    (default :data:`ID_PART_GRID`) scored by mean NDCG@10 over k = 1, 3, 5.

    Returns ``(choice, table)``: the best combination as keyword arguments, and one row per
    combination with its ``val_ndcg@10``.
    """
    grid = ID_PART_GRID if grid is None else grid
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    values = [mean_ndcg(ItemRegression.for_split(valid, **c), valid, max_users=max_users) for c in combos]
    table = pd.DataFrame(combos).assign(**{"val_ndcg@10": values})
    return combos[int(np.argmax(values))], table


SOFTNESS_GRID = (None, 0.3, 0.1, 0.05)


def tune_softness(valid: ColdStartSplit, vectors, grid=SOFTNESS_GRID, max_users=None) -> tuple:
    """Choose :class:`~coldstart.models.baselines.TextSimilarity`'s ``softness`` for the item vectors
    ``vectors`` (of ``valid``'s catalog) on the validation split; ``None`` in ``grid`` is the average
    of the clicks. Ties go to the first value. Returns ``(softness, curve)``, ``curve`` a Series of
    the validation mean NDCG@10 indexed ``"average"`` or ``"softness t"``."""
    values = [mean_ndcg(TextSimilarity(vectors, softness=t), valid, max_users=max_users) for t in grid]
    curve = pd.Series(values, index=["average" if t is None else f"softness {t}" for t in grid],
                      name="validation ndcg@10")
    return grid[int(np.argmax(values))], curve


def fair_text_retriever(valid: ColdStartSplit, split: ColdStartSplit, val_vectors, test_vectors, id_choice: dict,
                        name: str, softness_grid=SOFTNESS_GRID, max_users=None) -> tuple:
    """The ID part plus one text model, every choice made on the validation split.

    ``val_vectors``/``test_vectors``: the text model's item vectors of ``valid``'s and ``split``'s
    catalogs; ``id_choice``: the ID part's fit (:func:`tune_id_part`). The softness of the clicks is
    chosen first (:func:`tune_softness`, the text model alone), then ``w_text`` and ``beta`` with the
    ID part (:func:`tune_retriever`). The same procedure serves every text model, so a comparison of
    two such retrievers compares their text models.

    Returns ``(retriever, text, choices)``: the :class:`~coldstart.models.retrieval.Retriever` on
    ``split`` (ID part refitted on ``split``'s training rows, named ``"id-part+<name>"``), its text
    scorer (named ``name``), and ``{"softness", "w_text", "beta"}``.
    """
    softness, _ = tune_softness(valid, val_vectors, softness_grid, max_users=max_users)
    recipe, _ = tune_retriever(valid, TextSimilarity(val_vectors, softness=softness),
                               ItemRegression.for_split(valid, **id_choice), max_users=max_users)
    text = TextSimilarity(test_vectors, name=name, softness=softness)
    retriever = Retriever(text, ItemRegression.for_split(split, **id_choice), is_new=split.new_items,
                          no_text="zero", name=f"id-part+{name}", **recipe)
    return retriever, text, {"softness": softness, **recipe}
