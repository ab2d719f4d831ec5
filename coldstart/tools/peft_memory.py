"""Step time and peak memory of the three ways to fine-tune the two-tower model (notebook 06).

:func:`measure_methods` runs a few training steps of :class:`~coldstart.models.bert.TwoTower` in a
fresh process per method -- full fine-tuning, adapters, LoRA (:data:`TUNING_METHODS`) -- and reports
the median step time, the memory and the parameter counts of each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .._internal.tf import import_tensorflow
from ..config import DEFAULT_MODEL
from ..models.encoders import resolve_model, safe_load_options
from ..models.peft import add_adapters, add_lora, freeze_base, trainable_report


def _measure(kind: str, model_name: str, batch_size: int, seq_len: int, steps: int, size: int, rank: int,
             learning_rate: float, lora_targets: Sequence[str] = ("query", "value"), wait: bool = False) -> dict:
    """The body of :func:`measure_methods`, run inside the child process. With ``wait``, the child
    prints ``READY`` after the warm-up step and times its steps only once a line arrives on stdin."""
    import resource

    from transformers import AutoConfig, TFAutoModel

    from ..models.bert import TwoTower

    tf = import_tensorflow()

    def status_mb(field: str) -> Optional[float]:
        """``VmRSS`` (resident now) or ``VmHWM`` (peak since the last reset) of this process, in MB."""
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1]) / 1024
        except OSError:  # not Linux
            pass
        return None

    def reset_peak() -> bool:
        """Start the peak-memory count afresh (Linux: ``echo 5 > /proc/self/clear_refs``)."""
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    tf.keras.utils.set_random_seed(0)
    # random weights of the same architecture: the same time and memory as the pretrained ones,
    # without reading them from disk
    where = resolve_model(model_name)
    encoder = TFAutoModel.from_config(AutoConfig.from_pretrained(where, **safe_load_options(where)))
    encoder(tf.constant([[1, 2]]))
    if kind == "adapter":
        add_adapters(encoder, size)
    elif kind == "lora":
        add_lora(encoder, rank, targets=tuple(lora_targets))
    elif kind != "full":
        raise ValueError(f"kind must be full, adapter or lora, got {kind!r}")
    if kind != "full":
        freeze_base(encoder)
    model = TwoTower(encoder)
    rng = np.random.default_rng(0)
    vocab = encoder.config.vocab_size
    ids = rng.integers(1000 if vocab > 2000 else 1, vocab, size=(batch_size, seq_len)).astype(np.int32)
    batch = {"context_ids": tf.constant(ids), "item_ids": tf.constant(ids[:, : max(2, seq_len // 3)]),
             "item": tf.range(batch_size, dtype=tf.int32)}
    model(batch)                                   # build everything but the optimizer
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        tf.config.experimental.reset_memory_stats("GPU:0")
    before = status_mb("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    reset = reset_peak()                           # loading the model may have peaked higher than training will
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate))   # creates the optimizer state: counted
    step = tf.function(model.train_step)
    step(batch)                                    # trace + warm-up
    if wait:                                       # the parent says when no other method is being timed
        print("READY", flush=True)
        sys.stdin.readline()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        float(step(batch)["loss"])
        times.append(time.perf_counter() - start)
    peak = status_mb("VmHWM") if reset else None
    if peak is None:   # no resettable peak: the process's peak since it started (an upper bound)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 2**20)
    out = {"kind": kind, "step_seconds": float(np.median(times)), "steps": steps, "batch_size": batch_size,
           "seq_len": seq_len, "rss_before_training_mb": before, "peak_rss_mb": peak,
           "training_extra_mb": peak - before, "peak_reset": reset, **trainable_report(encoder)}
    if gpus:
        out["gpu_peak_mb"] = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    return out


TUNING_METHODS = ("full", "adapter", "lora")


class _MeasureChild:
    """One fresh Python process running :func:`_measure`, talked to over its stdin and stdout."""

    def __init__(self, args: dict):
        import queue
        import tempfile
        import threading

        code = ("import json, sys; from coldstart.tools import peft_memory; "
                "print('RESULT ' + json.dumps(peft_memory._measure(**json.loads(sys.argv[1]))), flush=True)")
        env = dict(os.environ, COLDSTART_QUIET_PROGRESS="1")
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.kind, self.stderr, self.lines = args["kind"], tempfile.TemporaryFile(mode="w+"), queue.Queue()
        self.proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(dict(args, wait=True))], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env)

        def pump():                 # a thread, so that waiting for a line can time out on every platform
            for line in self.proc.stdout:
                self.lines.put(line.rstrip("\n"))
            self.lines.put(None)    # end of output

        threading.Thread(target=pump, daemon=True).start()

    def wait_for(self, marker: str, deadline: float) -> str:
        """The rest of the first stdout line that starts with ``marker``; an error if the process
        ends or ``deadline`` (a ``time.monotonic()`` value) passes first."""
        import queue

        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"measuring {self.kind} timed out") from None
            if line is None:
                self.proc.wait()
                self.stderr.seek(0)
                raise RuntimeError(f"measuring {self.kind} failed (exit {self.proc.returncode}): "
                                   f"{self.stderr.read()[-1500:]}")
            if line.startswith(marker):
                return line[len(marker):]

    def go(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stderr.close()


def measure_methods(kinds: Sequence[str] = TUNING_METHODS, model_name: Optional[str] = None, batch_size: int = 32,
                    seq_len: int = 32, steps: int = 10, size: int = 64, rank: int = 8, learning_rate: float = 1e-3,
                    overlap: Optional[bool] = None, timeout: int = 900,
                    lora_targets: Sequence[str] = ("query", "value")) -> list:
    """Train the two-tower model ``steps`` steps on one fixed random batch, once per method in
    ``kinds`` (``full``, ``adapter``, ``lora``), each in a **fresh Python process**, and return one
    dict per method: the median step time and the memory, namely resident memory after the model is
    built (``rss_before_training_mb``), the peak while training (``peak_rss_mb``; on Linux the peak
    count is reset just before training, elsewhere it is the process's peak) and their difference
    (``training_extra_mb``: gradients, optimizer state, activations kept for the backward pass), plus
    the parameter counts (and ``gpu_peak_mb`` on a GPU). ``lora_targets`` are the projections LoRA
    adapts (as :func:`~coldstart.models.peft.add_lora`'s ``targets``): measure the LoRA you train, since
    its cost grows with the projections it covers.

    A fresh process because memory freed by one method stays with the process (the allocator keeps
    it), so methods measured one after another in one process would share their peaks.

    With ``overlap`` (the default without a GPU) the processes start together, so their slow part
    (importing TensorFlow, building the model, tracing the training step) runs at the same time, and
    then time their steps one at a time: no method is timed while another one computes. On a GPU
    they run one after another, because each process would reserve the GPU's memory.
    ``timeout`` (seconds) bounds the whole measurement.
    """
    for kind in kinds:
        if kind not in TUNING_METHODS:
            raise ValueError(f"kind must be full, adapter or lora, got {kind!r}")
    if overlap is None:
        overlap = not import_tensorflow().config.list_physical_devices("GPU")
    args = dict(model_name=model_name or os.environ.get("COLDSTART_MODEL") or DEFAULT_MODEL, batch_size=batch_size,
                seq_len=seq_len, steps=steps, size=size, rank=rank, learning_rate=learning_rate,
                lora_targets=list(lora_targets) if not isinstance(lora_targets, str) else [lora_targets])
    deadline, children, results = time.monotonic() + timeout, [], []
    try:
        if overlap:
            children = [_MeasureChild(dict(args, kind=kind)) for kind in kinds]
            for child in children:
                child.wait_for("READY", deadline)
        for i, kind in enumerate(kinds):
            if not overlap:
                children.append(_MeasureChild(dict(args, kind=kind)))
                children[i].wait_for("READY", deadline)
            children[i].go()
            results.append(json.loads(children[i].wait_for("RESULT ", deadline)))
            children[i].close()
    finally:
        for child in children:
            child.close()
    return results


def measure_training(kind: str, model_name: Optional[str] = None, batch_size: int = 32, seq_len: int = 32,
                     steps: int = 10, size: int = 64, rank: int = 8, learning_rate: float = 1e-3,
                     timeout: int = 900) -> dict:
    """:func:`measure_methods` for one method: its step time and memory, in a fresh process."""
    return measure_methods([kind], model_name, batch_size, seq_len, steps, size, rank, learning_rate,
                           timeout=timeout)[0]
