"""Run the multiverse on dask.distributed: an embedded LocalCluster by default, or an existing scheduler.

Scheduler choice (no code change between the two): ``--scheduler ADDRESS`` or the environment variable
``DUALUSE_DASK_SCHEDULER`` (e.g. ``tcp://10.0.0.5:8786``) connects to a running ``dask scheduler``; otherwise a
``LocalCluster(n_workers=N, threads_per_worker=1, processes=True)`` is started for the run and closed after it (one
single-threaded process per core: the fits are small NumPy problems, so processes, not threads, give parallelism;
dask's nanny also pins BLAS to one thread per worker). Workers on other machines must run the same code: before
sending work, the driver compares each worker's :func:`analysis.multiverse.cache.code_version` with its own.

Task graph: the window panel, the base frame and the index configuration are scattered once (broadcast to every
worker); one task per index choice builds that choice's analysis frame; the frames (a few kB each) are gathered;
cells are batched into chunks of ``chunk_size`` cells of one index choice, one task each carrying its frame, so
per-task work (tens of fits) dwarfs the scheduler's per-task overhead (about a millisecond), any worker can take
any chunk, and the scheduler hands chunks out as workers become free. Results are collected as they complete,
cached by the driver, and finally ordered by spec id (:func:`analysis.multiverse.cache.spec_id`: the definition's
content hash, without the inputs and the code version that the cache key ``spec_hash`` adds) — so the output does
not depend on which worker finished first, and an edit of the engine's code does not reorder it.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np
import pandas as pd
from tqdm import tqdm

from analysis.index.config import IndexConfig
from analysis.multiverse import cache, tasks
from analysis.multiverse.grid import CHOICE_COLUMNS, Cell

SCHEDULER_ENV = "DUALUSE_DASK_SCHEDULER"

RESULT_COLUMNS = (["spec_hash"] + CHOICE_COLUMNS + ["index_method", "term", "estimate", "std_error", "ci_low",
                                                    "ci_high", "p_value", "n_obs", "n_clusters", "error", "spec_id"])


@dataclass(frozen=True)
class RunStats:
    """What a run did: cells in the grid, distinct specifications, found in the cache, computed, dask tasks."""

    n_cells: int
    n_unique: int
    n_cached: int
    n_computed: int
    n_tasks: int
    n_errors: int


def scheduler_address(flag: str | None = None) -> str | None:
    """The scheduler to use: the flag, else $DUALUSE_DASK_SCHEDULER, else None (embedded LocalCluster)."""
    return flag or os.environ.get(SCHEDULER_ENV) or None


#: dask settings for the embedded LocalCluster (an existing scheduler keeps its own). Its scheduler and nannies run
#: in the driver process, which shares the cores with the workers, so their housekeeping is time taken from the
#: fits: with the defaults the driver's event loop used ~0.1 s of CPU per second of a 2-worker run (0.65 s in a
#: 6.8 s run), with these ~0.25 s in 4.3 s. None of them changes what is computed.
LOCAL_CLUSTER_CONFIG = {
    # Chunks are queued on the scheduler and handed to free workers (see run_multiverse), so there is nothing to
    # steal; stealing would re-balance every 100 ms.
    "distributed.scheduler.work-stealing": False,
    # Event-loop health check (it warns when a loop is blocked for seconds); default every 20 ms.
    "distributed.admin.tick.interval": "1s",
    # CPU/memory/network samples for the dashboard, which is off; default every 500 ms.
    "distributed.admin.system-monitor.interval": "5s",
    # Worker memory limits (spill/pause/restart); the data are a few MB; default every 100 ms.
    "distributed.worker.memory.monitor-interval": "1s",
}


@contextmanager
def dask_client(scheduler: str | None = None, workers: int = 2) -> Iterator:
    """A dask ``Client``: connected to ``scheduler`` if given (see :func:`scheduler_address`), else to a
    LocalCluster of ``workers`` single-threaded processes (configured with :data:`LOCAL_CLUSTER_CONFIG`, which the
    nannies pass on to the worker processes) that is shut down (processes joined) on exit."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with dask.config.set(LOCAL_CLUSTER_CONFIG), \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                         silence_logs=logging.WARNING) as cluster, Client(cluster) as client:
        yield client


def check_worker_code(client, expected: str) -> None:
    """Raise if any worker's code version differs from the driver's (a remote worker with other code)."""
    versions = client.run(cache.code_version)
    stale = sorted(addr for addr, version in versions.items() if version != expected)
    if stale:
        raise RuntimeError(f"dask workers {stale} run different analysis code (or package versions) than this "
                           f"driver; install the same checkout on them (pip install -e .) and restart them")


def cell_keys(cells: list[Cell], inputs: Mapping[str, str], code: str) -> list[str]:
    return [cache.cell_hash(cell.hash_payload(), inputs, code) for cell in cells]


def run_multiverse(cells: list[Cell], window: pd.DataFrame, base: pd.DataFrame, index_config: IndexConfig,
                   outcomes: list[str], inputs: Mapping[str, str], code: str, client=None,
                   cache_dir: Path | None = None, chunk_size: int = 40, progress: bool = True
                   ) -> tuple[pd.DataFrame, RunStats]:
    """Fit every cell not in the cache on ``client``; returns (results, one row per cell, ordered by spec id, then
    by the choice names; stats). ``cache_dir`` None disables the cache (nothing read or written). ``client`` may
    be None only when every cell is cached."""
    keys = cell_keys(cells, inputs, code)
    results: dict[str, dict] = {}
    for key in dict.fromkeys(keys):
        cached = cache.read_cached(cache_dir, key)
        if cached is not None:
            results[key] = cached
    n_cached = len(results)

    # Distinct uncached cells, grouped by index choice (first appearance order).
    todo: dict[str, list[tuple[str, Cell]]] = {}
    seen: set[str] = set()
    for key, cell in zip(keys, cells):
        if key in results or key in seen:
            continue
        seen.add(key)
        todo.setdefault(cell.index.name, []).append((key, cell))
    n_todo = len(seen)
    n_tasks = 0
    if n_todo:
        if client is None:
            raise ValueError(f"{n_todo} specifications need computing but no dask client was given")
        from distributed import as_completed

        check_worker_code(client, code)
        window_f, base_f, config_f = client.scatter([window, base, index_config], broadcast=True, hash=False)
        # Phase 1: one task per index choice builds its analysis frame (small: 217 rows x a few columns).
        frame_futures = {
            index_name: client.submit(tasks.analysis_frame, window_f, base_f, config_f, members[0][1].index,
                                      list(outcomes), key=f"frame-{index_name}-{members[0][0][:12]}")
            for index_name, members in todo.items()}
        n_tasks += len(frame_futures)
        # Phase 2: one task per chunk, the chunk's analysis frame (a few kB) passed in the task itself. With no
        # dependencies on other tasks the chunks are "root-ish" to dask's scheduler, which queues them and hands one
        # to a worker whenever it has a free slot (distributed.scheduler.worker-saturation): load balancing follows
        # whichever worker is faster at the moment. (Chunks depending on scattered frames were assigned to workers
        # up front and rebalanced only by work stealing, which left one worker idle for up to a second at the end.)
        frames = dict(zip(frame_futures, client.gather(list(frame_futures.values()))))
        del frame_futures
        futures = []
        for index_name, members in todo.items():
            for start in range(0, len(members), chunk_size):
                chunk = members[start:start + chunk_size]
                payload = [{"key": key, "spec": {**cell.spec, "id": f"mv_{key[:16]}"},
                            "drop_years": list(cell.drop_years), "term": cell.term} for key, cell in chunk]
                futures.append(client.submit(tasks.fit_chunk, frames[index_name], cache.canonical_json(payload),
                                             key=f"fit_chunk-{chunk[0][0][:16]}-{len(chunk)}"))
                n_tasks += 1
        with tqdm(total=n_todo, desc="multiverse specifications", unit="spec", disable=not progress) as bar:
            for future in as_completed(futures):
                chunk_results = future.result()
                for key, result in chunk_results:
                    results[key] = result
                    if cache_dir is not None:
                        cache.write_cached(cache_dir, key, result)
                bar.update(len(chunk_results))
                future.release()

    rows = []
    for key, cell in zip(keys, cells):
        rows.append({"spec_hash": key, **cell.choices, "index_method": cell.index.name, "term": cell.term,
                     **{f: results[key][f] for f in cache.RESULT_FIELDS},
                     "spec_id": cache.spec_id(cell.hash_payload())})
    frame = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    frame = frame.sort_values(["spec_id"] + CHOICE_COLUMNS, kind="mergesort").reset_index(drop=True)
    for column in ("estimate", "std_error", "ci_low", "ci_high", "p_value", "n_clusters"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["n_obs"] = pd.array([None if v is None or (isinstance(v, float) and np.isnan(v)) else int(v)
                               for v in frame["n_obs"]], dtype="Int64")
    frame["error"] = frame["error"].fillna("").astype(str)
    for column in CHOICE_COLUMNS + ["spec_hash", "spec_id", "index_method", "term"]:
        frame[column] = frame[column].astype(str)
    stats = RunStats(n_cells=len(cells), n_unique=len(set(keys)), n_cached=n_cached, n_computed=n_todo,
                     n_tasks=n_tasks, n_errors=int((frame["error"] != "").sum()))
    return frame, stats
