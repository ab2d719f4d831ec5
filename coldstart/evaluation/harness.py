"""One evaluation entry point for every recommender.

A *recommender* is anything that scores the whole catalog for a batch of cases. It is either a
function ``score(cases) -> np.ndarray [n_cases, n_items]`` or an object with such a ``score``
method (and optionally a ``name``). The :class:`~coldstart.data.protocol.Cases` it receives hold,
for each case, the context items (catalog positions, in click order), the customer's country and
the date of the context -- never the targets. Higher scores rank higher; ``-inf`` means "never
recommend"; a row of ``-inf`` (the method has nothing to say) counts as zero on every accuracy
metric, never dropped.

:func:`evaluate` runs a recommender on every segment of a
:class:`~coldstart.data.protocol.ColdStartSplit` and returns an :class:`EvalResult`: a tidy table
(one row per segment and metric, with a bootstrap 95% confidence interval over users) plus the
per-user values, which :func:`compare` uses for a paired bootstrap between two methods on the same
users, and :func:`compare_segments` for an unpaired one between two groups of users (two markets,
two seasons) under the same method. :func:`mean_ndcg` is the one number every choice on the
validation split is made on.

Metrics reported per segment (see :mod:`coldstart.evaluation.metrics` for the exact conventions):
``ndcg@10, ndcg@20, recall@10, recall@20, hit@10, hit@20, mrr`` (accuracy), ``coverage@10`` (share
of the catalog recommended to anyone), ``ild@10`` (intra-list diversity: mean pairwise 1 - cosine
of the recommended items' text vectors in :data:`DIVERSITY_TFIDF`) and ``novelty@10`` (mean
self-information of the recommended items from training popularity).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np
import pandas as pd

from .._internal.progress import progress_bar
from ..data.protocol import NEW_USER_SEGMENTS, SEGMENTS, ColdStartSplit, Segment
from ..data.text import tfidf_similarity
from . import metrics as M
from .leaderboard import LEADERBOARD_COLUMNS, check_kind

CUTOFFS = (10, 20)  # the K of recall@K, ndcg@K and hit@K
# The text space intra-list diversity is measured in: TF-IDF of single words with raw term counts.
# (The text baselines' TF-IDF uses word uni- and bigrams; the reference results' ild@10 use this one.)
DIVERSITY_TFIDF = {"words": (1, 1), "sublinear": False}


@dataclasses.dataclass
class EvalResult:
    """The outcome of :func:`evaluate`.

    Attributes
    ----------
    table: tidy DataFrame with the leaderboard columns plus ``n_users``.
    per_user: ``{segment: {metric: per-user array}}`` for paired comparisons.
    users: ``{segment: user ids}`` in the same order as the per-user arrays.
    topk: ``{segment: (n_cases, 20) int array}`` of recommended catalog positions (-1 = nothing).
    seconds: wall-clock seconds spent scoring, per segment.
    """

    table: pd.DataFrame
    per_user: dict
    users: dict
    topk: dict
    seconds: dict

    def save_lists(self, path: Union[str, Path]) -> Path:
        """Save the recommended lists (and users) of every segment to one ``.npz`` file, so a later
        notebook can show them without re-running the model."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for seg, top in self.topk.items():
            arrays[f"topk/{seg}"] = top
            arrays[f"users/{seg}"] = np.asarray(self.users[seg])
        np.savez_compressed(path, **arrays)
        return path

    def pivot(self, metric: str = "ndcg@10") -> pd.Series:
        """The value of one metric per segment."""
        t = self.table[self.table["metric"] == metric]
        return t.set_index("segment")["value"]


def _scorer(recommender) -> Callable:
    if callable(getattr(recommender, "score", None)):
        return recommender.score
    if callable(recommender):
        return recommender
    raise TypeError("A recommender is a function score(batch) or an object with a .score(batch) method")


def _diversity_similarity(split: ColdStartSplit) -> np.ndarray:
    """Cosine similarity of the items' texts in :data:`DIVERSITY_TFIDF`: the space in which intra-list
    diversity is measured (computed once per split)."""
    return split.cached("diversity similarity", lambda s: tfidf_similarity(s.texts(), **DIVERSITY_TFIDF))


def segment_metrics(scores: np.ndarray, segment: Segment, split: ColdStartSplit,
                    cutoffs: Sequence[int] = CUTOFFS) -> tuple[dict, np.ndarray]:
    """Per-user metrics of a score matrix on one segment; returns ``(per_user, topk)``."""
    scores = np.asarray(scores, dtype=np.float32)
    if scores.shape != (len(segment), split.n_items):
        raise ValueError(f"score() returned shape {scores.shape}, expected {(len(segment), split.n_items)}")
    exclude = segment.exclude(split.n_items)
    topk = M.topk_items(scores, max(cutoffs), exclude=exclude)
    per_user = M.ranking_metrics(topk, segment.targets, ks=cutoffs)
    per_user["mrr"] = M.reciprocal_rank(scores, segment.targets, exclude=exclude)
    top10 = topk[:, :10]
    per_user["ild@10"] = M.intra_list_diversity(top10, similarity=_diversity_similarity(split))
    counts = split.catalog["train_customers"].to_numpy()
    per_user["novelty@10"] = M.novelty(top10, counts, split.train["customer"].nunique())
    return per_user, topk


def evaluate(
    recommender,
    split: ColdStartSplit,
    method: Optional[str] = None,
    kind: str = "baseline",
    profile: str = "cpu",
    protocol: str = "coldstart",
    segments: Sequence[str] = SEGMENTS,
    max_users: Optional[int] = None,
    n_boot: int = 1000,
    seed: int = 0,
    batch_size: int = 2048,
) -> EvalResult:
    """Evaluate a recommender on the cold-start protocol, segment by segment.

    Parameters
    ----------
    recommender: ``score(cases) -> [n_cases, n_items]`` function, or an object with ``.score``.
    split: the protocol split (test or validation).
    method, kind, profile, protocol: labels written into the result table (``method`` defaults to
        the recommender's ``name`` attribute).
    segments: which segments to run.
    max_users: evaluate on a deterministic sample of at most this many cases per segment
        (the ``smoke`` profile); ``None`` uses all.
    n_boot: bootstrap resamples for the confidence intervals (0 disables them).

    Returns an :class:`EvalResult`.
    """
    check_kind(kind)
    name = method or getattr(recommender, "name", None) or getattr(recommender, "__name__", "method")
    score = _scorer(recommender)
    rows, per_user_all, users, topks, seconds = [], {}, {}, {}, {}
    # a bar per method when interactive; silent under CI/nbval (a handful of segments, each seconds)
    for seg_name in progress_bar(list(segments), desc=f"evaluating {name}"):
        seg = split.segment(seg_name).sample(max_users, seed=seed)
        if len(seg) == 0:
            continue
        t0 = time.perf_counter()
        parts = []
        for lo in range(0, len(seg), batch_size):
            parts.append(np.asarray(score(seg.batch(np.arange(lo, min(lo + batch_size, len(seg))))), dtype=np.float32))
        scores = np.concatenate(parts) if parts else np.zeros((0, split.n_items), np.float32)
        seconds[seg_name] = time.perf_counter() - t0
        per_user, topk = segment_metrics(scores, seg, split)
        per_user_all[seg_name], users[seg_name], topks[seg_name] = per_user, seg.users, topk
        for metric, values in per_user.items():
            if n_boot:
                mean, low, high = M.bootstrap_ci(values, n_boot=n_boot, seed=seed)
            else:
                mean, low, high = float(np.nanmean(values)), np.nan, np.nan
            rows.append((metric, seg_name, mean, low, high, len(seg)))
        if n_boot:
            cov = M.coverage_ci(topk[:, :10], split.n_items, n_boot=n_boot, seed=seed)
        else:
            cov = (M.coverage(topk[:, :10], split.n_items), np.nan, np.nan)
        rows.append(("coverage@10", seg_name, *cov, len(seg)))
    table = pd.DataFrame(rows, columns=["metric", "segment", "value", "ci_low", "ci_high", "n_users"])
    table.insert(0, "protocol", protocol)
    table.insert(0, "profile", profile)
    table.insert(0, "kind", kind)
    table.insert(0, "method", name)
    table = table[LEADERBOARD_COLUMNS + ["n_users"]]
    return EvalResult(table=table, per_user=per_user_all, users=users, topk=topks, seconds=seconds)


def mean_ndcg(recommender, split: ColdStartSplit, max_users: Optional[int] = None,
              segments: Sequence[str] = NEW_USER_SEGMENTS) -> float:
    """The number model choices are made on: mean NDCG@10 over the new-user segments (k = 1, 3, 5)
    of ``split`` (the validation split), on at most ``max_users`` cases per segment, no intervals."""
    result = evaluate(recommender, split, segments=segments, max_users=max_users, n_boot=0)
    return result.table.query("metric == 'ndcg@10'")["value"].mean()


def load_lists(path: Union[str, Path]) -> dict:
    """Read lists saved by :meth:`EvalResult.save_lists`: ``{segment: (users, topk)}``."""
    with np.load(path) as data:
        segs = sorted({k.split("/", 1)[1] for k in data.files})
        return {seg: (data[f"users/{seg}"], data[f"topk/{seg}"]) for seg in segs}


def compare(a: EvalResult, b: EvalResult, metric: str = "ndcg@10", n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Paired bootstrap of ``a - b`` on the same users, per segment.

    Returns a table with columns ``segment, a, b, diff, rel_diff, ci_low, ci_high, p_value, real``
    where ``real`` is True when the 95% interval of the difference excludes zero.
    """
    out = []
    for seg in a.per_user:
        if seg not in b.per_user:
            continue
        if not np.array_equal(a.users[seg], b.users[seg]):
            raise ValueError(f"Segment {seg}: the two results were computed on different users")
        va, vb = a.per_user[seg][metric], b.per_user[seg][metric]
        res = M.paired_bootstrap(va, vb, n_boot=n_boot, seed=seed)
        ma, mb = float(np.nanmean(va)), float(np.nanmean(vb))
        out.append(dict(
            segment=seg, a=ma, b=mb, diff=res["diff"], rel_diff=res["diff"] / mb if mb else np.nan,
            ci_low=res["low"], ci_high=res["high"], p_value=res["p_value"],
            real=bool(res["low"] > 0 or res["high"] < 0),
        ))
    return pd.DataFrame(out)


def compare_segments(result: EvalResult, pairs: Sequence[tuple], metric: str = "ndcg@10", n_boot: int = 1000,
                     seed: int = 0) -> pd.DataFrame:
    """One method on two groups of different users: ``segment a`` minus ``segment b``, per pair.

    ``pairs`` is a list of ``(segment_a, segment_b)`` of ``result`` (e.g. ``("season=Nov-Dec k=1",
    "season=Sep-Oct k=1")``). The users differ, so the interval is an unpaired bootstrap
    (:func:`coldstart.evaluation.metrics.unpaired_bootstrap`). Returns a table with columns ``segment_a,
    segment_b, n_a, n_b, a, b, diff, ci_low, ci_high, p_value, real`` (``real``: the 95% interval
    excludes zero). Raises ``KeyError`` naming a segment the result does not hold.
    """
    out = []
    for seg_a, seg_b in pairs:
        for seg in (seg_a, seg_b):
            if seg not in result.per_user:
                raise KeyError(f"Segment {seg!r} is not in the result; it has {list(result.per_user)}")
        va, vb = result.per_user[seg_a][metric], result.per_user[seg_b][metric]
        res = M.unpaired_bootstrap(va, vb, n_boot=n_boot, seed=seed)
        out.append(dict(
            segment_a=seg_a, segment_b=seg_b, n_a=len(va), n_b=len(vb), a=float(np.nanmean(va)),
            b=float(np.nanmean(vb)), diff=res["diff"], ci_low=res["low"], ci_high=res["high"],
            p_value=res["p_value"], real=bool(res["low"] > 0 or res["high"] < 0),
        ))
    return pd.DataFrame(out)
