"""The real GDP index of the merged NBS panel is filed one year late; the cleaning stage realigns it (issue 12 §1).

Known facts used as anchors (NBS provincial communiqués): Hubei's real GDP fell 5.0% in 2020 (COVID) and rose
12.9% in 2021; Guangdong grew 2.3% in 2020. In the merged panel these values sit under 2021, 2022 and 2021.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from analysis import paths
from analysis.clean import CleaningLog
from analysis.clean.nbs import check_year_alignment, decode
from analysis.clean.panel import INTEGRATED_PANEL, build, load_config
from analysis.io import DataError
from analysis.provinces import code_for_name

HUBEI, GUANGDONG = 420000, 440000


def cell(panel, code, year, var):
    row = panel[(panel.province_code == code) & (panel.year == year)]
    assert len(row) == 1
    return float(row[var].iloc[0])


def test_hubei_covid_year_is_filed_under_2020(panel):
    assert cell(panel, HUBEI, 2020, "gdp_index_prev100") == pytest.approx(95.0)
    assert cell(panel, HUBEI, 2020, "gdp_index_prev100") < 100
    assert cell(panel, HUBEI, 2021, "gdp_index_prev100") == pytest.approx(112.9)
    assert cell(panel, GUANGDONG, 2020, "gdp_index_prev100") == pytest.approx(102.3)


def test_deflator_chains_nominal_over_real_growth_of_the_same_year(panel):
    hb = panel[panel.province_code == HUBEI].set_index("year")
    for year in (2020, 2021):
        link = (hb.loc[year, "gdp"] / hb.loc[year - 1, "gdp"]) / (hb.loc[year, "gdp_index_prev100"] / 100)
        assert hb.loc[year, "gdp_deflator"] == pytest.approx(hb.loc[year - 1, "gdp_deflator"] * link, rel=1e-12)
    # with real and nominal growth of the same year, Hubei's 2020 price change is small (nominal and real GDP both
    # fell about 5%), not the −12% implied by dividing 2020's nominal fall by 2019's real growth (+7.5%)
    assert abs(hb.loc[2020, "gdp_deflator"] / hb.loc[2019, "gdp_deflator"] - 1) < 0.02


def test_realignment_is_logged_with_its_evidence(panel_build):
    log = panel_build[2]
    moved = log[log.rule == "realign_year"]
    assert list(moved.variable) == ["gdp_index_prev100"]
    evidence = log[log.rule == "check_year_alignment"]
    assert len(evidence) == 1
    assert "configured offset -1 (best)" in evidence.detail.iloc[0]
    assert "Hubei 2020 = 95" in evidence.detail.iloc[0]


def test_the_unaligned_index_is_refused():
    """With the shift switched off the check finds that offset −1 fits nominal growth better and stops the run."""
    cfg = copy.deepcopy(load_config())
    for entry in cfg["nbs"]["integrated"]:
        entry.pop("year_offset", None)
    with pytest.raises(DataError) as err:
        build(cfg)
    assert INTEGRATED_PANEL in str(err.value)
    assert "offset -1 fits nominal GDP growth better" in str(err.value)


def test_year_offset_is_validated(tmp_path):
    text = paths.PANEL_CONFIG.read_text(encoding="utf-8").replace("year_offset: -1", "year_offset: 2")
    bad = tmp_path / "panel.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=r"key 'nbs.integrated\[\d+\].year_offset': must be one of -1, 0, 1, got 2"):
        load_config(bad)


def test_check_detects_a_shift_in_synthetic_data():
    """Known truth: real growth drives nominal growth; filing it one year late is detected, the right offset passes."""
    rng = np.random.default_rng(7)
    codes, years = range(31), range(2000, 2021)
    real = pd.DataFrame(rng.normal(0.07, 0.03, (31, 21)), index=codes, columns=years)
    inflation = pd.DataFrame(rng.normal(0.02, 0.005, (31, 21)), index=codes, columns=years)
    nominal = np.exp((real + inflation).cumsum(axis=1)) * 100
    late = (100 * np.exp(real)).shift(1, axis=1)            # the value of year t filed under t + 1

    def long(real_wide, offset):
        moved = real_wide.shift(offset, axis=1)             # what the reader does with year_offset = offset
        parts = [w.stack().rename("value").reset_index().assign(variable=v)
                 for w, v in ((moved, "gdp_index_prev100"), (nominal, "gdp"))]
        return pd.concat(parts).rename(columns={"level_0": "province_code", "level_1": "year"})

    check_year_alignment(long(late, -1), "gdp_index_prev100", "gdp", -1, paths.RAW, CleaningLog(), (2002, 2019))
    with pytest.raises(DataError, match="offset -1 fits"):
        check_year_alignment(long(late, 0), "gdp_index_prev100", "gdp", 0, paths.RAW, CleaningLog(), (2002, 2019))


def _nbs_export(name: str) -> pd.DataFrame:
    lines = decode(paths.RAW / "nbs-province-panel" / name, "gb18030").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("地区"))
    header = lines[at].split(",")
    rows = []
    for line in lines[at + 1:]:
        if not line.strip() or line.startswith(("注", "数据来源")):
            break
        rows.append(line.split(","))
    wide = pd.DataFrame(rows, columns=header)
    wide = wide[wide["地区"] != "全国"]
    out = wide.melt(id_vars="地区", var_name="label", value_name="v")
    out["province_code"] = out["地区"].map(code_for_name)
    out["year"] = out["label"].str[:4].astype(int)
    out["v"] = pd.to_numeric(out["v"], errors="coerce")
    return out.dropna(subset=["v"])[["province_code", "year", "v"]]


@pytest.mark.parametrize("export, column", [
    ("nbs_raw_grp_100m_yuan_2006_2024.gb18030.csv", "GDP_亿元"),
    ("nbs_raw_export_3.gb18030.csv", "城镇单位就业人员_万人"),
    ("nbs_raw_export_4.gb18030.csv", "私营个体就业人员_万人"),
    ("nbs_raw_export_5.gb18030.csv", "固定资产投资到位资金增速_%"),
])
def test_other_merged_panel_series_are_not_shifted(export, column):
    """Every merged-panel column that also exists as an NBS export equals it at offset 0 and not at ±1.

    At least 99% of cells must agree (the private-employment series differs in one or two revised cells)."""
    merged = pd.read_csv(paths.RAW / INTEGRATED_PANEL, usecols=["地区", "年份", column])
    merged["province_code"] = merged["地区"].map(code_for_name)
    nbs = _nbs_export(export)

    def share_equal(offset):
        m = merged.assign(year=merged["年份"] + offset).merge(nbs, on=["province_code", "year"]).dropna()
        return float((np.abs(m[column] - m["v"]) <= 1e-3 * np.abs(m["v"]).clip(lower=1e-9)).mean())

    assert share_equal(0) >= 0.99
    assert share_equal(-1) < 0.05 and share_equal(1) < 0.05
