"""Write the exhibits listed in configs/exhibits.yaml.

``python -m analysis.figures --exhibits configs/exhibits.yaml --out-dir figures [--only ID ...]``
writes ``<out-dir>/figNN_<name>.pdf/.png`` and ``<out-dir>/tabNN_<name>.tex/.md``. ``--list-inputs`` prints the
input files of the chosen exhibits (one per line) for the Makefile and exits. A missing input is an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from analysis import paths
from analysis.figures.exhibits import Locations, build, input_files, load_exhibits
from analysis.figures.style import save_figure
from analysis.io import DataError, write_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exhibits", type=Path, default=paths.CONFIGS / "exhibits.yaml")
    parser.add_argument("--out-dir", type=Path, default=paths.FIGURES)
    parser.add_argument("--only", nargs="+", metavar="ID", help="build only these exhibit ids")
    parser.add_argument("--processed-dir", type=Path, default=paths.PROCESSED)
    parser.add_argument("--estimates-dir", type=Path, default=paths.ESTIMATES)
    parser.add_argument("--specs-dir", type=Path, default=paths.SPECS)
    parser.add_argument("--index-config", type=Path, default=paths.INDEX_CONFIG)
    parser.add_argument("--list-inputs", action="store_true", help="print input files and exit")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    where = Locations(args.processed_dir, args.estimates_dir, args.specs_dir, args.index_config)
    try:
        exhibits = load_exhibits(args.exhibits)
        if args.only:
            unknown = sorted(set(args.only) - {e.id for e in exhibits})
            if unknown:
                parser.error(f"unknown exhibit id(s): {', '.join(unknown)}")
            exhibits = [e for e in exhibits if e.id in args.only]
        if args.list_inputs:
            files = sorted({paths.relative(f) for e in exhibits for f in input_files(e, where)})
            print("\n".join(files))
            return 0
        for exhibit in tqdm(exhibits, desc="exhibits", disable=args.no_progress):
            result = build(exhibit, where)
            stem = args.out_dir / exhibit.id
            if exhibit.output_type == "fig":
                save_figure(result, stem)
                tqdm.write(f"wrote {paths.relative(stem)}.pdf/.png")
            else:
                latex, markdown = result
                write_text(latex, stem.with_suffix(".tex"))
                write_text(markdown, stem.with_suffix(".md"))
                tqdm.write(f"wrote {paths.relative(stem)}.tex/.md")
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
