"""Choices made on the validation split with a model and the evaluation harness together.

:func:`tune_hybrid` -- the hybrid baseline's text weight (notebooks 02 and 03), chosen on the
validation split's mean NDCG@10 (:func:`coldstart.evaluation.mean_ndcg`).
"""

from __future__ import annotations

import pandas as pd

from ..data.protocol import ColdStartSplit
from ..data.text import tfidf_vectors
from ..evaluation.harness import mean_ndcg
from ..models.baselines import Hybrid, ItemKNN, TextSimilarity


def tune_hybrid(valid: ColdStartSplit, weights=(0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0), max_users=None):
    """Choose the hybrid's text weight on the validation split (mean NDCG@10 over k = 1, 3, 5).

    Returns ``(best_weight, curve)`` where ``curve`` is a Series of the validation metric by weight.
    """
    knn = ItemKNN(valid)
    text = TextSimilarity(tfidf_vectors(valid.texts()))
    values = [mean_ndcg(Hybrid(knn, text, w), valid, max_users=max_users) for w in weights]
    curve = pd.Series(values, index=list(weights), name="validation ndcg@10")
    return float(curve.idxmax()), curve
