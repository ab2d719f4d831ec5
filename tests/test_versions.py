"""Tests of coldstart._internal.versions (the fail-fast version check) and of the import-order guard in
coldstart/__init__.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from coldstart import EnvironmentMismatch
from coldstart._internal import versions as _versions
from coldstart._internal.versions import PIN_TRANSFORMERS, check_versions, installed_versions, problems

REPO = Path(__file__).resolve().parents[1]
GOOD = {"tensorflow": "2.21.0", "tf-keras": "2.21.0", "transformers": "4.54.1", "torch": None}


def combo(**changes) -> dict:
    """GOOD with some packages changed; keyword tf_keras stands for "tf-keras"."""
    out = dict(GOOD)
    for key, value in changes.items():
        out[key.replace("_", "-")] = value
    return out


@pytest.fixture(autouse=True)
def _no_bypass(monkeypatch):
    monkeypatch.delenv("COLDSTART_SKIP_VERSION_CHECK", raising=False)


def _one(found: list) -> str:
    assert len(found) == 1, found
    assert "\n" not in found[0]
    return found[0]


def test_good_combination():
    assert problems(GOOD) == []
    assert problems(combo(tensorflow="2.16.1", tf_keras="2.16.0", transformers="4.45.0")) == []
    assert problems(combo(tensorflow="2.19.0", tf_keras="2.19.1")) == []
    check_versions(versions=GOOD)  # no exception


def test_transformers_5_has_no_tf_classes():
    msg = _one(problems(combo(transformers="5.0.0")))
    assert "no TensorFlow classes" in msg
    assert PIN_TRANSFORMERS in msg
    assert "5.0.0" in msg


def test_transformers_4_56_needs_torch_for_safetensors():
    msg = _one(problems(combo(transformers="4.56.0")))
    assert "safetensors" in msg and "PyTorch" in msg
    assert PIN_TRANSFORMERS in msg
    assert problems(combo(transformers="4.55.0")) != []  # the whole 4.55 .. 4.57 range
    assert problems(combo(transformers="4.57.3")) != []
    # with PyTorch installed the same versions work
    assert problems(combo(transformers="4.56.0", torch="2.5.1")) == []
    assert problems(combo(transformers="4.58.0")) == []


def test_tensorflow_too_old():
    msg = _one(problems(combo(tensorflow="2.15.1")))
    assert "too old" in msg and "2.15.1" in msg
    assert 'tensorflow>=2.16,<2.22' in msg


def test_tensorflow_too_new():
    msg = _one(problems(combo(tensorflow="2.22.0", tf_keras="2.22.0")))
    assert "newer" in msg


def test_tf_keras_missing():
    msg = _one(problems(combo(tensorflow="2.19.0", tf_keras=None)))
    assert "tf-keras==2.19" in msg
    assert "Keras 3" in msg


def test_tf_keras_mismatch():
    msg = _one(problems(combo(tensorflow="2.21.0", tf_keras="2.20.0")))
    assert "does not match" in msg
    assert "2.20.0" in msg and "tf-keras==2.21" in msg


def test_missing_and_too_old_transformers():
    assert "not installed" in _one(problems(combo(transformers=None)))
    assert "too old" in _one(problems(combo(transformers="4.44.2")))
    found = problems(combo(tensorflow=None))
    assert any("TensorFlow is not installed" in m for m in found)


def test_every_message_is_one_line():
    bad = [
        combo(transformers="5.0.0"), combo(transformers="4.56.0"), combo(tensorflow="2.15.1"),
        combo(tensorflow="2.19.0", tf_keras=None), combo(tf_keras="2.20.0"), combo(tensorflow="2.22.0"),
        combo(transformers=None), combo(tensorflow=None, transformers=None),
        combo(tensorflow="2.19.0", tf_keras=None, transformers="5.1.0"),
    ]
    for versions in bad:
        found = problems(versions)
        assert found, versions
        assert all(m and "\n" not in m for m in found), found


def test_several_problems_are_all_reported():
    found = problems(combo(tensorflow="2.19.0", tf_keras=None, transformers="5.1.0"))
    assert len(found) == 2
    assert "tf-keras==2.19" in found[0] and "no TensorFlow classes" in found[1]


def test_check_versions_raises_one_line():
    with pytest.raises(EnvironmentMismatch) as info:
        check_versions(versions=combo(transformers="5.0.0"))
    assert isinstance(info.value, ImportError)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(problems(combo(transformers="5.0.0"))[0])
    assert "restart the kernel" in text


def test_check_versions_bypass(monkeypatch):
    monkeypatch.setenv("COLDSTART_SKIP_VERSION_CHECK", "1")
    check_versions(versions=combo(transformers="5.0.0"))  # no exception
    monkeypatch.setenv("COLDSTART_SKIP_VERSION_CHECK", "0")
    with pytest.raises(EnvironmentMismatch):
        check_versions(versions=combo(transformers="5.0.0"))


def test_installed_environment_passes():
    found = installed_versions()
    assert set(found) >= {"tensorflow", "tf-keras", "transformers", "torch"}
    assert found["tensorflow"] is not None and found["transformers"] is not None
    assert problems(found) == []
    check_versions()


def test_installed_versions_reads_tensorflow_variants(monkeypatch):
    from importlib import metadata

    fake = {"tensorflow-cpu": "2.20.0", "tf-keras": "2.20.1", "transformers": "4.50.0"}

    def version(name):
        if name in fake:
            return fake[name]
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(_versions.metadata, "version", version)
    found = installed_versions()
    assert found == {"tensorflow": "2.20.0", "tf-keras": "2.20.1", "transformers": "4.50.0", "torch": None,
                     "keras": None}
    assert problems(found) == []


# ------------------------------------------------------------------------------------------------
# The import-order guard (fresh interpreters: importing TensorFlow takes a few seconds)
# ------------------------------------------------------------------------------------------------
def _env_without_legacy_flag() -> dict:
    env = dict(os.environ)
    for name in ("TF_USE_LEGACY_KERAS", "COLDSTART_SKIP_VERSION_CHECK"):
        env.pop(name, None)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


@pytest.mark.slow
def test_importing_tensorflow_first_fails_fast():
    proc = subprocess.run(
        [sys.executable, "-c", "import tensorflow; import coldstart"],
        env=_env_without_legacy_flag(), cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert "EnvironmentMismatch" in proc.stderr
    # the message reads "... run `import coldstart` before `import tensorflow`"
    assert re.search(r"import coldstart\W* before", proc.stderr), proc.stderr[-500:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "EnvironmentMismatch: TensorFlow was imported before coldstart" in last  # one line


@pytest.mark.slow
def test_import_sets_legacy_keras_flag():
    proc = subprocess.run(
        [sys.executable, "-c", "import coldstart, os; print(os.environ['TF_USE_LEGACY_KERAS'])"],
        env=_env_without_legacy_flag(), cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"


# ------------------------------------------------------------------------------------------------
# Each bad combination a user meets in practice, faked through installed package metadata (the
# same path `import coldstart` takes): one line, naming the culprit, with a pip command that fixes it
# ------------------------------------------------------------------------------------------------
BAD_COMBINATIONS = {
    # name: (installed distributions, words the one line must hold, the fix it must give)
    "transformers 5 (Colab 2025+)": (
        {"tensorflow": "2.20.0", "tf-keras": "2.20.1", "transformers": "5.0.0"},
        ["transformers 5.0.0", "no TensorFlow classes"], f'pip install "{PIN_TRANSFORMERS}"'),
    "transformers 4.56 without PyTorch": (
        {"tensorflow": "2.20.0", "tf-keras": "2.20.1", "transformers": "4.56.2"},
        ["transformers 4.56.2", "safetensors", "without PyTorch"], f'pip install "{PIN_TRANSFORMERS}"'),
    "Keras 3 without tf-keras": (
        {"tensorflow": "2.20.0", "keras": "3.11.3", "transformers": "4.54.1"},
        ["TensorFlow 2.20.0", "Keras 3", "tf-keras is missing"], 'pip install "tf-keras==2.20.*"'),
    "tf-keras of another minor version": (
        {"tensorflow": "2.20.0", "tf-keras": "2.19.0", "transformers": "4.54.1"},
        ["tf-keras 2.19.0", "does not match TensorFlow 2.20.0"], 'pip install "tf-keras==2.20.*"'),
    "old TensorFlow": (
        {"tensorflow": "2.15.1", "tf-keras": "2.15.1", "transformers": "4.54.1"},
        ["TensorFlow 2.15.1", "too old"], 'pip install "tensorflow>=2.16,<2.22"'),
}


def _fake_installed(monkeypatch, dists: dict) -> None:
    """Make importlib.metadata report exactly ``dists`` as installed."""
    from importlib import metadata

    def version(name):
        if name in dists:
            return dists[name]
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(_versions.metadata, "version", version)


@pytest.mark.parametrize("case", list(BAD_COMBINATIONS))
def test_bad_combination_gives_one_actionable_line(monkeypatch, case):
    dists, words, fix = BAD_COMBINATIONS[case]
    _fake_installed(monkeypatch, dists)
    with pytest.raises(EnvironmentMismatch) as info:
        check_versions()
    line = str(info.value)
    assert "\n" not in line
    for word in words:
        assert word in line, (case, line)
    assert fix in line, (case, line)
    assert line.endswith("(then restart the kernel)")


def test_the_same_versions_with_the_fix_applied_pass(monkeypatch):
    _fake_installed(monkeypatch, {"tensorflow": "2.20.0", "keras": "3.11.3", "tf-keras": "2.20.1",
                                  "transformers": "4.54.1"})
    check_versions()  # no exception: Keras 3 may stay installed beside tf-keras


def test_import_coldstart_fails_fast_on_faked_transformers_5(tmp_path):
    """End to end: a fake ``transformers-5.0.0.dist-info`` first on the path is what the metadata
    lookup finds, so `import coldstart` itself must stop with the one line (without importing TF)."""
    info = tmp_path / "transformers-5.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: transformers\nVersion: 5.0.0\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    env.pop("COLDSTART_SKIP_VERSION_CHECK", None)
    proc = subprocess.run(
        [sys.executable, "-c", "import coldstart"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "coldstart._internal.versions.EnvironmentMismatch: transformers 5.0.0 has no TensorFlow classes")
    assert f'pip install "{PIN_TRANSFORMERS}"' in last


def test_pins_agree_across_package_lock_and_colab_cell():
    """One set of pins: pyproject's ranges are the check's, the lock file passes the check, and the
    Colab setup cell leaves transformers to the package's pin (it adds only tf-keras)."""
    import json

    import tomllib

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert PIN_TRANSFORMERS in deps and _versions.PIN_TENSORFLOW in deps
    lock = {}
    for line in (REPO / "requirements-lock.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            lock[name.strip().lower().replace("_", "-")] = version.split(";")[0].strip()
    assert problems({name: lock.get(name) for name in ("tensorflow", "tf-keras", "transformers", "torch")}) == []
    cell = "".join(json.loads((REPO / "notebooks" / "00_setup.ipynb").read_text())["cells"][1]["source"])
    assert "transformers" not in cell.split("%pip install", 1)[1].split("\n", 1)[0]
