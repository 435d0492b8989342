"""Event-study plots: coefficients by event time with confidence bands; Honest DiD bounds where the file has them.

Input: tidy estimate files (one per spec) with terms ``e=k`` (regression event studies) or ``ATT e=k`` (staggered
estimators) and ``ci_low``/``ci_high`` as the estimator reported them. The reference period (omitted, zero by
construction) is drawn as an open marker at zero. Several specs on one axis are dodged horizontally.
Honest DiD rows (``honest SD M=0.01 e=0``, ``honest RM Mbar=0.5 average``; Rambachan and Roth 2023) are drawn in a
second panel: the robust confidence set against the restriction's parameter, drawn as a segment from its bounds,
with the original point estimate as an open marker (a robust set need not contain it).
"""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.figures.common import require_columns
from analysis.figures.style import GREY_DARK, GREY_MID, INK, new_figure

EVENT_TERM = re.compile(r"^(?:ATT )?e=(-?\d+)$")
HONEST_TERM = re.compile(r"^honest (?P<restriction>\w+) (?P<parameter>\w+)=(?P<value>[-+.\deE]+) (?P<target>.+)$")
#: Markers and line styles that stay distinct in greyscale, in the order specs are listed.
SERIES_STYLES = (
    {"color": INK, "marker": "o", "linestyle": "-"},
    {"color": "#b2182b", "marker": "s", "linestyle": "--"},
    {"color": "#2166ac", "marker": "^", "linestyle": ":"},
    {"color": GREY_DARK, "marker": "D", "linestyle": "-."},
)


def event_coefficients(estimates: pd.DataFrame, reference_period: int | None = -1) -> pd.DataFrame:
    """Event-time rows of a tidy estimate file: columns event_time, estimate, ci_low, ci_high, reference.

    Adds the reference period as a zero row with NaN bounds (unless the file already has it or it is ``None``).
    """
    require_columns(estimates, ["term", "estimate", "ci_low", "ci_high"], "estimates")
    match = estimates["term"].astype(str).str.extract(EVENT_TERM)[0]
    rows = estimates.loc[match.notna(), ["estimate", "ci_low", "ci_high"]].astype(float)
    rows.insert(0, "event_time", match.dropna().astype(int).to_numpy())
    if rows.empty:
        raise ValueError("estimates: no event-time terms ('e=k' or 'ATT e=k')")
    rows["reference"] = False
    if reference_period is not None and reference_period not in set(rows["event_time"]):
        rows = pd.concat([rows, pd.DataFrame([{"event_time": reference_period, "estimate": 0.0, "ci_low": np.nan,
                                               "ci_high": np.nan, "reference": True}])], ignore_index=True)
    return rows.sort_values("event_time", kind="mergesort").reset_index(drop=True)


def honest_bounds(estimates: pd.DataFrame) -> pd.DataFrame:
    """Honest DiD rows parsed: restriction (SD/RM), parameter (M/Mbar), value, target, estimate, ci_low, ci_high."""
    parsed = estimates["term"].astype(str).str.extract(HONEST_TERM)
    keep = parsed["restriction"].notna()
    out = parsed[keep].copy()
    out["value"] = out["value"].astype(float)
    for col in ("estimate", "ci_low", "ci_high"):
        out[col] = estimates.loc[keep, col].astype(float).to_numpy()
    return out.reset_index(drop=True)


def plot_event_study(series: dict[str, pd.DataFrame], reference_period: int | None = -1,
                     ylabel: str = "Effect on the index", treatment_label: str = "Event time (years)"
                     ) -> plt.Figure:
    """Event-study figure for one or more estimate files (``label -> tidy estimates``), plus Honest DiD panel(s).

    Point estimates with 95% CI whiskers and a shaded band for the first series; a dashed zero line and a dotted
    line between the reference period and the first treated period.
    """
    honest = {label: honest_bounds(est) for label, est in series.items()}
    honest = {k: v for k, v in honest.items() if not v.empty}
    n_cols = 1 + (1 if honest else 0)
    fig, axes = new_figure(1, n_cols, height=2.8, width=6.5 if n_cols == 2 else 5.0,
                           gridspec_kw={"width_ratios": [2, 1]} if n_cols == 2 else None)
    ax = axes[0, 0]
    n = len(series)
    offsets = np.linspace(-0.12 * (n - 1), 0.12 * (n - 1), n) if n > 1 else [0.0]
    for i, (label, estimates) in enumerate(series.items()):
        coef = event_coefficients(estimates, reference_period)
        style = SERIES_STYLES[i % len(SERIES_STYLES)]
        x = coef["event_time"].to_numpy() + offsets[i]
        est = coef[~coef["reference"]]
        xe = est["event_time"].to_numpy() + offsets[i]
        if i == 0 and n == 1:
            ax.fill_between(xe, est["ci_low"], est["ci_high"], color=GREY_MID, alpha=0.25, linewidth=0,
                            label="95% CI")
        ax.errorbar(xe, est["estimate"], yerr=[est["estimate"] - est["ci_low"], est["ci_high"] - est["estimate"]],
                    color=style["color"], marker=style["marker"], markersize=3.5, linestyle="none",
                    elinewidth=0.9, capsize=1.5, label=label)
        ax.plot(x, coef["estimate"], color=style["color"], linestyle=style["linestyle"], linewidth=0.8)
        ref = coef[coef["reference"]]
        ax.plot(ref["event_time"] + offsets[i], ref["estimate"], marker=style["marker"], markersize=3.5,
                markerfacecolor="white", color=style["color"], linestyle="none")
    ax.axhline(0, color=GREY_DARK, linewidth=0.7, linestyle="--")
    if reference_period is not None:
        ax.axvline(reference_period + 0.5, color=GREY_MID, linewidth=0.7, linestyle=":")
    ax.set_xlabel(treatment_label)
    ax.set_ylabel(ylabel)
    ax.legend(loc="best")
    if honest:
        hx = axes[0, 1]
        # Several series share the parameter grid: dodge them by a fraction of the grid's smallest step.
        values = np.unique(np.concatenate([b["value"].to_numpy() for b in honest.values()]))
        step = float(np.diff(values).min()) if len(values) > 1 else 1.0
        dodge = np.linspace(-0.15, 0.15, len(honest)) * step if len(honest) > 1 else [0.0]
        position = {label: j for j, label in enumerate(series)}  # same colour and marker as in the left panel
        for i, (label, bounds) in enumerate(honest.items()):
            style = SERIES_STYLES[position[label] % len(SERIES_STYLES)]
            for (restriction, parameter, target), group in bounds.groupby(["restriction", "parameter", "target"]):
                group = group.sort_values("value")
                # A robust set is drawn as a segment from its own bounds: it need not contain the point estimate
                # (an Honest DiD set is centred on the bias-corrected estimand, not on the estimate), so the
                # estimate is a separate marker and no error bar is derived from it.
                x = group["value"].to_numpy() + dodge[i]
                hx.vlines(x, group["ci_low"], group["ci_high"], color=style["color"], linewidth=1.1,
                          label=f"{label}: {restriction}, {target}")
                hx.plot(x, group["estimate"], color=style["color"], marker=style["marker"], markersize=3,
                        markerfacecolor="white", linestyle="none")
            hx.set_xlabel("Restriction parameter (M or M̄)")
        hx.axhline(0, color=GREY_DARK, linewidth=0.7, linestyle="--")
        hx.set_title("Honest DiD robust 95% sets")
        hx.legend(loc="best", fontsize=6)
    return fig
