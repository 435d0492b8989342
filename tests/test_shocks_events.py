"""Mid-year rule, post indicators and config validation for the shocks stage."""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import write_shocks_config
from analysis.io import DataError
from analysis.shocks.config import load_config
from analysis.shocks.events import first_treated_year, post_indicators


def test_mid_year_rule_known_answers():
    assert first_treated_year(dt.date(2018, 4, 15)) == 2018   # ZTE denial order
    assert first_treated_year(dt.date(2019, 5, 16)) == 2019   # Huawei listing
    assert first_treated_year(dt.date(2020, 8, 17)) == 2021   # FDP August rule: second half-year
    assert first_treated_year(dt.date(2020, 6, 30)) == 2020   # on the cutoff day: same year
    assert first_treated_year(dt.date(2020, 7, 1)) == 2021    # the day after: next year
    # The cutoff is configurable: with 03-31 the ZTE denial order (15 April) counts from the next year.
    assert first_treated_year(dt.date(2018, 4, 15), 3, 31) == 2019
    assert first_treated_year(dt.date(2018, 1, 1), 1, 1) == 2018


def test_post_columns_from_the_config():
    cfg = load_config()
    post = post_indicators(range(2015, 2022), cfg.events, cfg.cutoff_month, cfg.cutoff_day).set_index("year")
    assert post["post_zte_2018"].tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert post["post_huawei_2019"].tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert post["post_fdp_2020"].tolist() == [0, 0, 0, 0, 0, 1, 1]
    assert post["post_fdp_2020_aug"].tolist() == [0, 0, 0, 0, 0, 0, 1]
    assert post["post_zte_2016"].tolist() == [0, 1, 1, 1, 1, 1, 1]
    # Indicators are monotone in time: once treated, always treated.
    assert (post.diff().fillna(0) >= 0).all().all()


_write = write_shocks_config


def test_unknown_key_names_file_and_key(tmp_path):
    bad = _write(tmp_path, lambda r: r["events"]["zte_2018"].update({"dat": "2018-04-15"}))
    with pytest.raises(DataError, match=r"shocks\.yaml.*events\.zte_2018\.dat.*unknown key"):
        load_config(bad)


def test_bad_event_date_and_cutoff(tmp_path):
    bad = _write(tmp_path, lambda r: r["events"]["huawei_2019"].update({"date": "2019-13-40"}))
    with pytest.raises(DataError, match=r"events\.huawei_2019\.date"):
        load_config(bad)
    bad = _write(tmp_path, lambda r: r["post_rule"].update({"cutoff_month_day": "6/30"}))
    with pytest.raises(DataError, match=r"post_rule\.cutoff_month_day"):
        load_config(bad)


def test_exposure_years_may_not_reach_a_treated_year(tmp_path):
    bad = _write(tmp_path, lambda r: r["exposure"]["base_years"].update({"last_year": 2018}))
    with pytest.raises(DataError, match=r"exposure\.base_years\.last_year.*2018"):
        load_config(bad)

    def late_measure(r):
        r["exposure"]["measures"][1]["years"] = {"first_year": 2016, "last_year": 2019}
    with pytest.raises(DataError, match=r"exposure\.measures\[1\]\.years"):
        load_config(_write(tmp_path, late_measure))
