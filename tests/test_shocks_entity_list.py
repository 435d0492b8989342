"""Entity List readers (transcription and official CSL format), counts, cohorts, coverage, bad input."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from analysis import paths
from analysis.io import DataError
from analysis.provinces import PROVINCE_CODES
from analysis.shocks.config import EntitySource, Rule
from analysis.shocks.entity_list import (check_rules, geocode_table, province_year_counts, read_entity_file,
                                         rule_coverage, rule_table, transcriber_agreement)
from analysis.shocks.events import first_treated_year
from analysis.shocks.geocode import load_gazetteer

TRANSCRIPTION = paths.ENTITY_LIST / "entity_list_cn_additions_2015_2021.csv"
CSL = paths.CSL_SAMPLE / "csl_sample_2019.csv"


@pytest.fixture(scope="module")
def cfg(shocks_config):
    return shocks_config


@pytest.fixture(scope="module")
def geocoded(shocks_geocoded):
    return shocks_geocoded


def test_transcription_reads_every_row(geocoded):
    raw = pd.read_csv(TRANSCRIPTION, dtype=str, keep_default_na=False)
    assert len(geocoded) == len(raw) == 169
    assert geocoded["source_row"].tolist() == list(range(2, len(raw) + 2))
    assert set(geocoded["country"]) == {"CN", "HK"}
    assert geocoded["year"].between(2015, 2021).all()


def test_per_rule_totals_equal_transcribed_rows(geocoded, cfg):
    raw = pd.read_csv(TRANSCRIPTION, dtype=str, keep_default_na=False)
    per_rule = raw["note"].str.extract(r"rule=(R\d+)")[0].value_counts()
    table = rule_table(geocoded, cfg.rules, cfg.entity_years.years()).set_index("rule_id")
    assert table.loc[per_rule.index, "rows"].to_dict() == per_rule.to_dict()
    # Located + Hong Kong + unlocated partitions each rule's rows.
    assert (table["in_province"] + table["hong_kong"] + table["unlocated"] == table["rows"]).all()
    assert table.loc[["R02", "R10", "R18"], "rows"].tolist() == [0, 0, 0]
    assert (table["status"] == "complete").sum() == 13   # data/raw/README.md: complete for 13 of 25 rules
    check_rules(geocoded, cfg.rules)  # every row's rule is configured


def test_counts_cohorts_and_totals(geocoded, cfg):
    years = cfg.entity_years.years()
    pop = pd.DataFrame([(p, y, 1000.0) for p in PROVINCE_CODES for y in years],
                       columns=["province_code", "year", "population"])  # 10 million persons everywhere
    counts = province_year_counts(geocoded, pop, years, cfg.rules, all_complete=False)
    assert len(counts) == 31 * len(years)
    # Province-year counts add up to the rows located in a province.
    assert counts["entity_list_new"].sum() == (geocoded["geo_status"] == "province").sum()
    # Cohort = first year a located listing treats the province under the post rule (half-year: a listing after
    # 30 June treats from the next year; after the window: 0), constant within a province.
    located = geocoded[geocoded["geo_status"] == "province"]
    treated = pd.Series([first_treated_year(dt.date.fromisoformat(d), cfg.cutoff_month, cfg.cutoff_day)
                         for d in located["fr_date"]], index=located.index)
    expected_first = treated[treated <= years[-1]].groupby(located["geo_province_code"].astype(int)).min()
    for code, g in counts.groupby("province_code"):
        expected = int(expected_first.get(code, 0))
        assert (g["first_listing_year"] == expected).all(), code
        assert g["entity_list_cumulative"].is_monotonic_increasing
        # The cohort is never before the first calendar year with a listing, and at most one year after it.
        positive = g.loc[g["entity_list_cumulative"] > 0, "year"]
        if expected:
            assert 0 <= expected - int(positive.min()) <= 1, code
    # Per million: population 1000 (10k persons) is 10 million.
    assert (counts["entity_list_cumulative_per_million"] * 10 == counts["entity_list_cumulative"]).all()
    # National columns partition each year's rows.
    one = counts.drop_duplicates("year").set_index("year")
    located = counts.groupby("year")["entity_list_new"].sum()
    assert (located + one["entity_list_new_hong_kong"] + one["entity_list_new_unlocated"]
            == one["entity_list_new_all"]).all()
    # Known facts of the transcription: NUDT and the Changsha centre (February 2015) make Hunan a 2015 cohort,
    # Fujian Jinhua (30 October 2018, second half-year) makes Fujian a 2019 cohort; Hong Kong is never a province.
    first = counts.groupby("province_code")["first_listing_year"].first()
    assert first[430000] == 2015 and first[350000] == 2019
    assert one.loc[2020, "entity_list_new_hong_kong"] == 3


def test_coverage_known_answers():
    rules = [Rule("A", dt.date(2015, 2, 1), dt.date(2015, 2, 1), "complete", "x"),
             Rule("B", dt.date(2015, 6, 1), dt.date(2016, 3, 1), "missing", "x"),   # may fall in 2015 or 2016
             Rule("C", dt.date(2016, 3, 8), dt.date(2016, 3, 8), "complete", "x"),
             Rule("D", dt.date(2017, 5, 1), dt.date(2017, 5, 1), "partial", "x")]
    cov = rule_coverage(rules, [2015, 2016, 2017, 2018], all_complete=False).set_index("year")
    assert cov["entity_list_coverage"].tolist() == [0.5, 0.5, 0.0, 1.0]
    # Cumulative: 2015 {A, B}, 2016 {A, B, C}, 2017 and 2018 {A, B, C, D}.
    assert cov["entity_list_coverage_cumulative"].tolist() == pytest.approx([1 / 2, 2 / 3, 2 / 4, 2 / 4])
    full = rule_coverage(rules, [2015, 2016], all_complete=True)
    assert full["entity_list_coverage"].tolist() == [1.0, 1.0]


def test_csl_sample_parses_into_the_same_table(cfg):
    table = read_entity_file(CSL, complete=True, countries=cfg.countries)
    # The sample's Entity List rows with a Chinese or Hong Kong address (any year).
    assert set(table["entity_name"]) == {"32 Group China Ltd.", "54th Research Institute of China",
                                         "A.C. International", "ACTeam Logistics Ltd.",
                                         "Gui\u2019an New District Huawei Investment Co., Ltd., Guiyang, Guizhou"}
    row = table.set_index("entity_name").loc["Gui\u2019an New District Huawei Investment Co., Ltd., Guiyang, Guizhou"]
    assert (row["fr_citation"], row["fr_date"], row["year"], row["country"]) == ("84 FR 22961", "2019-05-21", 2019, "CN")
    assert table.set_index("entity_name").loc["54th Research Institute of China", "fr_citation"] == "66 FR 24266"
    gaz = load_gazetteer(cfg.aliases, cfg.street_words, cfg.direction_words)
    geo = geocode_table(table, gaz, cfg.geocode_fields).set_index("entity_name")
    assert geo.loc["Gui\u2019an New District Huawei Investment Co., Ltd., Guiyang, Guizhou", "geo_province_code"] == 520000
    assert geo.loc["A.C. International", "geo_province_code"] == 440000
    assert geo.loc["32 Group China Ltd.", "geo_status"] == "hong_kong"
    assert geo.loc["54th Research Institute of China", "geo_status"] == "unresolved"
    # Declared complete: coverage 1 and no rule registry needed.
    counts = province_year_counts(geo.reset_index(), pd.DataFrame(columns=["province_code", "year", "population"]),
                                  [2019], [], all_complete=True)
    assert counts["entity_list_coverage"].eq(1.0).all()
    assert counts.set_index("province_code").loc[520000, "entity_list_new"] == 1


def test_missing_column_names_file_row_column(tmp_path):
    raw = pd.read_csv(TRANSCRIPTION, dtype=str, keep_default_na=False).drop(columns="fr_date")
    bad = tmp_path / "el.csv"
    raw.to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"el\.csv.*row 1.*'fr_date'") as err:
        read_entity_file(bad, complete=False)
    assert err.value.column == "fr_date" and err.value.row == 1


def test_bad_date_names_file_row_column(tmp_path):
    raw = pd.read_csv(TRANSCRIPTION, dtype=str, keep_default_na=False)
    raw.loc[9, "fr_date"] = "2018-10-32"
    bad = tmp_path / "el.csv"
    raw.to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"row 11.*'fr_date'.*2018-10-32") as err:
        read_entity_file(bad, complete=False)
    assert (err.value.row, err.value.column) == (11, "fr_date")
    csl = pd.read_csv(CSL, dtype=str, keep_default_na=False)
    csl.loc[csl["name"] == "A.C. International", "start_date"] = "22/09/2008"
    bad = tmp_path / "csl.csv"
    csl.to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"csl\.csv.*'start_date'"):
        read_entity_file(bad, complete=True)


def test_unknown_rule_is_refused(geocoded, cfg):
    rules = [r for r in cfg.rules if r.id != "R25"]
    with pytest.raises(DataError, match=r"rule 'R25'.*column 'note'|column 'note'.*rule 'R25'"):
        check_rules(geocoded, rules)


def test_agreement_with_the_transcriber(geocoded):
    audit = transcriber_agreement(geocoded)
    counts = audit["agreement"].value_counts()
    assert counts.get("disagree", 0) == 0
    # The transcriber placed no row that the geocoder leaves unplaced: the three Suzhou rows (苏州 Jiangsu or
    # 宿州 Anhui by name alone) are settled by the transcription's own province, and agree by construction.
    assert counts.get("transcriber_only", 0) == 0
    settled = audit[audit["geo_basis"] == "transcription"]
    assert len(settled) == 3 and (settled["agreement"] == "agree").all()
    assert settled["geo_detail"].str.contains("宿州").all()
    # Rows placed by the hand-checked table were left blank by the transcriber.
    assert (audit.loc[audit["geo_basis"] == "name_table", "agreement"] == "geocoder_only").all()
