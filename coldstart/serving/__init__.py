"""The serving stage: the recommender a shop runs for a new customer, and a customer's visit.

* :mod:`~coldstart.serving.recommender` -- :class:`Recommender` (clicks and a query in, a list with
  reasons out; saved and loaded as one folder) and :func:`for_profile`, the course's recommender.
* :mod:`~coldstart.serving.query` -- a free-text query, encoded word by word.
* :mod:`~coldstart.serving.session` -- :class:`Session` (one visit) and :class:`Demo`, its widget.

Its latency is measured by :mod:`coldstart.tools.latency`.
"""

from .._internal.blas import blas_limit  # noqa: F401  (notebook 07 times one BLAS thread against all)
from .query import Query, encode_query  # noqa: F401
from .recommender import (  # noqa: F401
    Recommender,
    checkpoint_folder,
    encoded_context_recommender,
    for_profile,
)
from .session import Demo, Session, demo_widget  # noqa: F401
