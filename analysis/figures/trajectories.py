"""Index trajectories by theater command: small multiples, one panel per theater.

Each panel shows every province of the theater as a thin grey line, the theater's unweighted mean in bold — over
the provinces observed in every year of the figure (a balanced set: otherwise a province entering late, Tibet in
2017, moves the mean by itself; the panel title says how many provinces the mean leaves out) — and the two case-study provinces (Shaanxi and
Guangdong; in the 2016 reform Shaanxi belongs to the Central theater, Guangdong to the Southern) with their own line style and marker wherever they fall.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from analysis.figures.common import one_method, require_columns
from analysis.figures.style import (GREY_DARK, HIGHLIGHT_PROVINCES, PROVINCE_LINE_STYLE, THEATER_MEAN_STYLE, THEATER_ORDER,
                                    VARIABLE_LABELS, new_figure, province_labels, theater_label)


def theater_means(frame: pd.DataFrame, variable: str, balanced: bool = True) -> pd.DataFrame:
    """Unweighted mean of ``variable`` across the provinces of each theater, by year.

    balanced=True: only provinces with ``variable`` observed in every year present in ``frame`` enter (the set is
    the same every year, so a change of the mean is a change of its members' values, never of its membership).
    balanced=False: the provinces observed that year (an unbalanced mean). Columns: theater_command, year, mean,
    n_provinces (provinces in that year's mean).
    """
    if balanced:
        n_years = frame["year"].nunique()
        observed = frame.dropna(subset=[variable]).groupby("province_code")["year"].nunique()
        frame = frame[frame["province_code"].isin(observed.index[observed == n_years])]
    grouped = frame.groupby(["theater_command", "year"])[variable]
    return pd.DataFrame({"mean": grouped.mean(), "n_provinces": grouped.count()}).reset_index()


def plot_trajectories(indices: pd.DataFrame, variable: str, method: str, years: tuple[int, int] = (2015, 2021),
                      language: str = "en") -> plt.Figure:
    """Small multiples of ``variable`` (a column of indices.parquet) for ``method``, one panel per theater command."""
    frame = one_method(indices, method, years)
    require_columns(frame, [variable], "indices")
    labels = province_labels(language)
    means = theater_means(frame, variable)
    fig, axes = new_figure(2, 3, height=4.4, sharex=True, sharey=True)
    flat = axes.ravel()
    handles = {}
    for ax, theater in zip(flat, THEATER_ORDER):
        sub = frame[frame["theater_command"] == theater]
        for code, province in sub.groupby("province_code"):
            if int(code) in HIGHLIGHT_PROVINCES:
                continue
            (line,) = ax.plot(province["year"], province[variable], **PROVINCE_LINE_STYLE)
            handles.setdefault("provinces", line)
        m = means[means["theater_command"] == theater]
        (line,) = ax.plot(m["year"], m["mean"], **THEATER_MEAN_STYLE)
        handles.setdefault("mean", line)
        for code, style in HIGHLIGHT_PROVINCES.items():
            province = sub[sub["province_code"] == code]
            if province.empty:
                continue
            (line,) = ax.plot(province["year"], province[variable], color=style["color"],
                              linestyle=style["linestyle"], marker=style["marker"], markersize=3, linewidth=1.3,
                              zorder=5)
            handles[code] = line
        n_all, n_mean = sub["province_code"].nunique(), int(m["n_provinces"].max()) if len(m) else 0
        ax.set_title(f"{theater_label(theater, language)} ({n_all} provinces)")
        if n_mean < n_all:  # a province observed only in some years is drawn but left out of the mean: say so
            ax.text(0.02, 0.98, f"mean of the {n_mean} observed every year" if language == "en"
                    else f"均值：{n_mean} 个各年均有数据的省份", transform=ax.transAxes, ha="left", va="top",
                    fontsize=6, color=GREY_DARK)
        ax.set_xticks(range(years[0], years[1] + 1, 2))
    legend_ax = flat[len(THEATER_ORDER)]
    legend_ax.axis("off")
    entries = [(handles["provinces"], "Province" if language == "en" else "省份"),
               (handles["mean"], "Theater mean (unweighted; provinces\nobserved every year)" if language == "en"
                else "战区均值（各年均有数据的省份）")]
    entries += [(handles[c], labels[c]) for c in HIGHLIGHT_PROVINCES if c in handles]
    legend_ax.legend([h for h, _ in entries], [t for _, t in entries], loc="center left")
    for ax in axes[:, 0]:
        ax.set_ylabel(VARIABLE_LABELS.get(variable, variable), fontsize=7)
    for ax in axes[1, :2]:
        ax.set_xlabel("Year" if language == "en" else "年份")
    axes[0, 2].tick_params(labelbottom=True)  # the panel below it holds the legend, so show its years here
    return fig
