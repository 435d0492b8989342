"""Coefficient plot of a heterogeneity spec: one estimate per level with its 95% confidence interval.

Input: a tidy estimate file whose terms end in ``:<column>=<level>`` (a spec with ``heterogeneity:``), with
``ci_low``/``ci_high`` as the estimator reported them (CRV1, t(G−1) for the regressions) and, where the engine wrote
it, ``n_clusters_level`` (clusters that identify each level's coefficient), printed under each label because a
coefficient identified from 5–7 clusters has unreliable cluster-robust inference. An optional pooled estimate
(the headline spec's single treatment row) is drawn as a dashed horizontal line with its interval shaded, for scale.
Theater commands are ordered as in the other figures (``style.THEATER_ORDER``); other levels in sorted order.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from analysis.figures.common import require_columns
from analysis.figures.style import GREY_FAINT, GREY_MID, INK, THEATER_ORDER, new_figure

LEVEL_TERM = re.compile(r"^(?P<base>.+):(?P<column>[A-Za-z_][A-Za-z0-9_]*)=(?P<level>[^:]+)$")


def level_coefficients(estimates: pd.DataFrame) -> pd.DataFrame:
    """Rows of a heterogeneity estimate file: columns level, estimate, ci_low, ci_high, n_clusters_level (NaN if the
    file has none), ordered by theater command where the levels are theaters, else sorted."""
    require_columns(estimates, ["term", "estimate", "ci_low", "ci_high"], "estimates")
    match = estimates["term"].astype(str).str.extract(LEVEL_TERM)
    rows = estimates.loc[match["level"].notna()].copy()
    if rows.empty:
        raise ValueError("estimates: no heterogeneity terms ('<term>:<column>=<level>')")
    out = pd.DataFrame({"level": match.loc[rows.index, "level"].to_numpy(),
                        "estimate": rows["estimate"].to_numpy(float), "ci_low": rows["ci_low"].to_numpy(float),
                        "ci_high": rows["ci_high"].to_numpy(float),
                        "n_clusters_level": (rows["n_clusters_level"].to_numpy(float)
                                             if "n_clusters_level" in rows.columns else np.nan)})
    order = {t: i for i, t in enumerate(THEATER_ORDER)}
    out["rank"] = out["level"].map(order).fillna(len(order))
    return out.sort_values(["rank", "level"], kind="mergesort").drop(columns="rank").reset_index(drop=True)


def plot_coefficients(estimates: pd.DataFrame, pooled: pd.DataFrame | None = None,
                      ylabel: str = "Effect of one s.d. of exposure", pooled_label: str = "Pooled (all provinces)"):
    """One marker per level with its 95% interval; ``pooled`` (a one-row estimate frame) as a dashed reference."""
    rows = level_coefficients(estimates)
    fig, axes = new_figure(1, 1, height=2.8)
    ax = axes[0, 0]
    x = np.arange(len(rows))
    if pooled is not None and len(pooled):
        require_columns(pooled, ["estimate", "ci_low", "ci_high"], "pooled estimates")
        p = pooled.iloc[0]
        ax.axhspan(float(p["ci_low"]), float(p["ci_high"]), color=GREY_FAINT, zorder=0, label=f"{pooled_label}, 95% CI")
        ax.axhline(float(p["estimate"]), color=GREY_MID, linestyle="--", linewidth=1.0, zorder=1)
    ax.axhline(0.0, color=INK, linewidth=0.6, zorder=1)
    ax.errorbar(x, rows["estimate"], yerr=[rows["estimate"] - rows["ci_low"], rows["ci_high"] - rows["estimate"]],
                fmt="o", color=INK, capsize=3, zorder=3, label="Theater estimate, 95% CI")
    labels = [f"{r.level}\n({int(r.n_clusters_level)} prov.)" if np.isfinite(r.n_clusters_level) else str(r.level)
              for r in rows.itertuples()]
    ax.set_xticks(x, labels)
    ax.set_ylabel(ylabel)
    ax.legend(loc="best", frameon=False, fontsize="small")
    return fig
