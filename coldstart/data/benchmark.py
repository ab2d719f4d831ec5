"""The UniSRec / VQ-Rec "Online Retail" benchmark, rebuilt from the UCI table (notebook 08).

Papers on text-based sequential recommendation (UniSRec, VQ-Rec, TedRec) report results on a split of
the same UCI table this course uses. To set the course's models beside theirs, :func:`load_benchmark`
rebuilds that split exactly, from the *raw* table (not the course's cleaned one):

1. keep rows with a non-empty ``Description``;
2. drop exact duplicates of (``InvoiceNo``, ``StockCode``, ``Quantity``, ``InvoiceDate``);
3. an invoice is a "user" (``CustomerID`` is not used, cancellations are kept);
4. iterative 5-core: drop invoices with fewer than 5 rows and items in fewer than 5 rows, until
   nothing changes (rows are counted, so an item twice in an invoice counts twice);
5. each invoice's rows are ordered by ``InvoiceDate`` with a stable sort, so rows with the same
   time keep their order in the file (``order="random"`` shuffles them instead, with ``seed``);
6. leave-one-out: the last item is the test target, the second-to-last the validation target, the
   rest is training data; a history fed to a model is truncated to its last 50 items.

These rules give 16,520 invoices, 3,469 items and 519,906 interactions (:data:`EXPECTED`); the loader
checks the counts, so a different table or a changed rule cannot pass unnoticed.

:func:`evaluate_seq` ranks all 3,469 items for each invoice's history and reports Recall and NDCG at
10, 20 and 50 (one target, so Recall@K is the hit rate). As RecBole does for sequential models, the
items already in the history are *not* removed from the ranking (an invoice can hold an item twice);
``mask_history=True`` removes them.

A *model* here is any object with ``score(histories) -> (n, n_items)`` array, where ``histories`` is
a list of int arrays of item positions, oldest first. Baselines fitted on the training part only:
:class:`SeqPopularity`, :class:`SeqItemKNN` (co-occurrence cosine), :class:`SeqEASE` (ridge
regression on baskets), each with optional recency decay over the history, a last-n cut and dropping
history items. :func:`choose_on_valid` picks among variants on the validation targets.

:data:`PUBLISHED` holds the published rows with their sources; :func:`published_rows` writes them as
leaderboard rows (kind ``published``, profile ``paper``).

The course's text model on the benchmark is notebook 03's two-tower model: :func:`text_pairs` draws
(history text -> next item) training pairs from the training parts, :func:`context_text` writes a
history as text (most recent item first), :class:`SeqTextModel` scores all items by cosine, and
:class:`Blend` adds it to an ID model such as :class:`SeqEASE`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..evaluation import metrics as M

PROTOCOL = "unisrec-online-retail"
EXPECTED = {"invoices": 16520, "items": 3469, "interactions": 519906}
MAX_HISTORY = 50
KS = (10, 20, 50)
ORDERS = ("file", "random")
SPLITS = ("valid", "test")


# -- building the benchmark -------------------------------------------------------------------------
@dataclasses.dataclass
class SeqBenchmark:
    """The benchmark: one item sequence per invoice, over a fixed catalog.

    Attributes
    ----------
    item_ids: StockCode of each catalog position (sorted).
    texts: each item's text (its most frequent description, normalised as in :mod:`coldstart.data`).
    invoices: InvoiceNo of each sequence.
    sequences: each invoice's items as catalog positions, in the benchmark's order (oldest first).
    order, seed: how ties in time were ordered (``"file"`` or ``"random"`` with ``seed``).
    """

    item_ids: np.ndarray
    texts: np.ndarray
    invoices: np.ndarray
    sequences: list
    order: str = "file"
    seed: Optional[int] = None

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.sequences)

    def counts(self) -> dict:
        """``{"invoices", "items", "interactions"}`` (items = catalog size)."""
        return {"invoices": len(self.sequences), "items": self.n_items,
                "interactions": int(sum(len(s) for s in self.sequences))}

    def histories(self, split: str = "test") -> list:
        """The model input of each invoice: the items before the target, at most the last 50."""
        cut = _cut(split)
        return [s[: len(s) - cut][-MAX_HISTORY:] for s in self.sequences]

    def targets(self, split: str = "test") -> np.ndarray:
        """The held-out item of each invoice: the last (test) or the second-to-last (valid)."""
        cut = _cut(split)
        return np.array([s[len(s) - cut] for s in self.sequences], dtype=np.int64)

    def train_sequences(self) -> list:
        """The training part of each invoice: everything before the validation target."""
        return [s[:-2] for s in self.sequences]

    def train_matrix(self) -> sp.csr_matrix:
        """Binary (invoice x item) matrix of the training parts."""
        parts = self.train_sequences()
        rows = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
        cols = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        X = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(parts), self.n_items))
        X.data[:] = 1.0  # an item twice in an invoice is still one basket membership
        return X

    def train_counts(self) -> np.ndarray:
        """How many training rows each item has."""
        parts = self.train_sequences()
        return np.bincount(np.concatenate(parts), minlength=self.n_items).astype(np.float64)

    def subset(self, idx) -> "SeqBenchmark":
        """The benchmark restricted to some invoices (same catalog)."""
        idx = np.asarray(idx, dtype=np.int64)
        return dataclasses.replace(self, invoices=self.invoices[idx], sequences=[self.sequences[i] for i in idx])


def protocol_of(bench: SeqBenchmark) -> str:
    """The protocol name results on ``bench`` carry: :data:`PROTOCOL` for the papers' file order,
    ``PROTOCOL + ":random-order"`` for the shuffled variant (so the two never overwrite each other)."""
    return PROTOCOL if bench.order == "file" else f"{PROTOCOL}:random-order"


def _cut(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return 1 if split == "test" else 2


def _read_table(table) -> pd.DataFrame:
    from . import retail as data

    if table is None or isinstance(table, (str, os.PathLike)):
        return data.load_raw(table)
    missing = {"InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate"} - set(table.columns)
    if missing:
        raise ValueError(
            f"load_benchmark needs the raw UCI table (columns InvoiceNo, StockCode, Description, Quantity, "
            f"InvoiceDate), as coldstart.data.load_raw() returns it; missing {sorted(missing)}. The cleaned "
            "table of notebook 01 will not do: it drops rows the benchmark keeps"
        )
    return table


def filter_rows(table: pd.DataFrame, min_count: int = 5) -> pd.DataFrame:
    """Rules 1-4 of the module docstring: the benchmark's rows, in file order, with a ``line`` column."""
    d = table.assign(line=np.arange(len(table), dtype=np.int64))
    text = d["Description"].astype("string")
    d = d[(text.notna() & text.str.strip().ne("")).fillna(False).astype(bool).to_numpy()]
    d = d.drop_duplicates(["InvoiceNo", "StockCode", "Quantity", "InvoiceDate"])
    while True:
        n = len(d)
        per_invoice = d.groupby("InvoiceNo")["line"].transform("size")
        d = d[(per_invoice >= min_count).to_numpy()]
        per_item = d.groupby("StockCode")["line"].transform("size")
        d = d[(per_item >= min_count).to_numpy()]
        if len(d) == n:
            return d


def load_benchmark(table=None, order: str = "file", seed: int = 0,
                   expect: Optional[Mapping[str, int]] = EXPECTED) -> SeqBenchmark:
    """Rebuild the benchmark from the raw UCI table (see the module docstring).

    Parameters
    ----------
    table: the raw table (``coldstart.data.load_raw()`` output), a path to it, or ``None`` to load it
        the usual way (``$COLDSTART_DATA_FILE``, the cache or a download).
    order: ``"file"`` keeps rows of the same time in file order (the papers' split); ``"random"``
        shuffles them with ``seed``: the same baskets with an arbitrary order inside.
    expect: the counts the result must have (default :data:`EXPECTED`); ``None`` skips the check
        (for other tables, e.g. in tests).

    Raises ``ValueError`` if the counts differ from ``expect``.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    from .retail import _normalise_series

    d = filter_rows(_read_table(table))
    if d.empty:
        raise ValueError("No invoice has 5 rows of items that occur in 5 rows: is this the UCI Online Retail table?")
    tie = d["line"].to_numpy()
    if order == "random":
        tie = np.random.default_rng(seed).permutation(len(d))
    d = d.assign(_tie=tie).sort_values(["InvoiceDate", "_tie"], kind="stable")

    item_ids = np.array(sorted(d["StockCode"].astype(str).unique()), dtype=object)
    pos = pd.Series(np.arange(len(item_ids)), index=item_ids)
    d = d.assign(_pos=pos.reindex(d["StockCode"].astype(str)).to_numpy())
    # invoices in order of their first row in time; each invoice's rows in the order just sorted
    grouped = d.groupby("InvoiceNo", sort=False)["_pos"]
    invoices = np.array(list(grouped.groups.keys()), dtype=object)
    sequences = [np.asarray(v, dtype=np.int64) for v in grouped.agg(list)]

    # an item's text: its most frequent description (normalised), ties to the one seen first in the file
    t = pd.DataFrame({"item": d["StockCode"].astype(str).to_numpy(),
                      "text": _normalise_series(d["Description"]).to_numpy(), "line": d["line"].to_numpy()})
    best = (t.groupby(["item", "text"]).agg(n=("line", "size"), first=("line", "min")).reset_index()
            .sort_values(["item", "n", "first"], ascending=[True, False, True]).drop_duplicates("item")
            .set_index("item")["text"])
    bench = SeqBenchmark(item_ids=item_ids, texts=best.reindex(item_ids).to_numpy(dtype=object),
                         invoices=invoices, sequences=sequences, order=order,
                         seed=seed if order == "random" else None)
    if expect is not None:
        got = bench.counts()
        wrong = {k: (got[k], v) for k, v in expect.items() if got[k] != v}
        if wrong:
            detail = ", ".join(f"{k} {g:,} (expected {e:,})" for k, (g, e) in wrong.items())
            raise ValueError(
                f"The rebuilt benchmark has {detail}: the table is not the official UCI Online Retail file "
                "(541,909 rows), or a rule changed. Pass expect=None to build it from another table anyway"
            )
    return bench


def sample(bench: SeqBenchmark, n: Optional[int], seed: int = 0) -> SeqBenchmark:
    """A deterministic random subset of ``n`` invoices (all of them if ``n`` is ``None`` or larger),
    kept in benchmark order: for a quick (``smoke``) evaluation. Models fitted on the full benchmark
    can be evaluated on it, since the catalog is the same."""
    if n is None or n >= len(bench):
        return bench
    idx = np.sort(np.random.default_rng(seed).choice(len(bench), size=int(n), replace=False))
    return bench.subset(idx)


# -- evaluation ---------------------------------------------------------------------------------------
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
    """0-based rank of each target in its row of ``scores`` (higher is better). Ties go to the lower
    catalog position (as a stable sort of ``-scores`` would order them); a target scored ``-inf``
    gets rank ``n_items`` (never recommended)."""
    scores = np.asarray(scores)
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    rows = np.arange(len(targets))
    s_t = scores[rows, targets][:, None]
    before = np.arange(scores.shape[1])[None, :] < np.asarray(targets)[:, None]
    ranks = (scores > s_t).sum(axis=1) + ((scores == s_t) & before).sum(axis=1)
    return np.where(np.isneginf(s_t[:, 0]), scores.shape[1], ranks).astype(np.int64)


def history_matrix(histories: Sequence[np.ndarray], n_items: int, decay: Optional[float] = None,
                   last_n: Optional[int] = None) -> sp.csr_matrix:
    """Sparse (n x items) weights of each history's items: 1 each, or ``decay ** age`` with age 0
    for the most recent item; ``last_n`` keeps only the most recent items. Repeats add up."""
    rows, cols, vals = [], [], []
    for r, h in enumerate(histories):
        h = np.asarray(h, dtype=np.int64)
        if last_n is not None:
            h = h[-last_n:]
        age = np.arange(len(h))[::-1]
        rows.append(np.full(len(h), r))
        cols.append(h)
        vals.append(np.ones(len(h)) if decay is None else float(decay) ** age)
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    return sp.csr_matrix((cat(vals, np.float32), (cat(rows, np.int64), cat(cols, np.int64))),
                         shape=(len(histories), n_items))


def _drop(scores: np.ndarray, histories) -> np.ndarray:
    for r, h in enumerate(histories):
        scores[r, np.asarray(h, dtype=np.int64)] = -np.inf
    return scores


def evaluate_seq(model, bench: SeqBenchmark, split: str = "test", ks: Sequence[int] = KS,
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
    from ..evaluation.harness import KINDS, LEADERBOARD_COLUMNS

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
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
            s = _drop(s, histories[lo:hi])
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


# -- baselines ---------------------------------------------------------------------------------------
def _tie_breaker(counts: np.ndarray) -> np.ndarray:
    """Popularity squeezed into [0, 1e-6): breaks ties among equal scores, nothing more."""
    return (1e-6 * counts / (counts.max() + 1.0)).astype(np.float32)


class SeqPopularity:
    """The items with the most training rows, the same list for every invoice."""

    name = "popularity"

    def __init__(self, bench: SeqBenchmark):
        self.counts = bench.train_counts().astype(np.float32)

    def score(self, histories) -> np.ndarray:
        return np.tile(self.counts, (len(histories), 1))


class _HistoryWeighted:
    """Shared scoring: history weights (decay, last n) times an item-item matrix, plus options."""

    def __init__(self, bench, decay, last_n, drop_history, name):
        self.n_items, self.decay, self.last_n, self.drop_history = bench.n_items, decay, last_n, drop_history
        self.tie = _tie_breaker(bench.train_counts())
        self.name = name

    def variant(self, **options):
        """A copy with other ``decay``, ``last_n``, ``drop_history`` or ``name`` (the fitted matrix is shared)."""
        unknown = set(options) - {"decay", "last_n", "drop_history", "name"}
        if unknown:
            raise TypeError(f"unknown option(s) {sorted(unknown)}")
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__.update(options)
        return new

    def score(self, histories) -> np.ndarray:
        W = history_matrix(histories, self.n_items, decay=self.decay, last_n=self.last_n)
        scores = np.asarray(W @ self.matrix, dtype=np.float32) + self.tie
        return _drop(scores, histories) if self.drop_history else scores


class SeqItemKNN(_HistoryWeighted):
    """Item-kNN on co-occurrence: sim(i, j) = cosine of the items' training-invoice vectors,
    sim(i, i) = 0; score(j) = sum over history items h of w_h * sim(h, j), with w_h = 1 (plain) or
    ``decay ** age`` (age 0 = the most recent item), over the ``last_n`` most recent items."""

    def __init__(self, bench: SeqBenchmark, decay: Optional[float] = None, last_n: Optional[int] = None,
                 drop_history: bool = False, name: str = "item-knn"):
        super().__init__(bench, decay, last_n, drop_history, name)
        X = bench.train_matrix()
        co = (X.T @ X).toarray().astype(np.float32)
        norms = np.sqrt(np.diag(co))
        sim = co / np.maximum(np.outer(norms, norms), 1e-9)
        np.fill_diagonal(sim, 0.0)
        self.matrix = sim


class SeqEASE(_HistoryWeighted):
    """EASE (Steck 2019) on the training baskets: B = argmin ||X - XB||^2 + lam ||B||^2, diag(B) = 0;
    score(j) = sum over history items h of w_h * B[h, j] (weights as :class:`SeqItemKNN`)."""

    def __init__(self, bench: SeqBenchmark, lam: float = 100.0, decay: Optional[float] = None,
                 last_n: Optional[int] = None, drop_history: bool = False, name: str = "ease"):
        super().__init__(bench, decay, last_n, drop_history, name)
        X = bench.train_matrix()
        gram = (X.T @ X).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += lam
        P = np.linalg.inv(gram)
        B = -P / np.diag(P)[None, :]
        np.fill_diagonal(B, 0.0)
        self.lam, self.matrix = lam, B.astype(np.float32)


class Blend:
    """score = sum of ``weight * model.score`` over ``parts`` (``[(weight, model), ...]``): e.g. a text
    model plus an ID model. ``-inf`` from any part stays ``-inf``; a part of weight 0 is not run."""

    def __init__(self, parts: Iterable, name: str = "blend"):
        self.parts, self.name = list(parts), name
        if not any(w != 0 for w, _ in self.parts):
            raise ValueError("a blend needs at least one part with a non-zero weight")

    def score(self, histories) -> np.ndarray:
        out = None
        for w, model in self.parts:
            if w == 0:
                continue
            s = np.asarray(model.score(histories), dtype=np.float32)
            s = w * s if w != 1 else s
            out = s if out is None else out + s
        return out


# -- published results --------------------------------------------------------------------------------
UNISREC = "Hou et al. 2022, Towards Universal Sequence Representation Learning for Recommender Systems (KDD), arXiv 2206.05941, main results table"
VQREC = "Hou et al. 2023, Learning Vector-Quantized Item Representation for Transferable Sequential Recommenders (WWW), arXiv 2210.12316, Table 2"
TEDREC = ("Xu et al. 2024, Sequence-level Semantic Representation Fusion for Recommender Systems (CIKM), arXiv 2402.18166, "
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
    from ..evaluation.harness import LEADERBOARD_COLUMNS

    long = PUBLISHED.melt(id_vars=["method"], value_vars=[c for c in PUBLISHED.columns if "@" in c],
                          var_name="metric", value_name="value").dropna(subset=["value"])
    long = long.assign(method=long["method"] + " (published)", kind="published", profile=profile,
                       protocol=PROTOCOL, segment="test", ci_low=np.nan, ci_high=np.nan)
    return long[LEADERBOARD_COLUMNS].reset_index(drop=True)


# -- a text model for the benchmark ---------------------------------------------------------------------
def context_text(texts, history, last_m: int = 5, sep: str = " ; ") -> str:
    """A history written as text for the user tower: the ``last_m`` most recent items' texts, the
    most recent *first*, so that truncation to the encoder's length drops the oldest ones."""
    return sep.join(texts[i] for i in np.asarray(history, dtype=np.int64)[::-1][:last_m])


def text_pairs(bench: SeqBenchmark, n: Optional[int], seed: int = 0, last_m: int = 5) -> tuple:
    """``n`` training pairs (history text -> next item) drawn uniformly from the training parts:
    a pair is an invoice and a position ``t >= 1`` of its training part; the history is the items
    before ``t`` (at most the last 50), the positive is the item at ``t``. No validation or test
    target is ever used. Returns ``(context texts, positive item positions)``."""
    parts = bench.train_sequences()
    lengths = np.array([len(p) - 1 for p in parts])  # positions t = 1 .. len - 1
    total = int(lengths.sum())
    rng = np.random.default_rng(seed)
    flat = rng.choice(total, size=min(n, total), replace=False) if n is not None else np.arange(total)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    inv = np.searchsorted(starts, flat, side="right") - 1
    pos = flat - starts[inv] + 1
    contexts = [context_text(bench.texts, parts[i][max(0, t - MAX_HISTORY):t], last_m) for i, t in zip(inv, pos)]
    items = np.array([parts[i][t] for i, t in zip(inv, pos)], dtype=np.int64)
    return contexts, items


class SeqTextModel:
    """Text-only scores: cosine between the encoded history text (:func:`context_text`) and every
    item's encoded text. ``item_vectors``: the L2-normalised item embeddings (e.g. from
    :func:`coldstart.encoders.encode`). ``drop_history`` removes the history's items (otherwise the
    last item, identical to itself, would top every list). Encoded contexts are memoised."""

    def __init__(self, tokenizer, encoder, texts, item_vectors, last_m: int = 5, max_len: int = 48,
                 batch_size: int = 128, drop_history: bool = True, name: str = "text"):
        self.tokenizer, self.encoder, self.texts = tokenizer, encoder, np.asarray(texts, dtype=object)
        self.item_vectors, self.last_m, self.max_len = np.asarray(item_vectors, np.float32), last_m, max_len
        self.batch_size, self.drop_history, self.name = batch_size, drop_history, name
        self._cache = {}

    def user_vectors(self, histories) -> np.ndarray:
        from ..models.encoders import encode

        keys = [context_text(self.texts, h, self.last_m) for h in histories]
        todo = [k for k in dict.fromkeys(keys) if k not in self._cache]
        if todo:
            vecs = encode(todo, self.tokenizer, self.encoder, max_len=self.max_len, batch_size=self.batch_size,
                          desc="encoding histories")
            self._cache.update(zip(todo, vecs))
        return np.stack([self._cache[k] for k in keys])

    def score(self, histories) -> np.ndarray:
        scores = self.user_vectors(histories) @ self.item_vectors.T
        return _drop(scores, histories) if self.drop_history else scores
