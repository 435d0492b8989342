"""Config validation, input errors, claims rules, the CLI end to end, and the run on the real panel."""

import copy

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import paths
from analysis.index.__main__ import main
from analysis.index.build import build_indices, deflator, default_index, required_columns, validate_panel
from analysis.index.claims import (BOUNDED_METRICS, METRIC_UPPER_BOUND, OUTPUT_COLUMNS, VERDICTS, across_metrics,
                                   check_claims, claims_window_indices, national_series,
                                   rule_theater_growth_above_median, rule_theater_highest_growth, verdict)
from analysis.index.config import claim_years, load_config, parse_config
from analysis.index.synthetic import synthetic_panel
from analysis.io import DataError
from analysis.provinces import PROVINCE_CODES
from analysis.window import study_window


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
    (lambda c: c.update(surprise=1), "surprise"),
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
# The claims tests build their own claims section (not the one in configs/index.yaml), so that editing the real claims
# changes no rule test.
def _test_claims():
    literal = {"text": "t", "source": "s", "quote": "q", "natural_metric": "capability_index"}
    return {
        "gd": {**literal, "natural_metric": ["transfer_civ_to_mil"],
               "readings": {"literal": {"rule": "province_value_above", "province_code": 440000, "year": 2021,
                                        "threshold": 0.9}}},
        "sn": {**literal, "readings": {"from_2020": {"rule": "province_max_yoy_ratio_at_least",
                                                     "province_code": 610000, "years": [2021], "threshold": 1.8}}},
        "before": {**literal, "quote": None,
                   "readings": {"all": {"rule": "national_value_below", "years": [2012, 2013, 2014, 2015],
                                        "threshold": 0.2}}},
        "double": {**literal, "readings": {"r": {"rule": "national_ratio_above", "from_year": 2015, "to_year": 2021,
                                                 "threshold": 2.0}}},
        "central": {**literal, "natural_metric": "transfer_civ_to_mil",
                    "readings": {"mean": {"rule": "theater_highest_mean", "theater": "Central",
                                          "years": [2015, 2021]}}},
    }


def _claims_config(raw_config, claims=None, metrics=("capability_index", "transfer_civ_to_mil")):
    raw = copy.deepcopy(raw_config)
    raw["claims"] = claims if claims is not None else _test_claims()
    raw["claim_metrics"] = list(metrics)
    raw["claims_window"] = {"first_year": 2012}
    return parse_config(raw, paths.INDEX_CONFIG)


@pytest.mark.parametrize("mutate, key", [
    (lambda c: c["claims"]["gd"].update(colour="red"), "claims.gd"),
    (lambda c: c["claims"]["gd"].pop("source"), "claims.gd"),
    (lambda c: c["claims"]["gd"].update(quote=""), "claims.gd.quote"),
    (lambda c: c["claims"]["gd"].update(natural_metric="u_total"), "claims.gd.natural_metric"),
    (lambda c: c["claims"]["gd"]["readings"]["literal"].update(rule="above"), "claims.gd.readings.literal.rule"),
    (lambda c: c["claims"]["gd"]["readings"]["literal"].update(province_code=999999),
     "claims.gd.readings.literal.province_code"),
    (lambda c: c["claims"]["gd"]["readings"]["literal"].update(threshold="high"),
     "claims.gd.readings.literal.threshold"),
    (lambda c: c["claims"]["gd"]["readings"]["literal"].pop("year"), "claims.gd.readings.literal"),
    (lambda c: c["claims"]["central"]["readings"]["mean"].update(theater="Middle"),
     "claims.central.readings.mean.theater"),
    (lambda c: c["claims"]["before"]["readings"]["all"].update(years=[2011, 2015]), "claims.before.readings.all"),
    (lambda c: c["claims"]["sn"]["readings"]["from_2020"].update(years=[2012]), "claims.sn.readings.from_2020"),
    (lambda c: c.update(claim_metrics=["capability_index", "capability_index"]), "claim_metrics"),
    (lambda c: c.update(claim_metrics=["u_total"]), "claim_metrics"),
    (lambda c: c.update(claims_window={"first_year": 2016}), "claims_window"),
    (lambda c: c.update(claims_window={"first_year": 2012, "last_year": 2021}), "claims_window"),  # end = window end
    (lambda c: c.update(window={"first_year": 2015, "last_year": 2021}), "window"),  # set in configs/panel.yaml only
])
def test_bad_claims_config_fails_at_load_naming_the_key(raw_config, mutate, key):
    raw = copy.deepcopy(raw_config)
    raw.update(claims=_test_claims(), claim_metrics=["capability_index", "transfer_civ_to_mil"],
               claims_window={"first_year": 2012})
    parse_config(raw, paths.INDEX_CONFIG)  # the unmutated test section is valid
    mutate(raw)
    with pytest.raises(DataError) as err:
        parse_config(raw, paths.INDEX_CONFIG)
    assert key in str(err.value) and "configs/index.yaml" in str(err.value)


def test_claim_years_include_the_base_year_of_each_ratio():
    assert claim_years({"rule": "province_max_yoy_ratio_at_least", "years": [2019, 2021]}) == [2018, 2019, 2020, 2021]
    assert claim_years({"rule": "theater_highest_mean", "years": [2015, 2018]}) == [2015, 2016, 2017, 2018]
    assert claim_years({"rule": "national_ratio_above", "from_year": 2015, "to_year": 2021}) == [2015, 2021]


def test_verdict_rule():
    assert verdict([True, True, None]) == "supported"
    assert verdict([False, False]) == "not supported"
    assert verdict([True, False, None]) == "depends on method"
    assert verdict([None, None]) == "not evaluable"
    assert verdict(["unreachable", "unreachable", "not evaluable"]) == "unreachable by construction"
    assert verdict(["unreachable", "no"]) == "not supported"
    assert verdict(["unreachable", "yes"]) == "depends on method"


def test_across_metrics_groups_metrics_by_verdict_in_a_fixed_order():
    got = across_metrics({"capability_index": "depends on method", "comprehensive_development": "supported",
                          "transfer_civ_to_mil": "unreachable by construction",
                          "transfer_mil_to_civ": "depends on method"}, {"capability_index": (2, 5)})
    assert got == ("supported on comprehensive_development; depends on method on capability_index (unreachable under "
                   "2 of 5 methods), transfer_mil_to_civ; unreachable by construction on transfer_civ_to_mil")


def _toy_indices(scale, first_year=2012, missing_before=None):
    """Every province 2012–2021 with known numbers (× scale): D = 0.1 + 0.01 (year − 2015), +0.05 in the 7 Central
    provinces, +0.3 everywhere in 2013 (a pre-2015 spike); Guangdong D = 0.95 in 2021; Shaanxi D = 0.8 in 2020 and
    0.85 in 2021. transfer_civ_to_mil = 0.3 D. ``missing_before``: all metrics NaN before that year (like a per-capita
    method without population)."""
    from analysis.provinces import identity_table
    rows = []
    for _, p in identity_table().iterrows():
        for y in range(first_year, 2022):
            central = 0.05 if p["theater_command"] == "Central" else 0.0
            v = 0.1 + 0.01 * (y - 2015) + central + (0.3 if y == 2013 else 0.0)
            if p["province_code"] == 440000 and y == 2021:
                v = 0.95
            if p["province_code"] == 610000 and y in (2020, 2021):
                v = {2020: 0.8, 2021: 0.85}[y]
            v = np.nan if missing_before and y < missing_before else v * scale
            rows.append({"province_code": p["province_code"], "year": y, "province_en": p["province_en"],
                         "theater_command": p["theater_command"], "capability_index": v,
                         "transfer_civ_to_mil": 0.3 * v})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def toy_claims(raw_config):
    cfg = _claims_config(raw_config)
    names = list(cfg.methods)[:3]
    cfg = cfg.with_methods({n: cfg.methods[n] for n in names})
    extended = pd.concat([_toy_indices(1.0).assign(method=names[0]), _toy_indices(0.9).assign(method=names[1]),
                          _toy_indices(1.0, missing_before=2015).assign(method=names[2])], ignore_index=True)
    main_window = extended.loc[extended["year"] >= 2015]
    out = check_claims(main_window, cfg, extended=extended)
    return out.set_index(["claim_id", "metric", "method"]), names, out


def test_claims_output_has_one_row_per_claim_reading_metric_method(toy_claims):
    _, names, out = toy_claims
    assert list(out.columns) == OUTPUT_COLUMNS
    assert len(out) == 5 * 2 * 3 and not out.duplicated(["claim_id", "reading", "metric", "method"]).any()
    assert set(out["passes"]) <= {"yes", "no", "unreachable", "not evaluable"} and set(out["verdict"]) <= set(VERDICTS)
    natural = out.drop_duplicates(["claim_id", "metric"]).set_index(["claim_id", "metric"])["is_natural_metric"]
    assert natural[("gd", "transfer_civ_to_mil")] and not natural[("gd", "capability_index")]
    assert natural[("sn", "capability_index")] and not natural[("sn", "transfer_civ_to_mil")]
    assert out.loc[out["claim_id"] == "before", "quote"].isna().all()


def test_value_rule_on_known_numbers(toy_claims):
    out, (a, b, c), _ = toy_claims
    assert out.at[("gd", "capability_index", a), "value"] == pytest.approx(0.95)
    assert out.at[("gd", "capability_index", a), "passes"] == "yes"
    assert out.at[("gd", "capability_index", b), "value"] == pytest.approx(0.855)
    assert out.at[("gd", "capability_index", b), "passes"] == "no"
    assert out.at[("gd", "capability_index", a), "verdict"] == "depends on method"
    assert out.at[("gd", "capability_index", a), "max_attainable"] == METRIC_UPPER_BOUND
    assert out.at[("gd", "transfer_civ_to_mil", a), "verdict"] == "not supported"   # 0.285 < 0.9


def test_unreachable_ratio_from_a_high_start(toy_claims):
    """Shaanxi's D starts at 0.8 in 2020: with D ≤ 1 the 2021/2020 ratio is at most 1.25 < 1.8 whatever 2021 holds."""
    out, (a, b, c), _ = toy_claims
    row = out.loc[("sn", "capability_index", a)]
    assert row["value"] == pytest.approx(0.85 / 0.8) and row["max_attainable"] == pytest.approx(1.25)
    assert row["passes"] == "unreachable"
    assert out.at[("sn", "capability_index", b), "max_attainable"] == pytest.approx(1 / 0.72)
    assert row["verdict"] == "unreachable by construction"
    # the civ→mil transfer starts at 0.24: reachable (at most 1/0.24), and 1.0625 < 1.8 fails
    civ = out.loc[("sn", "transfer_civ_to_mil", a)]
    assert civ["max_attainable"] == pytest.approx(1 / 0.24) and civ["passes"] == "no"
    assert civ["verdict"] == "not supported"
    assert civ["verdict_across_metrics"] == ("not supported on transfer_civ_to_mil; "
                                             "unreachable by construction on capability_index")


def test_before_2016_reads_every_evaluable_year(toy_claims):
    """National D is below 0.2 in 2012, 2014 and 2015 but not in 2013 (the spike): the claim fails, its value is the
    2013 level, and the rows say they were read on the extended indices; the method without 2012–2014 data is judged
    on 2015 alone and says which years it could not evaluate."""
    out, (a, b, c), _ = toy_claims
    share_central = 7 / 31
    level = {y: 0.1 + 0.01 * (y - 2015) + 0.05 * share_central + (0.3 if y == 2013 else 0) for y in range(2012, 2016)}
    row = out.loc[("before", "capability_index", a)]
    assert row["value"] == pytest.approx(level[2013]) and row["passes"] == "no"
    assert row["index_window"] == "2012–2021"
    assert "2012 0.0" in row["detail"] and "2015 0.1" in row["detail"]
    only_2015 = out.loc[("before", "capability_index", c)]
    assert only_2015["value"] == pytest.approx(level[2015]) and only_2015["passes"] == "yes"
    assert "not evaluable in 2012, 2013, 2014" in only_2015["detail"]
    assert row["verdict"] == "depends on method"
    assert (out.xs("gd", level="claim_id")["index_window"] == "2015–2021").all()


def test_national_ratio_and_theater_mean_on_known_numbers(toy_claims):
    out, (a, b, c), _ = toy_claims
    ix = _toy_indices(1.0)
    nat = ix.groupby("year")["capability_index"].mean()
    row = out.loc[("double", "capability_index", a)]
    assert row["value"] == pytest.approx(nat[2021] / nat[2015])
    assert row["max_attainable"] == pytest.approx(1 / nat[2015]) and row["passes"] == "no"  # 1/0.111 > 2: reachable
    assert out.at[("central", "transfer_civ_to_mil", a), "passes"] == "yes"
    assert np.isnan(out.at[("central", "transfer_civ_to_mil", a), "threshold"])


def test_theater_growth_rules_on_known_numbers():
    growth = {"Eastern": 1.5, "Southern": 1.4, "Central": 1.1, "Northern": 1.0, "Western": 1.2}   # median 1.2
    ix = pd.DataFrame([{"province_code": i, "theater_command": t, "year": y, "m": g if y == 2021 else 1.0}
                       for i, (t, g) in enumerate(growth.items()) for y in (2015, 2021)])
    spec = {"from_year": 2015, "to_year": 2021}
    fastest = {t: rule_theater_highest_growth(ix, {**spec, "theater": t}, "m", None).passes for t in growth}
    above = {t: rule_theater_growth_above_median(ix, {**spec, "theater": t}, "m", None) for t in growth}
    assert fastest == {"Eastern": "yes", "Southern": "no", "Central": "no", "Northern": "no", "Western": "no"}
    assert {t: r.passes for t, r in above.items()} == {"Eastern": "yes", "Southern": "yes", "Central": "no",
                                                        "Northern": "no", "Western": "no"}   # strictly above
    assert above["Southern"].value == pytest.approx(1.4) and "median 1.200" in above["Southern"].detail


def test_check_claims_needs_the_extended_indices_for_years_before_the_window(raw_config):
    cfg = _claims_config(raw_config)
    ix = _toy_indices(1.0, first_year=2015).assign(method=cfg.default_method)
    with pytest.raises(ValueError, match="before.all"):
        check_claims(ix, cfg.with_methods({cfg.default_method: cfg.methods[cfg.default_method]}))


def test_national_series_population_weighted_by_hand():
    ix = pd.DataFrame({"province_code": [1, 2], "year": [2015, 2015], "m": [0.2, 0.8]})
    pop = pd.DataFrame({"province_code": [1, 2], "year": [2015, 2015], "population": [3.0, 1.0]})
    assert national_series(ix, "m")[2015] == pytest.approx(0.5)
    assert national_series(ix, "m", "population_weighted", pop)[2015] == pytest.approx(0.35)


def _buildable(config, panel):
    """The configured methods whose panel columns exist in ``panel`` (a new indicator may not be in an older panel)."""
    methods = {n: m for n, m in config.methods.items() if set(required_columns(config, m)) <= set(panel.columns)}
    assert len(methods) >= len(config.methods) - 1
    return config.with_methods(methods)


def test_every_claim_metric_is_bounded_by_the_constant_under_every_method(config):
    """METRIC_UPPER_BOUND holds for every bounded column under every normalisation, weighting and aggregation,
    also on data far outside the base period (the synthetic panel grows up to 15% a year)."""
    panel = synthetic_panel(seed=7)
    cfg = _buildable(config, panel)
    assert set(config.claim_metrics) <= BOUNDED_METRICS
    indices, _ = build_indices(panel, cfg)
    for col in BOUNDED_METRICS & set(indices.columns):
        v = indices[col].dropna()
        assert ((v >= 0) & (v <= METRIC_UPPER_BOUND)).all(), col


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
    config = load_config()
    assert set(claims["verdict"]) <= set(VERDICTS) and list(claims.columns) == OUTPUT_COLUMNS
    assert claims["claim_id"].nunique() == len(config.claims)
    assert set(claims["metric"]) == set(config.claim_metrics)


# --- the real panel -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_panel(panel):
    """The panel built from the real raw files by the cleaning stage's functions (conftest, once per session)."""
    return panel


def test_real_panel_gives_bounded_province_years_per_method(real_panel, config):
    first, last = study_window()
    n_province_years = len(PROVINCE_CODES) * (last - first + 1)
    indices, weights = build_indices(real_panel, config)
    assert (indices.groupby("method").size() == n_province_years).all()
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
    assert len(wide) == n_province_years and wide["capability_index"].notna().sum() >= 0.9 * n_province_years


def test_real_claims_check_reads_four_metrics_and_the_pre_2016_years(real_panel, config):
    """On the real panel: the four claim metrics are evaluated, readings before 2015 use the indices built on the
    claims window, per-capita methods (population from 2015) cannot evaluate 2012–2014, and a ratio is called
    unreachable exactly when its ceiling is below the threshold."""
    cfg = _buildable(config, real_panel)
    indices, _ = build_indices(real_panel, cfg)
    extended = claims_window_indices(real_panel, cfg)
    assert set(extended["year"]) == set(range(cfg.claims_period().first_year, cfg.window.last_year + 1))
    out = check_claims(indices, cfg, real_panel[["province_code", "year", "population"]], extended)
    assert {"capability_index", "comprehensive_development", "transfer_civ_to_mil",
            "transfer_mil_to_civ"} <= set(out["metric"])
    early = out["rule"].eq("national_value_below") & out["detail"].str.contains("2012")
    assert early.any() and (out.loc[early, "index_window"] == "2012–2021").all()
    per_capita = [n for n, m in cfg.methods.items() if cfg.indicator_sets[m.indicator_set].scale == "per_capita"]
    assert out.loc[early & out["method"].isin(per_capita), "detail"].str.contains(
        "not evaluable in 2012, 2013, 2014").all()
    inside = out["rule"].ne("national_value_below")
    assert (out.loc[inside, "index_window"] == "2015–2021").all()
    ratio = out[out["rule"].isin(["province_max_yoy_ratio_at_least", "national_ratio_above"])
                & out["passes"].ne("not evaluable")]
    below = np.where(ratio["rule"] == "national_ratio_above", ratio["max_attainable"] <= ratio["threshold"],
                     ratio["max_attainable"] < ratio["threshold"])
    assert ((ratio["passes"] == "unreachable") == below).all() and below.any()
    assert (ratio["value"] <= ratio["max_attainable"] + 1e-12).all()
