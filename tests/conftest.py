"""Shared fixtures: the real UCI table and its protocol splits (built once per session), and a tiny
hand-made cleaned table whose cold-start cases are known by hand.

The real table is looked up in ``$COLDSTART_DATA_FILE``, else in ``../../shared/data/`` next to
the repository; tests that need it are skipped (with the reason) when it is missing. Nothing here
touches the network.

The tiny table (cutoff ``TINY_CUTOFF`` = 2011-03-01)
------------------------------------------------------
Ten items ``10001`` .. ``10010`` (catalog positions 0 .. 9, the catalog is sorted by code); items
``10008``, ``10009`` and ``10010`` are first sold after the cutoff, so they are the cold items.

====  =========  ===================  ========  =============================================
cust  country    invoice / date       period    items in line order
====  =========  ===================  ========  =============================================
1     UK         536001 2011-01-10    train     10001 10002 10003
2     UK         536002 2011-02-01    train     10001 10003 10004 10005 10006 10007
7     France     536003 2011-02-15    train     10002
1     UK         545001 2011-03-05    window    10004 10001 10005 10008
3     France     545002 2011-03-10    window    10002 10002 10006 10008 10003 10007 (10002 twice)
4     Germany    545003 2011-03-20    window    10005 10010
1     UK         545004 2011-04-01    window    10002 10009
5     UK         545005 2011-04-10    window    10001 10003 10004
7     France     545006 2011-04-15    window    10002 10003
3     France     545007 2011-05-01    window    10009 10001 10006
6     UK         545008 2011-05-10    window    10006
4     Germany    545009 2011-06-01    window    10010 10004
====  =========  ===================  ========  =============================================

Customers 1, 2, 7 are seen before the cutoff (1 and 7 return: the warm segment); 3, 4, 5, 6 are
new. The expected cases of every segment are written out in ``tests/test_protocol.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_CUTOFF = "2011-03-01"

_TEXT = {
    "10001": "RED RETROSPOT CAKE STAND",
    "10002": "RED RETROSPOT TEA SET",
    "10003": "WHITE HANGING HEART T-LIGHT HOLDER",
    "10004": "ZINC METAL HEART DECORATION",
    "10005": "JUMBO BAG RED RETROSPOT",
    "10006": "LUNCH BAG BLACK SKULL.",
    "10007": "PACK OF 72 RETROSPOT CAKE CASES",
    "10008": "RED RETROSPOT MUG",
    "10009": "VINTAGE DOILY JUMBO BAG",
    "10010": "ZINC HEART LATTICE T-LIGHT HOLDER",
}
_COUNTRY = {1: "United Kingdom", 2: "United Kingdom", 3: "France", 4: "Germany", 5: "United Kingdom",
            6: "United Kingdom", 7: "France"}
_INVOICES = [
    ("536001", "2011-01-10 09:00", 1, ["10001", "10002", "10003"]),
    ("536002", "2011-02-01 10:00", 2, ["10001", "10003", "10004", "10005", "10006", "10007"]),
    ("536003", "2011-02-15 11:00", 7, ["10002"]),
    ("545001", "2011-03-05 09:00", 1, ["10004", "10001", "10005", "10008"]),
    ("545002", "2011-03-10 12:00", 3, ["10002", "10002", "10006", "10008", "10003", "10007"]),
    ("545003", "2011-03-20 13:00", 4, ["10005", "10010"]),
    ("545004", "2011-04-01 09:30", 1, ["10002", "10009"]),
    ("545005", "2011-04-10 10:00", 5, ["10001", "10003", "10004"]),
    ("545006", "2011-04-15 14:00", 7, ["10002", "10003"]),
    ("545007", "2011-05-01 15:00", 3, ["10009", "10001", "10006"]),
    ("545008", "2011-05-10 16:00", 6, ["10006"]),
    ("545009", "2011-06-01 08:00", 4, ["10010", "10004"]),
]


def make_tiny_clean() -> pd.DataFrame:
    """The tiny cleaned table described in the module docstring (same columns/dtypes as clean())."""
    rows = []
    for invoice, date, cust, items in _INVOICES:
        for item in items:
            line = len(rows)
            rows.append(dict(
                invoice=invoice, item=item, description=_TEXT[item], quantity=1 + line % 4,
                date=pd.Timestamp(date), price=1.25 + 0.5 * (int(item) % 7), customer=cust,
                country=_COUNTRY[cust], line=line,
            ))
    df = pd.DataFrame(rows)
    return df.astype({
        "invoice": "string", "item": "string", "description": "string", "quantity": "int64",
        "date": "datetime64[ns]", "price": "float64", "customer": "int64", "country": "string",
        "line": "int64",
    })


def real_data_file() -> Path:
    """Where the real UCI table is: ``$COLDSTART_DATA_FILE`` (relative to the repo) or ``../shared``."""
    env = os.environ.get("COLDSTART_DATA_FILE")
    if env:
        path = Path(env).expanduser()
        return path if path.is_absolute() else (REPO / path).resolve()
    return Path(__file__).resolve().parents[2] / "shared/data/online_retail.parquet"


def models_folder() -> Path:
    """Folder with local model copies (``all-MiniLM-L6-v2/``)."""
    env = os.environ.get("COLDSTART_MODELS_DIR")
    return Path(env).expanduser() if env else Path(__file__).resolve().parents[2] / "shared/models"


@pytest.fixture(scope="session")
def data_file() -> Path:
    path = real_data_file()
    if not path.is_file():
        pytest.skip(f"the UCI Online Retail table is not at {path} (set COLDSTART_DATA_FILE to a local copy)")
    return path


@pytest.fixture(scope="session")
def clean(data_file) -> pd.DataFrame:
    from coldstart.data import retail as data

    out = data.load_clean(data_file, verbose=False)
    return out[0] if isinstance(out, tuple) else out  # load_clean returns (clean_df, report)


@pytest.fixture(scope="session")
def split(clean):
    from coldstart.data import protocol

    return protocol.make_split(clean)


@pytest.fixture(scope="session")
def valid_split(clean):
    from coldstart.data import protocol

    return protocol.make_validation_split(clean)


@pytest.fixture
def tiny_clean() -> pd.DataFrame:
    """A fresh copy per test (tests may shuffle or cut it)."""
    return make_tiny_clean()


@pytest.fixture
def tiny_split(tiny_clean):
    from coldstart.data import protocol

    return protocol.make_split(tiny_clean, cutoff=TINY_CUTOFF)
