"""How many threads numpy's BLAS may use, for a block of code."""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Optional


@functools.lru_cache(maxsize=None)
def _controller():
    """``threadpoolctl``'s handle on the loaded BLAS libraries, found once (``None`` without it)."""
    try:
        from threadpoolctl import ThreadpoolController

        return ThreadpoolController().select(user_api="blas")
    except Exception:  # pragma: no cover - threadpoolctl missing or unable to find the library
        return None


_lock = threading.Lock()
_state = {"active": 0, "limiter": None}


@contextlib.contextmanager
def blas_limit(threads: Optional[int]):
    """A context in which numpy's BLAS uses at most ``threads`` threads (``None``: no limit).

    The limit is process-wide, so blocks running at once in several threads share one: the first
    to enter sets it, the last to leave restores the original setting. (Each block setting and
    restoring on its own would let a block that entered during another restore the other's limit,
    leaving BLAS at that limit for the rest of the process.) Uses ``threadpoolctl`` (installed with
    scikit-learn); without it, a no-op."""
    controller = None if threads is None else _controller()
    if controller is None:
        yield
        return
    with _lock:
        if _state["active"] == 0:
            _state["limiter"] = controller.limit(limits=threads)
        _state["active"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["active"] -= 1
            if _state["active"] == 0:
                _state["limiter"].restore_original_limits()
                _state["limiter"] = None
