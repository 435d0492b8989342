"""The code a fingerprint covers is derived from the import graph (analysis.fingerprint.code_files), not from lists
of folders or excluded base names: what the engine imports is covered whatever its name, what it does not import is
not, content (not dates) counts, and the result does not depend on the order of the walk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import estimate, fingerprint, paths
from analysis.models import registry
from analysis.multiverse import cache


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def tree(tmp_path):
    """A miniature package: an entry module, an engine that imports an estimator module by name (as the registry
    does), a module named sensitivity.py that the engine imports, a formatter (tables.py) that nothing on the
    estimation path imports, and a relative import inside a function."""
    write(tmp_path, "analysis/__init__.py", '"""package."""\n')
    write(tmp_path, "analysis/estimate.py", "from analysis.models import registry\nfrom analysis import io\n"
                                            "def main():\n    return registry.run()\n")
    write(tmp_path, "analysis/io.py", "def read():\n    return 1\n")
    write(tmp_path, "analysis/models/__init__.py", "")
    write(tmp_path, "analysis/models/registry.py",
          'FUNCTIONS = {"fit": ("analysis.models.regression", "fit")}\n'
          "def run():\n    from .sensitivity import bounds\n    return bounds\n")
    write(tmp_path, "analysis/models/regression.py", '"""OLS."""\nimport numpy as np\nfrom ..io import read\n')
    write(tmp_path, "analysis/models/sensitivity.py", "def bounds():\n    return 0.5\n")
    write(tmp_path, "analysis/models/tables.py", "from analysis.models import regression\nFORMAT = '%.3f'\n")
    write(tmp_path, "analysis/figures/__init__.py", "")
    write(tmp_path, "analysis/figures/plot.py", "import analysis.models.tables\n")
    return tmp_path


def relative(files, root):
    return [f.relative_to(root).as_posix() for f in files]


def test_code_files_follow_the_import_graph(tree):
    files = relative(fingerprint.code_files(["analysis.estimate"], tree), tree)
    assert files == ["analysis/__init__.py", "analysis/estimate.py", "analysis/io.py", "analysis/models/__init__.py",
                     "analysis/models/registry.py", "analysis/models/regression.py",
                     "analysis/models/sensitivity.py"]
    # from the figure module, the formatter and what it imports are reached, the registry is not
    assert relative(fingerprint.code_files(["analysis.figures.plot"], tree), tree) == [
        "analysis/__init__.py", "analysis/figures/__init__.py", "analysis/figures/plot.py", "analysis/io.py",
        "analysis/models/__init__.py", "analysis/models/regression.py", "analysis/models/tables.py"]


def test_an_imported_module_named_sensitivity_is_covered(tree):
    """The old fingerprint skipped any file named sensitivity.py (exclusion by base name): an engine edit there left
    every estimate 'up to date'."""
    before = fingerprint.code_version(["analysis.estimate"], tree)
    write(tree, "analysis/models/sensitivity.py", "def bounds():\n    return 0.25\n")
    assert fingerprint.code_version(["analysis.estimate"], tree) != before


def test_a_module_the_engine_does_not_import_is_not_covered_until_it_is(tree):
    before = fingerprint.code_version(["analysis.estimate"], tree)
    write(tree, "analysis/models/tables.py", "from analysis.models import regression\nFORMAT = '%.4f'\n")
    write(tree, "analysis/figures/plot.py", "import analysis.models.tables  # redrawn\n")
    assert fingerprint.code_version(["analysis.estimate"], tree) == before
    # covered by path, not by name: once the engine imports the file named tables.py, its edits count
    write(tree, "analysis/models/regression.py", '"""OLS."""\nimport numpy as np\nfrom ..io import read\n'
                                                 "from analysis.models.tables import FORMAT\n")
    with_tables = fingerprint.code_version(["analysis.estimate"], tree)
    write(tree, "analysis/models/tables.py", "from analysis.models import regression\nFORMAT = '%.5f'\n")
    assert fingerprint.code_version(["analysis.estimate"], tree) != with_tables


def test_content_counts_not_dates(tree):
    """Any edit of a covered file changes the version (a docstring too: the hash is of the bytes); touching it
    without changing it does not."""
    before = fingerprint.code_version(["analysis.estimate"], tree)
    regression = tree / "analysis/models/regression.py"
    os.utime(regression, (1, 1))
    assert fingerprint.code_version(["analysis.estimate"], tree) == before
    write(tree, "analysis/models/regression.py", '"""Ordinary least squares."""\nimport numpy as np\n'
                                                 "from ..io import read\n")
    assert fingerprint.code_version(["analysis.estimate"], tree) != before


def test_a_new_version_of_a_library_that_estimates_changes_the_code_version(tree, monkeypatch):
    """The synthetic DiD is computed by diff-diff (analysis.models.sdid): a diff-diff upgrade can change its numbers,
    so its version enters the code version, as numpy's and pyfixest's do."""
    import importlib.metadata

    before = fingerprint.code_version(["analysis.estimate"], tree)
    real_version = importlib.metadata.version
    for package in ("diff-diff", "pyfixest"):
        monkeypatch.setattr(importlib.metadata, "version",
                            lambda name, package=package: "999.0" if name == package else real_version(name))
        assert fingerprint.code_version(["analysis.estimate"], tree) != before, package
    monkeypatch.setattr(importlib.metadata, "version", real_version)
    assert fingerprint.code_version(["analysis.estimate"], tree) == before


def test_deterministic_order_and_version(tree):
    one = fingerprint.code_files(["analysis.estimate", "analysis.figures.plot"], tree)
    other = fingerprint.code_files(["analysis.figures.plot", "analysis.estimate", "analysis.estimate"], tree)
    assert one == other and relative(one, tree) == sorted(relative(one, tree))
    assert (fingerprint.code_version(["analysis.estimate", "analysis.figures.plot"], tree)
            == fingerprint.code_version(["analysis.figures.plot", "analysis.estimate"], tree))


def test_a_misspelt_entry_is_an_error(tree):
    with pytest.raises(ValueError, match="analysis.estimat"):
        fingerprint.code_files(["analysis.estimat"], tree)


def test_relative_imports_resolve_against_the_module():
    """``from . import x`` in a package's __init__ is relative to the package itself; in a module, to its parent."""
    root = paths.ROOT
    synth = root / "analysis/models/synth.py"
    assert "analysis.models.simplex" in fingerprint.imported_modules(synth, "analysis.models.synth", root)


def test_lazy_imports_count_only_on_the_path_that_runs(tree):
    """A configuration module with one loader per file: the loader the engine calls brings its lazy import in, the
    loader for the figures' file (never referred to on the estimation path) does not, until something calls it."""
    write(tree, "analysis/config.py",
          "def spec_model():\n    from analysis.io import read\n    return read\n"
          "def exhibit_model():\n    from analysis.figures import plot\n    return plot\n")
    write(tree, "analysis/estimate.py", "from analysis.models import registry\nfrom analysis import io, config\n"
                                        "MODEL = config.spec_model()\ndef main():\n    return registry.run()\n")
    files = relative(fingerprint.code_files(["analysis.estimate"], tree), tree)
    assert "analysis/config.py" in files and not any(f.startswith("analysis/figures/") for f in files)
    write(tree, "analysis/models/registry.py", 'FUNCTIONS = {"fit": ("analysis.models.regression", "fit")}\n'
                                               "def run():\n    from .sensitivity import bounds\n    return bounds\n"
                                               "from analysis.config import exhibit_model\n")
    files = relative(fingerprint.code_files(["analysis.estimate"], tree), tree)
    assert {"analysis/figures/plot.py", "analysis/models/tables.py"} <= set(files)


#: The table-formatting modules of the package (layout, definitions, labels, cells, notes).
TABLE_MODULES = ("analysis/models/tables.py", "analysis/models/table_config.py", "analysis/models/table_labels.py",
                 "analysis/models/table_cells.py", "analysis/models/table_notes.py")


def test_the_real_engine_covers_every_estimator_module_and_no_formatter():
    """On the package itself: every module the registry dispatches to (by name, lazily) and the spec loader are
    covered; the table formatters and the figure drawing code are not; the multiverse covers the index builder and
    the same engine."""
    engine = {paths.relative(f) for f in fingerprint.code_files(estimate.ENGINE_ENTRIES)}
    modules = {module for module, _ in registry.ESTIMATOR_FUNCTIONS.values()}
    modules |= {module for module, _ in getattr(registry, "COMPANION_FUNCTIONS", {}).values()}
    for module in sorted(modules) + ["analysis.models.spec", "analysis.estimate", "analysis.fingerprint"]:
        assert paths.relative(fingerprint.module_file(module)) in engine, module
    assert not engine & {*TABLE_MODULES, "analysis/tables.py", "analysis/power.py",
                         "analysis/results.py"}
    # no figure module at all, nor a config file's model (the exhibit files' models take their vocabulary as an
    # argument, analysis.config_models_exhibits; the spec files' model is analysis.models.spec's)
    assert not any(f.startswith(("analysis/figures/", "analysis/config_models")) for f in engine)
    assert not any(f.startswith("analysis/multiverse/") for f in engine)
    cell = {paths.relative(f) for f in fingerprint.code_files(cache.CODE_ENTRIES)}
    assert {"analysis/index/build.py", "analysis/multiverse/tasks.py", "analysis/multiverse/grid.py"} <= cell
    assert {paths.relative(fingerprint.module_file(module)) for module in modules} <= cell
    assert "analysis/multiverse/figure.py" not in cell and "analysis/multiverse/cache.py" not in cell


def test_static_graph_covers_what_estimation_imports_at_run_time():
    """Agreement with the interpreter: every package module a fresh process has imported after resolving every
    spec and importing every estimator module the registry can dispatch to is in the static set."""
    script = (
        "import importlib, sys\n"
        "from pathlib import Path\n"
        "from analysis import estimate, paths\n"
        "from analysis.models import registry\n"
        "from analysis.models.spec import resolve\n"
        "for f in sorted(Path(paths.ROOT, 'configs', 'specs').glob('*.yaml')):\n"
        "    resolve(f)\n"
        "for m, _ in list(registry.ESTIMATOR_FUNCTIONS.values()) + "
        "list(getattr(registry, 'COMPANION_FUNCTIONS', {}).values()):\n"
        "    importlib.import_module(m)\n"
        "print('\\n'.join(sorted(getattr(m, '__file__', '') or '' for n, m in list(sys.modules.items())\n"
        "                        if n == 'analysis' or n.startswith('analysis.'))))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=paths.ROOT, capture_output=True, text=True,
                          check=True, env={**os.environ, "MPLBACKEND": "Agg"})
    loaded = {paths.relative(Path(f)) for f in done.stdout.split() if f}
    static = {paths.relative(f) for f in fingerprint.code_files(estimate.ENGINE_ENTRIES)}
    assert loaded and loaded <= static, sorted(loaded - static)


def test_cli_prints_the_files(capsys):
    assert fingerprint.main(["analysis.estimate"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [paths.relative(f) for f in fingerprint.code_files(["analysis.estimate"])]
    assert fingerprint.main(["analysis.no_such_module"]) == 2
    assert "analysis.no_such_module" in capsys.readouterr().err


def estimator_entry_points() -> set[tuple[str, str]]:
    """(module, function) of everything that fits a model: the registry's estimator and companion functions, the
    registry's and the estimation stage's drivers."""
    calls = set(registry.ESTIMATOR_FUNCTIONS.values()) | set(getattr(registry, "COMPANION_FUNCTIONS", {}).values())
    calls |= {("analysis.models.registry", "estimate"), ("analysis.models.registry", "estimate_with_companions"),
              ("analysis.estimate", "estimate_spec"), ("analysis.estimate", "run"), ("analysis.estimate", "run_all")}
    return calls


def consumer_sources() -> list[tuple[Path, str]]:
    """The code that only formats: figure modules, tables, power table, RESULTS.md, Figure 12, notebooks."""
    root = paths.ROOT
    files = sorted((root / "analysis" / "figures").glob("*.py")) + sorted((root / "notebooks").glob("*.py"))
    files += [root / f for f in (*TABLE_MODULES, "analysis/tables.py", "analysis/power.py",
                                 "analysis/results.py", "analysis/notebooks.py", "analysis/multiverse/figure.py")]
    out = []
    for f in files:
        rel = f.relative_to(root).with_suffix("")
        out.append((f, ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)))
    return out


def test_figures_tables_and_notebooks_never_call_an_estimator():
    """They read estimation outputs (synthetic paths and weights are companions of the estimate files), so a figure
    or a notebook never refits a model: none of them refers to a fit function or a driver (by import, attribute or
    call). The check itself bites: the estimation stage refers to the registry's drivers."""
    calls = estimator_entry_points()
    for path, module in consumer_sources():
        used = fingerprint.module_imports(path, module).names & calls
        assert not used, f"{paths.relative(path)} calls {sorted(used)}"
    engine = fingerprint.module_file("analysis.estimate")
    assert fingerprint.module_imports(engine, "analysis.estimate").names & calls


def test_make_fragment_lists_the_same_files(tmp_path, tree):
    """The Makefile's code prerequisites are the files the fingerprint hashes: one derivation for both."""
    text = fingerprint.make_fragment({"MODEL_SRC": ["analysis.estimate"], "FIG_SRC": ["analysis.figures.plot"]}, tree)
    lines = dict(line.split(" := ") for line in text.splitlines() if " := " in line)
    assert lines["MODEL_SRC"].split() == relative(fingerprint.code_files(["analysis.estimate"], tree), tree)
    assert "analysis/models/sensitivity.py" in lines["MODEL_SRC"].split()
    assert "analysis/models/tables.py" in lines["FIG_SRC"].split()
    out = tmp_path / "code_deps.mk"
    assert fingerprint.main(["--make-rules", str(out), "MODEL_SRC=analysis.estimate"]) == 0
    assert out.read_text().splitlines()[-1] == "MODEL_SRC := " + " ".join(
        paths.relative(f) for f in fingerprint.code_files(["analysis.estimate"]))
    assert fingerprint.main(["--make-rules", str(out)]) == 2
