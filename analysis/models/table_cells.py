"""Cells of the tables, from the estimate files: reading an estimate file and its sidecar, number formats, stars
(from the resampling p-value where few clusters are treated), event-time row keys, and which extra columns of an
estimate file a long table shows. Used by the layout (:mod:`analysis.models.tables`), the notes
(:mod:`analysis.models.table_notes`) and the power table (:mod:`analysis.power`).

Stars: * p < 0.10, ** p < 0.05, *** p < 0.01.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from analysis.io import DataError
from analysis.models.table_labels import EVENT

STARS = ((0.01, "***"), (0.05, "**"), (0.10, "*"))


def read_estimates(estimates_dir: Path, spec_id: str) -> tuple[pd.DataFrame, dict]:
    """The estimate table and sidecar of one spec (a missing file is a DataError naming it)."""
    parquet = Path(estimates_dir) / f"{spec_id}.parquet"
    sidecar = parquet.with_suffix(".json")
    for path in (parquet, sidecar):
        if not path.exists():
            raise DataError(path, f"estimates for spec {spec_id!r} not found (run python -m analysis.estimate)")
    return pd.read_parquet(parquet), json.loads(sidecar.read_text(encoding="utf-8"))


def fmt(value: float, digits: int = 4) -> str:
    """Fixed decimals; scientific for tiny non-zero values; blank for NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if value != 0 and abs(value) < 10 ** (-digits):
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def stars(p_value: float) -> str:
    if p_value is None or math.isnan(p_value):
        return ""
    return next((mark for cut, mark in STARS if p_value < cut), "")


#: p-values read instead of the analytic one on a row flagged ``few_treated_clusters``, first available wins.
RESAMPLING_P = ("p_value_wild", "p_value_ri", "p_value_placebo")


def cell_stars(row: pd.Series) -> str:
    """Stars of the row's p-value; with fewer than five treated clusters (``few_treated_clusters``) the analytic
    p-value is unreliable, so the stars come from the wild-bootstrap / randomization / placebo p-value and the
    cell carries a dagger (no stars if the row has none of them)."""
    flag = row.get("few_treated_clusters")
    if flag is None or pd.isna(flag) or not bool(flag):
        return stars(row["p_value"])
    for column in RESAMPLING_P:
        value = row.get(column, float("nan"))
        if value is not None and not pd.isna(value):
            return stars(float(value)) + "†"
    return "†"


def row_key(term: str) -> str:
    """Align event-time terms across estimators (``ATT e=k`` and ``e=k`` -> ``e=k``)."""
    match = EVENT.match(term)
    return f"e={match.group(1)}" if match else term


#: The resampling p-value rows under an estimate (cells shown as [p]): column -> row label.
P_ROWS = {"p_value_wild": "  p wild", "p_value_ri": "  p ri"}


#: columns of an estimate file that a long table never shows (identifiers, or shown as estimate / std. error / p)
_LONG_SKIP = ("term", "estimate", "std_error", "p_value", "ci_low", "ci_high", "n_obs", "method", "spec_id",
              "estimator", "statistic", "df_t")


def _is_flag(series: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(series) or series.name.startswith("few_")


def fmt_extra(series: pd.Series, value) -> str:
    """A long table's extra cell: yes/no for flags, integers without decimals, else :func:`fmt`."""
    if pd.isna(value):
        return ""
    if _is_flag(series):
        return "yes" if bool(value) else "no"
    whole = series.dropna()
    if len(whole) and (whole == whole.round()).all() and not series.name.startswith("weight"):
        return str(int(value))
    return fmt(float(value))


def long_columns(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The extra numeric columns of a long table: (those that vary across rows -> shown as columns, those with one
    value on every row -> said once in the note). Columns with no value at all are left out."""
    extra = [c for c in table.columns if c not in _LONG_SKIP and table[c].notna().any()
             and (pd.api.types.is_numeric_dtype(table[c]) or pd.api.types.is_bool_dtype(table[c]))]
    constant = [c for c in extra if len(table) > 1 and table[c].nunique(dropna=False) == 1]
    return [c for c in extra if c not in constant], constant
