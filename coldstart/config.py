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
from pathlib import Path
from typing import Optional

import numpy as np

PROFILES = ("smoke", "cpu", "gpu")
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@dataclasses.dataclass(frozen=True)
class Profile:
    """The settings one run uses. Read them as attributes: ``profile.max_len``.

    Attributes
    ----------
    name: ``smoke``, ``cpu`` or ``gpu``.
    eval_users: evaluate on at most this many users per segment (``None``: all of them).
    n_bootstrap: bootstrap resamples for confidence intervals.
    model_name: the encoder (Hub id or local folder) the fine-tuning chapters start from.
    max_len: token length cap for item texts.
    batch_size: training batch size of the two-tower model (the cross-encoder uses half).
    learning_rate: learning rate of the two-tower encoder.
    encode_batch_size: batch size for encoding the catalog.
    ctr_pairs, ctr_epochs: training pairs and epochs of the CTR cross-encoder.
    tower_pairs, tower_epochs: (context, item) pairs per epoch and the most epochs of the two-tower
        model (early stopping on the validation protocol may end sooner).
    rerank_users, rerank_n: test users per segment whose top ``rerank_n`` the cross-encoder
        re-ranks (``None``: all users).
    transfer_pairs, transfer_epochs: (context, item) pairs per epoch and epochs of the two-tower
        model trained on one market's customers (notebook 09; a fixed budget, no early stopping).
    adapt_pairs, adapt_epochs: pairs per epoch and epochs of the short tuning on the other markets'
        customers seen before the cutoff (notebook 09).
    peft_pairs, peft_epochs: notebook 06 trains the two-tower model three ways (full fine-tuning,
        adapters, LoRA) on the same ``peft_pairs`` pairs per epoch for at most ``peft_epochs`` epochs
        each (early stopping on the validation protocol may end sooner); the three share the
        notebook's time budget.
    adapter_size, lora_rank: adapter bottleneck width and LoRA rank.
    peft_learning_rate: peak learning rate of adapters and LoRA, reached by a linear warm-up over the
        first epoch (full fine-tuning uses ``learning_rate``; the few new weights need a larger one).
        1e-3, chosen on the validation protocol (cpu budget, 3 epochs of 4,096 pairs, adapters, seed
        42): 1e-3 and 2e-3 both ended at 0.109-0.110 mean NDCG@10 (full fine-tuning 0.118), but 2e-3
        dipped deeper after the first epoch (0.084 vs 0.099) and in another data order collapsed to
        0.039 from which early stopping kept the pretrained weights; clipping the gradient norm at
        1.0 did not change where 2e-3 ended. Notebooks 08 and 10 set 2e-3 themselves, the rate of
        their reference runs.
    group_pairs: pairs per epoch (one epoch) for each country-group adapter of notebook 06.
    measure_steps: timed training steps per method when step time and peak memory are measured.
    bench_pairs, bench_epochs: (history, next item) pairs per epoch and the most epochs of the
        two-tower model on the published benchmark (notebook 08; early stopping on its validation
        targets may end sooner).
    bench_users, bench_valid_users: benchmark invoices scored at test time, and validation invoices
        used for every choice (``None``: all 16,520).
    serving_calls: new users' click sessions and free-text queries timed in notebook 07's latency
        walk-through (``make benchmark ONLY=serving`` times 300 of each in every profile).
    augment_steps: training steps (batches of ``batch_size``) of each two-tower model of notebook 05:
        the same budget with and without data augmentation.
    augment_variants: which of notebook 05's training sets are trained (``None``: all six; ``smoke``
        runs only the unaugmented one and all augmentations combined).
    tune_pairs, tune_epochs: notebook 10's small training set (the same pairs every epoch, batches
        of 32) and the epochs of its learning curves.
    tune_valid_users: validation users per segment (k=1, 3, 5) scored after every epoch and sweep
        run of notebook 10 (``None``: all).
    tune_learning_rates, tune_batch_sizes: the grid of notebook 10's full fine-tuning sweep; every
        cell trains on the same ``tune_sweep_pairs`` pairs (one epoch).
    tune_adapter_sizes, tune_lora_ranks: the adapter sizes and LoRA ranks notebook 10 compares, each
        trained on ``tune_sweep_pairs`` pairs per epoch for ``tune_peft_epochs`` epochs.
    """

    name: str
    eval_users: Optional[int]
    n_bootstrap: int
    model_name: str
    max_len: int
    batch_size: int
    learning_rate: float
    encode_batch_size: int
    ctr_pairs: int
    ctr_epochs: int
    tower_pairs: int
    tower_epochs: int
    rerank_users: Optional[int]
    rerank_n: int
    transfer_pairs: int
    transfer_epochs: int
    adapt_pairs: int
    adapt_epochs: int
    peft_pairs: int
    peft_epochs: int
    adapter_size: int
    lora_rank: int
    peft_learning_rate: float
    group_pairs: int
    measure_steps: int
    bench_pairs: int
    bench_epochs: int
    bench_users: Optional[int]
    bench_valid_users: Optional[int]
    serving_calls: int
    augment_steps: int
    augment_variants: Optional[tuple]
    tune_pairs: int
    tune_epochs: int
    tune_valid_users: Optional[int]
    tune_learning_rates: tuple
    tune_batch_sizes: tuple
    tune_sweep_pairs: int
    tune_adapter_sizes: tuple
    tune_lora_ranks: tuple
    tune_peft_epochs: int

    def replace(self, **changes) -> "Profile":
        """Return a copy with some settings changed; unknown names raise ``TypeError``."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One line for the top of a notebook: the profile and its main settings."""
        fields = dataclasses.asdict(self)
        name = fields.pop("name")
        return f"profile={name}: " + ", ".join(f"{k}={v}" for k, v in fields.items())


_SETTINGS = {
    "smoke": dict(
        eval_users=150, n_bootstrap=200, model_name=DEFAULT_MODEL, max_len=32, batch_size=32,
        learning_rate=5e-5, encode_batch_size=128, ctr_pairs=192, ctr_epochs=1, tower_pairs=640,
        tower_epochs=1, rerank_users=20, rerank_n=20, transfer_pairs=320, transfer_epochs=1, adapt_pairs=128,
        adapt_epochs=1, peft_pairs=96, peft_epochs=1, adapter_size=64, lora_rank=8, peft_learning_rate=1e-3,
        group_pairs=64, measure_steps=2,
        bench_pairs=512, bench_epochs=1, bench_users=300, bench_valid_users=300, serving_calls=40,
        augment_steps=4, augment_variants=("none", "all"),
        tune_pairs=64, tune_epochs=1, tune_valid_users=30, tune_learning_rates=(5e-5,), tune_batch_sizes=(32,),
        tune_sweep_pairs=64, tune_adapter_sizes=(16,), tune_lora_ranks=(), tune_peft_epochs=1,
    ),
    "cpu": dict(
        eval_users=None, n_bootstrap=1000, model_name=DEFAULT_MODEL, max_len=32, batch_size=64,
        learning_rate=5e-5, encode_batch_size=128, ctr_pairs=4000, ctr_epochs=2, tower_pairs=4096,
        tower_epochs=6, rerank_users=300, rerank_n=30, transfer_pairs=4096, transfer_epochs=3, adapt_pairs=1024,
        adapt_epochs=2, peft_pairs=4096, peft_epochs=3, adapter_size=64, lora_rank=8, peft_learning_rate=1e-3,
        group_pairs=1024, measure_steps=10,
        bench_pairs=9600, bench_epochs=3, bench_users=None, bench_valid_users=2000, serving_calls=300,
        augment_steps=100, augment_variants=None,
        tune_pairs=1536, tune_epochs=5, tune_valid_users=300, tune_learning_rates=(2e-5, 5e-5, 1e-4),
        tune_batch_sizes=(32, 64), tune_sweep_pairs=1024, tune_adapter_sizes=(16, 64, 256), tune_lora_ranks=(4, 8, 16),
        tune_peft_epochs=2,
    ),
    "gpu": dict(
        eval_users=None, n_bootstrap=1000, model_name=DEFAULT_MODEL, max_len=48, batch_size=128,
        learning_rate=2.5e-5, encode_batch_size=512, ctr_pairs=40000, ctr_epochs=3, tower_pairs=16384,
        tower_epochs=10, rerank_users=None, rerank_n=50, transfer_pairs=16384, transfer_epochs=3,
        adapt_pairs=1024, adapt_epochs=3, peft_pairs=16384, peft_epochs=6, adapter_size=64, lora_rank=8,
        peft_learning_rate=1e-3, group_pairs=4096, measure_steps=20,
        bench_pairs=32768, bench_epochs=5, bench_users=None, bench_valid_users=None, serving_calls=300,
        augment_steps=300, augment_variants=None,
        tune_pairs=4096, tune_epochs=8, tune_valid_users=None, tune_learning_rates=(1e-5, 2.5e-5, 5e-5, 1e-4),
        tune_batch_sizes=(32, 64, 128), tune_sweep_pairs=8192, tune_adapter_sizes=(16, 64, 256),
        tune_lora_ranks=(4, 8, 16), tune_peft_epochs=3,
    ),
}


def _has_accelerator() -> bool:
    if os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME"):
        return True
    try:
        from ._internal.tf import import_tensorflow

        tf = import_tensorflow()  # lazy: importing TF costs seconds
        return bool(tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"))
    except Exception:  # pragma: no cover - TF missing or broken: the version check reports it
        return False


def get_profile(name: Optional[str] = None, **overrides) -> Profile:
    """Return the run profile: ``name``, else ``$COLDSTART_PROFILE``, else chosen from the hardware.

    ``overrides`` change single settings (``get_profile("cpu", epochs=1)``); a misspelt setting
    raises ``TypeError``. Raises ``ValueError`` for an unknown profile name, and under CI for any
    profile but ``smoke`` (set ``COLDSTART_ALLOW_FULL_IN_CI=1`` to allow it).
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
    settings = dict(_SETTINGS[chosen])
    model = os.environ.get("COLDSTART_MODEL")
    if model:
        settings["model_name"] = model
    profile = Profile(name=chosen, **settings)
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


def data_dir() -> Path:
    """Where downloads and caches go: ``$COLDSTART_DATA_DIR`` or ``<root>/data`` (created)."""
    path = Path(os.environ.get("COLDSTART_DATA_DIR") or project_root() / "data").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir(profile: Optional[str] = None) -> Path:
    """Where a run writes results: ``$COLDSTART_RUNS`` or ``<root>/runs/<profile>`` (created)."""
    env = os.environ.get("COLDSTART_RUNS")
    if env:
        path = Path(env).expanduser()
    else:
        name = profile if isinstance(profile, str) else (profile.name if profile else get_profile().name)
        path = project_root() / "runs" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def set_seed(seed: int = 42, deterministic: bool = True) -> None:
    """Seed Python, NumPy and (if it is imported or importable) TensorFlow.

    With ``deterministic=True`` TensorFlow's op determinism is switched on too, so two runs on a
    CPU give identical numbers (at some cost in speed; GPUs may still differ in the last digits).
    """
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        from ._internal.tf import import_tensorflow

        tf = import_tensorflow()
    except ImportError:  # pragma: no cover
        return
    tf.keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
