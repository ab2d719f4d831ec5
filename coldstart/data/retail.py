"""Get, check and clean the UCI *Online Retail* table, and build the item catalog.

The data
--------
Real transactions of a UK online gift shop, 2010-12-01 to 2011-12-09 (UCI dataset 352, CC BY 4.0;
see ``data/README.md`` for the citation). One row is one *line* of an invoice: a product, a
quantity and a unit price. The course treats an invoice as a basket and a customer's invoices, in
time order, as their history.

Where the table comes from (:func:`load_raw`, first match wins)
---------------------------------------------------------------
1. the ``path`` argument (a .parquet, .csv, .csv.gz, .xlsx or the official .zip);
2. the environment variable ``COLDSTART_DATA_FILE`` (same formats; a relative path is looked up
   from the project root first, then from the working directory);
3. the parquet cache ``data_dir()/online_retail.parquet`` written by an earlier download;
4. a download of the official zip into ``data_dir()`` (checked against its SHA-256), read once
   from the xlsx inside it (slow, once) and cached as parquet (fast).

A local file never touches the network. Offline with nothing local, :class:`DataUnavailable` says
in one line how to fix it.

What the rest of the course uses
--------------------------------
:func:`load_clean` (= :func:`load_raw` then :func:`clean`) gives the cleaned table with friendly
column names (``invoice, item, description, quantity, date, price, customer, country, line``) and
a report of how many rows each cleaning step removed. :func:`build_catalog` turns a cleaned table
into one row per item with its text.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import time
import warnings
import zipfile
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import pandas as pd

from .._internal.io import atomic_path
from .._internal.progress import quiet
from ..config import UnusableFolder, data_dir, project_root
from .text import most_frequent_text

UCI_URL = "https://archive.ics.uci.edu/static/public/352/online+retail.zip"
# SHA-256 of the official zip (23,715,478 bytes, holding "Online Retail.xlsx").
UCI_ZIP_SHA256 = "f5385cbb54bbebf7196389109c6b0621faab0c304e3702548165e71c84aede8b"
ZIP_NAME = "online+retail.zip"  # the name a browser gives the download, so a manual copy is found
XLSX_NAME = "Online Retail.xlsx"
CACHE_NAME = "online_retail.parquet"
ENV_FILE = "COLDSTART_DATA_FILE"
RETRY_WAIT = 3.0  # seconds before the one retry of a failed download

# The 8 raw columns and the dtype load_raw/validate_raw guarantee. Text columns use pandas'
# "string" dtype (missing values are pd.NA) on every pandas version, as in the shared parquet.
RAW_COLUMNS = {
    "InvoiceNo": "string",
    "StockCode": "string",
    "Description": "string",
    "Quantity": "int64",
    "InvoiceDate": "datetime64[ns]",
    "UnitPrice": "float64",
    "CustomerID": "float64",
    "Country": "string",
}

PathLike = Union[str, os.PathLike]


class DataUnavailable(RuntimeError):
    """The table cannot be obtained (offline, missing or unreadable file); the message says how to fix it."""


class SchemaError(ValueError):
    """A column is missing or has values of an unusable type; the message names the column."""


def _fix_hint() -> str:
    """The one-line fix shown whenever the data cannot be obtained."""
    # data_dir(create=False): this hint goes into other errors' messages and must not raise itself
    # (a bad COLDSTART_DATA_DIR would hide the error being reported).
    return (
        f"download {UCI_URL} (by hand if needed) and put it in {data_dir(create=False)}, "
        f"or pass path=... to load_raw, or set {ENV_FILE} to a local copy "
        "(.zip, .xlsx, .csv or .parquet)"
    )


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_raw(path: Optional[PathLike] = None, *, download: bool = True, progress: bool = True) -> pd.DataFrame:
    """Return the raw UCI table: the 8 columns of :data:`RAW_COLUMNS`, validated, in file order.

    Parameters
    ----------
    path: a local .parquet, .csv, .csv.gz, .xlsx or the official .zip. Default:
        ``$COLDSTART_DATA_FILE``, else the parquet cache in :func:`coldstart.config.data_dir`,
        else a download.
    download: allow the download when nothing local is found (``False``: raise instead).
    progress: show a progress bar while downloading.

    Raises :class:`DataUnavailable` when the data cannot be found, read or downloaded (also when the
    data folder cannot be used: the message says what is wrong with ``COLDSTART_DATA_DIR``), and
    :class:`SchemaError` when a file is readable but does not hold the expected columns.
    """
    if path is None and os.environ.get(ENV_FILE):
        path = _env_file(os.environ[ENV_FILE])
    if path is not None:
        return _read_local(Path(path).expanduser())  # a local file: never the network

    try:
        cache = data_dir() / CACHE_NAME
    except UnusableFolder as exc:
        raise DataUnavailable(f"{exc}; or set {ENV_FILE} to a local copy of the table") from exc
    if cache.exists():
        return _read_local(cache)
    zip_path = _get_zip(progress=progress, download=download)
    if progress:
        print(f"Reading {zip_path.name} (about a minute, once; later runs use {CACHE_NAME})")
    df = _read_local(zip_path)
    _write_parquet_atomic(df, cache)
    return df


def _env_file(value: str) -> Path:
    """``$COLDSTART_DATA_FILE`` as a path; a relative one is taken from the project root first.

    So ``COLDSTART_DATA_FILE=../shared/data/online_retail.parquet`` works both from the course
    folder and from ``notebooks/``.
    """
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    from_root = project_root() / path
    return from_root if from_root.exists() else path


def _no_permission(path: Path) -> DataUnavailable:
    # Not "corrupt, delete it": the file may be fine, only this user may not read it.
    return DataUnavailable(
        f"{path} cannot be read: permission denied (the file itself may be fine, do not delete it): make it "
        f"readable for this user (chmod u+r, or the folder's permissions), or set {ENV_FILE} to a readable copy"
    )


def _read_local(path: Path) -> pd.DataFrame:
    """Read and validate a local file, whatever its format; unreadable files raise DataUnavailable
    (a permission problem is reported as one, a damaged file as damaged)."""
    try:
        exists = path.is_file()
    except PermissionError as exc:   # a folder on the way cannot be searched
        raise _no_permission(path) from exc
    if not exists:
        raise DataUnavailable(f"{path} is not an existing file: {_fix_hint()}")
    if not os.access(path, os.R_OK):
        raise _no_permission(path)
    name = path.name.lower()
    readers = {".parquet": pd.read_parquet, ".csv": _read_csv, ".csv.gz": _read_csv,
               ".xlsx": _read_xlsx, ".zip": _read_zip}
    suffix = next((s for s in readers if name.endswith(s)), None)
    if suffix is None:
        raise DataUnavailable(f"{path}: unsupported file type, expected one of {', '.join(readers)}")
    try:
        df = readers[suffix](path)
    except (DataUnavailable, SchemaError):
        raise
    except OSError as exc:
        if isinstance(exc, PermissionError) or exc.errno == errno.EACCES:
            raise _no_permission(path) from exc
        raise _damaged(path, suffix, exc) from exc
    except Exception as exc:  # pyarrow, openpyxl, zipfile and csv errors have no common base class
        raise _damaged(path, suffix, exc) from exc
    return validate_raw(df)


def _damaged(path: Path, suffix: str, exc: BaseException) -> DataUnavailable:
    return DataUnavailable(
        f"{path} cannot be read as {suffix} ({type(exc).__name__}: {_one_line(exc)}); the file is probably "
        f"truncated or corrupt: delete it, then {_fix_hint()}"
    )


def _read_csv(path: Path) -> pd.DataFrame:
    # Text columns are read as text, so codes such as "85123A" and "00001" keep their form.
    text = {col: "string" for col, kind in RAW_COLUMNS.items() if kind == "string"}
    try:
        return pd.read_csv(path, dtype=text, encoding="utf-8")
    except UnicodeDecodeError:
        # The widely shared Kaggle copy of this table is Latin-1 encoded ("£" is one byte).
        # Latin-1 can decode any byte, so this never fails; at worst a few characters are wrong.
        warnings.warn(f"{path} is not UTF-8; reading it as Latin-1", stacklevel=3)
        return pd.read_csv(path, dtype=text, encoding="latin-1")


def _read_xlsx(source) -> pd.DataFrame:
    # No dtype forcing here: openpyxl gives ints for numeric-looking codes; validate_raw turns
    # them into strings exactly (85123 -> "85123"), which dtype=str would not do for floats.
    return pd.read_excel(source, engine="openpyxl")


def _read_zip(path: Path) -> pd.DataFrame:
    """Read the table inside a zip (the official one holds a single xlsx)."""
    with zipfile.ZipFile(path) as zf:
        members = [m for m in zf.namelist() if m.lower().endswith((".xlsx", ".csv"))]
        if not members:
            raise DataUnavailable(f"{path} holds no .xlsx or .csv file (found {zf.namelist()}): {_fix_hint()}")
        member = XLSX_NAME if XLSX_NAME in members else members[0]
        payload = io.BytesIO(zf.read(member))  # openpyxl wants a seekable file
    if member.lower().endswith(".csv"):  # not the official layout; no encoding fallback here
        text = {col: "string" for col, kind in RAW_COLUMNS.items() if kind == "string"}
        return pd.read_csv(payload, dtype=text, encoding="utf-8", encoding_errors="replace")
    return _read_xlsx(payload)


# --------------------------------------------------------------------------------------------
# Download and cache
# --------------------------------------------------------------------------------------------


def _fetch_zip(dest_dir: Path, progress: bool, downloader: Optional[Callable] = None) -> Path:
    """Download the official zip into ``dest_dir`` and return its path.

    pooch streams to a temporary file, checks the SHA-256 and only then renames it, so a failed
    or corrupted download never appears under the final name (it raises ``ValueError`` on a hash
    mismatch, a ``requests`` error, which is an ``OSError``, on a network failure). When the file
    is already there with the right hash, pooch returns at once without the network.
    ``downloader`` is pooch's hook (tests pass a fake one).
    """
    import pooch  # imported lazily: only the download needs it

    fetched = pooch.retrieve(
        UCI_URL,
        known_hash=f"sha256:{UCI_ZIP_SHA256}",
        fname=ZIP_NAME,
        path=dest_dir,
        progressbar=progress and not quiet(),  # quiet (CI, nbval): pooch's one "Downloading ..." line only
        downloader=downloader,
    )
    return Path(fetched)


def _get_zip(progress: bool, download: bool) -> Path:
    """Return a verified copy of the official zip in data_dir(), downloading it if allowed."""
    dest = data_dir()
    local = dest / ZIP_NAME
    if not download:
        if local.exists() and _sha256(local) == UCI_ZIP_SHA256:
            return local
        state = "has the wrong checksum" if local.exists() else "is not there"
        raise DataUnavailable(f"download=False and {local} {state}: {_fix_hint()}")

    errors = []
    for attempt in range(2):  # one retry: dropped connections and truncated downloads happen
        if attempt:
            time.sleep(RETRY_WAIT)
        try:
            return _fetch_zip(dest, progress)
        except PermissionError as exc:   # the data folder, not the network: a retry cannot help
            raise DataUnavailable(
                f"cannot write the download into {dest}: permission denied ({_one_line(exc)}); set "
                f"COLDSTART_DATA_DIR to a folder you can write to, or {ENV_FILE} to a local copy of the table"
            ) from exc
        except (OSError, ValueError) as exc:
            errors.append(f"{type(exc).__name__}: {_one_line(exc)}")
            local.unlink(missing_ok=True)  # never keep a file that did not pass the check
    raise DataUnavailable(
        f"could not download {ZIP_NAME} from {UCI_URL} (tried twice; last error {errors[-1]}). "
        f"Fix: {_fix_hint()}"
    )


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (pooch's messages span several)."""
    return " ".join(str(exc).split())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_parquet_atomic(df: pd.DataFrame, target: Path) -> None:
    """Write ``df`` to ``target`` so that readers see either the old file or the complete new one.

    The data goes to a temporary file in the same folder (same file system, so the final
    ``os.replace`` is an atomic rename); if anything fails the temporary file is removed.
    """
    with atomic_path(target) as tmp:
        df.to_parquet(tmp, index=False)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def validate_raw(df: pd.DataFrame) -> pd.DataFrame:
    """Check the raw table and return a copy with exactly the dtypes of :data:`RAW_COLUMNS`.

    Safe coercions are made (numeric codes -> text, numeric text -> numbers, date text -> dates,
    bytes -> text decoded as UTF-8 with undecodable bytes replaced by U+FFFD). Anything else raises
    :class:`SchemaError` naming the column. Columns beyond the 8 raw ones are dropped.
    """
    missing = [col for col in RAW_COLUMNS if col not in df.columns]
    if missing:
        raise SchemaError(f"missing column(s) {missing}; the table has {list(df.columns)}")
    if len(df) == 0:
        raise SchemaError("the table is empty (0 rows): check the file you loaded")
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for col, kind in RAW_COLUMNS.items():
        values = df[col].reset_index(drop=True)
        if kind == "string":
            out[col] = _as_text(values, col)
        elif kind == "datetime64[ns]":
            out[col] = _as_datetime(values, col)
        else:
            out[col] = _as_number(values, col, whole=(kind == "int64"))
    # Customer numbers become int64 after cleaning, so they must be whole.
    ids = out["CustomerID"].dropna()
    if not (np.isfinite(ids).all() and np.array_equal(ids, np.round(ids))):
        raise SchemaError("column 'CustomerID' has non-integer values (e.g. "
                          f"{ids[~(np.isfinite(ids) & (ids == np.round(ids)))].iloc[0]!r})")
    return out


def _to_text_scalar(value):
    """One cell of a mixed object column as text (used only for object columns, e.g. from xlsx)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return pd.NA
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 85123.0 -> "85123", as the code is written in the shop
    # Round-trip through UTF-8 so stray surrogates (bad decoding upstream) cannot crash parquet.
    return str(value).encode("utf-8", errors="replace").decode("utf-8")


def _as_text(values: pd.Series, col: str) -> pd.Series:
    if isinstance(values.dtype, pd.StringDtype):  # "string", or pandas 3's default "str"
        return values.astype("string")
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        raise SchemaError(f"column {col!r} should hold text, not {values.dtype}")
    if pd.api.types.is_numeric_dtype(values):
        if pd.api.types.is_float_dtype(values):
            whole = values.dropna()
            if np.array_equal(whole, np.round(whole)):
                values = values.astype("Int64")  # 536365.0 -> "536365", not "536365.0"
        return values.astype("string")
    # object (mixed str/int/bytes), category or pandas 3 "str": normalise cell by cell.
    return values.astype(object).map(_to_text_scalar).astype("string")


def _as_number(values: pd.Series, col: str, whole: bool) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        raise SchemaError(f"column {col!r} should be numeric, not boolean")
    if pd.api.types.is_numeric_dtype(values):
        # to_numpy with na_value also handles nullable Int64/Float64 columns holding pd.NA.
        numbers = pd.Series(values.to_numpy(dtype="float64", na_value=np.nan), index=values.index)
    elif pd.api.types.is_datetime64_any_dtype(values):
        raise SchemaError(f"column {col!r} should be numeric, not {values.dtype}")
    else:
        text = values.astype("string").str.strip().replace("", pd.NA)
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
        bad = text.notna().to_numpy() & numbers.isna().to_numpy()
        if bad.any():
            raise SchemaError(
                f"column {col!r} should be numeric but holds {int(bad.sum())} non-numeric value(s), "
                f"e.g. {text[bad].iloc[0]!r}"
            )
    if not whole:
        return numbers   # an infinite price is dropped by clean()'s "price <= 0" step, like a missing one
    infinite = np.isinf(numbers.to_numpy())
    if infinite.any():   # an int64 column cannot hold it, and no count of items is infinite
        raise SchemaError(f"column {col!r} should hold whole numbers but holds {int(infinite.sum())} infinite "
                          f"value(s), e.g. {numbers[infinite].iloc[0]!r}")
    if numbers.isna().any() or not np.array_equal(numbers, np.round(numbers)):
        raise SchemaError(f"column {col!r} should hold whole numbers without gaps")
    return numbers.astype("int64")


_NUMERIC_DATE = r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-]\d{2,4}\b"


def _day_first(text: pd.Series, col: str) -> bool:
    """Whether dates written ``A/B/YYYY`` put the day first: yes when some ``A`` exceeds 12, no when
    some ``B`` does. When every ``A`` and ``B`` is at most 12 the order cannot be told, and guessing
    would silently swap days and months, so this raises ``SchemaError`` saying how to name the
    format (``COLDSTART_DATE_FORMAT``). Other layouts (ISO ``2011-02-01``): ``False``."""
    parts = text.dropna().str.extract(_NUMERIC_DATE).dropna()
    if parts.empty:
        return False
    first, second = parts[0].astype(int), parts[1].astype(int)
    if (first > 12).any() and (second > 12).any():
        return False   # mixed orders: the parse below reports the values it cannot read
    if (first > 12).any():
        return True
    if (second > 12).any():
        return False
    example = text.dropna().iloc[0]
    raise SchemaError(
        f"column {col!r} has dates like {example!r} whose day and month are both at most 12, so the order "
        "cannot be told: set COLDSTART_DATE_FORMAT='%d/%m/%Y %H:%M' (day first) or '%m/%d/%Y %H:%M' "
        "(month first), or save the file with ISO dates (2011-02-01)")


def _as_datetime(values: pd.Series, col: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_localize(None)
        return values.astype("datetime64[ns]")
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        # Numbers could be Excel serials or Unix seconds: guessing would be unsafe.
        raise SchemaError(f"column {col!r} should hold dates, not {values.dtype}")
    text = values.astype("string").str.strip().replace("", pd.NA)
    fmt = os.environ.get("COLDSTART_DATE_FORMAT") or None
    dayfirst = False if fmt else _day_first(text, col)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format" chatter
        dates = pd.to_datetime(text.astype(object), errors="coerce", format=fmt, dayfirst=dayfirst)
    bad = text.notna().to_numpy() & dates.isna().to_numpy()
    if bad.any():
        raise SchemaError(
            f"column {col!r} cannot be parsed as dates ({int(bad.sum())} bad value(s), "
            f"e.g. {text[bad].iloc[0]!r})"
        )
    # pandas 3 parses text to microseconds; the course uses nanoseconds everywhere.
    return pd.Series(dates, index=values.index).astype("datetime64[ns]")


# --------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------

# A product code is 5 digits, optionally followed by letters for variants (85123A, 15056BL);
# codes are compared upper-cased because the file mixes "85123a" and "85123A".
# The rule removes all the bookkeeping codes in one go: POST, DOT (postage), C2 (carriage),
# M/m (manual), BANK CHARGES, PADS, AMAZONFEE, CRUK (charity), S (samples), D (discount),
# B (bad debt), gift_0001_* (gift vouchers) and DCGS* (lines from a separate sales channel,
# every one of them without a customer, so step 1 already drops them).
PRODUCT_CODE = r"\d{5}[A-Z]*"
# Services hiding behind product-shaped codes (found by reading the descriptions of the rows
# left after the other steps): they are no gift items, a recommender should not suggest them.
SERVICE_CODES = {
    "23444": "Next Day Carriage",
    "23574": "PACKING CHARGE",
    "23702": "High Resolution Image",
    "22016": "Dotcomgiftshop Gift Voucher £100.00",
}


def is_product_code(codes: pd.Series) -> pd.Series:
    """Boolean Series: True where a stock code is a real product (see :data:`PRODUCT_CODE`)."""
    upper = codes.astype("string").str.strip().str.upper()
    ok = upper.str.fullmatch(PRODUCT_CODE) & ~upper.isin(list(SERVICE_CODES))
    return ok.fillna(False).astype(bool)


def _blank(text: pd.Series) -> pd.Series:
    return (text.isna() | text.str.strip().eq("")).fillna(True).astype(bool)


# (step name, rows to drop). Each function sees the rows the previous steps kept.
CLEANING_STEPS = [
    # Anonymous lines cannot be part of a customer history.
    ("missing customer", lambda d: d["CustomerID"].isna()),
    # A leading "C" marks a cancellation; its positive twin is an earlier ordinary invoice.
    ("cancellation", lambda d: d["InvoiceNo"].str.upper().str.startswith("C").fillna(False).astype(bool)),
    # "not > 0" rather than "<= 0" also drops missing values.
    ("quantity <= 0", lambda d: ~(d["Quantity"] > 0)),
    # An infinite price is as unusable as a missing one (it would swamp every price statistic), so
    # the step drops it too: a price is kept only when it is a positive finite number.
    ("price <= 0", lambda d: ~((d["UnitPrice"] > 0) & np.isfinite(d["UnitPrice"]))),
    ("non-product code", lambda d: ~is_product_code(d["StockCode"])),
    # Text is the whole point of the course: an item without a name cannot be encoded.
    ("missing description", lambda d: _blank(d["Description"])),
]


def clean(df: pd.DataFrame, verbose: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Remove unusable rows step by step; return ``(clean_df, report_df)``.

    Steps (in this order): missing customer, cancellation, quantity <= 0, price <= 0 (also missing
    or infinite prices), non-product code, missing description. ``report_df`` has one row per step
    (after a first row ``raw``) with columns ``step, rows_removed, rows_left``; ``verbose`` prints it.

    ``clean_df`` has the course's column names: ``invoice`` (str), ``item`` (str, upper-cased
    StockCode), ``description`` (str, as in the data), ``quantity`` (int64), ``date``
    (datetime64[ns]), ``price`` (float64), ``customer`` (int64), ``country`` (str) and ``line``
    (int64, the row's position in ``df``, i.e. in the raw file for :func:`load_raw` output, so
    the lines of one invoice keep their order). Rows are sorted by ``(date, invoice, line)``.

    Raises ``ValueError`` naming the step if a step leaves no rows.
    """
    d = validate_raw(df)
    d["line"] = np.arange(len(d), dtype="int64")  # before any filtering
    report = [("raw", 0, len(d))]
    for step, drop in CLEANING_STEPS:
        mask = np.asarray(drop(d), dtype=bool)
        if mask.all():
            raise ValueError(
                f"clean(): step {step!r} would remove all {len(d):,} remaining rows, leaving an "
                "empty table; check that the input is the UCI Online Retail table"
            )
        d = d[~mask]
        report.append((step, int(mask.sum()), len(d)))
    report_df = pd.DataFrame(report, columns=["step", "rows_removed", "rows_left"])
    if verbose:
        print(_format_report(report_df))
    return _rename(d), report_df


def _rename(d: pd.DataFrame) -> pd.DataFrame:
    """Raw column names -> the course's names and types, sorted by (date, invoice, line)."""
    out = pd.DataFrame({
        "invoice": d["InvoiceNo"].str.strip(),
        "item": d["StockCode"].str.strip().str.upper(),
        "description": d["Description"],
        "quantity": d["Quantity"].astype("int64"),
        "date": d["InvoiceDate"].astype("datetime64[ns]"),
        "price": d["UnitPrice"].astype("float64"),
        "customer": d["CustomerID"].astype("int64"),
        "country": d["Country"],
        "line": d["line"],
    })
    # A stable sort on line as the last key makes the order fully deterministic.
    return out.sort_values(["date", "invoice", "line"], kind="stable").reset_index(drop=True)


def _format_report(report: pd.DataFrame) -> str:
    width = max(len(s) for s in report["step"])
    lines = [f"{'step':<{width}}  {'removed':>9}  {'left':>9}"]
    for step, removed, left in report.itertuples(index=False):  # 7 rows, not the data
        lines.append(f"{step:<{width}}  {removed:>9,}  {left:>9,}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------


def build_catalog(clean_df: pd.DataFrame) -> pd.DataFrame:
    """One row per item of a cleaned table, indexed by ``item`` (sorted by code).

    Columns: ``text`` (the item's most frequent description, normalised; ties go to the description
    seen first in ``clean_df``'s row order: :func:`~coldstart.data.text.most_frequent_text`),
    ``first_sold`` (first sale date), ``median_price``, ``n_invoices``, ``n_customers``, ``n_lines``.

    Everything is computed from the table you pass. The cold-start protocol passes the *full*
    cleaned table so that cold items (never sold in the training period) still get their text;
    popularity features used by models are recomputed from the training rows only, so passing
    the full table here leaks nothing into the models.
    """
    needed = {"item", "description", "date", "price", "invoice", "customer"}
    missing = needed - set(clean_df.columns)
    if missing:
        raise SchemaError(f"build_catalog needs the output of clean(); missing column(s) {sorted(missing)}")
    best = most_frequent_text(clean_df["item"].to_numpy(), clean_df["description"], np.arange(len(clean_df)))
    stats = clean_df.groupby("item").agg(
        first_sold=("date", "min"),
        median_price=("price", "median"),
        n_invoices=("invoice", "nunique"),
        n_customers=("customer", "nunique"),
        n_lines=("item", "size"),
    )
    catalog = stats.join(best).sort_index()
    catalog.index.name = "item"
    return catalog[["text", "first_sold", "median_price", "n_invoices", "n_customers", "n_lines"]]


def load_clean(path: Optional[PathLike] = None, verbose: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load the raw table (see :func:`load_raw`) and clean it: returns ``(clean_df, report_df)``."""
    return clean(load_raw(path), verbose=verbose)
