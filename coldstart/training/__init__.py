"""The training stage: training examples and pairs, augmentation, the input pipeline, optimizers and
callbacks."""

from .pipeline import (  # noqa: F401
    bucketed_dataset,
    configure_precision,
    keras_verbose,
    make_ranking_callback,
    padded_batches,
    pick_strategy,
    warmup_schedule,
)


def __getattr__(name):
    if name == "FusedAdam":   # a TensorFlow class: made on first use, so importing training does not import TensorFlow
        from .pipeline import FusedAdam

        return FusedAdam
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
