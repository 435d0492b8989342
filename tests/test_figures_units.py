"""Known answers for the pieces behind the figures: projection, geometry, fonts, event-time parsing, theater means,
ordering, ranks, descriptive statistics and byte-for-byte reproducible output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Polygon

from analysis.figures import geo
from analysis.figures.common import theater_province_order
from analysis.figures.descriptives import descriptives_by_theater
from analysis.figures.event_study import event_coefficients, honest_bounds, plot_event_study
from analysis.figures.maps import plot_index_maps
from analysis.figures.sensitivity import method_ranks
from analysis.figures.style import (THEATER_NAMES_CN, apply_style, missing_glyphs, new_figure, province_labels,
                                    save_figure)
from analysis.figures.trajectories import theater_means
from analysis.provinces import PROVINCE_CODES, THEATER_COMMANDS, identity_table


def test_albers_origin_and_equal_area():
    x, y = geo.albers(np.array([105.0]), np.array([0.0]))
    assert abs(x[0]) < 1e-15 and abs(y[0]) < 1e-15
    # a 1° x 1° cell on the unit sphere has area (π/180)(sin φ2 − sin φ1); an equal-area projection keeps it
    for lat in (20.0, 35.0, 50.0):
        lons = np.r_[np.linspace(100, 101, 200), np.full(200, 101.0), np.linspace(101, 100, 200), np.full(200, 100.0)]
        lats = np.r_[np.full(200, lat), np.linspace(lat, lat + 1, 200), np.full(200, lat + 1),
                     np.linspace(lat + 1, lat, 200)]
        px, py = geo.albers(lons, lats)
        exact = np.radians(1.0) * (np.sin(np.radians(lat + 1)) - np.sin(np.radians(lat)))
        assert Polygon(np.column_stack([px, py])).area == pytest.approx(exact, rel=1e-4)


@pytest.fixture(scope="module")
def shapes():
    return geo.province_shapes()


def test_shapes_cover_31_provinces_in_5_theaters(shapes):
    assert sorted(shapes["province_code"]) == sorted(PROVINCE_CODES)
    assert shapes["geometry"].map(lambda g: g.is_valid and not g.is_empty).all()
    theaters = geo.theater_shapes(shapes)
    assert sorted(theaters["theater_command"]) == sorted(THEATER_COMMANDS)
    assert theaters["n_provinces"].sum() == 31
    # the dissolve neither loses nor invents territory: its area equals the provinces' (up to simplification slivers)
    assert theaters["geometry"].map(lambda g: g.area).sum() == pytest.approx(
        shapes["geometry"].map(lambda g: g.area).sum(), rel=0.01)
    # Shaanxi lies inside the Central theater's outline, Guangdong inside the Southern one
    central = theaters.set_index("theater_command").loc["Central", "geometry"]
    southern = theaters.set_index("theater_command").loc["Southern", "geometry"]
    by_code = shapes.set_index("province_code")["geometry"]
    assert central.contains(by_code[610000].representative_point())
    assert southern.contains(by_code[440000].representative_point())
    # simplified enough to keep the maps small
    assert sum(shapely.get_num_coordinates(g) for g in shapes["geometry"]) < 20_000


def test_map_draws_31_provinces_and_5_theaters_per_panel(shapes):
    codes = np.repeat(PROVINCE_CODES, 2)
    theater = identity_table().set_index("province_code")["theater_command"]
    indices = pd.DataFrame({"province_code": codes, "year": np.tile([2015, 2021], 31), "method": "m",
                            "theater_command": theater.loc[codes].to_numpy(),
                            "capability_index": np.linspace(0.2, 0.9, 62)})
    indices.loc[(indices["province_code"] == 540000) & (indices["year"] == 2015), "capability_index"] = np.nan
    fig = plot_index_maps(indices, "capability_index", "m", shapes=shapes)
    map_axes = [ax for ax in fig.axes if any(c.get_gid() == "theaters" for c in ax.collections)]
    assert len(map_axes) == 3
    for i, ax in enumerate(map_axes):
        by_gid = {c.get_gid(): len(c.get_paths()) for c in ax.collections}
        assert by_gid["theaters"] == 5
        assert by_gid["provinces"] + by_gid.get("provinces_missing", 0) == 31
        # Tibet is missing in 2015 and so in the change; observed in 2021
        assert by_gid.get("provinces_missing", 0) == (0 if i == 1 else 1)


def test_cjk_font_has_glyphs_for_all_province_and_theater_names():
    names = "".join(identity_table()["name_cn"]) + "".join(identity_table()["name_cn_full"])
    names += "".join(THEATER_NAMES_CN.values()) + "省份年份战区均值"
    assert len(set(province_labels("cn").values())) == 31
    assert missing_glyphs(names) == []
    # the check can fail: a character outside the font (a Linear B syllable) is reported
    assert missing_glyphs("陕西\U00010000") == ["\U00010000"]


def test_event_coefficients_parse_terms_and_add_the_reference():
    est = pd.DataFrame({"term": ["ATT e=-3", "ATT e=-2", "ATT e=0", "ATT e=1", "ATT", "honest SD M=0.5 e=0"],
                        "estimate": [0.1, -0.1, 0.3, 0.4, 0.35, 0.3], "ci_low": [0.0, -0.2, 0.2, 0.3, 0.3, -0.4],
                        "ci_high": [0.2, 0.0, 0.4, 0.5, 0.4, 1.0]})
    coef = event_coefficients(est, reference_period=-1)
    assert coef["event_time"].tolist() == [-3, -2, -1, 0, 1]
    ref = coef[coef["reference"]]
    assert ref["event_time"].tolist() == [-1] and ref["estimate"].tolist() == [0.0]
    assert coef.loc[coef["event_time"] == 1, "estimate"].item() == 0.4
    honest = honest_bounds(est)
    assert honest[["restriction", "parameter", "value", "target"]].values.tolist() == [["SD", "M", 0.5, "e=0"]]
    fig = plot_event_study({"a": est})
    assert len(fig.axes) == 2  # main panel + Honest DiD panel because the file has honest rows
    fig = plot_event_study({"a": est[~est["term"].str.startswith("honest")]})
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match="no event-time terms"):
        event_coefficients(est[est["term"] == "ATT"])


def test_theater_means_known_answer():
    frame = pd.DataFrame({"province_code": [1, 2, 3, 1, 2, 3], "year": [2015] * 3 + [2016] * 3,
                          "theater_command": ["Eastern", "Eastern", "Western"] * 2,
                          "v": [0.2, 0.4, 0.9, 0.3, np.nan, 0.7]})
    means = theater_means(frame, "v", balanced=False).set_index(["theater_command", "year"])
    assert means.loc[("Eastern", 2015), "mean"] == pytest.approx(0.3)
    assert means.loc[("Eastern", 2016), "mean"] == pytest.approx(0.3)  # the missing province is skipped
    assert means.loc[("Eastern", 2016), "n_provinces"] == 1
    assert means.loc[("Western", 2016), "mean"] == pytest.approx(0.7)


def test_theater_means_are_balanced_by_default():
    """Province 2 lacks 2016: the default mean leaves it out of every year, so Eastern moves 0.2 -> 0.3 (its one
    member's change) instead of staying at 0.3 while its membership changes (the Tibet-enters-in-2017 dip)."""
    frame = pd.DataFrame({"province_code": [1, 2, 3, 1, 2, 3], "year": [2015] * 3 + [2016] * 3,
                          "theater_command": ["Eastern", "Eastern", "Western"] * 2,
                          "v": [0.2, 0.4, 0.9, 0.3, np.nan, 0.7]})
    means = theater_means(frame, "v").set_index(["theater_command", "year"])
    assert means.loc[("Eastern", 2015), "mean"] == pytest.approx(0.2)
    assert means.loc[("Eastern", 2016), "mean"] == pytest.approx(0.3)
    assert means.loc[("Eastern", 2015), "n_provinces"] == means.loc[("Eastern", 2016), "n_provinces"] == 1
    assert means.loc[("Western", 2015), "mean"] == pytest.approx(0.9)


def test_heatmap_order_groups_by_theater_then_mean():
    frame = pd.DataFrame({"province_code": [1, 2, 3, 4], "year": 2015,
                          "theater_command": ["Western", "Eastern", "Eastern", "Southern"],
                          "v": [0.9, 0.1, 0.5, np.nan]})
    assert theater_province_order(frame, "v") == [3, 2, 4, 1]  # Eastern (0.5, 0.1), Southern, Western


def test_method_ranks_average_ties():
    frame = pd.DataFrame({"province_code": [1, 2, 3] * 2, "year": 2021, "method": ["a"] * 3 + ["b"] * 3,
                          "v": [0.5, 0.5, 0.1, 0.1, 0.2, 0.3]})
    ranks = method_ranks(frame, "v", 2021)
    assert ranks["a"].tolist() == [1.5, 1.5, 3.0] and ranks["b"].tolist() == [3.0, 2.0, 1.0]


def test_descriptives_known_answer():
    frame = pd.DataFrame({"province_code": [1, 2, 3, 4], "year": [2015, 2016, 2015, 2022],
                          "theater_command": ["Central", "Central", "Western", "Central"], "v": [1.0, 3.0, 5.0, 100.0]})
    table = descriptives_by_theater(frame, ["v"], (2015, 2021)).set_index("theater_command")
    assert table.loc["Central", ["n", "mean", "min", "max"]].tolist() == [2, 2.0, 1.0, 3.0]
    assert table.loc["Central", "sd"] == pytest.approx(np.sqrt(2.0))
    assert table.loc["All provinces", "n"] == 3 and table.loc["All provinces", "mean"] == pytest.approx(3.0)
    assert table.loc["Eastern", "n"] == 0


def test_saved_figures_are_byte_for_byte_reproducible(tmp_path):
    apply_style()
    digests = []
    for run in range(2):
        fig, axes = new_figure(1, 1)
        axes[0, 0].plot([2015, 2021], [0.2, 0.8], label="陕西 Shaanxi")
        axes[0, 0].legend()
        written = save_figure(fig, tmp_path / f"run{run}")
        digests.append([p.read_bytes() for p in written])
    assert digests[0] == digests[1]
    assert digests[0][0][:5] == b"%PDF-"


def _claims_rows():
    """A claims_check frame with one threshold reading (ratio ≥ 1.8: holds / fails / unreachable with ceiling 1.25)
    and one rank reading (no threshold), two metrics, three methods (m_default first)."""
    rows = []
    for metric in ("capability_index", "transfer_civ_to_mil"):
        for method, value, ceiling, passes in (("m_default", 2.0, 3.0, "yes"), ("m_b", 1.2, 2.5, "no"),
                                               ("m_c", 1.05, 1.25, "unreachable")):
            rows.append({"claim_id": "ratio", "reading": "r", "claim": "Doubled", "reading_text": "ratio at least 1.8",
                         "metric": metric, "is_natural_metric": metric == "capability_index", "threshold": 1.8,
                         "method": method, "is_default": method == "m_default", "index_window": "2015–2021",
                         "value": value, "max_attainable": ceiling, "passes": passes, "verdict": "depends on method"})
            rows.append({**rows[-1], "claim_id": "rank", "reading": "highest", "claim": "Highest", "threshold": np.nan,
                         "value": 0.5, "max_attainable": np.nan, "passes": "yes" if method == "m_b" else "no"})
    return pd.DataFrame(rows)


def test_claims_figure_draws_values_against_the_threshold_and_marks_unreachable_methods():
    from analysis.figures.sensitivity import plot_claims_check

    claims = _claims_rows()
    fig = plot_claims_check(claims)
    ratio_ax, rank_ax = fig.axes
    assert ratio_ax.get_title(loc="left").startswith("Doubled")
    assert rank_ax.get_title(loc="left").startswith("Highest")
    vertical = [ln for ln in ratio_ax.lines if list(ln.get_xdata()) == [1.8, 1.8]]
    assert len(vertical) == 1                                   # the threshold

    def xs(ax, marker):
        return sorted(float(x) for ln in ax.lines if ln.get_marker() == marker for x in ln.get_xdata())

    assert xs(ratio_ax, "v") == [1.05, 1.05]                     # unreachable: its own marker, one per metric
    assert xs(ratio_ax, "|") == [1.25, 1.25]                     # and its ceiling
    assert xs(ratio_ax, "s") == [2.0, 2.0]                       # the default method boxed
    assert [t.get_text() for t in rank_ax.get_xticklabels()] == ["m_default", "m_b", "m_c"]
    assert [t.get_text() for t in ratio_ax.get_yticklabels()] == ["D (capability) *", "civ → mil"]
    with pytest.raises(ValueError, match="unknown 'passes'"):
        plot_claims_check(claims.assign(passes="maybe"))


# ---- issue 16 §3: maps show what is outside the sample; colour scales fit the data; every method named ----------------

def _map_indices(change_sign: int = 1) -> pd.DataFrame:
    codes = np.repeat(PROVINCE_CODES, 2)
    theater = identity_table().set_index("province_code")["theater_command"]
    first = np.linspace(0.2, 0.8, 31)
    change = change_sign * np.linspace(0.01, 0.1, 31)
    return pd.DataFrame({"province_code": codes, "year": np.tile([2015, 2021], 31), "method": "m",
                         "theater_command": theater.loc[codes].to_numpy(),
                         "capability_index": np.column_stack([first, first + change]).ravel()})


def test_map_draws_hong_kong_macau_taiwan_as_not_in_sample(shapes):
    outside, absent = geo.outside_sample_shapes()
    assert not absent and sorted(outside["name"]) == ["Hong Kong", "Macau", "Taiwan"]
    fig = plot_index_maps(_map_indices(), "capability_index", "m", shapes=shapes)
    map_axes = [ax for ax in fig.axes if any(c.get_gid() == "theaters" for c in ax.collections)]
    for ax in map_axes:
        by_gid = {c.get_gid(): len(c.get_paths()) for c in ax.collections}
        assert by_gid["not_in_sample"] == 3 and by_gid["provinces"] == 31
    legend = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert "Not in sample: Hong Kong, Macau, Taiwan" in legend
    # the regions outside the sample do not overlap the provinces (they are not drawn over a province)
    provinces = shapely.union_all(list(shapes["geometry"]))
    for g in outside["geometry"]:
        assert g.intersection(provinces).area < 0.05 * g.area


def test_map_note_on_the_south_china_sea_is_true_of_the_drawn_geometry():
    """The fig04 note says the South China Sea islands are not drawn and Hainan Island is: check it on the data."""
    raw = geo._raw_boundaries()[460000]
    assert any(part.bounds[1] < 18 for part in raw.geoms)          # the raw geometry has the islands ...
    drawn = geo._drop_small_parts(raw, 0.05)
    assert drawn.geom_type == "Polygon" and drawn.bounds[1] >= 18   # ... the map keeps Hainan Island only
    assert drawn.area == max(p.area for p in raw.geoms)
    from analysis.figures import exhibits as ex
    from analysis import paths
    note = next(e for e in ex.load_exhibits(paths.CONFIGS / "exhibits.yaml") if e.kind == "maps").note
    assert "South China Sea" in note and "Hainan Island is drawn" in note
    assert "Hong Kong, Macau and Taiwan" in note and "not in the sample" in note


@pytest.mark.parametrize("sign, cmap", [(1, "Oranges"), (-1, "Purples_r")])
def test_map_colour_scales_fit_the_data(shapes, sign, cmap):
    from analysis.figures.maps import map_norms, map_values

    indices = _map_indices(sign)
    values = map_values(indices, "capability_index", "m", 2015, 2021)
    level, change, change_cmap = map_norms(values)
    drawn = pd.concat([values["first"], values["last"]])
    assert (level.vmin, level.vmax) == (drawn.min(), drawn.max())
    # one sign only: a one-sided scale from 0 to the largest change (no colours spent on changes that do not occur)
    assert change_cmap == cmap
    assert sorted([change.vmin, change.vmax]) == sorted([0.0, values["change"].abs().max() * sign])
    # gains and losses: diverging, centred at 0, symmetric to the largest absolute change
    mixed = values.assign(change=np.linspace(-0.05, 0.2, len(values)))
    _, change, change_cmap = map_norms(mixed)
    assert change_cmap == "PuOr_r" and change.vcenter == 0 and change.vmin == -0.2 and change.vmax == 0.2


def test_heatmap_colour_limits_are_the_data_range():
    from analysis.figures.heatmap import plot_heatmap

    indices = _map_indices()
    indices.loc[0, "capability_index"] = np.nan
    fig = plot_heatmap(indices, "capability_index", "m", years=(2015, 2021))
    image = fig.axes[0].images[0]
    assert image.get_clim() == (indices["capability_index"].min(), indices["capability_index"].max())


def test_method_rank_figure_names_every_method():
    """Figure 10 identifies each method by name (a labelled column), not by a shared grey marker."""
    from analysis.figures.sensitivity import plot_method_ranks

    methods = ["default_m", "alt_a", "alt_b"]
    frame = pd.DataFrame({"province_code": np.tile(PROVINCE_CODES[:4], 3), "year": 2021,
                          "method": np.repeat(methods, 4), "v": [0.4, 0.3, 0.2, 0.1, 0.1, 0.2, 0.3, 0.4,
                                                                 0.4, 0.3, 0.1, np.nan]})
    sensitivity = pd.DataFrame({"method": methods, "spearman_comparison_year": [1.0, -1.0, 0.5]})
    fig = plot_method_ranks(frame, sensitivity, "default_m", "v", 2021)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "default_m (default)" and labels[1].startswith("alt_b") and labels[2].startswith("alt_a")
    cells = [t.get_text() for t in ax.texts]
    assert cells[:3] == ["1", "1", "4"] and "–" in cells          # row 1 (default rank 1): ranks 1, 1 (alt_b), 4 (alt_a)
    image = next(i for i in ax.images if i.get_gid() == "method_ranks")
    assert image.get_clim() == (-3.0, 3.0)                          # largest |rank shift| drawn, centred at 0
