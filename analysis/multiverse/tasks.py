"""The work of the multiverse, as pure functions of DataFrames (these run on the dask workers).

* :func:`prepare_inputs` (driver, once): the index window of the cleaned panel and the *base* frame — the analysis
  panel without its default-index columns, with the shocks from data/processed/shocks.parquet;
* :func:`analysis_frame` (one task per index choice): build that index (:func:`analysis.index.build.build_method`)
  and join its outcome columns to the base on province_code × year — the analysis panel that choice implies;
* :func:`fit_chunk` (one task per chunk of cells of one index choice): for each cell, drop its years, let the
  engine select the sample and estimate (:func:`analysis.models.registry.estimate`, the same call
  ``python -m analysis.estimate`` makes), and keep the reported term.

Nothing here reads files, writes files or draws random numbers outside the engine's seeded calls, so a cell's
numbers depend only on its arguments, whichever worker computes it and in whatever order.
"""

from __future__ import annotations

import json
import warnings
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from analysis.index.build import KEYS, OUTPUT_COLUMNS, build_method, validate_panel
from analysis.index.config import IndexConfig
from analysis.io import DataError
from analysis.models import registry
from analysis.models.spec import Spec

#: Index columns removed from the analysis panel before a rebuilt index is joined (so none of the default method's
from analysis.models.sample import check_panel, select_sample
#: values can leak into a cell of another method).
INDEX_VALUE_COLUMNS = [c for c in OUTPUT_COLUMNS if c not in KEYS + ["province_en", "theater_command", "method"]]


def prepare_inputs(panel: pd.DataFrame, analysis_panel: pd.DataFrame, shocks: pd.DataFrame,
                   index_config: IndexConfig, index_choices: Iterable,
                   files: Mapping[str, str] | None = None, columns: Iterable[str] | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(window panel for the index builder, base frame for the models).

    The window panel is :func:`analysis.index.build.validate_panel` of the cleaned panel for a configuration whose
    methods are the multiverse's index choices (so every column any choice needs is checked). The base frame is
    the analysis panel minus the index columns and minus the shock columns, joined one-to-one with the shocks.
    ``columns`` (optional) keeps only those base columns (plus the keys): the fits touch a handful of the
    analysis panel's ~140 columns, and pandas' per-call cost grows with the width of the frame.
    Raises DataError naming the file when keys are missing or duplicated or a requested column is absent.
    """
    files = dict(files or {})
    methods = {choice.name: choice.method() for choice in index_choices}
    config = index_config.with_methods(methods)
    window = validate_panel(panel, config, files.get("panel", "panel"))
    for name, frame in (("analysis_panel", analysis_panel), ("shocks", shocks)):
        source = files.get(name, name)
        for key in KEYS:
            if key not in frame.columns:
                raise DataError(source, "key column missing", column=key)
        duplicated = frame.duplicated(KEYS).to_numpy()
        if duplicated.any():
            raise DataError(source, "duplicate province_code × year", row=int(np.flatnonzero(duplicated)[0]) + 1,
                            column="province_code")
    shock_columns = [c for c in shocks.columns if c not in KEYS]
    drop = [c for c in analysis_panel.columns if c in INDEX_VALUE_COLUMNS or c in shock_columns]
    base = analysis_panel.drop(columns=drop).merge(shocks, on=KEYS, how="left", validate="one_to_one")
    missing = base[shock_columns].isna().all(axis=1).to_numpy() if shock_columns else np.zeros(len(base), bool)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataError(files.get("shocks", "shocks"),
                        f"no shocks row for province_code {base['province_code'].iloc[row]}, year "
                        f"{base['year'].iloc[row]} of the analysis panel", column="province_code")
    if columns is not None:
        wanted = list(dict.fromkeys(KEYS + [c for c in columns if c not in INDEX_VALUE_COLUMNS]))
        absent = [c for c in wanted if c not in base.columns]
        if absent:
            raise DataError(files.get("analysis_panel", "analysis_panel"),
                            f"column(s) named in the multiverse are in neither the analysis panel nor the shocks: "
                            f"{absent}", column=absent[0])
        base = base[wanted]
    base = base.sort_values(KEYS, kind="mergesort").reset_index(drop=True)
    return window, base


def analysis_frame(window: pd.DataFrame, base: pd.DataFrame, index_config: IndexConfig, index_choice,
                   outcomes: Iterable[str]) -> pd.DataFrame:
    """The base frame with the index columns ``outcomes`` of one index choice (rebuilt from the window panel)."""
    indices, _ = build_method(window, index_config, index_choice.method())
    values = indices[KEYS + list(outcomes)].copy()
    values["province_code"] = values["province_code"].astype("int64")
    values["year"] = values["year"].astype("int64")
    frame = base.merge(values, on=KEYS, how="left", validate="one_to_one")
    return frame.sort_values(KEYS, kind="mergesort").reset_index(drop=True)


def fit_cell(frame: pd.DataFrame, cell: Mapping) -> dict:
    """Fit one cell: ``cell`` = {key, spec (resolved :class:`analysis.models.spec.Spec`, with id), drop_years, term}.
    Returns the result fields.

    Engine failures (a design the data cannot identify, a term the estimator does not report) are recorded in
    ``error`` with NaN numbers rather than stopping thousands of fits; the CLI reports how many failed.
    """
    spec = cell["spec"]
    result = {"estimate": np.nan, "std_error": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan,
              "n_obs": None, "n_clusters": np.nan, "error": ""}
    try:
        data = frame
        if cell["drop_years"]:
            data = frame.loc[~frame[spec.time].isin(list(cell["drop_years"]))]
        check_panel(data, spec, "multiverse analysis frame")
        with warnings.catch_warnings():
            # e.g. pyfixest's note on singleton fixed effects: expected in leave-one-out samples, not actionable
            warnings.simplefilter("ignore")
            table = registry.estimate(select_sample(data, spec), spec)
        rows = table.loc[table["term"] == cell["term"]]
        if len(rows) != 1:
            raise ValueError(f"term {cell['term']!r} not in the estimator's output (terms: {table['term'].tolist()})")
        row = rows.iloc[0]
        for field in ("estimate", "std_error", "ci_low", "ci_high", "p_value"):
            result[field] = float(row[field])
        result["n_obs"] = int(row["n_obs"])
        result["n_clusters"] = float(row["n_clusters"]) if "n_clusters" in row.index else np.nan
    except Exception as exc:  # noqa: BLE001 - recorded per cell, see the docstring
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


def fit_chunk(frame: pd.DataFrame, cells_json: str) -> list[tuple[str, dict]]:
    """[(key, result)] for a chunk of cells that share one analysis frame; ``cells_json`` is the JSON list of the
    cells (one string: dask ships it as is instead of walking every nested spec dict in search of futures)."""
    return [(cell["key"], fit_cell(frame, {**cell, "spec": Spec.model_validate(cell["spec"])}))
            for cell in json.loads(cells_json)]
