"""Province × year heatmap of the index, provinces grouped by theater command (house order) and, within a theater,
sorted by their mean over the years shown (highest first). Missing cells are left blank (hatched). The colour scale
runs from the smallest to the largest value drawn (a sequential scale: the index is a level, not a signed change)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.figures.common import one_method, require_columns, theater_province_order
from analysis.figures.style import GREY_MID, INK, SEQUENTIAL_CMAP, VARIABLE_LABELS, new_figure, province_labels, \
    theater_label


def heatmap_matrix(indices: pd.DataFrame, variable: str, method: str, years: tuple[int, int]) -> pd.DataFrame:
    """Province (rows, theater order) × year (columns) matrix of ``variable``; also carries ``theater_command``."""
    frame = one_method(indices, method, years)
    require_columns(frame, [variable], "indices")
    order = theater_province_order(frame, variable)
    matrix = frame.pivot(index="province_code", columns="year", values=variable).loc[order]
    theaters = frame.drop_duplicates("province_code").set_index("province_code")["theater_command"]
    matrix.insert(0, "theater_command", theaters.loc[order])
    return matrix


def plot_heatmap(indices: pd.DataFrame, variable: str, method: str, years: tuple[int, int] = (2015, 2021),
                 language: str = "en") -> plt.Figure:
    """The heatmap (see the module docstring), with theater separators and labels on the right."""
    matrix = heatmap_matrix(indices, variable, method, years)
    values = matrix.drop(columns="theater_command")
    labels = province_labels(language)
    fig, axes = new_figure(1, 1, height=6.2, width=4.6)
    ax = axes[0, 0]
    ax.grid(False)
    data = np.ma.masked_invalid(values.to_numpy(dtype=float))
    ax.set_facecolor("white")
    # colour limits: the range of the values drawn (explicit, so that the scale is the data's by construction)
    image = ax.imshow(data, aspect="auto", cmap=SEQUENTIAL_CMAP, interpolation="nearest",
                      vmin=float(data.min()), vmax=float(data.max()))
    for r, c in zip(*np.where(np.isnan(values.to_numpy(dtype=float)))):
        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, hatch="////", edgecolor=GREY_MID,
                                   linewidth=0))
    ax.set_xticks(range(values.shape[1]), [str(y) for y in values.columns])
    ax.set_yticks(range(values.shape[0]), [labels[int(c)] for c in values.index])
    ax.tick_params(length=0)
    theaters = matrix["theater_command"].to_numpy()
    boundaries = [i for i in range(1, len(theaters)) if theaters[i] != theaters[i - 1]]
    for b in boundaries:
        ax.axhline(b - 0.5, color="white", linewidth=2.2)
    starts = [0] + boundaries
    ends = boundaries + [len(theaters)]
    for s, e in zip(starts, ends):
        ax.annotate(theater_label(theaters[s], language), xy=(1.01, 1 - (s + e) / 2 / len(theaters)),
                    xycoords="axes fraction", rotation=-90, ha="left", va="center", fontsize=7, color=INK)
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = fig.colorbar(image, ax=ax, orientation="horizontal", fraction=0.035, pad=0.03)
    bar.set_label(VARIABLE_LABELS.get(variable, variable), fontsize=7)
    return fig
