"""Tests of coldstart.evaluation.harness: the harness on perfect and empty recommenders, the result table,
ILD, paired comparison and the leaderboard file."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from coldstart.data import SEGMENTS, Cases
from coldstart.evaluation import (
    LEADERBOARD_COLUMNS,
    compare,
    evaluate,
    read_leaderboard,
    update_leaderboard,
)
from coldstart.evaluation import metrics as M
from coldstart.models.baselines import ItemKNN, Popularity

ACCURACY = ["ndcg@10", "ndcg@20", "recall@10", "recall@20", "hit@10", "hit@20", "mrr"]
ALL_METRICS = ACCURACY + ["ild@10", "novelty@10", "coverage@10"]


class Oracle:
    """Scores 1 for a case's targets, 0 for everything else.

    evaluate() runs the segments in the order given and, with max_users=None and a batch larger
    than any segment, calls score() once per segment with the cases in segment order; the oracle
    checks that this is the case (the contexts must match) and reads the answers off the segment.
    """

    name = "oracle"

    def __init__(self, split, segments):
        self.queue = [split.segment(s) for s in segments]
        self.calls = 0

    def score(self, batch: Cases) -> np.ndarray:
        seg = self.queue.pop(0)
        self.calls += 1
        assert len(batch) == len(seg)
        assert all(np.array_equal(a, b) for a, b in zip(batch.context, seg.context))
        assert np.array_equal(batch.country, seg.country)
        return seg.targets.toarray().astype(np.float32)


# ------------------------------------------------------------------------------------------------
# evaluate() on the real split
# ------------------------------------------------------------------------------------------------
def test_oracle_is_perfect(split):
    oracle = Oracle(split, SEGMENTS)
    res = evaluate(oracle, split, n_boot=0, batch_size=100_000)
    assert oracle.calls == len(SEGMENTS) and oracle.queue == []
    assert res.table["method"].unique().tolist() == ["oracle"]
    for seg in SEGMENTS:
        per_user = res.per_user[seg]
        n = len(split.segment(seg))
        for metric in ("hit@10", "hit@20", "mrr", "ndcg@10", "ndcg@20", "recall@10", "recall@20"):
            assert per_user[metric].shape == (n,)
            np.testing.assert_allclose(per_user[metric], 1.0, err_msg=f"{seg} {metric}")
        sizes = np.diff(split.segment(seg).targets.indptr)
        assert (sizes <= 10).any()
        np.testing.assert_allclose(per_user["recall@10"][sizes <= 10], 1.0)
        values = res.pivot("mrr")
        assert values[seg] == pytest.approx(1.0)
        assert res.pivot("hit@10")[seg] == pytest.approx(1.0)
        # the top of each list is exactly the targets
        topk = res.topk[seg]
        assert topk.shape == (n, 20)
        targets = split.segment(seg).targets
        for i in range(0, n, max(1, n // 50)):
            t = set(targets[i].indices.tolist())
            head = topk[i, : min(len(t), 20)].tolist()
            assert set(head) <= t


def test_all_minus_inf_scores_zero_and_keeps_users(split):
    def nothing(batch: Cases) -> np.ndarray:
        return np.full((len(batch), split.n_items), -np.inf, dtype=np.float32)

    res = evaluate(nothing, split, method="nothing", n_boot=50, max_users=400)
    t = res.table
    assert set(t["segment"]) == set(SEGMENTS)
    for seg in SEGMENTS:
        n = min(400, len(split.segment(seg)))
        rows = t[t["segment"] == seg].set_index("metric")
        assert (rows["n_users"] == n).all()
        for metric in ACCURACY:
            assert rows.loc[metric, "value"] == 0.0, (seg, metric)
            assert len(res.per_user[seg][metric]) == n
            assert np.all(res.per_user[seg][metric] == 0.0)
        assert rows.loc["coverage@10", "value"] == 0.0
        assert (res.topk[seg] == -1).all()


def test_wrong_shape_raises(split):
    def short(batch):
        return np.zeros((len(batch), split.n_items - 1), dtype=np.float32)

    def flat(batch):
        return np.zeros(len(batch) * split.n_items, dtype=np.float32)

    for bad in (short, flat):
        with pytest.raises(ValueError, match="shape"):
            evaluate(bad, split, segments=["k=1"], max_users=50, n_boot=0)


def test_bad_kind_and_bad_recommender(split):
    with pytest.raises(ValueError, match="kind"):
        evaluate(Popularity(split), split, kind="magic", segments=["k=1"], max_users=10, n_boot=0)
    with pytest.raises(TypeError):
        evaluate(42, split, segments=["k=1"], max_users=10, n_boot=0)


def test_result_table_shape_and_ci(split):
    pop = Popularity(split)
    res = evaluate(pop, split, kind="baseline", profile="smoke", protocol="coldstart", max_users=300, n_boot=200)
    t = res.table
    assert list(t.columns) == LEADERBOARD_COLUMNS + ["n_users"]
    assert len(t) == len(SEGMENTS) * len(ALL_METRICS)
    assert not t.duplicated(["segment", "metric"]).any()
    assert set(map(tuple, t[["segment", "metric"]].to_numpy())) == {(s, m) for s in SEGMENTS for m in ALL_METRICS}
    assert (t["method"] == "popularity").all() and (t["kind"] == "baseline").all()
    assert (t["profile"] == "smoke").all() and (t["protocol"] == "coldstart").all()
    for seg in SEGMENTS:
        assert (t.loc[t["segment"] == seg, "n_users"] == min(300, len(split.segment(seg)))).all()
    acc = t[t["metric"].isin(ACCURACY + ["coverage@10"])]
    assert acc["ci_low"].notna().all() and acc["ci_high"].notna().all()
    assert (acc["ci_low"] <= acc["value"]).all() and (acc["value"] <= acc["ci_high"]).all()
    assert (acc["ci_low"] < acc["ci_high"]).any()
    # the value is the mean of the per-user values
    for seg in SEGMENTS:
        for metric in ACCURACY + ["ild@10", "novelty@10"]:
            value = t.loc[(t["segment"] == seg) & (t["metric"] == metric), "value"].item()
            assert value == pytest.approx(np.nanmean(res.per_user[seg][metric]))
        assert np.array_equal(res.users[seg], split.segment(seg).sample(300, seed=0).users)
    assert res.pivot("ndcg@10").index.tolist() == list(SEGMENTS)
    assert set(res.seconds) == set(SEGMENTS)


def test_n_boot_zero_gives_nan_intervals(split):
    res = evaluate(Popularity(split), split, segments=["k=1"], max_users=100, n_boot=0)
    assert res.table["ci_low"].isna().all() and res.table["ci_high"].isna().all()
    assert res.table["value"].notna().all()


def test_batch_size_does_not_change_results(split):
    knn = ItemKNN(split)
    a = evaluate(knn, split, segments=["k=3"], max_users=150, n_boot=0, batch_size=16)
    b = evaluate(knn, split, segments=["k=3"], max_users=150, n_boot=0, batch_size=4096)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert np.array_equal(a.topk["k=3"], b.topk["k=3"])


def test_context_items_are_never_recommended(split):
    res = evaluate(Popularity(split), split, segments=["k=5"], max_users=300, n_boot=0)
    seg = split.segment("k=5").sample(300, seed=0)
    for ctx, top in zip(seg.context, res.topk["k=5"]):
        assert not set(ctx.tolist()) & set(top.tolist())


def test_batch_context_matrix():
    b = Cases(context=[np.array([2, 0]), np.array([], dtype=np.int64), np.array([1])],
              country=np.array(["A", "B", "C"]), date=np.array([0, 0, 0]))
    assert len(b) == 3
    np.testing.assert_array_equal(b.context_matrix(4).toarray(), [[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]])
    np.testing.assert_allclose(b.context_matrix(4, "mean").toarray(), [[0.5, 0, 0.5, 0], [0, 0, 0, 0], [0, 1, 0, 0]])


def test_the_batch_of_a_segment(tiny_split):
    seg = tiny_split.segment("k=1")
    b = seg.batch()
    assert len(b) == len(seg) == 3
    assert [c.tolist() for c in b.context] == [[1], [4], [0]]
    assert b.country.tolist() == ["France", "Germany", "United Kingdom"]


# ------------------------------------------------------------------------------------------------
# ILD
# ------------------------------------------------------------------------------------------------
def test_ild_from_a_similarity_matrix_matches_ild_from_vectors():
    rng = np.random.default_rng(0)
    n_items, d, n_users, k = 60, 12, 40, 10
    vectors = rng.normal(size=(n_items, d))
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sim = (unit @ unit.T).astype(np.float32)
    topk = np.stack([rng.permutation(n_items)[:k] for _ in range(n_users)])
    # padding: some lists shorter, one with a single item, one empty
    for u, length in enumerate([k, 7, 3, 2, 1, 0]):
        topk[u, length:] = -1
    expected = M.intra_list_diversity(topk, unit)
    got = M.intra_list_diversity(topk, similarity=sim)
    assert got.shape == (n_users,)
    assert np.isnan(got[4]) and np.isnan(got[5])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, equal_nan=True)
    # the same on unnormalised input vectors (intra_list_diversity normalises them itself)
    np.testing.assert_allclose(got, M.intra_list_diversity(topk, vectors), rtol=1e-5, atol=1e-6, equal_nan=True)
    # two identical items -> 0, two orthogonal items -> 1
    eye = np.eye(3, dtype=np.float32)
    np.testing.assert_allclose(M.intra_list_diversity(np.array([[0, 1, -1]]), similarity=eye), [1.0])
    np.testing.assert_allclose(M.intra_list_diversity(np.array([[0, 1]]), similarity=np.ones((2, 2))), [0.0])


# ------------------------------------------------------------------------------------------------
# compare()
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def k1_results(split):
    pop = evaluate(Popularity(split), split, segments=["k=1"], n_boot=0)
    knn = evaluate(ItemKNN(split), split, segments=["k=1"], n_boot=0)
    return pop, knn


def test_compare_with_itself(k1_results):
    pop, _ = k1_results
    out = compare(pop, pop, n_boot=200)
    assert list(out.columns) == ["segment", "a", "b", "diff", "rel_diff", "ci_low", "ci_high", "p_value", "real"]
    row = out.set_index("segment").loc["k=1"]
    assert row["diff"] == 0.0 and row["rel_diff"] == 0.0
    assert row["ci_low"] == 0.0 and row["ci_high"] == 0.0
    assert not row["real"]
    assert row["a"] == row["b"] == pytest.approx(pop.pivot()["k=1"])


def test_compare_knn_beats_popularity_on_k1(k1_results):
    pop, knn = k1_results
    out = compare(knn, pop, metric="ndcg@10", n_boot=1000).set_index("segment")
    row = out.loc["k=1"]
    assert row["real"]
    assert row["diff"] > 0 and row["ci_low"] > 0
    assert row["a"] == pytest.approx(knn.pivot()["k=1"]) and row["b"] == pytest.approx(pop.pivot()["k=1"])
    assert row["diff"] == pytest.approx(row["a"] - row["b"])
    assert row["rel_diff"] == pytest.approx(row["diff"] / row["b"])
    assert row["p_value"] < 0.01
    # the other way round: the same difference with the sign flipped, still real
    back = compare(pop, knn, metric="ndcg@10", n_boot=1000).set_index("segment").loc["k=1"]
    assert back["diff"] == pytest.approx(-row["diff"]) and back["real"] and back["ci_high"] < 0


def test_compare_different_users_raises(split):
    a = evaluate(Popularity(split), split, segments=["k=1"], max_users=200, n_boot=0, seed=0)
    b = evaluate(Popularity(split), split, segments=["k=1"], max_users=200, n_boot=0, seed=1)
    with pytest.raises(ValueError, match="different users"):
        compare(a, b)


def test_compare_skips_segments_missing_in_b(split, k1_results):
    pop, _ = k1_results
    other = evaluate(Popularity(split), split, segments=["k=3"], n_boot=0)
    assert len(compare(pop, other)) == 0


# ------------------------------------------------------------------------------------------------
# Leaderboard
# ------------------------------------------------------------------------------------------------
def _rows(method, profile="cpu", protocol="coldstart", value=0.1, segments=("k=1", "k=3"), metrics=("ndcg@10", "mrr")):
    rows = [
        dict(method=method, kind="baseline", profile=profile, protocol=protocol, segment=s, metric=m,
             value=value, ci_low=value - 0.01, ci_high=value + 0.01)
        for s in segments for m in metrics
    ]
    return pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)


def _no_temp_files(folder) -> None:
    """Only the leaderboard, its run record and its (empty) lock file may be there: no temporary file left behind."""
    names = sorted(p.name for p in folder.iterdir())
    assert set(names) <= {"leaderboard.csv", "leaderboard.runs.json", ".leaderboard.csv.lock"}, names
    lock = folder / ".leaderboard.csv.lock"
    assert not lock.exists() or lock.stat().st_size == 0


def test_update_leaderboard_replaces_same_method_profile_protocol(tmp_path):
    path = tmp_path / "board" / "leaderboard.csv"
    update_leaderboard(_rows("a", value=0.1), path)
    update_leaderboard(_rows("b", value=0.2), path)
    update_leaderboard(_rows("a", profile="smoke", value=0.3), path)
    update_leaderboard(_rows("a", protocol="validation", value=0.4), path)
    board = update_leaderboard(_rows("a", value=0.5, segments=("k=5",)), path)
    on_disk = read_leaderboard(path)
    assert list(on_disk.columns) == LEADERBOARD_COLUMNS
    assert len(on_disk) == len(board) == 4 + 4 + 4 + 2
    pd.testing.assert_frame_equal(on_disk.reset_index(drop=True), board.reset_index(drop=True), check_dtype=False)
    key = on_disk.groupby(["method", "profile", "protocol"])["value"].agg(lambda v: sorted(set(v)))
    assert key.to_dict() == {
        ("a", "cpu", "coldstart"): [0.5],  # old 0.1 rows gone, including their segments k=1, k=3
        ("a", "cpu", "validation"): [0.4],
        ("a", "smoke", "coldstart"): [0.3],
        ("b", "cpu", "coldstart"): [0.2],
    }
    a_cpu = on_disk[(on_disk["method"] == "a") & (on_disk["profile"] == "cpu") & (on_disk["protocol"] == "coldstart")]
    assert a_cpu["segment"].tolist() == ["k=5", "k=5"]
    assert (path.parent / "leaderboard.csv").is_file()
    _no_temp_files(path.parent)


def test_update_leaderboard_records_the_runs(tmp_path):
    path = tmp_path / "leaderboard.csv"
    update_leaderboard(_rows("a"), path, model="some/model", note="first")
    update_leaderboard(_rows("b", profile="smoke"), path)
    runs_file = tmp_path / "leaderboard.runs.json"
    assert runs_file.is_file()
    runs = json.loads(runs_file.read_text())
    assert set(runs) == {"a | cpu | coldstart", "b | smoke | coldstart"}
    assert runs["a | cpu | coldstart"]["model"] == "some/model"
    assert runs["a | cpu | coldstart"]["note"] == "first"
    assert "date" in runs["b | smoke | coldstart"] and "versions" in runs["b | smoke | coldstart"]


def test_update_leaderboard_accepts_eval_result_and_drops_n_users(split, tmp_path):
    res = evaluate(Popularity(split), split, segments=["k=1"], max_users=50, n_boot=0)
    path = tmp_path / "leaderboard.csv"
    board = update_leaderboard(res, path)
    assert list(board.columns) == LEADERBOARD_COLUMNS
    on_disk = read_leaderboard(path)
    assert list(on_disk.columns) == LEADERBOARD_COLUMNS
    assert len(on_disk) == len(res.table)
    assert on_disk["value"].to_numpy() == pytest.approx(res.table["value"].to_numpy(), rel=1e-5)


def _snapshot(folder) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_update_leaderboard_is_atomic_when_to_csv_fails(tmp_path, monkeypatch):
    path = tmp_path / "leaderboard.csv"
    update_leaderboard(_rows("a"), path)
    before = _snapshot(tmp_path)

    def broken(self, path_or_buf=None, *args, **kwargs):
        if path_or_buf is not None:  # writing to a file: leave half a file, then fail
            with open(path_or_buf, "w") as fh:
                fh.write("method,kind\nhalf")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(OSError, match="simulated"):
        update_leaderboard(_rows("b"), path)
    assert _snapshot(tmp_path) == before  # old leaderboard (and run record) unchanged
    _no_temp_files(tmp_path)


def test_update_leaderboard_is_atomic_when_the_final_rename_fails(tmp_path, monkeypatch):
    path = tmp_path / "leaderboard.csv"
    update_leaderboard(_rows("a"), path)
    before = path.read_bytes()

    def broken_replace(src, dst, *args, **kwargs):
        raise OSError("rename failed (simulated)")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        update_leaderboard(_rows("b"), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    _no_temp_files(tmp_path)
    assert read_leaderboard(path)["method"].unique().tolist() == ["a"]


def test_update_leaderboard_rejects_missing_columns(tmp_path):
    path = tmp_path / "leaderboard.csv"
    bad = _rows("a").drop(columns=["ci_low"])
    with pytest.raises(ValueError, match="ci_low"):
        update_leaderboard(bad, path)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
    # an existing leaderboard is left alone too
    update_leaderboard(_rows("a"), path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="ci_low"):
        update_leaderboard(bad, path)
    assert path.read_bytes() == before


def test_read_leaderboard_missing_file(tmp_path):
    empty = read_leaderboard(tmp_path / "none.csv")
    assert list(empty.columns) == LEADERBOARD_COLUMNS and len(empty) == 0


def test_run_info_names_the_machine_with_its_cpu_model(monkeypatch):
    from coldstart._internal import runinfo

    monkeypatch.setattr(runinfo, "cpu_model", lambda: {"cpu_model": "AMD EPYC 7B13", "simd": "AVX2"})
    info = runinfo.run_info(model="m")
    assert info["machine"].startswith("AMD EPYC 7B13 (AVX2), ") and f"{os.cpu_count()} logical CPUs" in info["machine"]
    assert info["model"] == "m" and "tensorflow" in info["versions"]
    monkeypatch.setattr(runinfo, "cpu_model", lambda: {})          # no /proc/cpuinfo: the short form
    assert runinfo.run_info()["machine"].split(",")[1].strip() == f"{os.cpu_count()} logical CPUs"
