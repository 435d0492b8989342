"""CLI: ``python -m analysis.clean`` — raw files → panel (Parquet + CSV), codebook, cleaning log, province table, and
the side tables of the cleaning (``defence_firms_crosscheck.csv``: Shenwan vs CITIC defence-industry membership)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis import paths
from analysis.clean.panel import build, load_config
from analysis.io import DataError, write_csv, write_parquet
from analysis.provinces import province_table
from analysis.cli import guard, report


@guard
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.clean", description=__doc__)
    p.add_argument("--config", type=Path, default=paths.PANEL_CONFIG)
    p.add_argument("--raw-dir", type=Path, default=paths.RAW)
    p.add_argument("--out-dir", type=Path, default=paths.PROCESSED)
    args = p.parse_args(argv)
    try:
        tables: dict = {}
        panel, book, log = build(load_config(args.config), args.raw_dir, tables=tables)
        provinces = province_table()
    except DataError as err:
        return report(err)
    out = args.out_dir
    write_csv(provinces, out / paths.PROVINCES_NAME)
    for name, table in sorted(tables.items()):
        write_csv(table, out / f"{name}.csv")
    write_csv(book, out / paths.CODEBOOK_NAME)
    write_csv(log, out / paths.CLEANING_LOG_NAME)
    write_csv(panel, out / paths.PANEL_CSV_NAME)
    write_parquet(panel, out / paths.PANEL_NAME)
    print(f"panel: {len(panel)} rows ({panel['province_code'].nunique()} provinces × {panel['year'].nunique()} years), "
          f"{panel.shape[1]} columns; {len(log)} cleaning-log records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
