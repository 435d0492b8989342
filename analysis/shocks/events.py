"""Event dates and the annual post indicators they imply.

The panel is annual, events are dated. The rule (``post_rule.cutoff_month_day`` in ``configs/shocks.yaml``,
default ``06-30``): an event dated in year *t* is treated from *t* if it falls on or before the cutoff day of
*t*, else from *t* + 1. With the default, more than half of the treated year lies after the event.
``post_<event>`` is 1 for years >= the first treated year, else 0 (int8), the same for every province.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable

import pandas as pd


def first_treated_year(date: dt.date, cutoff_month: int = 6, cutoff_day: int = 30) -> int:
    """Year *t* if ``date`` is on or before month-day ``cutoff`` of *t*, else *t* + 1.

    >>> first_treated_year(dt.date(2018, 4, 15)), first_treated_year(dt.date(2020, 8, 17))
    (2018, 2021)
    """
    return date.year if (date.month, date.day) <= (cutoff_month, cutoff_day) else date.year + 1


def post_indicators(years: Iterable[int], events, cutoff_month: int = 6, cutoff_day: int = 30) -> pd.DataFrame:
    """One row per year: ``year`` and ``post_<event.name>`` (0/1, int8) for each event.

    ``events`` are objects with ``name`` and ``date`` (:class:`analysis.shocks.config.Event`).
    """
    out = pd.DataFrame({"year": sorted(set(int(y) for y in years))})
    for ev in events:
        start = first_treated_year(ev.date, cutoff_month, cutoff_day)
        out[f"post_{ev.name}"] = (out["year"] >= start).astype("int8")
    return out


def event_table(events, cutoff_month: int = 6, cutoff_day: int = 30) -> pd.DataFrame:
    """The events with their first treated year, for the summary and codebook."""
    return pd.DataFrame([{
        "event": ev.name, "column": f"post_{ev.name}", "date": ev.date.isoformat(), "role": ev.role,
        "first_treated_year": first_treated_year(ev.date, cutoff_month, cutoff_day),
        "label": ev.label, "citation": ev.citation,
    } for ev in events])
