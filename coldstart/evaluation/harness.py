"""One evaluation entry point for every recommender, and the course's leaderboard.

A *recommender* is anything that scores the whole catalog for a batch of user contexts. It is either
a function ``score(batch) -> np.ndarray [n_cases, n_items]`` or an object with such a ``score``
method (and optionally a ``name``). The :class:`Batch` it receives holds, for each case, the context
items (catalog positions, in click order), the customer's country and the date of the context.
Higher scores rank higher; ``-inf`` means "never recommend"; a row of ``-inf`` (the method has
nothing to say) counts as zero on every accuracy metric, never dropped.

:func:`evaluate` runs a recommender on every segment of a :class:`~coldstart.protocol.ColdStartSplit`
and returns an :class:`EvalResult`: a tidy table (one row per segment and metric, with a bootstrap
95% confidence interval over users) plus the per-user values, which :func:`compare` uses for a paired
bootstrap between two methods on the same users, and :func:`compare_segments` for an unpaired one
between two groups of users (two markets, two seasons) under the same method.

Metrics reported per segment (see :mod:`coldstart.metrics` for the exact conventions):
``ndcg@10, ndcg@20, recall@10, recall@20, hit@10, hit@20, mrr`` (accuracy), ``coverage@10``
(share of the catalog recommended to anyone), ``ild@10`` (intra-list diversity: mean pairwise 1 - cosine of the
recommended items' TF-IDF text vectors) and ``novelty@10`` (mean self-information of recommended items from training popularity).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import metrics as M
from .._internal.io import write_text_atomic
from ..data.protocol import SEGMENTS, ColdStartSplit, Segment

LEADERBOARD_COLUMNS = ["method", "kind", "profile", "protocol", "segment", "metric", "value", "ci_low", "ci_high"]
KINDS = ("baseline", "fine-tuned", "augmented", "adapter", "lora", "published")
KS = (10, 20)


@dataclasses.dataclass
class Batch:
    """What a recommender sees for a batch of cases.

    Attributes
    ----------
    context: list of int arrays: each case's context items as catalog positions, in click order
        (may be empty: a user we know nothing about).
    country: array of country names.
    date: array of datetimes (when the context was observed).
    """

    context: list
    country: np.ndarray
    date: np.ndarray

    def __len__(self) -> int:
        return len(self.context)

    def context_matrix(self, n_items: int, weights: str = "uniform") -> sp.csr_matrix:
        """Sparse (cases x items) matrix of the context items.

        ``weights="uniform"`` gives 1 per context item; ``"mean"`` gives 1/k (so a product with an
        item-item matrix averages over the context).
        """
        lens = np.array([len(c) for c in self.context])
        rows = np.repeat(np.arange(len(self.context)), lens)
        cols = np.concatenate(self.context).astype(np.int64) if len(rows) else np.zeros(0, np.int64)
        vals = np.ones(len(cols), dtype=np.float32)
        if weights == "mean":
            vals = vals / np.repeat(np.maximum(lens, 1), lens)
        return sp.csr_matrix((vals, (rows, cols)), shape=(len(self.context), n_items))


def batch_of(segment: Segment) -> Batch:
    """The :class:`Batch` of a protocol segment."""
    return Batch(context=list(segment.context), country=segment.country, date=segment.date)


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


def _item_similarity(split: ColdStartSplit) -> np.ndarray:
    """Cosine similarity of items' TF-IDF text vectors (cached on the split): the space in which
    intra-list diversity is measured."""
    sim = getattr(split, "_tfidf_similarity", None)
    if sim is None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vecs = TfidfVectorizer().fit_transform(split.texts()).astype(np.float32)  # rows L2-normalised
        sim = (vecs @ vecs.T).toarray()
        split._tfidf_similarity = sim
    return sim


def ild_from_similarity(topk: np.ndarray, sim: np.ndarray) -> np.ndarray:
    """Intra-list diversity (mean pairwise ``1 - cosine``) from a precomputed item-item cosine
    matrix; same convention as :func:`coldstart.metrics.intra_list_diversity`, but O(k^2) per user
    instead of O(k^2 d)."""
    valid = topk >= 0
    idx = np.maximum(topk, 0)
    pair = sim[idx[:, :, None], idx[:, None, :]] * (valid[:, :, None] & valid[:, None, :])
    n = valid.sum(axis=1)
    off_diag = (pair.sum(axis=(1, 2)) - np.trace(pair, axis1=1, axis2=2)) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n >= 2, 1.0 - off_diag / (n * (n - 1) / 2), np.nan)


def segment_metrics(scores: np.ndarray, segment: Segment, split: ColdStartSplit, ks=KS) -> tuple[dict, np.ndarray]:
    """Per-user metrics of a score matrix on one segment; returns ``(per_user, topk)``."""
    scores = np.asarray(scores, dtype=np.float32)
    if scores.shape != (len(segment), split.n_items):
        raise ValueError(f"score() returned shape {scores.shape}, expected {(len(segment), split.n_items)}")
    exclude = segment.exclude(split.n_items)
    topk = M.topk_items(scores, max(ks), exclude=exclude)
    per_user = M.ranking_metrics(topk, segment.targets, ks=ks)
    per_user["mrr"] = M.reciprocal_rank(scores, segment.targets, exclude=exclude)
    top10 = topk[:, :10]
    per_user["ild@10"] = ild_from_similarity(top10, _item_similarity(split))
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
    recommender: ``score(batch) -> [n_cases, n_items]`` function, or an object with ``.score``.
    split: the protocol split (test or validation).
    method, kind, profile, protocol: labels written into the result table (``method`` defaults to
        the recommender's ``name`` attribute).
    segments: which segments to run.
    max_users: evaluate on a deterministic sample of at most this many cases per segment
        (the ``smoke`` profile); ``None`` uses all.
    n_boot: bootstrap resamples for the confidence intervals (0 disables them).

    Returns an :class:`EvalResult`.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    name = method or getattr(recommender, "name", None) or getattr(recommender, "__name__", "method")
    score = _scorer(recommender)
    rows, per_user_all, users, topks, seconds = [], {}, {}, {}, {}
    from .._internal.progress import progress_bar

    # a bar per method when interactive; silent under CI/nbval (a handful of segments, each seconds)
    for seg_name in progress_bar(list(segments), desc=f"evaluating {name}"):
        seg = split.segment(seg_name).sample(max_users, seed=seed)
        if len(seg) == 0:
            continue
        t0 = time.perf_counter()
        parts = []
        for lo in range(0, len(seg), batch_size):
            sub = np.arange(lo, min(lo + batch_size, len(seg)))
            b = Batch(context=[seg.context[i] for i in sub], country=seg.country[sub], date=seg.date[sub])
            parts.append(np.asarray(score(b), dtype=np.float32))
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
    (:func:`coldstart.metrics.unpaired_bootstrap`). Returns a table with columns ``segment_a,
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


# -- the leaderboard ------------------------------------------------------------------------------
def leaderboard_path(profile: Optional[str] = None) -> Path:
    """The leaderboard of the current run: ``runs/<profile>/leaderboard.csv`` (see :func:`coldstart.config.runs_dir`)."""
    from ..config import runs_dir

    return runs_dir(profile) / "leaderboard.csv"


def read_leaderboard(path: Union[str, Path]) -> pd.DataFrame:
    """Read a leaderboard CSV (an empty table with the right columns if the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=LEADERBOARD_COLUMNS)
    return pd.read_csv(path)


def run_info(model: Optional[str] = None, **extra) -> dict:
    """What identifies a run: date, machine, library versions, model (recorded beside the results)."""
    import datetime
    import platform

    from .._internal.versions import installed_versions
    from ..tools.speed import cpu_model

    cpu = cpu_model()   # machines of the same size differ in CPU model, and with it in speed
    name = f"{cpu['cpu_model']} ({cpu.get('simd', '?')}), " if "cpu_model" in cpu else ""
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{name}{platform.machine()}, {os.cpu_count()} logical CPUs, {platform.system()}",
        "python": platform.python_version(),
        "versions": {k: v for k, v in installed_versions(("tensorflow", "tf-keras", "transformers", "numpy", "pandas", "scikit-learn")).items()},
    }
    if model:
        info["model"] = model
    info.update(extra)
    return info


def update_leaderboard(
    rows: Union[pd.DataFrame, EvalResult], path: Union[str, Path], model: Optional[str] = None, **info
) -> pd.DataFrame:
    """Write ``rows`` into the leaderboard at ``path``, replacing earlier rows of the same
    (method, profile, protocol). The file is written atomically. Returns the whole leaderboard.

    Beside it, ``<path stem>.runs.json`` records for every (method, profile, protocol) the run that
    produced its rows: date, machine, library versions, ``model`` and any extra ``info``.
    """
    new = rows.table if isinstance(rows, EvalResult) else rows
    missing = [c for c in LEADERBOARD_COLUMNS if c not in new.columns]
    if missing:
        raise ValueError(f"Leaderboard rows lack columns {missing}")
    new = new[LEADERBOARD_COLUMNS]
    path = Path(path)
    old = read_leaderboard(path)
    if len(old):
        keys = set(map(tuple, new[["method", "profile", "protocol"]].drop_duplicates().to_numpy()))
        drop = [tuple(r) in keys for r in old[["method", "profile", "protocol"]].to_numpy()]
        old = old[~np.array(drop, dtype=bool)]
    board = pd.concat([old, new], ignore_index=True) if len(old) else new.reset_index(drop=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(board.to_csv(index=False, float_format="%.6g"), path)

    import json

    runs_file = path.with_name(path.stem + ".runs.json")
    runs = json.loads(runs_file.read_text()) if runs_file.exists() else {}
    for method, profile, protocol in new[["method", "profile", "protocol"]].drop_duplicates().to_numpy():
        runs[f"{method} | {profile} | {protocol}"] = run_info(model=model, **info)
    write_text_atomic(json.dumps(runs, indent=1, sort_keys=True), runs_file)
    return board
