"""The cleaned panel on the real raw data: known facts and hand-checked cells.

Hand-checked values were read directly from the raw files (row and column given in each comment).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyreadr
import pytest

from analysis import paths
from analysis.clean.panel import build, load_config
from analysis.io import write_parquet
from analysis.window import study_window

SHANXI, SHAANXI = 140000, 610000


def cell(panel, code, year, var):
    row = panel[(panel.province_code == code) & (panel.year == year)]
    assert len(row) == 1
    return row[var].iloc[0]


def test_shape_and_keys(panel):
    first, last = study_window()   # configs/panel.yaml `window`, whatever it is set to
    window = panel[panel.year.between(first, last)]
    assert panel.province_code.nunique() == 31
    assert len(window) == 31 * (last - first + 1)
    assert not panel.duplicated(["province_code", "year"]).any()
    assert panel.year.min() == 2010 and panel.year.max() == 2023


def test_shanxi_and_shaanxi_are_kept_apart(panel):
    sx, sn = panel[panel.province_code == SHANXI], panel[panel.province_code == SHAANXI]
    assert set(sx.province_en) == {"Shanxi"} and set(sn.province_en) == {"Shaanxi"}
    assert set(sx.name_cn) == {"山西"} and set(sn.name_cn) == {"陕西"}
    assert set(sx.theater_command) == {"Central"} and set(sn.theater_command) == {"Central"}
    # RDActivity: 山西 2019 R&D 1,912,... vs 陕西 5,845,754 (10k yuan) — different provinces, different numbers
    assert cell(panel, SHAANXI, 2019, "rd_exp_total") == pytest.approx(5845754.0)
    assert cell(panel, SHANXI, 2019, "rd_exp_total") != cell(panel, SHAANXI, 2019, "rd_exp_total")


@pytest.mark.parametrize("code, year, var, expected", [
    (110000, 2015, "gdp", 26034.1),            # nbs_raw_grp: 北京市 row, 2015年 column
    (110000, 2021, "gdp", 44350.7),            # nbs_raw_grp: 北京市 row, 2021年 column
    (110000, 2015, "population", 2188),        # nbs-population: 北京市, 2015年
    (540000, 2015, "population", 330),         # nbs-population: 西藏自治区, 2015年
    (440000, 2021, "population", 12684),       # nbs-population: 广东省, 2021年
    (610000, 2015, "population", 3846),        # nbs-population: 陕西省, 2015年
    (150000, 2013, "rd_fte_total", 37280),     # RDLaborHour row '内蒙占' 2013 合计 (OCR typo fixed)
    (360000, 2014, "patent_app_total", 25594), # RDPatentAccept row '江两' 2014 合计 (OCR typo fixed)
    (140000, 2012, "patent_grant_total", 7196),  # RDPatentAuthority row '山两' 2012 (→ Shanxi, not Shaanxi)
    (540000, 2012, "patent_grant_invention", 57),  # RDPatentAuthority row '两藏' 2012 发明
    (330000, 2014, "patent_valid_total", 597051),  # RDPatentValid row '浙汀' 2014 合计
    (610000, 2020, "hitech_rd_fte", 21005),    # IndustryRD 2020 qsdl, unit label 万元 corrected, value unchanged
])
def test_hand_checked_cells(panel, code, year, var, expected):
    assert cell(panel, code, year, var) == pytest.approx(expected)


def test_spaced_names_resolve_to_the_same_province(panel):
    # RDSource 2010 rows are spelled '上   海' etc.; the panel has a value for every province in 2010.
    assert panel.loc[panel.year == 2010, "rd_exp_gov"].notna().sum() == 31


def test_national_rows_are_dropped_and_provinces_add_up(panel):
    raw = pyreadr.read_r(str(paths.YEARBOOK / "RDActivity.rda"))["RDActivity"]
    national = raw[(raw.province == "全国") & (raw.year == "2019") & (raw.variables == "v4_zh_nbzc_hj")].value.iloc[0]
    provinces = panel.loc[panel.year == 2019, "rd_exp_total"].sum()
    assert provinces == pytest.approx(national, rel=0.01)   # the yearbook's national total includes unallocated R&D
    assert len(panel) == 31 * 14


def test_missing_stays_missing(panel):
    # certified hi-tech enterprises start in 2018; IndustryOperation has no 2017; trade is missing in 2015
    assert panel.loc[panel.year < 2018, "hitech_enterprises_certified"].isna().all()
    assert panel.loc[panel.year == 2017, "hitech_firms"].isna().all()
    assert panel.loc[panel.year == 2015, "trade_total"].isna().all()
    # foreign-funded R&D: absent rows are missing, not zero
    assert panel["rd_exp_foreign"].isna().any()
    assert (panel["rd_exp_foreign"].dropna() >= 0).all()


def test_derived_variables(panel):
    gdp_pc = cell(panel, 110000, 2015, "gdp_per_capita")
    assert gdp_pc == pytest.approx(26034.1e8 / (2188e4))
    assert (panel.loc[panel.year == 2015, "gdp_deflator"].dropna() == 1.0).all()
    # chained deflator reproduces nominal / real growth
    sn = panel[panel.province_code == SHAANXI].set_index("year")
    link = (sn.gdp[2019] / sn.gdp[2018]) / (sn.gdp_index_prev100[2019] / 100)
    assert sn.gdp_deflator[2019] / sn.gdp_deflator[2018] == pytest.approx(link)


def test_cleaning_log_records_each_rule(panel_build):
    log = panel_build[2]
    rules = set(log.rule)
    for rule in ("strip_spaces_in_province_name", "fix_ocr_province_typo", "drop_aggregate_row",
                 "correct_unit_label", "cross_check_duplicate_variable", "skip_header_footer",
                 "missing_stays_missing"):
        assert rule in rules
    typos = log[log.rule == "fix_ocr_province_typo"]
    assert len(typos) == 7
    assert not log.source_file.str.startswith("/").any()   # no machine paths in outputs


def test_codebook_covers_every_column(panel_build):
    panel, book, _ = panel_build
    assert list(book.variable) == list(panel.columns)
    assert book.loc[book.variable == "techmkt_outflow_value", "source_variable"].iloc[0] == "v4_cg_jssc_je"
    assert book[["label_en", "label_cn"]].notna().all().all()


def test_determinism_identical_bytes(tmp_path, panel):
    again = build(load_config())[0]
    write_parquet(panel, tmp_path / "a.parquet")
    write_parquet(again, tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
