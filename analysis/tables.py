"""Regression tables from estimate files: ``python -m analysis.tables --estimates-dir data/processed/estimates --out-dir figures``.

Writes ``<out-dir>/<table>.tex`` and ``<out-dir>/<table>.md`` for each table in
:data:`analysis.models.tables.TABLES` (or only those named with ``--tables``). Inputs: the estimate Parquet files
and JSON sidecars of the specs each table lists. Formatting only; see analysis/models/tables.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis import paths
from analysis.io import DataError, write_text
from analysis.models.tables import TABLES, render
from analysis.cli import guard, report


@guard
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimates-dir", type=Path, default=paths.ESTIMATES)
    parser.add_argument("--out-dir", type=Path, default=paths.FIGURES)
    parser.add_argument("--tables", nargs="*", help="table names (default: all): "
                        + ", ".join(t.name for t in TABLES))
    args = parser.parse_args(argv)
    chosen = [t for t in TABLES if not args.tables or t.name in args.tables]
    unknown = set(args.tables or []) - {t.name for t in TABLES}
    if unknown:
        parser.error(f"unknown table(s): {', '.join(sorted(unknown))}")
    try:
        for definition in chosen:
            latex, markdown = render(definition, args.estimates_dir)
            write_text(latex, args.out_dir / f"{definition.name}.tex")
            write_text(markdown, args.out_dir / f"{definition.name}.md")
            print(f"wrote {paths.relative(args.out_dir / definition.name)}.tex/.md")
    except DataError as exc:
        return report(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
