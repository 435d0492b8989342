"""Synthetic-control case studies: the treated province against its synthetic control, and the gap against the
placebo gaps (every donor treated in turn; Abadie, Diamond and Hainmueller 2010, Figures 2 and 4).

Placebos whose pre-treatment RMSPE exceeds ``placebo_rmspe_cutoff`` times the treated unit's are not drawn (their
post-period gaps say nothing about a poor fit; Abadie et al. 2010 use cut-offs of 20, 5 and 2); how many were
dropped is written on the panel. Input: the paths frame of :func:`analysis.models.synth.synth_paths`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.figures.common import require_columns
from analysis.figures.style import GREY_DARK, GREY_LIGHT, GREY_MID, INK, VARIABLE_LABELS, new_figure

PATH_COLUMNS = ["unit", "time", "actual", "synthetic", "gap", "post", "role", "rmspe_pre"]


def placebo_selection(paths: pd.DataFrame, cutoff: float | None) -> tuple[pd.DataFrame, int]:
    """Placebo paths kept under the pre-RMSPE cut-off, and the number of placebo units dropped."""
    require_columns(paths, PATH_COLUMNS, "synthetic-control paths")
    treated_rmspe = float(paths.loc[paths["role"] == "treated", "rmspe_pre"].iloc[0])
    placebos = paths[paths["role"] == "placebo"]
    if cutoff is None:
        return placebos, 0
    # A perfect treated fit (RMSPE 0) would drop every placebo; compare against a floor instead.
    floor = max(treated_rmspe, 1e-12)
    keep = placebos["rmspe_pre"] <= cutoff * floor
    return placebos[keep], int(placebos.loc[~keep, "unit"].nunique())


def plot_synth(paths: pd.DataFrame, unit_label: str, outcome: str = "capability_index",
               placebo_rmspe_cutoff: float | None = 5.0, att: float | None = None, p_value: float | None = None
               ) -> plt.Figure:
    """Two panels: actual vs synthetic path of the treated unit; its gap with the placebo gaps behind it."""
    require_columns(paths, PATH_COLUMNS, "synthetic-control paths")
    treated = paths[paths["role"] == "treated"].sort_values("time")
    if treated.empty:
        raise ValueError("synthetic-control paths: no row with role 'treated'")
    first_post = treated.loc[treated["post"].astype(bool), "time"].min()
    fig, axes = new_figure(1, 2, height=2.6)
    left, right = axes[0]
    left.plot(treated["time"], treated["actual"], color=INK, linewidth=1.6, marker="o", markersize=3,
              label=unit_label)
    left.plot(treated["time"], treated["synthetic"], color=GREY_DARK, linewidth=1.3, linestyle="--",
              label=f"Synthetic {unit_label}")
    left.set_ylabel(VARIABLE_LABELS.get(outcome, outcome), fontsize=7)
    left.set_title("Actual and synthetic")
    left.legend(loc="best")
    placebos, dropped = placebo_selection(paths, placebo_rmspe_cutoff)
    first_line = True
    for _, placebo in placebos.groupby("unit", sort=True):
        placebo = placebo.sort_values("time")
        right.plot(placebo["time"], placebo["gap"], color=GREY_LIGHT, linewidth=0.7, zorder=1,
                   label="Placebos (donors)" if first_line else None)
        first_line = False
    right.plot(treated["time"], treated["gap"], color=INK, linewidth=1.6, marker="o", markersize=3, zorder=3,
               label=unit_label)
    right.axhline(0, color=GREY_MID, linewidth=0.7, linestyle="--")
    right.set_title("Gap: actual − synthetic")
    note = f"{placebos['unit'].nunique()} placebos shown"
    if placebo_rmspe_cutoff is not None:
        note += f"; {dropped} with pre-RMSPE > {placebo_rmspe_cutoff:g}× treated not shown"
    if att is not None and np.isfinite(att):
        note = f"ATT {att:+.3f}" + (f", placebo p = {p_value:.2f}" if p_value is not None else "") + "\n" + note
    right.text(0.02, 0.02, note, transform=right.transAxes, fontsize=6, color=GREY_DARK, va="bottom")
    right.legend(loc="upper left")
    for ax in (left, right):
        ax.axvline(first_post - 0.5, color=GREY_MID, linewidth=0.7, linestyle=":")
        ax.set_xlabel("Year")
    return fig
