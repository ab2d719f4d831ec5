"""Progress bars that behave in notebooks, terminals and CI logs alike.

Interactive runs get a tqdm bar. Under CI, nbval or the headless course run
(``COLDSTART_QUIET_PROGRESS=1``, set by the Makefile and the test suite, or ``CI`` set) bars are
replaced by one plain line per loop (and one a minute in long loops), so logs stay short and nbval
never waits on a redrawing widget.
"""

from __future__ import annotations

import os
import time
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


def _lines(items: Iterable, desc: str, total: Optional[int], every: float = 60.0):
    """Yield from ``items``, then print one summary line (none for short loops). A loop that runs
    longer than ``every`` seconds also prints where it is once per ``every`` seconds, so a headless
    log shows it is alive without a committed notebook carrying a line per batch."""
    if total is not None and total < 8:
        yield from items
        return
    start = last = time.perf_counter()
    n = 0
    for n, item in enumerate(items, 1):
        yield item
        now = time.perf_counter()
        if now - last >= every and (total is None or n < total):
            print(f"{desc}: {n}/{total}" if total else f"{desc}: {n}", flush=True)
            last = now
    took = time.perf_counter() - start
    print(f"{desc}: done ({n} batches, {took:.0f} s)" if total else f"{desc}: done ({took:.0f} s)", flush=True)
