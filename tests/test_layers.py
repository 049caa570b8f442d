"""The floors' dependency rule, read statically with ast: each floor imports only the floors below it, torch stays in
export, apps reaches export and torch only inside functions, and nobody imports the old bare top-level names."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FLOORS = ("postprocess", "runtime", "export", "apps")  # bottom to top: a floor imports only the floors below it
# The top-level names the floors were imported by before they became edgepipe's subpackages.
BARE_NAMES = frozenset(FLOORS)
CHECKED_FOLDERS = (*FLOORS, "tests", "benchmarks")
# What apps may import only inside functions: edge installs have neither torch nor the export floor's dependencies.
APPS_LAZY = ("edgepipe.export", "torch")


@dataclass(frozen=True)
class Import:
    """One imported name, absolute (relative imports resolved); in_function: inside a def or lambda."""

    name: str
    line: int
    in_function: bool


def within(name: str, package: str) -> bool:
    """Whether the dotted name is package itself or inside it."""
    return name == package or name.startswith(package + ".")


def package_of(path: Path) -> list[str]:
    """The package a file's relative imports start from: postprocess/x.py -> ["edgepipe", "postprocess"]."""
    parts = list(path.parent.parts)
    return ["edgepipe", *parts] if parts and parts[0] in FLOORS else parts


def imports(source: str, package: list[str]) -> list[Import]:
    """Every import statement of a module; `from M import a` gives M.a, so `from edgepipe import export` counts."""
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(alias.name, child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = resolve(child, package)
                found.extend(
                    Import(base if alias.name == "*" else f"{base}.{alias.name}", child.lineno, in_function)
                    for alias in child.names
                )
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(source), in_function=False)
    return found


def resolve(node: ast.ImportFrom, package: list[str]) -> str:
    """The absolute module of `from ... import`; a relative import climbs level - 1 packages up from package."""
    if node.level == 0:
        return node.module or ""
    if node.level > len(package):
        return "<above the top-level package>"
    return ".".join([*package[: len(package) - node.level + 1], *([node.module] if node.module else [])])


def broken_rules(floor: str | None, imp: Import) -> list[str]:
    """The rules one import breaks in a file of floor (None for tests/ and benchmarks/)."""
    rules = []
    top = imp.name.split(".")[0]
    if top in BARE_NAMES:
        rules.append(f"the bare top-level name {top!r} is gone: import edgepipe.{top}")
    if floor is None:
        return rules
    for upper in FLOORS[FLOORS.index(floor) + 1 :]:
        if within(imp.name, f"edgepipe.{upper}"):
            rules.append(f"{floor}/ must not import edgepipe.{upper}: a floor imports only the floors below it "
                         f"({' < '.join(FLOORS)})")
    if within(imp.name, "torch") and floor in ("postprocess", "runtime"):
        rules.append(f"{floor}/ must not import torch: torch belongs to export/ (edge installs have no torch)")
    if floor == "apps" and not imp.in_function and any(within(imp.name, lazy) for lazy in APPS_LAZY):
        rules.append("apps/ imports edgepipe.export and torch only inside functions, never at module level "
                     "(edge installs have neither)")
    if imp.name.startswith("<"):
        rules.append("a relative import must stay inside the package")
    return rules


def violations(path: str, source: str) -> list[str]:
    """One line per broken rule: "file:line: imports NAME: rule". path: relative to the repository root."""
    rel = Path(path)
    floor = rel.parts[0] if rel.parts[0] in FLOORS else None
    return [
        f"{path}:{imp.line}: imports {imp.name}: {rule}"
        for imp in imports(source, package_of(rel))
        for rule in broken_rules(floor, imp)
    ]


def checked_files() -> list[Path]:
    return sorted(p for folder in CHECKED_FOLDERS for p in (REPO / folder).rglob("*.py"))


def test_every_floor_keeps_the_dependency_rule():
    files = checked_files()
    assert {p.relative_to(REPO).parts[0] for p in files} == set(CHECKED_FOLDERS)  # the walk found every folder
    found = [v for p in files for v in violations(p.relative_to(REPO).as_posix(), p.read_text(encoding="utf-8"))]
    assert not found, "imports that break the dependency rule:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("path", "source", "message"),
    [
        # postprocess reaching up to runtime, absolute
        ("postprocess/x.py", "from edgepipe.runtime.session import load\n",
         "postprocess/x.py:1: imports edgepipe.runtime.session.load: postprocess/ must not import edgepipe.runtime"),
        # the same through a relative import, resolved from edgepipe.postprocess
        ("postprocess/x.py", "\nfrom ..runtime import load\n",
         "postprocess/x.py:2: imports edgepipe.runtime.load: postprocess/ must not import edgepipe.runtime"),
        # a floor module taken from edgepipe itself
        ("runtime/x.py", "from edgepipe import export\n", "runtime/ must not import edgepipe.export"),
        # runtime reaching apps, inside a function: still forbidden
        ("runtime/x.py", "def f():\n    import edgepipe.apps.cli\n",
         "runtime/x.py:2: imports edgepipe.apps.cli: runtime/ must not import edgepipe.apps"),
        # export reaching apps from a subpackage, three levels up
        ("export/onnx/x.py", "from ... import apps\n", "export/ must not import edgepipe.apps"),
        # postprocess importing export
        ("postprocess/x.py", "import edgepipe.export.models\n", "postprocess/ must not import edgepipe.export"),
        # torch in postprocess
        ("postprocess/x.py", "import torch\n", "postprocess/ must not import torch"),
        # a torch submodule in runtime, inside a function
        ("runtime/x.py", "def f():\n    from torch import nn\n", "runtime/x.py:2: imports torch.nn: runtime/ must n"),
        # apps importing torch at module level
        ("apps/commands/x.py", "import torch\n", "apps/ imports edgepipe.export and torch only inside functions"),
        # apps importing export at module level
        ("apps/x.py", "from edgepipe.export.models import build\n", "apps/x.py:1: imports edgepipe.export.models.b"),
        # apps importing export at module level of a class body (runs at import time)
        ("apps/x.py", "class A:\n    from edgepipe.export import evaluate\n", "apps/x.py:2: imports edgepipe.exp"),
        # the old bare names, in a floor, in tests and in benchmarks
        ("runtime/x.py", "import postprocess\n", "the bare top-level name 'postprocess' is gone"),
        ("tests/test_x.py", "from runtime.session import load\n", "tests/test_x.py:1: imports runtime.session.load"),
        ("benchmarks/x.py", "def f():\n    import apps.cli\n", "the bare top-level name 'apps' is gone"),
        ("apps/x.py", "from export import models\n", "the bare top-level name 'export' is gone"),
        # a relative import that climbs out of the package
        ("postprocess/x.py", "from ... import y\n", "a relative import must stay inside the package"),
    ],
)
def test_the_checker_reports_each_broken_rule(path, source, message):
    assert any(message in v for v in violations(path, source)), violations(path, source)


@pytest.mark.parametrize(
    ("path", "source"),
    [
        # a floor importing the floors below it
        ("export/x.py", "from edgepipe.postprocess import nms\nfrom edgepipe.runtime import load\nimport torch\n"),
        # apps importing export and torch inside a function
        ("apps/commands/x.py", "def run():\n    import torch\n    from edgepipe.export.models import build\n"),
        # relative imports inside the own floor
        ("postprocess/x.py", "from . import boxes\nfrom .errors import UserError\n"),
        # tests importing any floor, and their own helpers relatively
        ("tests/test_x.py", "from edgepipe.apps.cli import main\nfrom .onnx_graphs import save\n"),
        # names that only start like a floor
        ("postprocess/x.py", "import runtimes\nfrom edgepipe.runtime_helpers import x\n"),
    ],
)
def test_the_checker_accepts_allowed_imports(path, source):
    assert violations(path, source) == []
