"""Optimizers the training chapters share.

* :class:`FusedAdam` -- ``tf.keras.optimizers.Adam`` with each weight's update in one fused kernel:
  the same algorithm, to rounding. The stock one makes five passes over memory per weight, a
  noticeable share of a small encoder's training step on a CPU (notebook 03 measures it).
* :func:`warmup_schedule` -- a learning rate that rises linearly from zero to its peak over the first
  steps, then stays; adapters and LoRA need it at their high learning rates (notebook 06).
"""

from __future__ import annotations

import functools

from .._internal.tf import import_tensorflow


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
        Notebook 03 times one update both ways.
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


def warmup_schedule(peak: float, steps: int, keras=None):
    """A Keras learning-rate schedule: ``peak * min(1, (step + 1) / steps)``, a linear warm-up from
    almost zero to ``peak`` over the first ``steps`` optimizer steps, then constant.

    Pass it to an optimizer in place of a number: ``tf.keras.optimizers.Adam(warmup_schedule(2e-3, 64))``.
    ``keras``: whose optimizer takes it, ``tf.keras`` (the default) or Keras 3's ``keras`` module
    (``keras.optimizers.Adam(warmup_schedule(2e-3, 64, keras=keras))``, notebook 11).
    """
    if not peak > 0 or int(steps) < 1:
        raise ValueError(f"warmup_schedule needs peak > 0 and steps >= 1, got peak={peak!r}, steps={steps!r}")
    tf = import_tensorflow()
    keras = keras or tf.keras
    ops = getattr(keras, "ops", tf)    # Keras 3 has keras.ops (any backend); tf-keras computes with tf

    class Warmup(keras.optimizers.schedules.LearningRateSchedule):
        # linear warm-up from 0 to `peak` over `steps` optimizer steps, then constant
        def __init__(self, peak, steps):
            self.peak, self.steps = float(peak), int(steps)

        def __call__(self, step):
            return self.peak * ops.minimum(1.0, ops.cast(step + 1, "float32") / self.steps)

        def get_config(self):
            return {"peak": self.peak, "steps": self.steps}

    return Warmup(peak, steps)
