"""Every path the package reads or writes, from one place.

Paths are relative to the repository root, found from this file's location, so nothing depends on the
working directory. Stages take paths as arguments (the Makefile passes them); these are the defaults.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONFIGS = ROOT / "configs"
DATA_SOURCES = CONFIGS / "data_sources.yaml"
PANEL_CONFIG = CONFIGS / "panel.yaml"
INDEX_CONFIG = CONFIGS / "index.yaml"
SHOCKS_CONFIG = CONFIGS / "shocks.yaml"
TABLES_CONFIG = CONFIGS / "tables.yaml"
SPECS = CONFIGS / "specs"

RAW = ROOT / "data" / "raw"
YEARBOOK = RAW / "yearbook-sci-tech"
NBS_POPULATION = RAW / "nbs-population"
NBS_PANEL = RAW / "nbs-province-panel"
REFERENCE = RAW / "reference"
ENTITY_LIST = RAW / "entity-list"
CSL_SAMPLE = RAW / "csl-format-sample"
THEATER_COMMANDS = REFERENCE / "pla_theater_commands_2016_by_province.csv"
SEVEN_SONS = REFERENCE / "seven_sons_of_national_defence.csv"

PROCESSED = ROOT / "data" / "processed"
RAW_VERIFIED_STAMP = PROCESSED / ".raw_verified"
PROVINCES = PROCESSED / "provinces.csv"
PANEL = PROCESSED / "panel.parquet"
PANEL_CSV = PROCESSED / "panel.csv"
CODEBOOK = PROCESSED / "codebook.csv"
CLEANING_LOG = PROCESSED / "cleaning_log.csv"
INDICES = PROCESSED / "indices.parquet"
SHOCKS = PROCESSED / "shocks.parquet"
ANALYSIS_PANEL = PROCESSED / "analysis_panel.parquet"
ESTIMATES = PROCESSED / "estimates"

FIGURES = ROOT / "figures"
NOTEBOOKS = ROOT / "notebooks"


def companion(estimate_file: Path, name: str) -> Path:
    """``<dir>/<spec>.<name>.parquet``, a table an estimator writes beside ``<dir>/<spec>.parquet`` (synthetic
    control: ``paths`` and ``weights``; synthetic DiD: ``paths``, ``weights`` and ``time_weights``)."""
    estimate_file = Path(estimate_file)
    return estimate_file.with_name(f"{estimate_file.stem}.{name}.parquet")


def relative(path: Path) -> str:
    """Path relative to the repository root, for messages and logs (no machine paths in outputs)."""
    try:
        return Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return Path(path).as_posix()
