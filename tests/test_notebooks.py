"""Reviewer notebooks: every source parses and compiles; those whose inputs the fast data stages build (panel,
indices) execute top to bottom, cells in order, without error; a failing cell fails the run."""

from __future__ import annotations

import jupytext
import nbformat
import pytest

from analysis import paths
from analysis.notebooks import main as notebooks_main

SOURCES = sorted((paths.ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
# Inputs of these exist after `make data` (panel, indices); 03–05 need shocks and estimates (`make notebooks`).
EXECUTED_IN_TESTS = ["01_data_audit", "02_indices_and_claims", "06_military_regions"]


def test_notebook_sources_are_py_percent_and_compile():
    assert len(SOURCES) == 6
    for source in SOURCES:
        notebook = jupytext.read(source, fmt="py:percent")
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert notebook.cells[0].cell_type == "markdown" and len(code) >= 3, source.name
        for cell in code:
            compile(cell.source, f"{source.name}", "exec")
        text = source.read_text()
        assert "processed_dir()" in text, f"{source.name} must read processed outputs via processed_dir()"
        for forbidden in ("to_parquet(", "to_csv(", "savefig(", "write_text("):
            assert forbidden not in text, f"{source.name} writes a file ({forbidden})"


@pytest.mark.parametrize("name", EXECUTED_IN_TESTS)
def test_notebook_executes_in_order_without_errors(name, tmp_path):
    out, html = tmp_path / f"{name}.ipynb", tmp_path / f"{name}.html"
    assert notebooks_main(["--in", str(paths.ROOT / "notebooks" / f"{name}.py"), "--out", str(out),
                           "--html", str(html)]) == 0
    notebook = nbformat.read(out, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert any(c.outputs for c in code)
    assert notebook.metadata["kernelspec"]["name"] == "dualuse-analysis"
    assert "<html" in html.read_text()[:2000].lower()


def test_failing_cell_fails_the_run_and_writes_nothing(tmp_path, capsys):
    source = tmp_path / "bad.py"
    source.write_text("# %%\nx = 1\n\n# %%\nraise ValueError('deliberate failure')\n")
    out = tmp_path / "bad.ipynb"
    assert notebooks_main(["--in", str(source), "--out", str(out)]) == 1
    assert not out.exists()
    assert "deliberate failure" in capsys.readouterr().err
