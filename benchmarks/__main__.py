"""Run every benchmark and write benchmarks/results.md: ``python -m benchmarks [--quick] [--skip-make] [--repeats N]
[--only PART ...]``.

Each timing is the median of several runs; ratios are measured side by side in the same run. ``--quick``: one
run each (three for the no-op make) and a quarter of the multiverse grid — a smoke check, not the reference
numbers. The whole default run takes a few minutes on a 2-core machine (the cold pipeline dominates).
Inference benchmarks reuse :mod:`benchmarks.bench_inference` (written with the estimation engine).
``--only`` runs some parts (make, make-test, inference, multiverse, permutation; make-test is the one part not in
the default run: it times ``make test`` on the built working tree); the record then says which parts ran.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/__main__.py` as well as `python -m benchmarks`
    sys.path.insert(0, str(ROOT))

from analysis.io import write_text  # noqa: E402
from benchmarks import bench_inference, bench_make, bench_multiverse, bench_permutation  # noqa: E402
from benchmarks.common import PACKAGES, Row, machine, version  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results.md"
#: The parts of a run, in the order they run.
PARTS = ("make", "make-test", "inference", "multiverse", "permutation")


def inference_rows() -> list[Row]:
    """Wild bootstrap, RI and synth (+ placebos) against the reference packages, via bench_inference."""
    repeats = bench_inference.REPEATS  # bench_inference times each call that many times (its own setting)
    rng = np.random.default_rng(bench_inference.SEED)
    wild, wild_ref = bench_inference.bench_wild(rng)
    ri, ri_ref = bench_inference.bench_ri(rng)
    synth, synth_ref = bench_inference.bench_synth(rng)
    sdid, sdid_ref = bench_inference.bench_sdid(rng)
    return [
        Row("wild cluster bootstrap (WCR, Webb), 9,999 draws, headline spec: province + year FE, 31 clusters",
            wild, repeats, "faster than wildboottest",
            wild < wild_ref, f"wildboottest {wild_ref:.3f} s ({wild_ref / wild:.0f}x)"),
        Row("randomization inference, 1,000 permutations", ri, repeats, "< 2 s", ri < 2,
            f"naive pyfixest refit loop {ri_ref:.1f} s (100 refits x 10; {ri_ref / ri:.0f}x)"),
        Row("synthetic control fit + 30 placebo refits", synth, repeats, "< 10 s", synth < 10,
            f"pysyncon {synth_ref:.3f} s ({synth_ref / synth:.1f}x)"),
        # our sdid calls diff-diff's SyntheticDiD (placebo variance, 200 draws) and replays its draws for the
        # per-period SEs, which diff-diff does not report: recorded so that the cost of that replay is visible
        Row("synthetic DiD + 200 placebo draws (31 units, 10 pre years)", sdid, repeats, "< 10 s", sdid < 10,
            f"diff-diff SyntheticDiD, placebo variance, 200 draws: {sdid_ref:.3f} s (ours {sdid / sdid_ref:.1f}x "
            "its time)"),
    ]


def render(rows: list[Row], started: float, args) -> str:
    def fmt(row: Row) -> str:
        if math.isnan(row.seconds):
            value = "n/a"
        elif row.name.startswith("multiverse speed-up"):
            value = f"{row.seconds:.2f}x"
        else:
            value = f"{row.seconds:.3f} s"
        verdict = "" if row.passed is None else ("pass" if row.passed else "FAIL")
        return f"| {row.name} | {value} | {row.runs} | {row.target} | {verdict} | {row.comparison} |"

    lines = [
        "# Benchmarks",
        "",
        f"Produced by `python -m benchmarks{' --quick' if args.quick else ''}"
        f"{' --skip-make' if args.skip_make else ''}{' --only ' + ' '.join(args.only) if args.only else ''}` on "
        f"{dt.date.today().isoformat()} "
        f"(total {time.perf_counter() - started:.0f} s). Not part of the tests.",
        "",
        f"Machine: {machine()}.",
        "",
        "Versions: " + ", ".join(f"{p} {version(p)}" for p in PACKAGES) + ".",
        "",
        "Each value is the median of `runs` runs; comparisons are measured in the same run on the same data. Make "
        "targets run on a scratch copy of the repository (benchmarks/bench_make.py). The multiverse uses the grid "
        "of configs/multiverse.yaml on the real processed data with the cache off, after a warm-up on each "
        "LocalCluster, the 1- and 2-worker runs alternating (benchmarks/bench_multiverse.py). On a shared virtual "
        "machine absolute times move with the host's load by a quarter or more between runs; the reference "
        "packages' times, measured in the same run, are a gauge of it.",
        "",
        "| benchmark | median | runs | target | result | comparison |",
        "|---|---:|---:|---|---|---|",
        *[fmt(r) for r in rows],
        "",
    ]
    return "\n".join(lines)


def earlier_runs(path: Path) -> str:
    """The runs already recorded in ``path``, kept as measured below the new one (a run that missed a target is never
    replaced by a later pass)."""
    if not Path(path).exists():
        return ""
    old = Path(path).read_text(encoding="utf-8")
    marker = "## Earlier runs"
    if marker in old:
        newest, _, rest = old.partition(marker)
        body = newest.replace("# Benchmarks", "### Run", 1).strip() + "\n\n" + rest.split("\n", 1)[1].lstrip("\n")
    else:
        body = old.replace("# Benchmarks", "### Run", 1).strip() + "\n"
    return f"\n{marker} (kept as measured, newest first)\n\n{body}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run each, a quarter of the multiverse grid")
    parser.add_argument("--skip-make", action="store_true", help="skip the make-based benchmarks")
    parser.add_argument("--repeats", type=int, default=None, help="runs per timing (default 3; --quick: 1)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="Markdown results file")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=None,
                        help="run only these parts (default: all but make-test)")
    args = parser.parse_args(argv)
    parts = set(args.only) if args.only else set(PARTS) - {"make-test"}
    if args.skip_make:
        parts.discard("make")
    repeats = args.repeats or (1 if args.quick else 3)
    started = time.perf_counter()
    rows: list[Row] = []
    if "make" in parts:
        rows += bench_make.run(repeats=repeats)
    if "make-test" in parts:
        rows.append(bench_make.make_test_row())
    if "inference" in parts:
        rows += inference_rows()
    if "multiverse" in parts:
        limit = None
        if args.quick:
            limit = len(bench_multiverse.prepare()[2]) // 4
        rows += bench_multiverse.run(repeats=repeats if args.quick else max(repeats, 7), limit=limit)
    if "permutation" in parts:
        rows += bench_permutation.run(repeats=1 if args.quick else repeats)
    text = render(rows, started, args)
    write_text(text + earlier_runs(args.out), args.out)
    print(text)
    return 0 if all(r.passed is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
