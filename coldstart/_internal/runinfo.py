"""What identifies a run: when, on which machine, with which software."""

from __future__ import annotations

import datetime
import os
import platform
from typing import Optional

from .versions import library_versions


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> dict:
    """The CPU's model name and its widest float SIMD extension, read from ``cpuinfo`` (Linux).

    Machines with the same number of cores differ in CPU model and vector width, and with them in
    speed, so timings are recorded with both. Empty where the file does not exist.
    """
    try:
        with open(cpuinfo) as f:
            text = f.read()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)  # the last CPU's fields
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    simd = next((name for flag, name in [("amx_bf16", "AVX-512 + AMX"), ("avx512f", "AVX-512"), ("avx2", "AVX2"),
                                         ("avx", "AVX"), ("sse2", "SSE2")] if flag in flags), None)
    return {k: v for k, v in {"cpu_model": fields.get("model name"), "simd": simd}.items() if v}


def run_info(model: Optional[str] = None, **extra) -> dict:
    """The date, the machine (CPU model, logical CPUs, OS) and the library versions of a run, plus
    the ``model`` it used and any ``extra`` notes: recorded beside the results it produced."""
    cpu = cpu_model()
    name = f"{cpu['cpu_model']} ({cpu.get('simd', '?')}), " if "cpu_model" in cpu else ""
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{name}{platform.machine()}, {os.cpu_count()} logical CPUs, {platform.system()}",
        "versions": library_versions(),
    }
    if model:
        info["model"] = model
    info.update(extra)
    return info
