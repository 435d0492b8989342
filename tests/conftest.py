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
