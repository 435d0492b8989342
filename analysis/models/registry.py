"""Estimator registry, panel loading and sample selection: from a resolved spec to tidy estimates.

Every estimator follows one contract: ``fit(df, spec) -> DataFrame`` with at least the columns
:data:`REQUIRED_COLUMNS`. Estimators written in other modules (staggered DiD, synthetic control) are imported
only when dispatched, so this module works without them.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from analysis import paths
from analysis.io import DataError
from analysis.models.spec import control_column, data_path
from analysis.models.treated import annotate

REQUIRED_COLUMNS = ("term", "estimate", "std_error", "p_value", "ci_low", "ci_high", "n_obs", "method")

# estimator name -> (module, function); modules imported lazily
ESTIMATOR_FUNCTIONS: dict[str, tuple[str, str]] = {
    "feols": ("analysis.models.regression", "feols"),
    "cont_did": ("analysis.models.regression", "cont_did"),
    "event_study": ("analysis.models.regression", "event_study"),
    "panel_fe": ("analysis.models.panel", "panel_fe"),
    "panel_re": ("analysis.models.panel", "panel_re"),
    "first_diff": ("analysis.models.panel", "first_diff"),
    "hausman": ("analysis.models.panel", "hausman"),
    "att_gt": ("analysis.models.staggered", "att_gt"),
    "sunab": ("analysis.models.staggered", "sunab"),
    "did_imputation": ("analysis.models.staggered", "did_imputation"),
    "bacon": ("analysis.models.staggered", "bacon"),
    "synth": ("analysis.models.synth", "synth"),
    "sdid": ("analysis.models.synth", "sdid"),
}


#: Estimators that also return companion tables, written beside the estimates as ``<spec>.<name>.parquet``
#: (:func:`analysis.paths.companion`): estimator name -> (module, function returning (estimates, {name: table})).
COMPANION_FUNCTIONS: dict[str, tuple[str, str]] = {
    "synth": ("analysis.models.synth", "synth_outputs"),
}


def estimator_function(name: str) -> Callable[[pd.DataFrame, dict], pd.DataFrame]:
    """The fit function for an estimator name (imports its module now)."""
    module_name, function_name = ESTIMATOR_FUNCTIONS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise NotImplementedError(f"estimator {name!r} lives in {module_name}, which is not available ({exc})") from exc
    function = getattr(module, function_name, None)
    if function is None:
        raise NotImplementedError(f"estimator {name!r}: {module_name} has no function {function_name!r}")
    return function


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


def required_columns(spec: dict) -> list[str]:
    """Every column a spec reads from the panel."""
    columns = [spec["outcome"], spec["unit"], spec["time"], spec["cluster"]]
    for key in ("treatment", "exposure", "cohort", "heterogeneity"):
        if spec[key] is not None:
            columns.append(spec[key])
    columns += [control_column(c)[0] for c in spec["controls"]]
    columns += [part for fe in spec["fixed_effects"] for part in fe.split("^")]
    return list(dict.fromkeys(columns))


def check_panel(df: pd.DataFrame, spec: dict, file: str | os.PathLike) -> None:
    """Columns present and numeric where needed, unit×time unique and complete, log controls positive.

    Raises DataError naming the panel file, the 1-based record and the column.
    """
    for column in required_columns(spec):
        if column not in df.columns:
            raise DataError(file, f"column needed by spec {spec.get('id')!r} is missing", column=column)
    numeric = [spec["outcome"], spec["time"]] + [spec[k] for k in ("treatment", "exposure", "cohort") if spec[k]]
    numeric += [control_column(c)[0] for c in spec["controls"]]
    for column in dict.fromkeys(numeric):
        if not pd.api.types.is_numeric_dtype(df[column]):
            bad = pd.to_numeric(df[column], errors="coerce").isna() & df[column].notna()
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 1 if bad.any() else None
            raise DataError(file, f"must be numeric (found {df[column].dtype})", row=row, column=column)
    for column in (spec["unit"], spec["time"]):
        missing = df[column].isna().to_numpy()
        if missing.any():
            raise DataError(file, "identifier is missing", row=int(np.flatnonzero(missing)[0]) + 1, column=column)
    duplicated = df.duplicated([spec["unit"], spec["time"]]).to_numpy()
    if duplicated.any():
        raise DataError(file, f"duplicate {spec['unit']} x {spec['time']} row",
                        row=int(np.flatnonzero(duplicated)[0]) + 1, column=spec["unit"])
    for control in spec["controls"]:
        column, transform = control_column(control)
        if transform == "log":
            values = df[column].to_numpy(dtype=float)
            bad = np.isfinite(values) & (values <= 0)
            if bad.any():
                raise DataError(file, f"log({column}) needs positive values, found {values[bad][0]}",
                                row=int(np.flatnonzero(bad)[0]) + 1, column=column)


def select_sample(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Rows in ``sample.years`` (inclusive), minus ``drop_years`` and ``drop_units``, restricted to ``keep_units``
    if given; sorted by unit and time (so every estimator sees the same order)."""
    sample = spec["sample"]
    first, last = sample["years"]
    time = df[spec["time"]]
    keep = (time >= first) & (time <= last)
    if sample.get("drop_years"):
        keep &= ~time.isin(sample["drop_years"])
    unit_as_text = df[spec["unit"]].astype(str)
    if sample["drop_units"]:
        keep &= ~unit_as_text.isin([str(u) for u in sample["drop_units"]])
    if sample["keep_units"]:
        keep &= unit_as_text.isin([str(u) for u in sample["keep_units"]])
    out = df.loc[keep].sort_values([spec["unit"], spec["time"]], kind="mergesort").reset_index(drop=True)
    if out.empty:
        raise ValueError(f"spec {spec.get('id')!r}: the sample {sample} selects no rows")
    return out


def load_data(spec: dict) -> tuple[pd.DataFrame, Path]:
    """Read, check and sample-filter the panel a spec names; returns the frame and the file read."""
    path = data_path(spec)
    df = read_panel(path)
    check_panel(df, spec, path)
    return select_sample(df, spec), path


def estimate(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Run the spec's estimator on an already-loaded, sample-filtered panel; check the contract's columns.

    Adds ``spec_id`` and ``estimator`` columns and the treated-cluster counts (:func:`analysis.models.treated.annotate`),
    and returns columns in a fixed order (required first).
    """
    return _contract(annotate(estimator_function(spec["estimator"])(df, spec), df, spec), spec)


def estimate_with_companions(df: pd.DataFrame, spec: dict) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """:func:`estimate` plus the estimator's companion tables (``{}`` for estimators without any), from one fit."""
    target = COMPANION_FUNCTIONS.get(spec["estimator"])
    if target is None:
        return estimate(df, spec), {}
    table, companions = getattr(importlib.import_module(target[0]), target[1])(df, spec)
    return _contract(annotate(table, df, spec), spec), dict(companions)


def _contract(table: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Check the contract's columns, add ``spec_id`` and ``estimator``, fix the column order."""
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"estimator {spec['estimator']!r} broke the contract: missing columns {missing}")
    table = table.copy()
    table["spec_id"] = spec.get("id", "")
    table["estimator"] = spec["estimator"]
    extra = [c for c in table.columns if c not in REQUIRED_COLUMNS and c not in ("spec_id", "estimator")]
    table = table[list(REQUIRED_COLUMNS) + extra + ["spec_id", "estimator"]].reset_index(drop=True)
    if table["n_obs"].notna().all():
        table["n_obs"] = table["n_obs"].astype("int64")
    return table
