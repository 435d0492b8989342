"""Construct validity of the indices: how much of each index is province size, and how distinct its two sides are.

One row per index method × metric (:data:`VALIDITY_METRICS`), computed over the province-years where the metric and
log total R&D are both observed in the index window:

- ``within_province_share`` = Var(x_it − x̄_i) / Var(x_it): the share of the variance left after removing each
  province's mean (a sanction effect can only move this part);
- ``twfe_residual_share`` = Var(e_it) / Var(x_it), e the residual of x on province and year effects (least squares,
  unbalanced rows allowed): the variance a two-way fixed-effects design has to work with;
- ``corr_military_civil`` = corr(u_military, u_civil), pooled over province-years (method-level; the same on each
  row of a method), and ``corr_military_civil_twfe``, the correlation of their two-way residuals;
- ``corr_log_rd_total`` = corr(x, log rd_exp_total), pooled: how closely the metric tracks the size of the
  province's R&D system, and ``corr_log_rd_total_twfe``, the same for the two-way residuals.

Variances are population variances (ddof = 0) of the same rows, so the shares are in [0, 1].
"""

from __future__ import annotations

import numpy as np
import pandas as pd

VALIDITY_METRICS = ("capability_index", "u_military", "u_civil", "transfer_civ_to_mil", "transfer_mil_to_civ")
VALIDITY_COLUMNS = ["method", "metric", "n_province_years", "within_province_share", "twfe_residual_share",
                    "corr_military_civil", "corr_military_civil_twfe", "corr_log_rd_total", "corr_log_rd_total_twfe"]


def twoway_residuals(values: np.ndarray, province: np.ndarray, year: np.ndarray) -> np.ndarray:
    """Residuals of ``values`` (n × k) on province and year dummies by least squares (exact on unbalanced rows)."""
    _, p = np.unique(province, return_inverse=True)
    _, t = np.unique(year, return_inverse=True)
    design = np.zeros((len(p), p.max() + 1 + t.max()))
    design[np.arange(len(p)), p] = 1.0
    if t.max() > 0:
        rows = t > 0
        design[np.flatnonzero(rows), p.max() + t[rows]] = 1.0      # year 0 is the reference
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    return values - design @ coef


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def validity_table(indices: pd.DataFrame, panel: pd.DataFrame, size_column: str = "rd_exp_total") -> pd.DataFrame:
    """The table described in the module docstring, methods in the order they appear in ``indices``."""
    size = panel[["province_code", "year", size_column]].copy()
    size["log_size"] = np.log(size[size_column].where(size[size_column] > 0))
    rows = []
    for method, ix in indices.groupby("method", sort=False):
        ix = ix.merge(size[["province_code", "year", "log_size"]], on=["province_code", "year"], how="left")
        both = ix.dropna(subset=["u_military", "u_civil"])
        uv = both[["u_military", "u_civil"]].to_numpy(float)
        u_res = twoway_residuals(uv, both["province_code"].to_numpy(), both["year"].to_numpy())
        corr_mc, corr_mc_twfe = _corr(uv[:, 0], uv[:, 1]), _corr(u_res[:, 0], u_res[:, 1])
        for metric in VALIDITY_METRICS:
            sub = ix.dropna(subset=[metric, "log_size"])
            x = sub[metric].to_numpy(float)
            total = np.var(x)
            if len(sub) < 3 or total == 0:
                rows.append({"method": method, "metric": metric, "n_province_years": len(sub)})
                continue
            within = x - sub.groupby("province_code")[metric].transform("mean").to_numpy(float)
            res = twoway_residuals(np.column_stack([x, sub["log_size"].to_numpy(float)]),
                                   sub["province_code"].to_numpy(), sub["year"].to_numpy())
            rows.append({
                "method": method, "metric": metric, "n_province_years": len(sub),
                "within_province_share": float(np.var(within) / total),
                "twfe_residual_share": float(np.var(res[:, 0]) / total),
                "corr_military_civil": corr_mc, "corr_military_civil_twfe": corr_mc_twfe,
                "corr_log_rd_total": _corr(x, sub["log_size"].to_numpy(float)),
                "corr_log_rd_total_twfe": _corr(res[:, 0], res[:, 1]),
            })
    return pd.DataFrame(rows, columns=VALIDITY_COLUMNS)


def scale_dependence(indices: pd.DataFrame, pooled: str, goalposts: str, metric: str = "capability_index") -> dict:
    """How much it matters that pooled min–max lets post-period years set the scale: the pooled method against the
    same construction with base-period goalposts. Returns the Pearson correlation of the two series over
    province-years, the correlation of their two-way residuals (the variation a DiD uses) and the Spearman rank
    correlation in the last window year."""
    a = indices.loc[indices["method"] == pooled, ["province_code", "year", metric]]
    b = indices.loc[indices["method"] == goalposts, ["province_code", "year", metric]]
    m = a.merge(b, on=["province_code", "year"], suffixes=("_pooled", "_goalposts")).dropna()
    vals = m[[f"{metric}_pooled", f"{metric}_goalposts"]].to_numpy(float)
    res = twoway_residuals(vals, m["province_code"].to_numpy(), m["year"].to_numpy())
    last = m[m["year"] == m["year"].max()]
    rank = last[[f"{metric}_pooled", f"{metric}_goalposts"]].rank()
    return {"pooled": pooled, "goalposts": goalposts, "metric": metric, "n_province_years": len(m),
            "corr_levels": _corr(vals[:, 0], vals[:, 1]), "corr_twfe_residuals": _corr(res[:, 0], res[:, 1]),
            "last_year": int(m["year"].max()),
            "spearman_last_year": _corr(rank.iloc[:, 0].to_numpy(float), rank.iloc[:, 1].to_numpy(float))}
