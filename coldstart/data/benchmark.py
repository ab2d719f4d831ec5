"""The UniSRec / VQ-Rec "Online Retail" benchmark's split, rebuilt from the UCI table (notebook 08).

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
checks the counts, so a different table or a changed rule cannot pass unnoticed. An item's text is
its most frequent description (:func:`coldstart.data.text.most_frequent_text`).

Its evaluation (all items ranked, Recall and NDCG at 10, 20 and 50, the published results) is in
:mod:`coldstart.evaluation.benchmark`, its models in :mod:`coldstart.models.sequential`, its training
pairs in :func:`coldstart.training.pairs.history_pairs`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Optional, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .retail import load_raw
from .text import most_frequent_text

PROTOCOL = "unisrec-online-retail"
EXPECTED = {"invoices": 16520, "items": 3469, "interactions": 519906}
MAX_HISTORY = 50
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
    if table is None or isinstance(table, (str, os.PathLike)):
        return load_raw(table)
    missing = {"InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate"} - set(table.columns)
    if missing:
        raise ValueError(
            f"load_benchmark needs the raw UCI table (columns InvoiceNo, StockCode, Description, Quantity, "
            f"InvoiceDate), as coldstart.data.load_raw() returns it; missing {sorted(missing)}. The cleaned "
            "table of notebook 01 will not do: it drops rows the benchmark keeps"
        )
    return table


def filter_rows(table: pd.DataFrame, min_count: int = 5, verbose: bool = False) -> pd.DataFrame:
    """Rules 1-4 of the module docstring: the benchmark's rows, in file order, with a ``line`` column.

    ``verbose`` prints the rows, invoices and items left after each rule.
    """
    d = table.assign(line=np.arange(len(table), dtype=np.int64))
    steps = [("raw table", d)]
    text = d["Description"].astype("string")
    d = d[(text.notna() & text.str.strip().ne("")).fillna(False).astype(bool).to_numpy()]
    steps.append(("non-empty description", d))
    d = d.drop_duplicates(["InvoiceNo", "StockCode", "Quantity", "InvoiceDate"])
    steps.append(("no exact duplicates", d))
    rounds = 0
    while True:
        rounds, n = rounds + 1, len(d)
        per_invoice = d.groupby("InvoiceNo")["line"].transform("size")
        d = d[(per_invoice >= min_count).to_numpy()]
        per_item = d.groupby("StockCode")["line"].transform("size")
        d = d[(per_item >= min_count).to_numpy()]
        if len(d) == n:
            break
    steps.append((f"{min_count}-core ({rounds} rounds)", d))
    if verbose:
        width = max(len(name) for name, _ in steps)
        print(f"{'step':<{width}}  {'rows':>8}  {'invoices':>8}  {'items':>6}")
        for name, rows in steps:
            invoices, items = rows["InvoiceNo"].nunique(), rows["StockCode"].nunique()
            print(f"{name:<{width}}  {len(rows):>8,}  {invoices:>8,}  {items:>6,}")
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

    # an item's text: its most frequent description, ties to the one seen first in the file
    best = most_frequent_text(d["StockCode"].astype(str).to_numpy(), d["Description"], d["line"].to_numpy())
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


def without_history(scores: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
    """``scores`` (n x items, changed in place and returned) with each history's items set to
    ``-inf``: never recommended."""
    for r, h in enumerate(histories):
        scores[r, np.asarray(h, dtype=np.int64)] = -np.inf
    return scores
