"""The models stage: everything that scores the catalog for a batch of cases.

* :mod:`~coldstart.models.baselines` -- popularity, item-kNN, the ID regression, TF-IDF and
  zero-shot text similarity, the hybrid (notebook 02).
* :mod:`~coldstart.models.retrieval` -- the retrieval recipe ``ID + w_text * text + beta * [new]``
  for any text scorer, the context-encoding text scorer, and the new-product slots list policy.
* :mod:`~coldstart.models.bert` -- the cross-encoder and the two-tower model notebook 03 teaches.
* :mod:`~coldstart.models.encoders` -- loading a BERT-family encoder; texts to vectors.
* :mod:`~coldstart.models.peft` -- adapters and LoRA for the TensorFlow BERT classes (notebook 06).
* :mod:`~coldstart.models.sequential` -- the models of the published benchmark (notebook 08).
* :mod:`~coldstart.models.keras3` -- the encoder and the two-tower model on Keras 3 and KerasHub
  (notebook 11; needs the ``keras3`` extra, imported only when asked for).

Models see only :class:`~coldstart.data.protocol.Cases` (or the benchmark's histories) and import
nothing from evaluation. The TensorFlow models are imported on first use, so
``from coldstart.models import ItemKNN`` does not start TensorFlow.
"""

from .baselines import (  # noqa: F401
    CountryPopularity,
    Hybrid,
    ItemKNN,
    ItemRegression,
    Popularity,
    TextSimilarity,
    basket_matrix,
    cooccurrence_cosine,
    ease_matrix,
    hybrid_for,
)
from .encoders import encode, load_encoder, load_tokenizer, mean_pool, padded_batches, resolve_model  # noqa: F401
from .retrieval import EncodedContextSimilarity, NewProductSlots, Recipe, Retriever  # noqa: F401


def __getattr__(name):
    # the Keras classes need TensorFlow at class definition: their modules are imported on first use
    if name in ("CrossEncoder", "TwoTower", "OneTraceModel", "in_batch_softmax_loss"):
        from . import bert

        return getattr(bert, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
