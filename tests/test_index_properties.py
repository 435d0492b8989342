"""Properties of the built indices on a synthetic panel: bounds, weights, invariances, monotonicity, freezing."""

import numpy as np
import pandas as pd
import pytest

from analysis.index import methods as fm
from analysis.index.build import build_indices, build_method, default_index, validate_panel
from analysis.index.config import Method, load_config
from analysis.index.synthetic import synthetic_panel
from analysis.provinces import PROVINCE_CODES
from analysis.window import study_window

BOUNDED = ["u_military", "u_civil", "comprehensive_development", "coupling_traditional", "coupling_corrected",
           "coordination_traditional", "coordination_corrected", "capability_index", "transfer_civ_to_mil",
           "transfer_mil_to_civ", "civil_share", "techmkt_outflow_share"]


@pytest.fixture(scope="module")
def config():
    return load_config()


@pytest.fixture(scope="module")
def panel():
    first, last = study_window()
    return synthetic_panel(seed=7, first_year=first, last_year=last)


def _province_years() -> int:
    """31 provinces x the years of the study window (configs/panel.yaml ``window``, whatever it is set to)."""
    first, last = study_window()
    return len(PROVINCE_CODES) * (last - first + 1)


@pytest.fixture(scope="module")
def built(panel, config):
    return build_indices(panel, config)


def test_every_method_gives_bounded_indices(built, config):
    indices, _ = built
    assert set(indices["method"]) == set(config.methods)
    assert (indices.groupby("method").size() == _province_years()).all()
    for col in BOUNDED:
        v = indices[col].dropna()
        assert ((v >= 0) & (v <= 1)).all(), col
    core = indices.loc[indices["method"].isin([m for m, x in config.methods.items() if x.indicator_set == "core"])]
    assert core[BOUNDED].notna().all().all()


def test_coverage_of_extended_sets_follows_indicator_coverage(built):
    indices, _ = built
    e16 = indices.loc[indices["method"] == "ext2016_entropy_wsum"]
    assert e16.loc[e16["year"] == 2015, "u_civil"].isna().all()
    assert e16.loc[e16["year"] >= 2016, "u_civil"].notna().all()
    assert e16["u_military"].notna().all()  # the military subsystem does not use the 2016+ indicator
    e18 = indices.loc[indices["method"] == "ext2018_entropy_wsum"]
    assert e18.loc[e18["year"] < 2018, "capability_index"].isna().all()
    assert e18.loc[e18["year"] >= 2018, "capability_index"].notna().sum() == 4 * 31


def test_weights_sum_to_one_per_subsystem_and_are_non_negative(built, config):
    _, weights = built
    sums = weights.groupby(["method", "subsystem"])["weight"].sum()
    assert np.allclose(sums, 1.0)
    assert (weights["weight"] >= 0).all()
    assert len(sums) == 2 * len(config.methods)
    assert (weights.loc[weights["method"] == "minmax_entropy_wsum", "base_first_year"] == 2015).all()


def test_capability_index_is_the_configured_column(built, config):
    indices, _ = built
    assert config.capability_index == "coordination_corrected"
    assert indices["capability_index"].equals(indices[config.capability_index])


def _one_method(config, **kw):
    spec = dict(name="m", normalisation="minmax_pooled", weighting="entropy", aggregation="weighted_sum",
                indicator_set="core_levels")
    spec.update(kw)
    return Method(**spec)


@pytest.mark.parametrize("weighting", ["entropy", "critic", "equal", "pca"])
@pytest.mark.parametrize("aggregation", ["weighted_sum", "topsis"])
def test_minmax_index_invariant_to_rescaling_an_indicator(panel, config, weighting, aggregation):
    method = _one_method(config, weighting=weighting, aggregation=aggregation)  # levels, no log
    base = build_method(validate_panel(panel, config), config, method)[0]
    scaled = panel.copy()
    scaled["rd_exp_gov"] *= 37.5
    scaled["patent_grant_invention"] *= 0.01
    again = build_method(validate_panel(scaled, config), config, method)[0]
    for col in ["u_military", "u_civil", "capability_index"]:
        assert np.allclose(base[col], again[col], rtol=0, atol=1e-12), col


@pytest.mark.parametrize("method_name", ["minmax_entropy_wsum", "minmax_entropy_topsis", "zscore_entropy_wsum",
                                         "goalposts_entropy_wsum"])
def test_monotone_in_a_benefit_indicator(panel, config, method_name):
    method = config.methods[method_name]
    win = validate_panel(panel, config)
    before = build_method(win, config, method)[0]
    # a mid-ranked province in a post-base year, so neither the weights nor the pooled goalposts move
    row = win.index[(win["year"] == 2020)][win.loc[win["year"] == 2020, "rd_exp_enterprise"].rank().eq(16).to_numpy()][0]
    bumped = panel.copy()
    key = (bumped["province_code"] == win.at[row, "province_code"]) & (bumped["year"] == 2020)
    bumped.loc[key, "rd_exp_enterprise"] *= 1.05
    after = build_method(validate_panel(bumped, config), config, method)[0]
    assert after.at[row, "u_civil"] > before.at[row, "u_civil"]
    assert after.at[row, "u_military"] == pytest.approx(before.at[row, "u_military"])
    others = after.index != row
    if method.aggregation == "weighted_sum" and method.normalisation != "zscore_probit":
        assert np.allclose(after.loc[others, "u_civil"], before.loc[others, "u_civil"])


def test_cost_direction_reverses_the_effect(panel, config):
    raw = {"a": [1.0, 2.0, 5.0]}
    ben = fm.normalise_minmax(pd.DataFrame(raw), {"a": "benefit"})
    cost = fm.normalise_minmax(pd.DataFrame(raw), {"a": "cost"})
    assert np.allclose(ben["a"] + cost["a"], 1.0)


def test_base_period_weights_ignore_post_base_data(panel, config):
    method = config.methods["minmax_entropy_wsum"]
    w0 = build_method(validate_panel(panel, config), config, method)[1].set_index(["subsystem", "indicator"])["weight"]
    rng = np.random.default_rng(11)
    changed = panel.copy()
    post = changed["year"] >= 2018
    for col in ["rd_exp_gov", "rd_exp_enterprise", "papers_sci", "techmkt_inflow_value"]:
        changed.loc[post, col] *= rng.uniform(0.2, 5.0, post.sum())
    w1 = build_method(validate_panel(changed, config), config, method)[1].set_index(["subsystem", "indicator"])["weight"]
    assert np.allclose(w0, w1, rtol=0, atol=1e-14)
    # ...whereas a change inside the base period does move them (the test can fail)
    changed.loc[changed["year"] == 2016, "rd_exp_gov"] *= rng.uniform(0.2, 5.0, 31)
    w2 = build_method(validate_panel(changed, config), config, method)[1].set_index(["subsystem", "indicator"])["weight"]
    assert not np.allclose(w0, w2, rtol=0, atol=1e-6)


def test_corrected_coupling_is_one_only_on_the_diagonal_and_falls_with_imbalance():
    grid = np.linspace(0.01, 1.0, 100)
    um, uc = np.meshgrid(grid, grid)
    c = fm.coupling_corrected(um, uc)
    assert np.all((c >= 0) & (c <= 1 + 1e-12))
    assert np.allclose(c[np.isclose(um, uc)], 1.0)
    assert np.all(c[~np.isclose(um, uc)] < 1.0)
    # fixed T = 0.5: C strictly decreases as the gap widens
    gaps = np.linspace(0.0, 0.9, 50)
    c_gap = fm.coupling_corrected(0.5 - gaps / 2, 0.5 + gaps / 2)
    assert np.all(np.diff(c_gap) < 0)
    # and it is stricter than the traditional form wherever the two differ
    assert np.all(c <= fm.coupling_traditional(um, uc) + 1e-12)


def test_traditional_coupling_reaches_one_so_the_factor_two_is_present():
    grid = np.linspace(0.01, 1.0, 50)
    um, uc = np.meshgrid(grid, grid)
    c = fm.coupling_traditional(um, uc)
    assert c.max() == pytest.approx(1.0)  # a formula missing the factor 2 would peak at 0.5
    assert np.all(c <= 1 + 1e-12)


def test_directional_transfer_is_bounded_monotone_and_directional():
    grid = np.linspace(0.0, 1.0, 21)
    s, r = np.meshgrid(grid, grid)
    t = fm.directional_transfer(s, r, 2 / 3)
    assert np.all((t >= 0) & (t <= 1))
    assert np.all(np.diff(t, axis=0) >= 0) and np.all(np.diff(t, axis=1) >= 0)
    assert fm.directional_transfer(0.9, 0.3) > fm.directional_transfer(0.3, 0.9)


def test_zscore_probit_preserves_ranks(panel):
    x = panel[["rd_exp_gov", "papers_sci"]]
    z = fm.normalise_zscore_probit(x, {})
    assert (z.rank() == x.rank()).all().all()


def test_build_is_deterministic(panel, config):
    a, wa = build_indices(panel, config)
    b, wb = build_indices(panel.sample(frac=1.0, random_state=3), config)  # row order must not matter
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(wa, wb)


def test_default_index_is_wide_and_keyed(built, config):
    wide = default_index(built[0], config)
    assert len(wide) == _province_years() and not wide.duplicated(["province_code", "year"]).any()
    for col in ["u_military", "u_civil", "capability_index", "coupling_corrected", "coordination_corrected",
                "transfer_civ_to_mil", "transfer_mil_to_civ"]:
        assert col in wide
    assert np.allclose(wide["capability_index"], wide["coordination_corrected"])
