"""Atomic writes: a reader sees the old file (or folder) or the complete new one, never half of one.

Every save of the course goes through here -- the data cache, the shared splits, the leaderboard,
saved recommenders, PEFT checkpoints, downloaded models -- so how a file or a folder is replaced is
decided in one place.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Optional


def _new_file_mode(mode: int) -> int:
    """``mode`` less the process's umask: what an ordinary new file or folder would get."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


@contextlib.contextmanager
def atomic_path(target):
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically.

    The temporary file lives in the same folder (same file system, so ``os.replace`` is an atomic
    rename) and gets the permissions a normal new file would (``mkstemp`` alone makes it private).
    If the block raises, the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, _new_file_mode(0o666))
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(text: str, target) -> None:
    """Write ``text`` to ``target`` atomically (see :func:`atomic_path`)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


@contextlib.contextmanager
def atomic_dir(folder, marker: str, names: Optional[Iterable[str]] = None):
    """Yield a new empty folder beside ``folder``; when the block succeeds it replaces ``folder``.

    ``folder`` may be missing, empty, or a folder this kind of save wrote before: it holds
    ``marker`` (e.g. ``serving.json``) and, when ``names`` (file-name patterns) is given, nothing
    else than entries matching them. Anything else -- a file, a folder with other files -- raises
    ``FileExistsError`` before anything is written: a save never deletes what it did not write.

    The old folder is renamed aside first and removed only once the new one is in place; if the
    swap fails, it is put back. If the block raises, the new folder is removed and ``folder`` is
    untouched. Readers see the old folder or the new one, never a mix. The new folder gets the
    permissions of an ordinary new folder (``mkdtemp`` alone makes it private).
    """
    folder = Path(folder)
    check_replaceable(folder, marker, names)
    tmp = _temp_dir_beside(folder)
    try:
        yield tmp
        check_replaceable(folder, marker, names)   # another writer may have put files there meanwhile
        _swap_in(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_replaceable(folder: Path, marker: str, names: Optional[Iterable[str]] = None) -> None:
    """Raise ``FileExistsError`` unless ``folder`` is missing, empty, or a saved folder of the kind
    ``marker`` names (holding only ``names``, when given): see :func:`atomic_dir`."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise FileExistsError(f"{folder} exists and is not a folder: choose a new folder name to save into")
    if not folder.exists():
        return
    entries = os.listdir(folder)
    if not entries:
        return
    patterns = None if names is None else [marker, *names]
    foreign = [e for e in entries if patterns is not None and not any(fnmatch.fnmatch(e, p) for p in patterns)]
    if marker not in entries or foreign:
        what = f"other files ({', '.join(sorted(foreign or entries)[:3])})"
        raise FileExistsError(f"{folder} holds {what} and is not a folder saved by this kind of save (no {marker} "
                              "or files it does not write): choose a new or empty folder, nothing was written")


def _temp_dir_beside(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, _new_file_mode(0o777))
    return tmp


def _swap_in(tmp: Path, folder: Path) -> None:
    """Replace ``folder`` by the complete folder ``tmp`` (see :func:`atomic_dir`)."""
    old = None
    if folder.exists():
        old = _temp_dir_beside(folder)
        os.rmdir(old)
        os.rename(folder, old)
    try:
        os.replace(tmp, folder)
    except BaseException:
        if old is not None:
            os.rename(old, folder)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
