"""Progress bars that behave in notebooks, terminals and CI logs alike.

Interactive runs get a tqdm bar. Under CI, nbval or the headless course run
(``COLDSTART_QUIET_PROGRESS=1``, set by the Makefile and the test suite, or ``CI`` set) bars are
replaced by a few plain lines, so logs stay short and nbval never waits on a redrawing widget.
"""

from __future__ import annotations

import os
from typing import Iterable, Optional


def quiet() -> bool:
    """True when progress should be line-based (CI, nbval, headless runs)."""
    return bool(os.environ.get("COLDSTART_QUIET_PROGRESS") == "1" or os.environ.get("CI"))


def keras_verbose() -> int:
    """The ``verbose=`` value for Keras ``fit``: a bar interactively, one line per epoch when quiet."""
    return 2 if quiet() else 1


def progress_bar(items: Iterable, desc: str = "", total: Optional[int] = None, enabled: Optional[bool] = None):
    """Wrap an iterable in a progress display (see the module docstring)."""
    if enabled is False:
        return items
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    if quiet():
        return _lines(items, desc, total)
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, total=total, leave=False)


def _lines(items: Iterable, desc: str, total: Optional[int]):
    """Yield from ``items`` printing at most ~4 short progress lines (none for short loops)."""
    if total is not None and total < 8:
        yield from items
        return
    step = max(1, (total or 0) // 4) if total else None
    n = 0
    for n, item in enumerate(items, 1):
        yield item
        if step and n % step == 0 and n < total:
            print(f"{desc}: {n}/{total}", flush=True)
    print(f"{desc}: done ({n} batches)" if total else f"{desc}: done", flush=True)
