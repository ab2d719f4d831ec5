"""Keras callbacks the training chapters share.

:func:`make_ranking_callback` -- evaluates the model on the validation protocol after every epoch,
logs the metric (so Keras' ``EarlyStopping`` and ``ModelCheckpoint`` can monitor it) and keeps the
best weights.
:func:`make_epoch_timer` -- the training seconds of every epoch.
"""

from __future__ import annotations

import math
import time
from typing import Callable

from .._internal.tf import import_tensorflow


def make_ranking_callback(evaluate_fn: Callable[[], float], name: str = "val_ndcg", patience: int = 1,
                          evaluate_before: bool = True, verbose: bool = True, keras=None):
    """A Keras callback that runs ``evaluate_fn()`` (a validation metric, higher is better) after
    each epoch, writes it into the epoch's logs as ``name``, keeps the best weights and stops when
    the metric has not improved for ``patience`` epochs. With ``evaluate_before`` the pretrained
    model is scored first (epoch 0), so training that only hurts restores the pretrained weights.

    ``keras``: the Keras whose ``fit`` runs it, ``tf.keras`` (tf-keras, the default) or Keras 3's
    ``keras`` module (notebook 11); a callback of one cannot be given to the other's ``fit``."""
    keras = keras or import_tensorflow().keras

    class RankingCallback(keras.callbacks.Callback):
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
                seconds = time.perf_counter() - start
                print(f"epoch {epoch + 1}: {name} = {value:.4f}{mark} ({seconds:.0f} s)", flush=True)
            if epoch - self.best_epoch >= patience:
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)
                if verbose:
                    which = "the pretrained weights" if self.best_epoch < 0 else f"epoch {self.best_epoch + 1}"
                    print(f"restored the best weights: {which} ({name} = {self.best:.4f})")

    return RankingCallback()


def make_epoch_timer(keras=None):
    """A Keras callback that records the seconds of each epoch's training in ``.seconds``.

    Put it first in the callback list: Keras runs callbacks in order, so its clock stops before a
    validation callback (:func:`make_ranking_callback`) scores the epoch, and the time is training
    only. ``keras``: as for :func:`make_ranking_callback`.
    """
    keras = keras or import_tensorflow().keras

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    return EpochTimer()
