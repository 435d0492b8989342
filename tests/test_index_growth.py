"""Growth outcomes (analysis/index/growth.py) and the analysis panel's extra index columns and splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.analysis_panel import base_period_split, other_index_columns
from analysis.index.config import load_config
from analysis.index.growth import growth_column, indicator_growth
from analysis.index.synthetic import synthetic_panel


@pytest.fixture(scope="module")
def config():
    return load_config()


def test_growth_is_the_mean_log_change_of_the_real_indicators(config):
    panel = synthetic_panel(first_year=2014, last_year=2021)
    got = indicator_growth(panel, config).set_index(["province_code", "year"])
    method = config.methods[config.default_method]
    for subsystem in ("military", "civil"):
        inds = [i for i in config.indicators_of(method) if i.subsystem == subsystem]
        p = panel.set_index(["province_code", "year"])
        code = p.index.get_level_values(0)[0]

        def real(year, i):
            x = p.loc[(code, year), i.name] * i.unit_factor
            return x / p.loc[(code, year), "gdp_deflator"] if i.deflate else x

        expected = np.mean([np.log(real(2018, i)) - np.log(real(2017, i)) for i in inds])
        assert got.loc[(code, 2018), growth_column(subsystem)] == pytest.approx(expected, rel=1e-12)
        assert np.isnan(got.loc[(code, 2014), growth_column(subsystem)])       # no previous year


def test_known_common_growth_is_recovered(config):
    """Every indicator grows exactly 10% a year in real terms and the deflator 2%: growth = log 1.1 everywhere."""
    panel = synthetic_panel(first_year=2015, last_year=2019)
    t = panel["year"] - 2015
    panel["gdp_deflator"] = 1.02 ** t
    for i in config.indicators_of(config.methods[config.default_method]):
        base = panel.groupby("province_code")[i.name].transform("first")
        panel[i.name] = base * 1.1 ** t * (panel["gdp_deflator"] if i.deflate else 1)
    got = indicator_growth(panel, config).dropna()
    assert len(got) == 31 * 4
    np.testing.assert_allclose(got[["growth_military_indicators", "growth_civil_indicators"]], np.log(1.1), rtol=1e-12)


def test_missing_or_gapped_years_give_missing_growth(config):
    panel = synthetic_panel(first_year=2015, last_year=2019)
    panel.loc[(panel.province_code == 110000) & (panel.year == 2017), "rd_exp_gov"] = np.nan
    panel = panel[~((panel.province_code == 120000) & (panel.year == 2016))]          # a gap in the years
    got = indicator_growth(panel, config).set_index(["province_code", "year"])
    assert np.isnan(got.loc[(110000, 2017), "growth_military_indicators"])
    assert np.isnan(got.loc[(110000, 2018), "growth_military_indicators"])
    assert not np.isnan(got.loc[(110000, 2017), "growth_civil_indicators"])
    assert np.isnan(got.loc[(120000, 2017), "growth_civil_indicators"])             # 2017 vs 2015 is not annual


def test_other_index_columns_and_base_period_split():
    idx = pd.DataFrame({"province_code": [1, 1, 2, 2], "year": [2015, 2016] * 2, "method": "m",
                        "capability_index": [0.1, 0.2, 0.3, 0.4]})
    wide = other_index_columns(idx, {"m": ["capability_index"]})
    assert list(wide.columns) == ["province_code", "year", "capability_index__m"]
    with pytest.raises(ValueError, match="no rows for method 'x'"):
        other_index_columns(idx, {"x": ["capability_index"]})
    panel = pd.DataFrame({"province_code": [1, 1, 2, 2, 3, 3], "year": [2015, 2018] * 3,
                          "share": [1.0, 9.0, 2.0, 0.0, 3.0, 3.0]})
    split = base_period_split(panel, "share", [2015, 2017])      # 2018 is outside the base period
    assert split.to_dict() == {1: 0, 2: 0, 3: 1}
