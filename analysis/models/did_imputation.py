"""Borusyak, Jaravel & Spiess (2024, REStud 91(6)) imputation estimator, :func:`did_imputation`.

Unit and period fixed effects fit on untreated observations, treated outcomes' counterfactuals imputed, effects
averaged, conservative variance of their Theorem 3 with cohort x horizon averages of the effects: diff-diff's
``ImputationDiD`` (equal to our former numpy implementation to ~1e-11 on the real spec; tests against pyfixest's
``did2s`` and known truth). Kept here, because diff-diff does not give them: the panel checks and the always-treated
and non-imputable records, the event window (diff-diff's overall ATT averages every treated observation), t(G - 1)
intervals, and the pre-trend coefficients of BJS Test 1 (leads -1 ... -K with the earlier relative periods as
reference, pyfixest), where diff-diff's ``pretrends`` leads use e = -1 as the reference instead. Inputs, result rows
and the t(G - 1) convention: :mod:`analysis.models.staggered_panel`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import warnings

import numpy as np
import pandas as pd

from analysis.io import DataError
from analysis.models.staggered_panel import (alpha_level, dropped_always_columns, event_window_bounds, prepare_panel,
                                             pyfixest_demeaner, result_frame, spec_file, t_row)

if TYPE_CHECKING:  # annotations only: the spec module imports the registry
    from analysis.models.spec import Spec


def did_imputation(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Borusyak--Jaravel--Spiess (2024) imputation estimator.

    1. Fit Y_it = a_i + l_t + X_it'c on untreated observations (never treated, or t < g - anticipation).
    2. tau_it = Y_it - (a_i + l_t + X_it'c) for treated observations (t >= g - anticipation); treated
       observations whose period has no untreated observation cannot be imputed and are dropped.
    3. ATT = mean of tau over treated observations with 0 <= e <= event_window[1]; ATT e=k = mean over e = k.
    Variance (their Theorem 3, conservative): each estimand is sum_it v_it Y_it with v_it = w_it on treated
    and v = -Z0 (Z0'Z0)^+ Z1' w on untreated observations; sigma^2 = sum_clusters (sum v_it eps_it)^2 with
    eps = residual on untreated and tau_it - tau_bar_{g,e} on treated observations (tau_bar = cohort x
    horizon mean). Steps 1-3 and the variance are diff-diff's ``ImputationDiD`` (``aux_partition=
    "cohort_horizon"``, no leave-one-out: R didimputation's convention); p-values and intervals t(G - 1). Pre-periods ``ATT e=k`` (k < 0, within the window) are their Test 1: lead dummies
    1{t - g = k} for k = -1 ... -K added to the step-1 regression on untreated observations (pyfixest, CRV1),
    relative periods before -K (at least the earliest one) being the reference.
    """
    import diff_diff as dd  # imported here: it loads scipy.stats, which the other estimators avoid (distributions.py)
    import pyfixest as pf

    panel = prepare_panel(df, spec)
    data = panel.data.copy()
    anticipation = int(spec.anticipation)
    data["treated"] = (data["g"] > 0) & (data["time"] >= data["g"] - anticipation)
    if not (data["g"] == 0).any() and len(np.unique(data["g"])) < 2:
        raise DataError(spec_file(spec), f"did_imputation: every unit in the sample is treated in "
                        f"{int(data['g'].iloc[0])} (after dropping {panel.dropped_always_treated} always-treated "
                        "unit(s)): no untreated observation in the treated periods identifies their period effects; "
                        "widen `sample` or use another `cohort`", key="cohort")
    data["e"] = np.where(data["g"] > 0, data["time"] - data["g"], np.iinfo(np.int64).min)
    untreated = data.loc[~data["treated"]]
    imputable = data["time"].isin(untreated["time"]) & data["unit"].isin(untreated["unit"])
    n_dropped = int((data["treated"] & ~imputable).sum())
    data = data.loc[imputable].reset_index(drop=True)
    treated = data["treated"].to_numpy()
    if not treated.any():
        raise DataError(spec_file(spec), "did_imputation: no treated observation has an untreated observation in "
                        "its period to impute its counterfactual (every unit treated by then); widen `sample` or use "
                        "another `cohort`", key="cohort")
    lo, hi = event_window_bounds(spec)
    # Treated observations outside 0 <= e <= event_window[1] have weight zero in every reported effect and do not
    # enter the step-1 fit, so leaving them out of the call changes no estimate or SE (residuals of treated
    # observations are centred within cohort x horizon cells, which they are alone in) and makes diff-diff's
    # overall ATT the window's average.
    in_targets = ~data["treated"] | ((data["e"] >= 0) & (data["e"] <= hi))
    clusters = data["cluster"].to_numpy()
    n_clusters = int(pd.unique(clusters).size)
    with warnings.catch_warnings():
        # Its note on normal-theory p-values (ours are t(G - 1), computed below from its effects and SEs).
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="diff_diff")
        imputation = dd.ImputationDiD(anticipation=anticipation, cluster="cluster").fit(
            data.loc[in_targets], outcome="y", unit="unit", time="time", first_treat="g",
            covariates=list(panel.controls) or None)
        # event-time effects aggregated after the fit (diff-diff's current API; fit-time aggregate= is deprecated)
        event_study = imputation.aggregate("event_study")
    alpha = alpha_level(spec)
    always, always_text = dropped_always_columns(panel.always_treated_units)
    method = (f"did_imputation (Borusyak-Jaravel-Spiess 2024 via diff-diff {dd.__version__} ImputationDiD, "
              "conservative cohort x horizon variance"
              + (f", {n_dropped} non-imputable treated obs dropped" if n_dropped else "")
              + f", t({n_clusters - 1}))" + always_text)
    targets = [("ATT", imputation.overall_att, imputation.overall_se)]
    targets += [(f"ATT e={int(k)}", float(att), float(se))
                for k, att, se, n, reference in sorted(zip(event_study.event_time, event_study.att, event_study.se,
                                                          event_study.n, event_study.is_reference))
                if lo <= k <= hi and k >= 0 and n > 0 and not reference]
    rows = [t_row(term, estimate, se, alpha, len(data), method, n_clusters, **always,
                  n_treated_obs_not_imputable=n_dropped) for term, estimate, se in targets]

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
                       demeaner=pyfixest_demeaner())
        tidy = fit.tidy()
        for k, name in zip(lead_values, lead_names):
            if name in tidy.index:
                n_pre_clusters = int(pre["cluster"].nunique())
                rows.append(t_row(f"ATT e={k}", tidy.loc[name, "Estimate"], tidy.loc[name, "Std. Error"],
                                   alpha, fit._N, f"did_imputation pre-trend test (BJS 2024 Test 1, CRV1, "
                                   f"t({n_pre_clusters - 1}))" + always_text, n_pre_clusters, **always,
                                   n_treated_obs_not_imputable=n_dropped))
    out = result_frame(rows)
    order = out["term"].map(lambda s: -np.inf if s == "ATT" else float(s.split("=")[1]))
    return out.iloc[np.argsort(order.to_numpy(), kind="mergesort")].reset_index(drop=True)
