"""Sun & Abraham (2021, J. Econometrics 225(2)) interaction-weighted event study, :func:`sunab`.

A TWFE regression saturated in cohort x relative-period dummies (reference e = -1) estimated with pyfixest, then
averaged across cohorts with the cohorts' sample shares (delta method, cluster-robust CRV1 covariance); with
``inference.honest`` the Rambachan & Roth (2023) sets of :mod:`analysis.models.honest_did` are appended. pyfixest has
no ``sunab()`` with the cohort-share aggregation and its covariance, so the aggregation is written here. Inputs,
result rows and the t(G - 1) convention: :mod:`analysis.models.staggered_panel`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.io import DataError
from analysis.models.honest_did import honest_rows
from analysis.models.staggered_panel import (alpha_level, dropped_always_columns, event_window_bounds, prepare_panel,
                                             pyfixest_demeaner, result_frame, spec_file, t_row)

if TYPE_CHECKING:  # annotations only: the spec module imports the registry
    from analysis.models.spec import Spec


def sunab(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
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
    anticipation = int(spec.anticipation)
    if anticipation:
        raise DataError(spec_file(spec), "sunab supports anticipation 0 only (reference period e = -1)",
                        key="anticipation")
    control_note = "never-treated controls"
    if not (data["g"] == 0).any():
        cohorts = np.unique(data["g"])
        if len(cohorts) < 2:
            raise DataError(spec_file(spec), f"sunab: every unit in the sample is treated in {cohorts[0]} (after "
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
                     demeaner=pyfixest_demeaner())
    coefs = model.coef()
    vcov_full = pd.DataFrame(model._vcov, index=coefs.index, columns=coefs.index)
    kept = [(name, int(g), int(e)) for name, (g, e) in zip(names, cells) if name in coefs.index]
    collinear = [name for name in names if name not in coefs.index]
    collinear += [c for c in panel.controls if c not in coefs.index]
    counts = data.loc[treated].groupby(["g", "rel"]).size()

    lo, hi = event_window_bounds(spec)
    event_times = sorted({e for _, _, e in kept if lo <= e <= hi})
    lost = sorted({int(e) for _, e in cells if lo <= e <= hi} - set(event_times))
    if lost:
        raise DataError(spec_file(spec), f"sunab: every cohort x relative-period dummy of event time(s) "
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
    always, always_text = dropped_always_columns(panel.always_treated_units)
    method = (f"sunab (Sun-Abraham 2021 interaction-weighted, {control_note}, CRV1 by "
              f"{spec.cluster}, t({n_clusters - 1}))" + always_text
              + (f"; collinear and dropped: {', '.join(collinear)}" if collinear else ""))
    alpha = alpha_level(spec)
    out = result_frame([t_row(term, est, s, alpha, model._N, method, n_clusters, **always,
                        dropped_collinear=";".join(collinear))
                 for term, est, s in zip(terms, estimates, se)])
    honest = spec.inference.honest
    if honest:
        es_mask = out["term"].str.startswith("ATT e=").to_numpy()
        es_vcov = vcov[np.ix_(es_mask, es_mask)]
        out = pd.concat([out, honest_rows(out.loc[es_mask], es_vcov, honest, alpha, model._N)],
                        ignore_index=True)
    return out
