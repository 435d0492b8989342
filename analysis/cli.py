"""One error policy for every command-line entry point (``python -m analysis.<stage>``).

A user-facing problem — bad data, a bad spec or config, an estimator that cannot fit the data it was given, an
output folder that cannot be written, a directory where a file belongs, a file that does not decode, a truncated or
corrupt Parquet input — ends with one
line on stderr and exit code :data:`EXIT_BAD_INPUT` (2), never a Python traceback::

    error: <file>[, row R][, column 'C'][, key 'K']: <what is wrong and how to fix it>

Usage: decorate each CLI's ``main(argv) -> int`` with :func:`guard`. Anything that is not bad input (a bug) keeps its
traceback, so that defects are not disguised as user errors. argparse's own usage errors also exit 2.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from pathlib import Path
from typing import Callable

from analysis.io import DataError

EXIT_BAD_INPUT = 2


def parquet_source(exc: BaseException) -> Path | None:
    """The file a failed Parquet read was reading, or None if ``exc`` did not come from reading a Parquet file.

    A truncated, empty or corrupt Parquet input makes pyarrow raise ``ArrowInvalid`` ("Could not open Parquet input
    source '<path>': Parquet magic bytes not found ...") or, for a damaged page, a bare ``OSError`` ("ZSTD
    decompression failed") that names no file. The file is taken from the message, else from the ``path`` argument
    of the ``pandas.read_parquet`` / ``pyarrow.parquet.read_table`` call the traceback went through, so every
    stage's reader is covered without wrapping each call site.
    """
    if not isinstance(exc, (OSError, ValueError)) or isinstance(exc, DataError):
        return None
    match = re.search(r"Parquet input source '([^']+)'", str(exc))
    if match:
        return Path(match.group(1))
    tb = exc.__traceback__
    found = None
    while tb is not None:  # outermost first; the innermost reader frame wins
        frame = tb.tb_frame
        if frame.f_code.co_name in ("read_parquet", "read_table") and "parquet" in frame.f_code.co_filename:
            source = frame.f_locals.get("path", frame.f_locals.get("source"))
            if isinstance(source, (str, os.PathLike)):
                found = Path(source)
        tb = tb.tb_next
    return found


def yaml_problem(exc: BaseException) -> str | None:
    """``not valid YAML at line L, column C: <problem> (<context> at line L', column C')`` when ``exc`` was raised
    while handling a YAML syntax error (its ``__cause__`` or ``__context__``), else None. Every config reader
    wraps the parser's error in a DataError naming the file; this puts the parser's several-line text, whose "file"
    is ``<unicode string>`` when the text was read first, on one line with 1-based positions."""
    import yaml

    cause = exc.__cause__ or exc.__context__
    if not isinstance(cause, yaml.MarkedYAMLError) or cause.problem_mark is None:
        return None
    mark = cause.problem_mark
    text = f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {cause.problem}"
    if cause.context:
        where = cause.context_mark
        text += f" ({cause.context}" + (f" at line {where.line + 1}, column {where.column + 1})" if where else ")")
    return text


def error_line(exc: BaseException) -> str:
    """The one-line message for a user-facing error (``error: <where>: <what>``), notes appended on their own lines."""
    from analysis.paths import relative

    parquet = parquet_source(exc) if not isinstance(exc, DataError) else None
    if parquet is not None:
        reason = str(exc).split("': ", 1)[-1] if "input source" in str(exc) else str(exc)
        text = (f"{relative(parquet)}: not a readable Parquet file ({reason.strip()}); it is truncated or corrupt: "
                "rebuild it (make) or restore it")
    elif isinstance(exc, DataError):
        problem = yaml_problem(exc)
        text = f"{exc.file}: {problem}" if problem else str(exc)
    elif isinstance(exc, OSError) and exc.filename is not None:
        what = exc.strerror or type(exc).__name__
        hint = {
            IsADirectoryError: "a directory was given where a file belongs",
            NotADirectoryError: "a file was given where a directory belongs",
            PermissionError: "check the permissions of the file or folder",
            FileNotFoundError: "check the path (run the stage that produces it, or fix the argument)",
        }.get(type(exc), "check the path")
        text = f"{relative(Path(exc.filename))}: {what}; {hint}"
    elif isinstance(exc, UnicodeDecodeError):
        text = f"<input>: not valid {exc.encoding} at byte {exc.start} ({exc.reason}); convert the file to UTF-8"
    else:  # pragma: no cover - guarded by is_user_error
        text = str(exc)
    notes = getattr(exc, "__notes__", [])
    return "\n".join([f"error: {text}", *notes])


def is_user_error(exc: BaseException) -> bool:
    """Errors caused by the input rather than by the code: bad data/config (DataError), a file system path that is
    missing, unreadable, a directory or read-only (OSError with a file name), undecodable text, a Parquet input that does not read (truncated or corrupt, :func:`parquet_source`)."""
    return (isinstance(exc, (DataError, UnicodeDecodeError)) or (isinstance(exc, OSError) and exc.filename is not None)
            or parquet_source(exc) is not None)


def report(exc: BaseException) -> int:
    """Print the error line to stderr and return :data:`EXIT_BAD_INPUT`."""
    print(error_line(exc), file=sys.stderr)
    return EXIT_BAD_INPUT


def guard(main: Callable[..., int]) -> Callable[..., int]:
    """Wrap a CLI ``main``: user errors (see :func:`is_user_error`) print one ``error:`` line and return 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - re-raised unless it is the user's input
            if not is_user_error(exc):
                raise
            return report(exc)

    return wrapper
