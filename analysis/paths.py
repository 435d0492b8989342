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

# File names of the outputs, written only here (tests/test_paths.py checks that no other module spells one).
# Stages write into varying folders (data/processed, data/processed/window_2015_2022, a test's tmp folder), so they
# need the NAME; the full paths below are the defaults in data/processed.
RAW_VERIFIED_NAME = ".raw_verified"                      # stamp of the raw-file check (analysis.manifest)
# clean stage (python -m analysis.clean)
PROVINCES_NAME = "provinces.csv"
PANEL_NAME = "panel.parquet"
PANEL_CSV_NAME = "panel.csv"
CODEBOOK_NAME = "codebook.csv"
CLEANING_LOG_NAME = "cleaning_log.csv"
DEFENCE_CROSSCHECK_NAME = "defence_firms_crosscheck.csv"
# index stage (python -m analysis.index)
INDICES_NAME = "indices.parquet"
INDEX_WEIGHTS_NAME = "index_weights.csv"
INDEX_SENSITIVITY_NAME = "index_sensitivity.csv"
INDEX_SENSITIVITY_MD_NAME = "index_sensitivity.md"
CLAIMS_CHECK_NAME = "claims_check.csv"
CLAIMS_CHECK_MD_NAME = "claims_check.md"
INDEX_VALIDITY_NAME = "index_validity.csv"
INDEX_VALIDITY_MD_NAME = "index_validity.md"
# shocks stage (python -m analysis.shocks)
SHOCKS_NAME = "shocks.parquet"
SHOCKS_CODEBOOK_NAME = "shocks_codebook.csv"
SHOCKS_SUMMARY_NAME = "shocks_summary.md"
ENTITY_LIST_GEOCODED_NAME = "entity_list_geocoded.csv"
ENTITY_LIST_UNRESOLVED_NAME = "entity_list_unresolved.csv"
# analysis panel (python -m analysis.analysis_panel)
ANALYSIS_PANEL_NAME = "analysis_panel.parquet"
ANALYSIS_PANEL_CODEBOOK_NAME = "analysis_panel_codebook.csv"
# power (python -m analysis.power), multiverse (python -m analysis.multiverse), reference results (analysis.results)
POWER_NAME = "power.csv"
MULTIVERSE_RESULTS_NAME = "multiverse_results.parquet"
MULTIVERSE_RESULTS_CSV_NAME = "multiverse_results.csv"
MULTIVERSE_SUMMARY_NAME = "multiverse_summary.json"
MULTIVERSE_INFERENCE_NAME = "multiverse_inference.json"
RESULTS_NAME = "RESULTS.md"
# build machinery written by the Makefile (make stamps, generated make rules): not outputs, never hashed
ESTIMATES_STAMP_NAME = ".up-to-date"
EXHIBIT_RULES_NAME = "exhibits.mk"

PROCESSED = ROOT / "data" / "processed"
RAW_VERIFIED_STAMP = PROCESSED / RAW_VERIFIED_NAME
PROVINCES = PROCESSED / PROVINCES_NAME
PANEL = PROCESSED / PANEL_NAME
PANEL_CSV = PROCESSED / PANEL_CSV_NAME
CODEBOOK = PROCESSED / CODEBOOK_NAME
CLEANING_LOG = PROCESSED / CLEANING_LOG_NAME
INDICES = PROCESSED / INDICES_NAME
SHOCKS = PROCESSED / SHOCKS_NAME
SHOCKS_CODEBOOK = PROCESSED / SHOCKS_CODEBOOK_NAME
ANALYSIS_PANEL = PROCESSED / ANALYSIS_PANEL_NAME
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
