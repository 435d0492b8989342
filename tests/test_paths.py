"""Output file names live only in analysis/paths.py: no other module of the package spells one as a string literal
(stages write into varying folders — data/processed, data/processed/window_2015_2022, a test's tmp folder — and take
the name from ``paths.<X>_NAME``, so renaming an output is a one-line change)."""

from __future__ import annotations

import ast
from pathlib import Path

from analysis import paths

PACKAGE = paths.ROOT / "analysis"


def name_constants() -> dict[str, str]:
    """``{file name: constant}`` for every ``*_NAME`` string constant of analysis.paths."""
    return {value: key for key, value in vars(paths).items() if key.endswith("_NAME") and isinstance(value, str)}


def literal_names(source: str, names: dict[str, str]) -> list[tuple[int, str]]:
    """(line, literal) of every string literal in ``source`` that equals one of ``names`` (docstrings and f-string
    parts included: a name is a name wherever it is spelled)."""
    return sorted((node.lineno, node.value) for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names)


def test_paths_defines_the_output_names():
    names = name_constants()
    # the outputs of every stage (a subset: a constant removed by mistake would let its literal come back unnoticed)
    for name in ("indices.parquet", "index_weights.csv", "claims_check.md", "shocks.parquet", "shocks_codebook.csv",
                 "entity_list_unresolved.csv", "analysis_panel.parquet", "analysis_panel_codebook.csv",
                 "panel.parquet", "panel.csv", "codebook.csv", "cleaning_log.csv", "provinces.csv",
                 "defence_firms_crosscheck.csv", "power.csv", "multiverse_results.parquet", "multiverse_results.csv",
                 "multiverse_summary.json", "multiverse_inference.json", "RESULTS.md"):
        assert name in names, f"analysis/paths.py has no name constant for {name}"
    assert len(names) == len([k for k, v in vars(paths).items() if k.endswith("_NAME") and isinstance(v, str)]), \
        "two name constants of analysis/paths.py spell the same file name"
    # the full-path defaults are built from the names
    assert paths.INDICES == paths.PROCESSED / paths.INDICES_NAME
    assert paths.ANALYSIS_PANEL == paths.PROCESSED / paths.ANALYSIS_PANEL_NAME


def test_scan_finds_a_spelled_name():
    """The scan itself can fail: a module that writes ``out / "indices.parquet"`` is caught, one using the constant is
    not, and a suffix check (".parquet") is not a file name."""
    names = name_constants()
    assert literal_names('write(df, out / "indices.parquet")\n', names) == [(1, "indices.parquet")]
    assert literal_names("write(df, out / paths.INDICES_NAME)\nok = p.suffix == '.parquet'\n", names) == []


def test_no_module_spells_an_output_name():
    names = name_constants()
    found = []
    for module in sorted(PACKAGE.rglob("*.py")):
        if module == PACKAGE / "paths.py":
            continue
        for line, value in literal_names(module.read_text(encoding="utf-8"), names):
            found.append(f"{module.relative_to(paths.ROOT).as_posix()}:{line}: {value!r} (use paths.{names[value]})")
    assert not found, "output file names spelled outside analysis/paths.py:\n" + "\n".join(found)
