"""First-listing cohorts: the post rule on listing dates, the technology-only cohort, the plausible-earlier
sensitivity columns, and the caveat wording (counts are lower bounds, first-listing years upper bounds)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from conftest import write_shocks_config
from analysis.io import DataError
from analysis.provinces import PROVINCE_CODES
from analysis.shocks.build import shocks_codebook
from analysis.shocks.config import PlausibleListing, Rule, load_config
from analysis.shocks.entity_list import first_listing_years, listing_reasons, province_year_counts

FUJIAN, GUANGDONG, JILIN, XINJIANG, SHANGHAI, GUIZHOU, ANHUI = 350000, 440000, 220000, 650000, 310000, 520000, 340000
YEARS = list(range(2015, 2022))


@pytest.fixture(scope="module")
def cfg(shocks_config):
    return shocks_config


@pytest.fixture(scope="module")
def geocoded(shocks_geocoded):
    return shocks_geocoded


def _rows(*listings):
    """A geocoded table of (province, fr_date, rule_id, name) listings, all located."""
    return pd.DataFrame([{"entity_name": name, "fr_date": date, "year": int(date[:4]), "rule_id": rule,
                          "geo_status": "province", "geo_province_code": code}
                         for code, date, rule, name in listings])


def _population():
    return pd.DataFrame([(p, y, 1000.0) for p in PROVINCE_CODES for y in YEARS],
                        columns=["province_code", "year", "population"])


def test_half_year_rule_on_listing_dates():
    rules = [Rule("A", dt.date(2018, 10, 30), dt.date(2018, 10, 30), "complete", "x", "technology", "s"),
             Rule("B", dt.date(2019, 5, 16), dt.date(2019, 5, 16), "complete", "x", "technology", "s"),
             Rule("C", dt.date(2021, 12, 17), dt.date(2021, 12, 17), "complete", "x", "technology", "s")]
    geo = _rows((FUJIAN, "2018-10-30", "A", "Fujian Jinhua"),        # second half of 2018 -> 2019
                (GUANGDONG, "2019-05-16", "B", "Huawei"),            # first half of 2019 -> 2019
                (JILIN, "2021-12-17", "C", "Jilin example"))          # -> 2022, after the window -> 0
    counts = province_year_counts(geo, _population(), YEARS, rules, all_complete=True)
    first = counts.groupby("province_code")["first_listing_year"].first()
    assert (first[FUJIAN], first[GUANGDONG], first[JILIN]) == (2019, 2019, 0)
    # Counts stay by calendar year of the Federal Register date (Fujian's listing is counted in 2018).
    fujian = counts[counts["province_code"] == FUJIAN].set_index("year")["entity_list_new"]
    assert fujian[2018] == 1 and fujian.sum() == 1
    # The cutoff is the config's post rule: with 12-31 every listing treats its own calendar year.
    calendar = first_listing_years(geo, YEARS, 12, 31, rules).set_index("province_code")["first_listing_year"]
    assert (calendar[FUJIAN], calendar[GUANGDONG], calendar[JILIN]) == (2018, 2019, 2021)


def test_half_year_rule_on_the_real_transcription(geocoded, cfg):
    first = first_listing_years(geocoded, cfg.entity_years.years(), cfg.cutoff_month, cfg.cutoff_day, cfg.rules,
                                cfg.tech_reasons).set_index("province_code")
    assert first.loc[FUJIAN, "first_listing_year"] == 2019            # Fujian Jinhua, 30 October 2018
    assert first.loc[610000, "first_listing_year"] == 2021            # Shaanxi: 27 August 2020 (R17)
    assert first.loc[GUANGDONG, "first_listing_year"] == 2015
    assert first.loc[JILIN, "first_listing_year"] == 0                # only listing: 17 December 2021


def test_tech_cohort_excludes_human_rights_rules(cfg):
    by_id = {r.id: r for r in cfg.rules}
    # October 2019 and July 2020 (the two), and the June 2020 Xinjiang rule (85 FR 34503) and June 2021
    # forced-labour rule: human rights. Each rule's reason has a cited basis.
    assert {r.id for r in cfg.rules if r.reason == "human_rights"} == {"R11", "R14", "R15", "R22", "R23"}
    assert "human_rights" not in cfg.tech_reasons
    assert all(r.reason_source.strip() for r in cfg.rules)
    assert by_id["R19"].entity_reasons["SZ DJI Technology Co., Ltd."] == "human_rights"
    # Synthetic: a province listed by the October 2019 human-rights rule, then by a technology rule.
    geo = _rows((SHANGHAI, "2019-10-09", "R11", "Yitu Technologies"),
                (SHANGHAI, "2020-08-20", "R16", "Huawei Cloud Shanghai"),
                (XINJIANG, "2020-07-22", "R15", "Changji Esquel Textile Co. Ltd."),
                (GUANGDONG, "2020-12-22", "R19", "SZ DJI Technology Co., Ltd."))
    first = first_listing_years(geo, YEARS, 6, 30, cfg.rules, cfg.tech_reasons).set_index("province_code")
    assert (first.loc[SHANGHAI, "first_listing_year"], first.loc[SHANGHAI, "first_listing_year_tech"]) == (2020, 2021)
    assert (first.loc[XINJIANG, "first_listing_year"], first.loc[XINJIANG, "first_listing_year_tech"]) == (2021, 0)
    # DJI is a human-rights entry of a mixed rule: not a technology listing.
    assert (first.loc[GUANGDONG, "first_listing_year"], first.loc[GUANGDONG, "first_listing_year_tech"]) == (2021, 0)
    assert listing_reasons(geo, cfg.rules).tolist() == ["human_rights", "technology", "human_rights", "human_rights"]


def test_tech_cohort_on_the_real_transcription(geocoded, cfg):
    first = first_listing_years(geocoded, cfg.entity_years.years(), cfg.cutoff_month, cfg.cutoff_day, cfg.rules,
                                cfg.tech_reasons).set_index("province_code")
    tech, every = first["first_listing_year_tech"], first["first_listing_year"]
    # Never earlier than the all-listings cohort; a province with a tech cohort has an all-listings cohort.
    assert ((tech == 0) | (tech >= every)).all() and ((tech == 0) | (every > 0)).all()
    # Xinjiang's listings in the window are all human-rights listings.
    assert tech[XINJIANG] == 0 and every[XINJIANG] == 2020
    assert (first.loc[first["first_listing_year_tech"] > 0, "first_listing_rule_tech"]
            .map({r.id: r.reason for r in cfg.rules}).isin(cfg.tech_reasons).all())


def test_earliest_plausible_moves_only_configured_provinces_earlier(geocoded, cfg):
    first = first_listing_years(geocoded, cfg.entity_years.years(), cfg.cutoff_month, cfg.cutoff_day, cfg.rules,
                                cfg.tech_reasons, cfg.plausible_listings).set_index("province_code")
    for suffix in ("", "_tech"):
        observed, earliest = first[f"first_listing_year{suffix}"], first[f"first_listing_year{suffix}_earliest_plausible"]
        assert ((earliest <= observed) | (observed == 0)).all()
        moved = set(first.index[earliest != observed])
        assert moved <= {p.province_code for p in cfg.plausible_listings}
    # Guizhou: Gui'an New District Huawei Investment (May 2019, in the CSL sample) -> 2019 instead of 2021.
    assert (first.loc[GUIZHOU, "first_listing_year"], first.loc[GUIZHOU, "first_listing_year_earliest_plausible"]) \
        == (2021, 2019)
    # Known answer on a synthetic table: a plausible rule of 2018-08-01 (treats from 2019) for a province first
    # listed in 2021, none for another.
    rules = [Rule("P", dt.date(2018, 8, 1), dt.date(2018, 8, 1), "partial", "x", "military_end_use", "s"),
             Rule("Q", dt.date(2020, 8, 27), dt.date(2020, 8, 27), "complete", "x", "military_end_use", "s")]
    geo = _rows((ANHUI, "2020-08-27", "Q", "a"), (SHANGHAI, "2020-08-27", "Q", "b"))
    out = first_listing_years(geo, YEARS, 6, 30, rules, ("military_end_use",),
                              [PlausibleListing("P", ANHUI, "basis", "source"),
                               PlausibleListing("P", JILIN, "basis", "source")]).set_index("province_code")
    assert out.loc[ANHUI, "first_listing_year_earliest_plausible"] == 2019
    assert out.loc[SHANGHAI, "first_listing_year_earliest_plausible"] == 2021
    assert out.loc[JILIN, "first_listing_year_earliest_plausible"] == 2019   # never listed -> plausible year
    assert out.loc[JILIN, "first_listing_year"] == 0


_write = write_shocks_config


def test_config_refuses_bad_reasons_and_plausible_entries(tmp_path):
    def bad_reason(r):
        r["entity_list"]["rules"][0]["reason"] = "trade_war"
    with pytest.raises(DataError, match=r"entity_list\.rules\[0\]\.reason.*trade_war"):
        load_config(_write(tmp_path, bad_reason))

    def no_source(r):
        del r["entity_list"]["rules"][3]["reason_source"]
    with pytest.raises(DataError, match=r"entity_list\.rules\[3\]\.reason_source.*required"):
        load_config(_write(tmp_path, no_source))

    def complete_rule(r):
        r["entity_list"]["plausible_earlier_listings"][0]["rule"] = "R06"   # complete: nothing can be missing
    with pytest.raises(DataError, match=r"plausible_earlier_listings\[0\]\.rule.*complete"):
        load_config(_write(tmp_path, complete_rule))

    def bad_province(r):
        r["entity_list"]["plausible_earlier_listings"][0]["province"] = "Guizhow"
    with pytest.raises(DataError, match=r"plausible_earlier_listings\[0\]\.province.*Guizhow"):
        load_config(_write(tmp_path, bad_province))


def test_codebook_says_upper_bound_for_first_listing_years(cfg):
    columns = ["province_code", "year", "entity_list_new", "first_listing_year", "first_listing_year_tech",
               "first_listing_year_earliest_plausible", "first_listing_year_tech_earliest_plausible"]
    book = shocks_codebook(cfg, columns).set_index("column")["formula"]
    for col in ("first_listing_year", "first_listing_year_tech"):
        assert "UPPER BOUND" in book[col] and "LOWER BOUND" not in book[col], col
    assert "LOWER BOUND" in book["entity_list_new"]
    assert "not a bound" in book["first_listing_year_earliest_plausible"]
