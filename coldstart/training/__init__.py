"""The training stage: training examples and pairs, augmentation, the input pipeline, optimizers,
callbacks, the hardware set-up, and choices made on the validation split.

* :mod:`~coldstart.training.pairs` -- pseudo new users from the training rows; CTR and two-tower pairs.
* :mod:`~coldstart.training.augment` -- data augmentation for scarce behaviour data (notebook 05).
* :mod:`~coldstart.training.pipeline` -- ``tf.data`` batches with length-bucketed dynamic padding.
* :mod:`~coldstart.training.optim` -- :class:`FusedAdam` and the warm-up learning rate.
* :mod:`~coldstart.training.callbacks` -- validation ranking (early stopping, best weights); an epoch timer.
* :mod:`~coldstart.training.hardware` -- the ``tf.distribute`` strategy and the precision policy.
* :mod:`~coldstart.training.selection` -- choices on the validation split (:func:`fair_text_retriever`).

Importing it does not import TensorFlow: the modules that need it import it on first use.
"""

from .._internal.progress import keras_verbose  # noqa: F401  (notebooks call training.keras_verbose())
from .callbacks import make_epoch_timer, make_ranking_callback  # noqa: F401
from .hardware import configure_precision, pick_strategy  # noqa: F401
from .optim import warmup_schedule  # noqa: F401
from .pairs import item_pair_dataset, tower_dataset  # noqa: F401
from .pipeline import bucketed_dataset, pairs_dataset  # noqa: F401
from .selection import fair_text_retriever, tune_hybrid, tune_id_part, tune_retriever, tune_softness  # noqa: F401


def __getattr__(name):
    if name == "FusedAdam":   # a TensorFlow class: made on first use, so importing training does not import TensorFlow
        from .optim import FusedAdam

        return FusedAdam
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
