"""The package's layout: imports run one way, stage by stage, without cycles; TensorFlow is imported
one way everywhere; no module reaches into another's private names.

Every import statement of every module is read from its source (imports inside functions
included, since those are how cycles hide), resolved to the package module it names, and checked
against the stage order written in ``coldstart/__init__.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "coldstart"

# The stages, lowest first; a module may import its own stage or a lower one. evaluation and models
# share a rank but never import each other (see test_evaluation_and_models_are_independent).
STAGES = {"_internal": 0, "config": 1, "data": 2, "evaluation": 3, "models": 3, "training": 4, "serving": 5,
          "plots": 6, "tools": 7}
ROOT_RANK = STAGES["config"]   # coldstart/__init__.py itself: it imports _internal and config


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _rank(module: str) -> int:
    stage = _stage(module)
    return ROOT_RANK if stage == "" else STAGES[stage]


def _resolve(module: str, node: ast.AST) -> list:
    """The package modules (and their imported names) an import statement names."""
    is_package = MODULES[module].name == "__init__.py"
    if isinstance(node, ast.Import):
        return [(alias.name, None) for alias in node.names if alias.name.split(".")[0] == "coldstart"]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "coldstart":
        return []
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        out.append((sub, None) if sub in MODULES else (target, alias.name))
    return out


def _imports() -> dict:
    """``{module: [(imported module, imported name or None, line)]}`` for every module, nested imports included."""
    found = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        found[module] = [(target, name, node.lineno) for node in ast.walk(tree)
                         if isinstance(node, (ast.Import, ast.ImportFrom))
                         for target, name in _resolve(module, node)]
    return found


IMPORTS = _imports()


def test_every_module_belongs_to_a_stage():
    assert set(STAGES) == {p.name.removesuffix(".py") for p in PACKAGE.iterdir()
                           if p.name != "__init__.py" and (p.suffix == ".py" or (p / "__init__.py").is_file())}
    for module in MODULES:
        assert module in IMPORTS
        _rank(module)   # a KeyError here names a module outside every stage


def test_imports_name_existing_modules():
    for module, imports in IMPORTS.items():
        for target, _, line in imports:
            assert target in MODULES, f"{module}:{line} imports {target}, which is no module of the package"


def test_lower_stages_never_import_higher_ones():
    upward = [f"{module}:{line} imports {target} ({_stage(target)} is above {_stage(module) or 'the package root'})"
              for module, imports in IMPORTS.items() for target, _, line in imports
              if _rank(target) > _rank(module)]
    assert not upward, "\n".join(upward)


def test_evaluation_and_models_are_independent():
    # a model sees Cases (data), never the evaluation harness; the harness knows models only by .score
    crossing = [f"{module}:{line} imports {target}" for module, imports in IMPORTS.items()
                for target, _, line in imports
                if {_stage(module), _stage(target)} == {"evaluation", "models"}]
    assert not crossing, "\n".join(crossing)


def test_nothing_imports_the_tools():
    users = [f"{module}:{line}" for module, imports in IMPORTS.items() for target, _, line in imports
             if _stage(target) == "tools" and _stage(module) != "tools"]
    assert not users, users


def test_no_import_cycle():
    graph = {module: {target for target, _, _ in imports if target != module} for module, imports in IMPORTS.items()}
    state, path = {}, []

    def visit(module):
        state[module] = "open"
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycle = path[path.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_no_module_imports_another_modules_private_names():
    private = [f"{module}:{line} imports {target}.{name}" for module, imports in IMPORTS.items()
               for target, name, line in imports
               if name and name.startswith("_") and not name.startswith("__") and target != module]
    private += [f"{module}:{line} imports {target}" for module, imports in IMPORTS.items()
                for target, _, line in imports
                if any(part.startswith("_") and part != "_internal" and not part.startswith("__")
                       for part in target.split("."))]
    assert not private, "\n".join(private)


def test_tensorflow_is_imported_one_way():
    # coldstart._internal.tf imports TensorFlow quietly (and only there); everybody else calls import_tensorflow()
    direct = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "tensorflow" for n in names) and module != "coldstart._internal.tf":
                direct.append(f"{module}:{node.lineno}")
    assert not direct, f"import TensorFlow through coldstart._internal.tf.import_tensorflow(): {direct}"


def test_no_module_sets_attributes_on_objects_it_does_not_own():
    # caches belong on documented fields or in the module that keeps them, not on other modules' objects
    # (a split, a Hugging Face model): no `obj._name = ...` outside `self`
    found = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AnnAssign) else [])
            for t in targets:
                if (isinstance(t, ast.Attribute) and t.attr.startswith("_") and not t.attr.startswith("__")
                        and not (isinstance(t.value, ast.Name) and t.value.id in ("self", "cls"))):
                    found.append(f"{module}:{node.lineno} sets {ast.unparse(t)}")
    assert not found, "\n".join(found)
