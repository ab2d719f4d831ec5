"""coldstart: helpers for the course *Cold-start recommendation for e-commerce with fine-tuned BERT*.

The notebooks teach the ideas; this package holds the plumbing they share: the data download and
cleaning (:mod:`coldstart.data`), the cold-start protocol (:mod:`coldstart.protocol`), metrics
(:mod:`coldstart.metrics`), the evaluation harness and leaderboard (:mod:`coldstart.evaluate`),
baselines (:mod:`coldstart.baselines`), run profiles and paths (:mod:`coldstart.config`).

Importing the package sets ``TF_USE_LEGACY_KERAS=1`` (the transformers TensorFlow classes need
Keras 2, i.e. ``tf-keras``) and checks the installed versions, failing fast with one actionable
line when the combination cannot work. TensorFlow itself is imported lazily, only by the modules
that need it.
"""

import os as _os
import sys as _sys

_tf_was_imported_without_legacy = (
    "tensorflow" in _sys.modules and _os.environ.get("TF_USE_LEGACY_KERAS") != "1"
)
_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ start-up chatter (CPU feature notes, oneDNN) buries the course's own output.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ._internal.versions import EnvironmentMismatch, check_versions  # noqa: E402

if _tf_was_imported_without_legacy and _os.environ.get("COLDSTART_SKIP_VERSION_CHECK") != "1":
    raise EnvironmentMismatch(
        "TensorFlow was imported before coldstart without TF_USE_LEGACY_KERAS=1: restart the kernel "
        "and run `import coldstart` before `import tensorflow`"
    )
check_versions()

from ._internal.tf import import_tensorflow  # noqa: E402
from .config import Profile, get_profile, project_root, runs_dir, set_seed  # noqa: E402

__version__ = "0.1.0"
__all__ = [
    "EnvironmentMismatch",
    "Profile",
    "check_versions",
    "get_profile",
    "import_tensorflow",
    "project_root",
    "runs_dir",
    "set_seed",
]
