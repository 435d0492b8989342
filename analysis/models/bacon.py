"""Goodman-Bacon (2021, J. Econometrics 225(2)) decomposition of the two-way fixed-effects coefficient into 2x2
comparisons: :func:`bacon` (by comparison type, the estimator) and :func:`bacon_decomposition` (every pair).
Written on numpy (a closed form from his eqs. 10a-c; tests check that the weighted pairs add up to the TWFE
coefficient). Inputs and result rows: :mod:`analysis.models.staggered_panel`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.io import DataError
from analysis.models.staggered_panel import prepare_panel, result_frame

if TYPE_CHECKING:  # annotations only: the spec module imports the registry
    from analysis.models.spec import Spec


def bacon_decomposition(df: pd.DataFrame, spec: Spec) -> tuple[pd.DataFrame, float]:
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
        raise DataError(panel.source, "no treatment variation to decompose", column=spec.cohort)
    pairs["weight"] = pairs["weight"] / pairs["weight"].sum()

    # TWFE coefficient by the within transformation on the balanced panel.
    y = wide.to_numpy()
    d = ((cohort[:, None] > 0) & (periods[None, :] >= cohort[:, None])).astype(float)

    def within(m: np.ndarray) -> np.ndarray:
        return m - m.mean(axis=1, keepdims=True) - m.mean(axis=0, keepdims=True) + m.mean()

    dt = within(d)
    twfe = float((dt * within(y)).sum() / (dt**2).sum())
    return pairs, twfe


def bacon(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
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
    return result_frame(rows)
