"""Run the whole course headless: ``python -m coldstart.tools.course [--profile smoke|cpu|gpu]``.

Executes every numbered notebook in ``notebooks/`` in order, in one profile, with nbclient. The
executed copies go to ``runs/<profile>/notebooks/`` and the results to ``runs/<profile>/`` (or
``$COLDSTART_RUNS``, e.g. to compare two runs) -- the tracked notebooks and ``results/`` are never
rewritten. At the end it prints the leaderboard.

``--reference`` (used by ``make reference``) additionally copies the executed notebooks back over
the tracked ones and the leaderboard to ``results/leaderboard.csv``: that is how the committed
outputs and the reference results are regenerated, on purpose, in one documented command.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from ..config import PROFILES, get_profile, project_root, runs_dir
from .report import TABLE_SEGMENTS


def notebooks(root: Path) -> list:
    """The numbered notebooks (``00_*.ipynb`` ...) in course order."""
    return sorted(p for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def run_notebook(path: Path, out: Path, timeout: int = 3600) -> float:
    """Execute one notebook (cwd = its folder) and write the executed copy to ``out``; returns seconds."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    finally:
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
    return time.perf_counter() - start


# What notebook 04 reads when it runs alone (on Colab, with no run of its own): the k=3 lists of the
# methods its error analysis compares, and the cross-encoder's validation predictions.
REFERENCE_LISTS = ("two-tower+id", "id-part+tfidf", "id-part+zero-shot-lm", "tfidf", "item-knn")


def copy_reference_extras(runs: Path, results: Path, segment: str = "k=3") -> list:
    """Copy a run's lists of :data:`REFERENCE_LISTS` (``segment`` only, to keep the repository small) and
    ``ctr_validation_pairs.csv`` into ``results``; returns the files written. Missing files are skipped."""
    import numpy as np

    written = []
    for name in REFERENCE_LISTS:
        source = runs / "lists" / f"{name}.npz"
        if source.exists():
            with np.load(source) as data:
                arrays = {key: data[key] for key in (f"topk/{segment}", f"users/{segment}")}
            (results / "lists").mkdir(parents=True, exist_ok=True)
            np.savez_compressed(results / "lists" / f"{name}.npz", **arrays)
            written.append(results / "lists" / f"{name}.npz")
    pairs = runs / "ctr_validation_pairs.csv"
    if pairs.exists():
        shutil.copyfile(pairs, results / "ctr_validation_pairs.csv")
        written.append(results / "ctr_validation_pairs.csv")
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=PROFILES, default=None,
                        help="default: from COLDSTART_PROFILE or the hardware")
    parser.add_argument("--only", nargs="*", default=None,
                        help="run only notebooks whose name starts with these prefixes (e.g. 00 01)")
    parser.add_argument("--reference", action="store_true",
                        help="copy outputs back over the tracked notebooks and results/")
    args = parser.parse_args(argv)

    profile = get_profile(args.profile)
    os.environ["COLDSTART_PROFILE"] = profile.name  # the kernels inherit it
    os.environ.setdefault("COLDSTART_QUIET_PROGRESS", "1")
    root = project_root()
    os.environ.setdefault("COLDSTART_HOME", str(root))
    runs = runs_dir(profile.name)  # $COLDSTART_RUNS, else runs/<profile>/
    print(f"Running the course in profile {profile.name!r}; executed notebooks and results go to {runs}", flush=True)
    todo = [p for p in notebooks(root) if not args.only or p.name.startswith(tuple(args.only))]
    if not todo:
        print("No notebooks matched.")
        return 1
    timings = {}
    for nb in todo:
        print(f"- {nb.name} ...", end=" ", flush=True)
        try:
            timings[nb.name] = run_notebook(nb, runs / "notebooks" / nb.name)
        except Exception as err:  # nbclient's CellExecutionError carries the failing cell
            print("FAILED")
            print(str(err)[-3000:], file=sys.stderr)
            print(f"The partly executed notebook is in {runs / 'notebooks' / nb.name}", file=sys.stderr)
            return 1
        print(f"{timings[nb.name] / 60:.1f} min", flush=True)

    board = runs / "leaderboard.csv"
    if board.exists():
        import pandas as pd

        table = pd.read_csv(board)
        main_rows = table[table["metric"].eq("ndcg@10") & table["segment"].isin(TABLE_SEGMENTS)]
        if len(main_rows):
            wide = main_rows.pivot_table(index=["method", "kind"], columns="segment", values="value")
            print("\nLeaderboard (NDCG@10 by segment), profile", profile.name)
            key = "k=1" if "k=1" in wide.columns else wide.columns[0]
            print(wide.sort_values(key, ascending=False).round(4).to_string())
        print(f"\nFull leaderboard: {board}")
    print("Time per notebook (min): " + ", ".join(f"{k[:2]}={v / 60:.1f}" for k, v in timings.items()))

    if args.reference:
        for nb in todo:
            shutil.copyfile(runs / "notebooks" / nb.name, nb)
        if board.exists():
            (root / "results").mkdir(exist_ok=True)
            shutil.copyfile(board, root / "results" / "leaderboard.csv")
            runs_file = board.with_name("leaderboard.runs.json")
            if runs_file.exists():
                shutil.copyfile(runs_file, root / "results" / "leaderboard.runs.json")
        copy_reference_extras(runs, root / "results")
        print("Reference outputs copied into notebooks/ and results/.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
