"""Tests of coldstart.data.subgroups (market and season groups of a split), the unpaired bootstrap and
compare_segments that notebook 09 reads its group differences from, and the figure it draws.

The tiny table (conftest.py): training rows of customers 1, 2 (United Kingdom) and 7 (France);
new users 3 (France, 2011-03-10), 4 (Germany, 2011-03-20) and 5 (United Kingdom, 2011-04-10).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from coldstart.data import subgroups as G
from coldstart.data.subgroups import UK
from coldstart.evaluation import harness as E
from coldstart.evaluation import metrics as M
from coldstart.models.baselines import ItemKNN, Popularity


def _users(split, segment):
    return sorted(int(u) for u in split.segment(segment).users)


# -- restrict_train ---------------------------------------------------------------------------------
def test_restrict_train_keeps_one_market_and_recounts_the_catalog(tiny_split):
    uk = G.restrict_train(tiny_split, countries=[UK])
    assert set(uk.train["invoice"]) == {"536001", "536002"}
    assert len(uk.train) == 9 and set(uk.train["customer"]) == {1, 2}
    counts = uk.catalog["train_customers"].to_dict()
    # 10002 was bought by customers 1 (UK) and 7 (France): one UK customer left
    assert tiny_split.catalog.loc["10002", "train_customers"] == 2 and counts["10002"] == 1
    assert counts == {"10001": 2, "10002": 1, "10003": 2, "10004": 1, "10005": 1, "10006": 1, "10007": 1,
                      "10008": 0, "10009": 0, "10010": 0}
    assert uk.catalog.loc["10002", "train_invoices"] == 1
    # same catalog (every item stays), same cold flags, same cases: new users are new in every market
    assert list(uk.item_ids) == list(tiny_split.item_ids)
    assert uk.catalog["cold"].equals(tiny_split.catalog["cold"])
    pd.testing.assert_frame_equal(uk.cases, tiny_split.cases)
    # the original split is untouched
    assert len(tiny_split.train) == 10 and tiny_split.catalog.loc["10002", "train_customers"] == 2


def test_restrict_train_exclude(tiny_split):
    rest = G.restrict_train(tiny_split, exclude=[UK])
    assert list(rest.train["invoice"]) == ["536003"] and list(rest.train["country"]) == ["France"]
    assert rest.catalog["train_customers"].to_dict()["10002"] == 1
    assert rest.catalog["train_customers"].sum() == 1


def test_restrict_train_feeds_the_baselines(tiny_split):
    uk = G.restrict_train(tiny_split, countries=[UK])
    pop = Popularity(uk).scores
    # popularity now counts UK customers only: 10001 and 10003 (2 each) beat 10002 (1)
    assert pop[0] > pop[1] and pop[2] > pop[1]
    assert np.all(pop[7:] < pop[:7].min())


def test_restrict_train_errors(tiny_split):
    with pytest.raises(ValueError, match="countries=.*exclude="):
        G.restrict_train(tiny_split)
    with pytest.raises(ValueError, match="not both"):
        G.restrict_train(tiny_split, countries=[UK], exclude=["France"])
    with pytest.raises(ValueError, match="did you mean 'France'"):
        G.restrict_train(tiny_split, countries=["Frnace"])
    with pytest.raises(ValueError, match="not a country of this split.*Germany"):
        G.restrict_train(tiny_split, countries=["UK"])  # the data spells it out
    with pytest.raises(TypeError, match="list of country names"):
        G.restrict_train(tiny_split, countries=UK)
    with pytest.raises(ValueError, match="No training row"):
        G.restrict_train(tiny_split, countries=["Germany"])  # a country with new users only


# -- case_group / with_groups ---------------------------------------------------------------------
def test_case_group_by_market(tiny_split):
    non_uk = G.case_group(tiny_split, "market=non-UK", exclude=[UK])
    assert list(non_uk.columns) == list(tiny_split.cases.columns)
    by_segment = non_uk.groupby("segment")["user"].apply(lambda s: sorted(map(int, s))).to_dict()
    assert by_segment == {"market=non-UK k=1": [3, 4], "market=non-UK k=3": [3], "market=non-UK k=5": [3]}
    uk = G.case_group(tiny_split, "market=UK", countries=[UK])
    assert list(uk["segment"]) == ["market=UK k=1"] and list(uk["user"]) == [5]
    # contexts and targets are the original cases'
    orig = tiny_split.cases.query("segment == 'k=1' and user == 3").iloc[0]
    got = non_uk.query("segment == 'market=non-UK k=1' and user == 3").iloc[0]
    assert got["context"] == orig["context"] and got["targets"] == orig["targets"]


def test_case_group_by_period_half_open(tiny_split):
    late = G.case_group(tiny_split, "season=Apr", start="2011-04-01")
    assert list(late["segment"]) == ["season=Apr k=1"] and list(late["user"]) == [5]
    early = G.case_group(tiny_split, "season=Mar", end="2011-04-01")
    assert sorted(map(int, early.query("segment == 'season=Mar k=1'")["user"])) == [3, 4]
    # start is inclusive, end exclusive: user 3's first invoice is at 2011-03-10 12:00
    assert 3 in set(G.case_group(tiny_split, "from", start="2011-03-10 12:00")["user"])
    assert 3 not in set(G.case_group(tiny_split, "to", end="2011-03-10 12:00", segments=["k=1", "warm"])["user"])
    both = G.case_group(tiny_split, "non-UK Mar", exclude=[UK], start="2011-03-15", end="2011-04-01")
    assert list(both["user"]) == [4]


def test_case_group_other_segments(tiny_split):
    warm = G.case_group(tiny_split, "market=UK", countries=[UK], segments=["warm"])
    assert list(warm["segment"]) == ["market=UK warm"] and list(warm["user"]) == [1]


def test_case_group_errors(tiny_split):
    with pytest.raises(ValueError, match="no case"):
        G.case_group(tiny_split, "x", countries=["Germany"], start="2011-04-01")
    with pytest.raises(ValueError, match="Unknown segment"):
        G.case_group(tiny_split, "x", segments=["k=2"])
    with pytest.raises(ValueError, match="label"):
        G.case_group(tiny_split, "  ", exclude=[UK])
    with pytest.raises(ValueError, match="not both"):
        G.case_group(tiny_split, "x", countries=[UK], exclude=["France"])


def test_with_groups_builds_one_split_of_named_segments(tiny_split):
    uk = G.restrict_train(tiny_split, countries=[UK])
    grouped = G.with_groups(uk, G.case_group(uk, "market=UK", countries=[UK]),
                            G.case_group(uk, "market=non-UK", exclude=[UK]))
    assert grouped.segment_names == ["market=UK k=1", "market=non-UK k=1", "market=non-UK k=3", "market=non-UK k=5"]
    assert _users(grouped, "market=non-UK k=1") == [3, 4]
    seg = grouped.segment("market=non-UK k=1")
    assert set(seg.country) == {"France", "Germany"}
    assert len(grouped.train) == 9  # the restricted training rows travel along
    assert len(grouped.segment("k=1")) == 0  # a standard segment it has no case of: empty, not an error
    with pytest.raises(ValueError, match="Unknown segment"):
        grouped.segment("market=Mars k=1")
    counts = grouped.counts()["count"]
    assert counts["cases market=non-UK k=1"] == 2 and counts["cases market=UK k=1"] == 1
    sizes = G.group_sizes(grouped)
    assert list(sizes.index) == ["market=UK", "market=non-UK"]
    assert sizes.loc["market=non-UK"].to_dict() == {"k=1": 2, "k=3": 1, "k=5": 1}
    assert sizes.loc["market=UK"].to_dict() == {"k=1": 1, "k=3": 0, "k=5": 0}


def test_with_groups_rejects_clashing_names(tiny_split):
    a = G.case_group(tiny_split, "g", countries=[UK])
    b = G.case_group(tiny_split, "g", exclude=[UK])
    with pytest.raises(ValueError, match="share the segment name"):
        G.with_groups(tiny_split, a, b)
    with pytest.raises(ValueError, match="at least one group"):
        G.with_groups(tiny_split)


def test_evaluate_on_groups_names_the_group_in_every_row(tiny_split):
    uk = G.restrict_train(tiny_split, countries=[UK])
    grouped = G.with_groups(uk, G.case_group(uk, "market=UK", countries=[UK]),
                            G.case_group(uk, "market=non-UK", exclude=[UK]))
    res = E.evaluate(Popularity(grouped), grouped, method="popularity (uk-only)",
                     segments=grouped.segment_names, n_boot=20)
    assert list(dict.fromkeys(res.table["segment"])) == grouped.segment_names
    n = res.table.drop_duplicates("segment").set_index("segment")["n_users"].to_dict()
    assert n == {"market=UK k=1": 1, "market=non-UK k=1": 2, "market=non-UK k=3": 1, "market=non-UK k=5": 1}


# -- the unpaired bootstrap and compare_segments -----------------------------------------------------
def test_unpaired_bootstrap_hand_cases():
    same = M.unpaired_bootstrap(np.full(5, 0.3), np.full(8, 0.3), n_boot=200)
    assert same["diff"] == 0 and same["low"] == 0 and same["high"] == 0
    apart = M.unpaired_bootstrap(np.r_[np.ones(30), 0.9], np.r_[np.zeros(50), 0.1], n_boot=500)
    assert apart["diff"] == pytest.approx(30.9 / 31 - 0.1 / 51)
    assert apart["low"] > 0.9 and apart["p_value"] == 0
    flip = M.unpaired_bootstrap(np.zeros(4), np.ones(3), n_boot=100)
    assert flip["diff"] == -1 and flip["high"] == -1
    nan = M.unpaired_bootstrap([np.nan, 1.0, 0.0], [0.5, np.nan], n_boot=100)
    assert nan["diff"] == pytest.approx(0.0)  # mean(1, 0) - mean(0.5)
    empty = M.unpaired_bootstrap([], [1.0], n_boot=10)
    assert np.isnan(empty["diff"]) and np.isnan(empty["low"])


def test_unpaired_bootstrap_matches_the_normal_approximation_and_is_seeded():
    rng = np.random.default_rng(3)
    a, b = rng.random(400), rng.random(900) * 0.8
    res = M.unpaired_bootstrap(a, b, n_boot=2000, seed=1)
    half = 1.96 * np.sqrt(a.var() / a.size + b.var() / b.size)
    assert res["low"] < res["diff"] < res["high"]
    assert (res["high"] - res["low"]) / 2 == pytest.approx(half, rel=0.1)
    assert M.unpaired_bootstrap(a, b, n_boot=300, seed=5) == M.unpaired_bootstrap(a, b, n_boot=300, seed=5)
    # wider than the paired interval would be for the same numbers: the groups vary on their own
    paired = M.paired_bootstrap(a[:400], b[:400], n_boot=2000, seed=1)
    assert paired["high"] - paired["low"] < 1.2 * (res["high"] - res["low"]) + 1e-9


def test_compare_segments(tiny_split):
    uk = G.restrict_train(tiny_split, countries=[UK])
    grouped = G.with_groups(uk, G.case_group(uk, "market=UK", countries=[UK]),
                            G.case_group(uk, "market=non-UK", exclude=[UK]))
    res = E.evaluate(Popularity(grouped), grouped, segments=grouped.segment_names, n_boot=0)
    t = E.compare_segments(res, [("market=non-UK k=1", "market=UK k=1"), ("market=UK k=1", "market=UK k=1")],
                           n_boot=100)
    assert list(t.columns) == ["segment_a", "segment_b", "n_a", "n_b", "a", "b", "diff", "ci_low", "ci_high",
                               "p_value", "real"]
    first = t.iloc[0]
    values = res.pivot("ndcg@10")
    assert (first.n_a, first.n_b) == (2, 1)
    assert first.a == pytest.approx(values["market=non-UK k=1"]) and first.b == pytest.approx(values["market=UK k=1"])
    assert first["diff"] == pytest.approx(first.a - first.b)
    self_cmp = t.iloc[1]
    assert self_cmp["diff"] == 0 and not self_cmp.real
    with pytest.raises(KeyError, match="market=Mars"):
        E.compare_segments(res, [("market=Mars k=1", "market=UK k=1")])


def test_metric_by_segment_draws_one_series_per_method():
    import matplotlib

    matplotlib.use("Agg")
    from coldstart import plots

    board = pd.DataFrame({
        "method": ["a", "a", "b", "b", "b"], "segment": ["g1 k=1", "g2 k=1", "g1 k=1", "g2 k=1", "g3 k=1"],
        "metric": ["ndcg@10"] * 5, "value": [0.1, 0.2, 0.15, 0.05, 0.3], "ci_low": [0.05, 0.1, 0.1, 0.0, 0.2],
        "ci_high": [0.15, 0.3, 0.2, 0.1, 0.4], "n_users": [80, 900, 80, 900, 10],
    })
    ax = plots.metric_by_segment(board, ["g1 k=1", "g2 k=1"])
    assert len(ax.containers) == 2  # one errorbar series per method
    assert [t.get_text() for t in ax.get_xticklabels()] == ["g1 k=1\n(80 users)", "g2 k=1\n(900 users)"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    ax = plots.metric_by_segment(board, ["g1 k=1"], methods=["b"])
    assert len(ax.containers) == 1


def test_report_table_leaves_out_rows_of_group_segments():
    from coldstart.tools import report

    rows = []
    for method, segment in [("knn", "k=1"), ("knn (uk-only)", "market=non-UK k=1"),
                            ("knn (uk-only)", "season=Nov-Dec k=1")]:
        rows.append(dict(method=method, kind="baseline", profile="cpu", protocol="coldstart", segment=segment,
                         metric="ndcg@10", value=0.1, ci_low=0.05, ci_high=0.15))
    table = report.markdown_table(pd.DataFrame(rows))
    assert "| knn | baseline | 0.1000 |" in table
    assert "uk-only" not in table


# -- the real split -----------------------------------------------------------------------------------
def test_real_markets_and_seasons(split):
    uk = G.restrict_train(split, countries=[UK])
    rest = G.restrict_train(split, exclude=[UK])
    assert (len(uk.train), uk.train["customer"].nunique()) == (200_139, 2_986)
    assert (len(rest.train), rest.train["customer"].nunique()) == (25_387, 328)
    assert len(uk.train) + len(rest.train) == len(split.train)
    grouped = G.with_groups(
        uk, G.case_group(uk, "market=UK", countries=[UK]), G.case_group(uk, "market=non-UK", exclude=[UK]),
        G.case_group(uk, "season=Sep-Oct", end="2011-11-01"), G.case_group(uk, "season=Nov-Dec", start="2011-11-01"))
    sizes = G.group_sizes(grouped)
    assert sizes["k=1"].to_dict() == {"market=UK": 908, "market=non-UK": 89, "season=Sep-Oct": 645,
                                      "season=Nov-Dec": 352}
    assert sizes.loc["market=UK"].sum() + sizes.loc["market=non-UK"].sum() == \
        sizes.loc["season=Sep-Oct"].sum() + sizes.loc["season=Nov-Dec"].sum()
    # every new user is new in every market: none of them has a training row, restricted or not
    assert not set(grouped.cases["user"]) & set(split.train["customer"])
    # items bought before the cutoff only outside the UK: in the catalog, but unknown to UK-only training
    only_abroad = (uk.catalog["train_customers"] == 0) & ~uk.catalog["cold"]
    assert only_abroad.sum() > 0
    knn = ItemKNN(uk)
    assert np.all(knn.sim[:, only_abroad.to_numpy()] == 0)
