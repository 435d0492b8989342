"""One error policy for every command-line entry point (``python -m analysis.<stage>``).

A user-facing problem — bad data, a bad spec or config, an estimator that cannot fit the data it was given, an
output folder that cannot be written, a directory where a file belongs, a file that does not decode — ends with one
line on stderr and exit code :data:`EXIT_BAD_INPUT` (2), never a Python traceback::

    error: <file>[, row R][, column 'C'][, key 'K']: <what is wrong and how to fix it>

Usage: decorate each CLI's ``main(argv) -> int`` with :func:`guard`. Anything that is not bad input (a bug) keeps its
traceback, so that defects are not disguised as user errors. argparse's own usage errors also exit 2.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable

from analysis.io import DataError

EXIT_BAD_INPUT = 2


def error_line(exc: BaseException) -> str:
    """The one-line message for a user-facing error (``error: <where>: <what>``), notes appended on their own lines."""
    if isinstance(exc, DataError):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.filename is not None:
        from analysis.paths import relative

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
    missing, unreadable, a directory or read-only (OSError with a file name), undecodable text."""
    return isinstance(exc, (DataError, UnicodeDecodeError)) or (isinstance(exc, OSError) and exc.filename is not None)


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
