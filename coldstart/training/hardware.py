"""The hardware a chapter trains on: the ``tf.distribute`` strategy and the numeric precision.

* :func:`pick_strategy` -- a ``tf.distribute`` strategy from the hardware: TPU (Colab) ->
  ``TPUStrategy``; several GPUs -> ``MirroredStrategy``; otherwise the default strategy.
* :func:`configure_precision` -- mixed precision (``mixed_float16``) where it pays (GPUs with tensor
  cores, ``mixed_bfloat16`` on TPU) and XLA compilation on accelerators; nothing on CPU, where
  neither pays for itself across the CPUs the course runs on (measurements: docs/speed.md).
"""

from __future__ import annotations

from .._internal.tf import import_tensorflow


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
