"""Index-method sensitivity and the claims check.

* :func:`plot_method_ranks` — every province's rank (1 = highest) in one year under each index method: the default
  method as a black dot, the other methods as grey ticks, and the range across methods as a bar. Provinces are
  ordered by their default-method rank. Ranks are computed here from indices.parquet (``method`` rank with ties
  averaged); index_sensitivity.csv supplies each method's rank correlation with the default for the labels.
* :func:`plot_claims_check` — claims (rows) × methods (columns) from claims_check.csv: filled = the claim holds
  under that method, open = it fails, cross = not evaluable; the overall verdict is printed on the right.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.figures.common import require_columns
from analysis.figures.style import GREY_DARK, GREY_LIGHT, GREY_MID, INK, VARIABLE_LABELS, new_figure, \
    province_labels


def method_ranks(indices: pd.DataFrame, variable: str, year: int) -> pd.DataFrame:
    """Province × method ranks of ``variable`` in ``year`` (1 = highest; ties share the average rank; NaN stays NaN)."""
    require_columns(indices, ["province_code", "year", "method", variable], "indices")
    frame = indices[indices["year"] == year]
    if frame.empty:
        raise ValueError(f"indices: no rows for {year}")
    wide = frame.pivot(index="province_code", columns="method", values=variable)
    return wide.rank(ascending=False, method="average")


def plot_method_ranks(indices: pd.DataFrame, sensitivity: pd.DataFrame, default_method: str,
                      variable: str = "capability_index", year: int = 2021, language: str = "en") -> plt.Figure:
    """Rank of every province across index methods (see the module docstring)."""
    require_columns(sensitivity, ["method", "spearman_comparison_year"], "index_sensitivity")
    ranks = method_ranks(indices, variable, year)
    if default_method not in ranks.columns:
        raise ValueError(f"indices: default method {default_method!r} missing")
    ranks = ranks.sort_values(default_method, kind="mergesort")
    labels = province_labels(language)
    fig, axes = new_figure(1, 1, height=5.6, width=4.8)
    ax = axes[0, 0]
    y = np.arange(len(ranks))
    others = [m for m in ranks.columns if m != default_method]
    lo, hi = ranks.min(axis=1), ranks.max(axis=1)
    ax.hlines(y, lo, hi, color=GREY_LIGHT, linewidth=3.5, zorder=1, label="Range across methods")
    for i, method in enumerate(others):
        ax.plot(ranks[method], y, linestyle="none", marker="|", markersize=6, color=GREY_MID, zorder=2,
                label="Other methods" if i == 0 else None)
    ax.plot(ranks[default_method], y, linestyle="none", marker="o", markersize=3.5, color=INK, zorder=3,
            label=f"Default ({default_method})")
    ax.set_yticks(y, [labels[int(c)] for c in ranks.index])
    ax.invert_yaxis()
    ax.set_xlabel(f"Rank in {year} (1 = highest {VARIABLE_LABELS.get(variable, variable).split(' (')[0].lower()})")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=3, fontsize=6.5)
    rho = sensitivity.set_index("method")["spearman_comparison_year"].drop(default_method, errors="ignore")
    ax.set_title(f"{len(ranks.columns)} index methods; Spearman ρ with the default in {year}: "
                 f"{rho.min():.2f}–{rho.max():.2f}", fontsize=7.5)
    return fig


PASS_MARKERS = {"yes": {"marker": "o", "markerfacecolor": INK, "color": INK},
                "no": {"marker": "o", "markerfacecolor": "white", "color": GREY_DARK},
                "not evaluable": {"marker": "x", "markerfacecolor": GREY_MID, "color": GREY_MID}}


def plot_claims_check(claims: pd.DataFrame) -> plt.Figure:
    """Claims × methods grid (see the module docstring)."""
    require_columns(claims, ["claim_id", "claim", "method", "is_default", "passes", "verdict"], "claims_check")
    unknown = sorted(set(claims["passes"].astype(str)) - set(PASS_MARKERS))
    if unknown:
        raise ValueError(f"claims_check: unknown 'passes' values {unknown}")
    claim_order = list(dict.fromkeys(claims["claim_id"]))
    defaults = claims.loc[claims["is_default"].astype(bool), "method"].unique().tolist()
    method_order = defaults + [m for m in dict.fromkeys(claims["method"]) if m not in defaults]
    fig, axes = new_figure(1, 1, height=0.35 * len(claim_order) + 1.6, width=6.5)
    ax = axes[0, 0]
    ax.grid(False)
    for outcome, style in PASS_MARKERS.items():
        part = claims[claims["passes"] == outcome]
        ax.plot(part["method"].map(method_order.index), part["claim_id"].map(claim_order.index),
                linestyle="none", markersize=6, label={"yes": "holds", "no": "fails"}.get(outcome, outcome),
                **style)
    ax.set_xticks(range(len(method_order)), method_order, rotation=60, ha="right", fontsize=6)
    ax.set_yticks(range(len(claim_order)), claim_order, fontsize=6.5)
    ax.set_xlim(-0.6, len(method_order) - 0.4)
    ax.set_ylim(len(claim_order) - 0.5, -0.5)
    ax.axvspan(-0.5, len(defaults) - 0.5, color="#f0f0f0", zorder=0)
    verdicts = claims.drop_duplicates("claim_id").set_index("claim_id")["verdict"]
    for i, claim_id in enumerate(claim_order):
        ax.annotate(verdicts[claim_id], xy=(1.01, i), xycoords=("axes fraction", "data"), va="center",
                    fontsize=6.5, color=INK)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 1.12), ncol=3)
    return fig
