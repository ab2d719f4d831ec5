"""The course as a whole: notebooks, README and results stay consistent with each other."""

import json
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from coldstart.tools import course, report

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = course.notebooks(ROOT)


def test_notebooks_are_numbered_and_found():
    names = [p.name for p in NOTEBOOKS]
    assert names[:3] == ["00_setup.ipynb", "01_data_preparation.ipynb", "02_baselines.ipynb"]
    assert names == sorted(names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {path.name[:2]} ")
    assert "**Time:**" in nb.cells[0].source  # time per profile, stated up front
    code = [c for c in nb.cells if c.cell_type == "code"]
    # one setup cell, first, that makes the notebook run alone on Colab
    assert "google.colab" in code[0].source and "COURSE_REPO" in code[0].source
    # the profile is printed near the top
    assert any("PROFILE.describe(" in c.source for c in code[:3])
    assert "Try it yourself" in nb.cells[-1].source or "Try it yourself" in "".join(
        c.source for c in nb.cells[-3:] if c.cell_type == "markdown")
    # committed outputs come from a real run, with no errors and no machine paths
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = json.dumps([o for o in outputs])
    for machine_path in {str(ROOT), str(ROOT.parent), str(Path.home())}:
        assert machine_path + "/" not in text, f"{path.name} prints a path of this machine"


def test_setup_cells_use_the_repository_url_of_pyproject():
    url = re.search(r'^Repository = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    setups = {p.name: nbformat.read(p, as_version=4).cells[1].source for p in NOTEBOOKS}
    assert len(set(setups.values())) == 1, "every notebook carries the same setup cell"
    cell = next(iter(setups.values()))
    assert f'COURSE_REPO = "{url}"' in cell
    # a test (tests/test_colab.py) points the cell at a local clone; on Colab it keeps TensorFlow,
    # matches tf-keras to it and switches transformers to Keras 2 before anything imports TensorFlow
    assert 'os.environ.get("COLDSTART_COURSE_REPO"' in cell and 'os.environ.get("COLDSTART_COURSE_DIR"' in cell
    assert '"tf-keras~={TF_MINOR}.0"' in cell
    legacy = cell.index('os.environ["TF_USE_LEGACY_KERAS"] = "1"')
    assert legacy < cell.index("%pip install") and "import tensorflow" not in cell


# Notebooks committed before their first reference run: they must carry no outputs at all (so no
# smoke-profile output is ever committed as if it were a result). `make reference` fills them in;
# then take them off this list.
AWAITING_REFERENCE_RUN: set[str] = set()


def test_committed_notebooks_carry_outputs_of_a_cpu_run():
    assert AWAITING_REFERENCE_RUN <= {p.name for p in NOTEBOOKS}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        if path.name in AWAITING_REFERENCE_RUN:
            assert not outputs, f"{path.name}: commit it unexecuted, or run `make reference` and take it off the list"
            continue
        shown = "".join(o.get("text", "") for o in outputs)
        assert "profile=cpu" in shown, f"{path.name}: run `make reference` to commit cpu-profile outputs"


def test_readme_results_table_is_the_committed_leaderboard():
    board = pd.read_csv(ROOT / "results" / "leaderboard.csv")
    readme = (ROOT / "README.md").read_text()
    block = re.search(re.escape(report.BEGIN) + r"\n(.*?)\n" + re.escape(report.END), readme, re.S)
    assert block, "README lacks the results block"
    assert block.group(1).strip() == report.markdown_table(board, methods=report.HEADLINE).strip()


def test_docs_results_table_is_the_whole_committed_leaderboard():
    board = pd.read_csv(ROOT / "results" / "leaderboard.csv")
    page = (ROOT / "docs" / "results.md").read_text()
    block = re.search(re.escape(report.BEGIN_ALL) + r"\n(.*?)\n" + re.escape(report.END), page, re.S)
    assert block, "docs/results.md lacks the table of every method"
    assert block.group(1).strip() == report.markdown_table(board).strip()


def test_committed_leaderboard_schema_and_provenance():
    board = pd.read_csv(ROOT / "results" / "leaderboard.csv")
    assert list(board.columns) == ["method", "kind", "profile", "protocol", "segment", "metric", "value", "ci_low",
                                   "ci_high"]
    assert set(board["profile"]) <= {"cpu", "paper"}
    assert not board.duplicated(["method", "profile", "protocol", "segment", "metric"]).any()
    runs = json.loads((ROOT / "results" / "leaderboard.runs.json").read_text())
    for method, profile, protocol in board[["method", "profile", "protocol"]].drop_duplicates().to_numpy():
        if profile != "paper":
            info = runs[f"{method} | {profile} | {protocol}"]
            assert info["versions"]["tensorflow"] and info["date"]
    # notebook 02's baselines on the standard segments (notebook 09 adds baselines of market / season groups only)
    baselines = board[(board["kind"] == "baseline") & (board["profile"] == "cpu")
                      & board["segment"].isin(report.TABLE_SEGMENTS)]
    assert ({"popularity", "country-popularity", "item-knn", "tfidf", "zero-shot-lm", "hybrid"}
            <= set(baselines["method"]))
    needed = {(s, m) for s in ("k=1", "k=3", "k=5", "cold-items")
              for m in ("ndcg@10", "recall@10", "recall@20", "coverage@10")}
    for method, g in baselines.groupby("method"):
        assert needed <= set(zip(g["segment"], g["metric"])), method
        acc = g[g["metric"].isin(["ndcg@10", "recall@20"])]
        assert ((acc["ci_low"] <= acc["value"]) & (acc["value"] <= acc["ci_high"])).all()


def test_committed_group_rows_name_their_market_or_season():
    board = pd.read_csv(ROOT / "results" / "leaderboard.csv")
    standard_segments = ["k=1", "k=3", "k=5", "cold-items", "warm"]
    rows = board[(board["protocol"] == "coldstart") & ~board["segment"].isin(standard_segments)]
    bad = sorted(set(rows["segment"]) - {s for s in rows["segment"] if re.fullmatch(r"(market|season)=\S+ k=[135]", s)})
    assert not bad, f"segments that name neither a market nor a season: {bad}"
    # a method of the group rows never shares its name with a method of the standard segments: update_leaderboard
    # replaces rows by (method, profile, protocol), so a shared name would delete the other notebook's rows
    standard = set(board.loc[board["segment"].isin(["k=1", "k=3", "k=5"]), "method"])
    assert not standard & set(rows["method"])


def test_readme_gives_the_two_commands_and_ci_calls_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "make course" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_reference_extras_keep_one_segment_and_skip_what_is_missing(tmp_path):
    import numpy as np

    runs, results = tmp_path / "runs", tmp_path / "results"
    (runs / "lists").mkdir(parents=True)
    np.savez_compressed(runs / "lists" / "tfidf.npz", **{"topk/k=1": np.zeros((2, 3)), "users/k=1": np.arange(2),
                                                       "topk/k=3": np.ones((4, 3)), "users/k=3": np.arange(4)})
    (runs / "ctr_validation_pairs.csv").write_text("label,probability\n1,0.9\n")
    written = course.copy_reference_extras(runs, results)
    assert sorted(p.name for p in written) == ["ctr_validation_pairs.csv", "tfidf.npz"]
    with np.load(results / "lists" / "tfidf.npz") as data:
        assert sorted(data.files) == ["topk/k=3", "users/k=3"]
        assert data["topk/k=3"].shape == (4, 3)


def test_notebook_04_can_run_alone_on_the_reference_files():
    """Notebook 04 falls back to these when no run of its own exists (Colab)."""
    import numpy as np

    for name in course.REFERENCE_LISTS:
        with np.load(ROOT / "results" / "lists" / f"{name}.npz") as data:
            assert len(data["users/k=3"]) == len(data["topk/k=3"]) > 500, name
    pairs = pd.read_csv(ROOT / "results" / "ctr_validation_pairs.csv")
    assert {"label", "probability"} <= set(pairs.columns) and len(pairs) > 100


def _profile_fields(text: str) -> set:
    return set(re.findall(r"PROFILE\.(\w+)\.(\w+)", text))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_print_the_settings_they_use(path):
    """The profile printed at the top of a notebook lists exactly the settings its code reads."""
    import dataclasses

    from coldstart.config import get_profile

    code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    call = re.search(r"PROFILE\.describe\(([^)]*)\)", code)
    assert call, f"{path.name} does not print its profile"
    profile, printed = get_profile("smoke"), set()
    for item in re.findall(r'"([\w.]+)"', call.group(1)):
        section, _, field = item.partition(".")
        fields = [field] if field else [f.name for f in dataclasses.fields(getattr(profile, section))]
        printed |= {(section, f) for f in fields}
    used = _profile_fields(code)
    assert printed == used, f"{path.name}: printed, unused {sorted(printed - used)}; " \
                            f"used, unprinted {sorted(used - printed)}"
