"""The notebook kernel (analysis.notebooks.execute) leaves no trace: no connection file (it holds the kernel's
signing key) in the system temp folder or the Jupyter runtime folder, nothing in the user's IPython folder (history),
no kernel process after the run; and its channels are Unix sockets, the only TCP listener being ipykernel's
loopback IOPub pipe, as the module docstring says."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import psutil
import pytest

from analysis.notebooks import execute

# Cell 2 reports, from inside the kernel, its connection file, transport and listening TCP sockets.
SOURCE = """# %%
answer = 41 + 1

# %%
import json, os, psutil
from ipykernel.connect import get_connection_file
info = json.load(open(get_connection_file()))
listeners = [[c.laddr.ip, c.laddr.port] for c in psutil.Process().net_connections(kind="inet")
             if c.status == psutil.CONN_LISTEN]
print(json.dumps({"transport": info["transport"], "listeners": listeners, "pid": os.getpid(),
                  "connection_file": get_connection_file(), "answer": answer}))
"""


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """System temp, Jupyter runtime and IPython folders of this test's own (watched for leftovers)."""
    folders = {name: tmp_path / name for name in ("systmp", "runtime", "ipython")}
    for folder in folders.values():
        folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folders["systmp"]))  # where tempfile.mkstemp writes here
    monkeypatch.setenv("TMPDIR", str(folders["systmp"]))  # and in the kernel process
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(folders["runtime"]))
    monkeypatch.setenv("IPYTHONDIR", str(folders["ipython"]))
    return folders


def test_kernel_leaves_no_connection_file_history_or_process(isolated, tmp_path):
    source = tmp_path / "tiny.py"
    source.write_text(SOURCE, encoding="utf-8")
    notebook = execute(source, processed=tmp_path)
    report = json.loads(notebook.cells[1].outputs[0]["text"])
    assert report["answer"] == 42
    # nothing left where the kernel's files used to go, and nothing in the user's IPython folder (no history)
    leftovers = {name: sorted(p.name for p in folder.rglob("*")) for name, folder in isolated.items()}
    assert leftovers == {"systmp": [], "runtime": [], "ipython": []}
    connection_file = Path(report["connection_file"])  # in the run's private folder, removed with it
    assert connection_file.parent.name.startswith("kernelspec-") and not connection_file.parent.exists()
    # the kernel is gone, and so is its connection file
    assert not psutil.pid_exists(report["pid"]) or psutil.Process(report["pid"]).status() == psutil.STATUS_ZOMBIE
    # channels over Unix sockets; the one TCP listener is ipykernel's IOPub pipe on the loopback interface
    assert report["transport"] == "ipc"
    assert len(report["listeners"]) <= 1 and all(ip == "127.0.0.1" for ip, _ in report["listeners"])


def test_failing_cell_still_shuts_the_kernel_down(isolated, tmp_path):
    from nbclient.exceptions import CellExecutionError

    source = tmp_path / "bad.py"
    source.write_text("# %%\nimport os\nprint(os.getpid())\n\n# %%\nraise ValueError('deliberate')\n",
                      encoding="utf-8")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(CellExecutionError):
        execute(source, processed=tmp_path)
    alive = [p for p in psutil.Process().children(recursive=True)
             if p.pid not in before and p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    assert {name: list(folder.iterdir()) for name, folder in isolated.items()} == \
        {"systmp": [], "runtime": [], "ipython": []}
