"""coldstart: helpers for the course *Cold-start recommendation for e-commerce with fine-tuned BERT*.

The notebooks teach the ideas; this package holds what they share, one folder per stage of the
course, in the order a recommender is built:

==============  ===================================================================================
``_internal/``  plumbing: atomic file writes, the quiet TensorFlow import, the version check,
                run information, progress display, BLAS threads
``config``      paths, seeds, and the run profile (one section per chapter)
``data/``       the Online Retail table, the text rules, the cold-start protocol and its ``Cases``,
                market and season subgroups, the published benchmark's split
``evaluation/`` metrics, the evaluation harness, the leaderboard
``models/``     baselines and the ID regression, the retrieval recipe, the BERT models, encoders,
                adapters and LoRA, the benchmark's models
``training/``   training examples and pairs, augmentation, the tf.data pipeline, optimizers,
                callbacks, choices on the validation split
``serving/``    the recommender a shop runs, queries, sessions and the demo
``plots``       the figures the notebooks share
``tools/``      command-line entry points (``python -m coldstart.tools.<name>``) and speed benchmarks
==============  ===================================================================================

Imports run one way: a module imports only from stages above it in this table (``evaluation`` and
``models`` are side by side and never import each other: a model sees ``Cases``, never the
harness), and nothing imports ``tools``. ``tests/test_layout.py`` walks every import, including
those inside functions, and fails on an upward import or a cycle.

Importing the package sets ``TF_USE_LEGACY_KERAS=1`` (the transformers TensorFlow classes need
Keras 2, i.e. ``tf-keras``) and checks the installed versions, failing fast with one actionable
line when the combination cannot work. TensorFlow itself is imported lazily, only by the modules
that need it, always through :func:`import_tensorflow`.
"""

import os as _os
import sys as _sys

_tf_was_imported_without_legacy = (
    "tensorflow" in _sys.modules and _os.environ.get("TF_USE_LEGACY_KERAS") != "1"
)
_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ start-up chatter (CPU feature notes, oneDNN) buries the course's own output.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ._internal.versions import EnvironmentMismatch, __version__, check_versions, library_versions  # noqa: E402

if _tf_was_imported_without_legacy and _os.environ.get("COLDSTART_SKIP_VERSION_CHECK") != "1":
    raise EnvironmentMismatch(
        "TensorFlow was imported before coldstart without TF_USE_LEGACY_KERAS=1: restart the kernel "
        "and run `import coldstart` before `import tensorflow`"
    )
check_versions()

from ._internal.tf import import_tensorflow  # noqa: E402
from .config import Profile, get_profile, project_root, runs_dir, set_seed  # noqa: E402

__all__ = [
    "EnvironmentMismatch",
    "Profile",
    "__version__",
    "check_versions",
    "get_profile",
    "import_tensorflow",
    "library_versions",
    "project_root",
    "runs_dir",
    "set_seed",
]
