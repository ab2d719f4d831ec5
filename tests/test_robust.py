"""Nothing lost, nothing run that shouldn't (issue 25): saves that never delete a user's file, loads
that never run a folder's code, concurrent serving and leaderboard updates, the saved-split cache,
ambiguous dates, PEFT loads that fail cleanly, and the serving and tool input holes.

Each test failed before its fix. The serving tests use a tiny random BERT with the real MiniLM
tokenizer (as ``tests/test_serving.py``); nothing here downloads.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
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
