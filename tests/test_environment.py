"""The environment has one source: ``pyproject.toml`` declares the direct dependencies (with bounds), the lock
``requirements.txt`` pins everything they pull in, and ``environment.yml`` is generated from the lock.

Checked here: the lock pins every line exactly and admits no option lines; ``environment.yml`` is byte for byte what
:mod:`analysis.envfile` writes from the lock; every declared bound admits its locked version; every package that
``analysis/`` (resp. ``tests/``, ``benchmarks/``) imports is declared in ``[project] dependencies`` (resp. also the
``test``, ``bench`` extras); the running interpreter is 3.11 and has the locked versions installed.
"""

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from analysis import envfile, paths

ROOT = paths.ROOT
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
LOCK_TEXT = (ROOT / "requirements.txt").read_text(encoding="utf-8")
LOCK = {canonicalize_name(name): version for name, version in envfile.read_lock(LOCK_TEXT)}

# Calls that import a module named by a string literal (the reference packages of some tests are only reached so).
# ``resources.files("pkg")`` reads a package's data files: the package is a dependency all the same.
_IMPORTING_CALLS = {"importorskip", "import_module", "find_spec", "files"}


def _declared(*extras: str) -> dict[str, Requirement]:
    requirements = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    for extra in extras:
        requirements += [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"][extra]]
    return {canonicalize_name(r.name): r for r in requirements}


def imported_top_level_names(folder: Path) -> dict[str, str]:
    """Top-level module names imported by the ``.py`` files under ``folder`` -> one file that imports each.

    ``import x.y``, ``from x import y`` (absolute only) and string literals passed to ``importorskip``,
    ``import_module``, ``find_spec`` and ``resources.files``. The standard library and the repository's own modules
    are left out.
    """
    local = {p.stem for p in ROOT.glob("*.py")} | {p.name for p in ROOT.iterdir() if p.is_dir()}
    local |= {p.stem for p in folder.rglob("*.py")}  # tests import their sibling helper modules by name
    local |= {p.parent.name for p in folder.rglob("*/*.py")}  # ...and their folders (tests/reference/*.py)
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                  and isinstance(node.args[0].value, str)):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if called in _IMPORTING_CALLS:
                    names = [node.args[0].value]
            for name in names:
                top = name.split(".")[0]
                if top and top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_lock_pins_everything_exactly_and_says_how_it_is_made():
    # read_lock raises on any line that is not name==version (a bound, an option, an editable install)
    assert len(LOCK) == len(envfile.read_lock(LOCK_TEXT)) > 50, "one pin per package, no duplicates"
    assert "#    make lock" in LOCK_TEXT, "the pip-compile header names the command that regenerates the lock"
    assert "/" not in "".join(line.split("#")[0] for line in LOCK_TEXT.splitlines()), "no paths or URLs in pins"
    for comment in (line for line in LOCK_TEXT.splitlines() if "# via" in line):
        assert "/tmp" not in comment and str(ROOT) not in comment, f"machine path in the lock: {comment!r}"


def test_environment_yml_is_generated_from_the_lock():
    committed = (ROOT / "environment.yml").read_text(encoding="utf-8")
    assert committed == envfile.environment_yml(LOCK_TEXT), "environment.yml is stale: run `make lock`"
    env = yaml.safe_load(committed)
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert {canonicalize_name(p.split("==")[0]): p.split("==")[1] for p in pip} == LOCK


def test_envfile_rejects_a_lock_that_does_not_pin(tmp_path):
    with pytest.raises(ValueError, match=r"lock\.txt, line 3: not an exact pin"):
        envfile.read_lock("# header\nnumpy==2.4.6\npandas>=3\n", source="lock.txt")
    bad = tmp_path / "requirements.txt"
    bad.write_text("-e .\n")
    out = tmp_path / "environment.yml"
    assert envfile.main(["--lock", str(bad), "--out", str(out)]) == 2
    assert not out.exists(), "nothing half-written"


def test_declared_bounds_admit_the_locked_versions():
    declared = _declared("test", "bench")
    missing = sorted(set(declared) - set(LOCK))
    assert not missing, f"declared in pyproject.toml but not in the lock (run `make lock`): {missing}"
    outside = {name: (str(r.specifier), LOCK[name]) for name, r in declared.items()
               if not r.specifier.contains(LOCK[name], prereleases=True)}
    assert not outside, f"locked version outside the declared bounds: {outside}"
    unbounded = sorted(name for name, r in declared.items() if not any(s.operator == "<" for s in r.specifier))
    assert not unbounded, f"no upper bound in pyproject.toml: {unbounded}"


@pytest.mark.parametrize("folder,extras", [("analysis", ()), ("tests", ("test",)), ("benchmarks", ("test", "bench"))])
def test_every_imported_package_is_declared(folder, extras):
    declared = set(_declared(*extras))
    provided_by = importlib.metadata.packages_distributions()
    undeclared = {}
    for module, where in imported_top_level_names(ROOT / folder).items():
        distributions = {canonicalize_name(d) for d in provided_by.get(module, [])}
        if not distributions & declared:
            undeclared[module] = (where, sorted(distributions) or "not installed")
    assert not undeclared, f"imported by {folder}/ but not declared in pyproject.toml: {undeclared}"


def test_package_data_dependencies_are_declared():
    """Two runtime dependencies are read as files, never imported: the map boundaries (named by a constant) and the
    CJK font (``resources.files("mplfonts")``, found by the import scan)."""
    from analysis.figures import geo

    assert "mplfonts" in imported_top_level_names(ROOT / "analysis")
    provided_by = importlib.metadata.packages_distributions()
    assert {canonicalize_name(d) for d in provided_by[geo.BOUNDARY_PACKAGE]} & set(_declared())


def test_running_environment_has_the_locked_versions():
    installed = {}
    for name, version in LOCK.items():
        try:
            installed[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed[name] = None
    wrong = {name: (version, installed[name]) for name, version in LOCK.items() if installed[name] != version}
    assert not wrong, f"locked vs installed (run `make env`): {wrong}"


def test_running_python_is_311():
    assert sys.version_info[:2] == (3, 11)
