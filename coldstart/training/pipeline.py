"""The input pipeline: token sequences to ``tf.data`` batches padded only as much as needed.

* :func:`bucketed_dataset` -- a ``tf.data`` pipeline that groups sequences of similar length and
  pads each batch only to its own longest member (dynamic padding), then prefetches. Item texts are
  about ten tokens; padding them to the longest context in the data would waste most of the compute.
  With ``group_window`` it sorts by length within runs of batches instead of bucketing
  (length-grouped batches: less padding; ``make benchmark ONLY=batching`` compares the two).
* :func:`pairs_dataset` -- tokenized (context, item) pairs, one draw per epoch, as one bucketed
  dataset: what every two-tower training chapter feeds ``fit``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .._internal.tf import import_tensorflow


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
    buckets; ``make benchmark ONLY=batching`` compares the two): the shuffled examples
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
    # A fixed prefetch with tf.data's autotuner off: the autotuner's background thread can make the end
    # of a Keras `fit` wait seconds for the iterator to be torn down (docs/design-notes.md), and this
    # pipeline has nothing to tune: its per-element work is slicing tensors. The batches are the same.
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


def pairs_dataset(draws: Sequence[dict], batch_size: int, seed: int = 0):
    """One ``tf.data`` pass over tokenized two-tower pairs, the draws one after another.

    Each draw is a dict ``{"context_ids", "item_ids", "item"}`` (e.g. one epoch's
    :func:`coldstart.training.pairs.tokenized_tower_pairs`), and optionally ``"context_item"``
    (the item a one-item context is, :func:`coldstart.training.pairs.item_pair_dataset`) and
    ``"neg_ids"`` / ``"neg_item"`` (a hard negative per pair, the same function); the pairs
    are batched by the length of their context with :func:`bucketed_dataset` (shuffled with ``seed``).
    """
    context = [ids for d in draws for ids in d["context_ids"]]
    features = {"context_ids": context, "item_ids": [ids for d in draws for ids in d["item_ids"]],
                "item": np.concatenate([d["item"] for d in draws])}
    for key in ("context_item", "neg_item"):
        if all(key in d for d in draws):
            features[key] = np.concatenate([d[key] for d in draws])
    if all("neg_ids" in d for d in draws):
        features["neg_ids"] = [ids for d in draws for ids in d["neg_ids"]]
    return bucketed_dataset(features, np.array([len(x) for x in context]), batch_size, seed=seed)
