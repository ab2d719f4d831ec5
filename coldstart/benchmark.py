"""Speed benchmarks: ``python -m coldstart.benchmark`` (or ``make benchmark``).

Training: the same CTR cross-encoder (the profile's encoder, one logit) is trained on the same
protocol-like pairs, on the same machine, in one run, two ways:

* **course** -- the course's pipeline: ``tf.data`` with length-bucketed dynamic padding and prefetch,
  a compiled train step through Keras ``fit``;
* **naive** -- like the source's sample code: every example padded to the longest in the data set,
  a Python loop over steps calling the model eagerly under ``tf.GradientTape``.

Each is warmed up (tracing excluded), then timed over ``--repeats`` passes; the median examples/s is
reported, with the ratio. The achieved FLOP/s counts the useful work only (real tokens, not padding:
``3 x tokens x (2 N + 4 layers x length x hidden)`` per example, N = non-embedding parameters) and is
divided by the machine's matmul peak, measured in the same run with a large float32 ``tf.matmul``.

Results go to ``results/benchmarks.json`` (``--out`` to change), with the machine described.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from .config import get_profile, project_root


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """Median float32 GFLOP/s of an ``n x n`` matmul on this machine (TensorFlow, all cores)."""
    from ._tf import import_tensorflow

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
    from . import pairs, protocol

    split = protocol.load_or_make("validation", verbose=False)
    texts = np.array(split.texts())
    ex = pairs.training_examples(split, seed=seed, max_examples=n_pairs)
    frame = pairs.ctr_pairs(ex, split.n_items, negatives=1, seed=seed).iloc[:n_pairs]
    ctx = [" ; ".join(texts[c]) for c in frame["context"]]
    cand = [texts[i] for i in frame["candidate"]]
    return ctx, cand, frame["label"].to_numpy(np.float32)


def training_flops_per_example(n_params: int, length: int, layers: int, hidden: int) -> float:
    """Useful training FLOPs for one sequence of ``length`` real tokens (forward + backward = 3 x forward)."""
    return 3.0 * length * (2.0 * n_params + 4.0 * layers * length * hidden)


def benchmark_training(model_name=None, n_pairs: int = 512, batch_size: int = 32, max_len: int = 64, repeats: int = 3):
    """Examples/s of the course pipeline and of a naive one (see the module docstring)."""
    from transformers import TFAutoModelForSequenceClassification

    from . import training
    from ._tf import import_tensorflow, quiet_transformers
    from .encoders import load_encoder, resolve_model
    from .models import CrossEncoder

    tf = import_tensorflow()
    quiet_transformers()
    tokenizer, _ = load_encoder(model_name)
    ctx, cand, labels = _pairs(n_pairs)
    enc = tokenizer(ctx, cand, truncation="only_first", max_length=max_len)
    ids, tts = enc["input_ids"], enc["token_type_ids"]
    lengths = np.array([len(x) for x in ids])

    def fresh():
        clf = TFAutoModelForSequenceClassification.from_pretrained(resolve_model(model_name), num_labels=1)
        model = CrossEncoder(clf)
        model.compile(optimizer=tf.keras.optimizers.Adam(3e-5), loss=tf.keras.losses.BinaryCrossentropy(from_logits=True))
        return model

    # course: bucketed dynamic padding + compiled Keras fit
    course = fresh()
    data = training.bucketed_dataset({"input_ids": ids, "token_type_ids": tts}, lengths, batch_size, labels=labels)
    course.fit(data, epochs=1, verbose=0)  # warm-up: traces every bucket shape once
    course_rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        course.fit(data, epochs=1, verbose=0)
        course_rates.append(len(labels) / (time.perf_counter() - start))

    # naive: pad everything to the longest example, Python loop, eager tape
    naive = fresh()
    width = int(lengths.max())
    pad_ids = np.zeros((len(ids), width), np.int32)
    pad_tt = np.zeros_like(pad_ids)
    for i, (a, t) in enumerate(zip(ids, tts)):
        pad_ids[i, : len(a)] = a
        pad_tt[i, : len(t)] = t
    loss_fn = tf.keras.losses.BinaryCrossentropy(from_logits=True)
    opt = tf.keras.optimizers.Adam(3e-5)

    def naive_epoch():
        for lo in range(0, len(labels), batch_size):
            x = {"input_ids": tf.constant(pad_ids[lo : lo + batch_size]), "token_type_ids": tf.constant(pad_tt[lo : lo + batch_size])}
            with tf.GradientTape() as tape:
                loss = loss_fn(labels[lo : lo + batch_size], naive(x, training=True))
            grads = tape.gradient(loss, naive.trainable_variables)
            opt.apply_gradients(zip(grads, naive.trainable_variables))

    naive_epoch()  # warm-up
    naive_rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        naive_epoch()
        naive_rates.append(len(labels) / (time.perf_counter() - start))

    cfg = course.classifier.config
    embedding_params = sum(int(np.prod(w.shape)) for w in course.classifier.trainable_weights if "embeddings" in w.name)
    n_params = course.classifier.count_params() - embedding_params
    flops = float(np.mean([training_flops_per_example(n_params, n, cfg.num_hidden_layers, cfg.hidden_size) for n in lengths]))
    course_rate = statistics.median(course_rates)
    naive_rate = statistics.median(naive_rates)
    return {
        "course_examples_per_s": round(course_rate, 2),
        "naive_examples_per_s": round(naive_rate, 2),
        "speedup": round(course_rate / naive_rate, 2),
        "course_runs_examples_per_s": [round(r, 2) for r in course_rates],
        "naive_runs_examples_per_s": [round(r, 2) for r in naive_rates],
        "useful_gflop_per_example": round(flops / 1e9, 4),
        "course_gflop_per_s": round(course_rate * flops / 1e9, 2),
        "pairs": int(len(labels)),
        "batch_size": batch_size,
        "median_tokens": float(np.median(lengths)),
        "padded_length_naive": width,
        "model": model_name,
    }


def machine() -> dict:
    """A short description of the machine the numbers come from."""
    from ._tf import import_tensorflow

    tf = import_tensorflow()
    return {
        "cpu": platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "os": platform.system(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Course speed benchmarks")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--pairs", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(project_root() / "results" / "benchmarks.json"))
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    print("measuring the matmul peak ...", flush=True)
    peak = matmul_peak()
    print(f"matmul peak: {peak:.1f} GFLOP/s; training benchmark ({args.pairs} pairs x {args.repeats} repeats) ...", flush=True)
    train = benchmark_training(profile.model_name, n_pairs=args.pairs, repeats=args.repeats)
    train["matmul_peak_gflop_per_s"] = round(peak, 1)
    train["fraction_of_matmul_peak"] = round(train["course_gflop_per_s"] / peak, 3)
    results["training"] = train
    results["machine"] = machine()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, sort_keys=True))
    print(json.dumps(train, indent=1))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
