"""How many threads numpy's BLAS may use, for a block of code."""

from __future__ import annotations

import contextlib
import functools
from typing import Optional


@functools.lru_cache(maxsize=None)
def _controller():
    """``threadpoolctl``'s handle on the loaded BLAS libraries, found once (``None`` without it)."""
    try:
        from threadpoolctl import ThreadpoolController

        return ThreadpoolController().select(user_api="blas")
    except Exception:  # pragma: no cover - threadpoolctl missing or unable to find the library
        return None


def blas_limit(threads: Optional[int]):
    """A context in which numpy's BLAS uses at most ``threads`` threads (``None``: no limit).

    Uses ``threadpoolctl`` (installed with scikit-learn); without it, a no-op."""
    controller = None if threads is None else _controller()
    return contextlib.nullcontext() if controller is None else controller.limit(limits=threads)
