"""Tables that use the (incomplete) Entity List say so; tables that do not, do not."""

from analysis.models.tables import ENTITY_LIST_NOTE, uses_entity_list


def test_entity_list_caveat_detection():
    assert uses_entity_list({"outcome": "capability_index", "cohort": "first_listing_year"})
    assert uses_entity_list({"outcome": "capability_index", "treatment": "entity_list_cumulative_per_million"})
    assert uses_entity_list({"outcome": "y", "controls": ["entity_list_new"]})
    assert not uses_entity_list({"outcome": "capability_index", "treatment": "post_huawei_2019",
                                 "exposure": "exposure_foreign_tech_z", "controls": []})
    assert "lower bounds" in ENTITY_LIST_NOTE and "half" in ENTITY_LIST_NOTE
