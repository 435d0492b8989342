"""Shared fixtures: the real panel built once per session, and a scratch copy of the raw data for bad-input tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from analysis import paths


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
