"""Reviewer notebooks: every source parses and compiles; those whose inputs the fast data stages build (panel,
indices) execute top to bottom, cells in order, without error; a failing cell fails the run; every cell that draws a
figure shows it (PNG in the .ipynb, <img> in the HTML); a rerun gives identical bytes."""

from __future__ import annotations

import re

import jupytext
import nbformat
import pytest

from analysis import paths
from analysis.notebooks import main as notebooks_main

SOURCES = sorted((paths.ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
# Inputs of these exist after `make data` (panel, indices); 03–05 need shocks and estimates (`make notebooks`).
EXECUTED_IN_TESTS = ["01_data_audit", "02_indices_and_claims", "06_military_regions", "07_trace_headline_number"]
# A code cell draws a figure when it calls one of the plotting functions of analysis.figures or new_figure.
PLOTTING_CALL = re.compile(r"\b(plot_\w+|new_figure)\(")


@pytest.fixture(scope="module")
def executed(tmp_path_factory, stage_tree):
    """Each notebook of EXECUTED_IN_TESTS executed once: name -> (.ipynb path, .html path). The notebooks read the
    outputs of the data stages run into a temporary folder (conftest ``stage_tree``, ``--processed-dir``), so no
    pipeline output is needed."""
    folder = tmp_path_factory.mktemp("notebooks")
    out = {}
    for name in EXECUTED_IN_TESTS:
        ipynb, html = folder / f"{name}.ipynb", folder / f"{name}.html"
        assert notebooks_main(["--in", str(paths.ROOT / "notebooks" / f"{name}.py"), "--out", str(ipynb),
                               "--html", str(html), "--processed-dir", str(stage_tree)]) == 0
        out[name] = (ipynb, html)
    return out


def test_notebook_sources_are_py_percent_and_compile():
    assert len(SOURCES) == 7
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
def test_notebook_executes_in_order_without_errors(name, executed):
    out, html = executed[name]
    notebook = nbformat.read(out, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert any(c.outputs for c in code)
    assert notebook.metadata["kernelspec"]["name"] == "dualuse-analysis"
    assert "<html" in html.read_text()[:2000].lower()


@pytest.mark.parametrize("name", EXECUTED_IN_TESTS)
def test_every_plotting_cell_shows_its_figure(name, executed):
    """Each cell that calls a plotting function has a PNG output, and the HTML embeds one <img> per PNG."""
    out, html = executed[name]
    notebook = nbformat.read(out, as_version=4)
    plotting = [c for c in notebook.cells if c.cell_type == "code" and PLOTTING_CALL.search(c.source)]
    for cell in plotting:
        pngs = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        assert pngs, f"{name}: cell {cell.id} draws a figure but shows none:\n{cell.source[:200]}"
        assert all(o["data"]["image/png"].startswith("iVBORw0KGgo") for o in pngs)  # base64 of the PNG signature
    n_png = sum("image/png" in o.get("data", {}) for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert n_png >= len(plotting)
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html.read_text())) == n_png


def test_notebook_sources_that_plot_are_executed_with_figures():
    """The regex above finds the plotting cells of the notebooks that plot (so the test above is not vacuous)."""
    plots = {s.stem for s in SOURCES if PLOTTING_CALL.search(s.read_text())}
    assert {"02_indices_and_claims", "06_military_regions"} <= plots
    assert plots & set(EXECUTED_IN_TESTS)


def test_rerun_gives_identical_bytes(executed, stage_tree, tmp_path):
    """Executing a notebook with figures a second time writes the same .ipynb and .html bytes (stable cell ids,
    PNGs without the matplotlib version tag)."""
    name = "06_military_regions"
    out, html = tmp_path / f"{name}.ipynb", tmp_path / f"{name}.html"
    assert notebooks_main(["--in", str(paths.ROOT / "notebooks" / f"{name}.py"), "--out", str(out),
                           "--html", str(html), "--processed-dir", str(stage_tree)]) == 0
    assert out.read_bytes() == executed[name][0].read_bytes()
    assert html.read_bytes() == executed[name][1].read_bytes()
    ids = [c.id for c in nbformat.read(out, as_version=4).cells]
    assert ids == [f"cell-{i:02d}" for i in range(len(ids))]


def test_failing_cell_fails_the_run_and_writes_nothing(tmp_path, capsys):
    source = tmp_path / "bad.py"
    source.write_text("# %%\nx = 1\n\n# %%\nraise ValueError('deliberate failure')\n")
    out = tmp_path / "bad.ipynb"
    assert notebooks_main(["--in", str(source), "--out", str(out)]) == 1
    assert not out.exists()
    assert "deliberate failure" in capsys.readouterr().err
