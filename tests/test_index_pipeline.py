"""Config validation, input errors, claims rules, the CLI end to end, and the run on the real panel."""

import copy

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import paths
from analysis.index.__main__ import main
from analysis.index.build import build_indices, deflator, default_index, validate_panel
from analysis.index.claims import check_claims, national_series, verdict
from analysis.index.config import load_config, parse_config
from analysis.index.synthetic import synthetic_panel
from analysis.io import DataError


@pytest.fixture(scope="module")
def raw_config():
    return yaml.safe_load(paths.INDEX_CONFIG.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def config():
    return load_config()


# --- configuration ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mutate, key", [
    (lambda c: c["methods"]["minmax_entropy_wsum"].update(weighting="entropie"), "methods.minmax_entropy_wsum.weighting"),
    (lambda c: c["methods"]["minmax_entropy_wsum"].update(colour="red"), "methods.minmax_entropy_wsum"),
    (lambda c: c["indicator_sets"]["core"]["indicators"].append("rd_exp_nonexistent"), "indicator_sets.core"),
    (lambda c: c["indicators"]["rd_exp_gov"].update(direction="up"), "indicators.rd_exp_gov.direction"),
    (lambda c: c.update(default_method="nope"), "default_method"),
    (lambda c: c.update(surprise=1), "top level"),
    (lambda c: c["claims"]["guangdong_above_0_9_2021"].update(province_code=999999), "claims.guangdong_above_0_9_2021"),
    (lambda c: c["comprehensive_weights"].update(military=0.7), "comprehensive_weights"),
    (lambda c: c["deflation"].update(missing="interpolate"), "deflation.missing"),
])
def test_bad_config_fails_at_load_naming_the_key(raw_config, mutate, key):
    bad = copy.deepcopy(raw_config)
    mutate(bad)
    with pytest.raises(DataError) as err:
        parse_config(bad, paths.INDEX_CONFIG)
    assert key in str(err.value) and "configs/index.yaml" in str(err.value)


def test_default_set_has_full_coverage_and_no_total_with_its_component(config):
    core = config.indicator_sets["core"].indicators
    assert "hitech_enterprises_certified" not in core and "hitech_newprod_sales" not in core
    # totals whose components are panel columns must not share a set with them
    totals = {"rd_exp_total": {"rd_exp_gov", "rd_exp_enterprise", "rd_exp_basic", "rd_exp_foreign"},
              "patent_grant_total": {"patent_grant_invention"}, "rd_fte_total": {"rd_fte_basic"}}
    for s in config.indicator_sets.values():
        for total, parts in totals.items():
            assert not (total in s.indicators and parts & set(s.indicators))


# --- input errors and the deflator rule ---------------------------------------------------------------------------
def test_negative_value_names_file_row_and_column(config):
    panel = synthetic_panel(seed=1)
    panel.loc[40, "papers_sci"] = -3.0
    with pytest.raises(DataError) as err:
        validate_panel(panel, config, "data/processed/panel.parquet")
    msg = str(err.value)
    assert "data/processed/panel.parquet" in msg and "row 41" in msg and "'papers_sci'" in msg


def test_duplicate_key_and_missing_column_are_errors(config):
    panel = synthetic_panel(seed=1)
    with pytest.raises(DataError, match="duplicate"):
        validate_panel(pd.concat([panel, panel.iloc[[5]]], ignore_index=True), config)
    with pytest.raises(DataError, match="rd_exp_gov"):
        validate_panel(panel.drop(columns="rd_exp_gov"), config)


def test_deflator_year_median_fills_only_missing_and_flags_them():
    panel = pd.DataFrame({"year": [2016] * 3 + [2017] * 3, "gdp_deflator": [1.0, np.nan, 1.2, 1.1, 1.3, np.nan]})
    used, filled = deflator(panel, "gdp_deflator", "year_median")
    assert used.tolist() == pytest.approx([1.0, 1.1, 1.2, 1.1, 1.3, 1.2])
    assert filled.tolist() == [False, True, False, False, False, True]
    kept, none_filled = deflator(panel, "gdp_deflator", "none")
    assert kept.isna().sum() == 2 and not none_filled.any()


def test_missing_indicator_stays_missing(config):
    panel = synthetic_panel(seed=2)
    panel.loc[(panel["province_code"] == 540000) & (panel["year"] == 2015), "techmkt_outflow_value"] = np.nan
    indices, _ = build_indices(panel, config)
    d = indices.loc[indices["method"] == config.default_method].set_index(["province_code", "year"])
    assert np.isnan(d.at[(540000, 2015), "u_civil"]) and np.isnan(d.at[(540000, 2015), "capability_index"])
    assert not np.isnan(d.at[(540000, 2015), "u_military"])
    assert d["u_civil"].isna().sum() == 1


# --- claims -------------------------------------------------------------------------------------------------------
def test_verdict_rule():
    assert verdict([True, True, None]) == "supported"
    assert verdict([False, False]) == "not supported"
    assert verdict([True, False, None]) == "depends on method"
    assert verdict([None, None]) == "not evaluable"


def _toy_indices(config, scale):
    """Two provinces per theater, capability = scale × known numbers; Guangdong 0.95 in 2021."""
    from analysis.provinces import identity_table
    ident = identity_table()
    rows = []
    for _, p in ident.iterrows():
        for y in range(2015, 2022):
            central = 0.05 if p["theater_command"] == "Central" else 0.0
            v = 0.1 + 0.01 * (y - 2015) + central
            if p["province_code"] == 440000 and y == 2021:
                v = 0.95
            if p["province_code"] == 610000 and y == 2020:  # Shaanxi (Central) doubles from 2019 to 2020
                v = 2.0 * (0.1 + 0.01 * 4 + central)
            rows.append({"province_code": p["province_code"], "year": y, "province_en": p["province_en"],
                         "theater_command": p["theater_command"], "capability_index": v * scale,
                         "transfer_civ_to_mil": v * scale, "u_military": v, "u_civil": v})
    return pd.DataFrame(rows)


def test_claims_rules_on_known_numbers(config):
    a = _toy_indices(config, 1.0).assign(method=config.default_method)
    b = _toy_indices(config, 0.5).assign(method="minmax_critic_wsum")
    cfg = config.with_methods({m: config.methods[m] for m in [config.default_method, "minmax_critic_wsum"]})
    out = check_claims(pd.concat([a, b], ignore_index=True), cfg).set_index(["claim_id", "method"])
    d = config.default_method
    assert out.at[("guangdong_above_0_9_2021", d), "value"] == pytest.approx(0.95)
    assert out.at[("guangdong_above_0_9_2021", d), "passes"] == "yes"
    assert out.at[("guangdong_above_0_9_2021", "minmax_critic_wsum"), "passes"] == "no"
    assert out.at[("guangdong_above_0_9_2021", d), "verdict"] == "depends on method"
    assert out.at[("shaanxi_near_doubling_around_2020", d), "value"] == pytest.approx(2.0)
    assert out.loc["shaanxi_near_doubling_around_2020", "verdict"].iloc[0] == "supported"
    # national 2015: 31 provinces at 0.1, the 7 Central ones (BJ, TJ, HE, SX, HA, HB, SN) at +0.05
    n_central = 7
    nat_2015 = 0.1 + 0.05 * n_central / 31
    assert out.at[("national_below_0_2_before_2016", d), "value"] == pytest.approx(nat_2015)
    assert out.at[("central_highest_civ_to_mil", d), "passes"] == "yes"


def test_national_series_population_weighted_by_hand():
    ix = pd.DataFrame({"province_code": [1, 2], "year": [2015, 2015], "m": [0.2, 0.8]})
    pop = pd.DataFrame({"province_code": [1, 2], "year": [2015, 2015], "population": [3.0, 1.0]})
    assert national_series(ix, "m")[2015] == pytest.approx(0.5)
    assert national_series(ix, "m", "population_weighted", pop)[2015] == pytest.approx(0.35)


# --- CLI ----------------------------------------------------------------------------------------------------------
def test_cli_writes_all_outputs_with_identical_bytes_on_rerun(tmp_path):
    panel_path = tmp_path / "panel.parquet"
    synthetic_panel(seed=5).to_parquet(panel_path, index=False)
    names = ["indices.parquet", "index_weights.csv", "index_sensitivity.csv", "index_sensitivity.md",
             "claims_check.csv", "claims_check.md"]
    for run in ("a", "b"):
        assert main(["--panel", str(panel_path), "--out-dir", str(tmp_path / run), "--no-progress"]) == 0
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    claims = pd.read_csv(tmp_path / "a" / "claims_check.csv")
    assert set(claims["verdict"]) <= {"supported", "not supported", "depends on method", "not evaluable"}
    assert claims["claim_id"].nunique() == 7


# --- the real panel -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_panel():
    if not paths.PANEL.exists():
        pytest.skip(f"{paths.relative(paths.PANEL)} not built (run `python -m analysis.clean`)")
    return pd.read_parquet(paths.PANEL)


def test_real_panel_gives_217_bounded_province_years_per_method(real_panel, config):
    indices, weights = build_indices(real_panel, config)
    assert (indices.groupby("method").size() == 217).all()
    bounded = ["u_military", "u_civil", "capability_index", "coupling_corrected", "coordination_corrected",
               "transfer_civ_to_mil", "transfer_mil_to_civ"]
    for col in bounded:
        v = indices[col].dropna()
        assert ((v >= 0) & (v <= 1)).all(), col
    assert np.allclose(weights.groupby(["method", "subsystem"])["weight"].sum(), 1.0)
    # missing exactly where one of the method's indicators is missing (nothing imputed, nothing dropped)
    win = validate_panel(real_panel, config)
    for name, m in config.methods.items():
        cols = list(config.indicator_sets[m.indicator_set].indicators)
        expected_missing = win[cols].isna().any(axis=1).to_numpy()
        got = indices.loc[indices["method"] == name, "capability_index"].isna().to_numpy()
        assert (got == expected_missing).all(), name
    wide = default_index(indices, config)
    assert len(wide) == 217 and wide["capability_index"].notna().sum() >= 200
