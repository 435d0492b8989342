"""The embedded dask cluster (analysis.multiverse.runner.dask_client) refuses clients without its credentials and
serves no HTTP; a stale external scheduler address fails fast with exit 2 and a message naming where it came from.

What these guard against: a dask scheduler or worker executes whatever a connected client sends, and any local
process can reach a TCP port on 127.0.0.1; with plain TCP another process ran code on both workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time

import pandas as pd
import psutil
import pytest
from distributed import Client
from distributed.security import Security

from analysis import paths
from analysis.io import DataError
from analysis.multiverse import __main__ as cli
from analysis.multiverse import runner, tasks


def _listening_ports(pid: int | None = None) -> set[int]:
    process = psutil.Process(pid) if pid else psutil.Process()
    return {c.laddr.port for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}


def _worker_listening_ports() -> list[int]:
    """Run on a worker: its listening TCP ports."""
    return sorted(_listening_ports())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _plain_tcp_call(address: str) -> object:
    """Connect to a tls:// server over plain TCP (what an unauthenticated local process can do) and ask it for its
    identity, as a client would before sending code."""
    from distributed.comm import connect

    comm = await connect(address.replace("tls://", "tcp://"), timeout=3)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await asyncio.wait_for(comm.read(), 3)
    finally:
        comm.abort()


def _answers_http(port: int) -> bytes:
    """What a port sends back to an HTTP request ("" when the connection is closed or reset without a reply)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(b"GET /info/main/workers.html HTTP/1.1\r\nHost: localhost\r\n\r\n")
            return s.recv(64)
    except OSError:
        return b""


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster as the multiverse starts it (one worker), and the driver's listening ports before it."""
    before = _listening_ports()
    with runner.dask_client(None, 1) as client:
        yield client, before


def test_local_cluster_refuses_unauthenticated_clients(cluster):
    client, _ = cluster
    scheduler = client.scheduler.address
    workers = list(client.scheduler_info()["workers"])
    assert scheduler.startswith("tls://") and workers and all(w.startswith("tls://") for w in workers)
    assert client.submit(sum, [1, 2]).result() == 3  # the run's own client works
    # plain TCP: no dask message gets through, to the scheduler or to a worker
    for address in [scheduler, *workers]:
        with pytest.raises((OSError, asyncio.TimeoutError)):
            asyncio.run(_plain_tcp_call(address))
    # a dask Client over plain TCP, and one over TLS with a certificate of its own (not the run's): refused
    with pytest.raises(OSError):
        Client(scheduler.replace("tls://", "tcp://"), timeout=3)
    with pytest.raises(OSError):
        Client(scheduler, security=Security.temporary(), timeout=3)


def test_local_cluster_serves_no_http(cluster):
    """No port of the driver (scheduler, nannies) or of a worker answers HTTP; the dask default 8787 in particular
    is not opened by this cluster."""
    client, before = cluster
    driver_ports = _listening_ports() - before
    worker_ports = [p for ports in client.run(_worker_listening_ports).values() for p in ports]
    assert driver_ports and worker_ports
    assert 8787 not in driver_ports
    for port in sorted(driver_ports) + worker_ports:
        assert not _answers_http(port).startswith(b"HTTP/"), port
    # exactly the dask comm ports remain: the scheduler, one nanny per worker, the workers
    nannies = {int(info["nanny"].rsplit(":", 1)[1]) for info in client.scheduler_info()["workers"].values()}
    assert driver_ports == {int(client.scheduler.address.rsplit(":", 1)[1])} | nannies
    assert worker_ports == [int(w.rsplit(":", 1)[1]) for w in client.scheduler_info()["workers"]]


def test_stale_scheduler_variable_fails_fast_naming_it(monkeypatch):
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    monkeypatch.setenv(runner.SCHEDULER_ENV, address)
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        with runner.dask_client(runner.scheduler_address(None)):
            pass
    assert time.monotonic() - start < runner.CONNECT_TIMEOUT_S + 5
    assert str(info.value.file) == f"${runner.SCHEDULER_ENV}" and address in str(info.value)
    with pytest.raises(DataError) as info:  # the flag wins over the variable and is named as the origin
        with runner.dask_client(runner.scheduler_address(f"tcp://127.0.0.1:{_free_port()}")):
            pass
    assert str(info.value).startswith("--scheduler: no dask scheduler answered")


def test_cli_stale_scheduler_exits_2(tmp_path, monkeypatch, capsys):
    """Through the multiverse CLI: one error line naming the variable, exit 2, no traceback, within seconds."""
    from test_multiverse_grid import SMALL
    import yaml

    for name in (paths.PANEL.name, paths.SHOCKS.name, paths.ANALYSIS_PANEL.name):
        (tmp_path / name).write_bytes(name.encode())  # only hashed: the reads below are replaced
    monkeypatch.setattr(cli, "_read", lambda path: pd.DataFrame())
    monkeypatch.setattr(tasks, "prepare_inputs", lambda *a, **k: (pd.DataFrame(), pd.DataFrame()))
    (tmp_path / "mv.yaml").write_text(yaml.safe_dump(SMALL), encoding="utf-8")
    monkeypatch.setenv(runner.SCHEDULER_ENV, f"tcp://127.0.0.1:{_free_port()}")
    start = time.monotonic()
    code = cli.main(["--config", str(tmp_path / "mv.yaml"), "--out-dir", str(tmp_path), "--figure-dir",
                     str(tmp_path / "figures"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - start < runner.CONNECT_TIMEOUT_S + 10
    assert err.startswith(f"error: ${runner.SCHEDULER_ENV}: no dask scheduler answered") and "Traceback" not in err
    assert not (tmp_path / paths.MULTIVERSE_RESULTS_NAME).exists()
