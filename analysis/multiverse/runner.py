"""Run the multiverse on dask.distributed: an embedded LocalCluster by default, or an existing scheduler.

Scheduler choice (no code change between the two): ``--scheduler ADDRESS`` or the environment variable
``DUALUSE_DASK_SCHEDULER`` (e.g. ``tls://10.0.0.5:8786``) connects to a running ``dask scheduler``; otherwise a
``LocalCluster(n_workers=N, threads_per_worker=1, processes=True)`` is started for the run and closed after it (one
single-threaded process per core: the fits are small NumPy problems, so processes, not threads, give parallelism;
dask's nanny also pins BLAS to one thread per worker). Workers on other machines must run the same code: before
sending work, the driver compares each worker's :func:`analysis.multiverse.cache.code_version` with its own.

Security. A dask scheduler runs whatever code a connected client sends, and any local user can connect to a TCP
port on 127.0.0.1. The embedded LocalCluster therefore speaks TLS with mutual authentication: credentials made for
the run by :meth:`distributed.security.Security.temporary` (a self-signed key and certificate held in memory,
handed to the nannies and workers, never written to disk), ``require_encryption``; a client without that
certificate — plain ``tcp://``, or TLS with any other certificate — is refused at the handshake. It serves no
HTTP: the dashboard is off and the scheduler's and workers' HTTP route lists are empty
(:data:`LOCAL_CLUSTER_CONFIG`), and their HTTP listeners, which dask opens regardless, are closed as soon as the
cluster is up (:func:`close_http_servers`). An external scheduler keeps the user's own dask security settings
(``distributed.comm.tls.*`` in the dask configuration, or a ``distributed.client.security-loader``); the driver
only connects to it, giving up after :data:`CONNECT_TIMEOUT_S` seconds with a message naming the address's origin
(``--scheduler`` or ``$DUALUSE_DASK_SCHEDULER``) instead of hanging.

Task graph: the window panel, the base frame and the index configuration are scattered once (broadcast to every
worker); one task per index choice builds that choice's analysis frame; the frames (a few kB each) are gathered;
cells are batched into chunks of ``chunk_size`` cells of one index choice, one task each carrying its frame, so
per-task work (tens of fits) dwarfs the scheduler's per-task overhead (about a millisecond), any worker can take
any chunk, and the scheduler hands chunks out as workers become free. Results are collected as they complete,
cached by the driver (successful fits only, each with its digest: :mod:`analysis.multiverse.cache`), and finally
ordered by spec id (:func:`analysis.multiverse.cache.spec_id`: the definition's content hash, without the inputs
and the code version that the cache key ``spec_hash`` adds) — so the output does not depend on which worker
finished first, and an edit of the engine's code does not reorder it.
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
from analysis.io import DataError
from analysis.multiverse import cache, tasks
from analysis.multiverse.grid import CHOICE_COLUMNS, Cell

SCHEDULER_ENV = "DUALUSE_DASK_SCHEDULER"

logger = logging.getLogger(__name__)

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
    # No HTTP routes (the defaults serve prometheus metrics, cluster info, JSON state and a proxy on the scheduler
    # and metrics on each worker, unauthenticated, with the dashboard off too). dask still opens the listeners;
    # close_http_servers closes them once the cluster is up.
    "distributed.scheduler.http.routes": [],
    "distributed.worker.http.routes": [],
}

#: Seconds to wait for an external scheduler before giving up (dask's default is 30 s, then a traceback).
CONNECT_TIMEOUT_S = 5


def _scheduler_origin(scheduler: str) -> str:
    """Where an external scheduler address came from, for error messages."""
    return f"${SCHEDULER_ENV}" if os.environ.get(SCHEDULER_ENV) == scheduler else "--scheduler"


def connect(scheduler: str, timeout: float = CONNECT_TIMEOUT_S):
    """A ``Client`` connected to the running scheduler at ``scheduler``, with the user's dask security settings.

    Raises DataError naming the address's origin (``$DUALUSE_DASK_SCHEDULER`` or ``--scheduler``) when no scheduler
    answers within ``timeout`` seconds or the address is malformed (the CLIs print it and exit 2)."""
    from distributed import Client

    try:
        return Client(scheduler, timeout=timeout)
    except (OSError, ValueError, TypeError) as exc:  # refused/timed out; bad address; TLS settings missing
        origin = _scheduler_origin(scheduler)
        raise DataError(origin, f"no dask scheduler answered at {scheduler!r} within {timeout:g} s "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); start the "
                                f"scheduler, fix the address, or unset {SCHEDULER_ENV} (and drop --scheduler) to "
                                f"run on an embedded LocalCluster") from None


def close_http_servers(client) -> None:
    """Close the HTTP listeners of the scheduler and every worker of ``client``'s cluster (dask opens them even
    with the dashboard off; with :data:`LOCAL_CLUSTER_CONFIG` they have no routes). Runs on each server's own event
    loop. Stopping is idempotent, so the servers' own shutdown later is unaffected."""
    client.run_on_scheduler(_stop_scheduler_http)
    client.run(_stop_worker_http)


def _stop_scheduler_http(dask_scheduler) -> None:
    if getattr(dask_scheduler, "http_server", None) is not None:
        dask_scheduler.http_server.stop()


def _stop_worker_http(dask_worker) -> None:
    if getattr(dask_worker, "http_server", None) is not None:
        dask_worker.http_server.stop()


@contextmanager
def dask_client(scheduler: str | None = None, workers: int = 2) -> Iterator:
    """A dask ``Client``: connected to ``scheduler`` if given (see :func:`scheduler_address` and :func:`connect`;
    the user's dask security settings apply), else to a LocalCluster of ``workers`` single-threaded processes that
    is shut down (processes joined) on exit. The LocalCluster is configured with :data:`LOCAL_CLUSTER_CONFIG`
    (which the nannies pass on to the worker processes), speaks mutually authenticated TLS with credentials made
    for this run (:meth:`distributed.security.Security.temporary`, in memory only) and serves no HTTP (see the
    module docstring)."""
    import dask
    from distributed import Client, LocalCluster
    from distributed.security import Security

    if scheduler:
        with connect(scheduler) as client:
            yield client
        return
    with dask.config.set(LOCAL_CLUSTER_CONFIG), \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                         protocol="tls://", security=Security.temporary(), silence_logs=logging.WARNING
                         ) as cluster, Client(cluster) as client:
        close_http_servers(client)
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
    problems: list[str] = []
    for key in dict.fromkeys(keys):
        cached = cache.read_cached(cache_dir, key, problems)
        if cached is not None:
            results[key] = cached
    if problems:
        logger.warning("multiverse cache: %d file(s) failed the integrity check and are recomputed: %s%s",
                       len(problems), "; ".join(problems[:3]), " …" if len(problems) > 3 else "")
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
                payload = [{"key": key, "spec": {**cell.spec.canonical(), "id": f"mv_{key[:16]}"},
                            "drop_years": list(cell.drop_years), "term": cell.term} for key, cell in chunk]
                futures.append(client.submit(tasks.fit_chunk, frames[index_name], cache.canonical_json(payload),
                                             key=f"fit_chunk-{chunk[0][0][:16]}-{len(chunk)}"))
                n_tasks += 1
        with tqdm(total=n_todo, desc="multiverse specifications", unit="spec", disable=not progress) as bar:
            for future in as_completed(futures):
                chunk_results = future.result()
                for key, result in chunk_results:
                    results[key] = result
                    if cache_dir is not None and not result["error"]:  # failures are retried, never cached
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
