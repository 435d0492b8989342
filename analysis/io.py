"""Atomic writers and the package's error type for bad input.

Every output is written to a temporary file in the target's folder and renamed into place, so an interrupted
or failed run never leaves a file that looks complete (the Makefile's ``.DELETE_ON_ERROR`` covers the rest).
Parquet files are written without pandas metadata timestamps so that two runs give identical bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd


class DataError(ValueError):
    """Bad input, with the file, row and column that caused it.

    ``row`` is the 1-based line in a text file or the 1-based record in a data frame read from a binary file;
    ``column`` is the column name as found in the file.
    """

    def __init__(self, file: str | os.PathLike, message: str, row: int | None = None, column: str | None = None):
        from analysis.paths import relative

        self.file = relative(Path(file))
        self.row = row
        self.column = column
        where = [f"file {self.file}"]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}")


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)  # mkstemp creates 0600; outputs are ordinary readable files
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


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
