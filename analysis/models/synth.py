"""Synthetic control, :func:`synth` (Abadie, Diamond and Hainmueller 2010, JASA 105(490), 493-505)
    Donor weights ``w >= 0, sum(w) = 1`` minimise the pre-period fit of the outcome path,
    ``sum_t v_t (Y_1t - sum_j w_j Y_jt)^2`` over all pre periods ``t`` ("outcome-path matching": every pre-period
    outcome is a predictor; no covariates and no nested optimisation of V). ``v_t = 1`` by default
    (``synth: {v: identity}``); ``v: inverse_variance`` uses ``v_t = 1 / sd_t^2`` with ``sd_t`` the
    cross-unit standard deviation of the outcome in year ``t`` (treated unit included) - the standardisation
    ``pysyncon.Synth`` applies before its ``custom_V``. The quadratic programme and everything below about the
    weights live in :mod:`analysis.models.simplex`.
    Gap ``g_t = Y_1t - synthetic_t``; ATT = mean post-period gap.

    Identification (issue 13). With few pre periods and many donors the treated unit often lies inside the
    donors' convex hull: the fit is perfect and the weights are not unique, so the gaps depend on which of the
    optimal weight vectors a solver returns. Every ATT row carries ``identified_low`` / ``identified_high``, the
    range of that gap (or of the mean gap) over *all* weight vectors with the optimal pre-period fit (linear
    programmes; NaN when the range is a point, ``fit_unique`` True). ``synth: {method: ...}`` picks the weights
    reported: ``auto`` (default) the classic ones where the gaps are identified, else the penalised synthetic
    control of Abadie and L'Hour (2021); ``classic`` always the classic solver's (its choice when not unique);
    ``penalized`` always the penalised ones. ``synth: {penalty: min}`` (default) is the limit ``lambda -> 0+``:
    the best pre-period fit is kept and, among the weights achieving it, the one minimising
    ``sum_j w_j ||x_1 - x_j||^2`` (weight on donors close to the treated unit) is chosen; it equals the classic
    weights wherever those are unique. ``penalty: <number>`` uses that fixed lambda. Columns ``synth_method``,
    ``penalty_lambda``, ``penalty_rule``, ``fit_unique`` (classic gaps identified) and ``weights_unique`` (the
    reported weights' gaps identified) record what was done.

    Inference is placebo-in-space: every donor is in turn treated as the treated unit, with the other donors (the
    real treated unit excluded) as its donor pool and the same weight rule. RMSPE ratio = sqrt(mean post g^2) /
    sqrt(mean pre g^2); the ATT p-value is the share of all units (treated included) whose ratio is at least the
    treated unit's (Abadie et al. 2010, section 3.2 and Figure 8). A pre-period RMSPE within
    ``PERFECT_FIT_TOLERANCE`` (1e-9) of the largest |pre-period outcome| is a perfect fit: RMSPE 0, ratio +inf.
    If the *treated* fit is perfect its ratio is undefined and the ATT row gets no p-value (NaN;
    ``p_value_statistic`` says why) - the rank would only count the placebos that also fit perfectly. The per-year
    p-value is the share of units whose ``|g_t|`` is at least the treated unit's. Every placebo p-value is at least
    ``p_value_floor`` = 1 / (units ranked). Standard errors and confidence intervals are undefined for this design
    and reported as NaN.

    In-time placebos (Abadie, Diamond and Hainmueller 2015, AJPS 59(2), "backdating"): for each pre year ``s``
    with at least two years before it, the treated unit is fitted on the years before ``s`` only and the row
    ``placebo-in-time t0=<s>`` reports its mean gap over ``s`` .. the last real pre year (no post-treatment data
    used), with its own identified range. Gaps of the size of the ATT there mean the ATT is not distinguishable
    from misfit.

    The panel (one treated unit, donors with a complete outcome path): :mod:`analysis.models.single_treated`.
    :func:`synth_fit` also returns the donor weights (with each weight's range over the optimal set and
    the classic solver's weights) and the actual/synthetic paths of the treated unit and every placebo; the
    estimation stage writes them beside the estimates (``<spec>.weights.parquet``, ``<spec>.paths.parquet``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.models.simplex import check_method, fit_weights
from analysis.models.single_treated import SingleTreatedPanel, single_treated_panel

if TYPE_CHECKING:  # annotations only: the spec module imports the registry
    from analysis.models.spec import Spec


#: Pre-period RMSPE at or below this share of the largest |pre-period outcome| counts as a perfect fit.
PERFECT_FIT_TOLERANCE = 1e-9

ESTIMATE_COLUMNS = ["term", "estimate", "std_error", "p_value", "ci_low", "ci_high", "n_obs", "method"]


def _v_weights(panel: SingleTreatedPanel, option: str) -> np.ndarray | None:
    if option == "identity":
        return None
    if option == "inverse_variance":
        sd = panel.Y[:, : panel.n_pre].std(axis=0, ddof=1)
        return 1.0 / np.where(sd > 0, sd, 1.0) ** 2
    raise ValueError(f"synth option v must be 'identity' or 'inverse_variance', got {option!r}")


@dataclass(frozen=True)
class SynthResult:
    """Everything a synthetic-control fit produces: tidy estimates, donor weights and the actual/synthetic paths."""

    estimates: pd.DataFrame
    weights: pd.DataFrame
    paths: pd.DataFrame


def _perfect(rmspe_pre: np.ndarray, Y_pre: np.ndarray) -> np.ndarray:
    """Pre-period RMSPE within rounding of zero (:data:`PERFECT_FIT_TOLERANCE` x the largest |pre outcome|)."""
    return rmspe_pre <= PERFECT_FIT_TOLERANCE * np.abs(Y_pre).max()


def _in_time_placebos(Y: np.ndarray, T0: int, times: list, v: np.ndarray | None, options) -> list[dict]:
    """Backdated fits of the treated unit: for each pre year ``s`` with at least two years before it, fit on the
    years before ``s`` and report the mean gap over ``s`` .. the last real pre year (no real post data used)."""
    rows = []
    donors, treated = Y[:-1, :T0], Y[-1, :T0]
    for k in range(2, T0):
        fit = fit_weights(donors[:, :k].T, treated[:k], donors[:, k:].T, treated[k:],
                          None if v is None else v[:k], options.method, options.penalty, detail=True)
        gap = treated - fit.weights @ donors
        rmspe_pre = float(np.sqrt(np.mean(gap[:k] ** 2)))
        low, high = fit.gap_ranges[-1]
        rows.append({
            "term": f"placebo-in-time t0={times[k]}", "estimate": float(gap[k:].mean()),
            "p_value": np.nan, "p_value_placebo": np.nan, "placebo_rank": np.nan,
            "rmspe_pre": 0.0 if _perfect(np.array([rmspe_pre]), Y[:, :k])[0] else rmspe_pre,
            "rmspe_post": float(np.sqrt(np.mean(gap[k:] ** 2))), "rmspe_ratio": np.nan,
            "identified_low": np.nan if fit.fit_unique else float(low),
            "identified_high": np.nan if fit.fit_unique else float(high),
            "fit_unique": fit.fit_unique, "weights_unique": fit.weights_unique, "synth_method": fit.synth_method,
            "penalty_lambda": fit.penalty_lambda, "penalty_rule": fit.penalty_rule,
            "p_value_statistic": "none: in-time placebo (fake treatment year inside the pre-period)",
            "n_pre_periods": k,
        })
    return rows


def synth_fit(df: pd.DataFrame, spec: Spec) -> SynthResult:
    """Fit the synthetic control for the treated unit and (unless ``inference: {placebo: false}``) every placebo.

    See the module docstring for the estimator and the inference. Returns a :class:`SynthResult`.
    """
    options = spec.synth  # analysis.models.spec.SynthOptions: v, method, penalty (defaults filled there)
    check_method(options.method, options.penalty)
    inference = spec.inference
    panel = single_treated_panel(df, spec)
    v = _v_weights(panel, str(options.v))
    Y, T0 = panel.Y, panel.n_pre
    n_units = Y.shape[0]
    treated_row = n_units - 1
    donor_rows = np.arange(n_units - 1)

    # Row r of `synthetic` is unit r's synthetic path; donors' rows are their placebo fits (same weight rule).
    fit_rows = [treated_row] + (list(donor_rows) if inference.placebo else [])
    synthetic = np.full_like(Y, np.nan)
    method_used = np.full(n_units, "", dtype=object)
    treated_fit = None
    for row in fit_rows:
        pool = donor_rows[donor_rows != row]
        fit = fit_weights(Y[pool, :T0].T, Y[row, :T0], Y[pool, T0:].T, Y[row, T0:], v, options.method,
                          options.penalty, detail=row == treated_row, weight_ranges=row == treated_row)
        synthetic[row] = fit.weights @ Y[pool]
        method_used[row] = fit.synth_method
        if row == treated_row:
            treated_fit = fit
    gap = Y - synthetic
    rmspe_pre = np.sqrt(np.mean(gap[:, :T0] ** 2, axis=1))
    rmspe_post = np.sqrt(np.mean(gap[:, T0:] ** 2, axis=1))
    # A pre-period fit within rounding of perfect is perfect: its ratio is +inf (not rounding noise), and all
    # perfectly fitted units tie in the placebo ranking.
    perfect_fit = _perfect(rmspe_pre, Y[:, :T0])
    rmspe_pre = np.where(perfect_fit, 0.0, rmspe_pre)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(perfect_fit, np.where(rmspe_post > 0, np.inf, np.nan), rmspe_post / rmspe_pre)
    fitted = np.array(fit_rows)

    def placebo_p(statistic: np.ndarray) -> tuple[float, int, int]:
        """Share (and rank, 1 = largest) of fitted units whose statistic is >= the treated unit's."""
        if not inference.placebo:
            return np.nan, 0, 1
        values = statistic[fitted]
        # Ties within floating-point noise count as ties (the treated unit ranks behind them).
        at_least = values >= statistic[treated_row] * (1 - 1e-10) - 1e-300
        return float(at_least.mean()), int(at_least.sum()), len(values)

    times = panel.times
    post_times = times[T0:]
    n_obs = int(Y.size)
    method = (f"synthetic control (Abadie et al. 2010; outcome-path matching on all pre periods, V = {options.v}; "
              f"weights: {options.method}, penalty {options.penalty} (Abadie and L'Hour 2021) where used); "
              "identified_low/high: range over all weights with the optimal pre-period fit (NaN = unique); "
              "p-value from placebo-in-space rank (ATT: post/pre RMSPE ratio, NaN when the treated pre-RMSPE is 0; "
              "per year: |gap|), floor 1/(units ranked); std_error and CI undefined (NaN)")
    treated_perfect = bool(perfect_fit[treated_row])
    if treated_perfect:
        p_att, rank_att, n_placebo_units = np.nan, np.nan, placebo_p(ratio)[2]
        att_statistic = "none: treated pre-RMSPE is 0 (perfect pre-period fit), RMSPE ratio undefined"
    else:
        p_att, rank_att, n_placebo_units = placebo_p(ratio)
        att_statistic = "rmspe_ratio"
    ranges = treated_fit.gap_ranges
    unique = treated_fit.fit_unique
    rows = [{
        "term": "ATT", "estimate": float(gap[treated_row, T0:].mean()), "p_value": p_att,
        "p_value_placebo": p_att, "placebo_rank": rank_att, "p_value_statistic": att_statistic,
        "identified_low": np.nan if unique else float(ranges[-1, 0]),
        "identified_high": np.nan if unique else float(ranges[-1, 1]),
    }]
    for j, t in enumerate(post_times):
        p_t, rank_t, _ = placebo_p(np.abs(gap[:, T0 + j]))
        rows.append({"term": f"ATT t={t}", "estimate": float(gap[treated_row, T0 + j]), "p_value": p_t,
                     "p_value_placebo": p_t, "placebo_rank": rank_t, "p_value_statistic": "abs_gap",
                     "identified_low": np.nan if unique else float(ranges[j, 0]),
                     "identified_high": np.nan if unique else float(ranges[j, 1])})
    estimates = pd.DataFrame(rows).assign(
        rmspe_pre=float(rmspe_pre[treated_row]), rmspe_post=float(rmspe_post[treated_row]),
        rmspe_ratio=float(ratio[treated_row]), fit_unique=unique, weights_unique=treated_fit.weights_unique,
        synth_method=treated_fit.synth_method, penalty_lambda=treated_fit.penalty_lambda,
        penalty_rule=treated_fit.penalty_rule, n_pre_periods=T0,
    )
    if not inference.placebo:
        estimates["p_value_statistic"] = "none: placebo inference off"
    in_time = pd.DataFrame(_in_time_placebos(Y, T0, times, v, options))
    estimates = pd.concat([estimates, in_time], ignore_index=True)
    placebo_units = fitted[fitted != treated_row]
    estimates = estimates.assign(
        std_error=np.nan, ci_low=np.nan, ci_high=np.nan, n_obs=n_obs, method=method,
        n_units_ranked=n_placebo_units,
        p_value_floor=1.0 / n_placebo_units if inference.placebo else np.nan,
        n_placebos_perfect_fit=int(perfect_fit[placebo_units].sum()),
        n_placebos_penalized=int((method_used[placebo_units] == "penalized").sum()),
        treated_unit=panel.treated_unit, first_treated_time=panel.first_treated_time,
        n_donors=panel.n_donors, donors_excluded=",".join(str(u) for u in panel.donors_excluded),
    )
    estimates["placebo_rank"] = estimates["placebo_rank"].astype(float)
    front = ESTIMATE_COLUMNS + ["rmspe_pre", "rmspe_post", "rmspe_ratio", "p_value_placebo", "placebo_rank",
                                "identified_low", "identified_high"]
    estimates = estimates[front + [c for c in estimates.columns if c not in front]]

    weights = pd.DataFrame({"unit": panel.units[:-1], "weight": treated_fit.weights,
                            "weight_min": treated_fit.weight_ranges[:, 0],
                            "weight_max": treated_fit.weight_ranges[:, 1],
                            "weight_classic": treated_fit.classic_weights})
    path_frames = []
    for row in fit_rows:
        path_frames.append(pd.DataFrame({
            "unit": panel.units[row], "time": times, "actual": Y[row], "synthetic": synthetic[row],
            "gap": gap[row], "post": np.arange(len(times)) >= T0,
            "role": "treated" if row == treated_row else "placebo",
            "rmspe_pre": rmspe_pre[row], "rmspe_ratio": ratio[row], "synth_method": method_used[row],
        }))
    paths = pd.concat(path_frames, ignore_index=True)
    return SynthResult(estimates=estimates.reset_index(drop=True), weights=weights, paths=paths)


def synth(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Synthetic-control estimates (ATT and per-year gaps) under the estimator contract; see the module docstring."""
    return synth_fit(df, spec).estimates


def synth_outputs(df: pd.DataFrame, spec: Spec) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Estimates and the companion tables the estimation stage writes beside them (``paths``, ``weights``)."""
    result = synth_fit(df, spec)
    return result.estimates, {"paths": result.paths, "weights": result.weights}
