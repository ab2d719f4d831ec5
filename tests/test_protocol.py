"""Tests of coldstart.data.protocol: hand-checked cases on a tiny table, leakage checks and the
documented counts on the real split, determinism, errors and persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CUTOFF

from coldstart.data import protocol
from coldstart.data.protocol import ColdStartSplit, make_split

# ------------------------------------------------------------------------------------------------
# The tiny table (see conftest.py): expected cases, {user: (context in click order, set of targets)}
# ------------------------------------------------------------------------------------------------
EXPECTED = {
    "k=1": {
        3: (["10002"], {"10006", "10008", "10003", "10007", "10009", "10001"}),
        4: (["10005"], {"10010", "10004"}),
        5: (["10001"], {"10003", "10004"}),
        # 6: one invoice with one item -> no target left -> skipped at every k
    },
    "k=3": {
        # 10002 appears twice in 545002's lines but counts once
        3: (["10002", "10006", "10008"], {"10003", "10007", "10009", "10001"}),
        # 4: first invoice has 2 distinct items (< 3) -> skipped; 5: no target left -> skipped
    },
    "k=5": {
        3: (["10002", "10006", "10008", "10003", "10007"], {"10009", "10001"}),
    },
    "cold-items": {
        3: (["10002"], {"10008", "10009"}),
        4: (["10005"], {"10010"}),
        # 5: bought no cold item -> skipped
    },
    "warm": {
        # customer 1: first invoice at/after the cutoff is 545001
        1: (["10004", "10001", "10005"], {"10008", "10002", "10009"}),
        # customer 7: 545006 has 2 distinct items (< 3) -> skipped
    },
}
TINY_COUNTRY = {1: "United Kingdom", 3: "France", 4: "Germany", 5: "United Kingdom"}
TINY_DATE = {
    1: pd.Timestamp("2011-03-05 09:00"),
    3: pd.Timestamp("2011-03-10 12:00"),
    4: pd.Timestamp("2011-03-20 13:00"),
    5: pd.Timestamp("2011-04-10 10:00"),
}


def _cases_by_user(split: ColdStartSplit, segment: str) -> dict:
    rows = split.cases[split.cases["segment"] == segment]
    return {int(u): (list(c), set(t)) for u, c, t in zip(rows["user"], rows["context"], rows["targets"])}


@pytest.mark.parametrize("segment", list(EXPECTED))
def test_tiny_cases_per_segment(tiny_split, segment):
    assert _cases_by_user(tiny_split, segment) == EXPECTED[segment]
    rows = tiny_split.cases[tiny_split.cases["segment"] == segment]
    # no duplicated targets within a case, context and targets disjoint
    for c, t in zip(rows["context"], rows["targets"]):
        assert len(set(t)) == len(t)
        assert not set(c) & set(t)
    for u, country, date in zip(rows["user"], rows["country"], rows["date"]):
        assert country == TINY_COUNTRY[u]
        assert pd.Timestamp(date) == TINY_DATE[u]
    # cases are ordered by the date of their first (context) invoice
    assert list(rows["date"]) == sorted(rows["date"])


def test_tiny_k_column_and_segment_names(tiny_split):
    cases = tiny_split.cases
    assert list(cases.columns) == ["segment", "k", "user", "country", "date", "context", "targets"]
    assert set(cases["segment"]) == set(protocol.SEGMENTS)
    ks = cases.groupby("segment")["k"].unique().map(list).to_dict()
    assert ks == {"k=1": [1], "k=3": [3], "k=5": [5], "cold-items": [1], "warm": [3]}
    for seg in ("k=1", "k=3", "k=5", "cold-items", "warm"):
        k = ks[seg][0]
        assert all(len(c) == k for c in cases.loc[cases["segment"] == seg, "context"])


def test_tiny_skips(tiny_split):
    by_seg = {s: set(_cases_by_user(tiny_split, s)) for s in EXPECTED}
    # user 4's first invoice has 2 distinct items: present at k=1, skipped at k=3 and k=5
    assert 4 in by_seg["k=1"] and 4 not in by_seg["k=3"] and 4 not in by_seg["k=5"]
    # user 5 bought exactly 3 distinct items: at k=3 nothing is left to predict
    assert 5 in by_seg["k=1"] and 5 not in by_seg["k=3"]
    # user 6 bought a single item once: never a case; it is not counted as a new user
    assert all(6 not in users for users in by_seg.values())
    assert tiny_split.counts().loc["new users", "count"] == 3
    # user 7 returns with a 2-item invoice: skipped from warm; user 2 never returns
    assert by_seg["warm"] == {1}


def test_tiny_cold_items_and_catalog(tiny_split):
    cat = tiny_split.catalog
    assert list(cat.index) == [f"100{i:02d}" for i in range(1, 11)]
    assert list(tiny_split.item_ids) == list(cat.index)
    assert set(cat.index[cat["cold"]]) == {"10008", "10009", "10010"}
    assert cat.loc["10006", "text"] == "lunch bag black skull"  # normalised text
    assert cat.loc["10009", "first_sold"] == pd.Timestamp("2011-04-01 09:30")
    # training statistics: cold items 0, 10001 bought by customers 1 and 2 before the cutoff
    assert cat.loc[["10008", "10009", "10010"], "train_customers"].tolist() == [0, 0, 0]
    assert cat.loc["10001", "train_customers"] == 2
    assert cat.loc["10002", "train_customers"] == 2  # customers 1 and 7
    assert cat.loc["10002", "train_invoices"] == 2


def test_tiny_train_and_counts(tiny_split, tiny_clean):
    cutoff = pd.Timestamp(TINY_CUTOFF)
    assert tiny_split.cutoff == cutoff
    assert tiny_split.end == tiny_clean["date"].max() + pd.Timedelta(seconds=1)
    assert sorted(tiny_split.train["invoice"].unique()) == ["536001", "536002", "536003"]
    assert len(tiny_split.train) == 10
    assert tiny_split.counts()["count"].to_dict() == {
        "training rows": 10, "training customers": 3, "catalog items": 10, "cold items": 3,
        "new users": 3, "cases k=1": 3, "cases k=3": 1, "cases k=5": 1, "cases cold-items": 2,
        "cases warm": 1,
    }


def test_tiny_segment_index_form(tiny_split):
    seg = tiny_split.segment("k=3")
    assert len(seg) == 1 and seg.users.tolist() == [3]
    # positions: catalog is sorted by code, so 100NN -> NN - 1
    assert seg.context[0].tolist() == [1, 5, 7]
    assert sorted(seg.targets[0].indices.tolist()) == [0, 2, 6, 8]
    assert seg.targets.shape == (1, 10)
    ex = seg.exclude(10).toarray()
    assert ex.tolist() == [[i in (1, 5, 7) for i in range(10)]]
    assert tiny_split.segment("k=3") is seg  # computed once
    with pytest.raises(ValueError, match="Unknown segment"):
        tiny_split.segment("k=2")


def test_tiny_row_order_does_not_matter(tiny_clean, tiny_split):
    """Contexts follow (date, invoice, line), not the order of the rows handed in."""
    shuffled = tiny_clean.sample(frac=1.0, random_state=3).reset_index(drop=True)
    again = make_split(shuffled, cutoff=TINY_CUTOFF)
    for seg in EXPECTED:
        assert _cases_by_user(again, seg) == EXPECTED[seg]


def test_tiny_end_drops_later_rows(tiny_clean):
    s = make_split(tiny_clean, cutoff=TINY_CUTOFF, end="2011-03-25")
    assert "10009" not in s.catalog.index  # first sold 2011-04-01, after end
    assert s.n_items == 9
    assert set(s.catalog.index[s.catalog["cold"]]) == {"10008", "10010"}
    assert _cases_by_user(s, "k=1") == {
        3: (["10002"], {"10006", "10008", "10003", "10007"}),
        4: (["10005"], {"10010"}),
    }
    assert _cases_by_user(s, "k=5") == {}  # user 3 has nothing left beyond 5 items before end
    assert _cases_by_user(s, "cold-items") == {3: (["10002"], {"10008"}), 4: (["10005"], {"10010"})}
    assert _cases_by_user(s, "warm") == {1: (["10004", "10001", "10005"], {"10008"})}
    assert s.end == pd.Timestamp("2011-03-25")
    assert len(s.segment("k=5")) == 0


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cutoff", ["2010-06-01", "2011-01-10 09:00", "2011-07-01", "2012-01-01"])
def test_cutoff_outside_range(tiny_clean, cutoff):
    with pytest.raises(ValueError, match="outside"):
        make_split(tiny_clean, cutoff=cutoff)


def test_empty_table(tiny_clean):
    with pytest.raises(ValueError, match="empty"):
        make_split(tiny_clean.iloc[:0], cutoff=TINY_CUTOFF)
    with pytest.raises(ValueError):  # end before all the data: nothing left
        make_split(tiny_clean, cutoff=TINY_CUTOFF, end="2010-01-01")


def test_cutoff_must_be_before_end(tiny_clean):
    with pytest.raises(ValueError):
        make_split(tiny_clean, cutoff="2011-04-01", end="2011-04-01")


# ------------------------------------------------------------------------------------------------
# Segment helpers
# ------------------------------------------------------------------------------------------------
def test_positions_drops_unknown_codes(tiny_split):
    pos = tiny_split.positions(["10003", "NOPE", "10001", "99999", "10010"])
    assert pos.dtype == np.int64
    assert pos.tolist() == [2, 0, 9]
    assert tiny_split.positions([]).tolist() == []
    assert tiny_split.positions(["unknown"]).shape == (0,)
    assert tiny_split.texts([2, 0]) == ["white hanging heart t-light holder", "red retrospot cake stand"]
    assert len(tiny_split.texts()) == 10
    assert tiny_split.texts([2, 0], price_band=True) == ["white hanging heart t-light holder , one to two pounds",
                                                          "red retrospot cake stand , two to five pounds"]
    assert [t.split(" , ")[0] for t in tiny_split.texts(price_band=True)] == tiny_split.texts()


def test_segment_sample_deterministic_subset(split):
    seg = split.segment("k=1")
    a, b = seg.sample(100, seed=7), seg.sample(100, seed=7)
    assert len(a) == 100
    assert np.array_equal(a.users, b.users)
    assert all(np.array_equal(x, y) for x, y in zip(a.context, b.context))
    assert (a.targets != b.targets).nnz == 0
    # a subset of the segment, each sampled case intact
    index = {u: i for i, u in enumerate(seg.users)}  # users are unique within a segment
    assert len(index) == len(seg)
    assert set(a.users) <= set(seg.users)
    for j, u in enumerate(a.users):
        i = index[u]
        assert np.array_equal(a.context[j], seg.context[i])
        assert (a.targets[j] != seg.targets[i]).nnz == 0
        assert a.country[j] == seg.country[i] and a.date[j] == seg.date[i]
    # a different seed gives a different subset; n >= len or None gives the whole segment
    assert not np.array_equal(seg.sample(100, seed=8).users, a.users)
    assert seg.sample(None) is seg
    assert seg.sample(len(seg) + 5) is seg


# ------------------------------------------------------------------------------------------------
# Real split: leakage
# ------------------------------------------------------------------------------------------------
def test_no_training_row_at_or_after_cutoff(split, clean):
    cutoff = pd.Timestamp(protocol.TEST_CUTOFF)
    assert split.cutoff == cutoff
    assert split.train["date"].max() < cutoff
    # and train is exactly the rows before the cutoff
    assert len(split.train) == int((clean["date"] < cutoff).sum())


def test_new_users_have_no_training_rows(split, clean):
    train_customers = set(split.train["customer"])
    first_seen = clean.groupby("customer")["date"].min()
    for seg in ("k=1", "k=3", "k=5", "cold-items"):
        users = split.cases.loc[split.cases["segment"] == seg, "user"]
        assert not set(users) & train_customers, seg
        assert (first_seen.reindex(users) >= split.cutoff).all(), seg
    warm = split.cases.loc[split.cases["segment"] == "warm", "user"]
    assert set(warm) <= train_customers


def test_no_case_pair_in_training_rows_for_new_users(split):
    train_pairs = set(zip(split.train["customer"], split.train["item"]))
    for seg in ("k=1", "k=3", "k=5", "cold-items"):
        rows = split.cases[split.cases["segment"] == seg]
        leaked = [(u, t) for u, tg in zip(rows["user"], rows["targets"]) for t in tg if (u, t) in train_pairs]
        assert leaked == [], seg


def test_case_pairs_come_from_the_test_window(split, clean):
    """Every (user, target) and (user, context item) pair of every segment, warm included, was
    bought in [cutoff, end): what is predicted is test-period behaviour only."""
    window = clean[clean["date"] >= split.cutoff]
    window_pairs = set(zip(window["customer"], window["item"]))
    for col in ("targets", "context"):
        missing = [
            (s, u, i)
            for s, u, items in zip(split.cases["segment"], split.cases["user"], split.cases[col])
            for i in items if (u, i) not in window_pairs
        ]
        assert missing == [], col


def test_context_never_in_targets_and_k_items(split):
    k_of = {"k=1": 1, "k=3": 3, "k=5": 5, "cold-items": 1, "warm": 3}
    for seg, k in k_of.items():
        rows = split.cases[split.cases["segment"] == seg]
        assert len(rows) > 0
        for c, t in zip(rows["context"], rows["targets"]):
            assert len(c) == k and len(set(c)) == k
            assert len(t) > 0 and len(set(t)) == len(t)
            assert not set(c) & set(t)
        # index form too
        s = split.segment(seg)
        assert all(len(c) == k for c in s.context)
        assert s.exclude(split.n_items).multiply(s.targets).nnz == 0
        assert (np.diff(s.targets.indptr) > 0).all()


def test_cold_items_never_in_train(split):
    cold = set(split.catalog.index[split.catalog["cold"]])
    assert len(cold) > 0
    assert not cold & set(split.train["item"])
    assert (split.catalog.loc[list(cold), "train_customers"] == 0).all()
    assert (split.catalog.loc[list(cold), "first_sold"] >= split.cutoff).all()
    warm_items = split.catalog[~split.catalog["cold"]]
    assert (warm_items["train_customers"] > 0).all()
    assert set(warm_items.index) == set(split.train["item"])


def test_cold_items_segment_targets_all_cold(split):
    cold = set(split.catalog.index[split.catalog["cold"]])
    rows = split.cases[split.cases["segment"] == "cold-items"]
    assert all(set(t) <= cold for t in rows["targets"])
    # the same users and contexts as k=1 (restricted to those with a cold target)
    k1 = split.cases[split.cases["segment"] == "k=1"].set_index("user")
    assert set(rows["user"]) <= set(k1.index)
    for u, c, t in zip(rows["user"], rows["context"], rows["targets"]):
        assert list(c) == list(k1.loc[u, "context"])
        assert set(t) == set(k1.loc[u, "targets"]) & cold
    # every k=1 user with a cold target is in the segment
    n_with_cold = sum(bool(set(t) & cold) for t in k1["targets"])
    assert n_with_cold == len(rows)


def test_catalog_holds_every_item_of_the_data(split, clean):
    assert set(split.catalog.index) == set(clean["item"])
    assert split.catalog["text"].str.len().min() > 0


def test_validation_split_uses_only_rows_before_test_cutoff(valid_split, clean):
    test_cutoff = pd.Timestamp(protocol.TEST_CUTOFF)
    valid_cutoff = pd.Timestamp(protocol.VALID_CUTOFF)
    assert valid_split.cutoff == valid_cutoff
    assert valid_split.end == test_cutoff
    assert valid_split.train["date"].max() < valid_cutoff
    assert valid_split.catalog["first_sold"].max() < test_cutoff
    before = clean[clean["date"] < test_cutoff]
    assert set(valid_split.catalog.index) == set(before["item"])
    assert valid_split.cases["date"].max() < test_cutoff
    assert valid_split.cases["date"].min() >= valid_cutoff
    # every pair of a case was bought in [2011-07-01, 2011-09-01)
    window = before[before["date"] >= valid_cutoff]
    pairs = set(zip(window["customer"], window["item"]))
    for col in ("context", "targets"):
        assert all((u, i) in pairs for u, items in zip(valid_split.cases["user"], valid_split.cases[col])
                   for i in items)
    # new users are first seen (in the whole table) in [2011-07-01, 2011-09-01)
    first_seen = clean.groupby("customer")["date"].min()
    new = valid_split.cases.loc[valid_split.cases["segment"] != "warm", "user"].unique()
    assert len(new) > 0
    assert (first_seen.reindex(new) >= valid_cutoff).all()
    assert (first_seen.reindex(new) < test_cutoff).all()
    # validation cold items: first sold in [2011-07-01, 2011-09-01)
    cold = valid_split.catalog[valid_split.catalog["cold"]]
    assert ((cold["first_sold"] >= valid_cutoff) & (cold["first_sold"] < test_cutoff)).all()


# ------------------------------------------------------------------------------------------------
# Real split: determinism and the documented counts
# ------------------------------------------------------------------------------------------------
def test_make_split_is_deterministic(split, clean):
    again = make_split(clean)
    pd.testing.assert_frame_equal(again.cases, split.cases)
    pd.testing.assert_frame_equal(again.catalog, split.catalog)
    assert again.train.equals(split.train)
    assert np.array_equal(again.item_ids, split.item_ids)


REAL_COUNTS = {
    "training rows": 225_526,
    "training customers": 3_314,
    "catalog items": 3_656,
    "cold items": 270,
    "new users": 997,
    "cases k=1": 997,
    "cases k=3": 954,
    "cases k=5": 913,
    "cases cold-items": 650,
    "cases warm": 1_819,
}
VALID_COUNTS = {
    "training rows": 171_929,
    "training customers": 2_958,
    "catalog items": 3_386,
    "cold items": 121,
    "new users": 342,
    "cases k=1": 342,
    "cases k=3": 321,
    "cases k=5": 306,
    "cases cold-items": 106,
    "cases warm": 1_050,
}


def test_real_counts(split):
    counts = split.counts()
    print(counts)
    assert counts["count"].to_dict() == REAL_COUNTS
    assert split.n_items == REAL_COUNTS["catalog items"]
    assert {s: len(split.segment(s)) for s in protocol.SEGMENTS} == {
        s: REAL_COUNTS[f"cases {s}"] for s in protocol.SEGMENTS
    }


def test_validation_counts(valid_split):
    counts = valid_split.counts()
    print(counts)
    assert counts["count"].to_dict() == VALID_COUNTS


# ------------------------------------------------------------------------------------------------
# Persistence
# ------------------------------------------------------------------------------------------------
def _assert_same_split(a: ColdStartSplit, b: ColdStartSplit) -> None:
    """Same values everywhere; train keeps its exact dtypes; the dtypes the code relies on survive.

    (Exact dtype equality of cases/catalog is a known failure, see test_save_load_keeps_dtypes.)
    """
    assert a.cutoff == b.cutoff and a.end == b.end
    pd.testing.assert_frame_equal(a.train, b.train)
    pd.testing.assert_frame_equal(a.cases, b.cases, check_dtype=False)
    pd.testing.assert_frame_equal(a.catalog, b.catalog, check_dtype=False, check_index_type=False)
    for split in (a, b):
        assert split.cases["date"].dtype == "datetime64[ns]"
        assert split.cases["user"].dtype == np.int64
        assert split.catalog["first_sold"].dtype == "datetime64[ns]"
        assert split.catalog["cold"].dtype == bool
        assert all(isinstance(i, str) for c in split.cases["context"] for i in c)
        assert all(isinstance(i, str) for c in split.cases["targets"] for i in c)
    assert np.array_equal(a.item_ids.astype(str), b.item_ids.astype(str))


def test_save_load_round_trip_tiny(tiny_split, tmp_path):
    out = tiny_split.save(tmp_path / "split")
    assert out == tmp_path / "split"
    assert sorted(p.name for p in out.iterdir()) == ["cases.parquet", "catalog.parquet", "split.json", "train.parquet"]
    back = ColdStartSplit.load(out)
    _assert_same_split(back, tiny_split)
    # the index form agrees too
    for seg in protocol.SEGMENTS:
        a, b = back.segment(seg), tiny_split.segment(seg)
        assert np.array_equal(a.users, b.users)
        assert all(np.array_equal(x, y) for x, y in zip(a.context, b.context))
        assert (a.targets != b.targets).nnz == 0
    # overwriting an existing folder works and leaves nothing else behind
    tiny_split.save(tmp_path / "split")
    assert [p.name for p in tmp_path.iterdir()] == ["split"]


def test_save_load_keeps_dtypes(tiny_split, tmp_path):
    back = ColdStartSplit.load(tiny_split.save(tmp_path / "split"))
    pd.testing.assert_frame_equal(back.catalog, tiny_split.catalog)
    pd.testing.assert_frame_equal(back.cases, tiny_split.cases)


def test_save_load_round_trip_real(split, tmp_path):
    back = ColdStartSplit.load(split.save(tmp_path / "real"))
    _assert_same_split(back, split)
    assert back.counts().equals(split.counts())


def _fail_on_second_call(monkeypatch):
    real = pd.DataFrame.to_parquet
    calls = []

    def flaky(self, *args, **kwargs):
        calls.append(args[0] if args else kwargs.get("path"))
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", flaky)
    return calls


def test_save_is_atomic_new_folder(tiny_split, tmp_path, monkeypatch):
    parent = tmp_path / "out"
    calls = _fail_on_second_call(monkeypatch)
    with pytest.raises(OSError, match="simulated"):
        tiny_split.save(parent / "split")
    assert len(calls) == 2  # the first file was written before the failure
    assert not (parent / "split").exists()
    assert list(parent.iterdir()) == []  # no leftover temporary folder


def test_save_is_atomic_over_existing_folder(tiny_split, tmp_path, monkeypatch):
    target = tmp_path / "split"
    tiny_split.save(target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    _fail_on_second_call(monkeypatch)
    with pytest.raises(OSError, match="simulated"):
        tiny_split.save(target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before  # old split intact
    assert [p.name for p in tmp_path.iterdir()] == ["split"]
    monkeypatch.undo()
    _assert_same_split(ColdStartSplit.load(target), tiny_split)



def test_failed_final_rename_keeps_the_old_split(tiny_split, tmp_path, monkeypatch):
    target = tmp_path / "split"
    tiny_split.save(target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def broken_replace(src, dst, *args, **kwargs):
        raise OSError("rename failed (simulated)")

    monkeypatch.setattr(protocol.os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        tiny_split.save(target)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["split"]  # no temporary folder left ...
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before  # ... and the old split intact


def test_catalog_statistics_come_from_training_rows_only(tiny_split):
    cat, train = tiny_split.catalog, tiny_split.train
    by_item = train.groupby("item")
    expected = {
        "n_customers": by_item["customer"].nunique(),
        "n_invoices": by_item["invoice"].nunique(),
        "n_lines": by_item.size(),
    }
    for col, values in expected.items():
        if col in cat.columns:  # dropping the column is a fix too
            want = values.reindex(cat.index).fillna(0).astype(int).tolist()
            assert cat[col].astype(int).tolist() == want, col


def test_with_launches_hides_a_share_of_the_bought_products_and_keeps_the_cases(tiny_split):
    bought = set(tiny_split.item_ids[~tiny_split.new_items])
    launched = tiny_split.with_launches(0.5, seed=3)
    hidden = bought - set(launched.item_ids[~launched.new_items])
    assert len(hidden) == round(0.5 * len(bought)) and hidden <= bought
    assert not launched.train["item"].isin(hidden).any()                       # no training row left
    kept = tiny_split.train[~tiny_split.train["item"].isin(hidden)].reset_index(drop=True)
    pd.testing.assert_frame_equal(launched.train, kept)                         # and every other row kept
    pd.testing.assert_frame_equal(launched.cases, tiny_split.cases)
    assert launched.catalog.index.equals(tiny_split.catalog.index)
    again = tiny_split.with_launches(0.5, seed=3)
    assert set(again.item_ids[again.new_items]) == set(launched.item_ids[launched.new_items])
    assert tiny_split.with_launches(0.0).train.equals(tiny_split.train.reset_index(drop=True))
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"share must be in \[0, 1\)"):
            tiny_split.with_launches(bad)


def test_simulated_launches_give_validation_the_test_share_of_new_targets(valid_split, split):
    def new_share(s):
        new = s.new_items
        return np.mean([new[s.positions(t)].mean() for t in s.cases.query("segment == 'k=3'")["targets"]])

    assert new_share(valid_split) < 0.5 * new_share(split)                   # the validation window launches less
    assert abs(new_share(valid_split.with_launches(0.07)) - new_share(split)) < 0.03
