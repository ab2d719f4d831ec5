"""Tests of coldstart.config: profiles, environment switches and project paths."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from coldstart import config
from coldstart.config import DEFAULT_MODEL, PROFILES, Profile, get_profile, project_root, runs_dir

REPO = Path(__file__).resolve().parents[1]
ENV = ("COLDSTART_PROFILE", "COLDSTART_MODEL", "CI", "COLDSTART_ALLOW_FULL_IN_CI", "COLDSTART_HOME",
       "COLDSTART_RUNS", "COLDSTART_DATA_DIR")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """Every test starts without the course's switches (the CI running the suite may set some)."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def test_smoke_profile_settings():
    p = get_profile("smoke")
    assert isinstance(p, Profile)
    assert dataclasses.asdict(p) == dict(
        name="smoke",
        evaluation=dict(users=150, bootstrap=200),
        encoder=dict(model_name=DEFAULT_MODEL, max_len=32, batch_size=128),
        training=dict(batch_size=32, learning_rate=5e-5),
        fine_tuning=dict(ctr_pairs=192, ctr_epochs=1, tower_pairs=640, tower_epochs=1, item_pairs=320, item_epochs=1,
                         rerank_users=20, rerank_n=20),
        augmentation=dict(steps=4, variants=("none", "all")),
        adapters=dict(pairs=96, epochs=1, size=64, lora_rank=8, learning_rate=1e-3, lora_learning_rate=3e-4,
                      lora_targets=("query", "key", "value", "attention_output", "intermediate", "output"),
                      temperature=0.2, group_pairs=64, measure_steps=2),
        serving=dict(calls=40),
        benchmark=dict(pairs=512, epochs=1, test_users=300, valid_users=300),
        transfer=dict(pairs=320, epochs=1, adapt_pairs=128, adapt_epochs=1),
        tuning=dict(pairs=64, epochs=1, valid_users=30, learning_rates=(5e-5,), batch_sizes=(32,), sweep_pairs=64,
                    adapter_sizes=(16,), lora_ranks=(), peft_epochs=1),
    )
    assert DEFAULT_MODEL == "sentence-transformers/all-MiniLM-L6-v2"
    text = p.describe("evaluation", "fine_tuning")
    lines = text.splitlines()
    assert lines[0] == "profile=smoke" and lines[1] == "  evaluation: users=150, bootstrap=200"
    assert lines[2].startswith("  fine_tuning: ctr_pairs=192, ") and "tower_pairs=640" in lines[2]
    assert len(lines) == 3 and "encoder" not in text   # only the sections a notebook asks for
    # single fields, in the order asked, grouped under their section
    assert p.describe("adapters.size", "encoder.max_len", "adapters.learning_rate").splitlines() == [
        "profile=smoke", "  adapters: size=64, learning_rate=0.001", "  encoder: max_len=32"]
    assert p.describe("adapters.size", "adapters") == p.describe("adapters").replace(
        "adapters: pairs=96, epochs=1, size=64", "adapters: size=64, pairs=96, epochs=1")
    assert p.describe() == "profile=smoke"
    with pytest.raises(TypeError, match="finetuning"):
        p.describe("finetuning")   # a misspelt section
    with pytest.raises(TypeError, match="has no field 'rank'"):
        p.describe("adapters.rank")   # a misspelt field


def test_full_profiles_use_all_users():
    cpu, gpu = get_profile("cpu"), get_profile("gpu")
    assert cpu.evaluation.users is None and gpu.evaluation.users is None
    assert gpu.fine_tuning.rerank_users is None and cpu.fine_tuning.rerank_users == 300
    smoke = get_profile("smoke")
    assert (cpu.fine_tuning.tower_pairs * cpu.fine_tuning.tower_epochs
            > smoke.fine_tuning.tower_pairs * smoke.fine_tuning.tower_epochs)
    assert cpu.evaluation.bootstrap == gpu.evaluation.bootstrap == 1000
    for name in ("", "adapt_"):  # notebook 09: more training the bigger the profile
        budget = {p.name: getattr(p.transfer, f"{name}pairs") * getattr(p.transfer, f"{name}epochs")
                  for p in (smoke, cpu, gpu)}
        assert budget["smoke"] < budget["cpu"] <= budget["gpu"], (name, budget)
    budget = {p.name: p.benchmark.pairs * p.benchmark.epochs for p in (smoke, cpu, gpu)}  # notebook 08
    assert budget["smoke"] < budget["cpu"] < budget["gpu"] and cpu.benchmark.test_users is None
    # notebook 05: more steps the bigger the profile; only smoke leaves variants out
    steps = [p.augmentation.steps * p.training.batch_size for p in (smoke, cpu, gpu)]
    assert steps == sorted(steps) and len(set(steps)) == 3
    assert cpu.augmentation.variants is None and gpu.augmentation.variants is None
    assert len(smoke.augmentation.variants) == 2
    assert gpu.encoder.max_len == 48 and gpu.training.batch_size == 128
    assert PROFILES == ("smoke", "cpu", "gpu")


def test_profile_name_is_case_and_space_insensitive():
    assert get_profile(" Smoke ").name == "smoke"


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(ValueError) as info:
        get_profile("smok")
    text = str(info.value)
    assert "smok" in text
    assert "smoke, cpu, gpu" in text


def test_unknown_profile_from_env(monkeypatch):
    monkeypatch.setenv("COLDSTART_PROFILE", "fast")
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        get_profile()


def test_overrides():
    p = get_profile("cpu", fine_tuning={"tower_epochs": 1}, encoder={"max_len": 16})
    assert (p.name, p.fine_tuning.tower_epochs, p.encoder.max_len) == ("cpu", 1, 16)
    assert p.fine_tuning.tower_pairs == 4096 and p.encoder.batch_size == 128  # the section's other settings stay
    assert get_profile("cpu").fine_tuning.tower_epochs == 6  # the defaults are untouched
    with pytest.raises(TypeError):
        get_profile("cpu", fine_tuning={"epoch": 1})  # misspelt setting
    with pytest.raises(TypeError):
        get_profile("cpu", finetuning={"tower_epochs": 1})  # misspelt section
    with pytest.raises(TypeError):
        get_profile("smoke").replace(training={"learningrate": 1e-3})
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_profile("smoke").fine_tuning.tower_epochs = 5


def test_env_profile_is_respected(monkeypatch):
    monkeypatch.setenv("COLDSTART_PROFILE", "smoke")
    assert get_profile().name == "smoke"
    monkeypatch.setenv("COLDSTART_PROFILE", "GPU")
    assert get_profile().name == "gpu"
    assert get_profile("cpu").name == "cpu"  # an explicit name wins over the variable


def test_ci_refuses_full_profiles(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert get_profile("smoke").name == "smoke"
    for name in ("cpu", "gpu"):
        with pytest.raises(ValueError, match="CI"):
            get_profile(name)
    monkeypatch.setenv("COLDSTART_PROFILE", "cpu")
    with pytest.raises(ValueError, match="COLDSTART_ALLOW_FULL_IN_CI"):
        get_profile()
    monkeypatch.setenv("COLDSTART_ALLOW_FULL_IN_CI", "1")
    assert get_profile().name == "cpu"
    assert get_profile("gpu").name == "gpu"


@pytest.mark.parametrize("value", ["1", "TRUE", "yes"])
def test_ci_spellings(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(ValueError):
        get_profile("cpu")


def test_ci_false_allows_full(monkeypatch):
    monkeypatch.setenv("CI", "false")
    assert get_profile("cpu").name == "cpu"


def test_model_override(monkeypatch, tmp_path):
    monkeypatch.setenv("COLDSTART_MODEL", str(tmp_path / "my-model"))
    for name in PROFILES:
        assert get_profile(name).encoder.model_name == str(tmp_path / "my-model")
    # an explicit override wins
    assert get_profile("cpu", encoder={"model_name": "other"}).encoder.model_name == "other"
    monkeypatch.delenv("COLDSTART_MODEL")
    assert get_profile("cpu").encoder.model_name == DEFAULT_MODEL


# ------------------------------------------------------------------------------------------------
# Paths
# ------------------------------------------------------------------------------------------------
def _fake_course(root: Path) -> Path:
    (root / "coldstart").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'coldstart'\n")
    return root


def test_project_root_from_a_subfolder_of_the_repo(monkeypatch):
    sub = REPO / "notebooks" if (REPO / "notebooks").is_dir() else REPO / "coldstart"
    monkeypatch.chdir(sub)
    assert project_root() == REPO.resolve()
    monkeypatch.chdir(REPO)
    assert project_root() == REPO.resolve()


def test_project_root_finds_the_nearest_course_folder(monkeypatch, tmp_path):
    course = _fake_course(tmp_path / "course")
    deep = course / "notebooks" / "chapter1"
    deep.mkdir(parents=True)
    # a pyproject.toml without a coldstart/ folder next to it is not the course
    (course / "notebooks" / "pyproject.toml").write_text("[project]\nname = 'other'\n")
    monkeypatch.chdir(deep)
    assert project_root() == course.resolve()


def test_project_root_without_marker_is_cwd(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert project_root() == tmp_path.resolve()


def test_coldstart_home_wins(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("COLDSTART_HOME", str(tmp_path / "elsewhere" / ".." / "home"))
    assert project_root() == (tmp_path / "home").resolve()


def test_runs_dir_honours_coldstart_runs(monkeypatch, tmp_path):
    target = tmp_path / "a" / "b" / "runs"
    monkeypatch.setenv("COLDSTART_RUNS", str(target))
    out = runs_dir("cpu")
    assert out == target and target.is_dir()


def test_runs_dir_default_under_root(monkeypatch, tmp_path):
    monkeypatch.setenv("COLDSTART_HOME", str(tmp_path))
    assert runs_dir("smoke") == tmp_path.resolve() / "runs" / "smoke"
    assert (tmp_path / "runs" / "smoke").is_dir()
    assert runs_dir(get_profile("gpu")) == tmp_path.resolve() / "runs" / "gpu"
    monkeypatch.setenv("COLDSTART_PROFILE", "smoke")
    assert runs_dir() == tmp_path.resolve() / "runs" / "smoke"


def test_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("COLDSTART_HOME", str(tmp_path))
    assert config.data_dir() == tmp_path.resolve() / "data"
    assert (tmp_path / "data").is_dir()
    monkeypatch.setenv("COLDSTART_DATA_DIR", str(tmp_path / "cache"))
    assert config.data_dir() == tmp_path / "cache"
    assert (tmp_path / "cache").is_dir()


@pytest.mark.parametrize("variable, folder", [("COLDSTART_DATA_DIR", config.data_dir),
                                              ("COLDSTART_RUNS", lambda: runs_dir("smoke"))])
def test_a_folder_variable_naming_a_file_says_so(monkeypatch, tmp_path, variable, folder):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    for bad, why in [(a_file, "it is a file, not a folder"), (a_file / "sub", f"{a_file} is a file, not a folder")]:
        monkeypatch.setenv(variable, str(bad))
        with pytest.raises(config.UnusableFolder, match=f"^{variable}=.* cannot be used: {why}; set {variable} to"):
            folder()
    assert a_file.read_text() == "not a folder"
    if variable == "COLDSTART_DATA_DIR":   # naming the folder, for another error's message, never raises
        assert config.data_dir(create=False) == a_file / "sub"


def test_lora_targets_of_every_profile_are_projections_add_lora_knows():
    from coldstart.models import peft

    assert config.LORA_EVERY == tuple(peft.LORA_TARGETS)   # every projection of a layer, in the layer's order
    for name in PROFILES:
        assert set(get_profile(name).adapters.lora_targets) <= set(peft.LORA_TARGETS)
