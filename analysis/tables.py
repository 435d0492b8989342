"""Regression tables from estimate files: ``python -m analysis.tables --estimates-dir data/processed/estimates --out-dir figures``.

Writes ``<out-dir>/<table>.tex`` and ``<out-dir>/<table>.md`` for each table declared in ``configs/tables.yaml``
(``--config``; or only those named with ``--tables``). Inputs: the estimate Parquet files and JSON sidecars of the
specs each table lists; a listed spec without its ``configs/specs/<id>.yaml`` (``--specs-dir``) is refused, so an
orphaned estimate file is never used. Formatting only; see analysis/models/tables.py (layout) and the modules it
names (table definitions, labels, cells, notes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis import paths
from analysis.io import DataError, write_text
from analysis.models.table_config import TABLES, check_specs, load_tables
from analysis.models.table_labels import LABELS, load_labels
from analysis.models.tables import render
from analysis.cli import guard, report


@guard
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimates-dir", type=Path, default=paths.ESTIMATES)
    parser.add_argument("--out-dir", type=Path, default=paths.FIGURES)
    parser.add_argument("--config", type=Path, default=paths.TABLES_CONFIG, help="the table definitions (YAML)")
    parser.add_argument("--specs-dir", type=Path, default=paths.SPECS)
    parser.add_argument("--tables", nargs="*", help="table names (default: all): "
                        + ", ".join(t.name for t in TABLES))
    args = parser.parse_args(argv)
    tables = TABLES if args.config == paths.TABLES_CONFIG else load_tables(args.config)
    chosen = [t for t in tables if not args.tables or t.name in args.tables]
    unknown = set(args.tables or []) - {t.name for t in tables}
    if unknown:
        parser.error(f"unknown table(s): {', '.join(sorted(unknown))}")
    try:
        labels = LABELS if args.config == paths.TABLES_CONFIG else load_labels(args.config)
        check_specs(chosen, args.specs_dir, args.config)
        for definition in chosen:
            latex, markdown = render(definition, args.estimates_dir, labels)
            write_text(latex, args.out_dir / f"{definition.name}.tex")
            write_text(markdown, args.out_dir / f"{definition.name}.md")
            print(f"wrote {paths.relative(args.out_dir / definition.name)}.tex/.md")
    except DataError as exc:
        return report(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
