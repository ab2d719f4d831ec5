"""Run profiles, project paths, seeds and model names: the course's one set of switches.

Profiles
--------
One environment variable, ``COLDSTART_PROFILE``, selects how big a run is:

``smoke``
    CI and a first look: a sample of the evaluation users, a few hundred training steps, short
    sequences. The whole course runs in minutes on 2 CPU cores.
``cpu``
    The full data on a laptop CPU with the small default encoder (all-MiniLM-L6-v2).
``gpu``
    The full data on a Colab GPU/TPU, longer training; ``bert-base-uncased`` becomes selectable.

When the variable is unset the profile follows the hardware (``gpu`` if TensorFlow sees a GPU or
TPU, else ``cpu``). A misspelt profile name, or a misspelt setting name, is an error rather than a
silent fallback to a full-size run. Under CI (``CI=true``) any profile but ``smoke`` is refused
unless ``COLDSTART_ALLOW_FULL_IN_CI=1``, so a CI run can never silently become a full run.

Paths
-----
``project_root()`` is ``$COLDSTART_HOME`` or the nearest folder above the working directory that
holds the course's ``pyproject.toml`` (notebooks run from ``notebooks/``). The course writes:

* downloads and caches to ``<root>/data/`` (``$COLDSTART_DATA_DIR`` overrides);
* results of a run to ``<root>/runs/<profile>/`` (``$COLDSTART_RUNS`` overrides) -- never to the
  tracked ``results/`` folder, which holds the committed reference run.
"""

from __future__ import annotations

import dataclasses
import os
import random
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from ._internal.tf import import_tensorflow

PROFILES = ("smoke", "cpu", "gpu")
# LoRA on every projection of a BERT layer (attention query, key, value and output; feed-forward in and out)
LORA_EVERY = ("query", "key", "value", "attention_output", "intermediate", "output")
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


# -- the profile: one small section per chapter ------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Evaluation:
    """How results are measured (every chapter that evaluates).

    users: evaluate on at most this many users per segment (``None``: all of them).
    bootstrap: bootstrap resamples for confidence intervals.
    """

    users: Optional[int]
    bootstrap: int


@dataclasses.dataclass(frozen=True)
class Encoder:
    """The language model the text chapters start from.

    model_name: the encoder (Hub id or local folder).
    max_len: token length cap for item texts.
    batch_size: batch size for encoding the catalog.
    """

    model_name: str
    max_len: int
    batch_size: int


@dataclasses.dataclass(frozen=True)
class Training:
    """How the two-tower model trains, in every chapter that fine-tunes it (03, 05, 06, 08, 09, 10).

    batch_size: training batch size (notebook 03's cross-encoder uses half).
    learning_rate: learning rate of full fine-tuning.
    """

    batch_size: int
    learning_rate: float


@dataclasses.dataclass(frozen=True)
class FineTuning:
    """Notebook 03.

    ctr_pairs, ctr_epochs: training pairs and epochs of the CTR cross-encoder.
    tower_pairs, tower_epochs: (context, item) pairs per epoch and the most epochs of the two-tower
        model (early stopping on the validation protocol may end sooner).
    item_pairs, item_epochs: the same for the two-tower model taught by the ID part (item-to-item
        pairs); the model retrained for the test keeps the epochs validation chose.
    rerank_users, rerank_n: test users per segment whose top ``rerank_n`` the cross-encoder
        re-ranks (``None``: all users).
    """

    ctr_pairs: int
    ctr_epochs: int
    tower_pairs: int
    tower_epochs: int
    item_pairs: int
    item_epochs: int
    rerank_users: Optional[int]
    rerank_n: int


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Notebook 05.

    steps: training steps (batches of ``training.batch_size``) of each two-tower model: the same
        budget with and without data augmentation.
    variants: which training sets are trained (``None``: all six).
    """

    steps: int
    variants: Optional[tuple]


@dataclasses.dataclass(frozen=True)
class Adapters:
    """Notebook 06 (``size`` and ``learning_rate`` also in notebooks 08-10; LoRA and ``temperature`` in 11).

    pairs, epochs: the two-tower model is trained three ways (full fine-tuning, adapters, LoRA) on
        the same ``pairs`` pairs per epoch for at most ``epochs`` epochs each (early stopping on the
        validation protocol may end sooner); the three share the notebook's time budget.
    size, lora_rank: adapter bottleneck width and LoRA rank.
    learning_rate: peak learning rate of adapters, reached by a linear warm-up over the first epoch
        (full fine-tuning uses ``training.learning_rate``; the few new weights need a larger one).
    lora_learning_rate, lora_targets: LoRA's peak learning rate (the same warm-up) and the
        projections of every layer it adapts (names of ``peft.LORA_TARGETS``).
    temperature: the in-batch softmax temperature of the two-tower model in notebook 06 (all three
        methods) and of the LoRAs of notebook 11. At notebook 03's 0.05 LoRA first falls below the
        pretrained encoder for an epoch. Rates, targets and temperature were chosen on the
        validation protocol: docs/design-notes.md.
    group_pairs: pairs (one epoch) for each country-group adapter.
    measure_steps: timed training steps per method when step time and peak memory are measured.
    """

    pairs: int
    epochs: int
    size: int
    lora_rank: int
    learning_rate: float
    lora_learning_rate: float
    lora_targets: tuple
    temperature: float
    group_pairs: int
    measure_steps: int


@dataclasses.dataclass(frozen=True)
class Serving:
    """Notebook 07.

    calls: new users' click sessions and free-text queries timed in the latency walk-through
        (``make benchmark ONLY=serving`` times 300 of each in every profile).
    """

    calls: int


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """Notebook 08 (the published benchmark).

    pairs, epochs: (history, next item) pairs per epoch and the most epochs of the two-tower model
        (early stopping on the benchmark's validation targets may end sooner).
    test_users, valid_users: invoices scored at test time, and validation invoices used for every
        choice (``None``: all 16,520).
    """

    pairs: int
    epochs: int
    test_users: Optional[int]
    valid_users: Optional[int]


@dataclasses.dataclass(frozen=True)
class Transfer:
    """Notebook 09.

    pairs, epochs: (context, item) pairs per epoch and epochs of the two-tower model trained on one
        market's customers (a fixed budget, no early stopping).
    adapt_pairs, adapt_epochs: pairs per epoch and epochs of the short tuning on the other markets'
        customers seen before the cutoff.
    """

    pairs: int
    epochs: int
    adapt_pairs: int
    adapt_epochs: int


@dataclasses.dataclass(frozen=True)
class Tuning:
    """Notebook 10.

    pairs, epochs: the small training set (the same pairs every epoch, batches of 32) and the epochs
        of its learning curves.
    valid_users: validation users per segment (k=1, 3, 5) scored after every epoch and sweep run
        (``None``: all).
    learning_rates, batch_sizes: the grid of the full fine-tuning sweep; every cell trains on the
        same ``sweep_pairs`` pairs (one epoch).
    adapter_sizes, lora_ranks: the adapter sizes and LoRA ranks compared, each trained on
        ``sweep_pairs`` pairs per epoch for ``peft_epochs`` epochs.
    """

    pairs: int
    epochs: int
    valid_users: Optional[int]
    learning_rates: tuple
    batch_sizes: tuple
    sweep_pairs: int
    adapter_sizes: tuple
    lora_ranks: tuple
    peft_epochs: int


@dataclasses.dataclass(frozen=True)
class Profile:
    """The settings one run uses, one section per chapter (a new chapter adds its own section).

    Read them as attributes: ``profile.encoder.max_len``, ``profile.fine_tuning.tower_epochs``.
    Every section's docstring says what its settings mean; :meth:`describe` prints the ones a
    notebook uses.
    """

    name: str
    evaluation: Evaluation
    encoder: Encoder
    training: Training
    fine_tuning: FineTuning
    augmentation: Augmentation
    adapters: Adapters
    serving: Serving
    benchmark: Benchmark
    transfer: Transfer
    tuning: Tuning

    @classmethod
    def sections(cls) -> tuple:
        """The names of the sections, in order."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name != "name")

    def replace(self, **changes) -> "Profile":
        """A copy with some settings changed, given per section: ``replace(encoder={"max_len": 16})``.

        An unknown section or setting raises ``TypeError``."""
        sections = self.sections()
        new = {}
        for section, values in changes.items():
            if section not in sections:
                raise TypeError(f"Profile has no section {section!r}; its sections are {', '.join(sections)}")
            new[section] = dataclasses.replace(getattr(self, section), **values)
        return dataclasses.replace(self, **new)

    def describe(self, *settings: str) -> str:
        """The top of a notebook: the profile's name, then one line per section of the settings it uses.

        Each of ``settings`` is a section (``"encoder"``: all its fields) or one field of a section
        (``"adapters.size"``), so a notebook prints what it reads and nothing else.
        """
        chosen: dict = {}
        for item in settings:
            section, _, field = item.partition(".")
            if section not in self.sections():
                raise TypeError(f"Profile has no section {section!r}; its sections are {', '.join(self.sections())}")
            values = dataclasses.asdict(getattr(self, section))
            if field and field not in values:
                raise TypeError(f"Profile section {section!r} has no field {field!r}; "
                                f"its fields are {', '.join(values)}")
            fields = chosen.setdefault(section, {})   # field -> value, in the order asked
            fields.update({f: values[f] for f in ([field] if field else values) if f not in fields})
        lines = [f"profile={self.name}"]
        lines += [f"  {section}: " + ", ".join(f"{f}={v}" for f, v in fields.items())
                  for section, fields in chosen.items()]
        return "\n".join(lines)


_SECTIONS = {"evaluation": Evaluation, "encoder": Encoder, "training": Training, "fine_tuning": FineTuning,
             "augmentation": Augmentation, "adapters": Adapters, "serving": Serving, "benchmark": Benchmark,
             "transfer": Transfer, "tuning": Tuning}

_SETTINGS = {
    "smoke": dict(
        evaluation=dict(users=150, bootstrap=200),
        encoder=dict(model_name=DEFAULT_MODEL, max_len=32, batch_size=128),
        training=dict(batch_size=32, learning_rate=5e-5),
        fine_tuning=dict(ctr_pairs=192, ctr_epochs=1, tower_pairs=640, tower_epochs=1, item_pairs=320, item_epochs=1,
                         rerank_users=20, rerank_n=20),
        augmentation=dict(steps=4, variants=("none", "all")),
        adapters=dict(pairs=96, epochs=1, size=64, lora_rank=8, learning_rate=1e-3, lora_learning_rate=3e-4,
                      lora_targets=LORA_EVERY, temperature=0.2, group_pairs=64, measure_steps=2),
        serving=dict(calls=40),
        benchmark=dict(pairs=512, epochs=1, test_users=300, valid_users=300),
        transfer=dict(pairs=320, epochs=1, adapt_pairs=128, adapt_epochs=1),
        tuning=dict(pairs=64, epochs=1, valid_users=30, learning_rates=(5e-5,), batch_sizes=(32,), sweep_pairs=64,
                    adapter_sizes=(16,), lora_ranks=(), peft_epochs=1),
    ),
    "cpu": dict(
        evaluation=dict(users=None, bootstrap=1000),
        encoder=dict(model_name=DEFAULT_MODEL, max_len=32, batch_size=128),
        training=dict(batch_size=64, learning_rate=5e-5),
        fine_tuning=dict(ctr_pairs=4000, ctr_epochs=2, tower_pairs=4096, tower_epochs=6, item_pairs=6400, item_epochs=4,
                         rerank_users=300, rerank_n=30),
        augmentation=dict(steps=100, variants=None),
        adapters=dict(pairs=4096, epochs=3, size=64, lora_rank=8, learning_rate=1e-3, lora_learning_rate=3e-4,
                      lora_targets=LORA_EVERY, temperature=0.2, group_pairs=1024,
                      measure_steps=10),
        serving=dict(calls=300),
        benchmark=dict(pairs=9600, epochs=3, test_users=None, valid_users=2000),
        transfer=dict(pairs=4096, epochs=3, adapt_pairs=1024, adapt_epochs=2),
        tuning=dict(pairs=1536, epochs=5, valid_users=300, learning_rates=(2e-5, 5e-5, 1e-4), batch_sizes=(32, 64),
                    sweep_pairs=1024, adapter_sizes=(16, 64, 256), lora_ranks=(4, 8, 16), peft_epochs=2),
    ),
    "gpu": dict(
        evaluation=dict(users=None, bootstrap=1000),
        encoder=dict(model_name=DEFAULT_MODEL, max_len=48, batch_size=512),
        training=dict(batch_size=128, learning_rate=2.5e-5),
        fine_tuning=dict(ctr_pairs=40000, ctr_epochs=3, tower_pairs=16384, tower_epochs=10, item_pairs=25600,
                         item_epochs=4,
                         rerank_users=None,
                         rerank_n=50),
        augmentation=dict(steps=300, variants=None),
        adapters=dict(pairs=16384, epochs=6, size=64, lora_rank=8, learning_rate=1e-3, lora_learning_rate=3e-4,
                      lora_targets=LORA_EVERY, temperature=0.2, group_pairs=4096,
                      measure_steps=20),
        serving=dict(calls=300),
        benchmark=dict(pairs=32768, epochs=5, test_users=None, valid_users=None),
        transfer=dict(pairs=16384, epochs=3, adapt_pairs=1024, adapt_epochs=3),
        tuning=dict(pairs=4096, epochs=8, valid_users=None, learning_rates=(1e-5, 2.5e-5, 5e-5, 1e-4),
                    batch_sizes=(32, 64, 128), sweep_pairs=8192, adapter_sizes=(16, 64, 256), lora_ranks=(4, 8, 16),
                    peft_epochs=3),
    ),
}


def _has_accelerator() -> bool:
    if os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME"):
        return True
    try:
        tf = import_tensorflow()  # lazy: importing TF costs seconds
        return bool(tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"))
    except Exception:  # pragma: no cover - TF missing or broken: the version check reports it
        return False


def get_profile(name: Optional[str] = None, **overrides) -> Profile:
    """Return the run profile: ``name``, else ``$COLDSTART_PROFILE``, else chosen from the hardware.

    ``overrides`` change settings, per section: ``get_profile("cpu", fine_tuning={"tower_epochs": 1})``
    (see :meth:`Profile.replace`); a misspelt section or setting raises ``TypeError``. Raises
    ``ValueError`` for an unknown profile name, and under CI for any profile but ``smoke`` (set
    ``COLDSTART_ALLOW_FULL_IN_CI=1`` to allow it).
    """
    chosen = name or os.environ.get("COLDSTART_PROFILE") or ("gpu" if _has_accelerator() else "cpu")
    chosen = chosen.strip().lower()
    if chosen not in PROFILES:
        raise ValueError(f"Unknown profile {chosen!r}: set COLDSTART_PROFILE to one of {', '.join(PROFILES)}")
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    if ci and chosen != "smoke" and os.environ.get("COLDSTART_ALLOW_FULL_IN_CI") != "1":
        raise ValueError(
            f"CI is set but the profile is {chosen!r}: CI must run COLDSTART_PROFILE=smoke "
            "(or set COLDSTART_ALLOW_FULL_IN_CI=1 on purpose)"
        )
    profile = Profile(name=chosen, **{s: _SECTIONS[s](**values) for s, values in _SETTINGS[chosen].items()})
    model = os.environ.get("COLDSTART_MODEL")
    if model:
        profile = profile.replace(encoder={"model_name": model})
    return profile.replace(**overrides) if overrides else profile


def project_root() -> Path:
    """The course folder: ``$COLDSTART_HOME``, else the nearest parent holding its pyproject.toml."""
    env = os.environ.get("COLDSTART_HOME")
    if env:
        return Path(env).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        marker = folder / "pyproject.toml"
        if marker.is_file() and (folder / "coldstart").is_dir():
            return folder
    return here


def shown(path) -> str:
    """A path as the notebooks print it: relative to the project root (so outputs hold no machine paths)."""
    try:
        return os.path.relpath(Path(path).resolve(), project_root())
    except ValueError:  # another drive on Windows
        return str(path)


class UnusableFolder(OSError):
    """A folder the course writes to cannot be made or is not a folder; the message names it, the
    environment variable that chose it, what is wrong, and the fix."""


def _why_unusable(path: Path, exc: OSError) -> str:
    """What is wrong with ``path`` when creating it raised ``exc``, in words."""
    # os.path's tests answer False where a folder on the way cannot be searched; Path's raise
    if os.path.exists(path) and not os.path.isdir(path):
        return "it is a file, not a folder"
    parent = next((p for p in path.parents if os.path.exists(p)), None)
    if parent is not None and not os.path.isdir(parent):
        return f"{parent} is a file, not a folder"
    if isinstance(exc, PermissionError):
        return f"permission denied creating it in {parent}" if parent is not None else "permission denied"
    return f"{type(exc).__name__}: {exc.strerror or exc}"


def ensure_folder(path, variable: str) -> Path:
    """Create ``path`` (and its parents) if missing and return it; ``variable`` is the environment
    variable that can choose another folder. Raises :class:`UnusableFolder` saying what is wrong --
    a file in the way, no permission -- instead of the bare ``FileExistsError`` of ``mkdir``."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        chosen = os.environ.get(variable)
        where = f"{variable}={chosen!r}" if chosen else f"the default folder {path} ({variable} is unset)"
        raise UnusableFolder(f"{where} cannot be used: {_why_unusable(path, exc)}; set {variable} to a folder "
                             "you can write to (it is created if missing)") from exc
    return path


def writable_folder(path, variable: str) -> Path:
    """:func:`ensure_folder`, then check that a file can be created there (by creating and removing
    one: permission bits mislead for root and on read-only mounts). Raises :class:`UnusableFolder`
    naming ``variable``, before any long work whose result would have nowhere to go."""
    path = ensure_folder(path, variable)
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-check.", suffix=".tmp")
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        chosen = os.environ.get(variable)
        where = f"{variable}={chosen!r}" if chosen else f"the default folder {path} ({variable} is unset)"
        raise UnusableFolder(f"{where} cannot be used: no file can be written there ({exc.strerror or exc}); "
                             f"set {variable} to a folder you can write to") from exc
    return path


def data_dir(create: bool = True) -> Path:
    """Where downloads and caches go: ``$COLDSTART_DATA_DIR`` or ``<root>/data``.

    Created when ``create`` (:class:`UnusableFolder` if it cannot be); ``create=False`` only names it,
    for messages that must not fail themselves."""
    path = Path(os.environ.get("COLDSTART_DATA_DIR") or project_root() / "data").expanduser()
    return ensure_folder(path, "COLDSTART_DATA_DIR") if create else path


def runs_dir(profile: Optional[str] = None) -> Path:
    """Where a run writes results: ``$COLDSTART_RUNS`` or ``<root>/runs/<profile>`` (created;
    :class:`UnusableFolder` if it cannot be)."""
    env = os.environ.get("COLDSTART_RUNS")
    if env:
        path = Path(env).expanduser()
    else:
        name = profile if isinstance(profile, str) else (profile.name if profile else get_profile().name)
        path = project_root() / "runs" / name
    return ensure_folder(path, "COLDSTART_RUNS")


def set_seed(seed: int = 42, deterministic: bool = True) -> None:
    """Seed Python, NumPy and (if it is imported or importable) TensorFlow.

    With ``deterministic=True`` TensorFlow's op determinism is switched on too, so two runs on a
    CPU give identical numbers (at some cost in speed; GPUs may still differ in the last digits).
    """
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        tf = import_tensorflow()
    except ImportError:  # pragma: no cover
        return
    tf.keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
