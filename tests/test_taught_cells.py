"""Code a notebook teaches verbatim is the package's code.

A notebook cell that defines a package object carries the cell tag ``save:<module>.<name>`` (d2l's
``#@save`` idea, without a build step): the reader sees the real code in the chapter, later chapters
import it. This test checks every tagged cell against the object it names, and that every object
whose docstring says it is "taught verbatim in notebook NN" has its tagged cell in that notebook.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TAG = "save:"


def _tagged_cells() -> list:
    """``(notebook, cell index, dotted name, cell source)`` for every tagged cell."""
    found = []
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            for tag in cell.get("metadata", {}).get("tags", []):
                if tag.startswith(TAG):
                    found.append((path.name, i, tag[len(TAG):], cell.source))
    return found


def _taught_objects() -> list:
    """``(dotted name, chapter)`` of every package class or function whose docstring says it is taught
    verbatim in a notebook."""
    found = []
    for path in sorted((ROOT / "coldstart").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                doc = " ".join((ast.get_docstring(node) or "").split())
                match = re.search(r"[Tt]aught verbatim in notebook (\d\d)", doc)
                if match:
                    found.append((f"{module}.{node.name}", match.group(1)))
    return found


TAGGED = _tagged_cells()


def _resolve(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_the_course_tags_the_cells_it_teaches_verbatim():
    taught = {"coldstart.models.bert.CrossEncoder", "coldstart.models.bert.TwoTower",
              "coldstart.models.retrieval.NewProductSlots"}
    assert {name for _, _, name, _ in TAGGED} >= taught


@pytest.mark.parametrize("notebook, index, name, source", TAGGED, ids=[f"{n[:2]}-{name}" for n, _, name, _ in TAGGED])
def test_a_tagged_cell_holds_its_object_verbatim_and_the_object_names_its_chapter(notebook, index, name, source):
    obj = _resolve(name)
    code = inspect.getsource(obj).strip()
    assert code in source, (f"{notebook} cell {index} is tagged {TAG}{name} but differs from the package's code: "
                            f"keep the two identical")
    doc = " ".join((inspect.getdoc(obj) or "").split())
    assert f"notebook {notebook[:2]}" in doc, (
        f"the docstring of {name} should name its chapter, notebook {notebook[:2]}")


@pytest.mark.parametrize("name, chapter", _taught_objects())
def test_an_object_taught_verbatim_has_its_tagged_cell(name, chapter):
    assert any(n.startswith(chapter) and tagged == name for n, _, tagged, _ in TAGGED), (
        f"{name} says it is taught verbatim in notebook {chapter}, but no cell there is tagged {TAG}{name}")
