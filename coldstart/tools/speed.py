"""Speed benchmarks: ``python -m coldstart.tools.speed`` (or ``make benchmark``).

Training: the same CTR cross-encoder (the profile's encoder, one logit) is trained on the same
protocol-like pairs, on the same machine, in one run, two ways:

* **course** -- the course's pipeline: ``tf.data`` with length-bucketed dynamic padding and prefetch,
  a compiled train step through Keras ``fit``, Adam with one fused kernel per weight
  (:class:`coldstart.training.optim.FusedAdam`);
* **naive** -- like the source's sample code: every example padded to the longest in the data set,
  a Python loop over steps calling the model eagerly under ``tf.GradientTape``, stock Keras Adam.

Each is warmed up (tracing excluded), then timed over ``--repeats`` rounds. A round measures the
machine's matmul peak (a large float32 ``tf.matmul``), then one pass of the course pipeline, then one
pass of the naive one, so every figure has neighbours measured within a minute of it: a shared
machine's speed drifts over minutes, and a peak measured once, minutes away from the training it
divides, misstates the fraction (docs/design-notes.md). Reported: the
median examples/s of each pipeline and their ratio, and the median over rounds of the course pass's
useful FLOP/s divided by its own round's peak. Useful FLOPs count real tokens only, not padding:
``3 x (tokens x (2 N + 4 layers x length x hidden) + 2 H)`` per example, with N the parameters that
act on every token (the encoder layers) and H those that act once per sequence (pooler and head).

Breakdown (``--only breakdown``, :func:`benchmark_step_breakdown`): one training step of the same
model at a fixed shape (32 pairs x 24 tokens, no padding), part by part -- the forward pass, forward
and backward, the whole step with stock Keras Adam and with ``FusedAdam`` -- each as milliseconds and
as a fraction of the matmul peak, in interleaved rounds. Key ``training_breakdown``.

Batching (``--only batching``, :func:`benchmark_batching`): the course pass beside other batchings of
the same pairs -- length-grouped batches instead of buckets (``bucketed_dataset(group_window=50)``),
several steps per compiled call (Keras ``steps_per_execution``), 64 pairs per batch instead of 32 --
each as examples/s and fraction of the matmul peak, in interleaved rounds. Key ``training_batching``.

Keras 3 (``--only keras3``, notebook 11, :func:`benchmark_keras3`): the same two-tower training step on
the same ``tf.data`` pairs in tf-keras + transformers (with the course's ``FusedAdam`` and with stock
Adam) and in Keras 3 + KerasHub (stock Adam, with and without XLA), in interleaved rounds led by a
matmul peak; median examples/s of each and the ratios Keras 3 / tf-keras. Key ``training_keras3``.

Serving (``--only serving``, notebook 07's recommender, :func:`benchmark_serving`): on the full test
catalog, wall-clock milliseconds of a click update (numpy only) and of a free-text query (one encoder
call), p50 and p95 over many calls after a warm-up; batch-scoring throughput; and, in the same run,
brute-force scoring of the whole catalog with the cross-encoder for one user, measured once in full
(not extrapolated), with the ratio. Keys ``serving.*``; the machine and its load average go with them.

Results go to ``results/benchmarks.json`` (``--out`` to change), with the machine described. Each part
rewrites only its own key, so ``--only serving`` leaves the training numbers as they are.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .._internal.io import write_text_atomic
from .._internal.runinfo import cpu_model
from .._internal.tf import import_tensorflow
from ..config import PROFILES, get_profile, project_root
from ..data.protocol import load_or_make
from ..data.text import context_text
from ..models.encoders import load_tokenizer
from ..models.retrieval import Recipe
from ..serving.recommender import for_profile
from ..training.pairs import ctr_pairs, training_examples
from ..training.pipeline import bucketed_dataset
from .latency import crossencoder_full_catalog, fresh_crossencoder, measure_latency


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """Median float32 GFLOP/s of an ``n x n`` matmul on this machine (TensorFlow, all cores)."""
    tf = import_tensorflow()
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    mm = tf.function(lambda x, y: tf.matmul(x, y))
    mm(a, b).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        mm(a, b).numpy()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def _pairs(n_pairs: int, seed: int = 0):
    split = load_or_make("validation", verbose=False)
    texts = np.array(split.texts())
    ex = training_examples(split, seed=seed, max_examples=n_pairs)
    frame = ctr_pairs(ex, split.n_items, negatives=1, seed=seed).iloc[:n_pairs]
    ctx = [context_text(texts[c]) for c in frame["context"]]
    cand = [texts[i] for i in frame["candidate"]]
    return ctx, cand, frame["label"].to_numpy(np.float32)


def training_flops_per_example(n_params: int, length: int, layers: int, hidden: int, head_params: int = 0) -> float:
    """Useful training FLOPs for one sequence of ``length`` real tokens (forward + backward = 3 x forward).

    ``n_params`` act on every token (the encoder layers' matrices), ``head_params`` once per sequence
    (a pooler and a classifier read only the first token).
    """
    return 3.0 * (length * (2.0 * n_params + 4.0 * layers * length * hidden) + 2.0 * head_params)


def useful_param_counts(classifier) -> tuple:
    """``(per_token, per_sequence)`` parameter counts of a Hugging Face TF sequence classifier.

    Per token: the weights of the encoder layers (names containing ``/encoder/``). Per sequence:
    every other weight except the embeddings (a lookup, no FLOPs), i.e. the pooler and the head.
    """
    per_token = per_sequence = 0
    for w in classifier.weights:
        size = int(np.prod(w.shape))
        if "/encoder/" in w.name:
            per_token += size
        elif "embeddings" not in w.name:
            per_sequence += size
    return per_token, per_sequence


def interleaved_rounds(peak, passes: dict, repeats: int):
    """Time ``passes`` (name -> callable) in ``repeats`` rounds, each led by a ``peak()`` measurement.

    ``peak()`` is called once more first and discarded (see :func:`benchmark_training`). Returns
    ``(peaks, seconds)``: one peak per round and, per name, one wall-clock duration per round.
    """
    peak()
    peaks, seconds = [], {name: [] for name in passes}
    for _ in range(repeats):
        peaks.append(peak())
        for name, run in passes.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    return peaks, seconds


def _ctr_inputs(model_name, n_pairs: int, max_len: int):
    """``(features, lengths, labels)``: the benchmark's pairs tokenised as notebook 03 does (its
    ``tokenize_pairs`` cuts the context so that a pair has at most ``max_len`` = 48 tokens)."""
    tokenizer = load_tokenizer(model_name)
    ctx, cand, labels = _pairs(n_pairs)
    enc = tokenizer(ctx, cand, truncation="only_first", max_length=max_len)
    features = {"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"]}
    return features, np.array([len(x) for x in features["input_ids"]]), labels


def _fresh_crossencoder(model_name, jit_compile: bool = False, steps_per_execution: int = 1):
    """The pretrained encoder with a fresh one-logit head, compiled with ``FusedAdam`` and the CTR loss."""
    from ..training.optim import FusedAdam  # a TensorFlow class, made on first use

    tf = import_tensorflow()
    model = fresh_crossencoder(model_name)
    model.compile(optimizer=FusedAdam(3e-5), loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
                  jit_compile=jit_compile, steps_per_execution=steps_per_execution)
    return model


def _mean_flops(model, lengths) -> float:
    """Mean useful training FLOPs per example of ``model`` (a ``CrossEncoder``) over sequence ``lengths``."""
    per_token, per_sequence = useful_param_counts(model.classifier)
    cfg = model.classifier.config
    return float(np.mean([training_flops_per_example(per_token, n, cfg.num_hidden_layers, cfg.hidden_size, per_sequence)
                          for n in lengths]))


def benchmark_training(model_name=None, n_pairs: int = 512, batch_size: int = 32, max_len: int = 48, repeats: int = 5,
                       jit_compile: bool = False, naive: bool = True, peak=matmul_peak):
    """Examples/s of the course pipeline and of a naive one, and the course's fraction of the matmul
    peak, in interleaved rounds (see the module docstring).

    ``jit_compile`` compiles the course's train step with XLA; ``naive=False`` skips the naive
    pipeline (to compare settings of the course pipeline quickly); ``peak`` is called once per round
    and returns GFLOP/s.
    """
    tf = import_tensorflow()
    features, lengths, labels = _ctr_inputs(model_name, n_pairs, max_len)
    ids, tts = features["input_ids"], features["token_type_ids"]

    # course: bucketed dynamic padding + compiled Keras fit
    course = _fresh_crossencoder(model_name, jit_compile=jit_compile)
    data = bucketed_dataset(features, lengths, batch_size, labels=labels)

    def course_epoch():
        course.fit(data, epochs=1, verbose=0)

    # naive: pad everything to the longest example, Python loop, eager tape
    width = int(lengths.max())
    if naive:
        naive_model = _fresh_crossencoder(model_name)
        pad_ids = np.zeros((len(ids), width), np.int32)
        pad_tt = np.zeros_like(pad_ids)
        for i, (a, t) in enumerate(zip(ids, tts)):
            pad_ids[i, : len(a)] = a
            pad_tt[i, : len(t)] = t
        loss_fn = tf.keras.losses.BinaryCrossentropy(from_logits=True)
        opt = tf.keras.optimizers.Adam(3e-5)

        def naive_epoch():
            for lo in range(0, len(labels), batch_size):
                x = {"input_ids": tf.constant(pad_ids[lo : lo + batch_size]),
                     "token_type_ids": tf.constant(pad_tt[lo : lo + batch_size])}
                with tf.GradientTape() as tape:
                    loss = loss_fn(labels[lo : lo + batch_size], naive_model(x, training=True))
                grads = tape.gradient(loss, naive_model.trainable_variables)
                opt.apply_gradients(zip(grads, naive_model.trainable_variables))

    shapes = [tuple(x["input_ids"].shape) for x, _ in data]
    real_token_share = float(lengths.sum()) / sum(b * n for b, n in shapes)   # the rest is padding
    course_epoch()  # warm-up: traces every bucket shape once
    if naive:
        naive_epoch()  # warm-up
    per_token, per_sequence = useful_param_counts(course.classifier)
    flops = _mean_flops(course, lengths)
    # One round: the peak, then each pipeline, all within about a minute. The discarded first peak:
    # the first one measured in a process often reads low (docs/design-notes.md).
    passes = {"course": course_epoch, "naive": naive_epoch} if naive else {"course": course_epoch}
    peaks, seconds = interleaved_rounds(peak, passes, repeats)
    course_rates = [len(labels) / t for t in seconds["course"]]
    naive_rates = [len(labels) / t for t in seconds.get("naive", [])]
    fractions = [r * flops / 1e9 / p for r, p in zip(course_rates, peaks)]
    course_rate = statistics.median(course_rates)
    naive_rate = statistics.median(naive_rates) if naive_rates else float("nan")
    return {
        "course_examples_per_s": round(course_rate, 2),
        "naive_examples_per_s": round(naive_rate, 2),
        "speedup": round(course_rate / naive_rate, 2),
        "course_xla": bool(jit_compile),
        "course_runs_examples_per_s": [round(r, 2) for r in course_rates],
        "naive_runs_examples_per_s": [round(r, 2) for r in naive_rates],
        "useful_gflop_per_example": round(flops / 1e9, 4),
        "useful_params_per_token": per_token,
        "useful_params_per_sequence": per_sequence,
        "course_gflop_per_s": round(course_rate * flops / 1e9, 2),
        "matmul_peak_gflop_per_s": round(statistics.median(peaks), 1),
        "matmul_peak_runs_gflop_per_s": [round(p, 1) for p in peaks],
        "fraction_of_matmul_peak": round(statistics.median(fractions), 3),
        "fraction_of_matmul_peak_runs": [round(f, 3) for f in fractions],
        "fraction_is": "median over rounds of (course pass's useful FLOP/s / the same round's matmul peak)",
        "pairs": int(len(labels)),
        "batch_size": batch_size,
        "course_batches_per_pass": len(shapes),        # full batches, plus each bucket's partial last one
        "course_real_token_share": round(real_token_share, 3),
        "median_tokens": float(np.median(lengths)),
        "padded_length_naive": width,
        "max_len": max_len,
        "model": model_name,
    }


BATCHING_VARIANTS = (   # (name, batch size, group_window, steps_per_execution); the first is the course's
    ("buckets-32", 32, None, 1),
    ("grouped-32", 32, 50, 1),
    ("grouped-32-spe8", 32, 50, 8),
    ("buckets-64", 64, None, 1),
    ("grouped-64", 64, 50, 1),
)


def benchmark_batching(model_name=None, n_pairs: int = 512, max_len: int = 48, repeats: int = 5,
                       variants=BATCHING_VARIANTS, peak=matmul_peak) -> dict:
    """The course pipeline's batching choices, side by side: examples/s and fraction of the matmul peak.

    Each variant trains its own copy of the benchmark's cross-encoder (``FusedAdam``, compiled Keras
    ``fit``) on the same pairs, one pass per round, in ``repeats`` interleaved rounds led by a matmul
    peak (as :func:`benchmark_training`). A variant is ``(name, batch_size, group_window,
    steps_per_execution)``: ``group_window=None`` is the course's length buckets, an integer the
    length-grouped batches of :func:`coldstart.training.pipeline.bucketed_dataset`; ``steps_per_execution``
    is Keras' (training steps per call of the compiled function). Per variant: median examples/s,
    median fraction, its rounds, batches per pass and the share of real (not padding) tokens.
    """
    features, lengths, labels = _ctr_inputs(model_name, n_pairs, max_len)
    passes, out = {}, {"pairs": int(len(labels)), "max_len": max_len, "model": model_name, "variants": {}}
    for name, batch_size, window, spe in variants:
        model = _fresh_crossencoder(model_name, steps_per_execution=spe)
        data = bucketed_dataset(features, lengths, batch_size, labels=labels, group_window=window)
        shapes = [tuple(x["input_ids"].shape) for x, _ in data]
        # with several steps per call, Keras needs the number of steps of a pass
        kw = {"steps_per_epoch": len(shapes)} if spe > 1 else {}
        passes[name] = lambda model=model, data=data, kw=kw: model.fit(data, epochs=1, verbose=0, **kw)
        passes[name]()                                   # warm-up: traces every shape
        out["variants"][name] = {"batch_size": batch_size, "group_window": window, "steps_per_execution": spe,
                                 "batches_per_pass": len(shapes),
                                 "real_token_share": round(float(lengths.sum()) / sum(b * n for b, n in shapes), 3)}
    flops = _mean_flops(model, lengths)                  # the same model in every variant
    peaks, seconds = interleaved_rounds(peak, passes, repeats)
    for name, secs in seconds.items():
        rates = [len(labels) / t for t in secs]
        fractions = [r * flops / 1e9 / p for r, p in zip(rates, peaks)]
        out["variants"][name].update({
            "examples_per_s": round(statistics.median(rates), 2),
            "fraction_of_matmul_peak": round(statistics.median(fractions), 3),
            "fraction_of_matmul_peak_runs": [round(f, 3) for f in fractions]})
    out["matmul_peak_runs_gflop_per_s"] = [round(p, 1) for p in peaks]
    out["useful_gflop_per_example"] = round(flops / 1e9, 4)
    out["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    out["machine"] = machine()
    return out


def benchmark_step_breakdown(model_name=None, batch_size: int = 32, length: int = 24, repeats: int = 4,
                             steps: int = 5, peak=matmul_peak) -> dict:
    """Where one training step of the CTR cross-encoder spends its time, at one fixed shape.

    A batch of ``batch_size`` pairs of ``length`` real tokens (no padding: the pipeline's share is
    measured by :func:`benchmark_training`), timed as compiled ``tf.function`` calls, ``steps`` calls
    each, in ``repeats`` interleaved rounds led by a matmul peak (like the training benchmark):

    * ``forward``: the model in training mode (dropout on);
    * ``forward_backward``: the loss and the gradients of every weight, no update;
    * ``step_keras_adam`` / ``step_fused_adam``: the whole step, with ``tf.keras.optimizers.Adam``
      and with :class:`coldstart.training.optim.FusedAdam`;
    * the step's matrix products alone, at its shapes: ``matmul_projection`` (the batch's tokens times
      a hidden x hidden weight: attention's query, key, value and output), ``matmul_feed_forward``
      (times the hidden x intermediate weight) and ``matmul_attention`` (each head's length x length
      scores, batched over pairs and heads).

    Returns the median milliseconds of each part and, from its useful FLOPs (a forward pass is a third
    of a training step's; a product of m x k by k x n does 2 m k n), its median fraction of the same
    round's matmul peak.
    """
    from ..training.optim import FusedAdam  # a TensorFlow class, made on first use

    tf = import_tensorflow()
    model = fresh_crossencoder(model_name)
    cfg = model.classifier.config
    rng = np.random.default_rng(0)
    x = {"input_ids": tf.constant(rng.integers(cfg.vocab_size // 10, cfg.vocab_size, (batch_size, length)), tf.int32),
         "token_type_ids": tf.constant(np.repeat([[0] * (length // 2) + [1] * (length - length // 2)], batch_size, 0),
                                       tf.int32)}
    y = tf.constant(rng.integers(0, 2, batch_size), tf.float32)
    loss_fn = tf.keras.losses.BinaryCrossentropy(from_logits=True)
    model(x)
    weights = model.trainable_variables

    def gradients():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return tape.gradient(loss, weights)

    def step_with(optimizer):
        optimizer.build(weights)
        return lambda: optimizer.apply_gradients(zip(gradients(), weights))

    tokens, hidden, heads = batch_size * length, cfg.hidden_size, cfg.num_attention_heads
    a, w_proj, w_ff = (tf.random.normal(shape) for shape in
                       [(tokens, hidden), (hidden, hidden), (hidden, cfg.intermediate_size)])
    q = tf.random.normal((batch_size * heads, length, hidden // heads))
    parts = {"forward": lambda: model(x, training=True), "forward_backward": gradients,
             "step_keras_adam": step_with(tf.keras.optimizers.Adam(3e-5)),
             "step_fused_adam": step_with(FusedAdam(3e-5)),
             "matmul_projection": lambda: tf.matmul(a, w_proj),
             "matmul_feed_forward": lambda: tf.matmul(a, w_ff),
             "matmul_attention": lambda: tf.matmul(q, q, transpose_b=True)}
    compiled = {name: tf.function(fn) for name, fn in parts.items()}
    for fn in compiled.values():
        fn()                                                    # trace

    def timed(fn):
        def run():
            for _ in range(steps):
                out = fn()
            tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)  # wait for the result
        return run

    peaks, seconds = interleaved_rounds(peak, {name: timed(fn) for name, fn in compiled.items()}, repeats)
    per_token, per_sequence = useful_param_counts(model.classifier)
    step_flops = batch_size * training_flops_per_example(per_token, length, cfg.num_hidden_layers, cfg.hidden_size,
                                                         per_sequence)
    out = {"batch_size": batch_size, "tokens": length, "model": model_name,
           "useful_gflop_per_step": float(f"{step_flops / 1e9:.4g}"),
           "matmul_peak_gflop_per_s": float(f"{statistics.median(peaks):.4g}")}
    part_flops = {"forward": step_flops / 3, "matmul_projection": 2.0 * tokens * hidden * hidden,
                  "matmul_feed_forward": 2.0 * tokens * hidden * cfg.intermediate_size,
                  "matmul_attention": 2.0 * batch_size * heads * length * length * (hidden // heads)}
    for name, secs in seconds.items():
        flops = part_flops.get(name, step_flops)
        ms = [1000 * t / steps for t in secs]
        out[f"{name}_ms"] = float(f"{statistics.median(ms):.4g}")
        out[f"{name}_fraction_of_matmul_peak"] = round(statistics.median(
            [flops / (m / 1000) / 1e9 / p for m, p in zip(ms, peaks)]), 3)
    return out


KERAS3_VARIANTS = ("tf-keras FusedAdam", "tf-keras Adam", "keras3 Adam", "keras3 Adam XLA")


def benchmark_keras3(model_name=None, n_pairs: int = 512, batch_size: int = 32, max_len: int = 32, repeats: int = 5,
                     variants=KERAS3_VARIANTS, peak=matmul_peak) -> dict:
    """Examples/s of one two-tower training pass (notebook 03's contexts -> items pairs, ``n_pairs`` of
    them, length-bucketed) in each of ``variants``, in ``repeats`` interleaved rounds led by a matmul
    peak (as :func:`benchmark_training`). Every variant is a fresh model from the same pretrained
    weights, warmed up by one pass (tracing, and XLA's compilation per batch shape, excluded)."""
    import keras

    from ..models.bert import TwoTower
    from ..models.encoders import load_encoder
    from ..models.keras3 import KerasTwoTower, load_backbone
    from ..training.optim import FusedAdam
    from ..training.pairs import tokenized_tower_pairs
    from ..training.pipeline import pairs_dataset

    tf = import_tensorflow()
    split = load_or_make("validation", verbose=False)
    tokenizer, _ = load_backbone(model_name)
    draw = tokenized_tower_pairs(training_examples(split, seed=0), split.texts(), tokenizer, n_pairs, item_len=max_len)
    data = pairs_dataset([draw], batch_size)
    lengths = [len(x) + len(y) for x, y in zip(draw["context_ids"], draw["item_ids"])]

    def fresh(variant):
        if variant.startswith("tf-keras"):
            model = TwoTower(load_encoder(model_name)[1])
            model.compile(optimizer=FusedAdam(3e-5) if "Fused" in variant else tf.keras.optimizers.Adam(3e-5))
        else:
            model = KerasTwoTower(load_backbone(model_name)[1])
            model.compile(optimizer=keras.optimizers.Adam(3e-5), jit_compile=variant.endswith("XLA"))
        return model

    passes = {}
    for variant in variants:
        model = fresh(variant)
        passes[variant] = lambda model=model: model.fit(data, epochs=1, verbose=0)
        passes[variant]()                                    # warm-up: traces (and compiles) every shape
    peaks, seconds = interleaved_rounds(peak, passes, repeats)
    n = len(draw["item"])
    rates = {v: [n / t for t in secs] for v, secs in seconds.items()}
    out = {"variants": {v: {"examples_per_s": round(statistics.median(r), 2),
                            "runs_examples_per_s": [round(x, 2) for x in r]} for v, r in rates.items()},
           "ratios": {f"{a} / {b}": round(statistics.median(rates[a]) / statistics.median(rates[b]), 3)
                      for a in variants if a.startswith("keras3") for b in variants if b.startswith("tf-keras")},
           "pairs": n, "batch_size": batch_size, "batches_per_pass": sum(1 for _ in data),
           "median_tokens_per_pair": float(np.median(lengths)), "model": model_name,
           "matmul_peak_runs_gflop_per_s": [round(p, 1) for p in peaks],
           "versions": {"keras": keras.__version__, "tensorflow": tf.__version__},
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "machine": machine()}
    return out


def machine() -> dict:
    """A short description of the machine the numbers come from."""
    tf = import_tensorflow()
    return {
        "cpu": platform.processor() or platform.machine(),
        **cpu_model(),
        "logical_cpus": os.cpu_count(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "os": platform.system(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
    }


def benchmark_serving(profile=None, n_users: int = 300, n_queries: int = 300, batch_users: int = 1000,
                      crossencoder: bool = True) -> dict:
    """Latency of notebook 07's recommender on the full test catalog (see the module docstring).

    The recommender is the one notebook 07 serves (:func:`coldstart.serving.for_profile`): the
    fine-tuned two-tower with its recipe when ``runs/<profile>/`` has it, else the pretrained encoder
    with an ID part (lam 500) and a new-item bias, so every serving path runs (the weights do not
    change the time).
    """
    profile = profile if hasattr(profile, "encoder") else get_profile(profile)
    split = load_or_make("test", verbose=False)
    rec, how = for_profile(split, profile, progress=False, zero_shot_recipe=Recipe(w_text=1.0, beta=0.005, lam=500.0))
    load_before = os.getloadavg()
    lat = measure_latency(rec, split, n_users=n_users, n_queries=n_queries, batch_users=batch_users)
    out = {
        "click_p50_ms": round(lat["click_p50_ms"], 2), "click_p95_ms": round(lat["click_p95_ms"], 2),
        "query_p50_ms": round(lat["query_p50_ms"], 2), "query_p95_ms": round(lat["query_p95_ms"], 2),
        "batch_users_per_s": round(lat["batch_users_per_s"], 1),
        "click_calls": lat["n_clicks"], "query_calls": lat["n_queries"], "batch_users": lat["batch_users"],
        "catalog_items": rec.n_items, "recommender": how, "recipe": dataclasses.asdict(rec.recipe),
        "targets": {"click_p95_ms": 10, "query_p95_ms": 50},
    }
    if crossencoder:
        seg = split.segment("k=3").sample(1, seed=0)
        context = context_text(split.texts(seg.context[0]))
        out.update(crossencoder_full_catalog(profile.encoder.model_name, context, split.texts()))
        out["crossencoder_vs_query_p50"] = round(out["crossencoder_full_catalog_ms"] / lat["query_p50_ms"], 1)
        out["crossencoder_vs_click_p50"] = round(out["crossencoder_full_catalog_ms"] / lat["click_p50_ms"], 1)
        out["ratio"] = out["crossencoder_vs_query_p50"]
        out["ratio_is"] = "crossencoder_full_catalog_ms / query_p50_ms"
    load_after = os.getloadavg()
    out["load_average_1_5_15_before"] = [round(x, 2) for x in load_before]
    out["load_average_1_5_15_after"] = [round(x, 2) for x in load_after]
    out["nice"] = os.nice(0)
    out["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    out["machine"] = machine()
    return out


def merge_results(out, key: str, values: dict) -> dict:
    """Set ``results[key] = values`` in the JSON file ``out``, keeping every other key; atomic write."""
    out = Path(out)
    results = json.loads(out.read_text()) if out.exists() else {}
    results[key] = values
    write_text_atomic(json.dumps(results, indent=1, sort_keys=True), out)
    return results


def main_serving(args, profile, out: Path) -> int:
    """``--only serving``: measure the serving latencies and merge them into ``out``."""
    print(f"serving benchmark on the full test catalog ({args.users} users' sessions, {args.queries} queries, "
          "then the cross-encoder over the whole catalog once) ...", flush=True)
    serve = benchmark_serving(profile, n_users=args.users, n_queries=args.queries)
    merge_results(out, "serving", serve)
    print(json.dumps({k: v for k, v in serve.items() if k != "machine"}, indent=1))
    print(f"written to {out} (key 'serving')")
    return 0


def _run_part(out: Path, key: str, banner: str, measure) -> int:
    """Print ``banner``, run ``measure()``, merge its results into ``out`` under ``key`` and print them."""
    print(f"{banner} ...", flush=True)
    values = measure()
    merge_results(out, key, values)
    print(json.dumps(values, indent=1))
    print(f"written to {out} (key '{key}')")
    return 0


def _at_least_one(text: str) -> int:
    """argparse type: a whole number of at least 1 (a count of rounds, pairs, calls)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def check_out(out) -> Path:
    """Check that the results file ``out`` can be merged into (:func:`merge_results`) and return it:
    not a folder, its folder creatable and writable (tried with a temporary file), and, if it
    exists, a JSON object. Raises ``ValueError`` saying what is wrong, so the benchmark can refuse
    before minutes of measuring rather than after."""
    out = Path(out).expanduser()
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder: give a file name such as {out / 'benchmarks.json'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise ValueError(f"--out {out}: no file can be written in {out.parent} "
                         f"({type(exc).__name__}: {exc.strerror or exc}); choose a writable place") from exc
    if out.exists():
        try:
            results = json.loads(out.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"--out {out} exists but cannot be read as JSON ({type(exc).__name__}); the "
                             "benchmark keeps the file's other results, so fix or move it first") from exc
        if not isinstance(results, dict):
            raise ValueError(f"--out {out} holds JSON that is not an object of results; fix or move it first")
    return out


def main(argv=None) -> int:
    """The command line. Every argument -- the profile, the counts, ``--out`` -- is checked before
    anything is measured: a bad one ends in one line on stderr (exit status 2), not a traceback
    after minutes of measuring."""
    parser = argparse.ArgumentParser(description="Course speed benchmarks")
    parser.add_argument("--profile", default=None, help=f"one of {', '.join(PROFILES)} (default: from the hardware)")
    parser.add_argument("--pairs", type=_at_least_one, default=512)
    parser.add_argument("--repeats", type=_at_least_one, default=5, help="training: timed rounds")
    parser.add_argument("--batch-size", type=_at_least_one, default=32, help="training: batch size of both pipelines")
    parser.add_argument("--xla", action="store_true", help="training: compile the course's train step with XLA")
    parser.add_argument("--out", default=str(project_root() / "results" / "benchmarks.json"))
    parser.add_argument("--only", choices=("serving", "training", "breakdown", "batching", "keras3"), default=None,
                        help="run one part (default: training and serving; breakdown: one training step, part by "
                             "part; batching: the pipeline's batching choices side by side; keras3: the two-tower "
                             "step in tf-keras and in Keras 3 + KerasHub)")
    parser.add_argument("--users", type=_at_least_one, default=300, help="serving: new users whose sessions are timed")
    parser.add_argument("--queries", type=_at_least_one, default=300, help="serving: free-text queries timed")
    args = parser.parse_args(argv)
    try:
        profile = get_profile(args.profile)
        out = check_out(args.out)
    except ValueError as exc:
        parser.error(str(exc))
    if args.only == "serving":
        return main_serving(args, profile, out)
    if args.only == "breakdown":
        return _run_part(out, "training_breakdown", f"training step breakdown: {args.batch_size} pairs x 24 tokens, "
                         f"{args.repeats} rounds", lambda: benchmark_step_breakdown(
                             profile.encoder.model_name, batch_size=args.batch_size, repeats=args.repeats))
    if args.only == "batching":
        names = ", ".join(v[0] for v in BATCHING_VARIANTS)
        return _run_part(out, "training_batching", f"batching benchmark: {args.pairs} pairs, {args.repeats} rounds of "
                         f"(matmul peak, {names})", lambda: benchmark_batching(
                             profile.encoder.model_name, n_pairs=args.pairs, repeats=args.repeats))
    if args.only == "keras3":
        return _run_part(out, "training_keras3", f"Keras 3 benchmark: {args.pairs} two-tower pairs, {args.repeats} "
                         f"rounds of (matmul peak, {', '.join(KERAS3_VARIANTS)})", lambda: benchmark_keras3(
                             profile.encoder.model_name, n_pairs=args.pairs, batch_size=args.batch_size,
                             repeats=args.repeats))
    print(f"training benchmark: {args.pairs} pairs, {args.repeats} rounds of (matmul peak, course pass, naive pass)"
          " ...",
          flush=True)
    train = benchmark_training(profile.encoder.model_name, n_pairs=args.pairs, repeats=args.repeats,
                               batch_size=args.batch_size, jit_compile=args.xla)
    merge_results(out, "training", train)
    merge_results(out, "machine", machine())
    print(json.dumps(train, indent=1))
    print(f"written to {out}")
    if args.only is None:
        return main_serving(args, profile, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
