"""Staggered-adoption difference-in-differences estimators and Honest DiD sensitivity.

Every estimator follows the package's estimator contract: ``fit(df, spec) -> DataFrame`` with one row per
reported term and at least the columns ``term, estimate, std_error, p_value, ci_low, ci_high, n_obs, method``.
``spec`` is the resolved model spec as a plain dict (keys ``outcome, unit, time, cohort, controls,
control_group, aggregate, event_window, inference, seed, cluster``). Aggregated treatment effects are named
``"ATT"`` (overall), ``"ATT e=k"`` (event time k = t - g), ``"ATT g=2019"`` (cohort) and ``"ATT t=2020"``
(calendar year). The cohort column holds the first treated period; 0 or NaN means never treated.

Estimators (all written here on numpy/pandas, each checked in ``tests/test_models_staggered*.py`` against a
hand computation, a second implementation and, for ``att_gt``, published numbers):

* :func:`att_gt` -- Callaway & Sant'Anna (2021, J. Econometrics 225(2)) group-time ATTs, outcome-regression
  estimator (unconditional 2x2 DiD of means without controls), never- or not-yet-treated comparison units,
  ``simple``/``group``/``calendar``/``dynamic`` aggregation as in R ``did::aggte`` (including the influence
  function of the estimated aggregation weights), analytical influence-function standard errors clustered by
  ``cluster`` and, on request, a seeded multiplier bootstrap (Mammen weights, IQR-based standard error).
* :func:`sunab` -- Sun & Abraham (2021, J. Econometrics 225(2)) interaction-weighted event study: a TWFE
  regression saturated in cohort x relative-period dummies (reference e = -1) estimated with pyfixest, then
  averaged across cohorts with the cohorts' sample shares (delta-method, cluster-robust CRV1 covariance).
* :func:`did_imputation` -- Borusyak, Jaravel & Spiess (2024, REStud 91(6)) imputation estimator: unit and
  period fixed effects fit on untreated observations, treated outcomes' counterfactuals imputed, effects
  averaged; conservative variance of their Theorem 3 with cohort x horizon averages of the effects;
  pre-trend coefficients from their Test 1 (leads added to the untreated-observation regression).
* :func:`bacon` -- Goodman-Bacon (2021, J. Econometrics 225(2)) decomposition of the TWFE coefficient into
  2x2 comparisons; :func:`bacon_decomposition` gives every pair.
* :func:`~analysis.models.honest_did.honest_did` -- Rambachan & Roth (2023, REStud 90(5)) sensitivity sets, in
  :mod:`analysis.models.honest_did` (imported here for the event studies).

Inference convention: every p-value and interval of ``att_gt``, ``sunab`` and ``did_imputation`` uses Student's t with
G - 1 degrees of freedom (G = clusters in the estimation sample; columns ``df_t``, ``n_clusters``), like the
regressions' CRV1 (R ``did`` and ``fixest`` use normal critical values for these estimators). Honest DiD sets keep
normal critical values, as R HonestDiD does.

What was dropped is on every row: ``n_always_treated_dropped`` / ``always_treated_dropped`` (units treated in the
first period, unidentified), for att_gt ``n_units_dropped_unbalanced`` / ``units_dropped_unbalanced`` (R did's
``panel = TRUE`` balancing, the default; ``allow_unbalanced_panel: true`` keeps them, listed in ``units_partial``),
for sunab ``dropped_collinear``, for did_imputation ``n_treated_obs_not_imputable``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm import tqdm

from analysis.io import DataError
from analysis.models.distributions import norm_ppf, norm_sf, t_ppf, t_sf
from analysis.models.honest_did import honest_did, honest_rows  # noqa: F401  (moved; re-exported for callers)
from analysis.paths import ANALYSIS_PANEL

#: Convergence tolerance of pyfixest's alternating-projection demeaning. Its default (1e-6) leaves
#: coefficients accurate to ~1e-7 only, and the order in which it sweeps the fixed effects follows Python's string
#: hashing, so results moved with PYTHONHASHSEED by up to 3e-7; at 1e-12 they agree to ~1e-13 whatever the seed.
PYFIXEST_FIXEF_TOL = 1e-12

#: Standard-normal quantile difference used to turn a bootstrap interquartile range into a standard error
#: (as R ``did::mboot``): IQR / (z_0.75 - z_0.25).
IQR_TO_SD = float(norm_ppf(0.75) - norm_ppf(0.25))

#: Default significance level for confidence intervals.
DEFAULT_ALPHA = 0.05

#: Columns every estimator returns, in this order (extra columns follow).
RESULT_COLUMNS = ["term", "estimate", "std_error", "p_value", "ci_low", "ci_high", "n_obs", "method"]


# --------------------------------------------------------------------------------------------------------------
# Input preparation
# --------------------------------------------------------------------------------------------------------------


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


def _source(spec: dict) -> str | os.PathLike:
    """The file named in error messages: the spec's ``data_file`` if the engine passes one."""
    return spec.get("data_file", ANALYSIS_PANEL)


def _spec_file(spec: dict) -> str | os.PathLike:
    """The spec file named in errors about a spec's settings (the child of an ``extends`` chain), else the data."""
    files = spec.get("spec_files") or []
    return files[0] if files else _source(spec)


def prepare_panel(df: pd.DataFrame, spec: dict, keep_always_treated: bool = False) -> StaggeredPanel:
    """Validate the spec's columns in ``df`` and return a :class:`StaggeredPanel`.

    Rows with a missing outcome or control are dropped (never imputed). Raises :class:`DataError` naming the
    column and the 1-based record for a non-numeric outcome, a non-integer period or a cohort that is not
    constant within a unit.
    """
    source = _source(spec)
    for key in ("outcome", "unit", "time", "cohort"):
        if key not in spec or spec[key] is None:
            raise DataError(source, f"spec has no {key!r}")
    controls = tuple(spec.get("controls") or ())
    cluster = spec.get("cluster") or spec["unit"]
    needed = [spec["outcome"], spec["unit"], spec["time"], spec["cohort"], *controls, cluster]
    for column in needed:
        if column not in df.columns:
            raise DataError(source, "column named in the spec is missing from the data", column=column)
    if df.empty:
        raise DataError(source, "no rows after sample filtering")

    for column in [spec["outcome"], *controls]:
        values = pd.to_numeric(df[column], errors="coerce")
        bad = values.isna() & df[column].notna()
        if bad.any():
            raise DataError(source, f"non-numeric value {df[column][bad].iloc[0]!r}",
                            row=int(np.flatnonzero(bad.to_numpy())[0]) + 1, column=column)
    time = pd.to_numeric(df[spec["time"]], errors="coerce")
    bad_time = time.isna() | (time != np.round(time))
    if bad_time.any():
        raise DataError(source, "period must be an integer", row=int(np.flatnonzero(bad_time.to_numpy())[0]) + 1,
                        column=spec["time"])
    cohort = pd.to_numeric(df[spec["cohort"]], errors="coerce").fillna(0.0)
    bad_cohort = (cohort != np.round(cohort)) | (cohort < 0)
    if bad_cohort.any():
        raise DataError(source, "cohort must be a non-negative integer period (0 = never treated)",
                        row=int(np.flatnonzero(bad_cohort.to_numpy())[0]) + 1, column=spec["cohort"])

    data = pd.DataFrame({
        "unit": df[spec["unit"]].to_numpy(),
        "time": time.astype(np.int64).to_numpy(),
        "y": pd.to_numeric(df[spec["outcome"]], errors="coerce").astype(float).to_numpy(),
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
                        row=int(data.loc[varies, "_record"].iloc[0]), column=spec["cohort"])
    if data.duplicated(["unit", "time"]).any():
        first = data.loc[data.duplicated(["unit", "time"]), "_record"].iloc[0]
        raise DataError(source, "duplicate unit x period row", row=int(first), column=spec["time"])
    if cluster != spec["unit"]:
        if (data.groupby("unit")["cluster"].nunique() > 1).any():
            raise DataError(source, "units must be nested in clusters", column=cluster)

    data = data.dropna(subset=["y", *controls])
    periods = np.sort(data["time"].unique())
    if len(periods) < 2:
        raise DataError(source, "need at least two periods with data", column=spec["time"])
    # Cohorts first treated after the sample ends are untreated throughout the sample (as R did does).
    data.loc[data["g"] > periods[-1], "g"] = 0
    always = (data["g"] > 0) & (data["g"] <= periods[0] + int(spec.get("anticipation", 0)))
    n_always = int(data.loc[always, "unit"].nunique())
    always_units = tuple(sorted(data.loc[always, "unit"].unique().tolist()))
    if not keep_always_treated:
        data = data.loc[~always]
    data = data.sort_values(["unit", "time"], kind="mergesort").reset_index(drop=True)
    return StaggeredPanel(data=data.drop(columns="_record"), periods=periods, controls=controls,
                          dropped_always_treated=n_always, source=str(source), always_treated_units=always_units)


def _alpha(spec: dict) -> float:
    return float((spec.get("inference") or {}).get("alpha", DEFAULT_ALPHA))


def _bootstrap_reps(spec: dict) -> int:
    """Number of multiplier-bootstrap draws requested (0 = analytical only).

    Accepts ``inference: {bootstrap: {reps: 999}}`` or ``inference: {bootstrap: <kind>, reps: 999}``.
    """
    inference = spec.get("inference") or {}
    boot = inference.get("bootstrap")
    if isinstance(boot, dict):
        return int(boot.get("reps", 999))
    if boot in (None, False, "none"):
        return 0
    return int(inference.get("reps", 999))


def _event_window(spec: dict) -> tuple[float, float]:
    window = spec.get("event_window")
    if window is None:
        return -np.inf, np.inf
    return float(window[0]), float(window[1])


def _t_row(term: str, estimate: float, se: float, alpha: float, n_obs: int, method: str, n_clusters: int,
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


def _dropped_always(units: tuple) -> tuple[dict, str]:
    """Columns and method text reporting the always-treated units an estimator dropped (none: zero, empty)."""
    columns = {"n_always_treated_dropped": len(units), "always_treated_dropped": ";".join(str(u) for u in units)}
    text = (f"; {len(units)} always-treated unit(s) dropped (treated in the first period, not identified): "
            f"{', '.join(str(u) for u in units)}" if units else "")
    return columns, text


def _normal_row(term: str, estimate: float, se: float, alpha: float, n_obs: int, method: str, **extra) -> dict:
    """A result row with a normal-approximation two-sided p-value and CI (event-study inputs to Honest DiD,
    whose critical values are normal by design)."""
    z = norm_ppf(1 - alpha / 2)
    if se is None or not np.isfinite(se) or se <= 0:
        p, lo, hi = np.nan, np.nan, np.nan
    else:
        p = float(2 * norm_sf(abs(estimate / se)))
        lo, hi = estimate - z * se, estimate + z * se
    return {"term": term, "estimate": float(estimate), "std_error": float(se) if se is not None else np.nan,
            "p_value": p, "ci_low": lo, "ci_high": hi, "n_obs": int(n_obs), "method": method, **extra}


def _tidy(rows: list[dict]) -> pd.DataFrame:
    out = pd.DataFrame(rows)
    extra = [c for c in out.columns if c not in RESULT_COLUMNS]
    return out[RESULT_COLUMNS + extra].reset_index(drop=True)


# --------------------------------------------------------------------------------------------------------------
# Callaway & Sant'Anna (2021)
# --------------------------------------------------------------------------------------------------------------


@dataclass
class GroupTimeEffects:
    """ATT(g,t) estimates with their influence functions.

    ``cells`` has one row per (g, t): ``g, t, e, base, att, n_treated, n_control, post``.
    ``influence`` is n_units x n_cells: unit i's influence-function value psi_i for each cell, scaled as in
    R ``did`` so that Var(att) is estimated by sum_i psi_i^2 / n^2 (zero for units outside a cell).
    ``cohort_of_unit`` is each unit's cohort (0 = never treated), aligned with the rows of ``influence``.
    ``units_dropped_unbalanced``: units not observed in every period, dropped to balance the panel (the default);
    ``units_partial``: with ``allow_unbalanced_panel: true``, the units kept that miss some period (they enter only
    the cells whose two periods they have); ``always_treated_units``: cohorts treated in the first period, dropped.
    """

    cells: pd.DataFrame
    influence: np.ndarray
    cohort_of_unit: np.ndarray
    cluster_of_unit: np.ndarray
    n_obs: int
    units_dropped_unbalanced: tuple = ()
    units_partial: tuple = ()
    always_treated_units: tuple = ()


def group_time_effects(df: pd.DataFrame, spec: dict, base_period: str | None = None) -> GroupTimeEffects:
    """Callaway--Sant'Anna ATT(g,t) for every cohort g and period t (outcome-regression estimator).

    For cohort g and period t the comparison is a 2x2 DiD between base period b and t:

        ATT(g,t) = mean_{G=g}[Y_t - Y_b] - mean_{C}[Y_t - Y_b]              (no controls)
        ATT(g,t) = mean_{G=g}[(Y_t - Y_b) - X_b' beta_C]                    (controls X, base-period values)

    with beta_C the OLS fit of Y_t - Y_b on (1, X_b) among comparison units C. C is the never-treated units
    (``control_group: nevertreated``) or the units not yet treated by max(t, b) + anticipation
    (``notyettreated``, cohort g itself excluded). Base period: ``varying`` (R did's default) uses b = t - 1
    before treatment and b = g - 1 - anticipation after; ``universal`` uses b = g - 1 - anticipation
    throughout (needed for Honest DiD, whose pre-period coefficients must share the reference period).
    Only units observed in both t and b enter a cell. Influence function (unit i, n units in total):

        psi_i = n/N_g * D_i * (dY_i - X_i'beta - ATT) - xbar_g' * (sum_C X X' / n)^{-1} * C_i X_i e_i
    """
    panel = prepare_panel(df, spec)
    data, periods = panel.data, panel.periods
    # R did (panel = TRUE, allow_unbalanced_panel = FALSE) keeps only the units observed in every period, with a
    # warning; so do we unless the spec sets allow_unbalanced_panel: true (then such units enter the cells whose
    # two periods they have, as R's unbalanced-panel estimator).
    n_rows = data.groupby("unit")["time"].nunique()
    incomplete = tuple(sorted(n_rows.index[n_rows < len(periods)].tolist()))
    dropped_unbalanced: tuple = ()
    if incomplete and not spec.get("allow_unbalanced_panel", False):
        warnings.warn(f"{_spec_file(spec)}: att_gt balances the panel (as R did): {len(incomplete)} unit(s) not "
                      f"observed in every period {periods[0]}-{periods[-1]} dropped: "
                      f"{', '.join(str(u) for u in incomplete)}; set allow_unbalanced_panel: true to keep them",
                      stacklevel=2)
        data = data.loc[~data["unit"].isin(incomplete)]
        dropped_unbalanced, incomplete = incomplete, ()
    anticipation = int(spec.get("anticipation", 0))
    control_group = spec.get("control_group", "nevertreated")
    if control_group not in ("nevertreated", "notyettreated"):
        raise DataError(panel.source, f"control_group must be nevertreated or notyettreated, not {control_group!r}")
    base_period = base_period or spec.get("base_period", "varying")
    if base_period not in ("varying", "universal"):
        raise DataError(panel.source, f"base_period must be varying or universal, not {base_period!r}")

    units = pd.Index(np.sort(data["unit"].unique()))
    unit_info = data.groupby("unit").agg(g=("g", "first"), cluster=("cluster", "first")).reindex(units)
    cohort_of_unit = unit_info["g"].to_numpy()
    n = len(units)
    wide_y = data.pivot(index="unit", columns="time", values="y").reindex(index=units, columns=periods)
    wide_x = {c: data.pivot(index="unit", columns="time", values=c).reindex(index=units, columns=periods)
              for c in panel.controls}
    groups = np.sort(np.unique(cohort_of_unit[cohort_of_unit > 0]))
    if len(groups) == 0:
        raise DataError(panel.source, "no treated cohort in the sample", column=spec["cohort"])
    if control_group == "nevertreated" and not (cohort_of_unit == 0).any():
        raise DataError(panel.source, "control_group nevertreated but no never-treated unit", column=spec["cohort"])

    rows, influence = [], []
    for g in groups:
        # Last period strictly before (anticipation-adjusted) treatment: the long-difference base.
        before = periods[periods + anticipation < g]
        if len(before) == 0:
            continue
        long_base = before[-1]
        for k, t in enumerate(periods):
            if base_period == "varying" and t + anticipation < g:
                if k == 0:
                    continue
                base = periods[k - 1]
            else:
                base = long_base
                if t == base:
                    continue
            treated = cohort_of_unit == g
            if control_group == "nevertreated":
                control = cohort_of_unit == 0
            else:
                control = (cohort_of_unit == 0) | ((cohort_of_unit > max(t, base) + anticipation)
                                                   & (cohort_of_unit != g))
            dy = (wide_y[t] - wide_y[base]).to_numpy()
            ok = np.isfinite(dy)
            x = np.ones((n, 1))
            if panel.controls:
                x = np.column_stack([x] + [wide_x[c][base].to_numpy() for c in panel.controls])
                ok &= np.isfinite(x).all(axis=1)
            d, c = treated & ok, control & ok
            # Units outside the cell (no row in t or b) contribute zero to its influence function; their
            # missing base-period controls must not turn 0 * NaN into NaN for every unit's psi.
            x = np.where(ok[:, None], x, 0.0)
            n_g, n_c = int(d.sum()), int(c.sum())
            if n_g == 0 or n_c == 0:
                continue
            xc, yc = x[c], dy[c]
            gram = xc.T @ xc / n
            beta = np.linalg.lstsq(xc, yc, rcond=None)[0]
            resid_c = np.zeros(n)
            resid_c[c] = yc - xc @ beta
            adjusted = np.where(d, dy - x @ beta, 0.0)
            att = adjusted[d].mean()
            xbar_g = x[d].mean(axis=0)
            psi = np.where(d, n / n_g * (adjusted - att), 0.0)
            psi -= (x * resid_c[:, None]) @ np.linalg.pinv(gram) @ xbar_g
            rows.append({"g": int(g), "t": int(t), "e": int(t - g), "base": int(base), "att": float(att),
                         "n_treated": n_g, "n_control": n_c, "post": bool(t >= g)})
            influence.append(psi)
    if not rows:
        raise DataError(panel.source, "no estimable group-time cell", column=spec["cohort"])
    return GroupTimeEffects(cells=pd.DataFrame(rows), influence=np.column_stack(influence),
                            cohort_of_unit=cohort_of_unit, cluster_of_unit=unit_info["cluster"].to_numpy(),
                            n_obs=len(data), units_dropped_unbalanced=dropped_unbalanced, units_partial=incomplete,
                            always_treated_units=panel.always_treated_units)


def _weight_influence(keepers: np.ndarray, pg: np.ndarray, cell_groups: np.ndarray,
                      cohort_of_unit: np.ndarray) -> np.ndarray:
    """Influence function of estimated aggregation weights w_k = pg_k / sum(pg) (R ``did`` ``wif``).

    pg_k = P(G = g_k) is estimated by the share of units in cohort g_k, so the weights carry sampling error:
    if1_ik = (1{G_i=g_k} - pg_k) / S, if2_ik = [sum_j (1{G_i=g_j} - pg_j)] * pg_k / S^2, wif = if1 - if2,
    with S = sum_k pg_k over the kept cells. Returns an n_units x len(keepers) matrix.
    """
    ind = (cohort_of_unit[:, None] == cell_groups[keepers][None, :]).astype(float) - pg[keepers][None, :]
    total = pg[keepers].sum()
    return ind / total - ind.sum(axis=1, keepdims=True) * (pg[keepers] / total**2)[None, :]


def _aggregate(gte: GroupTimeEffects, keepers: np.ndarray, with_wif: bool = True) -> tuple[float, np.ndarray]:
    """Cohort-share-weighted average of the kept cells and its influence function."""
    cells = gte.cells
    n = len(gte.cohort_of_unit)
    groups = cells["g"].to_numpy()
    pg = np.array([(gte.cohort_of_unit == g).sum() / n for g in groups])
    weights = pg[keepers] / pg[keepers].sum()
    att = cells["att"].to_numpy()[keepers]
    estimate = float(weights @ att)
    psi = gte.influence[:, keepers] @ weights
    if with_wif:
        psi = psi + _weight_influence(keepers, pg, groups, gte.cohort_of_unit) @ att
    return estimate, psi


def _cluster_sums(psi: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Sum influence-function rows within clusters (rows ordered by sorted cluster label)."""
    codes, _ = pd.factorize(clusters, sort=True)
    out = np.zeros((codes.max() + 1,) + psi.shape[1:])
    np.add.at(out, codes, psi)
    return out


def _att_gt_aggregations(gte: GroupTimeEffects, aggregate: str, window: tuple[float, float]
                         ) -> list[tuple[str, float, np.ndarray]]:
    """(term, estimate, influence function) for the requested aggregation, overall term first."""
    cells = gte.cells
    e, g, t = cells["e"].to_numpy(), cells["g"].to_numpy(), cells["t"].to_numpy()
    post = cells["post"].to_numpy()
    out: list[tuple[str, float, np.ndarray]] = []
    if aggregate == "simple":
        est, psi = _aggregate(gte, np.flatnonzero(post))
        out.append(("ATT", est, psi))
    elif aggregate == "dynamic":
        lo, hi = window
        event_times = [k for k in np.unique(e) if lo <= k <= hi]
        per_e = []
        for k in event_times:
            est, psi = _aggregate(gte, np.flatnonzero(e == k))
            per_e.append((f"ATT e={int(k)}", est, psi, k))
        post_e = [(est, psi) for _, est, psi, k in per_e if k >= 0]
        if post_e:
            out.append(("ATT", float(np.mean([p[0] for p in post_e])), np.mean([p[1] for p in post_e], axis=0)))
        out.extend((term, est, psi) for term, est, psi, _ in per_e)
    elif aggregate == "group":
        per_g = []
        for gg in np.unique(g):
            keep = np.flatnonzero((g == gg) & post)
            if len(keep) == 0:
                continue
            # Within a cohort the post cells are averaged with equal weights (no estimated weights).
            est = float(cells["att"].to_numpy()[keep].mean())
            psi = gte.influence[:, keep].mean(axis=1)
            per_g.append((gg, est, psi))
        n = len(gte.cohort_of_unit)
        glist = np.array([p[0] for p in per_g])
        pg = np.array([(gte.cohort_of_unit == gg).sum() / n for gg in glist])
        atts = np.array([p[1] for p in per_g])
        weights = pg / pg.sum()
        keep = np.arange(len(glist))
        psi = np.column_stack([p[2] for p in per_g]) @ weights + _weight_influence(keep, pg, glist,
                                                                                   gte.cohort_of_unit) @ atts
        out.append(("ATT", float(weights @ atts), psi))
        out.extend((f"ATT g={int(gg)}", est, p) for gg, est, p in per_g)
    elif aggregate == "calendar":
        per_t = []
        for tt in np.unique(t[post]):
            est, psi = _aggregate(gte, np.flatnonzero(post & (t == tt)))
            per_t.append((f"ATT t={int(tt)}", est, psi))
        out.append(("ATT", float(np.mean([p[1] for p in per_t])), np.mean([p[2] for p in per_t], axis=0)))
        out.extend(per_t)
    else:
        raise ValueError(f"aggregate must be simple, group, calendar or dynamic, not {aggregate!r}")
    return out


def _influence_inference(psis: np.ndarray, clusters: np.ndarray, n_units: int, reps: int, seed: int | None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Standard errors and covariance matrix from influence functions (columns = estimates).

    Analytical: V = S'S / n^2 with S the cluster sums of psi. Bootstrap (reps > 0): Mammen multiplier
    weights v_c per cluster, draws (1/n) sum_c v_c S_c; SE = IQR / (z_.75 - z_.25) as R ``did::mboot``;
    the covariance matrix is always the analytical one.
    """
    sums = _cluster_sums(psis, clusters)
    vcov = sums.T @ sums / n_units**2
    se = np.sqrt(np.diag(vcov))
    if reps > 0:
        rng = np.random.default_rng(seed)
        # Mammen (1993) two-point weights: mean 0, variance 1, third moment 1.
        k = (np.sqrt(5) + 1) / 2
        p = k / np.sqrt(5)
        draws = []
        for _ in tqdm(range(reps), desc="multiplier bootstrap", leave=False, disable=reps < 2000):
            v = np.where(rng.random(sums.shape[0]) < p, 1 - k, k)
            draws.append(v @ sums / n_units)
        draws = np.asarray(draws)
        q75, q25 = np.quantile(draws, [0.75, 0.25], axis=0)
        se = (q75 - q25) / IQR_TO_SD
    return se, vcov


def _require_finite_se(se: np.ndarray, terms: list[str], spec: dict) -> None:
    """Stop with a :class:`DataError` naming the spec (file and key) when a standard error is not finite: an
    estimator never writes NaN inference silently."""
    bad = [term for term, s in zip(terms, se) if not np.isfinite(s)]
    if bad:
        raise DataError(_spec_file(spec), f"standard error of {', '.join(bad)} is not finite (estimator "
                        f"{spec.get('estimator', 'att_gt')!r}); check the sample and `controls`", column="controls")


def att_gt(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Callaway--Sant'Anna (2021) aggregated ATTs (see :func:`group_time_effects` for ATT(g,t)).

    Aggregations follow R ``did::aggte``: ``simple`` = cohort-size-weighted mean of post ATT(g,t);
    ``dynamic`` = per event time e the cohort-size-weighted mean of ATT(g, g+e), overall = mean over e >= 0
    (``event_window`` plays the role of min_e/max_e); ``group`` = per cohort the mean of its post cells,
    overall = cohort-size-weighted mean; ``calendar`` = per year the cohort-size-weighted mean of post cells,
    overall = mean over years. Standard errors from influence functions (clustered by ``cluster``) including
    the estimated-weight term; with ``inference.bootstrap`` a seeded multiplier bootstrap replaces them.
    With ``inference.honest`` rows from :func:`honest_did` on the universal-base event study are appended.
    """
    gte = group_time_effects(df, spec)
    aggregate = spec.get("aggregate", "simple")
    terms = _att_gt_aggregations(gte, aggregate, _event_window(spec))
    n_units = len(gte.cohort_of_unit)
    reps = _bootstrap_reps(spec)
    se, _ = _influence_inference(np.column_stack([p for _, _, p in terms]), gte.cluster_of_unit, n_units,
                                 reps, spec.get("seed"))
    _require_finite_se(se, [term for term, _, _ in terms], spec)
    n_clusters = len(pd.unique(gte.cluster_of_unit))
    always, always_text = _dropped_always(gte.always_treated_units)
    dropped = gte.units_dropped_unbalanced
    method = (f"att_gt (Callaway-Sant'Anna 2021, outcome regression, {spec.get('control_group', 'nevertreated')}"
              f" controls, {spec.get('base_period', 'varying')} base, "
              + (f"multiplier bootstrap {reps} reps" if reps else "analytical influence-function SE")
              + f", t({n_clusters - 1}) with G={n_clusters} clusters)" + always_text
              + (f"; panel balanced (as R did): {len(dropped)} unit(s) not observed in every period dropped: "
                 f"{', '.join(str(u) for u in dropped)}" if dropped else "")
              + (f"; unbalanced panel allowed: {len(gte.units_partial)} unit(s) enter only the cells whose periods "
                 f"they have: {', '.join(str(u) for u in gte.units_partial)}" if gte.units_partial else ""))
    alpha = _alpha(spec)
    extra = {**always, "n_units_dropped_unbalanced": len(dropped),
             "units_dropped_unbalanced": ";".join(str(u) for u in dropped),
             "n_units_partial": len(gte.units_partial), "units_partial": ";".join(str(u) for u in gte.units_partial)}
    rows = [_t_row(term, est, s, alpha, gte.n_obs, method, n_clusters, **extra)
            for (term, est, _), s in zip(terms, se)]
    out = _tidy(rows)
    honest = (spec.get("inference") or {}).get("honest")
    if honest:
        event_study, vcov = att_gt_event_study(df, spec)
        out = pd.concat([out, honest_rows(event_study, vcov, honest, alpha, gte.n_obs)], ignore_index=True)
    return out


def att_gt_event_study(df: pd.DataFrame, spec: dict) -> tuple[pd.DataFrame, np.ndarray]:
    """Dynamic (event-study) aggregation of ATT(g,t) with a universal base period, and its covariance.

    Returns the rows ``ATT e=k`` (k != -1; e = -1 is the reference, identically zero) and the analytical
    cluster-robust covariance matrix of those estimates in the same order -- the inputs :func:`honest_did`
    needs.
    """
    gte = group_time_effects(df, spec, base_period="universal")
    terms = [t for t in _att_gt_aggregations(gte, "dynamic", _event_window(spec)) if t[0] != "ATT"]
    se, vcov = _influence_inference(np.column_stack([p for _, _, p in terms]), gte.cluster_of_unit,
                                    len(gte.cohort_of_unit), 0, None)
    _require_finite_se(se, [term for term, _, _ in terms], spec)
    rows = [_normal_row(term, est, s, _alpha(spec), gte.n_obs, "att_gt event study (universal base)")
            for (term, est, _), s in zip(terms, se)]
    return _tidy(rows), vcov


# --------------------------------------------------------------------------------------------------------------
# Sun & Abraham (2021)
# --------------------------------------------------------------------------------------------------------------


def sunab(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Sun--Abraham (2021) interaction-weighted event study.

    Step 1 (pyfixest ``feols``): Y_it = a_i + l_t + sum_{g, e != -1} b_{g,e} 1{G_i=g} 1{t-g=e} + X_it'c + u_it
    on the treated cohorts and the comparison cohort: the never treated (their eq. 13), or, without
    never-treated units, the last-treated cohort with the periods from its treatment onward dropped.
    Step 2: ATT e=k = sum_g w_{g,k} b_{g,k}, w_{g,k} = share of cohort g among the treated observations at
    relative period k (their Pr(G=g | G in cohorts observed at k)); overall ATT = the treated-observation-
    weighted mean of b_{g,e} for e >= 0 within the event window (fixest's ``agg = "ATT"``). Standard errors by
    the delta method from the CRV1 covariance clustered by ``cluster`` (weights treated as known).
    """
    import pyfixest as pf

    panel = prepare_panel(df, spec)
    data = panel.data.copy()
    anticipation = int(spec.get("anticipation", 0))
    if anticipation:
        raise DataError(_spec_file(spec), "sunab supports anticipation 0 only (reference period e = -1)",
                        key="anticipation")
    control_note = "never-treated controls"
    if not (data["g"] == 0).any():
        cohorts = np.unique(data["g"])
        if len(cohorts) < 2:
            raise DataError(_spec_file(spec), f"sunab: every unit in the sample is treated in {cohorts[0]} (after "
                            f"dropping {panel.dropped_always_treated} always-treated unit(s)) and there is no never-"
                            "treated or later-treated cohort to compare with; widen `sample` or use another "
                            "`cohort`", key="cohort")
        last = data["g"].max()
        data = data.loc[data["time"] < last].copy()
        data.loc[data["g"] == last, "g"] = 0
        control_note = f"last-treated cohort ({last}) as control"
    treated = data["g"] > 0
    data["rel"] = np.where(treated, data["time"] - data["g"], -10**6)
    cells = (data.loc[treated & (data["rel"] != -1), ["g", "rel"]].drop_duplicates()
             .sort_values(["g", "rel"]).to_numpy())
    names = []
    for g, e in cells:
        name = f"sa_g{g}_e{'m' if e < 0 else 'p'}{abs(e)}"
        data[name] = ((data["g"] == g) & (data["rel"] == e)).astype(float)
        names.append(name)
    rhs = " + ".join(names + list(panel.controls))
    model = pf.feols(f"y ~ {rhs} | unit + time", data=data, vcov={"CRV1": "cluster"},
                     fixef_tol=PYFIXEST_FIXEF_TOL)
    coefs = model.coef()
    vcov_full = pd.DataFrame(model._vcov, index=coefs.index, columns=coefs.index)
    kept = [(name, int(g), int(e)) for name, (g, e) in zip(names, cells) if name in coefs.index]
    collinear = [name for name in names if name not in coefs.index]
    collinear += [c for c in panel.controls if c not in coefs.index]
    counts = data.loc[treated].groupby(["g", "rel"]).size()

    lo, hi = _event_window(spec)
    event_times = sorted({e for _, _, e in kept if lo <= e <= hi})
    lost = sorted({int(e) for _, e in cells if lo <= e <= hi} - set(event_times))
    if lost:
        raise DataError(_spec_file(spec), f"sunab: every cohort x relative-period dummy of event time(s) "
                        f"{lost} is collinear with the fixed effects and controls (dropped: {', '.join(collinear)}); "
                        "the requested ATT e=k cannot be estimated; narrow `event_window` or check `controls`",
                        key="event_window")
    weight_rows, terms = [], []
    post = [(name, g, e) for name, g, e in kept if e >= 0 and e <= hi]
    if post:
        w = np.array([counts[(g, e)] for _, g, e in post], dtype=float)
        weight_rows.append(pd.Series(w / w.sum(), index=[p[0] for p in post]))
        terms.append("ATT")
    for k in event_times:
        members = [(name, g, e) for name, g, e in kept if e == k]
        w = np.array([counts[(g, e)] for _, g, e in members], dtype=float)
        weight_rows.append(pd.Series(w / w.sum(), index=[m[0] for m in members]))
        terms.append(f"ATT e={k}")
    weights = pd.DataFrame(weight_rows).fillna(0.0).reindex(columns=[k[0] for k in kept], fill_value=0.0)
    b = coefs[weights.columns].to_numpy()
    v = vcov_full.loc[weights.columns, weights.columns].to_numpy()
    estimates = weights.to_numpy() @ b
    vcov = weights.to_numpy() @ v @ weights.to_numpy().T
    se = np.sqrt(np.diag(vcov))
    # The clusters of the rows pyfixest used (rows with a missing outcome/control are already gone).
    n_clusters = int(data["cluster"].nunique())
    always, always_text = _dropped_always(panel.always_treated_units)
    method = (f"sunab (Sun-Abraham 2021 interaction-weighted, {control_note}, CRV1 by "
              f"{spec.get('cluster') or spec['unit']}, t({n_clusters - 1}))" + always_text
              + (f"; collinear and dropped: {', '.join(collinear)}" if collinear else ""))
    alpha = _alpha(spec)
    out = _tidy([_t_row(term, est, s, alpha, model._N, method, n_clusters, **always,
                        dropped_collinear=";".join(collinear))
                 for term, est, s in zip(terms, estimates, se)])
    honest = (spec.get("inference") or {}).get("honest")
    if honest:
        es_mask = out["term"].str.startswith("ATT e=").to_numpy()
        es_vcov = vcov[np.ix_(es_mask, es_mask)]
        out = pd.concat([out, honest_rows(out.loc[es_mask], es_vcov, honest, alpha, model._N)],
                        ignore_index=True)
    return out


# --------------------------------------------------------------------------------------------------------------
# Borusyak, Jaravel & Spiess (2024)
# --------------------------------------------------------------------------------------------------------------


def did_imputation(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Borusyak--Jaravel--Spiess (2024) imputation estimator.

    1. Fit Y_it = a_i + l_t + X_it'c on untreated observations (never treated, or t < g - anticipation).
    2. tau_it = Y_it - (a_i + l_t + X_it'c) for treated observations (t >= g - anticipation); treated
       observations whose period has no untreated observation cannot be imputed and are dropped.
    3. ATT = mean of tau over treated observations with 0 <= e <= event_window[1]; ATT e=k = mean over e = k.
    Variance (their Theorem 3, conservative): each estimand is sum_it v_it Y_it with v_it = w_it on treated
    and v = -Z0 (Z0'Z0)^+ Z1' w on untreated observations; sigma^2 = sum_clusters (sum v_it eps_it)^2 with
    eps = residual on untreated and tau_it - tau_bar_{g,e} on treated observations (tau_bar = cohort x
    horizon mean). Pre-periods ``ATT e=k`` (k < 0, within the window) are their Test 1: lead dummies
    1{t - g = k} for k = -1 ... -K added to the step-1 regression on untreated observations (pyfixest, CRV1),
    relative periods before -K (at least the earliest one) being the reference.
    """
    import pyfixest as pf

    panel = prepare_panel(df, spec)
    data = panel.data.copy()
    anticipation = int(spec.get("anticipation", 0))
    data["treated"] = (data["g"] > 0) & (data["time"] >= data["g"] - anticipation)
    if not (data["g"] == 0).any() and len(np.unique(data["g"])) < 2:
        raise DataError(_spec_file(spec), f"did_imputation: every unit in the sample is treated in "
                        f"{int(data['g'].iloc[0])} (after dropping {panel.dropped_always_treated} always-treated "
                        "unit(s)): no untreated observation in the treated periods identifies their period effects; "
                        "widen `sample` or use another `cohort`", key="cohort")
    data["e"] = np.where(data["g"] > 0, data["time"] - data["g"], np.iinfo(np.int64).min)
    untreated = data.loc[~data["treated"]]
    imputable = data["time"].isin(untreated["time"]) & data["unit"].isin(untreated["unit"])
    n_dropped = int((data["treated"] & ~imputable).sum())
    data = data.loc[imputable].reset_index(drop=True)
    units = np.sort(data["unit"].unique())
    times = np.sort(data["time"].unique())
    unit_idx = np.searchsorted(units, data["unit"].to_numpy())
    time_idx = np.searchsorted(times, data["time"].to_numpy())
    # Design: unit dummies, period dummies (first period dropped), controls.
    z = np.zeros((len(data), len(units) + len(times) - 1 + len(panel.controls)))
    z[np.arange(len(data)), unit_idx] = 1.0
    later = time_idx > 0
    z[np.flatnonzero(later), len(units) + time_idx[later] - 1] = 1.0
    for j, c in enumerate(panel.controls):
        z[:, len(units) + len(times) - 1 + j] = data[c].to_numpy()
    treated = data["treated"].to_numpy()
    if not treated.any():
        raise DataError(_spec_file(spec), "did_imputation: no treated observation has an untreated observation in "
                        "its period to impute its counterfactual (every unit treated by then); widen `sample` or use "
                        "another `cohort`", key="cohort")
    z0, z1 = z[~treated], z[treated]
    y = data["y"].to_numpy()
    gram_pinv = np.linalg.pinv(z0.T @ z0)
    coef = gram_pinv @ z0.T @ y[~treated]
    fitted = z @ coef
    tau = np.where(treated, y - fitted, np.nan)
    resid0 = y[~treated] - fitted[~treated]

    treated_frame = data.loc[treated, ["g", "e"]].assign(tau=tau[treated])
    tau_bar = treated_frame.groupby(["g", "e"])["tau"].transform("mean").to_numpy()
    eps = np.empty(len(data))
    eps[~treated] = resid0
    eps[treated] = tau[treated] - tau_bar
    clusters = data["cluster"].to_numpy()

    lo, hi = _event_window(spec)
    e_treated = data.loc[treated, "e"].to_numpy()
    targets = [("ATT", (e_treated >= 0) & (e_treated <= hi))]
    targets += [(f"ATT e={k}", e_treated == k) for k in np.unique(e_treated) if lo <= k <= hi and k >= 0]
    alpha = _alpha(spec)
    n_clusters = int(pd.unique(clusters).size)
    always, always_text = _dropped_always(panel.always_treated_units)
    method = ("did_imputation (Borusyak-Jaravel-Spiess 2024, conservative cohort x horizon variance"
              + (f", {n_dropped} non-imputable treated obs dropped" if n_dropped else "")
              + f", t({n_clusters - 1}))" + always_text)
    rows = []
    for term, mask in targets:
        if not mask.any():
            continue
        w1 = mask / mask.sum()
        v = np.empty(len(data))
        v[treated] = w1
        v[~treated] = -z0 @ (gram_pinv @ (z1.T @ w1))
        estimate = float(w1 @ tau[treated])
        se = float(np.sqrt((_cluster_sums(v * eps, clusters) ** 2).sum()))
        rows.append(_t_row(term, estimate, se, alpha, len(data), method, n_clusters, **always,
                           n_treated_obs_not_imputable=n_dropped))

    # Pre-trend coefficients (BJS Test 1) on untreated observations.
    pre = data.loc[~data["treated"]].copy()
    # Leads -1 ... -K; the earliest relative period stays the reference (all leads would be collinear with
    # the unit effects of the treated units).
    observed = np.unique(pre.loc[pre["g"] > 0, "e"])
    earliest = observed.min() if len(observed) else 0
    lead_values = [k for k in observed if earliest < k < 0 and lo <= k]
    lead_names = []
    for k in lead_values:
        name = f"lead_m{abs(k)}"
        pre[name] = ((pre["g"] > 0) & (pre["e"] == k)).astype(float)
        lead_names.append(name)
    if lead_names:
        rhs = " + ".join(lead_names + list(panel.controls))
        fit = pf.feols(f"y ~ {rhs} | unit + time", data=pre, vcov={"CRV1": "cluster"},
                       fixef_tol=PYFIXEST_FIXEF_TOL)
        tidy = fit.tidy()
        for k, name in zip(lead_values, lead_names):
            if name in tidy.index:
                n_pre_clusters = int(pre["cluster"].nunique())
                rows.append(_t_row(f"ATT e={k}", tidy.loc[name, "Estimate"], tidy.loc[name, "Std. Error"],
                                   alpha, fit._N, f"did_imputation pre-trend test (BJS 2024 Test 1, CRV1, "
                                   f"t({n_pre_clusters - 1}))" + always_text, n_pre_clusters, **always,
                                   n_treated_obs_not_imputable=n_dropped))
    out = _tidy(rows)
    order = out["term"].map(lambda s: -np.inf if s == "ATT" else float(s.split("=")[1]))
    return out.iloc[np.argsort(order.to_numpy(), kind="mergesort")].reset_index(drop=True)


# --------------------------------------------------------------------------------------------------------------
# Goodman-Bacon (2021)
# --------------------------------------------------------------------------------------------------------------


def bacon_decomposition(df: pd.DataFrame, spec: dict) -> tuple[pd.DataFrame, float]:
    """All 2x2 comparisons of the Goodman-Bacon (2021) decomposition and the TWFE coefficient.

    Treatment D_it = 1{G_i > 0 and t >= G_i}; units are grouped by cohort (never treated D-bar = 0, treated in
    or before the first period = always treated, D-bar = 1). Requires a balanced panel: units with a missing
    outcome in any period are dropped. For cohorts k, l with D-bar_k > D-bar_l (k treated earlier), shares
    n_k, n_l of units, n_kl = n_k / (n_k + n_l), the comparisons and unnormalised weights (his eqs. 10a-c) are

    * k treated, l control, periods before l is treated (all periods if l never treated):
      s = ((n_k + n_l)(1 - D_l))^2 n_kl (1 - n_kl) (D_k - D_l)/(1 - D_l) (1 - D_k)/(1 - D_l)
    * l treated, k control, periods from k's treatment on (l not never treated):
      s = ((n_k + n_l) D_k)^2 n_kl (1 - n_kl) (D_l / D_k) (D_k - D_l)/D_k

    each estimate being the 2x2 DiD of period means. Weights are normalised to sum to one; their weighted sum
    of estimates equals the TWFE coefficient of Y on D with unit and period fixed effects (tested).
    Returns (pairs, twfe) with pairs columns ``treated, control, type, estimate, weight``.
    """
    panel = prepare_panel(df, spec, keep_always_treated=True)
    if panel.controls:
        raise DataError(panel.source, "bacon decomposes the TWFE estimate without controls; remove `controls`")
    data = panel.data
    wide = data.pivot(index="unit", columns="time", values="y")
    complete = wide.notna().all(axis=1)
    wide = wide.loc[complete]
    periods = wide.columns.to_numpy()
    cohort = data.groupby("unit")["g"].first().reindex(wide.index).to_numpy()
    n_units, n_periods = wide.shape
    d_bar = {g: float(np.mean(periods >= g)) if g > 0 else 0.0 for g in np.unique(cohort)}
    share = {g: float(np.mean(cohort == g)) for g in d_bar}
    means = {g: wide.loc[cohort == g].mean(axis=0).to_numpy() for g in d_bar}

    def did(treat: int, control: int, window: np.ndarray, post: np.ndarray) -> float:
        diff = means[treat][window] - means[control][window]
        return float(diff[post[window]].mean() - diff[~post[window]].mean())

    rows = []
    cohorts = sorted(d_bar, key=lambda g: -d_bar[g])
    for i, k in enumerate(cohorts):
        for l in cohorts[i + 1:]:
            dk, dl = d_bar[k], d_bar[l]
            if dk == dl:
                continue
            nk, nl = share[k], share[l]
            nkl = nk / (nk + nl)
            if dk < 1.0:  # k treated, l as control (before l's treatment)
                s = ((nk + nl) * (1 - dl)) ** 2 * nkl * (1 - nkl) * (dk - dl) / (1 - dl) * (1 - dk) / (1 - dl)
                window = periods < l if l > 0 else np.ones(n_periods, bool)
                kind = "treated vs never treated" if l == 0 else "earlier vs later treated"
                rows.append({"treated": int(k), "control": int(l), "type": kind,
                             "estimate": did(k, l, window, periods >= k), "weight": s})
            if dl > 0.0:  # l treated, k (already treated) as control
                s = ((nk + nl) * dk) ** 2 * nkl * (1 - nkl) * (dl / dk) * (dk - dl) / dk
                window = periods >= k
                kind = "treated vs always treated" if dk == 1.0 else "later vs earlier treated"
                rows.append({"treated": int(l), "control": int(k), "type": kind,
                             "estimate": did(l, k, window, periods >= l), "weight": s})
    pairs = pd.DataFrame(rows)
    if pairs.empty:
        raise DataError(panel.source, "no treatment variation to decompose", column=spec["cohort"])
    pairs["weight"] = pairs["weight"] / pairs["weight"].sum()

    # TWFE coefficient by the within transformation on the balanced panel.
    y = wide.to_numpy()
    d = ((cohort[:, None] > 0) & (periods[None, :] >= cohort[:, None])).astype(float)

    def within(m: np.ndarray) -> np.ndarray:
        return m - m.mean(axis=1, keepdims=True) - m.mean(axis=0, keepdims=True) + m.mean()

    dt = within(d)
    twfe = float((dt * within(y)).sum() / (dt**2).sum())
    return pairs, twfe


def bacon(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Goodman-Bacon (2021) decomposition summarised by comparison type, plus the TWFE coefficient.

    Rows: ``TWFE`` (the decomposed coefficient) and ``bacon <type>`` with ``weight`` (sum of the type's
    weights) and ``estimate`` (weight-averaged 2x2 estimate). sum(weight) = 1 and sum(weight * estimate) =
    TWFE. A decomposition has no sampling distribution here, so std_error, p_value and the CI are NaN.
    """
    pairs, twfe = bacon_decomposition(df, spec)
    # The observations the decomposition used: the balanced panel of units observed in every period.
    wide = prepare_panel(df, spec, keep_always_treated=True).data.pivot(index="unit", columns="time", values="y")
    complete = wide.notna().all(axis=1)
    n_obs = int(complete.sum() * wide.shape[1])
    n_dropped = int((~complete).sum())
    method = ("bacon (Goodman-Bacon 2021 decomposition, balanced panel"
              + (f"; {n_dropped} unit(s) with a missing period dropped: "
                 f"{', '.join(str(u) for u in wide.index[~complete])}" if n_dropped else "") + ")")
    rows = [{"term": "TWFE", "estimate": twfe, "weight": 1.0}]
    for kind, part in pairs.groupby("type", sort=True):
        weight = part["weight"].sum()
        rows.append({"term": f"bacon {kind}", "estimate": float((part["weight"] * part["estimate"]).sum() / weight),
                     "weight": float(weight)})
    for row in rows:
        row.update(std_error=np.nan, p_value=np.nan, ci_low=np.nan, ci_high=np.nan, n_obs=n_obs, method=method,
                   n_units_dropped_unbalanced=n_dropped,
                   units_dropped_unbalanced=";".join(str(u) for u in wide.index[~complete]))
    return _tidy(rows)


#: Estimators by the name a spec's ``estimator`` key uses (for the engine's registry).
ESTIMATORS = {"att_gt": att_gt, "sunab": sunab, "did_imputation": did_imputation, "bacon": bacon}
