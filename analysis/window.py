"""The study window: the one setting every stage reads.

The analysis window (first and last calendar year, inclusive) is set once, in ``configs/panel.yaml``::

    window: {first_year: 2015, last_year: 2021}

The cleaning stage checks that the panel covers it for all 31 provinces; the index stage builds the indices on it
(and ends ``claims_window`` at its last year); the shocks stage writes its province × year rows for it; the
analysis panel keeps it; a spec's default ``sample.years`` is it; the figures and notebooks take their years from it.
What is NOT the window stays where it is: the exposure base period and the event dates (``configs/shocks.yaml``),
the index base period (``configs/index.yaml``) and the years the Entity List transcription covers (a property of the
source file). Moving the window (e.g. to 2015–2022 or 2012–2021) is therefore one edit.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import yaml

from . import paths
from .io import DataError

KEY = "window"


def study_window(panel_config: str | os.PathLike = paths.PANEL_CONFIG) -> tuple[int, int]:
    """``(first_year, last_year)`` of the study window, from ``window`` in ``panel_config`` (configs/panel.yaml).

    Raises :class:`DataError` naming the file and key when the key is missing or is not two integers with
    first <= last.
    """
    path = Path(panel_config)
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError as err:
        raise DataError(path, f"cannot read the study window: {err.strerror}") from err
    return _window_of(str(path), mtime)


@lru_cache(maxsize=8)
def _window_of(path: str, mtime_ns: int) -> tuple[int, int]:
    # Cached on (path, modification time): the multiverse validates thousands of specs, and parsing the panel
    # configuration each time cost seconds.
    with open(path, encoding="utf-8") as fh:
        try:
            raw = yaml.safe_load(fh)
        except yaml.YAMLError as err:
            raise DataError(path, f"not valid YAML: {err}") from err
    if not isinstance(raw, dict) or KEY not in raw:
        raise DataError(path, "need {first_year: <year>, last_year: <year>} (the study window)", key=KEY)
    from analysis.schema import YearRange, validate

    span = validate(YearRange, raw[KEY], path, at=KEY)
    return span.first_year, span.last_year


def moved_key(file: str | os.PathLike, key: str) -> DataError:
    """The error for a config that still sets the window itself (it is read from configs/panel.yaml only)."""
    return DataError(file, f"{key}: the study window is set once, in {paths.relative(paths.PANEL_CONFIG)} `window`; "
                           "remove this key", column=key)
