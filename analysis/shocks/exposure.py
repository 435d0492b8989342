"""Pre-shock exposure of each province: one number per province, from pre-shock years only.

Two kinds of measure (defined in ``configs/shocks.yaml`` under ``exposure``):

- ``ratio_of_sums``: ``scale * sum_t(numerator_t * factor * fx_t) / sum_t(denominator_t)`` over the measure's
  years *t* in which the denominator is reported and positive. A ratio of sums, not a mean of yearly ratios, so
  a small year does not dominate. Only rows of those years are ever read, and the config loader refuses years at
  or after the first year treated by a main event, so post-shock data cannot enter.
  A blank numerator where the denominator is reported is 0 under ``missing_numerator: zero`` (the yearbook leaves
  nil or below-threshold cells empty) and is counted in ``<name>_zero_filled_years``; under ``error`` it stops.
- ``province_count``: the sum of time-invariant counts from the province table
  (:func:`analysis.provinces.province_table`: Seven Sons universities; defence-hosted state key laboratories in
  MOST's 2016 list).

Each measure also gets ``<name>_z = (x - mean) / sd`` across the 31 provinces (sd with ddof = 1), so a
coefficient on ``post x exposure_z`` is the effect per standard deviation of exposure. A composite is the mean of
its components' z-scores, standardised again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.io import DataError
from analysis.schema import did_you_mean
from analysis.provinces import PROVINCE_CODES


def zscore(values: pd.Series) -> pd.Series:
    """``(x - mean) / sd`` with the sample sd (ddof = 1); refuses a constant or incomplete series."""
    if values.isna().any():
        raise ValueError(f"{values.name}: cannot standardise with missing values")
    sd = values.std(ddof=1)
    if not np.isfinite(sd) or sd == 0:
        raise ValueError(f"{values.name}: constant across provinces, cannot standardise")
    return (values - values.mean()) / sd


def ratio_exposure(panel: pd.DataFrame, measure, fx: dict[str, dict[int, float]] | None = None,
                   source: str | Path = "panel") -> pd.DataFrame:
    """One ratio-of-sums measure for every province in :data:`PROVINCE_CODES`.

    Returns ``province_code``, ``<name>``, ``<name>_zero_filled_years`` (years whose blank numerator counted as
    0) and ``<name>_years_used`` (years with a reported, positive denominator).
    """
    for col in ("province_code", "year", measure.numerator, measure.denominator):
        if col not in panel.columns:
            raise DataError(source, f"column needed by {measure.name} is missing{did_you_mean(col, panel.columns)}",
                            column=col)
    years = measure.years.years()
    # Positional record numbers (1-based) for error messages, taken before any filtering.
    rec = panel.reset_index(drop=True).assign(_record=lambda d: np.arange(1, len(d) + 1))
    rec = rec[rec["year"].isin(years)]
    dup = rec.duplicated(["province_code", "year"])
    if dup.any():
        raise DataError(source, "duplicate province_code x year", row=int(rec.loc[dup, "_record"].iloc[0]),
                        column="province_code")
    num = rec[measure.numerator].astype(float) * measure.numerator_factor
    if measure.numerator_fx:
        num = num * rec["year"].map(fx[measure.numerator_fx]).astype(float)
    den = rec[measure.denominator].astype(float)
    usable = den.notna() & (den > 0)
    blank = usable & num.isna()
    if blank.any() and measure.missing_numerator == "error":
        raise DataError(source, f"{measure.name}: numerator is missing where the denominator is reported",
                        row=int(rec.loc[blank, "_record"].iloc[0]), column=measure.numerator)
    work = pd.DataFrame({"province_code": rec["province_code"].astype(int), "num": num.fillna(0.0),
                         "den": den, "usable": usable, "blank": blank})
    work = work[work["usable"]]
    grouped = work.groupby("province_code").agg(num=("num", "sum"), den=("den", "sum"),
                                                 zero_filled=("blank", "sum"), used=("usable", "sum"))
    out = pd.DataFrame({"province_code": list(PROVINCE_CODES)})
    out = out.merge(grouped, left_on="province_code", right_index=True, how="left")
    missing = out[out["den"].isna()]
    if len(missing):
        raise DataError(source, f"{measure.name}: no year {years[0]}-{years[-1]} with a reported "
                                f"{measure.denominator} for province {int(missing['province_code'].iloc[0])}; "
                                "exposure must be complete for all 31 provinces", column=measure.denominator)
    return pd.DataFrame({
        "province_code": out["province_code"],
        measure.name: measure.scale * out["num"] / out["den"],
        f"{measure.name}_zero_filled_years": out["zero_filled"].astype("int64"),
        f"{measure.name}_years_used": out["used"].astype("int64"),
    })


def count_exposure(provinces: pd.DataFrame, measure, source: str | Path = "provinces") -> pd.DataFrame:
    """One province_count measure: the row sum of ``measure.columns`` of the province table."""
    for col in ("province_code",) + tuple(measure.columns):
        if col not in provinces.columns:
            raise DataError(source, f"column needed by {measure.name} is missing{did_you_mean(col, provinces.columns)}",
                            column=col)
    table = provinces.set_index(provinces["province_code"].astype(int))
    absent = [c for c in PROVINCE_CODES if c not in table.index]
    if absent:
        raise DataError(source, f"province {absent[0]} is missing", column="province_code")
    values = table.loc[list(PROVINCE_CODES), list(measure.columns)].astype(float)
    if values.isna().any().any():
        col = values.columns[values.isna().any()][0]
        row = int(np.flatnonzero(provinces[col].isna())[0]) + 2  # CSV line: header is line 1
        raise DataError(source, f"{measure.name}: missing count", row=row, column=col)
    total = values.sum(axis=1)
    if (total == total.round()).all():
        total = total.astype("int64")  # counts stay integers
    return pd.DataFrame({"province_code": list(PROVINCE_CODES), measure.name: total.to_numpy()})


def compute_exposure(panel: pd.DataFrame, provinces: pd.DataFrame, config, panel_source: str | Path = "panel",
                     provinces_source: str | Path = "provinces") -> pd.DataFrame:
    """All exposure measures of ``config`` (a :class:`~analysis.shocks.config.ShocksConfig`), one row per province.

    Columns: ``province_code``; for each measure ``<name>`` and ``<name>_z``; for ratio measures the
    ``_zero_filled_years`` and ``_years_used`` diagnostics; composites as ``<name>`` and ``<name>_z``.
    """
    out = pd.DataFrame({"province_code": list(PROVINCE_CODES)})
    for m in config.ratio_measures:
        out = out.merge(ratio_exposure(panel, m, config.fx, panel_source), on="province_code", validate="one_to_one")
    for m in config.count_measures:
        out = out.merge(count_exposure(provinces, m, provinces_source), on="province_code", validate="one_to_one")
    for m in list(config.ratio_measures) + list(config.count_measures):
        out[f"{m.name}_z"] = zscore(out[m.name].rename(m.name))
    for c in config.composites:
        out[c.name] = out[[f"{n}_z" for n in c.components]].mean(axis=1)
        out[f"{c.name}_z"] = zscore(out[c.name].rename(c.name))
    return out


def exposure_codebook(config) -> pd.DataFrame:
    """Codebook rows (column, label, unit, formula, years, source) for every exposure column."""
    rows = []
    for m in config.ratio_measures:
        factor = f" x {m.numerator_factor:g}" if m.numerator_factor != 1 else ""
        fx = f" x {m.numerator_fx}_t" if m.numerator_fx else ""
        formula = (f"{m.scale:g} * sum_t({m.numerator}_t{factor}{fx}) / sum_t({m.denominator}_t) over years t with "
                   f"{m.denominator} reported and > 0; blank {m.numerator} = "
                   f"{'0 (counted in ' + m.name + '_zero_filled_years)' if m.missing_numerator == 'zero' else 'error'}")
        yrs = f"{m.years.first_year}-{m.years.last_year}"
        rows += [
            dict(column=m.name, label=m.label, unit=m.unit, formula=formula, years=yrs, source="panel"),
            dict(column=f"{m.name}_z", label=f"{m.label} (standardised)", unit="sd across 31 provinces",
                 formula=f"({m.name} - mean) / sd, sd with ddof = 1", years=yrs, source="panel"),
            dict(column=f"{m.name}_zero_filled_years", label=f"Years whose blank {m.numerator} counted as 0",
                 unit="count of years", formula="diagnostic", years=yrs, source="panel"),
            dict(column=f"{m.name}_years_used", label=f"Years with {m.denominator} reported and > 0",
                 unit="count of years", formula="diagnostic", years=yrs, source="panel"),
        ]
    for m in config.count_measures:
        rows += [
            dict(column=m.name, label=m.label, unit=m.unit, formula=" + ".join(m.columns),
                 years="time-invariant (list dates)", source="province table (analysis.provinces.province_table)"),
            dict(column=f"{m.name}_z", label=f"{m.label} (standardised)", unit="sd across 31 provinces",
                 formula=f"({m.name} - mean) / sd, sd with ddof = 1", years="time-invariant (list dates)",
                 source="province table"),
        ]
    for c in config.composites:
        rows += [
            dict(column=c.name, label=c.label, unit="mean of z-scores",
                 formula="mean(" + ", ".join(f"{n}_z" for n in c.components) + ")", years="as components",
                 source="components"),
            dict(column=f"{c.name}_z", label=f"{c.label} (standardised)", unit="sd across 31 provinces",
                 formula=f"({c.name} - mean) / sd, sd with ddof = 1", years="as components", source="components"),
        ]
    return pd.DataFrame(rows)
