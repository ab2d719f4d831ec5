"""The figures notebook 03 draws from the package: the grid heat map and the architecture diagram."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from coldstart import plots  # noqa: E402


def _grid():
    rows = [(c, lam, d, 0.17 + 0.01 * c + lam / 1e5 + d / 100) for c in (False, True) for lam in (300.0, 1000.0)
            for d in (0.0, 0.5, 0.9)]
    frame = pd.DataFrame(rows, columns=["customers", "lam", "dropout", "score"])
    return frame.pivot_table(index=["customers", "lam"], columns="dropout", values="score")


def test_heatmap_writes_every_value_labels_the_rows_and_outlines_the_best_cell():
    table = _grid()
    ax = plots.heatmap(table, title="validation NDCG@10")
    texts = [t.get_text() for t in ax.texts]
    assert sorted(texts) == sorted(format(v, ".4f") for v in table.to_numpy().ravel())
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "customers=True, lam=1000"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.5", "0.9"]
    assert ax.get_xlabel() == "dropout"
    (outline,) = ax.patches
    i, j = np.unravel_index(np.argmax(table.to_numpy()), table.shape)
    assert outline.get_xy() == (j - 0.5, i - 0.5)
    plt.close("all")


def test_heatmap_outlines_the_smallest_cell_when_asked_stars_marked_cells_and_rejects_an_empty_grid():
    table = pd.DataFrame({"a": [3.0, 1.0], "b": [2.0, 4.0]}, index=["x", "y"])
    ax = plots.heatmap(table, best="min", fmt=".1f", marked=[("x", "b")])
    (outline,) = ax.patches
    assert outline.get_xy() == (-0.5, 0.5)
    assert sorted(t.get_text() for t in ax.texts) == ["1.0", "2.0 *", "3.0", "4.0"]
    assert len(plots.heatmap(table, best=None).patches) == 0
    with pytest.raises(ValueError, match="finite value"):
        plots.heatmap(pd.DataFrame({"a": [np.nan]}))
    plt.close("all")


def test_two_architectures_draws_both_models_with_their_cost():
    fig = plots.two_architectures()
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["cross-encoder (the CTR model, Part A)", "two-tower retriever (Part B)"]
    words = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "N passes of BERT" in words and "computed once" in words and "the same weights" in words
    plt.close("all")
