"""The data stage: the UCI Online Retail table, the cold-start protocol, its subgroups, and the
published benchmark's split.

* :mod:`~coldstart.data.retail` -- get, check and clean the table; the item catalog.
* :mod:`~coldstart.data.text` -- the text rules: normalising a description, an item's text, its
  price band in words, a context written as one text, TF-IDF.
* :mod:`~coldstart.data.protocol` -- the cold-start protocol: the splits, the :class:`Cases` record
  every recommender scores, the segments.
* :mod:`~coldstart.data.subgroups` -- market and season groups of a split.
* :mod:`~coldstart.data.benchmark` -- the published UniSRec / VQ-Rec benchmark's split (notebook 08).
"""

from .protocol import (  # noqa: F401
    CONTEXT_SIZES,
    NEW_USER_SEGMENTS,
    SEGMENTS,
    TEST_CUTOFF,
    VALID_CUTOFF,
    Cases,
    ColdStartSplit,
    Segment,
    load_or_make,
    make_split,
    make_validation_split,
)
from .retail import DataUnavailable, SchemaError, build_catalog, clean, load_clean, load_raw  # noqa: F401
from .text import context_text, normalise_text, price_band, tfidf_similarity, tfidf_vectors, with_price_band  # noqa: F401
