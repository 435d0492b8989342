"""Borusyak, Jaravel & Spiess (2024, REStud 91(6)) imputation estimator, :func:`did_imputation`.

Unit and period fixed effects fit on untreated observations, treated outcomes' counterfactuals imputed, effects
averaged; conservative variance of their Theorem 3 with cohort x horizon averages of the effects; pre-trend
coefficients from their Test 1 (leads added to the untreated-observation regression, pyfixest). The variance needs
the imputation weights v_it, which no installed library exposes, so steps 1-3 are written here on numpy. Inputs,
result rows and the t(G - 1) convention: :mod:`analysis.models.staggered_panel`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.io import DataError
from analysis.models.staggered_panel import (alpha_level, cluster_sums, dropped_always_columns, event_window_bounds,
                                             prepare_panel, pyfixest_demeaner, result_frame, spec_file, t_row)


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
        raise DataError(spec_file(spec), f"did_imputation: every unit in the sample is treated in "
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
        raise DataError(spec_file(spec), "did_imputation: no treated observation has an untreated observation in "
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

    lo, hi = event_window_bounds(spec)
    e_treated = data.loc[treated, "e"].to_numpy()
    targets = [("ATT", (e_treated >= 0) & (e_treated <= hi))]
    targets += [(f"ATT e={k}", e_treated == k) for k in np.unique(e_treated) if lo <= k <= hi and k >= 0]
    alpha = alpha_level(spec)
    n_clusters = int(pd.unique(clusters).size)
    always, always_text = dropped_always_columns(panel.always_treated_units)
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
        se = float(np.sqrt((cluster_sums(v * eps, clusters) ** 2).sum()))
        rows.append(t_row(term, estimate, se, alpha, len(data), method, n_clusters, **always,
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
