"""Atomic writers and the package's error type for bad input.

Every output is written to a temporary file in the target's folder and renamed into place, so an interrupted
or failed run never leaves a file that looks complete (the Makefile's ``.DELETE_ON_ERROR`` covers the rest).
Parquet files are written without pandas metadata timestamps so that two runs give identical bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd


#: A spec id (the spec file's name without ``.yaml``, the estimate file's stem): letters, digits, ``_`` and ``-``.
#: Ids are written into Make rules and file names, so nothing a shell or make would interpret is allowed.
SPEC_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def make_escape(text: str) -> str:
    """``text`` for a generated Make rule: ``$`` doubled so make never expands (or runs) anything in it."""
    return str(text).replace("$", "$$")


class DataError(ValueError):
    """Bad input, with the file, row, column and config key that caused it.

    ``row`` is the 1-based line in a text file or the 1-based record in a data frame read from a binary file;
    ``column`` is the column name as found in the file; ``key`` is the dotted key in a YAML config. The message reads
    ``<file>[, row R][, column 'C'][, key 'K']: <what and how to fix>`` (the CLIs prefix ``error: `` and exit 2,
    see :mod:`analysis.cli`).
    """

    def __init__(self, file: str | os.PathLike, message: str, row: int | None = None, column: str | None = None,
                 key: str | None = None):
        from analysis.paths import relative

        self.file = relative(Path(file))
        self.row = row
        self.column = column
        self.key = key
        self.message = message
        where = [str(self.file)]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        if key is not None:
            where.append(f"key {key!r}")
        super().__init__(f"{', '.join(where)}: {message}")


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    # The writer's process id is in the name, so a later run can tell a killed writer's leftover from a live one's.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)  # mkstemp creates 0600; outputs are ordinary readable files
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def remove_stale_temps(target: str | os.PathLike) -> list[Path]:
    """Delete temporary files that a killed writer of ``target`` left beside it; return the paths deleted.

    Temporary names are ``.<target name>.<pid>.<random>.tmp``; a file whose process no longer exists (or whose name
    has no process id: written before ids were recorded) is stale. Files of live writers are kept.
    """
    target = Path(target)
    removed = []
    if not target.parent.is_dir():
        return removed
    # mkstemp's random part is 8 characters of [a-z0-9_]
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(?:(\d+)\.)?[a-z0-9_]{{8}}\.tmp$")
    for leftover in target.parent.iterdir():
        match = pattern.match(leftover.name)
        if match is None or not leftover.is_file():
            continue
        if match.group(1) is not None and _process_alive(int(match.group(1))):
            continue
        try:
            leftover.unlink()
            removed.append(leftover)
        except FileNotFoundError:  # another run cleaned it first
            pass
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def write_parquet(df: pd.DataFrame, target: str | os.PathLike) -> None:
    """Write ``df`` to Parquet atomically and deterministically (no index, fixed compression)."""
    with atomic_path(target) as tmp:
        df.to_parquet(tmp, index=False, compression="zstd", engine="pyarrow")


def write_csv(df: pd.DataFrame, target: str | os.PathLike, **kwargs) -> None:
    """Write ``df`` to UTF-8 CSV atomically (floats at full precision, ``\\n`` line endings)."""
    with atomic_path(target) as tmp:
        df.to_csv(tmp, index=False, lineterminator="\n", **kwargs)


def write_text(text: str, target: str | os.PathLike) -> None:
    """Write text atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(obj, target: str | os.PathLike) -> None:
    """Write JSON atomically with sorted keys, so reruns give identical bytes."""
    write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n", target)


def sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
