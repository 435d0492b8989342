"""The panel a spec estimates on: read it, check it against the spec, select the sample.

:func:`load_data` is what the estimation stage calls; :func:`check_panel` and :func:`select_sample` are also used on
frames already in memory (multiverse tasks, tests). Errors are :class:`analysis.io.DataError` naming the panel file,
the 1-based record and the column.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.io import DataError
from analysis.schema import did_you_mean
from analysis.models.spec import Spec, control_column, data_path


def read_panel(path: str | os.PathLike) -> pd.DataFrame:
    """A tidy panel from CSV or Parquet (a missing file is a DataError naming it)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "panel file not found (build it first, or set `data:` in the spec)")
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    raise DataError(path, "panel must be .csv or .parquet")


def required_columns(spec: Spec) -> list[str]:
    """Every column a spec reads from the panel."""
    columns = [spec.outcome, spec.unit, spec.time, spec.cluster]
    for key in ("treatment", "exposure", "cohort", "heterogeneity"):
        if getattr(spec, key) is not None:
            columns.append(getattr(spec, key))
    columns += [control_column(c)[0] for c in spec.controls]
    columns += [part for fe in spec.fixed_effects for part in fe.split("^")]
    return list(dict.fromkeys(columns))


def check_panel(df: pd.DataFrame, spec: Spec, file: str | os.PathLike) -> None:
    """Columns present and numeric where needed, unit×time unique and complete, log controls positive.

    Raises DataError naming the panel file, the 1-based record and the column.
    """
    for column in required_columns(spec):
        if column not in df.columns:
            raise DataError(file, f"column needed by spec {spec.id!r} is missing"
                                  f"{did_you_mean(column, df.columns)}", column=column)
    numeric = [spec.outcome, spec.time] + [c for c in (spec.treatment, spec.exposure, spec.cohort) if c]
    numeric += [control_column(c)[0] for c in spec.controls]
    for column in dict.fromkeys(numeric):
        if not pd.api.types.is_numeric_dtype(df[column]):
            bad = pd.to_numeric(df[column], errors="coerce").isna() & df[column].notna()
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 1 if bad.any() else None
            raise DataError(file, f"must be numeric (found {df[column].dtype})", row=row, column=column)
    for column in (spec.unit, spec.time):
        missing = df[column].isna().to_numpy()
        if missing.any():
            raise DataError(file, "identifier is missing", row=int(np.flatnonzero(missing)[0]) + 1, column=column)
    duplicated = df.duplicated([spec.unit, spec.time]).to_numpy()
    if duplicated.any():
        raise DataError(file, f"duplicate {spec.unit} x {spec.time} row",
                        row=int(np.flatnonzero(duplicated)[0]) + 1, column=spec.unit)
    for control in spec.controls:
        column, transform = control_column(control)
        if transform == "log":
            values = df[column].to_numpy(dtype=float)
            bad = np.isfinite(values) & (values <= 0)
            if bad.any():
                raise DataError(file, f"log({column}) needs positive values, found {values[bad][0]}",
                                row=int(np.flatnonzero(bad)[0]) + 1, column=column)


def select_sample(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Rows in ``sample.years`` (inclusive), minus ``drop_years`` and ``drop_units``, restricted to ``keep_units``
    if given; sorted by unit and time (so every estimator sees the same order)."""
    sample = spec.sample
    first, last = sample.years
    time = df[spec.time]
    keep = (time >= first) & (time <= last)
    if sample.drop_years:
        keep &= ~time.isin(list(sample.drop_years))
    unit_as_text = df[spec.unit].astype(str)
    if sample.drop_units:
        keep &= ~unit_as_text.isin([str(u) for u in sample.drop_units])
    if sample.keep_units:
        keep &= unit_as_text.isin([str(u) for u in sample.keep_units])
    out = df.loc[keep].sort_values([spec.unit, spec.time], kind="mergesort").reset_index(drop=True)
    if out.empty:
        raise ValueError(f"spec {spec.id!r}: the sample {sample.model_dump(mode='json')} selects no rows")
    return out


def load_data(spec: Spec) -> tuple[pd.DataFrame, Path]:
    """Read, check and sample-filter the panel a spec names; returns the frame and the file read."""
    path = data_path(spec)
    df = read_panel(path)
    check_panel(df, spec, path)
    return select_sample(df, spec), path
