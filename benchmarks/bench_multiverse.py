"""The multiverse on 1 vs 2 dask workers (LocalCluster, one single-threaded process each), cache off.

Timed: :func:`analysis.multiverse.runner.run_multiverse` over the grid of configs/multiverse.yaml on the real
processed data, after a warm-up run on each cluster (worker imports are a one-off cost, not throughput), the
1- and 2-worker runs alternating. Cluster start-up is timed separately. Speed-up = median time with 1 worker /
median time with 2 (target ≥ 1.8×).
"""

from __future__ import annotations

import pandas as pd

from analysis import paths
from analysis.index.config import load_config as load_index_config
from analysis.multiverse import __main__ as cli
from analysis.multiverse import cache, grid, runner, tasks
from benchmarks.common import Row


def prepare(config_path=grid.MULTIVERSE_CONFIG, limit: int | None = None):
    index_config = load_index_config(paths.INDEX_CONFIG)
    config = grid.load_config(config_path, index_config)
    cells = grid.expand(config)
    if limit is not None:
        cells = cells[:limit]
    window, base = tasks.prepare_inputs(pd.read_parquet(paths.PANEL), pd.read_parquet(paths.ANALYSIS_PANEL),
                                        pd.read_parquet(paths.SHOCKS), index_config, config.index_choices,
                                        columns=grid.needed_columns(cells))
    inputs = cache.input_fingerprints(cli.input_files(paths.PROCESSED, paths.INDEX_CONFIG))
    return index_config, config, cells, window, base, inputs, cache.code_version()


def run(repeats: int = 7, limit: int | None = None, log=print) -> list[Row]:
    """Both clusters (1 and 2 workers) are started and warmed up first, then their runs alternate 1, 2, 1, 2, ...:
    on a shared virtual machine the speed of the host drifts over minutes, and alternating keeps that drift out of
    the ratio (an idle cluster only exchanges heartbeats)."""
    import statistics
    import time
    from contextlib import ExitStack

    index_config, config, cells, window, base, inputs, code = prepare(limit=limit)
    clients, started, times, results = {}, {}, {1: [], 2: []}, {}
    with ExitStack() as stack:
        for workers in (1, 2):
            start = time.perf_counter()
            clients[workers] = stack.enter_context(runner.dask_client(None, workers))
            started[workers] = time.perf_counter() - start

        def once(workers, subset=cells):
            return runner.run_multiverse(subset, window, base, index_config, list(config.outcomes), inputs, code,
                                         clients[workers], cache_dir=None, chunk_size=config.chunk_size,
                                         progress=False)[0]

        for workers in (1, 2):
            once(workers, cells[: config.chunk_size * workers * 2])  # warm-up: imports on every worker
        for _ in range(repeats):
            for workers in (1, 2):
                start = time.perf_counter()
                results[workers] = once(workers)
                times[workers].append(time.perf_counter() - start)
    medians = {w: statistics.median(v) for w, v in times.items()}
    for workers in (1, 2):
        log(f"multiverse, {workers} worker(s): {len(cells)} specifications, median {medians[workers]:.2f} s "
            f"(runs {', '.join(f'{t:.2f}' for t in times[workers])}); cluster start {started[workers]:.2f} s")
    identical = results[1].equals(results[2])
    speedup = medians[1] / medians[2]
    return [
        Row(f"multiverse, {len(cells)} specifications, 1 worker", medians[1], repeats),
        Row(f"multiverse, {len(cells)} specifications, 2 workers", medians[2], repeats,
            comparison=f"results identical to 1 worker: {identical}"),
        Row("multiverse speed-up 1 -> 2 workers", speedup, repeats, ">= 1.8x", bool(speedup >= 1.8 and identical),
            comparison=f"{medians[1]:.2f} s / {medians[2]:.2f} s (runs alternated; ratio in each pair: "
                       f"{', '.join(f'{a / b:.2f}' for a, b in zip(times[1], times[2]))})"),
    ]
