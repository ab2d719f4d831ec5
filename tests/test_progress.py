"""Progress display: a bar interactively, a few plain lines (or none) under CI and nbval; and the long
phases of the course (download, encoding, training, evaluation) all go through it."""

from __future__ import annotations

import inspect

import pytest

from coldstart._internal import progress


@pytest.fixture
def interactive(monkeypatch):
    monkeypatch.delenv("COLDSTART_QUIET_PROGRESS", raising=False)
    monkeypatch.delenv("CI", raising=False)


@pytest.fixture
def quiet(monkeypatch):
    monkeypatch.setenv("COLDSTART_QUIET_PROGRESS", "1")


def test_quiet_switches(monkeypatch, interactive):
    assert not progress.quiet() and progress.keras_verbose() == 1
    monkeypatch.setenv("CI", "true")
    assert progress.quiet() and progress.keras_verbose() == 2  # one line per epoch
    monkeypatch.delenv("CI")
    monkeypatch.setenv("COLDSTART_QUIET_PROGRESS", "1")
    assert progress.quiet()


def test_interactive_gets_a_tqdm_bar(interactive):
    from tqdm.auto import tqdm

    bar = progress.progress_bar(range(10), desc="encoding")
    assert isinstance(bar, tqdm) and bar.total == 10
    assert list(bar) == list(range(10))


def test_quiet_loop_prints_one_summary_line(quiet, capsys):
    assert list(progress.progress_bar(range(100), desc="encoding")) == list(range(100))
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["encoding: done (100 batches, 0 s)"]


def test_quiet_slow_loop_says_where_it_is_once_per_interval(quiet, capsys, monkeypatch):
    clock = iter(float(t) for t in range(0, 1000, 25))   # every batch takes 25 s of a fake clock
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    assert list(progress._lines(range(10), "training", 10, every=60)) == list(range(10))
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["training: 3/10", "training: 6/10", "training: 9/10", "training: done (10 batches, 275 s)"]
    assert all("\r" not in line for line in lines)


def test_quiet_short_loop_is_silent_and_disabled_is_the_iterable(quiet, capsys):
    assert list(progress.progress_bar(range(5), desc="evaluating")) == list(range(5))
    assert capsys.readouterr().out == ""
    items = [1, 2, 3]
    assert progress.progress_bar(items, enabled=False) is items


def test_quiet_unknown_length(quiet, capsys):
    assert list(progress.progress_bar(iter(range(20)), desc="pairs")) == list(range(20))
    assert capsys.readouterr().out.splitlines() == ["pairs: done (0 s)"]


def test_long_phases_use_the_progress_helpers():
    """Encoding, evaluation and fetching call the helpers (training: keras_verbose, checked in notebooks)."""
    from coldstart.data import retail as data
    from coldstart.evaluation import harness as evaluate
    from coldstart.models import encoders
    from coldstart.tools import fetch

    assert "progress_bar(" in inspect.getsource(encoders.encode)
    assert "progress_bar(" in inspect.getsource(evaluate.evaluate)
    assert "quiet()" in inspect.getsource(data._fetch_zip)
    assert "disable_progress_bars" in inspect.getsource(fetch.fetch_model)


def test_download_has_no_bar_when_quiet(quiet, tmp_path, monkeypatch):
    """Under CI pooch gets progressbar=False (its bar would flood the log with carriage returns)."""
    import pooch

    from coldstart.data import retail as data

    seen = {}

    def retrieve(url, known_hash, fname, path, progressbar, downloader):
        seen["progressbar"] = progressbar
        return str(tmp_path / fname)

    monkeypatch.setattr(pooch, "retrieve", retrieve)
    data._fetch_zip(tmp_path, progress=True)
    assert seen["progressbar"] is False
    monkeypatch.delenv("COLDSTART_QUIET_PROGRESS")
    monkeypatch.delenv("CI", raising=False)
    data._fetch_zip(tmp_path, progress=True)
    assert seen["progressbar"] is True


def test_evaluation_is_quiet_under_ci(quiet, tiny_split, capsys):
    from coldstart.evaluation.harness import evaluate
    from coldstart.models.baselines import Popularity

    evaluate(Popularity(tiny_split), tiny_split, n_boot=0)
    assert capsys.readouterr().out == ""


def _calls(source: str, name: str):
    """The argument text of every ``name(...)`` call in ``source`` (balanced parentheses)."""
    for start in [i + len(name) for i in range(len(source)) if source.startswith(name + "(", i)]:
        depth, end = 0, start
        for end in range(start, len(source)):
            depth += {"(": 1, ")": -1}.get(source[end], 0)
            if depth == 0:
                break
        yield source[start:end + 1]


def test_call_finder():
    assert list(_calls("m.fit(a(b), epochs=2)\nx.fit(y)", ".fit")) == ["(a(b), epochs=2)", "(y)"]


def test_notebooks_train_with_keras_verbose():
    """Every Keras ``fit`` (one with ``epochs``) in a notebook passes ``verbose=...keras_verbose()``:
    a bar interactively, one line per epoch under CI and nbval."""
    import nbformat
    from conftest import REPO

    from coldstart.tools import course

    fits = 0
    for path in course.notebooks(REPO):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                for args in _calls(cell.source, ".fit"):
                    if "epochs" in args:
                        fits += 1
                        assert "keras_verbose()" in args or "verbose=0" in args, f"{path.name}: .fit{args[:150]}"
    assert fits >= 2  # notebook 03 trains two models
