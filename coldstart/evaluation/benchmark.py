"""Evaluation on the published benchmark (notebook 08): all items ranked for each invoice's history.

:func:`evaluate_seq` ranks all 3,469 items of :mod:`coldstart.data.benchmark` for each invoice's
history and reports Recall and NDCG at 10, 20 and 50 (:data:`BENCHMARK_CUTOFFS`; one target, so
Recall@K is the hit rate). As RecBole does for sequential models, the items already in the history
are *not* removed from the ranking (an invoice can hold an item twice); ``mask_history=True``
removes them. :func:`choose_on_valid` picks among variants on the validation targets.

A *model* here is any object with ``score(histories) -> (n, n_items)`` array, where ``histories`` is
a list of int arrays of item positions, oldest first (:mod:`coldstart.models.sequential`).

:data:`PUBLISHED` holds the published rows with their sources; :func:`published_rows` writes them as
leaderboard rows (kind ``published``, profile ``paper``).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from ..data.benchmark import PROTOCOL, SeqBenchmark, protocol_of, without_history
from . import metrics as M
from .leaderboard import LEADERBOARD_COLUMNS, check_kind

BENCHMARK_CUTOFFS = (10, 20, 50)


@dataclasses.dataclass
class SeqResult:
    """The outcome of :func:`evaluate_seq`.

    Attributes
    ----------
    table: tidy DataFrame with the leaderboard columns plus ``n_users`` (one row per metric).
    ranks: 0-based rank of each invoice's target among all items (``n_items`` if it was removed).
    invoices: the invoices, in the order of ``ranks``.
    """

    table: pd.DataFrame
    ranks: np.ndarray
    invoices: np.ndarray

    def per_user(self, metric: str) -> np.ndarray:
        """Per-invoice values of ``recall@K`` or ``ndcg@K``."""
        return metric_values(self.ranks, metric)

    def summary(self) -> pd.Series:
        """``metric -> value``."""
        return self.table.set_index("metric")["value"]


def metric_values(ranks: np.ndarray, metric: str) -> np.ndarray:
    """Recall@K (= hit: one target) or NDCG@K = 1/log2(rank + 2) inside the top K, per invoice,
    from 0-based ranks."""
    name, _, k = metric.partition("@")
    if name not in ("recall", "ndcg") or not k.isdigit() or int(k) < 1:
        raise ValueError(f"metric must be recall@K or ndcg@K, got {metric!r}")
    ranks = np.asarray(ranks, dtype=np.float64)
    hit = ranks < int(k)
    if name == "recall":
        return hit.astype(np.float64)
    return np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each target in its row of ``scores`` (higher is better; ties to the lower
    catalog position: :func:`coldstart.evaluation.metrics.item_ranks`); a target scored ``-inf`` gets
    rank ``n_items`` (never recommended)."""
    scores = np.asarray(scores)
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    never = np.isneginf(scores[np.arange(len(targets)), targets])
    return np.where(never, scores.shape[1], M.item_ranks(scores, targets)).astype(np.int64)


def evaluate_seq(model, bench: SeqBenchmark, split: str = "test", ks: Sequence[int] = BENCHMARK_CUTOFFS,
                 mask_history: bool = False, method: Optional[str] = None, kind: str = "baseline",
                 profile: str = "cpu", n_boot: int = 0, seed: int = 0, batch_size: int = 1024) -> SeqResult:
    """Rank all items for every invoice's history and score the held-out target.

    Parameters
    ----------
    model: an object with ``score(histories)`` (or a function of the histories).
    split: ``"test"`` (the last item) or ``"valid"`` (the second-to-last).
    ks: cut-offs of Recall@K and NDCG@K.
    mask_history: remove the history's items from the ranking (not done by the papers' protocol).
    method, kind, profile: labels of the result table (``method`` defaults to ``model.name``; the
        protocol is :func:`protocol_of` the benchmark).
    n_boot: bootstrap resamples over invoices for 95% intervals (0: none).

    Returns a :class:`SeqResult`.
    """
    check_kind(kind)
    score = model.score if callable(getattr(model, "score", None)) else model
    if not callable(score):
        raise TypeError("A model is an object with a .score(histories) method, or such a function")
    histories, targets = bench.histories(split), bench.targets(split)
    ranks = np.zeros(len(targets), np.int64)
    for lo in range(0, len(targets), batch_size):
        hi = min(lo + batch_size, len(targets))
        s = np.array(score(histories[lo:hi]), dtype=np.float32)
        if s.shape != (hi - lo, bench.n_items):
            raise ValueError(f"score() returned shape {s.shape}, expected {(hi - lo, bench.n_items)}")
        if mask_history:
            s = without_history(s, histories[lo:hi])
        ranks[lo:hi] = target_ranks(s, targets[lo:hi])
    rows = []
    for metric in [f"{m}@{k}" for k in ks for m in ("recall", "ndcg")]:
        v = metric_values(ranks, metric)
        mean, low, high = M.bootstrap_ci(v, n_boot=n_boot, seed=seed) if n_boot else (float(v.mean()), np.nan, np.nan)
        rows.append(dict(metric=metric, value=mean, ci_low=low, ci_high=high))
    table = pd.DataFrame(rows).assign(
        method=method or getattr(model, "name", getattr(model, "__name__", "model")), kind=kind,
        profile=profile, protocol=protocol_of(bench), segment=split, n_users=len(targets))
    return SeqResult(table=table[LEADERBOARD_COLUMNS + ["n_users"]], ranks=ranks, invoices=bench.invoices)


def choose_on_valid(models: Mapping, bench: SeqBenchmark, metric: str = "ndcg@10") -> tuple:
    """Evaluate every candidate on the validation targets; returns ``(best key, table)``.

    ``models`` maps a key (a name or a tuple of settings) to a model; ``table`` has one row per key
    with its ``recall@10``, ``ndcg@10`` and ``metric``, best first. Ties keep the first key.
    """
    rows = []
    for key, model in models.items():
        s = evaluate_seq(model, bench, split="valid", ks=sorted({10, int(metric.split("@")[1])})).summary()
        rows.append({"key": key, "recall@10": s["recall@10"], "ndcg@10": s["ndcg@10"], metric: s[metric]})
    if not rows:
        raise ValueError("choose_on_valid needs at least one candidate")
    table = pd.DataFrame(rows).loc[:, lambda t: ~t.columns.duplicated()]
    best = table.loc[table[metric].idxmax(), "key"]
    return best, table.sort_values(metric, ascending=False, kind="stable").reset_index(drop=True)


# -- published results ------------------------------------------------------------------------------
UNISREC = ("Hou et al. 2022, Towards Universal Sequence Representation Learning for Recommender Systems (KDD), "
           "arXiv 2206.05941, main results table")
VQREC = ("Hou et al. 2023, Learning Vector-Quantized Item Representation for Transferable Sequential Recommenders "
         "(WWW), arXiv 2210.12316, Table 2")
TEDREC = ("Xu et al. 2024, Sequence-level Semantic Representation Fusion for Recommender Systems (CIKM), "
          "arXiv 2402.18166, "
          "Table 3; the same numbers are in the authors' log results/tedrec_OR.out of github.com/Sherry-XLL/TedRec")

_U = ("recall@10", "ndcg@10", "recall@50", "ndcg@50")
_T = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
_PUBLISHED = [
    # method, uses text, source, metric names, values
    ("SASRec", False, UNISREC, _U, (0.1460, 0.0675, 0.3872, 0.1201)),
    ("BERT4Rec", False, UNISREC, _U, (0.1349, 0.0653, 0.3540, 0.1131)),
    ("FDSA", True, UNISREC, _U, (0.1490, 0.0719, 0.3802, 0.1223)),
    ("S3-Rec", True, UNISREC, _U, (0.1418, 0.0654, 0.3702, 0.1154)),
    ("CCDR", True, UNISREC, _U, (0.1347, 0.0620, 0.3587, 0.1108)),
    ("RecGURU", False, UNISREC, _U, (0.1467, 0.0658, 0.3885, 0.1188)),
    ("ZESRec", True, UNISREC, _U, (0.1103, 0.0535, 0.2750, 0.0896)),
    ("UniSRec (text)", True, UNISREC, _U, (0.1449, 0.0677, 0.3604, 0.1149)),
    ("UniSRec (text+ID)", True, UNISREC, _U, (0.1537, 0.0724, 0.3885, 0.1239)),
    ("VQ-Rec", True, VQREC, _U, (0.1557, 0.0730, 0.3994, 0.1263)),
    ("TedRec", True, TEDREC, _T, (0.2234, 0.3073, 0.1316, 0.1527)),
]
PUBLISHED = pd.DataFrame(
    [dict(method=m, text=t, source=src, **dict(zip(names, vals))) for m, t, src, names, vals in _PUBLISHED]
)[["method", "text", "recall@10", "ndcg@10", "recall@20", "ndcg@20", "recall@50", "ndcg@50", "source"]]


def published_rows(profile: str = "paper") -> pd.DataFrame:
    """:data:`PUBLISHED` as leaderboard rows: kind ``published``, profile ``paper``, protocol
    :data:`PROTOCOL`, segment ``test``, method ``"<name> (published)"``, no intervals."""
    long = PUBLISHED.melt(id_vars=["method"], value_vars=[c for c in PUBLISHED.columns if "@" in c],
                          var_name="metric", value_name="value").dropna(subset=["value"])
    long = long.assign(method=long["method"] + " (published)", kind="published", profile=profile,
                       protocol=PROTOCOL, segment="test", ci_low=np.nan, ci_high=np.nan)
    return long[LEADERBOARD_COLUMNS].reset_index(drop=True)

