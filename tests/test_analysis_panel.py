"""The analysis panel joins panel, default index and shocks without losing or duplicating province-years (checked on
the panel the stage CLIs build from the real raw files into a temporary folder: no pipeline output needed)."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.analysis_panel import build, load_config
from analysis.provinces import PROVINCE_CODES

CONTRACT = ["u_military", "u_civil", "capability_index", "coupling_corrected", "coordination_corrected",
            "transfer_civ_to_mil", "transfer_mil_to_civ", "post_zte_2018", "post_huawei_2019", "post_fdp_2020",
            "exposure_foreign_tech", "exposure_foreign_tech_z", "exposure_defence", "exposure_defence_z",
            "exposure_gov_rd_share_z", "entity_list_new", "entity_list_cumulative",
            "entity_list_cumulative_per_million", "first_listing_year", "entity_list_coverage"]


@pytest.fixture(scope="module")
def analysis_panel(stage_tree):
    return pd.read_parquet(stage_tree / "analysis_panel.parquet")


def test_one_row_per_province_year_in_window(analysis_panel):
    window = load_config()["window"]   # the study window, configs/panel.yaml `window` (whatever it is set to)
    first, last = window["first_year"], window["last_year"]
    assert len(analysis_panel) == len(PROVINCE_CODES) * (last - first + 1)
    assert not analysis_panel.duplicated(["province_code", "year"]).any()
    assert analysis_panel.year.min() == first and analysis_panel.year.max() == last


def test_contract_columns_present(analysis_panel):
    missing = [c for c in CONTRACT if c not in analysis_panel.columns]
    assert missing == []


def test_case_study_treatments(analysis_panel):
    t = analysis_panel.set_index(["province_code", "year"])["treated_shaanxi_2020"]
    last = load_config()["window"]["last_year"]
    assert t.sum() == last - 2020 + 1 and t[(610000, 2020)] == 1 and t[(610000, 2019)] == 0
    assert t[(140000, 2021)] == 0   # Shanxi (140000) is not Shaanxi (610000)


def test_join_refuses_colliding_columns():
    panel = pd.DataFrame({"province_code": [110000], "year": [2015], "x": [1.0]})
    other = pd.DataFrame({"province_code": [110000], "year": [2015], "x": [2.0]})
    cfg = {"window": {"first_year": 2015, "last_year": 2021}}
    with pytest.raises(ValueError, match="already exist"):
        build(panel, other, other.drop(columns="x"), cfg)
