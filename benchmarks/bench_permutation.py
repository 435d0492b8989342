"""Specification-curve permutation inference (analysis/multiverse/permutation.py) on the real processed data.

Timed: :func:`analysis.multiverse.permutation.run_inference` over the default grid of configs/multiverse.yaml with
its ``inference`` settings (500 permutations), on LocalClusters of 1 and 2 workers (started and warmed up first,
runs alternating), from the analysis frames of every index choice (built once, as the stage builds them; their
~3 s are reported separately). The naive alternative — the multiverse's per-cell engine path
(:func:`analysis.multiverse.permutation.engine_fit`: permuted panel → engine) — is timed on a sample of
(cell, permutation) pairs and extrapolated to covered cells × permutations; the ratio is naive / batched (2 workers).
Results must be identical for 1 and 2 workers.
"""

from __future__ import annotations

import statistics
import time
from contextlib import ExitStack

import numpy as np
import pandas as pd

from analysis import paths
from analysis.index.config import load_config as load_index_config
from analysis.multiverse import grid, permutation, runner, tasks
from benchmarks.common import Row

TARGET_SECONDS = 120.0


def prepare():
    index_config = load_index_config(paths.INDEX_CONFIG)
    config = grid.load_config(grid.MULTIVERSE_CONFIG, index_config)
    cells = grid.expand(config)
    window, base = tasks.prepare_inputs(pd.read_parquet(paths.PANEL), pd.read_parquet(paths.ANALYSIS_PANEL),
                                        pd.read_parquet(paths.SHOCKS), index_config, config.index_choices,
                                        columns=grid.needed_columns(cells))
    start = time.perf_counter()
    frames = {c.name: tasks.analysis_frame(window, base, index_config, c, list(config.outcomes))
              for c in config.index_choices}
    return config, cells, frames, time.perf_counter() - start


def naive_seconds_per_fit(cells, frames, n_pairs: int = 40, seed: int = 0) -> float:
    """Median seconds of one engine refit of a covered cell on a permuted panel (sampled cells and draws)."""
    groups, units = permutation.build_groups(cells, frames)
    covered = [pos for g in groups for pos, _, _ in g.cells]
    rng = np.random.default_rng(seed)
    perms = permutation.draw_permutations(len(units), n_pairs, seed)
    times = []
    for pos, perm in zip(rng.choice(covered, size=n_pairs, replace=False), perms):
        cell = cells[pos]
        start = time.perf_counter()
        permutation.engine_fit(frames[cell.index.name], cell, perm, units)
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(covered)


def run(repeats: int = 3, log=print) -> list[Row]:
    config, cells, frames, frame_seconds = prepare()
    settings = config.inference
    times, results = {1: [], 2: []}, {}
    with ExitStack() as stack:
        clients = {w: stack.enter_context(runner.dask_client(None, w)) for w in (1, 2)}
        warm = grid.InferenceSettings(2, settings.seed, 1)
        for w in (1, 2):
            permutation.run_inference(cells, frames, warm, clients[w])
        for _ in range(repeats):
            for w in (1, 2):
                start = time.perf_counter()
                results[w] = permutation.run_inference(cells, frames, settings, clients[w])
                times[w].append(time.perf_counter() - start)
    medians = {w: statistics.median(v) for w, v in times.items()}
    identical = results[1].summary == results[2].summary and np.array_equal(
        results[1].envelope, results[2].envelope, equal_nan=True)
    per_fit, n_covered = naive_seconds_per_fit(cells, frames)
    naive = per_fit * n_covered * settings.n_permutations
    total = medians[2] + frame_seconds
    log(f"permutation inference: {n_covered} specifications x {settings.n_permutations} permutations; "
        f"1 worker {medians[1]:.1f} s, 2 workers {medians[2]:.1f} s (+ index frames {frame_seconds:.1f} s); "
        f"naive engine loop {per_fit * 1e3:.1f} ms/fit -> {naive:.0f} s extrapolated")
    return [
        Row(f"specification-curve permutation inference ({n_covered:,} specifications x {settings.n_permutations} "
            f"permutations, 2 workers, incl. index frames)", total, repeats, f"<= {TARGET_SECONDS:.0f} s",
            bool(total <= TARGET_SECONDS and identical),
            f"naive per-cell engine loop {naive:,.0f} s extrapolated from {per_fit * 1e3:.1f} ms/fit on 40 sampled "
            f"(cell, permutation) pairs ({naive / medians[2]:,.0f}x); 1 worker {medians[1]:.1f} s, speed-up "
            f"{medians[1] / medians[2]:.2f}x; identical for 1 and 2 workers: {identical}"),
    ]
