"""Fetch everything a class needs ahead of time: ``python -m coldstart.tools.fetch [--profile P]``.

For an offline workshop, run this once while online (``make fetch``). It

* downloads the official UCI zip (sha256-verified) and caches the table as
  ``data/online_retail.parquet``, unless a local file is configured (``COLDSTART_DATA_FILE``);
* copies the profile's encoder(s) from the Hugging Face Hub into ``models/<name>/`` (or
  ``$COLDSTART_MODELS_DIR``), where :func:`coldstart.models.encoders.resolve_model` finds them.

Afterwards the whole course runs with the network off (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional

from .._internal.io import atomic_dir
from .._internal.progress import quiet
from ..config import DEFAULT_MODEL, PROFILES, UnusableFolder, get_profile, shown, writable_folder
from ..data.retail import DataUnavailable, load_raw
from ..models.encoders import ModelUnavailable, models_dir, resolve_model

# Files an encoder needs (weights in either framework's format, tokenizer, config).
MODEL_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
               "model.safetensors", "tf_model.h5", "*.txt", "1_Pooling/*", "modules.json", "sentence_bert_config.json"]


def fetch_data(progress: bool = True) -> str:
    """Make sure the table is available locally; returns where it is."""
    local = os.environ.get("COLDSTART_DATA_FILE")
    df = load_raw(progress=progress)
    where = shown(local) if local else "data/online_retail.parquet"
    print(f"data: {len(df):,} rows available ({where})")
    return where


def _local_copy(name: str) -> Optional[Path]:
    """The local folder of model ``name``, if it has one."""
    try:
        found = resolve_model(name)
    except ModelUnavailable:
        return None
    return Path(found) if Path(found).is_dir() else None


def fetch_model(name: str) -> Path:
    """Copy a Hub model into the local models folder (atomically); returns the folder.

    Raises :class:`~coldstart.config.UnusableFolder` before downloading when the models folder
    cannot be written."""
    found = _local_copy(name)
    if found is not None:
        print(f"model {name}: already local ({shown(found)})")
        return found
    writable_folder(models_dir(), "COLDSTART_MODELS_DIR")
    import huggingface_hub

    if quiet():  # CI, nbval: one line instead of a bar per file
        huggingface_hub.utils.disable_progress_bars()
    target = models_dir() / name.split("/")[-1]
    print(f"model {name}: downloading from the Hugging Face Hub ...", flush=True)
    with atomic_dir(target, "config.json", [*MODEL_FILES, "1_Pooling", ".cache", "README.md"]) as tmp:
        huggingface_hub.snapshot_download(name, local_dir=str(tmp), allow_patterns=MODEL_FILES)
        if not (tmp / "config.json").is_file():
            raise ModelUnavailable(f"Model {name!r} has no config.json on the Hub: is the name right?")
    print(f"model {name}: copied to {shown(target)}")
    return target


def main(argv=None) -> int:
    """The command line. A bad profile name, an unusable data or models folder, or data that cannot
    be had end in one line on stderr (exit status 2 for the arguments, 1 otherwise), not a traceback;
    the models folder is checked before the data download, which takes minutes."""
    parser = argparse.ArgumentParser(description="Fetch the data and models for offline use.")
    parser.add_argument("--profile", default=None, help=f"one of {', '.join(PROFILES)} (default: from the hardware)")
    parser.add_argument("--models", nargs="*", default=None, help="model names (default: the profile's)")
    args = parser.parse_args(argv)
    try:
        profile = get_profile(args.profile)
    except ValueError as exc:
        parser.error(str(exc))
    names = args.models or sorted({profile.encoder.model_name, DEFAULT_MODEL})
    try:
        if any(_local_copy(name) is None for name in names):
            writable_folder(models_dir(), "COLDSTART_MODELS_DIR")
        fetch_data()
        for name in names:
            fetch_model(name)
    except (UnusableFolder, DataUnavailable, ModelUnavailable) as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    print("Ready for offline use: set HF_HUB_OFFLINE=1 and run the course.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
