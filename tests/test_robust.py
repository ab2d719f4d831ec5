"""Nothing lost, nothing run that shouldn't (issue 25): saves that never delete a user's file, loads
that never run a folder's code, concurrent serving and leaderboard updates, the saved-split cache,
ambiguous dates, PEFT loads that fail cleanly, and the serving and tool input holes.

Each test failed before its fix. The serving tests use a tiny random BERT with the real MiniLM
tokenizer (as ``tests/test_serving.py``); nothing here downloads.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CUTOFF, make_tiny_clean, models_folder

import coldstart
from coldstart import serving
from coldstart.data import protocol
from coldstart.models.retrieval import Recipe

tf = coldstart.import_tensorflow()
ROOT = Path(__file__).resolve().parents[1]
MINILM = models_folder() / "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def tokenizer():
    if not (MINILM / "tokenizer_config.json").is_file():
        pytest.skip(f"no local all-MiniLM-L6-v2 at {MINILM} (set COLDSTART_MODELS_DIR)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(MINILM))


@pytest.fixture(scope="module")
def tiny_bert(tokenizer):
    from transformers import BertConfig, TFBertModel

    tf.keras.utils.set_random_seed(0)
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=128)
    model = TFBertModel(cfg)
    model(input_ids=tf.constant([[101, 102]]))
    return model


@pytest.fixture(scope="module")
def module_split():
    return protocol.make_split(make_tiny_clean(), cutoff=TINY_CUTOFF)


@pytest.fixture(scope="module")
def rec(module_split, tokenizer, tiny_bert):
    return serving.Recommender.from_split(module_split, tiny_bert, tokenizer, Recipe(w_text=0.5, beta=0.01, lam=1.0),
                                          progress=False)


@pytest.fixture(scope="module")
def saved_rec(rec, tmp_path_factory):
    return rec.save(tmp_path_factory.mktemp("saved") / "rec")


def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------
# 1. a save never deletes what it did not write
# ------------------------------------------------------------------------------------------------
def test_save_refuses_a_folder_holding_other_files_and_deletes_nothing(rec, tmp_path):
    folder = tmp_path / "my-stuff"
    folder.mkdir()
    (folder / "thesis.txt").write_text("four years of work")
    with pytest.raises(FileExistsError, match="choose a new or empty folder"):
        rec.save(folder)
    assert _tree(folder) == {"thesis.txt": b"four years of work"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-stuff"]   # no temporary folder left


def test_save_refuses_a_file_target_and_keeps_its_content(rec, tmp_path):
    target = tmp_path / "rec"
    target.write_text("not a folder")
    with pytest.raises(FileExistsError, match="is not a folder"):
        rec.save(target)
    assert target.read_text() == "not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]


def test_save_refuses_a_saved_recommender_with_a_user_file_added(rec, saved_rec, tmp_path):
    import shutil

    folder = tmp_path / "rec"
    shutil.copytree(saved_rec, folder)
    (folder / "notes.md").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.md"):
        rec.save(folder)
    assert (folder / "notes.md").read_text() == "mine" and (folder / "serving.json").is_file()


def test_save_replaces_its_own_kind_and_an_empty_folder(rec, saved_rec, tmp_path):
    import shutil

    empty = tmp_path / "empty"
    empty.mkdir()
    rec.save(empty)
    again = tmp_path / "again"
    shutil.copytree(saved_rec, again)
    rec.save(again)
    assert (empty / "serving.json").is_file() and (again / "serving.json").is_file()


def test_split_and_peft_saves_refuse_foreign_folders(module_split, tmp_path):
    from coldstart.models import peft

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "keep.csv").write_text("a,b\n")
    with pytest.raises(FileExistsError):
        module_split.save(folder)
    with pytest.raises(FileExistsError):
        peft._write_folder({"w": np.zeros(2, np.float32)}, {"kind": "adapter"}, folder)
    assert _tree(folder) == {"keep.csv": b"a,b\n"}


# ------------------------------------------------------------------------------------------------
# 3. a loaded folder never runs its own code, and is never looked up on the Hub
# ------------------------------------------------------------------------------------------------
def _booby_trap(folder: Path, marker: Path) -> None:
    """Make the model folder's configs name its own classes, in a module that writes ``marker``."""
    (folder / "evil.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "from transformers import BertConfig, BertTokenizerFast\n"
        "class EvilConfig(BertConfig):\n    model_type = 'evil'\n"
        "class EvilTokenizer(BertTokenizerFast):\n    pass\n")
    for name, auto_map, drop in (("config.json", {"AutoConfig": "evil.EvilConfig"}, None),
                                 ("tokenizer_config.json", {"AutoTokenizer": [None, "evil.EvilTokenizer"]},
                                  "tokenizer_class")):
        config = json.loads((folder / name).read_text())
        config["auto_map"] = auto_map
        config.pop(drop, None)
        if name == "config.json":
            config["model_type"] = "evil"
        (folder / name).write_text(json.dumps(config))


def test_loading_a_recommender_never_runs_the_folders_code(saved_rec, tmp_path, monkeypatch):
    import builtins
    import shutil

    from coldstart.models.encoders import ModelUnavailable

    folder = tmp_path / "rec"
    shutil.copytree(saved_rec, folder)
    marker = tmp_path / "ran.txt"
    _booby_trap(folder / "encoder", marker)
    monkeypatch.setattr(builtins, "input", lambda *a, **k: "y")   # a user who answers yes to transformers' prompt
    with pytest.raises(ModelUnavailable, match="never runs code") as info:
        serving.Recommender.load(folder)
    assert not marker.exists(), "the folder's module ran"
    assert "\n" not in str(info.value)


def test_a_relative_folder_without_encoder_is_damaged_not_a_hub_id(saved_rec, tmp_path, monkeypatch):
    import shutil

    shutil.copytree(saved_rec, tmp_path / "rec")
    shutil.rmtree(tmp_path / "rec" / "encoder")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    asked = []
    import huggingface_hub.file_download as fd

    monkeypatch.setattr(fd, "hf_hub_download", lambda *a, **k: asked.append(a) or (_ for _ in ()).throw(OSError()))
    with pytest.raises(ValueError, match="damaged saved recommender .*encoder.*save it again"):
        serving.Recommender.load("rec")
    assert asked == []


# ------------------------------------------------------------------------------------------------
# 9 (serving part). a damaged or foreign-version saved recommender says so
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["no catalog", "meta without recipe", "recipe of the wrong type", "bad json"])
def test_a_damaged_saved_recommender_says_save_it_again(saved_rec, tmp_path, damage):
    import shutil

    folder = tmp_path / "rec"
    shutil.copytree(saved_rec, folder)
    meta = json.loads((folder / "serving.json").read_text())
    if damage == "no catalog":
        (folder / "catalog.parquet").unlink()
    elif damage == "meta without recipe":
        del meta["recipe"]
    elif damage == "recipe of the wrong type":
        meta["recipe"] = ["w_text", 1]
    if damage != "no catalog":
        (folder / "serving.json").write_text("{" if damage == "bad json" else json.dumps(meta))
    with pytest.raises(ValueError, match="damaged saved recommender.*save it again"):
        serving.Recommender.load(folder)


def test_a_recommender_saved_by_other_versions_loads_with_a_warning(saved_rec, tmp_path):
    import shutil

    folder = tmp_path / "rec"
    shutil.copytree(saved_rec, folder)
    meta = json.loads((folder / "serving.json").read_text())
    meta["versions"]["transformers"] = "4.40.0"
    (folder / "serving.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"transformers 4\.40\.0 \(now "):
        loaded = serving.Recommender.load(folder)
    assert loaded.n_items == json.loads((saved_rec / "serving.json").read_text())["n_items"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        serving.Recommender.load(saved_rec)   # same versions: silent


# ------------------------------------------------------------------------------------------------
# 2. concurrent requests on one recommender return what serial requests return
# ------------------------------------------------------------------------------------------------
def _requests():
    words = ["red retrospot", "cake stand", "heart t-light holder", "zinc metal", "jumbo bag", "lunch bag skull"]
    out = []
    for i in range(48):
        query = " ".join(words[(i + j) % len(words)] for j in range(1 + i % 5)) * (1 + i % 3)
        clicks = [["10001"], ["10002", "10003"], []][i % 3]
        out.append((clicks, query if i % 4 else None))
    return out


def test_threads_sharing_one_recommender_get_the_serial_answers(rec):
    from concurrent.futures import ThreadPoolExecutor

    requests = _requests()
    serial = [rec.recommend(c, query_text=q, k=5) for c, q in requests]
    errors = []

    def run(i):
        try:
            return rec.recommend(requests[i][0], query_text=requests[i][1], k=5)
        except Exception as err:   # collected: every failure counts, not only the first
            errors.append(repr(err))

    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(run, [i for _ in range(5) for i in range(len(requests))]))
    assert errors == []
    for i, frame in enumerate(parallel):
        expected = serial[i % len(requests)]
        assert frame["item_id"].tolist() == expected["item_id"].tolist()
        np.testing.assert_allclose(frame["score"], expected["score"], rtol=1e-5, atol=1e-6)
        assert frame["reason"].tolist() == expected["reason"].tolist()
    assert time.perf_counter() - start < 60


def _same_list(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return (a["item_id"].tolist() == b["item_id"].tolist() and a["reason"].tolist() == b["reason"].tolist()
            and np.allclose(a["score"], b["score"], rtol=1e-5, atol=1e-6))


def test_add_items_while_threads_recommend_gives_each_the_before_or_the_after_lists(module_split, tokenizer,
                                                                                   tiny_bert, monkeypatch):
    """Every list a concurrent recommend returns is the one of the catalog before an ``add_items`` or
    the one after it, never a mix (an index longer than the new-item flags, an id without its text).
    The adding thread is slowed inside numpy's concatenations (the readers are not), so a reader
    lands in the middle of an update whenever the update can be seen half done."""
    import threading

    real_concatenate, real_hstack, writer = np.concatenate, np.hstack, threading.current_thread()

    def slow_in_writer(real):
        def call(*args, **kwargs):
            if threading.current_thread() is writer:
                time.sleep(0.003)
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(np, "concatenate", slow_in_writer(real_concatenate))
    monkeypatch.setattr(np, "hstack", slow_in_writer(real_hstack))
    requests = [(["10001"], None), (["new-1", "10002"], None), ([], "red retrospot cake stand"),
                (["new-2"], "jumbo bag"), (["10003"], "zinc metal heart")]
    products = ["red retrospot cake stand", "jumbo bag red retrospot", "zinc metal heart t-light holder"]
    changed, old_interval = 0, sys.getswitchinterval()
    sys.setswitchinterval(1e-6)   # switch threads as often as possible: a half-done update shows if it can
    try:
        for trial in range(4):
            live = serving.Recommender.from_split(module_split, tiny_bert, tokenizer,
                                                  Recipe(w_text=0.5, beta=0.5, lam=1.0), progress=False)
            before = [live.recommend(c, query_text=q, k=5) for c, q in requests]
            stop, seen, errors = threading.Event(), [], []

            def read(offset):
                i = offset
                while not stop.is_set():
                    try:
                        seen.append((i % len(requests), live.recommend(*requests[i % len(requests)], k=5)))
                    except Exception as err:   # collected: every failure counts
                        errors.append(repr(err))
                    i += 1

            readers = [threading.Thread(target=read, args=(j,)) for j in range(2)]
            for t in readers:
                t.start()
            live.add_items(products)
            stop.set()
            for t in readers:
                t.join()
            after = [live.recommend(c, query_text=q, k=5) for c, q in requests]
            assert errors == []
            mixed = [i for i, frame in seen if not (_same_list(frame, before[i]) or _same_list(frame, after[i]))]
            assert mixed == [], f"trial {trial}: {len(mixed)} of {len(seen)} lists are neither before nor after"
            changed += sum(not _same_list(b, a) for b, a in zip(before, after))
    finally:
        sys.setswitchinterval(old_interval)
    assert changed, "the added products changed no list: the test would not see a mix"


def test_overlapping_blas_limits_restore_the_original_thread_count():
    from threadpoolctl import threadpool_info

    from coldstart._internal.blas import blas_limit

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    if not before or max(before) < 2:
        pytest.skip("BLAS runs on one thread here: a limit of 1 cannot be told from no limit")
    from concurrent.futures import ThreadPoolExecutor

    def request(i):
        with blas_limit(1):
            time.sleep(0.001 * (i % 7))   # requests overlap and leave in another order than they came

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(request, range(200)))
    assert blas_threads() == before


# ------------------------------------------------------------------------------------------------
# 8. input holes in serving
# ------------------------------------------------------------------------------------------------
def test_a_megabyte_query_reads_a_bounded_prefix_and_says_it_was_truncated(rec, monkeypatch):
    seen = []
    real = rec.tokenizer.__class__.__call__
    monkeypatch.setattr(rec.tokenizer.__class__, "__call__", lambda self, text, *a, **k: (
        seen.append(len(text)), real(self, text, *a, **k))[1])
    huge = "red retrospot cake stand " * 40_000   # 1 MB
    out = rec.recommend(query_text=huge, k=3)
    assert any("truncated" in note for note in out.attrs["notes"])
    assert seen and max(seen) <= rec.query_max_len * 128
    short = rec.recommend(query_text=huge[: rec.query_max_len * 128], k=3)
    assert out["item_id"].tolist() == short["item_id"].tolist()


@pytest.mark.parametrize("text", ["\u200b\u200b\u200b", "\x00\x01\x07", "\ufeff\u2060\u200d", "\u202e\u200f"])
def test_a_query_of_only_invisible_characters_is_an_empty_query(rec, text):
    out = rec.recommend(query_text=text, country="France", k=3)
    assert out.attrs["fallback"] == "country" and (out["reason"] == "popular in France").all()
    assert any("only invisible characters" in note for note in out.attrs["notes"])


def test_recommend_none_means_no_clicks(rec):
    out = rec.recommend(None, k=3)
    assert out.attrs["fallback"] == "global" and len(out) == 3


def test_add_items_takes_one_string_as_one_product_and_refuses_non_text(module_split, tokenizer, tiny_bert):
    live = serving.Recommender.from_split(module_split, tiny_bert, tokenizer, progress=False)
    n = live.n_items
    assert live.add_items("teapot") == ["new-1"] and live.n_items == n + 1 and live.texts[-1] == "teapot"
    for bad in ([None], ["ok", 3], ["\u200b"]):
        with pytest.raises(ValueError):
            live.add_items(bad)
    assert live.n_items == n + 1


def test_default_new_ids_never_collide_with_explicit_ones(module_split, tokenizer, tiny_bert):
    live = serving.Recommender.from_split(module_split, tiny_bert, tokenizer, progress=False)
    live.add_items(["mug"], ids=["new-2"])
    assert live.add_items(["plate", "cup"]) == ["new-1", "new-3"]
    assert len(set(live.item_ids)) == live.n_items


def test_twenty_thousand_clicks_cost_linear_time():
    n = 20_000
    rng = np.random.default_rng(0)
    index = rng.normal(size=(n + 5, 8)).astype(np.float32)
    ids = [f"p{i}" for i in range(n + 5)]
    live = serving.Recommender(None, None, ids, ids, index / np.linalg.norm(index, axis=1, keepdims=True))
    start = time.perf_counter()
    out = live.recommend(ids[:n] + ids[:100], k=3)   # 20,000 distinct clicks, 100 repeated
    assert time.perf_counter() - start < 1.0
    assert set(out["item_id"]) <= set(ids[n:])        # only unclicked items are shown


# ------------------------------------------------------------------------------------------------
# 4. the leaderboard keeps every update, and method names as written
# ------------------------------------------------------------------------------------------------
def _rows(method: str, value: float) -> pd.DataFrame:
    return pd.DataFrame({"method": [method], "kind": ["baseline"], "profile": ["smoke"], "protocol": ["test"],
                         "segment": ["k=1"], "metric": ["recall@10"], "value": [value], "ci_low": [value - 0.1],
                         "ci_high": [value + 0.1]})


_WRITER = """
import sys
import pandas as pd
from coldstart.evaluation.leaderboard import update_leaderboard
who, path = sys.argv[1], sys.argv[2]
for i in range(20):
    update_leaderboard(pd.DataFrame({"method": [f"{who}-{i}"], "kind": ["baseline"], "profile": ["smoke"],
        "protocol": ["test"], "segment": ["k=1"], "metric": ["recall@10"], "value": [i / 100],
        "ci_low": [0.0], "ci_high": [1.0]}), path)
"""


def test_two_processes_updating_one_leaderboard_lose_nothing(tmp_path):
    from coldstart.evaluation.leaderboard import read_leaderboard

    path = tmp_path / "leaderboard.csv"
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, who, str(path)], env=env) for who in ("a", "b")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    board = read_leaderboard(path)
    assert sorted(board["method"]) == sorted(f"{w}-{i}" for w in "ab" for i in range(20))
    assert len(json.loads((tmp_path / "leaderboard.runs.json").read_text())) == 40
    assert time.perf_counter() - start < 60


@pytest.mark.parametrize("name", ["NA", "None", "1", "TRUE", "nan", "", "0.50"])
def test_method_names_are_read_back_as_written_and_replaced(tmp_path, name):
    from coldstart.evaluation.leaderboard import read_leaderboard, update_leaderboard

    path = tmp_path / "leaderboard.csv"
    update_leaderboard(_rows(name, 0.25), path)
    update_leaderboard(_rows("other", 0.5), path)
    board = update_leaderboard(_rows(name, 0.75), path)
    back = read_leaderboard(path)
    assert back["method"].tolist() == ["other", name] == board["method"].tolist()
    assert back["value"].tolist() == [0.5, 0.75]
    assert back["value"].dtype == float and back["profile"].tolist() == ["smoke", "smoke"]


# ------------------------------------------------------------------------------------------------
# 5. the saved-split cache returns a split only for the same data and parameters
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def split_cache(tmp_path, monkeypatch):
    """A data folder and a tiny data file; the test split's protocol shrunk to fit the tiny table."""
    from test_bad_input import _raw_sample

    monkeypatch.setenv("COLDSTART_DATA_DIR", str(tmp_path / "data"))
    data_file = tmp_path / "retail.parquet"
    _raw_sample().to_parquet(data_file, index=False)
    monkeypatch.setenv("COLDSTART_DATA_FILE", str(data_file))
    monkeypatch.setattr(protocol, "TEST_CUTOFF", TINY_CUTOFF)
    monkeypatch.setattr(protocol, "CONTEXT_SIZES", (1, 3))
    built = []
    real = protocol.make_split
    monkeypatch.setattr(protocol, "make_split", lambda *a, **k: built.append(k) or real(*a, **k))
    return data_file, built


def test_a_saved_split_is_reused_for_the_same_data_and_parameters(split_cache):
    _, built = split_cache
    first = protocol.load_or_make("test", verbose=False)
    again = protocol.load_or_make("test", verbose=False)
    assert len(built) == 1
    pd.testing.assert_frame_equal(first.cases.reset_index(drop=True), again.cases.reset_index(drop=True))


def test_a_split_from_other_data_of_the_same_size_is_rebuilt(split_cache):
    data_file, built = split_cache
    protocol.load_or_make("test", verbose=False)
    raw = pd.read_parquet(data_file)
    raw["Country"] = raw["Country"].replace({"France": "Spain"})   # same length, other content
    raw.to_parquet(data_file, index=False)
    split = protocol.load_or_make("test", verbose=False)
    assert len(built) == 2 and "France" not in set(split.cases["country"])


def test_a_split_with_another_cutoff_or_context_sizes_is_rebuilt(split_cache, monkeypatch):
    _, built = split_cache
    other = protocol.make_split(protocol.load_clean(verbose=False)[0], cutoff="2011-04-01", ks=(1, 2))
    protocol.save_default(other, "test")
    split = protocol.load_or_make("test", verbose=False)
    assert split.cutoff == pd.Timestamp(TINY_CUTOFF) and len(built) == 2
    monkeypatch.setattr(protocol, "CONTEXT_SIZES", (1, 2))
    split = protocol.load_or_make("test", verbose=False)
    assert "k=2" in split.segment_names and len(built) == 3


@pytest.mark.parametrize("damage", ['{"cutoff": "20', "[1, 2]", ""])
def test_an_unreadable_split_json_is_rebuilt(split_cache, damage):
    _, built = split_cache
    protocol.load_or_make("test", verbose=False)
    (protocol.default_folder("test") / "split.json").write_text(damage)
    split = protocol.load_or_make("test", verbose=False)
    assert len(built) == 2 and split.cutoff == pd.Timestamp(TINY_CUTOFF)
    json.loads((protocol.default_folder("test") / "split.json").read_text())   # whole again


# ------------------------------------------------------------------------------------------------
# 9 (protocol part). context sizes that would drop or duplicate segments are refused
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(ks=(1.5,)), "whole numbers.*usable range is 1 to 5"), (dict(ks=(1, 1)), "must differ"),
    (dict(ks=(True,)), "whole numbers.*usable range is 1 to 5"),
    (dict(warm_k=0), "warm_k.*usable range is 1 to 4"), (dict(cold_k=2.5), "cold_k.*usable range is 1 to 5"),
    # larger than every basket of the segment's users: the segment would silently come out empty
    (dict(warm_k=5), "warm_k=5 is larger.*usable range is 1 to 4"),
    (dict(cold_k=6), "cold_k=6 is larger.*usable range is 1 to 5"),
])
def test_bad_context_sizes_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        protocol.make_split(make_tiny_clean(), cutoff=TINY_CUTOFF, **kwargs)
    assert "\n" not in str(info.value)


def test_context_sizes_up_to_the_largest_basket_keep_every_segment():
    split = protocol.make_split(make_tiny_clean(), cutoff=TINY_CUTOFF, warm_k=4, cold_k=3)
    assert split.segment_names == list(protocol.SEGMENTS)
    assert len(split.segment("warm")) == 1 and len(split.segment("cold-items")) == 1
