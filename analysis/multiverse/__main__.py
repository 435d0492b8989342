"""Specification curve on dask: ``python -m analysis.multiverse --config configs/multiverse.yaml --out-dir data/processed
[--scheduler ADDRESS] [--workers N] [--figure-dir figures] [--no-cache] [--no-progress]``.

Reads data/processed/panel.parquet (to rebuild each index choice), data/processed/shocks.parquet,
data/processed/analysis_panel.parquet (controls) and configs/index.yaml; writes
``<out-dir>/multiverse_results.parquet`` and ``.csv`` (one row per specification, ordered by spec_id, the hash of the definition alone),
``<out-dir>/multiverse_summary.json`` (counts, input fingerprints, code version),
``<out-dir>/multiverse_inference.json`` (specification-curve permutation inference, when the configuration has an
``inference:`` section; :mod:`analysis.multiverse.permutation`) and
``<figure-dir>/fig12_specification_curve.pdf`` / ``.png``. Cells are cached in ``<out-dir>/multiverse_cache/<hash>.json``;
a rerun computes only changed cells (and starts no cluster when there are none).

Scheduler: ``--scheduler tcp://HOST:8786`` or ``$DUALUSE_DASK_SCHEDULER`` (your dask security settings apply; an
address where no scheduler answers within 5 s exits 2 naming where it came from); otherwise an embedded LocalCluster
with ``--workers`` (default: ``workers`` in the configuration) single-threaded worker processes, speaking TLS with
credentials made for the run and serving no HTTP (:mod:`analysis.multiverse.runner`).

Failures: cells the engine cannot estimate are recorded in the ``error`` column and never cached; above
``max_failure_share`` of the configuration the run exits 2, naming how many failed and why, and writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from analysis import paths
from analysis.index.config import load_config as load_index_config
from analysis.io import DataError, write_csv, write_json, write_parquet
from analysis.multiverse import cache, grid, runner, tasks
from analysis.cli import guard, report

CACHE_NAME = "multiverse_cache"
FIGURE_STEM = "fig12_specification_curve"


def input_files(out_dir: Path, index_config_path: Path) -> dict[str, Path]:
    """The files a cell depends on, by role (their SHA-256 enter every cell's hash)."""
    return {"panel": out_dir / paths.PANEL.name, "shocks": out_dir / paths.SHOCKS.name,
            "analysis_panel": out_dir / paths.ANALYSIS_PANEL.name, "index_config": index_config_path}


def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(path, "input not found (run `make data` first)")
    return pd.read_parquet(path)


def run(config_path: Path, out_dir: Path, figure_dir: Path | None = paths.FIGURES,
        index_config_path: Path = paths.INDEX_CONFIG, scheduler: str | None = None, workers: int | None = None,
        use_cache: bool = True, progress: bool = True) -> tuple[pd.DataFrame, runner.RunStats]:
    """The stage: load, expand, fit (cached), write results, summary and figure. Returns (results, stats).
    Raises DataError, before writing anything, when more than the configuration's ``max_failure_share`` of the
    specifications failed (:func:`check_failures`)."""
    index_config = load_index_config(index_config_path)
    config = grid.load_config(config_path, index_config)
    cells = grid.expand(config)
    files = input_files(out_dir, index_config_path)
    fingerprints = cache.input_fingerprints(files)
    code = cache.code_version()
    cache_dir = out_dir / CACHE_NAME if use_cache else None
    keys = runner.cell_keys(cells, fingerprints, code)
    n_missing = sum(cache.read_cached(cache_dir, k) is None for k in set(keys))

    window = base = None
    if n_missing:
        window, base = tasks.prepare_inputs(_read(files["panel"]), _read(files["analysis_panel"]),
                                            _read(files["shocks"]), index_config, config.index_choices,
                                            {k: str(v) for k, v in files.items()}, grid.needed_columns(cells))
    address = runner.scheduler_address(scheduler)
    n_workers = workers or config.workers
    if config.inference is not None and window is None:
        window, base = tasks.prepare_inputs(_read(files["panel"]), _read(files["analysis_panel"]),
                                            _read(files["shocks"]), index_config, config.index_choices,
                                            {k: str(v) for k, v in files.items()}, grid.needed_columns(cells))
    inference = None
    if n_missing or config.inference is not None:
        with runner.dask_client(address, n_workers) as client:
            results, stats = runner.run_multiverse(cells, window, base, index_config, list(config.outcomes),
                                                   fingerprints, code, client, cache_dir, config.chunk_size,
                                                   progress)
            check_failures(results, config.max_failure_share, config_path)
            if config.inference is not None:
                inference = run_permutations(cells, window, base, index_config, config, client, results,
                                             runner.cell_keys(cells, fingerprints, code), code)
    else:  # everything cached: no cluster needed
        results, stats = runner.run_multiverse(cells, None, None, index_config, list(config.outcomes),
                                               fingerprints, code, None, cache_dir, config.chunk_size, progress)
        check_failures(results, config.max_failure_share, config_path)

    write_parquet(results, out_dir / paths.MULTIVERSE_RESULTS_NAME)
    write_csv(results, out_dir / paths.MULTIVERSE_RESULTS_CSV_NAME)
    ok = results.loc[results["error"] == ""]
    summary = {
        "config": paths.relative(config_path), "n_specifications": stats.n_cells,
        "n_distinct_specifications": stats.n_unique, "n_failed": stats.n_errors,
        "expected_count": grid.expected_count(config), "inputs_sha256": fingerprints, "code_version": code,
        "estimate_median": float(ok["estimate"].median()) if len(ok) else None,
        "estimate_min": float(ok["estimate"].min()) if len(ok) else None,
        "estimate_max": float(ok["estimate"].max()) if len(ok) else None,
        "share_ci_excludes_zero": float(((ok["ci_low"] > 0) | (ok["ci_high"] < 0)).mean()) if len(ok) else None,
        "share_negative": float((ok["estimate"] < 0).mean()) if len(ok) else None,
    }
    write_json(summary, out_dir / paths.MULTIVERSE_SUMMARY_NAME)
    if inference is not None:
        write_json({**inference.summary, "config": paths.relative(config_path), "inputs_sha256": fingerprints,
                    "code_version": code}, out_dir / paths.MULTIVERSE_INFERENCE_NAME)
    if figure_dir is not None and len(ok):
        from analysis.multiverse.figure import plot_spec_curve

        cohort_specs = ok["treatment"].astype(str).str.contains("first_listing") if "treatment" in ok else None
        note = ("Cohort designs use first Entity-List listing years from a transcription of about half of the "
                "2015–2021 additions (upper bounds: a missing earlier listing can only make them earlier)."
                if cohort_specs is not None and cohort_specs.any() else "")
        plot_spec_curve(results, Path(figure_dir) / FIGURE_STEM, note=note, inference=inference)
    return results, stats


def check_failures(results: pd.DataFrame, max_share: float, config_path: Path) -> None:
    """Raise DataError (exit 2, nothing written) when the share of specifications the engine failed on exceeds
    ``max_share`` (``max_failure_share`` of the configuration): how many failed, and the most frequent reasons."""
    failed = results.loc[results["error"] != "", "error"]
    share = len(failed) / len(results) if len(results) else 0.0
    if share > max_share:
        reasons = "; ".join(f"{count} x {message[:200]}" for message, count in failed.value_counts().head(3).items())
        raise DataError(config_path, f"{len(failed)} of {len(results)} specifications failed ({share:.2%}, above "
                                     f"max_failure_share = {max_share:g}); no results written. Most frequent "
                                     f"reasons: {reasons}", column="max_failure_share")


def run_permutations(cells, window, base, index_config, config, client, results, keys, code):
    """Specification-curve permutation inference on ``client``: the analysis frame of every index choice (one task
    each, as the multiverse builds them), then :func:`analysis.multiverse.permutation.run_inference`."""
    from analysis.multiverse import permutation

    runner.check_worker_code(client, code)
    window_f, base_f, config_f = client.scatter([window, base, index_config], broadcast=True, hash=False)
    futures = {choice.name: client.submit(tasks.analysis_frame, window_f, base_f, config_f, choice,
                                          list(config.outcomes), key=f"perm-frame-{choice.name}")
               for choice in config.index_choices}
    frames = dict(zip(futures, client.gather(list(futures.values()))))
    return permutation.run_inference(cells, frames, config.inference, client, results, keys)


@guard
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=grid.MULTIVERSE_CONFIG, help="configs/multiverse.yaml")
    parser.add_argument("--out-dir", type=Path, default=paths.PROCESSED,
                        help="folder with the inputs (panel, shocks, analysis panel) and for the outputs")
    parser.add_argument("--index-config", type=Path, default=paths.INDEX_CONFIG, help="configs/index.yaml")
    parser.add_argument("--figure-dir", type=Path, default=paths.FIGURES, help="where fig12_specification_curve.pdf/png go")
    parser.add_argument("--scheduler", default=None,
                        help=f"address of a running dask scheduler (default: ${runner.SCHEDULER_ENV}, else a "
                             f"LocalCluster)")
    parser.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes (default: config)")
    parser.add_argument("--no-cache", action="store_true", help="recompute every cell (cache neither read nor written)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    try:
        results, stats = run(args.config, args.out_dir, args.figure_dir, args.index_config, args.scheduler,
                             args.workers, use_cache=not args.no_cache, progress=not args.no_progress)
    except DataError as exc:
        return report(exc)
    print(f"multiverse: {stats.n_cells} specifications ({stats.n_unique} distinct): {stats.n_cached} from cache, "
          f"{stats.n_computed} computed in {stats.n_tasks} dask tasks; {stats.n_errors} failed")
    if stats.n_errors:
        first = results.loc[results["error"] != "", "error"].value_counts().head(3)
        for message, count in first.items():
            print(f"  {count} x {message[:200]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
