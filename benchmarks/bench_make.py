"""Make-based benchmarks, on a scratch copy of the repository (so ``make clean`` never touches the working tree):

* cold pipeline: ``make clean && make all`` with the environment present (target: under 60 s on 2 cores);
* no-op: a second ``make`` (target: under 2 s);
* one edited spec: ``touch configs/specs/<spec>.yaml && make`` (target: under 10 s).

The copy holds the files git tracks plus untracked, not-ignored ones (``git ls-files -co --exclude-standard``),
with modification times preserved (so Make sees the same order of dates) and ``.venv`` symlinked to the real
environment (the environment step is not timed: "with the environment present").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from benchmarks.common import Row, timed

ROOT = Path(__file__).resolve().parent.parent
SPEC_TO_TOUCH = "cont_did_capability_index"


def repository_files(root: Path = ROOT) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root, capture_output=True, text=True,
                         check=True)
    return sorted(line for line in out.stdout.splitlines() if line and (root / line).is_file())


def scratch_copy(root: Path = ROOT) -> Path:
    """A temporary copy of the repository with ``.venv`` linked to the real one; the caller removes it."""
    target = Path(tempfile.mkdtemp(prefix="dualuse-bench-"))
    for name in repository_files(root):
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, dest)
    os.symlink(root / ".venv", target / ".venv")
    return target


def make(workdir: Path, *args: str, shell: str | None = None) -> subprocess.CompletedProcess:
    """Run make (or a shell line) in ``workdir``; raises with the output tail on failure."""
    command = shell if shell is not None else " ".join(["make", *args])
    result = subprocess.run(["bash", "-c", command], cwd=workdir, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-2000:]
        raise RuntimeError(f"`{command}` failed (exit {result.returncode}):\n{tail}")
    return result


def run(repeats: int = 3, log=print) -> list[Row]:
    rows: list[Row] = []
    workdir = scratch_copy()
    try:
        log(f"make benchmarks in scratch copy {workdir}")
        try:
            make(workdir, "all")  # first build (fills the scratch copy; not timed)
            cold, runs = timed(lambda: make(workdir, shell="make clean && make all"), repeats)
            rows.append(Row("cold pipeline: make clean && make all", cold, len(runs), "< 60 s", cold < 60))
        except RuntimeError as exc:
            log(str(exc))
            rows.append(Row("cold pipeline: make clean && make all", float("nan"), 0, "< 60 s", False,
                            f"failed: {str(exc).splitlines()[0]}"))
            return rows
        noop, runs = timed(lambda: make(workdir), max(repeats, 3))
        said = make(workdir).stdout.strip().splitlines()
        rows.append(Row("no-op make", noop, len(runs), "< 2 s", noop < 2, f"make says: {said[-1] if said else ''}"))
        spec = workdir / "configs" / "specs" / f"{SPEC_TO_TOUCH}.yaml"
        if spec.exists():
            one, runs = timed(lambda: make(workdir, shell=f"touch {spec.relative_to(workdir)} && make"), repeats)
            rows.append(Row(f"make after touching configs/specs/{SPEC_TO_TOUCH}.yaml", one, len(runs), "< 10 s",
                            one < 10))
        else:
            rows.append(Row("make after touching one spec", float("nan"), 0, "< 10 s", False,
                            f"configs/specs/{SPEC_TO_TOUCH}.yaml not found"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows
