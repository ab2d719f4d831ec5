"""The cold-start protocol: the course's one yardstick.

A shop's *new* customers are the hard case: when they arrive we have seen one to five of their
clicks and nothing else. The protocol turns the cleaned UCI table into exactly that situation.

Construction (:func:`make_split`)
---------------------------------
* **Time split** at a cutoff ``T`` (default ``2011-09-01``). Training data is every row with
  ``date < T``. Only rows with ``date < end`` exist at all (``end`` defaults to the end of the data;
  the validation split sets it to the test cutoff, so validation never sees test-period rows).
* **Catalog**: every item sold before ``end``, with its text. Items first sold at or after ``T``
  are *cold items*: they have text but no purchases in the training data.
* **New users**: customers whose first invoice is at or after ``T``. For each ``k`` in ``ks``
  (default 1, 3, 5) the *context* is the first ``k`` distinct items of their first invoice, in the
  invoice's line order, and the *targets* are all other distinct items they bought in ``[T, end)``.
  A user whose first invoice has fewer than ``k`` distinct items, or who has no target left, is
  skipped at that ``k``.
* **Segments**: ``k=1``, ``k=3``, ``k=5`` (new users); ``cold-items`` (new users at ``k=1`` with
  targets restricted to cold items; users without a cold target skipped); ``warm`` (customers seen
  before ``T`` who buy again in ``[T, end)``: context = the first ``k=3`` distinct items of their
  first invoice at or after ``T``, targets as for new users; reported, not the focus).
* **Ranking**: every catalog item is a candidate, cold items included; only the context items are
  excluded from a user's ranking.
* **Validation** (:func:`make_validation_split`): the same construction with ``T = 2011-07-01`` and
  ``end = 2011-09-01``, so model choices never look at test users or test-period rows.

Everything is deterministic: the same input gives the same split.

Records
-------
:class:`Cases` is what a recommender sees of its users (context, country, date) -- a batch it
scores; a :class:`Segment` adds the users and their targets; :class:`ColdStartSplit` holds the
training rows, the catalog and every case. :func:`load_or_make` gives the shared test and
validation splits the notebooks use.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._internal.io import atomic_dir
from ..config import data_dir, shown
from .retail import build_catalog, load_clean
from .text import with_price_band

TEST_CUTOFF = "2011-09-01"
VALID_CUTOFF = "2011-07-01"
CONTEXT_SIZES = (1, 3, 5)
WARM_K = 3
COLD_K = 1
NEW_USER_SEGMENTS = tuple(f"k={k}" for k in CONTEXT_SIZES)
SEGMENTS = (*NEW_USER_SEGMENTS, "cold-items", "warm")
# what ColdStartSplit.save writes: the only entries a folder it replaces may hold
SAVED_NAMES = ("split.json", "train.parquet", "catalog.parquet", "cases.parquet")


# -- the records ------------------------------------------------------------------------------------
@dataclasses.dataclass
class Cases:
    """Users in the cold-start situation: for each, what a recommender may know about them.

    The one record of the course's cases: a protocol :class:`Segment`, a batch a recommender
    scores (``recommender.score(cases)``) and pseudo-users for training
    (:class:`coldstart.training.pairs.Examples`) all carry these fields.

    Attributes
    ----------
    context: list of int arrays: each case's context items as catalog positions, in click order
        (may be empty: a user we know nothing about).
    country: the customer's country, per case.
    date: when the context was observed (the date of its invoice), per case.
    """

    context: list
    country: np.ndarray
    date: np.ndarray

    def __len__(self) -> int:
        return len(self.context)

    def subset(self, idx):
        """The cases at positions ``idx``, in that order, as a record of the same type."""
        idx = np.asarray(idx, dtype=np.int64)  # an empty list is float64 to numpy: not an index
        picked = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, list):
                picked[field.name] = [value[i] for i in idx]
            elif hasattr(value, "shape"):  # numpy arrays, scipy.sparse matrices
                picked[field.name] = value[idx]
            else:  # a property of the whole record (a segment's name)
                picked[field.name] = value
        return type(self)(**picked)

    def batch(self, rows=None) -> "Cases":
        """What a recommender may see of these cases (context, country, date; no targets), for all
        of them or for the positions ``rows``."""
        plain = Cases(context=list(self.context), country=self.country, date=self.date)
        return plain if rows is None else plain.subset(rows)

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

    def exclude(self, n_items: int) -> sp.csr_matrix:
        """CSR mask (cases x items) of the context items, which must not be recommended."""
        return self.context_matrix(n_items) != 0


@dataclasses.dataclass
class Segment(Cases):
    """The evaluation cases of one segment, in index form, ready for scoring.

    Attributes (besides ``context, country, date`` of :class:`Cases`)
    ----------
    name: segment name (``k=1`` ... ``warm``).
    users: customer ids, one per case.
    targets: CSR matrix (cases x items), 1 where the item is a target.
    """

    name: str
    users: np.ndarray
    targets: sp.csr_matrix

    def sample(self, n: Optional[int], seed: int = 0) -> "Segment":
        """A deterministic random subset of ``n`` cases (all of them if ``n`` is None or larger)."""
        if n is None or n >= len(self):
            return self
        return self.subset(np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False)))


def item_counts(rows: pd.DataFrame, item_ids, column: str) -> np.ndarray:
    """Distinct values of ``column`` (``"customer"`` or ``"invoice"``) per item among ``rows``, in the
    order of ``item_ids`` (0 for an item without rows): the training statistics of a catalog."""
    counts = rows.groupby("item")[column].nunique()
    return counts.reindex(pd.Index(item_ids)).fillna(0).to_numpy(dtype=np.int64)


@dataclasses.dataclass
class ColdStartSplit:
    """A protocol split: training rows, catalog and evaluation cases.

    Attributes
    ----------
    cutoff, end: the time window; training rows have ``date < cutoff``, cases use ``[cutoff, end)``.
    train: cleaned rows before the cutoff (the only rows a model may learn from).
    catalog: one row per item sold before ``end``, indexed by item code, in a fixed order; columns
        ``text``, ``first_sold`` (launch date), ``median_price`` and ``cold`` (first sold at or after
        the cutoff), plus training-only statistics ``train_customers`` and ``train_invoices`` (0 for
        items without training rows). No column counts sales at or after the cutoff.
    cases: tidy table of all cases: ``segment, user, country, date, context, targets``
        (item codes as lists).
    item_ids: the catalog's item codes; an item's catalog position is its index here.
    """

    cutoff: pd.Timestamp
    end: pd.Timestamp
    train: pd.DataFrame
    catalog: pd.DataFrame
    cases: pd.DataFrame

    def __post_init__(self):
        # One set of dtypes whether the split was just built or read back from parquet.
        self.catalog.index = self.catalog.index.astype(str)
        self.cases = self.cases.copy()
        for col in ("segment", "country"):
            self.cases[col] = self.cases[col].astype(str)
        for col in ("context", "targets"):
            self.cases[col] = pd.Series([[str(i) for i in items] for items in self.cases[col]],
                                        index=self.cases.index, dtype=object)
        self.item_ids = self.catalog.index.to_numpy()
        self._position = {item: i for i, item in enumerate(self.item_ids)}
        self._segments = {}
        self._derived = {}

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def positions(self, items: Iterable[str]) -> np.ndarray:
        """Catalog positions of item codes; unknown codes are dropped (never an error)."""
        pos = self._position
        return np.array([pos[i] for i in items if i in pos], dtype=np.int64)

    def texts(self, positions=None, price_band: bool = False) -> list:
        """Item texts, for all items or for the given catalog positions; with ``price_band``, each
        followed by its median price in words (:func:`~coldstart.data.text.with_price_band`)."""
        text = self.catalog["text"].to_numpy()
        chosen = slice(None) if positions is None else np.asarray(positions, dtype=np.int64)
        if price_band:
            return with_price_band(text[chosen], self.catalog["median_price"].to_numpy()[chosen])
        return list(text[chosen])

    @property
    def new_items(self) -> np.ndarray:
        """Boolean per catalog item: True for items nobody bought in the training rows (cold items,
        and items sold before the cutoff only outside the training rows kept). An ID model cannot
        score them; the retrieval recipe's ``[new]`` term is this."""
        return self.catalog["train_customers"].to_numpy() == 0

    def cached(self, name: str, compute: Callable[["ColdStartSplit"], object]):
        """A value derived from this split, computed once: ``compute(split)`` the first time ``name``
        is asked for, the kept value after (e.g. the text similarity diversity is measured in).

        A split made from this one (:meth:`with_train`, ``dataclasses.replace``) starts with nothing
        kept, so a derived value always belongs to the split it was computed from.
        """
        if name not in self._derived:
            self._derived[name] = compute(self)
        return self._derived[name]

    def with_train(self, train: pd.DataFrame) -> "ColdStartSplit":
        """A copy whose training rows are ``train`` (e.g. a subset of this split's), with the
        catalog's training statistics recounted from them; catalog items, cutoff and cases are
        unchanged. Popularity, novelty and "no purchases yet" then follow the new rows."""
        train = train.reset_index(drop=True)
        catalog = self.catalog.copy()
        catalog["train_customers"] = item_counts(train, catalog.index, "customer")
        catalog["train_invoices"] = item_counts(train, catalog.index, "invoice")
        return dataclasses.replace(self, train=train, catalog=catalog)

    def with_launches(self, share: float, seed: int = 0) -> "ColdStartSplit":
        """A copy in which a random ``share`` of the products bought before the cutoff lose their
        training rows (:meth:`with_train`): simulated launches. The cases are unchanged, so those
        products' sales in the window become sales of new products, for every model alike.

        The test period of this data launches more products than the validation window (a third of
        the test's share of new products); a validation split with simulated launches makes choices
        where the ID part is blind as often as on the test. Products are drawn uniformly from those
        with training rows, in catalog order, with ``seed``."""
        if not 0.0 <= share < 1.0:
            raise ValueError(f"share must be in [0, 1): the fraction of the products bought before the cutoff "
                             f"to treat as launched after it, got {share!r}")
        bought = self.item_ids[self.catalog["train_customers"].to_numpy() > 0]
        launched = np.random.default_rng(seed).choice(bought, size=int(round(share * len(bought))), replace=False)
        return self.with_train(self.train[~self.train["item"].isin(set(launched))])

    @property
    def segment_names(self) -> list:
        """The segments this split has cases for: the standard ones in :data:`SEGMENTS` order, then
        any others (e.g. the market and season groups of :mod:`coldstart.data.subgroups`) in order of
        appearance."""
        present = list(dict.fromkeys(self.cases["segment"]))
        return [s for s in SEGMENTS if s in present] + [s for s in present if s not in SEGMENTS]

    def segment(self, name: str) -> Segment:
        """The cases of one segment in index form (see :class:`Segment`); computed once.

        ``name`` is one of :data:`SEGMENTS` (empty if the split has no such case) or any other
        segment name the split's cases carry."""
        if name not in SEGMENTS and name not in set(self.cases["segment"]):
            known = tuple(dict.fromkeys([*SEGMENTS, *self.segment_names]))
            raise ValueError(f"Unknown segment {name!r}; choose from {known}")
        if name not in self._segments:
            self._segments[name] = self._make_segment(name)
        return self._segments[name]

    def _make_segment(self, name: str) -> Segment:
        rows = self.cases[self.cases["segment"] == name]
        context = [self.positions(c) for c in rows["context"]]
        tgt = [self.positions(t) for t in rows["targets"]]
        r = np.repeat(np.arange(len(tgt)), [len(t) for t in tgt])
        c = np.concatenate(tgt) if tgt else np.zeros(0, dtype=np.int64)
        targets = sp.csr_matrix((np.ones(len(c), dtype=np.float32), (r, c)), shape=(len(tgt), self.n_items))
        return Segment(
            name=name,
            users=rows["user"].to_numpy(),
            context=context,
            targets=targets,
            country=rows["country"].to_numpy(),
            date=rows["date"].to_numpy(),
        )

    def counts(self) -> pd.DataFrame:
        """A small table of the split's sizes: training rows, customers, items, cold items, cases."""
        seg = self.cases.groupby("segment", sort=False).size()
        rows = {
            "training rows": len(self.train),
            "training customers": self.train["customer"].nunique(),
            "catalog items": self.n_items,
            "cold items": int(self.catalog["cold"].sum()),
            "new users": int(self.cases.loc[self.cases["segment"].str.startswith("k="), "user"].nunique()),
        }
        for name in dict.fromkeys([*SEGMENTS, *self.segment_names]):
            rows[f"cases {name}"] = int(seg.get(name, 0))
        return pd.DataFrame({"count": rows})

    # -- persistence --------------------------------------------------------------------------
    def save(self, folder, stamp: Optional[dict] = None) -> Path:
        """Write the split to ``folder`` (parquet + json), atomically: all files or none.

        ``stamp`` adds keys to ``split.json`` (where the data came from: :func:`save_default`)."""
        folder = Path(folder)
        with atomic_dir(folder, "split.json", SAVED_NAMES) as tmp:   # the old split stays until the new one is in
            self.train.to_parquet(tmp / "train.parquet", index=False)
            self.catalog.to_parquet(tmp / "catalog.parquet")
            _write_cases(self.cases, tmp / "cases.parquet")
            meta = {"cutoff": str(self.cutoff), "end": str(self.end), **(stamp or {})}
            (tmp / "split.json").write_text(json.dumps(meta, indent=1))
        return folder

    @classmethod
    def load(cls, folder) -> "ColdStartSplit":
        """Read a split written by :meth:`save`."""
        folder = Path(folder)
        meta = json.loads((folder / "split.json").read_text())
        cases = pd.read_parquet(folder / "cases.parquet")
        for col in ("context", "targets"):
            cases[col] = [list(map(str, items)) for items in cases[col]]
        return cls(
            cutoff=pd.Timestamp(meta["cutoff"]),
            end=pd.Timestamp(meta["end"]),
            train=pd.read_parquet(folder / "train.parquet"),
            catalog=pd.read_parquet(folder / "catalog.parquet"),
            cases=cases,
        )


def _write_cases(cases: pd.DataFrame, path: Path) -> None:
    """Write the cases table; list columns go through pyarrow without pandas' dtype metadata,
    which pandas cannot read back for lists of strings."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    plain = cases.copy()
    for col in ("context", "targets"):
        plain[col] = [[str(i) for i in items] for items in plain[col]]
    for col in ("segment", "country"):
        plain[col] = plain[col].astype(str)
    table = pa.Table.from_pandas(plain, preserve_index=False).replace_schema_metadata(None)
    pq.write_table(table, path)


def _first_invoice_items(rows: pd.DataFrame) -> pd.DataFrame:
    """For each customer, the distinct items of their first invoice in line order.

    ``rows`` must be sorted by (date, invoice, line). Returns columns customer, invoice, date,
    country, item, pos (0-based click order of the distinct item within the invoice).
    """
    first_inv = rows.groupby("customer", sort=False)["invoice"].first()
    first = rows[rows["invoice"].to_numpy() == first_inv.reindex(rows["customer"]).to_numpy()]
    first = first.drop_duplicates(["customer", "item"], keep="first").copy()
    first["pos"] = first.groupby("customer").cumcount()
    return first[["customer", "invoice", "date", "country", "item", "pos"]]


def build_cases(
    window: pd.DataFrame,
    users: Sequence,
    ks: Sequence[int],
    segment_names: Optional[dict] = None,
    target_items: Optional[set] = None,
) -> pd.DataFrame:
    """Build evaluation (or training) cases from the rows of a time window.

    For each customer in ``users`` and each ``k``: the context is the first ``k`` distinct items
    of the customer's first invoice in ``window`` (line order); the targets are all other distinct
    items the customer bought in ``window`` (optionally only those in ``target_items``). Customers
    with fewer than ``k`` distinct items in that invoice, or no target left, are skipped.

    Returns a tidy table with columns ``segment, k, user, country, date, context, targets``.
    ``segment_names`` maps k to the segment name (default ``"k=<k>"``).
    """
    rows = window[window["customer"].isin(pd.Index(users))]
    rows = rows.sort_values(["date", "invoice", "line"], kind="stable")
    first = _first_invoice_items(rows)
    bought = rows.groupby("customer", sort=False)["item"].agg(lambda s: list(dict.fromkeys(s)))
    out = []
    for k in ks:
        ctx = first[first["pos"] < k]
        sizes = ctx.groupby("customer", sort=False)["item"].size()
        full = sizes[sizes == k].index
        ctx = ctx[ctx["customer"].isin(full)]
        meta = ctx.groupby("customer", sort=False).agg(
            country=("country", "first"), date=("date", "first"), context=("item", list)
        )
        targets = []
        for cust, context in zip(meta.index, meta["context"]):
            seen = set(context)
            tg = [i for i in bought[cust] if i not in seen]
            if target_items is not None:
                tg = [i for i in tg if i in target_items]
            targets.append(tg)
        meta["targets"] = targets
        meta = meta[meta["targets"].map(len) > 0]
        name = (segment_names or {}).get(k, f"k={k}")
        meta = meta.reset_index().rename(columns={"customer": "user"})
        meta.insert(0, "k", k)
        meta.insert(0, "segment", name)
        out.append(meta)
    cols = ["segment", "k", "user", "country", "date", "context", "targets"]
    if not out:
        return pd.DataFrame(columns=cols)
    return pd.concat(out, ignore_index=True)[cols]


def _catalog(universe: pd.DataFrame, train: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    # Only what a shop knows about a product at serving time: its text, launch date and price.
    # Sales counts over the whole table would leak test-period popularity, so they are dropped and
    # replaced by training-only counts.
    cat = build_catalog(universe)[["text", "first_sold", "median_price"]]
    cat["cold"] = cat["first_sold"] >= cutoff
    cat["train_customers"] = item_counts(train, cat.index, "customer")
    cat["train_invoices"] = item_counts(train, cat.index, "invoice")
    return cat


def make_split(
    clean: pd.DataFrame,
    cutoff=TEST_CUTOFF,
    end=None,
    ks: Sequence[int] = CONTEXT_SIZES,
    warm_k: int = WARM_K,
    cold_k: int = COLD_K,
) -> ColdStartSplit:
    """Build the cold-start split of a cleaned table (see the module docstring for the rules).

    Parameters
    ----------
    clean: the cleaned table from :func:`coldstart.data.clean` (columns invoice, item, description,
        quantity, date, price, customer, country, line).
    cutoff: the time ``T``: training rows are those before it, new users are first seen at or after it.
    end: rows at or after ``end`` are ignored entirely (default: keep everything).
    ks: context sizes of the new-user segments (distinct whole numbers).
    cold_k, warm_k: context sizes of the ``cold-items`` and ``warm`` segments.

    Raises ``ValueError`` if the cutoff leaves no training rows or no rows after it, or if a context
    size is not a whole number from 1 to the most distinct items in a first basket of the users its
    segment is about (new users for ``ks`` and ``cold_k``, returning customers for ``warm_k``), or if
    ``ks`` repeats a size: such a segment would be empty or filled twice. The message gives the
    usable range.
    """
    cutoff = pd.Timestamp(cutoff)
    universe = clean if end is None else clean[clean["date"] < pd.Timestamp(end)]
    end = pd.Timestamp(end) if end is not None else universe["date"].max() + pd.Timedelta(seconds=1)
    if universe.empty:
        raise ValueError("The table is empty: nothing to split")
    lo, hi = universe["date"].min(), universe["date"].max()
    if not (lo < cutoff <= hi):
        raise ValueError(
            f"Cutoff {cutoff.date()} is outside the data's range ({lo.date()} to {hi.date()}): "
            "choose a date with purchases on both sides"
        )
    if not cutoff < end:
        raise ValueError(f"Cutoff {cutoff.date()} must be before end {end.date()}")
    train = universe[universe["date"] < cutoff].reset_index(drop=True)
    window = universe[universe["date"] >= cutoff]
    catalog = _catalog(universe, train, cutoff)

    seen = pd.Index(train["customer"].unique())
    window_users = pd.Index(window["customer"].unique())
    new_users = window_users.difference(seen)
    warm_users = window_users.intersection(seen)
    _check_ks(window, new_users, ks)
    _check_k(window, new_users, cold_k, "cold_k", "new user's")
    _check_k(window, warm_users, warm_k, "warm_k", "returning customer's")
    cold_items = set(catalog.index[catalog["cold"]])

    parts = [
        build_cases(window, new_users, ks),
        build_cases(window, new_users, [cold_k], {cold_k: "cold-items"}, target_items=cold_items),
        build_cases(window, warm_users, [warm_k], {warm_k: "warm"}),
    ]
    cases = pd.concat(parts, ignore_index=True)
    return ColdStartSplit(cutoff=cutoff, end=end, train=train, catalog=catalog, cases=cases)


def _largest_first_basket(window: pd.DataFrame, users) -> tuple:
    """``(largest, n)``: the most distinct items in the first basket in ``window`` of one of
    ``users``, and how many of them have a basket there."""
    rows = window[window["customer"].isin(pd.Index(users))].sort_values(["date", "invoice", "line"], kind="stable")
    sizes = _first_invoice_items(rows).groupby("customer").size()
    return (int(sizes.max()) if len(sizes) else 0), len(sizes)


def _is_count(k) -> bool:
    return isinstance(k, (int, np.integer)) and not isinstance(k, bool)


def _check_ks(window: pd.DataFrame, new_users, ks: Sequence[int]) -> None:
    """Refuse context sizes no new user can have: a segment that is empty by construction would
    silently drop out of every table and plot, and a repeated size would fill one segment twice.
    The usable range is 1 to the largest new user's first basket."""
    largest, n_users = _largest_first_basket(window, new_users)
    usable = f"the usable range is 1 to {largest}, the most distinct items in a new user's first basket"
    if not all(_is_count(k) for k in ks) or any(k < 1 for k in ks):
        raise ValueError(f"Context sizes must be whole numbers of at least 1, got ks={tuple(ks)}: {usable}")
    if len(set(ks)) != len(ks):
        raise ValueError(f"Context sizes must differ (each names one segment), got ks={tuple(ks)}")
    too_big = [int(k) for k in ks if k > largest]
    if too_big:
        raise ValueError(
            f"k={too_big[0]} is larger than any new user's first basket (the largest has {largest} distinct "
            f"items among {n_users:,} new users): choose context sizes k <= {largest}"
        )


def _check_k(window: pd.DataFrame, users, k, name: str, whose: str) -> None:
    """Refuse a context size ``name`` (``cold_k``, ``warm_k``) that no user of ``users`` can have, so
    its segment cannot silently come out empty. Without any such user the segment is empty
    whatever ``k`` is, so only the type is checked then."""
    largest, n_users = _largest_first_basket(window, users)
    usable = f"the usable range is 1 to {largest}, the most distinct items in a {whose} first basket after the cutoff"
    if not _is_count(k) or k < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {k!r}" + (f": {usable}" if n_users else ""))
    if n_users and k > largest:
        raise ValueError(f"{name}={k} is larger than any {whose} first basket after the cutoff, so its segment "
                         f"would be empty: {usable}")


def make_validation_split(clean: pd.DataFrame, **kwargs) -> ColdStartSplit:
    """The validation split: cutoff 2011-07-01, rows only before the test cutoff 2011-09-01."""
    return make_split(clean, cutoff=VALID_CUTOFF, end=TEST_CUTOFF, **kwargs)


# -- the splits the notebooks share ----------------------------------------------------------------
PROTOCOL_VERSION = 2  # bump when the rules above change: saved splits are then rebuilt


def _source_stamp() -> dict:
    """Identify the data a saved split came from: the configured file (or the download cache) and
    the SHA-256 of its content, so a split saved from other data is never taken for this one."""
    path = Path(os.environ.get("COLDSTART_DATA_FILE") or data_dir() / "online_retail.parquet")
    exists = path.is_file()
    return {"protocol": PROTOCOL_VERSION, "source": str(path.resolve()) if exists else str(path),
            "sha256": _file_sha256(path) if exists else None}


def _file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _split_params(split: ColdStartSplit) -> dict:
    """The protocol parameters a split was built with, read from the split itself: cutoff, end and
    each segment's context size (``ks``, ``cold_k``, ``warm_k``)."""
    sizes = split.cases.groupby("segment")["context"].apply(lambda c: max(map(len, c), default=0))
    return {"cutoff": str(split.cutoff), "end": str(split.end), "context_sizes": {s: int(n) for s, n in sizes.items()}}


def _expected_params(name: str) -> dict:
    """What :func:`load_or_make` builds for ``name`` (``end`` of the test split: the data's own)."""
    sizes = {f"k={k}": k for k in CONTEXT_SIZES} | {"cold-items": COLD_K, "warm": WARM_K}
    if name == "test":
        return {"cutoff": str(pd.Timestamp(TEST_CUTOFF)), "end": None, "context_sizes": sizes}
    return {"cutoff": str(pd.Timestamp(VALID_CUTOFF)), "end": str(pd.Timestamp(TEST_CUTOFF)), "context_sizes": sizes}


def _params_match(saved, name: str) -> bool:
    expected = _expected_params(name)
    if not isinstance(saved, dict):
        return False
    return all(v is None or saved.get(k) == v for k, v in expected.items())


def default_folder(name: str) -> Path:
    """Where the shared split ``name`` (``test`` or ``validation``) lives: ``data/processed/<name>``."""
    return data_dir() / "processed" / name


def save_default(split: ColdStartSplit, name: str) -> Path:
    """Save a split where :func:`load_or_make` finds it, stamped with the data's content hash, the
    protocol version and the split's own parameters (a split built with other ones is stamped as
    such, so :func:`load_or_make` rebuilds rather than returns it)."""
    return split.save(default_folder(name), stamp={**_source_stamp(), "params": _split_params(split)})


def load_or_make(name: str = "test", clean: Optional[pd.DataFrame] = None, verbose: bool = True) -> ColdStartSplit:
    """The shared ``test`` or ``validation`` split: read from ``data/processed/`` when it was saved
    from the same data (content hash) with the same protocol version and parameters, otherwise
    rebuilt (and saved). An unreadable saved split (a truncated ``split.json``, a damaged table) is
    rebuilt too. ``clean``, when given, must be the cleaned table of the configured data file."""
    if name not in ("test", "validation"):
        raise ValueError("name must be 'test' or 'validation'")
    folder = default_folder(name)
    meta_file = folder / "split.json"
    if meta_file.exists():
        try:
            meta = json.loads(meta_file.read_text())
            stamp = _source_stamp()
            fits = (isinstance(meta, dict) and all(meta.get(k) == v for k, v in stamp.items())
                    and _params_match(meta.get("params"), name))
            if fits:
                return ColdStartSplit.load(folder)
            if verbose:
                print(f"the saved {name} split is from other data or parameters; rebuilding it")
        except Exception as err:  # unreadable (other library versions, a damaged file): rebuild
            if verbose:
                print(f"could not read the saved {name} split ({type(err).__name__}); rebuilding it")
    if clean is None:
        clean, _ = load_clean(verbose=False)
    params = dict(ks=CONTEXT_SIZES, warm_k=WARM_K, cold_k=COLD_K)   # the module's values, read now
    split = (make_split(clean, cutoff=TEST_CUTOFF, **params) if name == "test"
             else make_split(clean, cutoff=VALID_CUTOFF, end=TEST_CUTOFF, **params))
    save_default(split, name)
    if verbose:
        print(f"built the {name} split and saved it to {shown(folder)}")
    return split
