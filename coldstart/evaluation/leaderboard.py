"""The course's leaderboard: one CSV of results per run, and beside it what produced each row.

Every result the notebooks record goes through :func:`update_leaderboard`: rows of the
:data:`LEADERBOARD_COLUMNS`, one per method, profile, protocol, segment and metric. A method's
``kind`` is one of :data:`METHOD_KINDS`. The file is ``runs/<profile>/leaderboard.csv``
(:func:`leaderboard_path`); ``results/leaderboard.csv`` is the committed reference run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Union

import numpy as np
import pandas as pd

from .._internal.io import write_text_atomic
from .._internal.runinfo import run_info
from ..config import runs_dir

LEADERBOARD_COLUMNS = ["method", "kind", "profile", "protocol", "segment", "metric", "value", "ci_low", "ci_high"]
METHOD_KINDS = ("baseline", "fine-tuned", "augmented", "adapter", "lora", "published")


def check_kind(kind: str) -> None:
    """Raise ``ValueError`` unless ``kind`` is one of :data:`METHOD_KINDS`."""
    if kind not in METHOD_KINDS:
        raise ValueError(f"kind must be one of {METHOD_KINDS}, got {kind!r}")


def leaderboard_path(profile: Optional[str] = None) -> Path:
    """The leaderboard of the current run: ``runs/<profile>/leaderboard.csv`` (:func:`coldstart.config.runs_dir`)."""
    return runs_dir(profile) / "leaderboard.csv"


NUMERIC_COLUMNS = ("value", "ci_low", "ci_high")


def read_leaderboard(path: Union[str, Path]) -> pd.DataFrame:
    """Read a leaderboard CSV (an empty table with the right columns if the file does not exist).

    Every column but the numbers (:data:`NUMERIC_COLUMNS`) is read as text, exactly as written: a
    method called ``NA``, ``None``, ``1`` or ``TRUE`` stays that string (pandas would read NaN, a
    number or a boolean, and the row would never be replaced)."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=LEADERBOARD_COLUMNS)
    board = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in NUMERIC_COLUMNS:
        if col in board.columns:
            board[col] = pd.to_numeric(board[col].replace("", np.nan))
    return board


def _lock(path: Path):
    """A lock file beside the leaderboard: one process at a time reads, changes and writes it."""
    from filelock import FileLock

    return FileLock(str(path.with_name(f".{path.name}.lock")), timeout=120)


def update_leaderboard(rows, path: Union[str, Path], model: Optional[str] = None, **info) -> pd.DataFrame:
    """Write ``rows`` into the leaderboard at ``path``, replacing earlier rows of the same (method,
    profile, protocol). The file is written atomically. Returns the whole leaderboard.

    Safe for several processes at once: a lock file (``.<name>.lock`` beside it) makes each update
    read, change and write the file in turn, so no update is lost.

    ``rows`` is a table with the :data:`LEADERBOARD_COLUMNS`, or a result holding one as ``.table``
    (:class:`~coldstart.evaluation.harness.EvalResult`, :class:`~coldstart.evaluation.benchmark.SeqResult`).

    Beside it, ``<path stem>.runs.json`` records for every (method, profile, protocol) the run that
    produced its rows: date, machine, library versions, ``model`` and any extra ``info``.
    """
    new = rows if isinstance(rows, pd.DataFrame) else rows.table
    missing = [c for c in LEADERBOARD_COLUMNS if c not in new.columns]
    if missing:
        raise ValueError(f"Leaderboard rows lack columns {missing}")
    new = new[LEADERBOARD_COLUMNS].copy()
    for col in LEADERBOARD_COLUMNS:
        if col not in NUMERIC_COLUMNS:
            new[col] = new[col].astype(str)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock(path):   # read-modify-write: without it, two writers at once keep only one's rows
        return _update(new, path, model, info)


def _update(new: pd.DataFrame, path: Path, model, info) -> pd.DataFrame:
    old = read_leaderboard(path)
    if len(old):
        keys = set(map(tuple, new[["method", "profile", "protocol"]].drop_duplicates().to_numpy()))
        drop = [tuple(r) in keys for r in old[["method", "profile", "protocol"]].to_numpy()]
        old = old[~np.array(drop, dtype=bool)]
    board = pd.concat([old, new], ignore_index=True) if len(old) else new.reset_index(drop=True)
    write_text_atomic(board.to_csv(index=False, float_format="%.6g"), path)

    runs_file = path.with_name(path.stem + ".runs.json")
    runs = json.loads(runs_file.read_text()) if runs_file.exists() else {}
    for method, profile, protocol in new[["method", "profile", "protocol"]].drop_duplicates().to_numpy():
        runs[f"{method} | {profile} | {protocol}"] = run_info(model=model, **info)
    write_text_atomic(json.dumps(runs, indent=1, sort_keys=True), runs_file)
    return board
