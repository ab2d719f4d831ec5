"""Fail-fast check of the library versions the course needs.

The course runs on TensorFlow with the Hugging Face ``transformers`` TensorFlow classes. Several
combinations that a fresh Colab image or an unpinned ``pip install`` produce cannot work at all,
and fail deep inside a notebook with a confusing traceback. :func:`check_versions` catches them
at ``import coldstart`` and says, in one line, how to fix the environment:

* transformers 5 removed every TensorFlow class;
* transformers 4.55 to 4.57 cannot load PyTorch-format ``safetensors`` weights into a TensorFlow
  model unless PyTorch is installed (``'builtins.safe_open' object is not iterable``);
* TensorFlow 2.16+ ships Keras 3, which the transformers TF classes do not support: they need the
  ``tf-keras`` package of the same minor version, and ``TF_USE_LEGACY_KERAS=1`` (set by the
  package before TensorFlow is imported);
* TensorFlow older than 2.16.

The Keras 3 chapter (notebook 11) needs more, and only there: :func:`keras3_problems` says what
(``keras-hub`` 0.32, the ``keras`` 3.15+ it needs, and ``tensorflow-text`` of TensorFlow's own minor
version, whose compiled ops load only into that TensorFlow). ``import coldstart`` does not check it,
so the rest of the course never needs those packages.

The check reads installed package metadata only (it never imports TensorFlow), so it costs
milliseconds. Set ``COLDSTART_SKIP_VERSION_CHECK=1`` to bypass it at your own risk.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Mapping, Optional

from packaging.version import InvalidVersion, Version

__version__ = "0.1.0"  # the package's version, as in pyproject.toml

PIN_TRANSFORMERS = "transformers>=4.45,<4.55"
PIN_TENSORFLOW = "tensorflow>=2.16,<2.22"
FIX_ALL = 'pip install "tensorflow>=2.16,<2.22" "tf-keras>=2.16,<2.22" "transformers>=4.45,<4.55"'


class EnvironmentMismatch(ImportError):
    """Raised by :func:`check_versions` with a one-line, actionable message."""


def installed_versions(names=("tensorflow", "tf-keras", "transformers", "torch", "keras")) -> dict:
    """Return ``{distribution name: version string or None}`` from installed package metadata.

    ``tensorflow-cpu`` and ``tensorflow-macos`` count as ``tensorflow``.
    """
    found = {}
    for name in names:
        candidates = [name]
        if name == "tensorflow":
            candidates += ["tensorflow-cpu", "tensorflow-macos", "tf-nightly"]
        version = None
        for cand in candidates:
            try:
                version = metadata.version(cand)
                break
            except metadata.PackageNotFoundError:
                continue
        found[name] = version
    return found


COURSE_LIBRARIES = ("tensorflow", "tf-keras", "transformers", "numpy", "pandas", "scikit-learn")


def library_versions() -> dict:
    """What a result or a saved model records about the software that made it: Python, this
    package and the course's libraries (:data:`COURSE_LIBRARIES`; ``None`` for a missing one)."""
    return {"python": platform.python_version(), "coldstart": __version__, **installed_versions(COURSE_LIBRARIES)}


def _v(text: Optional[str]) -> Optional[Version]:
    if text is None:
        return None
    try:
        return Version(text)
    except InvalidVersion:
        return None


def problems(versions: Mapping[str, Optional[str]]) -> list[str]:
    """Return the list of one-line problems for a ``{package: version}`` mapping (empty if fine).

    ``versions`` has keys ``tensorflow``, ``tf-keras``, ``transformers`` and ``torch``; a value of
    ``None`` means "not installed". Pure function, so tests can fake any combination.
    """
    out = []
    tf = _v(versions.get("tensorflow"))
    tfk = _v(versions.get("tf-keras"))
    tr = _v(versions.get("transformers"))
    torch = versions.get("torch")

    if tf is None:
        out.append(f"TensorFlow is not installed: {FIX_ALL}")
    elif tf < Version("2.16"):
        out.append(f"TensorFlow {tf} is too old for this course (needs 2.16 to 2.21): {FIX_ALL}")
    elif tf.release[:2] > (2, 21):
        out.append(f"TensorFlow {tf} is newer than the course was tested with (2.16 to 2.21): {FIX_ALL}")
    if tf is not None and tf >= Version("2.16"):
        want = f"{tf.major}.{tf.minor}"
        if tfk is None:
            out.append(
                f"TensorFlow {tf} ships Keras 3, which transformers' TF models cannot use, and tf-keras is "
                f'missing: pip install "tf-keras=={want}.*"'
            )
        elif (tfk.major, tfk.minor) != (tf.major, tf.minor):
            out.append(f'tf-keras {tfk} does not match TensorFlow {tf}: pip install "tf-keras=={want}.*"')

    if tr is None:
        out.append(f'transformers is not installed: pip install "{PIN_TRANSFORMERS}"')
    elif tr.major >= 5:
        out.append(
            f'transformers {tr} has no TensorFlow classes (removed in v5): pip install "{PIN_TRANSFORMERS}"'
        )
    elif Version("4.55") <= tr < Version("4.58") and torch is None:
        out.append(
            f"transformers {tr} cannot load safetensors weights into TensorFlow without PyTorch: "
            f'pip install "{PIN_TRANSFORMERS}"'
        )
    elif tr < Version("4.45"):
        out.append(f'transformers {tr} is too old for this course: pip install "{PIN_TRANSFORMERS}"')
    return out


PIN_KERAS_HUB = "keras-hub>=0.32,<0.33"
KERAS3_LIBRARIES = ("tensorflow", "keras", "keras-hub", "tensorflow-text")


def keras3_problems(versions: Mapping[str, Optional[str]]) -> list[str]:
    """The one-line problems of the Keras 3 chapter for a ``{package: version}`` mapping with keys
    ``tensorflow``, ``keras``, ``keras-hub`` and ``tensorflow-text`` (``None``: not installed). Pure,
    like :func:`problems`; empty when KerasHub can load the course's encoder."""
    out = []
    tf = _v(versions.get("tensorflow"))
    hub, keras, text = (_v(versions.get(n)) for n in ("keras-hub", "keras", "tensorflow-text"))
    want = f"{tf.major}.{tf.minor}" if tf is not None else "<your TensorFlow major.minor>"
    install = f'pip install "{PIN_KERAS_HUB}" "tensorflow-text=={want}.*"'
    if hub is None:
        out.append(f"keras-hub is not installed (the Keras 3 chapter needs it): {install}")
    elif not Version("0.32") <= hub < Version("0.33"):
        out.append(f"keras-hub {hub} is not the version the Keras 3 chapter was tested with (0.32): {install}")
    if keras is None or keras < Version("3.15"):
        out.append(f"keras {keras} is too old for keras-hub 0.32 (needs 3.15 or newer): pip install \"keras>=3.15\"")
    if text is None:
        out.append(f"tensorflow-text is missing (KerasHub's BERT tokenizer needs it): {install}")
    elif tf is not None and (text.major, text.minor) != (tf.major, tf.minor):
        out.append(f"tensorflow-text {text} does not match TensorFlow {tf} (its ops load only into {text.major}."
                   f"{text.minor}): {install}")
    return out


def check_versions(versions: Optional[Mapping[str, Optional[str]]] = None) -> None:
    """Raise :class:`EnvironmentMismatch` (one line) if the installed libraries cannot work together."""
    if os.environ.get("COLDSTART_SKIP_VERSION_CHECK") == "1":
        return
    found = problems(versions if versions is not None else installed_versions())
    if found:
        raise EnvironmentMismatch(found[0] + " (then restart the kernel)")
