"""Execute a reviewer notebook: ``python -m analysis.notebooks --in notebooks/X.py --out notebooks/X.ipynb --html notebooks/X.html``.

The source is a jupytext ``py:percent`` file (text, reviewed like code). It is converted with jupytext, executed top
to bottom with nbclient in a kernel that runs *this* Python (``sys.executable``, i.e. the project's venv) through a
kernel spec written to a temporary folder — nothing is registered with the user's or the system's Jupyter — and
written as .ipynb and (optionally) HTML.

The kernel leaves nothing behind: its connection file (which holds the kernel's signing key) and Jupyter runtime
folder (``JUPYTER_RUNTIME_DIR``) are in the temporary folder, not in the system temp or ``~/.local/share/jupyter``;
its IPython folder is private there too, with the history off, so no notebook code reaches the user's IPython
history; the kernel is shut down, and the folder removed, before :func:`execute` returns, also when a cell fails.
Transport: the kernel's five channels (shell, iopub, stdin, control, heartbeat) are Unix sockets in the temporary
folder (``transport="ipc"``), so none of them listens on TCP. ipykernel (7.x) itself still binds one TCP port on
127.0.0.1 that no setting turns off: the IOPub pipe that forwards the output of subprocesses forked by a cell
(``ipykernel.iostream.IOPubThread``), which drops every message not carrying a random per-kernel token. Both outputs are git-ignored: notebooks read data/processed/* and write
nothing canonical. A cell that raises stops the run (exit status 1) and the partial notebook is not written.

Figures show inline: the kernel runs matplotlib's inline backend (``matplotlib_inline``), so every figure a cell
creates is displayed under it as a PNG (``image/png`` in the .ipynb, an ``<img>`` in the HTML). Reruns give identical
bytes: the PNG is drawn at a fixed dpi (:data:`INLINE_DPI`) without matplotlib's ``Software`` tag, the kernel reads an
IPython configuration written to the temporary folder (``IPYTHONDIR``: no user profile can change the output), and
cells get stable ids (``cell-00``, ``cell-01``, … in order) instead of nbformat's random ones.

Notebooks find the processed outputs through :func:`processed_dir` (``--processed-dir`` or the environment variable
``ANALYSIS_PROCESSED_DIR``; default data/processed), so a test can run them on fixtures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from analysis import paths
from analysis.io import write_text
from analysis.cli import guard, report

PROCESSED_ENV = "ANALYSIS_PROCESSED_DIR"
KERNEL_NAME = "dualuse-analysis"
#: matplotlib backend of the notebook kernel: figures are displayed under the cell that draws them.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
#: Resolution of inline PNGs (dots per inch; the figures are 6.5 in wide, so 650 px). Fixed: part of the bytes.
INLINE_DPI = 100
#: IPython kernel configuration (written to ``IPYTHONDIR/profile_default``): PNG only, fixed dpi, tight bounding box
#: (the source notes under the axes are kept), no ``Software`` metadata (it carries matplotlib's version).
KERNEL_CONFIG = f"""c.InlineBackend.figure_formats = {{"png"}}
c.InlineBackend.print_figure_kwargs = {{"bbox_inches": "tight", "pad_inches": 0.05, "dpi": {INLINE_DPI},
                                       "metadata": {{"Software": None}}}}
c.InlineBackend.rc = {{}}
c.InlineBackend.close_figures = True
c.HistoryManager.enabled = False
"""


def processed_dir() -> Path:
    """Folder of the processed outputs a notebook reads (env ``ANALYSIS_PROCESSED_DIR`` or data/processed)."""
    return Path(os.environ.get(PROCESSED_ENV, paths.PROCESSED))


def write_kernel_spec(folder: Path) -> Path:
    """A kernel spec for ``sys.executable`` in ``folder/kernels/<KERNEL_NAME>`` (returns ``folder/kernels``).

    The kernel runs the inline matplotlib backend and reads only the IPython configuration written to
    ``folder/ipython`` (:data:`KERNEL_CONFIG`), never the user's profile."""
    spec_dir = folder / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    ipython_dir = folder / "ipython"
    (ipython_dir / "profile_default").mkdir(parents=True)
    (ipython_dir / "profile_default" / "ipython_kernel_config.py").write_text(KERNEL_CONFIG, encoding="utf-8")
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python (analysis venv)", "language": "python",
            "env": {"PYTHONHASHSEED": "0", "MPLBACKEND": INLINE_BACKEND, "IPYTHONDIR": str(ipython_dir)}}
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return folder / "kernels"


def stabilise_cell_ids(notebook) -> None:
    """Replace nbformat's random cell ids by their position (``cell-00``, ``cell-01``, …), so reruns are identical."""
    for i, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{i:02d}"


def execute(source: Path, processed: Path | None = None, timeout: int = 600):
    """Convert ``source`` (py:percent) and execute it; returns the executed ``nbformat`` notebook."""
    import jupytext
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    notebook = jupytext.read(source, fmt="py:percent")
    notebook.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python (analysis venv)",
                                       "language": "python"}
    notebook.metadata.pop("jupytext", None)
    stabilise_cell_ids(notebook)
    with tempfile.TemporaryDirectory(prefix="kernelspec-") as tmp:
        kernels = write_kernel_spec(Path(tmp))
        ksm = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
        # Unix-socket channels in the temporary folder (see the module docstring for the one TCP port ipykernel
        # opens anyway), and the connection file there too: jupyter_client would otherwise write it with
        # tempfile.mkstemp into the system temp folder, where it outlived the run.
        km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm, transport="ipc",
                           ip=str(Path(tmp) / "kernel-ipc"), connection_file=str(Path(tmp) / "kernel.json"))
        runtime = Path(tmp) / "runtime"
        runtime.mkdir()
        env = {PROCESSED_ENV: str(processed or paths.PROCESSED), "JUPYTER_RUNTIME_DIR": str(runtime)}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # the kernel inherits this process's environment
        client = NotebookClient(notebook, km=km, timeout=timeout, record_timing=False,
                                resources={"metadata": {"path": str(paths.ROOT)}})
        try:
            client.execute()
        finally:
            # nbclient shuts down only kernels it created itself; this one is ours (it kept running, holding its
            # sockets, until this process exited).
            try:
                if client.kc is not None:
                    client.kc.stop_channels()
                if km.has_kernel:
                    km.shutdown_kernel()  # asks the kernel to exit (killed after a grace period); removes its files
                else:
                    km.cleanup_resources()
            finally:
                for k, v in old.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
    return notebook


def to_html(notebook) -> str:
    """HTML of an executed notebook (nbconvert's lab template)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(notebook)
    return body


@guard
def main(argv: list[str] | None = None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in", dest="source", type=Path, required=True, help="notebooks/<name>.py (py:percent)")
    parser.add_argument("--out", type=Path, required=True, help="executed notebook (.ipynb)")
    parser.add_argument("--html", type=Path, help="also write HTML here")
    parser.add_argument("--processed-dir", type=Path, default=None, help="processed outputs (default data/processed)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    from nbclient.exceptions import CellExecutionError

    try:
        notebook = execute(args.source, args.processed_dir, args.timeout)
    except CellExecutionError as exc:
        print(f"error: {paths.relative(args.source)}: a cell failed:\n{exc}", file=sys.stderr)
        return 1
    write_text(nbformat.writes(notebook), args.out)
    print(f"wrote {paths.relative(args.out)}")
    if args.html:
        write_text(to_html(notebook), args.html)
        print(f"wrote {paths.relative(args.html)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
