"""The hand-checked entity -> province table (configs/entity_locations.yaml) and the transcription hint."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis import paths
from analysis.io import DataError
from analysis.models.table_notes import ENTITY_LIST_NOTE
from analysis.provinces import identity_table
from analysis.shocks.config import load_config, load_locations, name_key
from analysis.shocks.entity_list import (check_locations, geocode_table, read_entity_sources, transcriber_agreement,
                                         unresolved_rows)
from analysis.shocks.geocode import HK, geocode_entity, load_gazetteer

LOCATIONS = paths.CONFIGS / "entity_locations.yaml"
TRANSCRIPTION = paths.ENTITY_LIST / "entity_list_cn_additions_2015_2021.csv"
JIANGSU, ANHUI, BEIJING, HEBEI, HUBEI, SHANGHAI = 320000, 340000, 110000, 130000, 420000, 310000


@pytest.fixture(scope="module")
def cfg():
    return load_config()


@pytest.fixture(scope="module")
def gaz(cfg):
    return load_gazetteer(cfg.aliases, cfg.street_words, cfg.direction_words)


@pytest.fixture(scope="module")
def geocoded(cfg, gaz):
    return geocode_table(read_entity_sources(cfg.entity_sources, cfg.countries), gaz, cfg.geocode_fields,
                         cfg.locations)


def test_every_table_row_has_basis_source_and_a_valid_province():
    raw = yaml.safe_load(LOCATIONS.read_text(encoding="utf-8"))
    provinces = set(identity_table()["province_en"]) | {"Hong Kong"}
    assert len(raw["placed"]) >= 30
    for row in raw["placed"]:
        assert set(row) == {"name", "province", "basis", "source"}, row
        assert row["province"] in provinces, row
        assert len(row["basis"].strip()) > 10 and len(row["source"].strip()) > 10, row
    for row in raw["not_placed"]:
        assert set(row) == {"name", "reason"} and row["reason"].strip(), row
    # One row per entity (by the matching key), across both lists.
    keys = [name_key(r["name"]) for r in raw["placed"] + raw["not_placed"]]
    assert len(keys) == len(set(keys))


def test_every_table_name_is_a_transcribed_row(geocoded, cfg):
    names = {name_key(n) for n in pd.read_csv(TRANSCRIPTION, dtype=str, keep_default_na=False)["entity_name"]}
    for item in cfg.locations + cfg.not_placed:
        assert name_key(item.name) in names, item.name
    check_locations(geocoded, cfg.locations, cfg.not_placed, cfg.locations_file)
    # The table is for rows the rule does not place: it never contradicts a deciding field (no conflict).
    assert not (geocoded["geo_status"] == "conflict").any()


def test_three_suzhou_rows_are_placed_in_jiangsu(geocoded):
    suzhou = geocoded[geocoded["city"] == "Suzhou"]
    assert len(suzhou) == 3
    assert (suzhou["geo_status"] == "province").all()
    assert (suzhou["geo_province_code"] == JIANGSU).all()
    assert (suzhou["geo_basis"] == "transcription").all()


def test_issue_examples_are_placed(geocoded):
    placed = geocoded.set_index("entity_name")
    expected = {"Tanyuan Technology Co. Ltd.": JIANGSU, "IFLYTEK": ANHUI, "Yitu Technologies": SHANGHAI,
                "Intellifusion": 440000,
                "China Electronic Technology Group Corporation (CETC) 13 [name as written by source]": HEBEI,
                "China Communications Construction Company Dredging Group Co., Ltd.": SHANGHAI,
                "Chinese National Offshore Oil Corporation (CNOOC) [name as written by source]": BEIJING,
                "China Shipbuilding Industry Company Limited (CSIC) 701 Research Institute "
                "[中国船舶重工股份有限公司701研究所]": HUBEI}
    for name, code in expected.items():
        assert placed.loc[name, "geo_province_code"] == code, name
        assert placed.loc[name, "geo_basis"] == "name_table", name


def test_every_unplaced_row_was_checked_by_hand(geocoded, cfg):
    """Before the table 58 rows had no province (55 unresolved, 3 ambiguous); each one left now carries a reason."""
    unplaced = unresolved_rows(geocoded, cfg.not_placed)
    assert len(unplaced) == 17
    assert (unplaced["not_placed_reason"].str.len() > 0).all()
    assert set(unplaced["geo_status"]) == {"unresolved"}


def test_hints_settle_only_what_the_rule_leaves_open(gaz):
    def geo(name="", address="", country="CN", **hints):
        return geocode_entity({"address": address, "entity_name": name, "city": ""}, country, gaz, **hints)

    # The transcription settles an ambiguous match it is a candidate of; otherwise the row stays ambiguous.
    r = geo("Huawei OpenLab Suzhou", transcribed=JIANGSU)
    assert (r["geo_status"], r["geo_province_code"], r["geo_basis"]) == ("province", JIANGSU, "transcription")
    assert geo("Huawei OpenLab Suzhou", transcribed=ANHUI)["geo_province_code"] == ANHUI
    assert geo("Huawei OpenLab Suzhou", transcribed=BEIJING)["geo_status"] == "ambiguous"
    # ...never places a row that names no place, and never overrides a field that decides.
    assert geo("IFLYTEK", transcribed=ANHUI)["geo_status"] == "unresolved"
    assert geo("Beijing Example Co.", transcribed=ANHUI)["geo_province_code"] == BEIJING
    # The table places a row that names no place; it settles an ambiguous one only among the candidates.
    r = geo("IFLYTEK", table=ANHUI)
    assert (r["geo_status"], r["geo_province_code"], r["geo_basis"]) == ("province", ANHUI, "name_table")
    assert geo("Huawei OpenLab Suzhou", table=JIANGSU)["geo_province_code"] == JIANGSU
    assert geo("Huawei OpenLab Suzhou", table=BEIJING)["geo_status"] == "conflict"
    # A table entry that contradicts a deciding field is a conflict, listed, never silently preferred.
    assert geo("Beijing Example Co.", table=ANHUI)["geo_status"] == "conflict"
    assert geo("Beijing Example Co.", table=BEIJING)["geo_basis"] == "entity_name"
    # Hong Kong entries: the table may say Hong Kong; a mainland province with country HK is a conflict.
    assert geo("Example Ltd.", country="HK", table=HK)["geo_status"] == "hong_kong"
    assert geo("Example Ltd.", country="HK", table=ANHUI)["geo_status"] == "conflict"


def _write_locations(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load(LOCATIONS.read_text(encoding="utf-8"))
    mutate(raw)
    target = tmp_path / "entity_locations.yaml"
    target.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return target


def test_bad_table_rows_name_file_and_key(tmp_path, geocoded, cfg):
    def blank_source(r):
        r["placed"][2]["source"] = " "
    with pytest.raises(DataError, match=r"entity_locations\.yaml.*placed\[2\]\.source"):
        load_locations(_write_locations(tmp_path, blank_source))

    def bad_province(r):
        r["placed"][0]["province"] = "Hebie"
    with pytest.raises(DataError, match=r"placed\[0\]\.province.*Hebie"):
        load_locations(_write_locations(tmp_path, bad_province))

    def duplicate(r):
        r["placed"].append(dict(r["placed"][0], name=r["placed"][0]["name"].upper()))
    with pytest.raises(DataError, match=r"already listed at placed\[0\]"):
        load_locations(_write_locations(tmp_path, duplicate))

    def typo(r):
        r["placed"][0]["name"] = "China Electronic Technology Group Corporation (CETC) 31"
    placed, not_placed = load_locations(_write_locations(tmp_path, typo))
    with pytest.raises(DataError, match=r"placed\[0\]\.name.*matches no entity"):
        check_locations(geocoded, placed, not_placed, tmp_path / "entity_locations.yaml")


def test_stage_outputs_before_after(geocoded):
    """The geocoded audit: placed rows by basis (before the table: 107 in provinces, 58 unplaced)."""
    status = geocoded["geo_status"].value_counts()
    assert (status.get("province", 0), status.get("hong_kong", 0), status.get("unresolved", 0)) == (148, 4, 17)
    basis = geocoded["geo_basis"].value_counts()
    assert (basis["name_table"], basis["transcription"]) == (38, 3)
    assert transcriber_agreement(geocoded)["agreement"].value_counts().get("disagree", 0) == 0


def test_table_note_states_the_number_of_unplaced_rows_the_data_give(geocoded, cfg):
    """The tables' Entity List note counts the rows no province holds; the count must be the data's (the note once
    said 55 while the data gave 58), so it is read from the note and recomputed here."""
    stated = re.search(r"(\d+) rows not placed in a province", ENTITY_LIST_NOTE)
    assert stated, ENTITY_LIST_NOTE
    placed = geocoded["geo_status"].isin(["province", "hong_kong"])
    assert int(stated.group(1)) == int((~placed).sum()) == len(unresolved_rows(geocoded, cfg.not_placed))
