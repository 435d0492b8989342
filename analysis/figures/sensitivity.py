"""Index-method sensitivity and the claims check.

* :func:`plot_method_ranks` — every province's rank (1 = highest) in one year under each index method, as a
  province × method matrix whose columns are named by the method ids of configs/index.yaml (the default first), each
  cell printing the rank and coloured by its shift from the default's rank. Provinces are ordered by their
  default-method rank. Ranks are computed here from indices.parquet (``method`` rank with ties averaged);
  index_sensitivity.csv supplies each method's rank correlation with the default for the column labels.
* :func:`plot_claims_check` — every claim × reading × metric of claims_check.csv, one panel per claim × reading
  (rows: metrics). Threshold claims: our value under each method on a value axis against the threshold (dashed),
  the marker saying whether the claim holds, fails or is unreachable by construction under that method (with the
  method's ceiling, bound ÷ start value, as a tick), the default method boxed. Rank claims (theater commands), which
  have no threshold: holds / fails per method (columns). The verdict over methods is printed on the right.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.figures.common import require_columns
from analysis.figures.style import DIVERGING_CMAP, GREY_DARK, GREY_FAINT, GREY_LIGHT, GREY_MID, INK, \
    VARIABLE_LABELS, new_figure, province_labels


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
    """Rank of every province under every index method, each method a named column (see the module docstring).

    A matrix, not overplotted markers, so that every method is identified by its name (configs/index.yaml): rows are
    provinces in default-method order, columns the methods (the default first, then by Spearman correlation with it,
    highest first, from index_sensitivity.csv), each cell the province's rank under that method. The cell colour is the
    rank's shift from the default (rank under the method − rank under the default; positive = lower in the ranking),
    on a diverging scale centred at 0 and symmetric to the largest absolute shift drawn. A province a method does not
    rank in that year (not observed) is a blank cell with a dash.
    """
    require_columns(sensitivity, ["method", "spearman_comparison_year"], "index_sensitivity")
    ranks = method_ranks(indices, variable, year)
    if default_method not in ranks.columns:
        raise ValueError(f"indices: default method {default_method!r} missing")
    rho = sensitivity.drop_duplicates("method").set_index("method")["spearman_comparison_year"]
    others = sorted((m for m in ranks.columns if m != default_method),
                    key=lambda m: (-rho.get(m, np.nan) if pd.notna(rho.get(m, np.nan)) else np.inf, m))
    ranks = ranks.sort_values(default_method, kind="mergesort")[[default_method, *others]]
    shift = ranks.sub(ranks[default_method], axis=0)
    bound = float(np.nanmax(np.abs(shift.to_numpy()))) or 1.0
    labels = province_labels(language)
    fig, axes = new_figure(1, 1, height=6.6, width=6.0)
    ax = axes[0, 0]
    ax.grid(False)
    image = ax.imshow(np.ma.masked_invalid(shift.to_numpy(dtype=float)), aspect="auto", cmap=DIVERGING_CMAP,
                      vmin=-bound, vmax=bound, interpolation="nearest", gid="method_ranks")
    for (r, c), value in np.ndenumerate(ranks.to_numpy(dtype=float)):
        text = "–" if np.isnan(value) else (f"{value:.0f}" if value == round(value) else f"{value:.1f}")
        strong = not np.isnan(shift.iat[r, c]) and abs(shift.iat[r, c]) > 0.6 * bound
        ax.text(c, r, text, ha="center", va="center", fontsize=5.2, color="white" if strong else INK)
    ax.axvline(0.5, color=INK, linewidth=1.0)
    ax.set_yticks(range(len(ranks)), [labels[int(code)] for code in ranks.index], fontsize=6.5)
    names = [f"{m} (default)" if m == default_method else f"{m}  ρ {rho.get(m, np.nan):.2f}" for m in ranks.columns]
    ax.set_xticks(range(len(ranks.columns)), names, rotation=60, ha="left", rotation_mode="anchor", fontsize=6.2)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = fig.colorbar(image, ax=ax, orientation="horizontal", fraction=0.03, pad=0.02)
    what = VARIABLE_LABELS.get(variable, variable).split(" (")[0].lower()
    bar.set_label(f"Rank shift from the default (positive: lower rank); cells: rank in {year}, 1 = highest {what}",
                  fontsize=6.5)
    bar.ax.tick_params(labelsize=6)
    ax.set_title(f"{len(ranks.columns)} index methods (configs/index.yaml); ρ: Spearman correlation with the default "
                 f"in {year}, {rho.drop(default_method, errors='ignore').min():.2f}–"
                 f"{rho.drop(default_method, errors='ignore').max():.2f}", fontsize=7.2)
    return fig


PASS_MARKERS = {"yes": {"marker": "o", "markerfacecolor": INK, "color": INK, "label": "holds"},
                "no": {"marker": "o", "markerfacecolor": "white", "color": GREY_DARK, "label": "fails"},
                "unreachable": {"marker": "v", "markerfacecolor": GREY_MID, "color": GREY_MID,
                                "label": "unreachable by construction"},
                "not evaluable": {"marker": "x", "markerfacecolor": GREY_MID, "color": GREY_MID,
                                  "label": "not evaluable"}}
CLAIM_METRIC_LABELS = {"capability_index": "D (capability)", "comprehensive_development": "T (development)",
                       "transfer_civ_to_mil": "civ → mil", "transfer_mil_to_civ": "mil → civ"}
CLAIMS_COLUMNS = ["claim_id", "reading", "claim", "reading_text", "metric", "is_natural_metric", "threshold",
                  "method", "is_default", "index_window", "value", "max_attainable", "passes", "verdict"]


def _claims_panel_title(part: pd.DataFrame) -> str:
    first = part.iloc[0]
    what = f" — {first['reading_text']}" if isinstance(first["reading_text"], str) and first["reading_text"] else ""
    return textwrap.fill(f"{first['claim']} [{first['reading']}{what}; indices {first['index_window']}]", 125)


def _threshold_panel(ax, part: pd.DataFrame, metrics: list[str]) -> None:
    """Our value per method and metric against the threshold (one row per metric)."""
    threshold = float(part["threshold"].iloc[0])
    y = part["metric"].map(metrics.index)
    ax.axvline(threshold, color=INK, linestyle="--", linewidth=0.8, zorder=1)
    ceiling = part[part["passes"] == "unreachable"]
    ax.plot(ceiling["max_attainable"], ceiling["metric"].map(metrics.index), linestyle="none", marker="|",
            markersize=7, color=GREY_LIGHT, zorder=2)
    for outcome, style in PASS_MARKERS.items():
        sel = part["passes"] == outcome
        style = {k: v for k, v in style.items() if k != "label"}
        ax.plot(part.loc[sel, "value"], y[sel], linestyle="none", markersize=4, alpha=0.85, zorder=3, **style)
    default = part[part["is_default"].astype(bool)]
    ax.plot(default["value"], default["metric"].map(metrics.index), linestyle="none", marker="s", markersize=8,
            markerfacecolor="none", markeredgecolor=INK, markeredgewidth=0.8, zorder=4)
    ax.annotate(f"threshold {threshold:g}", xy=(threshold, -0.55), xycoords="data", ha="center", va="bottom",
                fontsize=6, color=INK)


def _rank_panel(ax, part: pd.DataFrame, metrics: list[str], methods: list[str], n_default: int) -> None:
    """Holds / fails per method (columns) and metric (rows) for a rule without a threshold."""
    for outcome, style in PASS_MARKERS.items():
        sel = part[part["passes"] == outcome]
        style = {k: v for k, v in style.items() if k != "label"}
        ax.plot(sel["method"].map(methods.index), sel["metric"].map(metrics.index), linestyle="none", markersize=5,
                **style)
    ax.axvspan(-0.5, n_default - 0.5, color=GREY_FAINT, zorder=0)
    ax.set_xlim(-0.6, len(methods) - 0.4)
    ax.set_xticks(range(len(methods)))
    ax.grid(False)


def plot_claims_check(claims: pd.DataFrame) -> plt.Figure:
    """Claims × readings × metrics against their thresholds, method by method (see the module docstring)."""
    require_columns(claims, CLAIMS_COLUMNS, "claims_check")
    unknown = sorted(set(claims["passes"].astype(str)) - set(PASS_MARKERS))
    if unknown:
        raise ValueError(f"claims_check: unknown 'passes' values {unknown}")
    claims = claims.copy()
    claims["is_default"] = claims["is_default"].astype(bool)
    panels = list(dict.fromkeys(zip(claims["claim_id"], claims["reading"])))
    has_threshold = {key: bool(part["threshold"].notna().all())
                     for key, part in claims.groupby(["claim_id", "reading"], sort=False)}
    panels = [k for k in panels if has_threshold[k]] + [k for k in panels if not has_threshold[k]]
    defaults = claims.loc[claims["is_default"], "method"].unique().tolist()
    methods = defaults + [m for m in dict.fromkeys(claims["method"]) if m not in defaults]
    heights = [claims.loc[(claims["claim_id"] == c) & (claims["reading"] == r), "metric"].nunique() + 1.2
               for c, r in panels]
    fig, axes = new_figure(len(panels), 1, height=0.2 * sum(heights) + 1.0 + 0.9, width=6.5,
                           gridspec_kw={"height_ratios": heights})
    last_rank = max((i for i, k in enumerate(panels) if not has_threshold[k]), default=None)
    for i, key in enumerate(panels):
        ax = axes[i, 0]
        part = claims[(claims["claim_id"] == key[0]) & (claims["reading"] == key[1])]
        metrics = list(dict.fromkeys(part["metric"]))
        if has_threshold[key]:
            _threshold_panel(ax, part, metrics)
        else:
            _rank_panel(ax, part, metrics, methods, len(defaults))
            if i == last_rank:
                ax.set_xticklabels(methods, rotation=60, ha="right", fontsize=6)
            else:
                ax.set_xticklabels([])
        natural = part.drop_duplicates("metric").set_index("metric")["is_natural_metric"].astype(bool)
        ax.set_yticks(range(len(metrics)), [CLAIM_METRIC_LABELS.get(m, m) + (" *" if natural[m] else "")
                                            for m in metrics], fontsize=6.5)
        ax.set_ylim(len(metrics) - 0.5, -0.9 if has_threshold[key] else -0.5)
        ax.set_title(_claims_panel_title(part), fontsize=6.8, loc="left")
        verdicts = part.drop_duplicates("metric").set_index("metric")["verdict"]
        for j, metric in enumerate(metrics):
            ax.annotate(verdicts[metric], xy=(1.01, j), xycoords=("axes fraction", "data"), va="center",
                        fontsize=6, color=INK)
    handles = [plt.Line2D([], [], linestyle="none", markersize=5, **style) for style in PASS_MARKERS.values()]
    handles += [plt.Line2D([], [], linestyle="none", marker="|", markersize=7, color=GREY_LIGHT,
                           label="ceiling of an unreachable method (bound ÷ start value)"),
                plt.Line2D([], [], linestyle="none", marker="s", markersize=7, markerfacecolor="none",
                           markeredgecolor=INK, label=f"default method ({', '.join(defaults)}; shaded column)"),
                plt.Line2D([], [], color=INK, linestyle="--", linewidth=0.8, label="threshold of the claim")]
    fig.legend(handles=handles, loc="outside upper center", ncol=3, fontsize=6.2)
    fig.text(0.0, 0.0, "* the metric the claim's wording most naturally means. Right: verdict over methods.",
             fontsize=6, color=GREY_DARK, ha="left", va="top")
    return fig
