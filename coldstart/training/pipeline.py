"""Training plumbing shared by the fine-tuning chapters: hardware, input pipeline, callbacks.

* :func:`pick_strategy` -- a ``tf.distribute`` strategy from the hardware: TPU (Colab) ->
  ``TPUStrategy``; several GPUs -> ``MirroredStrategy``; otherwise the default strategy.
* :func:`configure_precision` -- mixed precision (``mixed_float16``) where it pays (GPUs with tensor
  cores, ``mixed_bfloat16`` on TPU) and XLA compilation on accelerators; nothing on CPU. There XLA
  did not help, and mixed precision made training slower on AVX2 cores; bfloat16 on an Intel CPU
  with AMX made a MiniLM step 1.23x faster (256 vs 313 ms), too little to switch precision by CPU
  model (README, Speed).
* :func:`bucketed_dataset` -- a ``tf.data`` pipeline that groups sequences of similar length and pads
  each batch only to its own longest member (dynamic padding), then prefetches. Item texts are about
  ten tokens; padding them to the longest context in the data would waste most of the compute. With
  ``group_window`` it sorts by length within runs of batches instead of bucketing (length-grouped
  batches: less padding; measured by ``python -m coldstart.tools.speed --only batching``).
* :class:`FusedAdam` -- ``tf.keras.optimizers.Adam`` with each weight's update in one fused kernel:
  the same algorithm, to rounding. The stock one makes five passes over memory per weight; on this
  project's 2-core CPUs that was 17-21% of a MiniLM training step.
* :func:`warmup_schedule` -- a learning rate that rises linearly from zero to its peak over the first
  steps, then stays; adapters and LoRA need it at their high learning rates (notebook 06).
* :class:`RankingCallback` -- evaluates the model on the validation protocol after every epoch, logs
  the metric (so Keras' ``EarlyStopping`` and ``ModelCheckpoint`` can monitor it) and keeps the best
  weights.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Callable, Optional, Sequence

import numpy as np

from .._internal.tf import import_tensorflow
from .._internal.progress import keras_verbose  # noqa: F401  (re-exported: notebooks call training.keras_verbose())


def pick_strategy(verbose: bool = True):
    """The ``tf.distribute`` strategy for this machine (see the module docstring)."""
    tf = import_tensorflow()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()  # Colab TPU
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    except (ValueError, RuntimeError, tf.errors.NotFoundError):
        gpus = tf.config.list_logical_devices("GPU")
        strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if verbose:
        print(f"strategy: {type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s)")
    return strategy


def configure_precision(strategy=None, verbose: bool = True) -> dict:
    """Switch on mixed precision and XLA where the hardware gains from them; returns what was set.

    GPUs of compute capability 7.0+ (tensor cores) get ``mixed_float16``; TPUs ``mixed_bfloat16``;
    both get ``jit_compile=True`` for ``model.compile``. CPUs keep float32 without XLA.
    """
    tf = import_tensorflow()
    on_tpu = strategy is not None and "TPU" in type(strategy).__name__
    gpus = tf.config.list_physical_devices("GPU")
    policy, jit = "float32", False
    if on_tpu:
        policy, jit = "mixed_bfloat16", True
    elif gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        if details.get("compute_capability", (0, 0)) >= (7, 0):
            policy = "mixed_float16"
        jit = True
    tf.keras.mixed_precision.set_global_policy(policy)
    if verbose:
        print(f"precision policy: {policy}; XLA: {jit}")
    return {"policy": policy, "jit_compile": jit}


def bucketed_dataset(
    features: dict,
    lengths: np.ndarray,
    batch_size: int,
    boundaries: Sequence[int] = (8, 12, 16, 24, 32, 48, 64),
    shuffle: bool = True,
    seed: int = 0,
    labels: Optional[np.ndarray] = None,
    group_window: Optional[int] = None,
):
    """A ``tf.data`` pipeline over ragged token sequences with length-bucketed dynamic padding.

    ``features`` maps names to lists of int sequences (e.g. ``input_ids``) or to arrays of scalars.
    ``lengths`` is what examples are bucketed by (e.g. the context's token count). Each batch holds
    examples of one length bucket and is padded only to its own longest member (0 = [PAD] for BERT
    tokenizers); the last partial batch of a bucket is kept. Yields ``features`` dicts (with an extra
    ``_len`` entry, ignored by the models), or ``(features, label)`` pairs when ``labels`` are given.

    ``group_window=w`` groups by length without buckets instead (the course's chapters keep the
    buckets; ``python -m coldstart.tools.speed --only batching`` compares the two): the shuffled examples
    are sorted by length within each run of ``w`` batches, cut into batches (one partial batch at most,
    the last), and the batches are shuffled. Hugging Face's ``Trainer(group_by_length=True)`` does the
    same with ``w = 50``. Less padding than buckets, and no partial batch per bucket.
    """
    tf = import_tensorflow()
    lengths = np.asarray(lengths, dtype=np.int32)
    ragged = {k: v for k, v in features.items() if len(v) and hasattr(v[0], "__len__")}
    scalar = {k: np.asarray(v) for k, v in features.items() if k not in ragged}
    if labels is not None:
        labels = np.asarray(labels)

    # The whole data set as tensors (no Python generator in the input loop: nothing competes with the
    # training step for the interpreter, and TPUs can run it); one fixed order per data set, the same
    # every epoch, like the batches a seed gives.
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths)) if shuffle else np.arange(len(lengths))
    if group_window is not None:
        order = _length_grouped(order, lengths, batch_size, int(group_window), rng if shuffle else None)
    columns = {}
    for k, v in ragged.items():
        rows = [np.asarray(v[i], dtype=np.int32).reshape(-1) for i in order]
        flat = np.concatenate(rows) if rows else np.zeros(0, np.int32)
        columns[k] = tf.RaggedTensor.from_row_lengths(flat, np.array([len(r) for r in rows], np.int64))
    columns.update({k: v[order] for k, v in scalar.items()})
    columns["_len"] = lengths[order]
    ds = tf.data.Dataset.from_tensor_slices((columns, labels[order]) if labels is not None else columns)
    if ragged:   # each row of a ragged column is a plain 1-D tensor: say so, for padded_batch

        def to_dense(x):
            return {k: tf.ensure_shape(tf.convert_to_tensor(t), [None]) if k in ragged else t for k, t in x.items()}

        ds = ds.map((lambda x, y: (to_dense(x), y)) if labels is not None else to_dense)

    if group_window is not None:
        ds = ds.padded_batch(batch_size)       # ``order`` already holds the batches, one after another
    else:
        bounds = [b for b in boundaries if b < max(int(lengths.max()), 1)] or [int(lengths.max())]
        length_of = (lambda x, y: x["_len"]) if labels is not None else (lambda x: x["_len"])
        ds = ds.bucket_by_sequence_length(
            element_length_func=length_of,
            bucket_boundaries=[b + 1 for b in bounds],
            bucket_batch_sizes=[batch_size] * (len(bounds) + 1),
            drop_remainder=False,
        )
    # A fixed prefetch with tf.data's autotuner off. On this project's 2-core machine the autotuner's
    # background thread made the end of a Keras `fit` wait ~10 s for the iterator to be torn down in
    # 3 of 6 one-epoch passes (0 of 8 with it off), and this pipeline has nothing to tune: its
    # per-element work is slicing tensors. The batches are the same either way.
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(2).with_options(options)


def _length_grouped(order: np.ndarray, lengths: np.ndarray, batch_size: int, window: int, rng=None) -> np.ndarray:
    """``order`` rearranged for :func:`bucketed_dataset`'s ``group_window``: sorted by length within each
    run of ``window * batch_size`` examples, then its full batches shuffled by ``rng`` (kept in place
    without one); a partial batch stays last."""
    if window < 1:
        raise ValueError(f"group_window must be at least 1 (batches per sorted run), got {window}")
    run = window * batch_size
    order = np.concatenate([chunk[np.argsort(lengths[chunk], kind="stable")]
                            for chunk in np.split(order, range(run, len(order), run))])
    full = len(order) // batch_size * batch_size
    batches = order[:full].reshape(-1, batch_size)
    if rng is not None:
        batches = batches[rng.permutation(len(batches))]
    return np.concatenate([batches.reshape(-1), order[full:]])


def padded_batches(sequences: Sequence[Sequence[int]], batch_size: int, order: Optional[np.ndarray] = None):
    """Yield ``(index, ids, mask)`` numpy batches padded to each batch's longest sequence."""
    order = np.arange(len(sequences)) if order is None else order
    for lo in range(0, len(order), batch_size):
        idx = order[lo : lo + batch_size]
        width = max(1, max(len(sequences[i]) for i in idx))
        ids = np.zeros((len(idx), width), dtype=np.int32)
        mask = np.zeros_like(ids)
        for row, i in enumerate(idx):
            ids[row, : len(sequences[i])] = sequences[i]
            mask[row, : len(sequences[i])] = 1
        yield idx, ids, mask


def __getattr__(name):
    # FusedAdam subclasses a TensorFlow class, so it is made on first use: importing this module
    # does not import TensorFlow.
    if name == "FusedAdam":
        return _fused_adam()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.lru_cache(maxsize=None)
def _fused_adam():
    tf = import_tensorflow()

    class FusedAdam(tf.keras.optimizers.Adam):
        """``tf.keras.optimizers.Adam`` that updates each weight with one fused kernel.

        The stock ``update_step`` writes Adam as five TensorFlow ops per weight (update m, update v,
        sqrt, divide, subtract), each a pass over memory. ``ResourceApplyAdam`` -- the kernel the older
        Keras optimizers used -- does the same arithmetic in one pass: m += (g - m)(1 - b1),
        v += (g^2 - v)(1 - b2), w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps). Results agree
        with ``Adam`` to float32 rounding (a test checks it), not bit for bit.

        The word-embedding gradient arrives as ``tf.IndexedSlices`` (only the rows of this batch's
        tokens). Stock Adam still decays m and v of *every* row, so nothing is lost by making it dense
        and taking the fused path. AMSGrad and the adaptive epsilon fall back to the stock update.
        For MiniLM-L6 (22.7 M weights), one update on 2 cores: 86 -> 29 ms (AMD EPYC), 78 -> 26 ms
        (Intel Xeon, notebook 03).
        """

        def update_step(self, gradient, variable):
            if self.amsgrad or getattr(self, "adaptive_epsilon", False):
                return super().update_step(gradient, variable)
            if isinstance(gradient, tf.IndexedSlices):
                gradient = tf.convert_to_tensor(gradient)   # the rows' sum, scattered into zeros
            dtype = variable.dtype
            step = tf.cast(self.iterations + 1, dtype)
            beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
            slot = self._index_dict[self._var_key(variable)]
            tf.raw_ops.ResourceApplyAdam(
                var=variable.handle, m=self._momentums[slot].handle, v=self._velocities[slot].handle,
                beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
                lr=tf.cast(self.learning_rate, dtype), beta1=beta_1, beta2=beta_2,
                epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype))

    FusedAdam.__module__ = __name__
    return FusedAdam


def warmup_schedule(peak: float, steps: int):
    """A Keras learning-rate schedule: ``peak * min(1, (step + 1) / steps)``, a linear warm-up from
    almost zero to ``peak`` over the first ``steps`` optimizer steps, then constant.

    Pass it to an optimizer in place of a number: ``tf.keras.optimizers.Adam(warmup_schedule(2e-3, 64))``.
    """
    if not peak > 0 or int(steps) < 1:
        raise ValueError(f"warmup_schedule needs peak > 0 and steps >= 1, got peak={peak!r}, steps={steps!r}")
    tf = import_tensorflow()

    class Warmup(tf.keras.optimizers.schedules.LearningRateSchedule):
        # linear warm-up from 0 to `peak` over `steps` optimizer steps, then constant
        def __init__(self, peak, steps):
            self.peak, self.steps = float(peak), int(steps)

        def __call__(self, step):
            return self.peak * tf.minimum(1.0, tf.cast(step + 1, tf.float32) / self.steps)

        def get_config(self):
            return {"peak": self.peak, "steps": self.steps}

    return Warmup(peak, steps)


def make_ranking_callback(evaluate_fn: Callable[[], float], name: str = "val_ndcg", patience: int = 1,
                          evaluate_before: bool = True, verbose: bool = True):
    """A Keras callback that runs ``evaluate_fn()`` (a validation metric, higher is better) after
    each epoch, writes it into the epoch's logs as ``name``, keeps the best weights and stops when
    the metric has not improved for ``patience`` epochs. With ``evaluate_before`` the pretrained
    model is scored first (epoch 0), so training that only hurts restores the pretrained weights."""
    tf = import_tensorflow()

    class RankingCallback(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best, self.best_epoch, self.best_weights, self.history = -math.inf, -1, None, []
            self.best_index = None  # position of the best evaluation in ``history``

        def on_train_begin(self, logs=None):
            if not evaluate_before:
                return
            start = time.perf_counter()
            value = float(evaluate_fn())
            self.history.append(value)
            self.best, self.best_epoch, self.best_weights = value, -1, self.model.get_weights()
            self.best_index = 0
            if verbose:
                print(f"before training: {name} = {value:.4f} ({time.perf_counter() - start:.0f} s)", flush=True)

        def on_epoch_end(self, epoch, logs=None):
            start = time.perf_counter()
            value = float(evaluate_fn())
            self.history.append(value)
            if logs is not None:
                logs[name] = value
            improved = value > self.best
            if improved:
                self.best, self.best_epoch, self.best_weights = value, epoch, self.model.get_weights()
                self.best_index = len(self.history) - 1
            if verbose:
                mark = " (best)" if improved else ""
                print(f"epoch {epoch + 1}: {name} = {value:.4f}{mark} ({time.perf_counter() - start:.0f} s)", flush=True)
            if epoch - self.best_epoch >= patience:
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)
                if verbose:
                    which = "the pretrained weights" if self.best_epoch < 0 else f"epoch {self.best_epoch + 1}"
                    print(f"restored the best weights: {which} ({name} = {self.best:.4f})")

    return RankingCallback()
