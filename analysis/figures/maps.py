"""Choropleth maps of the index by province, with theater-command boundaries drawn over the provinces.

Three panels: the level in the first year, the level in the last year (one shared colour scale, ``cividis``, from
the smallest to the largest value drawn in either year) and the change between them (with gains and losses: a
diverging scale centred on zero, symmetric to the largest absolute change; with one sign only: a one-sided scale from
zero, see :func:`map_norms`). Provinces with a missing value are hatched, not coloured. Hong Kong,
Macau and Taiwan, outside the sample, are drawn in plain light grey and named in the legend ("not in sample"); one
whose geometry the boundary package lacks is named as not drawn. Theater commands are the dissolve of their provinces
(:func:`analysis.figures.geo.theater_shapes`), drawn as thick dark outlines and labelled. Collections carry ``gid``
"provinces" / "provinces_missing" / "not_in_sample" / "theaters" so tests can count what is drawn.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import PatchCollection
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.patches import Patch, PathPatch
from matplotlib.path import Path as MplPath

from analysis.figures.common import one_method, require_columns
from analysis.figures.geo import outside_sample_shapes, polygon_rings, province_shapes, theater_shapes
from analysis.figures.style import (DIVERGING_CMAP, GREY_FAINT, GREY_MID, INK, SEQUENTIAL_CMAP, VARIABLE_LABELS,
                                    new_figure, theater_label)


def geometry_patch(geometry) -> PathPatch:
    """One matplotlib patch for a (multi)polygon, holes included (even-odd fill via closed sub-paths)."""
    vertices, codes = [], []
    for ring in polygon_rings(geometry):
        vertices.append(ring)
        codes.append(np.r_[MplPath.MOVETO, np.full(len(ring) - 2, MplPath.LINETO), MplPath.CLOSEPOLY])
    return PathPatch(MplPath(np.concatenate(vertices), np.concatenate(codes).astype(np.uint8)))


#: How regions outside the sample and missing values are drawn (also the legend's patches).
NOT_IN_SAMPLE_STYLE = {"facecolor": GREY_FAINT, "edgecolor": GREY_MID, "linewidth": 0.3}
MISSING_STYLE = {"facecolor": "white", "edgecolor": GREY_MID, "hatch": "////", "linewidth": 0.3}


def draw_choropleth(ax, shapes: pd.DataFrame, values: pd.Series, cmap: str, norm, theaters: pd.DataFrame,
                    language: str = "en", outside: pd.DataFrame | None = None):
    """Fill each province by ``values`` (indexed by province_code), hatch missing ones, grey the regions ``outside``
    the sample (columns ``geometry``), outline theaters.

    Returns the province collection (a ScalarMappable for the colour bar).
    """
    vals = shapes["province_code"].map(values).to_numpy(dtype=float)
    observed = ~np.isnan(vals)
    patches = [geometry_patch(g) for g in shapes["geometry"]]
    filled = PatchCollection([p for p, ok in zip(patches, observed) if ok], cmap=cmap, norm=norm,
                             edgecolor="white", linewidth=0.3, gid="provinces")
    filled.set_array(vals[observed])
    ax.add_collection(filled)
    if (~observed).any():
        missing = PatchCollection([p for p, ok in zip(patches, observed) if not ok], gid="provinces_missing",
                                  **MISSING_STYLE)
        ax.add_collection(missing)
    if outside is not None and len(outside):
        ax.add_collection(PatchCollection([geometry_patch(g) for g in outside["geometry"]], gid="not_in_sample",
                                          **NOT_IN_SAMPLE_STYLE))
    outline = PatchCollection([geometry_patch(g) for g in theaters["geometry"]], facecolor="none", edgecolor=INK,
                              linewidth=1.1, gid="theaters")
    ax.add_collection(outline)
    for theater, geometry in zip(theaters["theater_command"], theaters["geometry"]):
        point = geometry.representative_point()
        label = theater_label(theater, language).replace(" theater", "")
        ax.annotate(label, (point.x, point.y), ha="center", va="center", fontsize=6.5, color=INK,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.75})
    drawn = list(shapes["geometry"]) + (list(outside["geometry"]) if outside is not None else [])
    minx, miny, maxx, maxy = np.array([g.bounds for g in drawn]).T
    pad = 0.01
    ax.set_xlim(minx.min() - pad, maxx.max() + pad)
    ax.set_ylim(miny.min() - pad, maxy.max() + pad)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return filled


def map_values(indices: pd.DataFrame, variable: str, method: str, first_year: int, last_year: int) -> pd.DataFrame:
    """Province × {first, last, change} values of ``variable`` (change = last − first; missing if either is)."""
    frame = one_method(indices, method)
    require_columns(frame, [variable], "indices")
    wide = frame.pivot(index="province_code", columns="year", values=variable)
    for year in (first_year, last_year):
        if year not in wide.columns:
            raise ValueError(f"indices: no {variable} values for {year} (method {method!r})")
    return pd.DataFrame({"first": wide[first_year], "last": wide[last_year],
                         "change": wide[last_year] - wide[first_year]})


def plot_index_maps(indices: pd.DataFrame, variable: str, method: str, first_year: int = 2015,
                    last_year: int = 2021, language: str = "en", shapes: pd.DataFrame | None = None) -> plt.Figure:
    """Three maps: ``variable`` in ``first_year``, in ``last_year``, and its change (see the module docstring)."""
    shapes = province_shapes() if shapes is None else shapes
    outside, absent = outside_sample_shapes()
    theaters = theater_shapes(shapes)
    values = map_values(indices, variable, method, first_year, last_year)
    fig, axes = new_figure(1, 3, height=2.4)
    level_norm, change_norm, change_cmap = map_norms(values)
    label = VARIABLE_LABELS.get(variable, variable)
    panels = [(str(first_year), values["first"], SEQUENTIAL_CMAP, level_norm, label),
              (str(last_year), values["last"], SEQUENTIAL_CMAP, level_norm, label),
              (f"Change {first_year}–{last_year}", values["change"], change_cmap, change_norm,
               CHANGE_LABELS[change_cmap])]
    for ax, (title, vals, cmap, norm, bar_label) in zip(axes[0], panels):
        mappable = draw_choropleth(ax, shapes, vals, cmap, norm, theaters, language, outside)
        ax.set_title(title)
        bar = fig.colorbar(mappable, ax=ax, orientation="horizontal", fraction=0.06, pad=0.02, shrink=0.85)
        bar.set_label(bar_label, fontsize=6.5)
        bar.ax.tick_params(labelsize=6)
    handles = []
    if values.isna().any().any():
        handles.append(Patch(label="Not observed", **MISSING_STYLE))
    if len(outside):
        handles.append(Patch(label=f"Not in sample: {', '.join(outside['name'])}", **NOT_IN_SAMPLE_STYLE))
    if absent:
        handles.append(Patch(facecolor="none", edgecolor="none",
                             label=f"{', '.join(absent)}: not in sample, no boundary in the map data (not drawn)"))
    fig.legend(handles=handles, loc="outside upper center", ncol=len(handles), fontsize=6.5, frameon=False)
    return fig


#: One-sided scales for a change of one sign: the gain / loss halves of DIVERGING_CMAP ("PuOr_r": orange = gain).
GAIN_CMAP, LOSS_CMAP = "Oranges", "Purples_r"
CHANGE_LABELS = {DIVERGING_CMAP: "Change (0 = no change)", GAIN_CMAP: "Change (every province drawn gained; from 0)",
                 LOSS_CMAP: "Change (every province drawn lost; to 0)"}


def map_norms(values: pd.DataFrame) -> tuple[Normalize, Normalize, str]:
    """Colour scales that fit the data drawn: (levels, change, change colour map).

    Levels: from the smallest to the largest value of either year (one scale for both panels, so colours compare
    across years). Change: with gains and losses, diverging around 0 and symmetric to the largest absolute change (equal
    colours mean equal gains and losses); when every drawn change has one sign, a one-sided scale from 0 (no change,
    the lightest colour) to the largest change, so that the colours are not spent on values that do not occur.
    """
    level = pd.concat([values["first"], values["last"]])
    level_norm = Normalize(vmin=float(np.nanmin(level)), vmax=float(np.nanmax(level)))
    low, high = float(np.nanmin(values["change"])), float(np.nanmax(values["change"]))
    if low >= 0:
        return level_norm, Normalize(vmin=0.0, vmax=high or 1.0), GAIN_CMAP
    if high <= 0:
        return level_norm, Normalize(vmin=low, vmax=0.0), LOSS_CMAP
    bound = max(-low, high)
    return level_norm, TwoSlopeNorm(vcenter=0.0, vmin=-bound, vmax=bound), DIVERGING_CMAP
