"""CLI: ``python -m analysis.shocks --panel PANEL --config CONFIG --out-dir DIR [--provinces CSV]``.

Reads the panel (Parquet), the province table (``data/processed/provinces.csv``; rebuilt from the raw reference
files with :func:`analysis.provinces.province_table` if the CSV is absent), the config, the hand-checked entity
locations it names (``configs/entity_locations.yaml``) and the Entity List file(s), and writes into DIR
(atomically):

- ``shocks.parquet``: province_code x year (the study window, configs/panel.yaml ``window``), post indicators, exposures, Entity List measures
- ``shocks_codebook.csv``: column, label, unit, formula, years, source for every column
- ``shocks_summary.md``: events, exposure ranking, Entity List by province and year with coverage, geocode audit
- ``entity_list_geocoded.csv``: every Entity List row with its geocode and the transcriber's province
- ``entity_list_unresolved.csv``: rows not placed (ambiguous, conflict, unresolved), never guessed; those checked
  by hand and left unplaced carry the reason from ``not_placed`` of the locations file
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from analysis import paths
from analysis.io import DataError, write_csv, write_parquet, write_text
from analysis.shocks.build import build_shocks, shocks_codebook, shocks_summary
from analysis.shocks.config import load_config
from analysis.shocks.entity_list import (check_locations, check_rules, geocode_table, read_entity_sources,
                                         transcriber_agreement, unresolved_rows)
from analysis.shocks.geocode import load_gazetteer
from analysis.cli import guard, report


def read_provinces(path: Path) -> pd.DataFrame:
    if path.exists():
        return pd.read_csv(path)
    from analysis.provinces import province_table

    print(f"[shocks] {paths.relative(path)} not found; building the province table from the raw reference files",
          file=sys.stderr)
    return province_table()


def run(panel_path: Path, config_path: Path, out_dir: Path, provinces_path: Path,
        window: tuple[int, int] | None = None) -> pd.DataFrame:
    config = load_config(config_path, window)
    if not panel_path.exists():
        raise DataError(panel_path, "panel not found (run python -m analysis.clean first)")
    panel = pd.read_parquet(panel_path)
    provinces = read_provinces(provinces_path)
    gaz = load_gazetteer(config.aliases, config.street_words, config.direction_words)
    entities = read_entity_sources(config.entity_sources, config.countries)
    geocoded = geocode_table(entities, gaz, config.geocode_fields, config.locations)
    check_rules(geocoded, config.rules, config_file=config.file)
    check_locations(geocoded, config.locations, config.not_placed, config.locations_file)
    shocks = build_shocks(panel, provinces, geocoded, config, panel_path, provinces_path)
    codebook = shocks_codebook(config, shocks.columns)
    summary = shocks_summary(shocks, geocoded, provinces, config)
    audit = transcriber_agreement(geocoded)
    write_parquet(shocks, out_dir / paths.SHOCKS_NAME)
    write_csv(codebook, out_dir / paths.SHOCKS_CODEBOOK_NAME)
    write_text(summary, out_dir / paths.SHOCKS_SUMMARY_NAME)
    write_csv(audit, out_dir / paths.ENTITY_LIST_GEOCODED_NAME)
    write_csv(unresolved_rows(geocoded, config.not_placed), out_dir / paths.ENTITY_LIST_UNRESOLVED_NAME)
    return shocks


@guard
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.shocks", description=__doc__.splitlines()[0])
    ap.add_argument("--panel", type=Path, default=paths.PANEL)
    ap.add_argument("--config", type=Path, default=paths.SHOCKS_CONFIG)
    ap.add_argument("--out-dir", type=Path, default=paths.PROCESSED)
    ap.add_argument("--provinces", type=Path, default=paths.PROVINCES)
    ap.add_argument("--window", type=int, nargs=2, metavar=("FIRST", "LAST"),
                    help="override the study window (default: configs/panel.yaml `window`) for a robustness build")
    args = ap.parse_args(argv)
    try:
        shocks = run(args.panel, args.config, args.out_dir, args.provinces, args.window)
    except DataError as err:
        return report(err)
    print(f"[shocks] wrote {len(shocks)} rows x {shocks.shape[1]} columns to "
          f"{paths.relative(args.out_dir / paths.SHOCKS_NAME)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
