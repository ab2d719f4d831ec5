"""Bad input, one test per case: each ends in a clear error or a defined fallback, and leaves no
partial file in the data folder, the models folder or the Hugging Face cache.

The cases are the table :data:`CASES` (name -> what must happen); docs/bad-input.md (linked from the
README's "When the input is bad") lists the same names (a test checks). Every test runs in a sandbox: empty data,
models and Hub cache folders, no ``COLDSTART_DATA_FILE``, and no network except this machine's
loopback, where a small HTTP server plays the UCI site for the download cases (so pooch's real
HTTP download, hash check and temporary-file handling run).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.server
import io
import os
import re
import socket
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CUTOFF, make_tiny_clean

from coldstart.config import UnusableFolder
from coldstart.data import protocol
from coldstart.data import retail as data
from coldstart.models import encoders

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------
# The sandbox
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Sandbox:
    root: Path
    data: Path  # COLDSTART_DATA_DIR
    models: Path  # COLDSTART_MODELS_DIR
    hub: Path  # the Hugging Face cache
    inputs: Path  # where a test puts the files it feeds in (not checked)

    def leftovers(self) -> list:
        """Every file and folder left in the data, models and Hub cache folders."""
        return sorted(str(p.relative_to(self.root)) for d in (self.data, self.models, self.hub) for p in d.rglob("*"))


def _loopback_only(monkeypatch):
    """Let connections reach 127.0.0.1 only; any other host fails as it does offline."""
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost") and not str(host).startswith("/"):
            raise OSError(101, "Network is unreachable (test sandbox)")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise socket.gaierror(-3, "Temporary failure in name resolution (test sandbox)")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def sandbox(tmp_path, monkeypatch) -> Sandbox:
    box = Sandbox(tmp_path, tmp_path / "data", tmp_path / "models", tmp_path / "hub", tmp_path / "inputs")
    for folder in (box.data, box.models, box.hub, box.inputs):
        folder.mkdir()
    monkeypatch.setenv("COLDSTART_DATA_DIR", str(box.data))
    monkeypatch.setenv("COLDSTART_MODELS_DIR", str(box.models))
    monkeypatch.setenv("HF_HUB_CACHE", str(box.hub))
    for name in ("COLDSTART_DATA_FILE", "COLDSTART_MODEL", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(data, "RETRY_WAIT", 0.0)
    try:
        from huggingface_hub import constants

        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(box.hub))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    except ImportError:  # pragma: no cover
        pass
    _loopback_only(monkeypatch)
    return box


class FakeUCI:
    """A local HTTP server for the data download; ``mode`` is "truncated" (announces the full size,
    sends half and hangs up) or "corrupted" (full size, wrong bytes). Counts the requests."""

    def __init__(self, good: bytes, mode: str):
        self.good, self.mode, self.requests = good, mode, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(outer.good)))
                self.end_headers()
                if outer.mode == "truncated":
                    self.wfile.write(outer.good[: len(outer.good) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self.wfile.write(bytes(b ^ 0xFF for b in outer.good))

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/static/public/352/{data.ZIP_NAME}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------------
def _raw_sample() -> pd.DataFrame:
    """A small raw table in the UCI layout: the tiny cleaned table of conftest, turned back."""
    c = make_tiny_clean()
    return pd.DataFrame({
        "InvoiceNo": c["invoice"], "StockCode": c["item"], "Description": c["description"].str.upper(),
        "Quantity": c["quantity"], "InvoiceDate": c["date"], "UnitPrice": c["price"],
        "CustomerID": c["customer"].astype("float64"), "Country": c["country"],
    }).astype(data.RAW_COLUMNS)


def _use_file(box: Sandbox, monkeypatch, name: str, payload) -> Path:
    """Write ``payload`` (bytes or a DataFrame) to inputs/name and point COLDSTART_DATA_FILE at it."""
    path = box.inputs / name
    if isinstance(payload, pd.DataFrame):
        if name.endswith(".parquet"):
            payload.to_parquet(path, index=False)
        else:
            payload.to_csv(path, index=False)
    else:
        path.write_bytes(payload)
    monkeypatch.setenv("COLDSTART_DATA_FILE", str(path))
    return path


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, text
    return text


# ------------------------------------------------------------------------------------------------
# The cases
# ------------------------------------------------------------------------------------------------
def case_truncated_download(box, monkeypatch):
    _download_fails(box, monkeypatch, "truncated")


def case_corrupted_download(box, monkeypatch):
    _download_fails(box, monkeypatch, "corrupted")


def _download_fails(box, monkeypatch, mode):
    good = b"PK\x03\x04 pretend this is the official zip " * 400
    monkeypatch.setattr(data, "UCI_ZIP_SHA256", hashlib.sha256(good).hexdigest())
    with FakeUCI(good, mode) as site:
        monkeypatch.setattr(data, "UCI_URL", site.url)
        with pytest.raises(data.DataUnavailable) as info:
            data.load_raw(progress=False)
    message = _one_line(info.value)
    assert site.requests == 2, "one retry, then give up"
    assert data.ZIP_NAME in message and "tried twice" in message
    assert site.url in message and "COLDSTART_DATA_FILE" in message  # where to get it by hand
    if mode == "corrupted":
        assert "hash" in message.lower()


def case_corrupted_parquet(box, monkeypatch):
    good = _raw_sample().to_parquet(index=False)
    path = _use_file(box, monkeypatch, "online_retail.parquet", good[: len(good) // 2])
    with pytest.raises(data.DataUnavailable) as info:
        data.load_clean(verbose=False)
    message = _one_line(info.value)
    assert str(path) in message and "truncated or corrupt" in message and "delete it" in message


def case_unreadable_data_file(box, monkeypatch):
    """Permission denied is not damage: the message says so and does not tell the user to delete the
    file. Simulated (the tests may run as root, who reads any file): once where the reader hits the
    error, once where the up-front access check does. ``test_a_data_file_without_read_permission``
    does it for real when not root."""
    path = _use_file(box, monkeypatch, "online_retail.parquet", _raw_sample())

    def denied(source, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(source))

    monkeypatch.setattr(pd, "read_parquet", denied)
    _says_permission_denied(path)
    monkeypatch.undo()
    path = _use_file(box, monkeypatch, "retail.csv", _raw_sample())
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != path and real_access(p, mode, **kw))
    _says_permission_denied(path)


def _says_permission_denied(path: Path) -> None:
    with pytest.raises(data.DataUnavailable) as info:
        data.load_clean(verbose=False)
    message = _one_line(info.value)
    assert str(path) in message and "permission denied" in message and "COLDSTART_DATA_FILE" in message
    assert "truncated or corrupt" not in message and "delete it, then" not in message


def case_bad_data_dir(box, monkeypatch):
    """A COLDSTART_DATA_DIR that is a file, or lies under one, or cannot be written: the error says
    what is wrong with it, and never hides another error (here: a corrupt data file)."""
    a_file = box.inputs / "notes.txt"
    a_file.write_text("not a folder")
    for bad, why in [(a_file, "it is a file, not a folder"), (a_file / "data", f"{a_file} is a file, not a folder")]:
        monkeypatch.setenv("COLDSTART_DATA_DIR", str(bad))
        with pytest.raises(data.DataUnavailable) as info:
            data.load_raw(progress=False)
        message = _one_line(info.value)
        assert f"COLDSTART_DATA_DIR={str(bad)!r} cannot be used: {why}" in message, message
        assert "COLDSTART_DATA_FILE" in message
        with pytest.raises(UnusableFolder, match=f"COLDSTART_DATA_DIR={re.escape(repr(str(bad)))} cannot be used"):
            protocol.load_or_make("test", clean=make_tiny_clean(), verbose=False)
    good = _raw_sample().to_parquet(index=False)
    path = _use_file(box, monkeypatch, "online_retail.parquet", good[: len(good) // 2])
    with pytest.raises(data.DataUnavailable) as info:   # the real error, not one about the folder
        data.load_raw(progress=False)
    assert str(path) in str(info.value) and "truncated or corrupt" in str(info.value)
    # a folder this user cannot write to: said at once, not retried as a network failure
    monkeypatch.delenv("COLDSTART_DATA_FILE")
    monkeypatch.setenv("COLDSTART_DATA_DIR", str(box.data))
    calls = []

    def no_write(dest, progress, downloader=None):
        calls.append(dest)
        raise PermissionError(13, "Permission denied", str(dest / ".tmp_download"))

    monkeypatch.setattr(data, "_fetch_zip", no_write)
    with pytest.raises(data.DataUnavailable) as info:
        data.load_raw(progress=False)
    message = _one_line(info.value)
    assert len(calls) == 1 and f"cannot write the download into {box.data}: permission denied" in message
    assert "COLDSTART_DATA_DIR" in message


def case_missing_column(box, monkeypatch):
    _use_file(box, monkeypatch, "retail.csv", _raw_sample().drop(columns="UnitPrice"))
    with pytest.raises(data.SchemaError, match=r"missing column\(s\) \['UnitPrice'\]") as info:
        data.load_clean(verbose=False)
    _one_line(info.value)


def case_mistyped_column(box, monkeypatch):
    raw = _raw_sample().astype({"Quantity": object})
    raw.loc[4, "Quantity"] = "a dozen"
    _use_file(box, monkeypatch, "retail.csv", raw)
    with pytest.raises(data.SchemaError, match="Quantity") as info:
        data.load_clean(verbose=False)
    assert "a dozen" in _one_line(info.value)


def case_infinite_quantity(box, monkeypatch):
    """A quantity (or customer number) must be a whole number; ``inf`` is none, so the table is refused
    like a mistyped one, however it got there (a float column or the text "inf" in a CSV)."""
    for col in ("Quantity", "CustomerID"):
        raw = _raw_sample().astype({col: "float64"})
        raw.loc[4, col] = np.inf
        _use_file(box, monkeypatch, "retail.parquet", raw)
        with pytest.raises(data.SchemaError, match=col) as info:
            data.load_clean(verbose=False)
        assert "inf" in _one_line(info.value)
    raw = _raw_sample().astype({"Quantity": object})
    raw.loc[4, "Quantity"] = "inf"
    _use_file(box, monkeypatch, "retail.csv", raw)
    with pytest.raises(data.SchemaError, match="'Quantity' should hold whole numbers but holds 1 infinite value"):
        data.load_clean(verbose=False)


def case_infinite_price(box, monkeypatch):
    """Dropped by the cleaning step that drops prices <= 0 and missing ones, and counted there."""
    raw = _raw_sample()
    raw.loc[[4, 5], "UnitPrice"] = [np.inf, -np.inf]
    _use_file(box, monkeypatch, "retail.parquet", raw)
    clean, report = data.load_clean(verbose=False)
    assert np.isfinite(clean["price"]).all() and len(clean) == len(raw) - 2
    assert report.set_index("step").loc["price <= 0", "rows_removed"] == 2


def case_empty_table(box, monkeypatch):
    _use_file(box, monkeypatch, "retail.parquet", _raw_sample().iloc[:0])
    with pytest.raises(data.SchemaError, match="empty") as info:
        data.load_clean(verbose=False)
    _one_line(info.value)


def case_every_invoice_cancelled(box, monkeypatch):
    raw = _raw_sample()
    raw["InvoiceNo"] = "C" + raw["InvoiceNo"]
    _use_file(box, monkeypatch, "retail.parquet", raw)
    with pytest.raises(ValueError, match="'cancellation' would remove all") as info:
        data.load_clean(verbose=False)
    _one_line(info.value)


def case_non_utf8_descriptions(box, monkeypatch):
    """Defined fallback: a file that is not UTF-8 is read as Latin-1 (the widely shared Kaggle copy
    is), with a warning; every byte decodes, so nothing crashes and the catalog keeps the text."""
    raw = _raw_sample()
    raw.loc[raw["StockCode"] == "10001", "Description"] = "CAFÉ AU LAIT MUG £2"
    path = box.inputs / "retail.csv"
    raw.to_csv(path, index=False, encoding="latin-1")
    monkeypatch.setenv("COLDSTART_DATA_FILE", str(path))
    with pytest.warns(UserWarning, match="not UTF-8; reading it as Latin-1"):
        clean, _ = data.load_clean(verbose=False)
    assert clean.loc[clean["line"] == 0, "description"].item() == "CAFÉ AU LAIT MUG £2"
    assert data.build_catalog(clean).loc["10001", "text"] == "café au lait mug £2"


def case_cutoff_outside_the_data(box, monkeypatch):
    with pytest.raises(ValueError) as info:
        protocol.make_split(make_tiny_clean(), cutoff="2030-01-01")
    assert "outside the data's range (2011-01-10 to 2011-06-01)" in _one_line(info.value)


def case_k_larger_than_any_basket(box, monkeypatch):
    with pytest.raises(ValueError) as info:
        protocol.make_split(make_tiny_clean(), cutoff=TINY_CUTOFF, ks=(1, 3, 50))
    message = _one_line(info.value)
    assert "k=50 is larger than any new user's first basket" in message
    assert "the largest has 5 distinct items" in message and "k <= 5" in message


def case_context_size_outside_the_usable_range(box, monkeypatch):
    """A size that is not a whole number, a repeated one, or one past every basket of its segment's
    users would drop a segment or fill it twice; each is refused with the usable range."""
    for kwargs, start, then in [
        (dict(ks=(1.5, 3)), "Context sizes must be whole numbers", "the usable range is 1 to 5"),
        (dict(ks=(1, 3, 3)), "Context sizes must differ", "ks=(1, 3, 3)"),
        (dict(warm_k=5), "warm_k=5 is larger", "the usable range is 1 to 4"),
        (dict(cold_k=6), "cold_k=6 is larger", "the usable range is 1 to 5"),
    ]:
        with pytest.raises(ValueError) as info:
            protocol.make_split(make_tiny_clean(), cutoff=TINY_CUTOFF, **kwargs)
        message = _one_line(info.value)
        assert message.startswith(start) and then in message, message


def case_context_of_unknown_item_ids(box, monkeypatch):
    """Defined fallback: unknown ids are dropped; with nothing left, text models have nothing to say
    (a row of -inf, counted as a miss by the evaluation), item-kNN falls back to popularity."""
    from coldstart.data import Cases, tfidf_vectors
    from coldstart.models.baselines import ItemKNN, Popularity, TextSimilarity
    from coldstart.models.retrieval import EncodedContextSimilarity

    split = protocol.make_split(make_tiny_clean(), cutoff=TINY_CUTOFF)
    context = split.positions(["NOPE", "99999", ""])
    assert context.shape == (0,)
    batch = Cases(context=[context], country=np.array(["France"]),
                  date=np.array(["2011-04-01"], dtype="datetime64[ns]"))
    assert np.isneginf(TextSimilarity(tfidf_vectors(split.texts())).score(batch)).all()
    rec = EncodedContextSimilarity(None, None, split.texts(), np.eye(split.n_items, dtype=np.float32))
    assert np.isneginf(rec.score(batch)).all()  # and the (absent) encoder was never called
    knn, pop = ItemKNN(split).score(batch)[0], Popularity(split).score(batch)[0]
    assert list(np.argsort(-knn, kind="stable")[:3]) == list(np.argsort(-pop, kind="stable")[:3])
    # the live recommender of notebook 07: popularity in the user's country, and it says why
    from coldstart.models.baselines import CountryPopularity
    from coldstart.serving import Recommender

    cp = CountryPopularity(split)
    countries = sorted(cp.countries, key=cp.countries.get)
    live = Recommender(None, None, split.item_ids, split.texts(), np.eye(split.n_items, dtype=np.float32),
                       popularity=cp.glob, countries=countries, country_popularity=cp.share)
    shown = live.recommend(["NOPE", "99999"], country="France", k=3)
    assert len(shown) == 3 and shown.attrs["fallback"] == "country"
    assert shown.attrs["unknown_items"] == ["NOPE", "99999"]
    assert any("ignored 2 unknown item id(s)" in note for note in shown.attrs["notes"])


def case_model_path_that_does_not_exist(box, monkeypatch):
    with pytest.raises(encoders.ModelUnavailable) as info:
        encoders.load_encoder(str(box.inputs / "my-fine-tuned-model"))
    message = _one_line(info.value)
    assert "my-fine-tuned-model" in message and "does not exist" in message


def case_offline_data_not_cached(box, monkeypatch):
    with pytest.raises(data.DataUnavailable) as info:
        data.load_raw(progress=False)
    message = _one_line(info.value)
    assert "tried twice" in message and data.UCI_URL in message and str(box.data) in message


def case_offline_model_not_cached(box, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(encoders.ModelUnavailable) as info:
        encoders.load_encoder("sentence-transformers/all-MiniLM-L6-v2")
    message = _one_line(info.value)
    assert "not available offline" in message and "make fetch" in message and str(box.models) in message


def case_model_download_interrupted(box, monkeypatch):
    """`make fetch` copies a model into a temporary folder and renames it only when complete."""
    import huggingface_hub

    from coldstart.tools import fetch

    def interrupted(repo_id, local_dir, **kwargs):
        (Path(local_dir) / "config.json").write_text("{}")
        (Path(local_dir) / "model.safetensors").write_bytes(b"\0" * 1000)
        raise OSError("Connection reset by peer")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", interrupted)
    with pytest.raises(OSError, match="Connection reset"):
        fetch.fetch_model("sentence-transformers/all-MiniLM-L6-v2")


def _day_first_csv(box, monkeypatch, days_up_to_12: bool):
    raw = _raw_sample()
    if days_up_to_12:   # every day at most 12: the order cannot be told
        when = raw["InvoiceDate"]
        raw["InvoiceDate"] = when - pd.to_timedelta((when.dt.day - 1) // 12 * 12, unit="D")
    truth = raw["InvoiceDate"].copy()
    raw["InvoiceDate"] = raw["InvoiceDate"].dt.strftime("%d/%m/%Y %H:%M")
    _use_file(box, monkeypatch, "retail.csv", raw)
    return truth


def case_ambiguous_day_first_dates(box, monkeypatch):
    truth = _day_first_csv(box, monkeypatch, days_up_to_12=True)
    assert (truth.dt.day <= 12).all()
    with pytest.raises(data.SchemaError, match="COLDSTART_DATE_FORMAT='%d/%m/%Y %H:%M'") as info:
        data.load_raw(progress=False)
    assert "cannot be told" in _one_line(info.value)
    monkeypatch.setenv("COLDSTART_DATE_FORMAT", "%d/%m/%Y %H:%M")
    assert data.load_raw(progress=False)["InvoiceDate"].tolist() == truth.tolist()


def case_day_first_dates_past_the_12th(box, monkeypatch):
    truth = _day_first_csv(box, monkeypatch, days_up_to_12=False)
    assert data.load_raw(progress=False)["InvoiceDate"].tolist() == truth.tolist()


def _tool_error(main, argv, status: int = 2) -> str:
    """Run a tool's ``main(argv)``, expect it to exit with ``status``; return its one-line error."""
    err = io.StringIO()
    with pytest.raises(SystemExit) as info, contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        main(argv)
    assert info.value.code == status, err.getvalue()
    lines = err.getvalue().splitlines()
    assert lines and lines[-1].count("error:") == 1 and "Traceback" not in err.getvalue(), err.getvalue()
    return lines[-1]


def _no_measuring(monkeypatch):
    """``coldstart.tools.speed`` with every measurement failing the test: checks must come first."""
    from coldstart.tools import speed

    def measured(*args, **kwargs):
        raise AssertionError("the benchmark measured before checking its arguments")

    for name in ("benchmark_training", "benchmark_serving", "benchmark_batching", "benchmark_step_breakdown",
                 "machine", "matmul_peak"):
        monkeypatch.setattr(speed, name, measured)
    return speed


def case_bad_profile_name_in_a_tool(box, monkeypatch):
    """``make fetch PROFILE=fast`` or ``make benchmark PROFILE=fast`` (or ``COLDSTART_PROFILE=fast``):
    one line naming the profiles, nothing fetched or measured."""
    from coldstart.tools import fetch

    speed = _no_measuring(monkeypatch)
    monkeypatch.setattr(fetch, "fetch_data", lambda *a, **k: pytest.fail("fetched with a bad profile"))
    for main in (fetch.main, speed.main):
        assert "Unknown profile 'fast'" in _tool_error(main, ["--profile", "fast"])
        monkeypatch.setenv("COLDSTART_PROFILE", "fast")
        assert "one of smoke, cpu, gpu" in _tool_error(main, [])
        monkeypatch.delenv("COLDSTART_PROFILE")


def case_benchmark_arguments_it_cannot_use(box, monkeypatch):
    """Checked before minutes of measuring, not after: counts below 1, and an ``--out`` that is a
    folder, lies under a file, or holds something other than a JSON object of results."""
    speed = _no_measuring(monkeypatch)
    a_file = box.inputs / "notes.txt"
    a_file.write_text("my notes")
    for argv, says in [
        (["--repeats", "0"], "--repeats: must be at least 1, got 0"),
        (["--repeats", "-3"], "--repeats: must be at least 1, got -3"),
        (["--pairs", "many"], "--pairs: expected a whole number, got 'many'"),
        (["--users", "0", "--only", "serving"], "--users: must be at least 1"),
        (["--out", str(box.inputs)], f"--out {box.inputs} is a folder"),
        (["--out", str(a_file / "bench.json")], f"no file can be written in {a_file}"),
        (["--out", str(a_file)], f"--out {a_file} exists but cannot be read as JSON"),
    ]:
        assert says in _tool_error(speed.main, ["--profile", "smoke", *argv]), argv
    assert a_file.read_text() == "my notes"


def case_unwritable_output_folder(box, monkeypatch):
    """``make fetch`` with a models folder it cannot write: one line naming COLDSTART_MODELS_DIR, said
    before the data download (minutes) rather than after; a folder whose permissions refuse the
    write is simulated (the tests may run as root)."""
    from coldstart import config
    from coldstart.tools import fetch

    monkeypatch.setattr(fetch, "fetch_data", lambda *a, **k: pytest.fail("downloaded before checking the folder"))
    a_file = box.inputs / "notes.txt"
    a_file.write_text("my notes")
    monkeypatch.setenv("COLDSTART_MODELS_DIR", str(a_file))
    error = _tool_error(fetch.main, ["--profile", "smoke", "--models", "someone/some-model"], status=1)
    assert f"COLDSTART_MODELS_DIR={str(a_file)!r} cannot be used: it is a file, not a folder" in error
    monkeypatch.setenv("COLDSTART_MODELS_DIR", str(box.models))
    real_mkstemp = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if Path(dir) == box.models:
            raise PermissionError(13, "Permission denied", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(config.tempfile, "mkstemp", read_only)
    error = _tool_error(fetch.main, ["--profile", "smoke", "--models", "someone/some-model"], status=1)
    assert "COLDSTART_MODELS_DIR" in error and "no file can be written there (Permission denied)" in error
    assert a_file.read_text() == "my notes"


def case_report_help(box, monkeypatch):
    """``python -m coldstart.tools.report --help`` describes the tool instead of printing the table;
    an unknown option is an error instead of being ignored."""
    from coldstart.tools import report

    out = io.StringIO()
    with pytest.raises(SystemExit) as info, contextlib.redirect_stdout(out):
        report.main(["--help"])
    assert info.value.code == 0 and out.getvalue().startswith("usage:") and report.BEGIN not in out.getvalue()
    assert "unrecognized arguments: --profle" in _tool_error(report.main, ["--profle", "gpu"])


@dataclasses.dataclass(frozen=True)
class Case:
    run: Callable
    outcome: str  # what the user sees (README lists the same)


CASES = {
    "truncated download": Case(case_truncated_download, "one retry, then DataUnavailable naming online+retail.zip"),
    "corrupted download": Case(case_corrupted_download,
                               "hash mismatch: one retry, then DataUnavailable naming the file"),
    "corrupted parquet": Case(case_corrupted_parquet, "DataUnavailable naming the file: delete it"),
    "unreadable data file": Case(case_unreadable_data_file, "DataUnavailable: permission denied, naming the file"),
    "bad COLDSTART_DATA_DIR": Case(case_bad_data_dir, "DataUnavailable or UnusableFolder saying what is wrong"),
    "missing column": Case(case_missing_column, "SchemaError naming the column"),
    "mistyped column": Case(case_mistyped_column, "SchemaError naming the column and the value"),
    "infinite quantity": Case(case_infinite_quantity, "SchemaError naming the column and the value"),
    "infinite price": Case(case_infinite_price, "dropped by the price <= 0 step, counted in its report"),
    "empty table": Case(case_empty_table, "SchemaError: the table is empty"),
    "every invoice cancelled": Case(case_every_invoice_cancelled, "ValueError naming the cleaning step"),
    "non-UTF-8 descriptions": Case(case_non_utf8_descriptions, "warning, read as Latin-1"),
    "cutoff outside the data": Case(case_cutoff_outside_the_data, "ValueError with the data's date range"),
    "k larger than any basket": Case(case_k_larger_than_any_basket, "ValueError with the largest usable k"),
    "context size outside the usable range": Case(case_context_size_outside_the_usable_range,
                                                  "ValueError with the usable range"),
    "context of only unknown item ids": Case(case_context_of_unknown_item_ids,
                                             "ids dropped; -inf (text), popularity (item-kNN, live recommender)"),
    "model path that does not exist": Case(case_model_path_that_does_not_exist, "ModelUnavailable naming the path"),
    "offline, data not cached": Case(case_offline_data_not_cached, "DataUnavailable: how to get the file by hand"),
    "offline, model not cached": Case(case_offline_model_not_cached, "ModelUnavailable: run make fetch"),
    "bad profile name in a tool": Case(case_bad_profile_name_in_a_tool, "one line naming the profiles"),
    "benchmark arguments it cannot use": Case(case_benchmark_arguments_it_cannot_use,
                                              "one line, before measuring"),
    "unwritable output folder": Case(case_unwritable_output_folder, "one line naming the folder, before downloading"),
    "report --help": Case(case_report_help, "usage; an unknown option is an error"),
    "model download interrupted": Case(case_model_download_interrupted, "the error; no half model in models/"),
    "ambiguous day-first dates": Case(case_ambiguous_day_first_dates,
                                      "SchemaError: set COLDSTART_DATE_FORMAT (or use ISO dates)"),
    "day-first dates past the 12th": Case(case_day_first_dates_past_the_12th, "read day first"),
}
NEEDS_TF = {"model path that does not exist", "offline, model not cached"}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, sandbox, monkeypatch):
    if name in NEEDS_TF:
        pytest.importorskip("tensorflow")
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        CASES[name].run(sandbox, monkeypatch)
    # nothing half-written: no zip, parquet cache, temporary file or partial model anywhere
    assert sandbox.leftovers() == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root reads a file whatever its mode; the 'unreadable data file' case simulates it")
def test_a_data_file_without_read_permission(sandbox, monkeypatch):
    path = _use_file(sandbox, monkeypatch, "online_retail.parquet", _raw_sample())
    path.chmod(0)
    try:
        _says_permission_denied(path)
    finally:
        path.chmod(0o644)


def test_docs_list_every_case():
    doc = (ROOT / "docs" / "bad-input.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/bad-input.md)" in readme, "README.md links docs/bad-input.md"
    for name in CASES:
        assert f"| {name} |" in doc, f"docs/bad-input.md does not list {name!r}"
