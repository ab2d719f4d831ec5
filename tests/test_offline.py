"""Offline workshop mode: `make fetch` once online, then the course with the network off.

* ``coldstart.tools.fetch`` (what ``make fetch`` runs) puts the data file into ``data/`` and the profile's
  model into ``models/``; a second call is a no-op that needs no network. The Hub and the UCI site
  are played by fakes (a copy of the shared MiniLM, a small zip with pooch's real hash check).
* With exactly that layout, no ``COLDSTART_DATA_FILE``, an empty Hugging Face cache,
  ``HF_HUB_OFFLINE=1`` and every non-loopback connection refused inside the notebook kernels
  (a ``sitecustomize`` on the kernels' path), notebooks 00 and 01 run to the end through the course
  runner (slow: about a minute): data, protocol, model loading and encoding use local paths only.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import models_folder, real_data_file

from coldstart.data import retail as data
from coldstart.tools import fetch

ROOT = Path(__file__).resolve().parents[1]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SHARED_MODELS = models_folder()  # read before any fixture points COLDSTART_MODELS_DIR elsewhere

BLOCK_NETWORK = textwrap.dedent("""
    # Loaded at interpreter start (tests/test_offline.py): only this machine's loopback is reachable.
    import socket
    _connect, _getaddrinfo = socket.socket.connect, socket.getaddrinfo
    _LOCAL = ("127.0.0.1", "::1", "localhost")

    def connect(self, address):
        if isinstance(address, tuple) and address[0] not in _LOCAL:
            raise OSError(101, "Network is unreachable (offline test)")
        return _connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in _LOCAL and host is not None:
            raise socket.gaierror(-3, "Temporary failure in name resolution (offline test)")
        return _getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.getaddrinfo = connect, getaddrinfo
""")


def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def workshop(tmp_path, monkeypatch):
    """An empty course folder layout: data/, models/, an empty Hub cache; no local data file."""
    folders = {name: tmp_path / name for name in ("data", "models", "hub")}
    for folder in folders.values():
        folder.mkdir()
    monkeypatch.setenv("COLDSTART_DATA_DIR", str(folders["data"]))
    monkeypatch.setenv("COLDSTART_MODELS_DIR", str(folders["models"]))
    monkeypatch.setenv("HF_HUB_CACHE", str(folders["hub"]))
    for name in ("COLDSTART_DATA_FILE", "COLDSTART_MODEL", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(data, "RETRY_WAIT", 0.0)
    return folders


def test_make_fetch_fills_data_and_models_then_needs_no_network(workshop, monkeypatch, capsys):
    shared = SHARED_MODELS / "all-MiniLM-L6-v2"
    if not (shared / "config.json").is_file():
        pytest.skip(f"no local MiniLM at {shared} (set COLDSTART_MODELS_DIR)")
    from test_data import _as_official_xlsx_bytes, _sample, _zip_bytes

    # the UCI site: a small zip in the official layout, checked by pooch against its SHA-256
    payload = _zip_bytes(_as_official_xlsx_bytes(_sample()))
    monkeypatch.setattr(data, "UCI_ZIP_SHA256", hashlib.sha256(payload).hexdigest())
    downloads = []

    def downloader(url, output_file, pooch_obj=None, **kwargs):
        downloads.append(url)
        Path(output_file).write_bytes(payload)

    monkeypatch.setattr(data, "_fetch_zip", functools.partial(data._fetch_zip, downloader=downloader))

    # the Hub: copies the files snapshot_download would fetch, honouring allow_patterns
    import huggingface_hub

    hub_calls = []

    def snapshot_download(repo_id, local_dir, allow_patterns=None, **kwargs):
        hub_calls.append(repo_id)
        for path in shared.rglob("*"):
            rel = path.relative_to(shared).as_posix()
            if path.is_file() and any(fnmatch.fnmatch(rel, p) for p in allow_patterns or ["*"]):
                (Path(local_dir) / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, Path(local_dir) / rel)
        return local_dir

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)

    assert fetch.main(["--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "Ready for offline use" in out
    assert downloads == [data.UCI_URL] and hub_calls == [MODEL]
    assert sorted(p.name for p in workshop["data"].iterdir()) == [data.ZIP_NAME, data.CACHE_NAME]
    local = workshop["models"] / "all-MiniLM-L6-v2"
    got = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "1_Pooling/config.json"} <= set(got)
    assert "README.md" not in got  # only what the encoder needs
    assert [p.name for p in workshop["models"].iterdir()] == ["all-MiniLM-L6-v2"]  # no temporary folder left

    # the second time, offline: everything is found locally, nothing is fetched
    _no_network(monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert fetch.main(["--profile", "smoke"]) == 0
    assert len(downloads) == 1 and len(hub_calls) == 1
    assert "already local" in capsys.readouterr().out
    from coldstart.models.encoders import resolve_model

    assert resolve_model(MODEL) == str(local)


@pytest.mark.slow
def test_notebooks_run_with_the_network_off(tmp_path):
    """Notebooks 00 and 01 in a workshop layout, with every non-loopback connection refused."""
    data_file, models = real_data_file(), SHARED_MODELS
    if not data_file.is_file() or not (models / "all-MiniLM-L6-v2" / "config.json").is_file():
        pytest.skip("needs the shared data file and MiniLM (COLDSTART_DATA_FILE, COLDSTART_MODELS_DIR)")
    # the layout `make fetch` leaves: data/online_retail.parquet and models/all-MiniLM-L6-v2/
    (tmp_path / "data").mkdir()
    shutil.copyfile(data_file, tmp_path / "data" / data.CACHE_NAME)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "all-MiniLM-L6-v2").symlink_to(models / "all-MiniLM-L6-v2")
    (tmp_path / "hub").mkdir()
    site = tmp_path / "offline-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_NETWORK)

    env = {k: v for k, v in os.environ.items() if k not in ("COLDSTART_DATA_FILE", "COLDSTART_MODEL")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]), COLDSTART_HOME=str(ROOT),
        COLDSTART_DATA_DIR=str(tmp_path / "data"), COLDSTART_MODELS_DIR=str(tmp_path / "models"),
        COLDSTART_RUNS=str(tmp_path / "runs"), HF_HOME=str(tmp_path / "hub"), HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1", COLDSTART_QUIET_PROGRESS="1",
    )
    # the guard itself works: a download attempt in that environment fails
    probe = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('pypi.org', 443), 5)"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0 and "offline test" in probe.stderr

    proc = subprocess.run([sys.executable, "-m", "coldstart.tools.course", "--profile", "smoke", "--only", "00", "01"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    for name in ("00_setup.ipynb", "01_data_preparation.ipynb"):
        assert (tmp_path / "runs" / "notebooks" / name).is_file()
    # nothing was downloaded: the Hub cache is still empty, no zip appeared in data/
    assert [p for p in (tmp_path / "hub").rglob("*") if p.is_file()] == []
    assert not (tmp_path / "data" / data.ZIP_NAME).exists()
