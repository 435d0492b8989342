"""The staggered-adoption estimators' shared input and output: the panel reduced to unit, period, outcome, cohort
and cluster (:func:`prepare_panel`), and the result rows they all write.

Used by :mod:`analysis.models.att_gt`, :mod:`analysis.models.sunab`, :mod:`analysis.models.did_imputation` and
:mod:`analysis.models.bacon`. Every estimator follows the package's estimator contract: ``fit(df, spec) ->
DataFrame`` with one row per reported term and at least the columns :data:`RESULT_COLUMNS`. ``spec`` is the resolved
model spec as a plain dict (keys ``outcome, unit, time, cohort, controls, control_group, aggregate, event_window,
inference, seed, cluster``). Aggregated treatment effects are named ``"ATT"`` (overall), ``"ATT e=k"`` (event time
k = t - g), ``"ATT g=2019"`` (cohort) and ``"ATT t=2020"`` (calendar year). The cohort column holds the first
treated period; 0 or NaN means never treated.

Inference convention: every p-value and interval of ``att_gt``, ``sunab`` and ``did_imputation`` uses Student's t with
G - 1 degrees of freedom (G = clusters in the estimation sample; columns ``df_t``, ``n_clusters``; :func:`t_row`), like
the regressions' CRV1 (R ``did`` and ``fixest`` use normal critical values for these estimators). Honest DiD sets keep
normal critical values, as R HonestDiD does.

What was dropped is on every row: ``n_always_treated_dropped`` / ``always_treated_dropped`` (units treated in the
first period, unidentified; :func:`dropped_always_columns`), for att_gt ``n_units_dropped_unbalanced`` /
``units_dropped_unbalanced`` (R did's ``panel = TRUE`` balancing, the default; ``allow_unbalanced_panel: true`` keeps
them, listed in ``units_partial``), for sunab ``dropped_collinear``, for did_imputation
``n_treated_obs_not_imputable``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.io import DataError
from analysis.models.distributions import t_ppf, t_sf
from analysis.models.spec import Spec
from analysis.models.spec_vocabulary import DEFAULT_ALPHA
from analysis.paths import ANALYSIS_PANEL

#: Convergence tolerance of pyfixest's alternating-projection demeaning (sunab, did_imputation's pre-trend test).
#: Its default (1e-6) leaves coefficients accurate to ~1e-7 only, and the order in which it sweeps the fixed effects
#: follows Python's string hashing, so results moved with PYTHONHASHSEED by up to 3e-7; at 1e-12 they agree to
#: ~1e-13 whatever the seed.
PYFIXEST_FIXEF_TOL = 1e-12

#: Default significance level for confidence intervals: :data:`analysis.models.spec_vocabulary.DEFAULT_ALPHA` (imported above;
#: defined once, with the other spec defaults).

#: Columns every estimator returns, in this order (extra columns follow).
RESULT_COLUMNS = ["term", "estimate", "std_error", "p_value", "ci_low", "ci_high", "n_obs", "method"]


def pyfixest_demeaner():
    """pyfixest's alternating-projection (MAP) demeaner at :data:`PYFIXEST_FIXEF_TOL`, its other settings at their
    defaults (Rust backend, at most 10,000 iterations): what the deprecated ``feols(fixef_tol=...)`` built, so the
    numbers are unchanged (pyfixest 0.60 resolves ``fixef_tol`` to exactly this ``MapDemeaner``)."""
    from pyfixest.demeaners import MapDemeaner

    return MapDemeaner(fixef_tol=PYFIXEST_FIXEF_TOL)


@dataclass(frozen=True)
class StaggeredPanel:
    """A long panel reduced to what the staggered estimators need.

    ``data`` has columns ``unit, time, y, g, cluster`` plus the controls (original names); ``g`` is the
    first treated period with 0 for never treated (and for cohorts first treated after the last period).
    ``dropped_always_treated`` counts units treated in or before the first period, which no estimator here
    can use (no untreated period); ``always_treated_units`` names them (sorted).
    """

    data: pd.DataFrame
    periods: np.ndarray
    controls: tuple[str, ...]
    dropped_always_treated: int
    source: str
    always_treated_units: tuple = ()


def _source(spec: Spec) -> str | os.PathLike:
    """The file named in error messages: the spec's ``data_file`` if the engine passes one."""
    return spec.data_file or ANALYSIS_PANEL


def spec_file(spec: Spec) -> str | os.PathLike:
    """The spec file named in errors about a spec's settings (the child of an ``extends`` chain), else the data."""
    files = spec.spec_files
    return files[0] if files else _source(spec)


def prepare_panel(df: pd.DataFrame, spec: Spec, keep_always_treated: bool = False) -> StaggeredPanel:
    """Validate the spec's columns in ``df`` and return a :class:`StaggeredPanel`.

    Rows with a missing outcome or control are dropped (never imputed). Raises :class:`DataError` naming the
    column and the 1-based record for a non-numeric outcome, a non-integer period or a cohort that is not
    constant within a unit.
    """
    source = _source(spec)
    for key in ("outcome", "unit", "time", "cohort"):
        if getattr(spec, key) is None:
            raise DataError(source, f"spec has no {key!r}")
    controls = tuple(spec.controls)
    cluster = spec.cluster
    needed = [spec.outcome, spec.unit, spec.time, spec.cohort, *controls, cluster]
    for column in needed:
        if column not in df.columns:
            raise DataError(source, "column named in the spec is missing from the data", column=column)
    if df.empty:
        raise DataError(source, "no rows after sample filtering")

    for column in [spec.outcome, *controls]:
        values = pd.to_numeric(df[column], errors="coerce")
        bad = values.isna() & df[column].notna()
        if bad.any():
            raise DataError(source, f"non-numeric value {df[column][bad].iloc[0]!r}",
                            row=int(np.flatnonzero(bad.to_numpy())[0]) + 1, column=column)
    time = pd.to_numeric(df[spec.time], errors="coerce")
    bad_time = time.isna() | (time != np.round(time))
    if bad_time.any():
        raise DataError(source, "period must be an integer", row=int(np.flatnonzero(bad_time.to_numpy())[0]) + 1,
                        column=spec.time)
    cohort = pd.to_numeric(df[spec.cohort], errors="coerce").fillna(0.0)
    bad_cohort = (cohort != np.round(cohort)) | (cohort < 0)
    if bad_cohort.any():
        raise DataError(source, "cohort must be a non-negative integer period (0 = never treated)",
                        row=int(np.flatnonzero(bad_cohort.to_numpy())[0]) + 1, column=spec.cohort)

    data = pd.DataFrame({
        "unit": df[spec.unit].to_numpy(),
        "time": time.astype(np.int64).to_numpy(),
        "y": pd.to_numeric(df[spec.outcome], errors="coerce").astype(float).to_numpy(),
        "g": cohort.astype(np.int64).to_numpy(),
        "cluster": df[cluster].to_numpy(),
    })
    for column in controls:
        data[column] = pd.to_numeric(df[column], errors="coerce").astype(float).to_numpy()
    data["_record"] = np.arange(1, len(df) + 1)

    # The first row that disagrees with its unit's first cohort value is the one to fix.
    varies = data["g"] != data.groupby("unit")["g"].transform("first")
    if varies.any():
        raise DataError(source, "cohort (first treated period) differs across a unit's rows",
                        row=int(data.loc[varies, "_record"].iloc[0]), column=spec.cohort)
    if data.duplicated(["unit", "time"]).any():
        first = data.loc[data.duplicated(["unit", "time"]), "_record"].iloc[0]
        raise DataError(source, "duplicate unit x period row", row=int(first), column=spec.time)
    if cluster != spec.unit:
        if (data.groupby("unit")["cluster"].nunique() > 1).any():
            raise DataError(source, "units must be nested in clusters", column=cluster)

    data = data.dropna(subset=["y", *controls])
    periods = np.sort(data["time"].unique())
    if len(periods) < 2:
        raise DataError(source, "need at least two periods with data", column=spec.time)
    # Cohorts first treated after the sample ends are untreated throughout the sample (as R did does).
    data.loc[data["g"] > periods[-1], "g"] = 0
    always = (data["g"] > 0) & (data["g"] <= periods[0] + int(spec.anticipation))
    n_always = int(data.loc[always, "unit"].nunique())
    always_units = tuple(sorted(data.loc[always, "unit"].unique().tolist()))
    if not keep_always_treated:
        data = data.loc[~always]
    data = data.sort_values(["unit", "time"], kind="mergesort").reset_index(drop=True)
    return StaggeredPanel(data=data.drop(columns="_record"), periods=periods, controls=controls,
                          dropped_always_treated=n_always, source=str(source), always_treated_units=always_units)


def alpha_level(spec: Spec) -> float:
    """Significance level of the intervals: ``inference.alpha``, default :data:`DEFAULT_ALPHA`."""
    return float(spec.inference.alpha)


def event_window_bounds(spec: Spec) -> tuple[float, float]:
    """(first, last) event time of ``event_window`` (always set in a resolved spec; default [-3, 3])."""
    first, last = spec.event_window
    return float(first), float(last)


def t_row(term: str, estimate: float, se: float, alpha: float, n_obs: int, method: str, n_clusters: int,
           **extra) -> dict:
    """A result row whose p-value and CI use Student's t with G - 1 degrees of freedom (G clusters).

    t(G - 1) is the package's one reference distribution for cluster-robust statistics (the regressions' CRV1
    tests, the Mundlak F(k, G - 1), and these staggered estimators' influence-function / CRV1 / conservative BJS
    standard errors, bootstrap SEs included; Cameron and Miller 2015, J. Human Resources 50(2), sec. VI.B). R
    ``did`` and ``fixest::sunab`` report normal critical values; with G = 31 the t(30) interval is 2.042 / 1.960 =
    4.2% wider. Honest DiD sets keep normal critical values, as R HonestDiD does (see honest_did.py).
    Adds ``df_t`` = G - 1 and ``n_clusters`` = G.
    """
    df_t = int(n_clusters) - 1
    if df_t < 1:
        raise ValueError(f"{term}: cluster-robust inference needs at least two clusters, got {n_clusters}")
    if se is None or not np.isfinite(se) or se <= 0:
        p, lo, hi = np.nan, np.nan, np.nan
    else:
        p = float(2 * t_sf(abs(estimate / se), df_t))
        half = float(t_ppf(1 - alpha / 2, df_t)) * se
        lo, hi = estimate - half, estimate + half
    return {"term": term, "estimate": float(estimate), "std_error": float(se) if se is not None else np.nan,
            "p_value": p, "ci_low": lo, "ci_high": hi, "n_obs": int(n_obs), "method": method, "df_t": df_t,
            "n_clusters": int(n_clusters), **extra}


def dropped_always_columns(units: tuple) -> tuple[dict, str]:
    """Columns and method text reporting the always-treated units an estimator dropped (none: zero, empty)."""
    columns = {"n_always_treated_dropped": len(units), "always_treated_dropped": ";".join(str(u) for u in units)}
    text = (f"; {len(units)} always-treated unit(s) dropped (treated in the first period, not identified): "
            f"{', '.join(str(u) for u in units)}" if units else "")
    return columns, text


def result_frame(rows: list[dict]) -> pd.DataFrame:
    """Result rows as a frame, :data:`RESULT_COLUMNS` first."""
    out = pd.DataFrame(rows)
    extra = [c for c in out.columns if c not in RESULT_COLUMNS]
    return out[RESULT_COLUMNS + extra].reset_index(drop=True)


def cluster_sums(psi: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Sum influence-function rows within clusters (rows ordered by sorted cluster label)."""
    codes, _ = pd.factorize(clusters, sort=True)
    out = np.zeros((codes.max() + 1,) + psi.shape[1:])
    np.add.at(out, codes, psi)
    return out
