"""New products' ID-part weights imputed from their text, shared by text_tower.py and tower_on_test.py."""

import numpy as np
import scipy.sparse as sp


def ridge_B(B, V, is_new, alpha):
    """``B`` with the new items' rows and columns predicted from their text vectors ``V`` by ridge regression
    fitted on the known items (a linear generator of the ID part's weights from content, as DropoutNet and
    ALDI learn one). Solved in the dual form, so TF-IDF's thousands of dimensions cost no more than a
    tower's 384; as ``alpha`` grows it tends to a sum of the known items' weights, each weighted by its
    text's dot product with the new item's."""

    def dense(x):
        return x.toarray() if sp.issparse(x) else np.asarray(x)

    new = np.flatnonzero(is_new)
    known = np.flatnonzero(~np.asarray(is_new, bool) & (np.abs(B).sum(axis=1) > 0))
    K = dense(V[known] @ V[known].T)
    W = np.linalg.solve(K + alpha * np.eye(len(known)), dense(V[known] @ V[new].T)).T
    return borrowed_B(B, W, new, known)


def borrowed_B(B, W, new, known, gamma=1.0):
    """``B`` with each new item's row and column the ``W``-weighted sum of the known items' (``W``: one
    row per new item, one column per known item), times ``gamma``; no weight between two new items."""
    W = np.asarray(W, np.float32)
    out = np.array(B, dtype=np.float32, copy=True)
    out[np.ix_(new, np.arange(B.shape[1]))] = gamma * (W @ out[known])
    out[:, new] = gamma * (out[:, known] @ W.T)
    out[np.ix_(new, new)] = 0.0
    return out
