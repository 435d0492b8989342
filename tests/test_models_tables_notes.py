"""Tables that use the (incomplete) Entity List say so; tables that do not, do not."""

import json

import pandas as pd

from analysis import paths
from analysis.models.tables import ENTITY_LIST_NOTE, TABLES, table_notes, uses_entity_list


def test_entity_list_caveat_detection():
    assert uses_entity_list({"outcome": "capability_index", "cohort": "first_listing_year"})
    assert uses_entity_list({"outcome": "capability_index", "treatment": "entity_list_cumulative_per_million"})
    assert uses_entity_list({"outcome": "y", "controls": ["entity_list_new"]})
    assert not uses_entity_list({"outcome": "capability_index", "treatment": "post_huawei_2019",
                                 "exposure": "exposure_foreign_tech_z", "controls": []})
    assert "lower bounds" in ENTITY_LIST_NOTE and "half" in ENTITY_LIST_NOTE


def test_first_listing_years_are_called_upper_bounds():
    """An incomplete list makes an observed first-listing year too late: an upper bound, never a lower bound."""
    assert "upper bound" in ENTITY_LIST_NOTE
    assert "first-listing years are lower bounds" not in ENTITY_LIST_NOTE
    # Every cohort definition counts as an Entity List variable (the technology-only one included).
    assert uses_entity_list({"outcome": "capability_index", "cohort": "first_listing_year_tech"})
    assert uses_entity_list({"outcome": "y", "cohort": "first_listing_year_earliest_plausible"})


def test_staggered_table_says_always_treated_are_not_identified(tmp_path):
    tab03 = next(t for t in TABLES if t.name == "tab03_staggered")
    for spec_id in tab03.specs:
        pd.DataFrame({"term": ["ATT"], "estimate": [0.0]}).to_parquet(tmp_path / f"{spec_id}.parquet")
        (tmp_path / f"{spec_id}.json").write_text(json.dumps({"spec": {"cohort": "first_listing_year"}}))
    notes = table_notes(tab03, tmp_path)
    assert "Always-treated" in notes and "not identified" in notes and ENTITY_LIST_NOTE in notes
    # The provinces named are those the shocks stage makes cohort 2015 (when its output is there to check).
    shocks = paths.PROCESSED / "shocks.parquet"
    if shocks.exists():
        one = pd.read_parquet(shocks).drop_duplicates("province_code")
        if "first_listing_year_tech" in one:   # a shocks file built with the post rule on listing dates
            names = {110000: "Beijing", 120000: "Tianjin", 430000: "Hunan", 440000: "Guangdong"}
            always = set(one.loc[one["first_listing_year"] == 2015, "province_code"])
            assert {names[c] for c in always} == {"Guangdong", "Tianjin", "Hunan"}
    others = [t for t in TABLES if t.name != "tab03_staggered"]
    assert all("Always-treated" not in t.note for t in others)
