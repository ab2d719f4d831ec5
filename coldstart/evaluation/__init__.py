"""The evaluation stage: metrics, the evaluation harness and the leaderboard.

* :mod:`~coldstart.evaluation.metrics` -- ranking, CTR and beyond-accuracy metrics, bootstrap intervals.
* :mod:`~coldstart.evaluation.harness` -- :func:`evaluate` any recommender on the cold-start protocol,
  compare two results, :func:`mean_ndcg` for choices on the validation split.
* :mod:`~coldstart.evaluation.leaderboard` -- the leaderboard file and what produced each row.
* :mod:`~coldstart.evaluation.benchmark` -- evaluation on the published benchmark (notebook 08).

Evaluation knows recommenders only by their ``score(cases)`` method: it imports no model.
"""

from .harness import (  # noqa: F401
    CUTOFFS,
    EvalResult,
    compare,
    compare_segments,
    evaluate,
    load_lists,
    mean_ndcg,
    segment_metrics,
)
from .leaderboard import (  # noqa: F401
    LEADERBOARD_COLUMNS,
    METHOD_KINDS,
    leaderboard_path,
    read_leaderboard,
    update_leaderboard,
)
