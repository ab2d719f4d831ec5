"""Atomic file writes: readers see the old file or the complete new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


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
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
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


def make_temp_dir(target) -> Path:
    """A new temporary folder beside ``target`` (for an atomic folder swap), with the permissions of
    an ordinary new folder (``mkdtemp`` alone makes it private)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp


def swap_in_dir(tmp, folder) -> None:
    """Replace ``folder`` by the complete folder ``tmp`` (made with :func:`make_temp_dir`).

    The old folder is renamed aside first and removed only once the new one is in place; if the
    swap fails, it is put back. Readers see the old folder or the new one, never a mix.
    """
    import shutil

    tmp, folder = Path(tmp), Path(folder)
    old = None
    if folder.exists():
        old = make_temp_dir(folder)
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
