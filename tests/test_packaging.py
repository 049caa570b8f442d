"""The wheel: edgepipe is the only name it installs, every package of the four floors is in it, and the installed
copy imports on its own (the repository off sys.path, the editable install not shadowing it, no old bare names)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.test_layers import FLOORS, REPO

pytestmark = pytest.mark.slow

# Run in the installed copy: imports every module of the edge floors and apps, and checks where each came from.
IMPORT_ALL = textwrap.dedent(
    """
    import importlib, pkgutil, sys
    from pathlib import Path

    target, repo = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    assert all(Path(p or ".").resolve() != repo for p in sys.path), f"the repository is on sys.path: {sys.path}"

    def fail(name):
        raise ImportError(f"cannot import {name}")

    imported = []
    for floor in ("postprocess", "runtime", "apps"):
        package = importlib.import_module("edgepipe." + floor)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".", onerror=fail):
            if not info.name.endswith(".__main__"):
                imported.append(importlib.import_module(info.name).__name__)
    elsewhere = [f"{name}: {module.__file__}" for name, module in sys.modules.items()
                 if name.startswith("edgepipe.") and not Path(module.__file__).resolve().is_relative_to(target)]
    assert not elsewhere, "imported from outside the installed wheel: " + ", ".join(elsewhere)
    for bare in sys.argv[3:]:
        try:
            importlib.import_module(bare)
        except ModuleNotFoundError:
            continue
        raise AssertionError(f"import {bare} works: the wheel must install edgepipe.{bare} only")
    print(len(imported), importlib.import_module("edgepipe.postprocess").__file__)
    """
)


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel pip builds from a copy of what setuptools reads (building in the repository would leave a build/
    folder there, whose stale files a later build would pack)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for floor in FLOORS:
        shutil.copytree(REPO / floor, src / floor, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src))
    (built,) = out.glob("*.whl")
    return built


def wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return set(z.namelist())


def test_the_wheel_installs_only_edgepipe(wheel):
    tops = {name.split("/")[0] for name in wheel_files(wheel)}
    dist_info = {top for top in tops if top.endswith(".dist-info")}
    assert len(dist_info) == 1 and tops - dist_info == {"edgepipe"}, f"top-level names in {wheel.name}: {tops}"


def test_every_package_of_the_floors_is_in_the_wheel(wheel):
    files = wheel_files(wheel)
    packages = sorted(init.parent.relative_to(REPO) for floor in FLOORS for init in (REPO / floor).rglob("__init__.py"))
    assert {p.parts[0] for p in packages} == set(FLOORS)
    missing = [
        "edgepipe." + ".".join(package.parts)
        for package in packages
        if any(f"edgepipe/{package.as_posix()}/{module.name}" not in files for module in (REPO / package).glob("*.py"))
    ]
    assert not missing, f"not in the wheel: {missing}; add them to [tool.setuptools] packages in pyproject.toml"


def test_the_installed_wheel_imports_alone(wheel, tmp_path):
    target, work = tmp_path / "site", tmp_path / "work"
    work.mkdir()
    run(sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel))
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = run(sys.executable, "-c", IMPORT_ALL, str(target), str(REPO), *FLOORS, cwd=work, env=env)
    count, postprocess_file = result.stdout.split()
    floors = [REPO / floor for floor in ("postprocess", "runtime", "apps")]
    modules = [p for f in floors for p in f.rglob("*.py") if p.name != "__main__.py" and p != f / "__init__.py"]
    assert int(count) == len(modules)  # every module and subpackage of the three floors
    assert Path(postprocess_file).resolve().is_relative_to(target.resolve())
