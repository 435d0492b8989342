"""Shared fixtures: the real panel built once per session, a scratch copy of the raw data for bad-input tests, the
stage CLIs run once on the real raw files into a temporary tree, and the check behind the ``build`` marker.

Tests marked ``@pytest.mark.build("data/processed/x.parquet", ...)`` check the real build; ``python -m pytest``
deselects them (pyproject ``addopts``), ``make test`` runs them after ``make all``. When one of the files named in
its marker is absent, such a test FAILS ("run make all first"): a check of the build is never silently skipped.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import paths


def pytest_runtest_setup(item):
    """A ``build`` test whose generated inputs are absent fails here, naming them (never a skip)."""
    marker = item.get_closest_marker("build")
    if marker is None:
        return
    if not marker.args:
        pytest.fail(f"{item.nodeid}: @pytest.mark.build needs the generated files the test reads", pytrace=False)
    missing = [str(p) for p in marker.args if not (paths.ROOT / p).exists()]
    if missing:
        pytest.fail(f"{item.nodeid} checks the real build; missing: {', '.join(missing)}. Run make all first.",
                    pytrace=False)


@pytest.fixture(scope="session")
def panel_build():
    """(panel, codebook, cleaning log) built from the real raw files."""
    from analysis.clean.panel import build, load_config

    return build(load_config())


@pytest.fixture(scope="session")
def panel(panel_build):
    return panel_build[0]


@pytest.fixture()
def raw_copy(tmp_path) -> Path:
    """A writable copy of data/raw for tests that corrupt one file."""
    dest = tmp_path / "raw"
    shutil.copytree(paths.RAW, dest)
    return dest


@pytest.fixture(scope="session")
def shocks_config():
    """configs/shocks.yaml, validated."""
    from analysis.shocks.config import load_config

    return load_config()


@pytest.fixture(scope="session")
def shocks_geocoded(shocks_config):
    """The real Entity List transcription, geocoded as the shocks stage does it."""
    from analysis.shocks.entity_list import geocode_table, read_entity_sources
    from analysis.shocks.geocode import load_gazetteer

    cfg = shocks_config
    gaz = load_gazetteer(cfg.aliases, cfg.street_words, cfg.direction_words)
    return geocode_table(read_entity_sources(cfg.entity_sources, cfg.countries), gaz, cfg.geocode_fields,
                         cfg.locations)


def write_shocks_config(tmp_path: Path, mutate) -> Path:
    """A copy of configs/shocks.yaml with ``mutate(raw_dict)`` applied, for bad-config tests."""
    import yaml

    raw = yaml.safe_load(paths.SHOCKS_CONFIG.read_text(encoding="utf-8"))
    mutate(raw)
    target = tmp_path / "shocks.yaml"
    target.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return target


def run_stage(*args: str) -> subprocess.CompletedProcess:
    """``python -m <args>`` with this interpreter from the repository root; a non-zero exit fails the test and shows
    the stage's own message."""
    done = subprocess.run([sys.executable, "-m", *args], cwd=paths.ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"python -m {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}",
                    pytrace=False)
    return done


@pytest.fixture(scope="session")
def stage_tree(tmp_path_factory) -> Path:
    """The data stages run as their CLIs (clean -> index -> shocks -> analysis panel) on a copy of data/raw, every
    output in a temporary folder (data/processed is neither read nor written). Returns that folder.

    The one departure from ``make data``: the index config keeps only the methods the analysis panel reads (the
    default and ``other_index_methods``), which cuts the index stage from about 10 s to 3 s of CPU; each method is
    built independently of the others, so the columns kept are the same numbers.
    """
    import yaml

    root = tmp_path_factory.mktemp("stage_tree")
    raw, out = root / "raw", root / "processed"
    shutil.copytree(paths.RAW, raw)
    index_cfg = yaml.safe_load(paths.INDEX_CONFIG.read_text(encoding="utf-8"))
    panel_cfg = yaml.safe_load((paths.CONFIGS / "analysis_panel.yaml").read_text(encoding="utf-8"))
    keep = [index_cfg["default_method"], *panel_cfg.get("other_index_methods", {})]
    index_cfg["methods"] = {m: index_cfg["methods"][m] for m in keep}
    small_index = root / "index.yaml"
    small_index.write_text(yaml.safe_dump(index_cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    run_stage("analysis.clean", "--raw-dir", str(raw), "--out-dir", str(out))
    run_stage("analysis.index", "--panel", str(out / "panel.parquet"), "--config", str(small_index),
              "--out-dir", str(out), "--no-progress")
    run_stage("analysis.shocks", "--panel", str(out / "panel.parquet"), "--provinces", str(out / "provinces.csv"),
              "--out-dir", str(out))
    run_stage("analysis.analysis_panel", "--panel", str(out / "panel.parquet"), "--indices",
              str(out / "indices.parquet"), "--index-config", str(small_index), "--shocks",
              str(out / "shocks.parquet"), "--panel-codebook", str(out / "codebook.csv"), "--shocks-codebook",
              str(out / "shocks_codebook.csv"), "--out", str(out / "analysis_panel.parquet"))
    return out
