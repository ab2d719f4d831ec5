"""Bad input, one test per case: each ends in a clear error or a defined fallback, and leaves no
partial file in the data folder, the models folder or the Hugging Face cache.

The cases are the table :data:`CASES` (name -> what must happen); docs/bad-input.md (linked from the
README's "When the input is bad") lists the same names (a test checks). Every test runs in a sandbox: empty data,
models and Hub cache folders, no ``COLDSTART_DATA_FILE``, and no network except this machine's
loopback, where a small HTTP server plays the UCI site for the download cases (so pooch's real
HTTP download, hash check and temporary-file handling run).
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import socket
import threading
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CUTOFF, make_tiny_clean

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


@dataclasses.dataclass(frozen=True)
class Case:
    run: Callable
    outcome: str  # what the user sees (README lists the same)


CASES = {
    "truncated download": Case(case_truncated_download, "one retry, then DataUnavailable naming online+retail.zip"),
    "corrupted download": Case(case_corrupted_download,
                               "hash mismatch: one retry, then DataUnavailable naming the file"),
    "corrupted parquet": Case(case_corrupted_parquet, "DataUnavailable naming the file: delete it"),
    "missing column": Case(case_missing_column, "SchemaError naming the column"),
    "mistyped column": Case(case_mistyped_column, "SchemaError naming the column and the value"),
    "empty table": Case(case_empty_table, "SchemaError: the table is empty"),
    "every invoice cancelled": Case(case_every_invoice_cancelled, "ValueError naming the cleaning step"),
    "non-UTF-8 descriptions": Case(case_non_utf8_descriptions, "warning, read as Latin-1"),
    "cutoff outside the data": Case(case_cutoff_outside_the_data, "ValueError with the data's date range"),
    "k larger than any basket": Case(case_k_larger_than_any_basket, "ValueError with the largest usable k"),
    "context of only unknown item ids": Case(case_context_of_unknown_item_ids,
                                             "ids dropped; -inf (text), popularity (item-kNN, live recommender)"),
    "model path that does not exist": Case(case_model_path_that_does_not_exist, "ModelUnavailable naming the path"),
    "offline, data not cached": Case(case_offline_data_not_cached, "DataUnavailable: how to get the file by hand"),
    "offline, model not cached": Case(case_offline_model_not_cached, "ModelUnavailable: run make fetch"),
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


def test_docs_list_every_case():
    doc = (ROOT / "docs" / "bad-input.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/bad-input.md)" in readme, "README.md links docs/bad-input.md"
    for name in CASES:
        assert f"| {name} |" in doc, f"docs/bad-input.md does not list {name!r}"
