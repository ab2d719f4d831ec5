"""The serving stage: the recommender a shop runs for a new customer, sessions and the demo."""

from .recommender import (  # noqa: F401
    Demo,
    Query,
    Recipe,
    Recommender,
    Session,
    blas_limit,
    checkpoint_folder,
    demo_widget,
    encoded_context_recommender,
    for_profile,
    measure_latency,
    read_recipe,
)
