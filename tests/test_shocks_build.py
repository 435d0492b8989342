"""Pre-shock exposure (known answers, no post-shock data) and the whole shocks stage on a synthetic panel."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from analysis import paths
from analysis.io import DataError
from analysis.provinces import PROVINCE_CODES
from analysis.shocks.__main__ import run
from analysis.shocks.config import load_config
from analysis.shocks.exposure import compute_exposure, ratio_exposure

PANEL_COLUMNS = ["hitech_tech_import_exp", "hitech_rd_exp", "rd_exp_foreign", "rd_exp_total", "rd_exp_gov",
                 "hitech_import_usd", "gdp", "population"]
CONTRACT = ["post_zte_2018", "post_huawei_2019", "post_fdp_2020", "exposure_foreign_tech", "exposure_foreign_tech_z",
            "exposure_defence", "exposure_defence_z", "exposure_gov_rd_share", "exposure_gov_rd_share_z",
            "entity_list_new", "entity_list_cumulative", "entity_list_cumulative_per_million",
            "first_listing_year", "entity_list_coverage"]


def synthetic_panel(seed: int = 20241122, years=range(2012, 2024)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(p, y) for p in PROVINCE_CODES for y in years]
    panel = pd.DataFrame(rows, columns=["province_code", "year"])
    for col in PANEL_COLUMNS:
        panel[col] = rng.uniform(1.0, 100.0, len(panel))
    panel["rd_exp_gov"] = panel["rd_exp_total"] * rng.uniform(0.05, 0.8, len(panel))
    return panel


@pytest.fixture(scope="module")
def cfg():
    return load_config()


@pytest.fixture(scope="module")
def provinces():
    return pd.read_csv(paths.PROVINCES) if paths.PROVINCES.exists() else __import__(
        "analysis.provinces", fromlist=["province_table"]).province_table()


def _measure(cfg, name):
    return next(m for m in cfg.ratio_measures if m.name == name)


def test_ratio_of_sums_known_answer(cfg):
    panel = synthetic_panel()
    m = _measure(cfg, "exposure_foreign_tech")  # 2016-2017, scale 1
    sel = panel["province_code"] == 110000
    panel.loc[sel & (panel["year"] == 2016), ["hitech_tech_import_exp", "hitech_rd_exp"]] = [1.0, 10.0]
    panel.loc[sel & (panel["year"] == 2017), ["hitech_tech_import_exp", "hitech_rd_exp"]] = [2.0, 30.0]
    out = ratio_exposure(panel, m).set_index("province_code")
    assert out.loc[110000, "exposure_foreign_tech"] == pytest.approx(3.0 / 40.0)
    # Hi-tech imports over GDP: million USD x 0.01 x RMB/USD over 100m yuan, in percent.
    m = _measure(cfg, "exposure_hitech_import_gdp")
    panel.loc[sel & (panel["year"] == 2016), ["hitech_import_usd", "gdp"]] = [1000.0, 5000.0]
    panel.loc[sel & (panel["year"] == 2017), ["hitech_import_usd", "gdp"]] = [2000.0, 5000.0]
    expected = 100 * (1000 * 0.01 * 6.6423 + 2000 * 0.01 * 6.7518) / 10000.0
    assert ratio_exposure(panel, m, cfg.fx).set_index("province_code").loc[110000, m.name] == pytest.approx(expected)


def test_exposure_uses_no_post_shock_data(cfg, provinces):
    panel = synthetic_panel()
    before = compute_exposure(panel, provinces, cfg)
    changed = panel.copy()
    late = changed["year"] >= 2018
    rng = np.random.default_rng(7)
    for col in PANEL_COLUMNS:
        changed.loc[late, col] = rng.uniform(0, 1e6, late.sum())
    changed.loc[late & (changed["province_code"] == 650000), "hitech_rd_exp"] = np.nan
    after = compute_exposure(changed, provinces, cfg)
    pd.testing.assert_frame_equal(before, after)
    # ...and a change in a base year does move it (the test can fail).
    changed.loc[changed["year"] == 2016, "hitech_tech_import_exp"] *= 3
    assert not np.allclose(compute_exposure(changed, provinces, cfg)["exposure_foreign_tech"],
                           before["exposure_foreign_tech"])


def test_exposure_uses_no_post_shock_data_real_panel(panel, cfg, provinces):
    before = compute_exposure(panel, provinces, cfg)
    changed = panel.copy()
    late = changed["year"] > cfg.base_years.last_year
    num = changed.select_dtypes("number").columns.drop(["province_code", "year"])
    changed.loc[late, num] = changed.loc[late, num] * 7.0 + 1.0
    pd.testing.assert_frame_equal(before, compute_exposure(changed, provinces, cfg))
    assert before.drop(columns="province_code").notna().all().all()  # complete for all 31 provinces
    assert len(before) == 31


def test_blank_numerator_zero_or_error(cfg):
    panel = synthetic_panel()
    m = _measure(cfg, "exposure_foreign_tech")
    tibet = (panel["province_code"] == 540000) & panel["year"].isin([2016, 2017])
    panel.loc[tibet, "hitech_tech_import_exp"] = np.nan
    out = ratio_exposure(panel, m).set_index("province_code")
    assert out.loc[540000, "exposure_foreign_tech"] == 0.0
    assert out.loc[540000, "exposure_foreign_tech_zero_filled_years"] == 2
    assert out["exposure_foreign_tech_zero_filled_years"].drop(540000).eq(0).all()
    strict = dataclasses.replace(m, missing_numerator="error")
    first_bad = int(np.flatnonzero(tibet.to_numpy())[0]) + 1
    with pytest.raises(DataError, match=r"panel\.parquet.*'hitech_tech_import_exp'") as err:
        ratio_exposure(panel, strict, source=paths.PANEL)
    assert (err.value.row, err.value.column) == (first_bad, "hitech_tech_import_exp")


def test_incomplete_province_and_missing_column(cfg, provinces):
    panel = synthetic_panel()
    panel.loc[(panel["province_code"] == 630000) & panel["year"].between(2016, 2017), "hitech_rd_exp"] = np.nan
    with pytest.raises(DataError, match=r"province 630000.*all 31 provinces"):
        ratio_exposure(panel, _measure(cfg, "exposure_foreign_tech"))
    with pytest.raises(DataError, match=r"column 'gdp'"):
        compute_exposure(synthetic_panel().drop(columns="gdp"), provinces, cfg)


def test_zscores_and_composite(cfg, provinces):
    out = compute_exposure(synthetic_panel(), provinces, cfg)
    for name in cfg.exposure_names:
        z = out[f"{name}_z"]
        assert z.mean() == pytest.approx(0.0, abs=1e-12) and z.std(ddof=1) == pytest.approx(1.0)
        assert np.corrcoef(z, out[name])[0, 1] == pytest.approx(1.0)
    comp = cfg.composites[0]
    assert out[comp.name].to_numpy() == pytest.approx(out[[f"{c}_z" for c in comp.components]].mean(axis=1).to_numpy())
    # Defence presence counts come straight from the province table: Beijing 2 Seven Sons + 7 defence labs.
    assert out.set_index("province_code").loc[110000, "exposure_defence"] == (
        provinces.set_index("province_code").loc[110000, ["seven_sons_universities", "state_key_labs_defence"]].sum())


def test_stage_end_to_end_is_deterministic(tmp_path, cfg):
    panel_path = tmp_path / "panel.parquet"
    synthetic_panel().to_parquet(panel_path, index=False)
    outputs = ["shocks.parquet", "shocks_codebook.csv", "shocks_summary.md", "entity_list_unresolved.csv",
               "entity_list_geocoded.csv"]
    shocks = run(panel_path, paths.SHOCKS_CONFIG, tmp_path / "a", paths.PROVINCES)
    run(panel_path, paths.SHOCKS_CONFIG, tmp_path / "b", paths.PROVINCES)
    for name in outputs:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert len(shocks) == 31 * 7 and not shocks.duplicated(["province_code", "year"]).any()
    assert set(CONTRACT) <= set(shocks.columns)
    assert shocks[CONTRACT].notna().all().all()
    # Exposure is constant within a province; post indicators constant within a year.
    assert (shocks.groupby("province_code")["exposure_foreign_tech_z"].nunique() == 1).all()
    assert (shocks.groupby("year")["post_huawei_2019"].nunique() == 1).all()
    book = pd.read_csv(tmp_path / "a" / "shocks_codebook.csv")
    assert book["column"].tolist() == shocks.columns.tolist()
    assert book.set_index("column").loc["entity_list_new", "formula"].count("LOWER BOUND") == 1
    assert "LOWER BOUNDS" in (tmp_path / "a" / "shocks_summary.md").read_text(encoding="utf-8")
    unresolved = pd.read_csv(tmp_path / "a" / "entity_list_unresolved.csv")
    assert set(unresolved["geo_status"]) <= {"ambiguous", "conflict", "unresolved"}
    assert len(unresolved) == shocks.drop_duplicates("year")["entity_list_new_unlocated"].sum()
