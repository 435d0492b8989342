"""Synthetic-control case studies: the treated province against its synthetic control, and the gap against the
placebo gaps (every donor treated in turn; Abadie, Diamond and Hainmueller 2010, Figures 2 and 4).

Placebos whose pre-treatment RMSPE exceeds ``placebo_rmspe_cutoff`` times the treated unit's are not drawn (their
post-period gaps say nothing about a poor fit; Abadie et al. 2010 use cut-offs of 20, 5 and 2). With a perfect
treated fit (pre-RMSPE 0) the rule keeps only the placebos that fit perfectly too. The panel says what the filter
did ("n of J placebos with pre-RMSPE > k x treated not shown"). Where the classic weights are not unique, the range
of the gap over all weights with the optimal pre-period fit (``identified_low``/``identified_high`` of the
estimates) is shaded. Inputs: the paths and weights tables and the estimates that the estimation stage writes
(:func:`analysis.models.synth.synth_outputs`); nothing is refitted here.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.figures.common import require_columns
from analysis.figures.style import GREY_DARK, GREY_FAINT, GREY_LIGHT, GREY_MID, INK, VARIABLE_LABELS, new_figure

PATH_COLUMNS = ["unit", "time", "actual", "synthetic", "gap", "post", "role", "rmspe_pre"]


def placebo_selection(paths: pd.DataFrame, cutoff: float | None) -> tuple[pd.DataFrame, int]:
    """Placebo paths kept under the pre-RMSPE cut-off, and the number of placebo units dropped.

    Kept: pre-RMSPE <= ``cutoff`` x the treated unit's (with a perfect treated fit, RMSPE 0: the placebos that fit
    perfectly too, up to 1e-12 for rounding). ``cutoff`` None keeps all."""
    require_columns(paths, PATH_COLUMNS, "synthetic-control paths")
    treated_rmspe = float(paths.loc[paths["role"] == "treated", "rmspe_pre"].iloc[0])
    placebos = paths[paths["role"] == "placebo"]
    if cutoff is None:
        return placebos, 0
    floor = max(treated_rmspe, 1e-12)
    keep = placebos["rmspe_pre"] <= cutoff * floor
    return placebos[keep], int(placebos.loc[~keep, "unit"].nunique())


def _row(estimates: pd.DataFrame, term: str) -> pd.Series | None:
    rows = estimates.loc[estimates["term"] == term]
    return None if rows.empty else rows.iloc[0]


def estimate_note(estimates: pd.DataFrame) -> str:
    """Lines for the gap panel: ATT and how the weights were chosen, the identified range of the ATT, the p-value
    or why there is none."""
    att = _row(estimates, "ATT")
    if att is None:
        raise ValueError("synthetic-control estimates: no 'ATT' row")
    how = str(att.get("synth_method", "classic"))
    if how == "penalized":
        lam = float(att.get("penalty_lambda", 0.0))
        how += " (λ→0+)" if att.get("penalty_rule") == "min" else f" (λ = {lam:g})"
    lines = [f"ATT {float(att['estimate']):+.4f}, {how} weights"]
    low, high = att.get("identified_low", np.nan), att.get("identified_high", np.nan)
    if pd.notna(low) and pd.notna(high):
        lines.append(f"Identified range of the ATT: [{low:+.4f}, {high:+.4f}]")
    if pd.notna(att["p_value"]):
        lines.append(f"Placebo p = {float(att['p_value']):.2f} (RMSPE ratio)")
    elif "p_value_statistic" in estimates.columns and str(att["p_value_statistic"]).startswith("none: treated"):
        lines.append("No placebo p-value: treated pre-RMSPE = 0 (ratio undefined)")
    return "\n".join(lines)


def in_time_note(estimates: pd.DataFrame) -> str:
    """'In-time placebos (mean gap): 2017 +0.0012, ...' from the ``placebo-in-time t0=<year>`` rows ('' if none)."""
    in_time = estimates[estimates["term"].astype(str).str.startswith("placebo-in-time")]
    if in_time.empty:
        return ""
    return "In-time placebos (mean gap): " + ", ".join(
        f"{term.split('=')[-1]} {value:+.4f}" for term, value in zip(in_time["term"], in_time["estimate"]))


def plot_synth(paths: pd.DataFrame, unit_label: str, outcome: str = "capability_index",
               placebo_rmspe_cutoff: float | None = 5.0, estimates: pd.DataFrame | None = None,
               weights: pd.DataFrame | None = None, unit_names: dict | None = None) -> plt.Figure:
    """Two panels: actual vs synthetic path of the treated unit; its gap with the placebo gaps behind it.

    ``estimates`` (the spec's estimate table) adds the ATT note, the identified range of the gap (shaded) and the
    in-time placebos; ``weights`` (unit, weight) lists the largest donor weights under the left panel, with
    ``unit_names`` mapping unit ids to names."""
    require_columns(paths, PATH_COLUMNS, "synthetic-control paths")
    treated = paths[paths["role"] == "treated"].sort_values("time")
    if treated.empty:
        raise ValueError("synthetic-control paths: no row with role 'treated'")
    first_post = treated.loc[treated["post"].astype(bool), "time"].min()
    # Bottom row: two text-only strips for the notes (kept out of the layout engine so long lines cannot squeeze the
    # panels; savefig's tight bounding box still includes them).
    fig, axes = new_figure(2, 2, height=3.3, gridspec_kw={"height_ratios": [5.0, 1.2]})
    left, right = axes[0]
    for strip in axes[1]:
        strip.axis("off")
    left.plot(treated["time"], treated["actual"], color=INK, linewidth=1.6, marker="o", markersize=3,
              label=unit_label)
    left.plot(treated["time"], treated["synthetic"], color=GREY_DARK, linewidth=1.3, linestyle="--",
              label=f"Synthetic {unit_label}")
    left.set_ylabel(VARIABLE_LABELS.get(outcome, outcome), fontsize=7)
    left.set_title("Actual and synthetic")
    left.legend(loc="best")
    left_note = []
    if weights is not None:
        require_columns(weights, ["unit", "weight"], "synthetic-control weights")
        top = weights[weights["weight"] > 0.005].sort_values(["weight", "unit"], ascending=[False, True]).head(5)
        names = unit_names or {}
        shown = [f"{names.get(u, u)} {w:.2f}" for u, w in zip(top["unit"], top["weight"])]
        left_note.append("Largest donor weights: " + ", ".join(shown[:3]))
        if shown[3:]:
            left_note.append(", ".join(shown[3:]))
    if estimates is not None and in_time_note(estimates):
        left_note.append(in_time_note(estimates))
    axes[1][0].text(0.0, 1.0, "\n".join(left_note), transform=axes[1][0].transAxes, fontsize=6, color=GREY_DARK,
                    va="top", in_layout=False)

    placebos, dropped = placebo_selection(paths, placebo_rmspe_cutoff)
    first_line = True
    for _, placebo in placebos.groupby("unit", sort=True):
        placebo = placebo.sort_values("time")
        right.plot(placebo["time"], placebo["gap"], color=GREY_LIGHT, linewidth=0.7, zorder=1,
                   label="Placebos (donors)" if first_line else None)
        first_line = False
    if estimates is not None:
        per_year = estimates[estimates["term"].astype(str).str.startswith("ATT t=")]
        if {"identified_low", "identified_high"} <= set(per_year.columns) and per_year["identified_low"].notna().any():
            years = per_year["term"].str.split("=").str[-1].astype(int)
            right.fill_between(years, per_year["identified_low"], per_year["identified_high"], color=GREY_FAINT,
                               edgecolor=GREY_MID, linewidth=0.5, zorder=2,
                               label="Identified range (all best-fit weights)")
    right.plot(treated["time"], treated["gap"], color=INK, linewidth=1.6, marker="o", markersize=3, zorder=3,
               label=unit_label)
    right.axhline(0, color=GREY_MID, linewidth=0.7, linestyle="--")
    right.set_title("Gap: actual − synthetic")
    n_placebos = int(paths.loc[paths["role"] == "placebo", "unit"].nunique())
    note = f"{n_placebos - dropped} of {n_placebos} placebos shown"
    if placebo_rmspe_cutoff is not None:
        treated_rmspe = float(treated["rmspe_pre"].iloc[0])
        note += (f";\n{dropped} hidden: pre-RMSPE > {placebo_rmspe_cutoff:g}× the treated's "
                 f"({treated_rmspe:.2g})")
    if estimates is not None:
        note = estimate_note(estimates) + "\n" + note
    axes[1][1].text(0.0, 1.0, note, transform=axes[1][1].transAxes, fontsize=6, color=GREY_DARK, va="top",
                    in_layout=False)
    right.legend(loc="lower left", fontsize=5.5)
    for ax in (left, right):
        ax.axvline(first_post - 0.5, color=GREY_MID, linewidth=0.7, linestyle=":")
        ax.set_xlabel("Year")
    return fig
