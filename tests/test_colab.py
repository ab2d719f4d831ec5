"""A Colab-like check of the notebooks' setup cells, in fresh virtual environments (slow: ~3 min each).

What a current Colab image has preinstalled and what breaks the course there:

* transformers 5 (no TensorFlow classes at all);
* TensorFlow 2.20 with Keras 3 and no tf-keras (the transformers TF classes need Keras 2);
* a kernel that may import TensorFlow before the course sets ``TF_USE_LEGACY_KERAS=1``.

This test builds such an environment (TensorFlow 2.20, Keras 3, the latest transformers 5.x,
IPython; ``--system-site-packages`` off, so nothing of this machine's ``.venv`` leaks in), copies ONE
notebook alone into an empty folder, and runs its setup cell (``cells[1]``, identical in every
notebook) in IPython with a fake ``google.colab`` module, the course repository pointed at a local
clone of this repository (``COLDSTART_COURSE_REPO``; the clone holds the last *commit*) and the
course folder at a temporary path (``COLDSTART_COURSE_DIR``). Then, in the same kernel, as a
notebook would: ``import coldstart`` must pass its version check with the pinned versions (Colab's
TensorFlow kept, tf-keras of the same minor version, transformers < 4.55), and the shared MiniLM
must load from ``COLDSTART_MODELS_DIR`` and give unit-length sentence vectors. A second test does
the same for notebook 11, whose second setup cell installs the ``keras3`` extra (KerasHub and a
tensorflow-text of Colab's TensorFlow minor version): Colab's TensorFlow must stay, and KerasHub must
load the shared MiniLM and embed as the transformers path does.

PyTorch, which real Colab also has, is left out (it is gigabytes); without it the pinned
transformers must still load safetensors weights into TensorFlow, which is the harder case.

Packages are installed from a wheel folder only (``--no-index``), ``$COLDSTART_COLAB_WHEELS``
(default ``~/.cache/coldstart/colab-wheels``). When the folder lacks a wheel the test fills it from
PyPI; with PyPI unreachable (CI runs offline) it is skipped with that reason. Run it once online on
the CI machine (about 850 MB of wheels) and later runs need no network.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import models_folder

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
WHEELS = Path(os.environ.get("COLDSTART_COLAB_WHEELS", "~/.cache/coldstart/colab-wheels")).expanduser()
NOTEBOOK = "00_setup.ipynb"
# What a Colab image has and the course does not want (Keras 3 comes with TensorFlow 2.20).
COLAB_PREINSTALLED = ["tensorflow==2.20.*", "transformers>=5,<6", "ipython"]
# What the setup cell will ask for on top of it (so an online run fills the wheel folder for CI).
COURSE_NEEDS = ["tensorflow==2.20.*", "tf-keras~=2.20.0", "setuptools>=64", "wheel", "ipython"]
# What notebook 11's second setup cell adds: the keras3 extra, tensorflow-text of Colab's TensorFlow minor.
KERAS3_NEEDS = ["tensorflow==2.20.*", "tensorflow-text~=2.20.0"]


def _pypi_reachable(timeout: float = 5.0) -> bool:
    host = urlparse(os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple").hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _course_requirements(extra: str = "") -> list:
    """The package's own dependencies, or those of one of its extras, read from pyproject.toml (so
    the wheel folder covers them)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["optional-dependencies"][extra] if extra else project["dependencies"]


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def _wheel_folder_covers(reqs) -> subprocess.CompletedProcess:
    """Resolve ``reqs`` from the wheel folder alone (no network; fast when everything is there)."""
    return _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-index", "--find-links", str(WHEELS),
                 "--dest", str(WHEELS), *reqs], timeout=900)


def _fill(*requirement_sets) -> dict:
    """pip settings that install from the wheel folder only, after filling it from PyPI if needed.

    Offline first: when the folder already covers every set (a rerun, or CI with a filled folder)
    PyPI is never asked. Otherwise the missing wheels are downloaded, or, with PyPI unreachable, the
    test is skipped with the reason.
    """
    WHEELS.mkdir(parents=True, exist_ok=True)
    for reqs in requirement_sets:
        if _wheel_folder_covers(reqs).returncode == 0:
            continue
        if not _pypi_reachable():
            pytest.skip(f"PyPI is unreachable and {WHEELS} does not hold wheels for {' '.join(reqs[:3])} ...: "
                        "run tests/test_colab.py once online (or set COLDSTART_COLAB_WHEELS to a filled folder)")
        proc = _run([sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(WHEELS), *reqs], timeout=1800)
        assert proc.returncode == 0, proc.stderr[-2000:]
    # PIP_NO_COMPILE: no .pyc compilation of TensorFlow's thousands of files (a minute of CPU here)
    return {"PIP_FIND_LINKS": str(WHEELS), "PIP_NO_INDEX": "1", "PIP_NO_COMPILE": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


@pytest.fixture(scope="module")
def wheels() -> dict:
    """What the course's setup cell needs (a folder without the keras3 extra's wheels still runs this)."""
    return _fill(COLAB_PREINSTALLED, COURSE_NEEDS + _course_requirements())


@pytest.fixture(scope="module")
def keras3_wheels(wheels) -> dict:
    """What notebook 11's second setup cell adds."""
    return _fill(COURSE_NEEDS + _course_requirements() + KERAS3_NEEDS + _course_requirements("keras3"))


def _colab_kernel(tmp_path, wheels, notebook: str, setup_cells, check: str) -> tuple:
    """Build the Colab-like environment, copy ``notebook`` alone into an empty folder, run its
    ``setup_cells`` in one IPython kernel as Colab would, then ``check`` (code that prints one line
    ``RESULT <json>``). Returns ``(versions before, the RESULT dict, the lone folder, timings)``."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the course (the setup cell clones it)")
    models = models_folder()
    if not (models / "all-MiniLM-L6-v2" / "config.json").is_file():
        pytest.skip(f"the shared MiniLM is not in {models} (set COLDSTART_MODELS_DIR)")
    timings = {}

    # 1. A fresh environment with what Colab preinstalls
    start = time.perf_counter()
    venv = tmp_path / "colab-venv"
    proc = _run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    assert proc.returncode == 0, proc.stderr
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COLDSTART_", "TF_", "PYTHON", "VIRTUAL_ENV", "PIP_", "HF_", "TRANSFORMERS_"))}
    env.update(wheels, PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    proc = _run([str(python), "-m", "pip", "install", "--quiet", *COLAB_PREINSTALLED], env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    timings["colab image"] = time.perf_counter() - start
    before = _versions(python, env)
    assert before["transformers"].startswith("5.") and before["keras"].startswith("3.")
    assert before["tensorflow"].startswith("2.20.") and before["tf-keras"] is None

    # 2. One notebook alone in an empty folder, its setup cells run as Colab would
    alone = tmp_path / "content"
    alone.mkdir()
    shutil.copy(ROOT / "notebooks" / notebook, alone / notebook)
    course_dir = tmp_path / "course" / "coldstart-bert"
    env.update(
        COLDSTART_COURSE_REPO=str(ROOT), COLDSTART_COURSE_DIR=str(course_dir),
        COLDSTART_MODELS_DIR=str(models), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
    )
    driver = tmp_path / "colab_kernel.py"
    driver.write_text(textwrap.dedent(f"""
        import json, sys, time, types
        sys.modules["google.colab"] = types.ModuleType("google.colab")  # what the setup cell looks for
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        cells = json.load(open({notebook!r}))["cells"]
        start = time.perf_counter()
        for index in {list(setup_cells)!r}:
            shell.run_cell("".join(cells[index]["source"])).raise_error()
        setup_seconds = time.perf_counter() - start
        shell.run_cell({textwrap.dedent(check)!r}).raise_error()
        print(f"SETUP_SECONDS {{setup_seconds:.1f}}")
    """))
    start = time.perf_counter()
    proc = _run([str(python), str(driver)], cwd=alone, env=env, timeout=1800)
    timings["setup cells + check"] = time.perf_counter() - start
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    result = json.loads(next(line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")))
    result["course_dir"] = str(course_dir)
    print("timings (s): " + ", ".join(f"{k}={v:.0f}" for k, v in timings.items()), proc.stdout.splitlines()[-1])
    return before, result, alone


def _assert_course_stack(before: dict, result: dict) -> None:
    """Colab's TensorFlow kept, tf-keras of its minor version in use, the pinned transformers."""
    assert result["tensorflow"] == before["tensorflow"], "the setup cells must not replace Colab's TensorFlow"
    assert result["tf_keras"].startswith("2.20."), result
    assert result["keras"].startswith("3."), "Keras 3 may stay installed beside tf-keras"
    major, minor = (int(x) for x in result["transformers"].split(".")[:2])
    assert (major, minor) >= (4, 45) and (major, minor) < (4, 55), result
    assert result["legacy"] == "1" and result["tf_keras_module"].startswith("tf_keras"), result
    assert result["coldstart_file"].startswith(result["course_dir"]), result
    assert result["cwd"] == str(Path(result["course_dir"]) / "notebooks")


_STACK = """
    import json, os, numpy as np
    from importlib.metadata import version
    import coldstart  # the version check runs here
    from coldstart.models import encoders
    import tensorflow as tf
    stack = dict(tensorflow=version("tensorflow"), tf_keras=version("tf-keras"), keras=version("keras"),
                 transformers=version("transformers"), legacy=os.environ.get("TF_USE_LEGACY_KERAS"),
                 tf_keras_module=tf.keras.__name__, coldstart_file=coldstart.__file__, cwd=os.getcwd())
    TEXTS = ["red retrospot cake stand", "zinc heart lattice t-light holder"]
    tokenizer, model = encoders.load_encoder()
    vectors = encoders.encode(TEXTS, tokenizer, model)
"""


def test_setup_cell_on_a_colab_like_image(tmp_path, wheels):
    before, result, alone = _colab_kernel(tmp_path, wheels, NOTEBOOK, [1], _STACK + """
    print("RESULT " + json.dumps(dict(stack, shape=list(vectors.shape), norms=np.linalg.norm(vectors, axis=1).tolist(),
                                      cosine=float(vectors[0] @ vectors[1]), model_class=type(model).__name__)))
    """)
    # The pinned versions, Colab's TensorFlow kept, Keras 2 in use, the first model loaded
    _assert_course_stack(before, result)
    assert result["model_class"] == "TFBertModel" and result["shape"] == [2, 384]
    assert all(abs(n - 1.0) < 1e-4 for n in result["norms"]) and 0.0 < result["cosine"] < 0.99
    # nothing was written next to the lone notebook
    assert sorted(p.name for p in alone.iterdir()) == [NOTEBOOK]


def test_keras3_chapter_setup_cells_on_a_colab_like_image(tmp_path, keras3_wheels):
    """Notebook 11's two setup cells: the course, then its keras3 extra with a tensorflow-text of
    Colab's TensorFlow minor version. Colab's TensorFlow and Keras 3 stay; KerasHub loads the shared
    MiniLM and embeds as the transformers path does, in the same kernel."""
    notebook = "11_keras3_kerashub.ipynb"
    before, result, alone = _colab_kernel(tmp_path, keras3_wheels, notebook, [1, 2], _STACK + """
    from coldstart.models import keras3 as K3
    hub_tokenizer, backbone = K3.load_backbone()
    hub = K3.encode(TEXTS, hub_tokenizer, backbone)
    print("RESULT " + json.dumps(dict(stack, keras_hub=version("keras-hub"), tensorflow_text=version("tensorflow-text"),
                                      backbone=type(backbone).__name__, shape=list(hub.shape),
                                      largest_difference=float(np.abs(hub - vectors).max()))))
    """)
    _assert_course_stack(before, result)
    assert result["tensorflow_text"].startswith("2.20."), result   # the minor version of Colab's TensorFlow
    assert result["keras_hub"].startswith("0.32."), result
    assert result["backbone"] == "BertBackbone" and result["shape"] == [2, 384], result
    assert result["largest_difference"] < 1e-3, result            # the same embeddings as transformers'
    assert sorted(p.name for p in alone.iterdir()) == [notebook]


def _versions(python: Path, env: dict) -> dict:
    code = ("import json; from importlib import metadata as m\n"
            "def v(n):\n try: return m.version(n)\n except m.PackageNotFoundError: return None\n"
            "print(json.dumps({n: v(n) for n in ('tensorflow', 'keras', 'tf-keras', 'transformers')}))")
    proc = _run([str(python), "-c", code], env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)
