"""Tests of coldstart.data.retail: loading (local files, simulated downloads), validation, cleaning, catalog.

No test touches the network: downloads are simulated with a fake pooch downloader that writes
bytes, so pooch's own hash check and temporary-file handling still run.
"""

from __future__ import annotations

import functools
import hashlib
import io
import socket
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import real_data_file

from coldstart.data import retail as data
from coldstart.data.text import normalise_text, price_band, with_price_band

REAL_FILE = real_data_file()
needs_real = pytest.mark.skipif(
    not REAL_FILE.is_file(),
    reason=f"the UCI table is not at {REAL_FILE} (set COLDSTART_DATA_FILE to a local copy)",
)


# ------------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------------


def _forbidden(*args, **kwargs):
    raise AssertionError("the network was touched")


@pytest.fixture
def no_network(monkeypatch):
    """Make every way out to the network fail loudly."""
    monkeypatch.setattr(socket.socket, "connect", _forbidden)
    monkeypatch.setattr(urllib.request, "urlopen", _forbidden)
    try:
        import requests

        monkeypatch.setattr(requests.Session, "request", _forbidden)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture
def data_home(tmp_path, monkeypatch, no_network):
    """An empty data dir, no COLDSTART_DATA_FILE, no network, no retry wait."""
    home = tmp_path / "data"
    home.mkdir()
    monkeypatch.setenv("COLDSTART_DATA_DIR", str(home))
    monkeypatch.delenv("COLDSTART_DATA_FILE", raising=False)
    monkeypatch.setattr(data, "RETRY_WAIT", 0.0)
    return home


def _sample() -> pd.DataFrame:
    """14 raw rows, each of the last 8 failing exactly one cleaning step (see the comments)."""
    t = pd.Timestamp("2010-12-01 08:26")
    m = pd.Timedelta(minutes=1)
    rows = [
        ("536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, t, 2.55, 17850.0, "United Kingdom"),
        ("536365", "71053", "WHITE METAL LANTERN", 6, t, 3.39, 17850.0, "United Kingdom"),
        ("536366", "22633", "HAND WARMER UNION JACK", 6, t + 2 * m, 1.85, 17850.0, "United Kingdom"),
        ("536367", "84879", "ASSORTED COLOUR BIRD ORNAMENT", 32, t + 8 * m, 1.69, 13047.0, "United Kingdom"),
        # lower-case code and a variant description: same item 85123A after cleaning
        ("536368", "85123a", "WHITE HANGING  HEART T-LIGHT HOLDER.", 2, t + 34 * m, 2.95, 13047.0, "United Kingdom"),
        ("536369", "22633", "HAND WARMER UNION JACK", 1, t + 35 * m, 1.85, np.nan, "United Kingdom"),  # no customer
        ("C536370", "71053", "WHITE METAL LANTERN", -1, t + 36 * m, 3.39, 17850.0, "United Kingdom"),  # cancelled
        ("536371", "22633", "HAND WARMER UNION JACK", -3, t + 37 * m, 1.85, 13047.0, "United Kingdom"),  # qty < 0
        ("536372", "84879", "ASSORTED COLOUR BIRD ORNAMENT", 1, t + 38 * m, 0.0, 13047.0, "United Kingdom"),  # free
        ("536373", "POST", "POSTAGE", 1, t + 39 * m, 18.0, 12583.0, "France"),  # postage
        ("536373", "23444", "Next Day Carriage", 1, t + 39 * m, 15.0, 12583.0, "France"),  # service
        ("536374", "gift_0001_10", "Dotcomgiftshop Gift Voucher £10.00", 1, t + 40 * m, 8.5, 12583.0, "France"),
        ("536375", "21730", "   ", 1, t + 41 * m, 4.25, 12583.0, "France"),  # blank description
        # sold before everything else: must come first after sorting by date
        ("536376", "21730", "GLASS STAR FROSTED T-LIGHT HOLDER", 4, t - 26 * m, 4.25, 12583.0, "France"),
    ]
    df = pd.DataFrame(rows, columns=list(data.RAW_COLUMNS))
    return df.astype(data.RAW_COLUMNS)


SAMPLE_REPORT = [
    ("raw", 0, 14),
    ("missing customer", 1, 13),
    ("cancellation", 1, 12),
    ("quantity <= 0", 1, 11),
    ("price <= 0", 1, 10),
    ("non-product code", 3, 7),
    ("missing description", 1, 6),
]


def _as_official_xlsx_bytes(df: pd.DataFrame) -> bytes:
    """The sample as the official xlsx stores it: numeric-looking codes as numbers."""
    excel = df.astype(object).where(df.notna(), None)
    for col in ("InvoiceNo", "StockCode"):
        excel[col] = [int(v) if str(v).isdigit() else v for v in df[col]]
    buf = io.BytesIO()
    excel.to_excel(buf, index=False, engine="openpyxl")
    return buf.getvalue()


def _zip_bytes(xlsx: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(data.XLSX_NAME, xlsx)
    return buf.getvalue()


@pytest.fixture(scope="module")
def sample_zip() -> bytes:
    return _zip_bytes(_as_official_xlsx_bytes(_sample()))


def _fake_download(monkeypatch, payload: bytes = b"", error: Exception | None = None) -> list:
    """Route the download through pooch with a fake downloader; return the list of its calls."""
    calls = []

    def downloader(url, output_file, pooch_obj=None, **kwargs):
        calls.append(url)
        if error is not None:
            raise error
        Path(output_file).write_bytes(payload)

    real_fetch = data._fetch_zip
    monkeypatch.setattr(data, "_fetch_zip", functools.partial(real_fetch, downloader=downloader))
    return calls


# ------------------------------------------------------------------------------------------------
# the real table
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_raw():
    if not REAL_FILE.is_file():
        pytest.skip(f"the UCI table is not at {REAL_FILE} (set COLDSTART_DATA_FILE to a local copy)")
    return data.load_raw(REAL_FILE)


@pytest.fixture(scope="module")
def real_clean(real_raw):
    return data.clean(real_raw, verbose=False)


@needs_real
def test_load_raw_real_file_matches_readme_checksums_without_network(no_network, monkeypatch, tmp_path):
    import pooch

    monkeypatch.setattr(pooch, "retrieve", _forbidden)
    monkeypatch.setattr(data, "_fetch_zip", _forbidden)
    monkeypatch.setenv("COLDSTART_DATA_DIR", str(tmp_path))
    df = data.load_raw(REAL_FILE)
    assert list(df.columns) == list(data.RAW_COLUMNS)
    assert ({c: str(t) for c, t in df.dtypes.items()}
            == {c: str(pd.Series(dtype=k).dtype) for c, k in data.RAW_COLUMNS.items()})
    assert len(df) == 541_909
    assert df["Quantity"].sum() == 5_176_450
    assert df["UnitPrice"].sum() == pytest.approx(2_498_803.97, abs=0.01)
    assert df["CustomerID"].notna().sum() == 406_829
    assert df["InvoiceNo"].nunique() == 25_900
    assert df["StockCode"].nunique() == 4_070
    assert df["CustomerID"].nunique() == 4_372
    assert df["Description"].isna().sum() == 1_454
    assert list(tmp_path.iterdir()) == []  # a local file writes no cache


@needs_real
def test_env_var_is_used_when_no_path(no_network, monkeypatch, tmp_path):
    monkeypatch.setenv("COLDSTART_DATA_FILE", str(REAL_FILE))
    monkeypatch.setenv("COLDSTART_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(data, "_fetch_zip", _forbidden)
    assert len(data.load_raw()) == 541_909


def test_relative_env_var_is_taken_from_project_root(tmp_path, monkeypatch, no_network):
    course = tmp_path / "course"
    (course / "notebooks").mkdir(parents=True)
    _sample().to_csv(tmp_path / "shared.csv", index=False)
    monkeypatch.setenv("COLDSTART_HOME", str(course))
    monkeypatch.setenv("COLDSTART_DATA_DIR", str(course / "data"))
    monkeypatch.setenv("COLDSTART_DATA_FILE", "../shared.csv")
    monkeypatch.chdir(course / "notebooks")  # where notebooks run: ../shared.csv is not there
    monkeypatch.setattr(data, "_fetch_zip", _forbidden)
    _assert_same_as_sample(data.load_raw())


@needs_real
def test_clean_counts_on_real_data(real_clean, capsys):
    clean_df, report = real_clean
    print(report.to_string(index=False))
    observed = list(report.itertuples(index=False, name=None))
    assert observed == [
        ("raw", 0, 541_909),
        ("missing customer", 135_080, 406_829),
        ("cancellation", 8_905, 397_924),
        ("quantity <= 0", 0, 397_924),
        ("price <= 0", 40, 397_884),
        ("non-product code", 1_643, 396_241),
        ("missing description", 0, 396_241),
    ]
    # each step's rows_left is the previous rows_left minus what it removed
    left = report["rows_left"].to_numpy()
    assert (left[:-1] - report["rows_removed"].to_numpy()[1:] == left[1:]).all()
    assert len(clean_df) == left[-1]


@needs_real
def test_clean_table_is_clean(real_clean):
    df, _ = real_clean
    assert list(df.columns) == ["invoice", "item", "description", "quantity", "date", "price", "customer", "country",
                                "line"]
    assert str(df["quantity"].dtype) == "int64" and str(df["customer"].dtype) == "int64"
    assert str(df["line"].dtype) == "int64" and str(df["price"].dtype) == "float64"
    assert str(df["date"].dtype) == "datetime64[ns]"
    assert not df["invoice"].str.upper().str.startswith("C").any()
    assert (df["quantity"] > 0).all() and (df["price"] > 0).all()
    assert df["customer"].notna().all()
    assert df["item"].str.fullmatch(r"\d{5}[A-Z]*").all()
    assert not df["item"].isin(list(data.SERVICE_CODES)).any()
    assert (df["description"].str.strip() != "").all()
    assert df["line"].is_unique
    assert df.equals(df.sort_values(["date", "invoice", "line"]).reset_index(drop=True))
    assert df["item"].nunique() == 3_656 and df["customer"].nunique() == 4_334
    assert df["invoice"].nunique() == 18_399


@needs_real
def test_clean_line_points_back_to_raw_row(real_raw, real_clean):
    df, _ = real_clean
    picked = real_raw.iloc[df["line"].to_numpy()]
    assert (picked["StockCode"].str.upper().to_numpy() == df["item"].to_numpy()).all()
    assert (picked["Quantity"].to_numpy() == df["quantity"].to_numpy()).all()


@needs_real
def test_catalog_on_real_data(real_clean):
    df, _ = real_clean
    cat = data.build_catalog(df)
    assert len(cat) == 3_656 == df["item"].nunique()
    assert cat.index.is_unique and cat.index.is_monotonic_increasing and cat.index.name == "item"
    assert list(cat.columns) == ["text", "first_sold", "median_price", "n_invoices", "n_customers", "n_lines"]
    assert (cat["text"] == cat["text"].map(normalise_text)).all()
    assert (cat["text"] == cat["text"].str.lower()).all() and (cat["text"] != "").all()
    assert cat.loc["85123A", "text"] == "white hanging heart t-light holder"
    first = df["item"].map(cat["first_sold"])
    assert (first <= df["date"]).all()
    assert (df.groupby("item")["date"].min() == cat["first_sold"]).all()
    assert cat["n_lines"].sum() == len(df)
    assert (cat["n_invoices"] <= cat["n_lines"]).all() and (cat["n_customers"] <= cat["n_invoices"]).all()


# ------------------------------------------------------------------------------------------------
# cleaning and catalog on the small sample
# ------------------------------------------------------------------------------------------------


def test_clean_sample_counts_order_and_columns(capsys):
    df, report = data.clean(_sample(), verbose=True)
    assert list(report.itertuples(index=False, name=None)) == SAMPLE_REPORT
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 1 + len(SAMPLE_REPORT)  # a header and one line per step
    assert printed[2].split()[-2:] == ["1", "13"]  # missing customer: 1 removed, 13 left
    assert df["line"].tolist() == [13, 0, 1, 2, 3, 4]  # sorted by date, then file order
    assert df["item"].tolist() == ["21730", "85123A", "71053", "22633", "84879", "85123A"]
    assert df["customer"].tolist() == [12583, 17850, 17850, 17850, 13047, 13047]
    assert df.loc[5, "description"] == "WHITE HANGING  HEART T-LIGHT HOLDER."  # kept as in the data


def test_clean_all_cancelled_names_the_step():
    df = _sample()
    df["InvoiceNo"] = "C" + df["InvoiceNo"].str.lstrip("C")
    with pytest.raises(ValueError, match="cancellation"):
        data.clean(df, verbose=False)


def test_load_clean_from_csv(tmp_path, no_network, monkeypatch):
    path = tmp_path / "sample.csv"
    _sample().to_csv(path, index=False)
    monkeypatch.setattr(data, "_fetch_zip", _forbidden)
    df, report = data.load_clean(path, verbose=False)
    assert report["rows_left"].iloc[-1] == 6 and len(df) == 6


def test_build_catalog_sample_values():
    df, _ = data.clean(_sample(), verbose=False)
    cat = data.build_catalog(df)
    assert cat.index.tolist() == ["21730", "22633", "71053", "84879", "85123A"]
    row = cat.loc["85123A"]
    # both spellings normalise to the same text, so they count together
    assert row["text"] == "white hanging heart t-light holder"
    assert row["n_lines"] == 2 and row["n_invoices"] == 2 and row["n_customers"] == 2
    assert row["median_price"] == pytest.approx(2.75)
    assert row["first_sold"] == pd.Timestamp("2010-12-01 08:26")


def test_build_catalog_text_is_most_frequent_then_first_seen():
    t = pd.Timestamp("2011-01-01")
    df = pd.DataFrame({
        "invoice": ["1", "2", "3", "4", "5"],
        "item": ["A1", "A1", "A1", "B2", "B2"],
        "description": ["Old name", "NEW NAME", "new  name.", "Second", "First"],
        "quantity": 1,
        "date": [t, t, t, t + pd.Timedelta(days=1), t],
        "price": [1.0, 2.0, 3.0, 4.0, 5.0],
        "customer": [1, 2, 2, 3, 3],
        "country": "UK",
        "line": range(5),
    })
    cat = data.build_catalog(df)
    assert cat.loc["A1", "text"] == "new name"  # 2 votes after normalising beats 1
    assert cat.loc["B2", "text"] == "second"  # a tie: the first row in table order wins
    assert cat.loc["B2", "first_sold"] == t


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  LUNCH BAG  BLACK SKULL. ", "lunch bag black skull"),
        ("FANCY FONT BIRTHDAY CARD,", "fancy font birthday card"),
        ('RETRO "TEA FOR ONE"', 'retro "tea for one"'),
        ("SMALL FOLDING SCISSOR(POINTED EDGE)", "small folding scissor(pointed edge)"),
        ("Gift Voucher £10.00", "gift voucher £10.00"),
        ("CAFÉ\tCRÈME  BOWL ?!", "café crème bowl"),
        (None, ""),
    ],
)
def test_normalise_text(raw, expected):
    assert normalise_text(raw) == expected


# ------------------------------------------------------------------------------------------------
# local files
# ------------------------------------------------------------------------------------------------


def _assert_same_as_sample(df: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(df, _sample())


@pytest.mark.parametrize("name", ["sample.csv", "sample.csv.gz", "sample.parquet"])
def test_local_csv_and_parquet_round_trip(tmp_path, no_network, monkeypatch, name):
    monkeypatch.setattr(data, "_fetch_zip", _forbidden)
    path = tmp_path / name
    if name.endswith(".parquet"):
        _sample().to_parquet(path)
    else:
        _sample().to_csv(path, index=False)
    _assert_same_as_sample(data.load_raw(path))


def test_local_xlsx_and_zip_round_trip(tmp_path, no_network, monkeypatch, sample_zip):
    monkeypatch.setattr(data, "_fetch_zip", _forbidden)
    xlsx = tmp_path / data.XLSX_NAME
    xlsx.write_bytes(_as_official_xlsx_bytes(_sample()))
    _assert_same_as_sample(data.load_raw(xlsx))  # numeric codes come back as "536365"
    archive = tmp_path / "online+retail.zip"
    archive.write_bytes(sample_zip)
    _assert_same_as_sample(data.load_raw(archive))


def test_latin1_csv_is_read(tmp_path, no_network):
    path = tmp_path / "kaggle.csv"
    _sample().to_csv(path, index=False, encoding="latin-1")
    with pytest.warns(UserWarning, match="Latin-1"):
        df = data.load_raw(path)
    assert df.loc[11, "Description"] == "Dotcomgiftshop Gift Voucher £10.00"


def test_missing_local_file_is_reported(tmp_path, no_network):
    with pytest.raises(data.DataUnavailable, match="nope.parquet"):
        data.load_raw(tmp_path / "nope.parquet")


def test_corrupted_parquet_names_the_file(tmp_path, no_network):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(data.DataUnavailable, match="broken.parquet"):
        data.load_raw(path)


def test_corrupted_cache_names_the_file_and_does_not_download(data_home, monkeypatch):
    monkeypatch.setattr(data, "_fetch_zip", _forbidden)
    cache = data_home / data.CACHE_NAME
    cache.write_bytes(_sample().to_parquet()[:100])  # a truncated parquet
    with pytest.raises(data.DataUnavailable, match=data.CACHE_NAME) as info:
        data.load_raw()
    assert "delete it" in str(info.value)


# ------------------------------------------------------------------------------------------------
# simulated downloads
# ------------------------------------------------------------------------------------------------


def test_download_verifies_caches_and_reuses(data_home, monkeypatch, sample_zip):
    monkeypatch.setattr(data, "UCI_ZIP_SHA256", hashlib.sha256(sample_zip).hexdigest())
    calls = _fake_download(monkeypatch, sample_zip)
    _assert_same_as_sample(data.load_raw(progress=False))
    assert calls == [data.UCI_URL]
    assert sorted(p.name for p in data_home.iterdir()) == sorted([data.ZIP_NAME, data.CACHE_NAME])
    _assert_same_as_sample(pd.read_parquet(data_home / data.CACHE_NAME))
    _assert_same_as_sample(data.load_raw(progress=False))  # from the cache
    assert len(calls) == 1


def test_download_wrong_bytes_retries_once_then_fails_cleanly(data_home, monkeypatch, sample_zip):
    monkeypatch.setattr(data, "UCI_ZIP_SHA256", hashlib.sha256(sample_zip).hexdigest())
    (data_home / data.ZIP_NAME).write_bytes(sample_zip[:50])  # an earlier, interrupted manual copy
    calls = _fake_download(monkeypatch, sample_zip[:-100])  # truncated download
    with pytest.raises(data.DataUnavailable) as info:
        data.load_raw(progress=False)
    message = str(info.value)
    assert len(calls) == 2
    assert data.ZIP_NAME in message and data.UCI_URL in message and "COLDSTART_DATA_FILE" in message
    assert "hash" in message.lower() and "\n" not in message
    assert list(data_home.iterdir()) == []  # no partial zip, temp file or cache left behind


def test_download_network_error_retries_once(data_home, monkeypatch):
    import requests

    calls = _fake_download(monkeypatch, error=requests.ConnectionError("no route to host"))
    with pytest.raises(data.DataUnavailable, match="no route to host"):
        data.load_raw(progress=False)
    assert len(calls) == 2
    assert list(data_home.iterdir()) == []


def test_download_recovers_on_retry(data_home, monkeypatch, sample_zip):
    monkeypatch.setattr(data, "UCI_ZIP_SHA256", hashlib.sha256(sample_zip).hexdigest())
    payloads = [b"garbage", sample_zip]
    calls = []

    def downloader(url, output_file, pooch_obj=None):
        calls.append(url)
        Path(output_file).write_bytes(payloads[len(calls) - 1])

    monkeypatch.setattr(data, "_fetch_zip", functools.partial(data._fetch_zip, downloader=downloader))
    _assert_same_as_sample(data.load_raw(progress=False))
    assert len(calls) == 2


def test_failed_cache_write_leaves_no_partial_file(data_home, monkeypatch, sample_zip):
    monkeypatch.setattr(data, "UCI_ZIP_SHA256", hashlib.sha256(sample_zip).hexdigest())
    calls = _fake_download(monkeypatch, sample_zip)
    real_to_parquet = pd.DataFrame.to_parquet

    def half_write(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_write)
    with pytest.raises(OSError, match="disk full"):
        data.load_raw(progress=False)
    assert [p.name for p in data_home.iterdir()] == [data.ZIP_NAME]  # the verified zip only

    monkeypatch.setattr(pd.DataFrame, "to_parquet", real_to_parquet)
    _assert_same_as_sample(data.load_raw(progress=False))  # rebuilt from the zip, no new download
    assert len(calls) == 1


def test_manually_downloaded_zip_is_used_offline(data_home, monkeypatch, sample_zip):
    monkeypatch.setattr(data, "UCI_ZIP_SHA256", hashlib.sha256(sample_zip).hexdigest())
    monkeypatch.setattr(data, "_fetch_zip", _forbidden)
    (data_home / data.ZIP_NAME).write_bytes(sample_zip)
    _assert_same_as_sample(data.load_raw(download=False))
    assert (data_home / data.CACHE_NAME).is_file()


def test_offline_with_nothing_local_says_how_to_fix(data_home, monkeypatch):
    monkeypatch.setattr(data, "_fetch_zip", _forbidden)
    with pytest.raises(data.DataUnavailable) as info:
        data.load_raw(download=False)
    message = str(info.value)
    assert isinstance(info.value, RuntimeError) and "\n" not in message
    assert data.UCI_URL in message and "COLDSTART_DATA_FILE" in message and str(data_home) in message
    assert list(data_home.iterdir()) == []


# ------------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------------


def test_missing_column_is_named():
    with pytest.raises(data.SchemaError, match="UnitPrice"):
        data.validate_raw(_sample().drop(columns="UnitPrice"))


@pytest.mark.parametrize(
    "column, bad",
    [("Quantity", "lots"), ("InvoiceDate", "last tuesday"), ("UnitPrice", "cheap"), ("CustomerID", "anon")],
)
def test_mistyped_column_is_named(column, bad):
    df = _sample().astype({column: object})
    df.loc[3, column] = bad
    with pytest.raises(data.SchemaError, match=column) as info:
        data.validate_raw(df)
    assert isinstance(info.value, ValueError) and bad in str(info.value)


def test_fractional_quantity_is_rejected():
    df = _sample().astype({"Quantity": "float64"})
    df.loc[0, "Quantity"] = 1.5
    with pytest.raises(data.SchemaError, match="Quantity"):
        data.validate_raw(df)


def test_safe_coercions():
    df = _sample().astype(object)
    df["InvoiceNo"] = [int(v) if v.isdigit() else v for v in _sample()["InvoiceNo"]]
    df["StockCode"] = [float(v) if v.isdigit() else v for v in _sample()["StockCode"]]
    df["CustomerID"] = [str(v) if v == v else "" for v in _sample()["CustomerID"]]
    df["InvoiceDate"] = _sample()["InvoiceDate"].dt.strftime("%Y-%m-%d %H:%M:%S")
    df["Quantity"] = _sample()["Quantity"].astype(str)
    df["extra"] = 1
    _assert_same_as_sample(data.validate_raw(df))


def test_empty_table_is_an_error():
    with pytest.raises(data.SchemaError, match="empty"):
        data.validate_raw(_sample().iloc[:0])


def test_non_utf8_descriptions_do_not_crash(tmp_path):
    df = _sample().astype({"Description": object})
    df.loc[0, "Description"] = b"CAF\xc9 MUG"  # Latin-1 bytes
    df.loc[1, "Description"] = "CAFÃ‰ MUG"  # mojibake: kept as it is
    df.loc[2, "Description"] = "BAD \udcc9 SURROGATE"  # undecodable leftover
    raw = data.validate_raw(df)
    assert raw.loc[0, "Description"] == "CAF\ufffd MUG"
    assert raw.loc[1, "Description"] == "CAFÃ‰ MUG"
    assert raw.loc[2, "Description"] == "BAD ? SURROGATE"
    raw.to_parquet(tmp_path / "ok.parquet")  # writable as UTF-8
    clean_df, _ = data.clean(df, verbose=False)
    cat = data.build_catalog(clean_df)
    assert cat.loc["85123A", "text"] == "caf\ufffd mug"  # a 1-1 tie: line 0 is sold first
    assert cat.loc["71053", "text"] == "cafã‰ mug"


@pytest.mark.parametrize("price, words", [
    (0.0, "under one pound"), (0.99, "under one pound"), (1.0, "one to two pounds"), (4.99, "two to five pounds"),
    (5.0, "five to ten pounds"), (9.99, "five to ten pounds"), (10.0, "over ten pounds"), (165, "over ten pounds"),
    (float("nan"), ""), (None, ""), (pd.NA, ""), (np.float32(1.5), "one to two pounds"),
    (np.int64(3), "two to five pounds"),
])
def test_price_band_words_by_the_band_edges(price, words):
    assert price_band(price) == words


def test_with_price_band_appends_the_band_and_rejects_what_is_not_a_price():
    assert with_price_band(["cake stand", "gift tag", "mystery"], [12.75, 0.85, None]) == [
        "cake stand , over ten pounds", "gift tag , under one pound", "mystery"]
    for bad in [-2.0, float("inf")]:
        with pytest.raises(ValueError, match="finite and not negative"):
            with_price_band(["refund"], [bad])
    for bad in ["12", True]:
        with pytest.raises(ValueError, match="must be a number"):
            price_band(bad)
    with pytest.raises(ValueError, match="2 texts but 1 prices"):
        with_price_band(["a", "b"], [1.0])
    out = with_price_band(np.array(["a", "b"]), pd.array([0.5, None], dtype="Float64"))
    assert out == ["a , under one pound", "b"] and all(type(t) is str for t in out)
