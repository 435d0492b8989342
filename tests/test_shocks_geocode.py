"""Geocoding Entity List entries to provinces: tricky names and addresses (gazetteer from the raw data)."""

from __future__ import annotations

import pytest

from analysis.provinces import PROVINCE_CODES
from analysis.shocks.config import _province_lookup, load_config
from analysis.shocks.geocode import HK, geocode_entity, load_gazetteer

SHANXI, SHAANXI, JIANGSU, ANHUI, BEIJING, TIANJIN = 140000, 610000, 320000, 340000, 110000, 120000


@pytest.fixture(scope="module")
def gaz():
    cfg = load_config()
    return load_gazetteer(cfg.aliases, cfg.street_words, cfg.direction_words)


def geo(gaz, address="", name="", city="", country="CN"):
    return geocode_entity({"address": address, "entity_name": name, "city": city}, country, gaz)


def test_shanxi_and_shaanxi_are_different_provinces(gaz):
    assert geo(gaz, name="Shanxi Coal Machinery Co.")["geo_province_code"] == SHANXI
    assert geo(gaz, name="Shaanxi Changling Electronic Technology Co., Ltd.")["geo_province_code"] == SHAANXI
    assert geo(gaz, name="太原某研究所", address="山西省太原市")["geo_province_code"] == SHANXI
    assert geo(gaz, address="陕西省西安市雁塔区")["geo_province_code"] == SHAANXI


def test_xian_and_harbin(gaz):
    # Xi'an is the Shaanxi capital, not the Xi'an districts of Liaoyuan (Jilin) or Mudanjiang (Heilongjiang).
    r = geo(gaz, name="Xi'an Aerospace Huaxun Technology")
    assert (r["geo_province_code"], r["geo_status"], r["geo_basis"]) == (SHAANXI, "province", "entity_name")
    assert geo(gaz, name="Harbin Institute of Technology")["geo_province_code"] == 230000
    r = geo(gaz, address="No. 92 Xidazhi Street, Nangang District, Harbin, Heilongjiang, China")
    assert (r["geo_province_code"], r["geo_basis"]) == (230000, "address")


def test_duplicate_city_names_are_ambiguous_not_guessed(gaz):
    for name in ("Huawei OpenLab Suzhou", "Taizhou Example Electronics", "Fuzhou Example Optics"):
        r = geo(gaz, name=name)
        assert r["geo_status"] == "ambiguous" and r["geo_province_code"] is None, name
    # A province named anywhere settles it; so do the Chinese characters.
    assert geo(gaz, address="88 Jinji Lake Avenue, Suzhou, Jiangsu, China")["geo_province_code"] == JIANGSU
    assert geo(gaz, name="Suzhou Nuclear Power Research Institute", address="苏州市")["geo_province_code"] == JIANGSU
    assert geo(gaz, address="安徽省宿州市")["geo_province_code"] == ANHUI


def test_hong_kong_is_a_flag_not_a_province(gaz):
    r = geo(gaz, name="Cloudminds (Hong Kong) Limited", country="HK")
    assert (r["geo_status"], r["geo_hong_kong"], r["geo_province_code"]) == ("hong_kong", True, None)
    r = geo(gaz, address="Unit B1, Kong Nam Industrial Building, Tsuen Wan, N.T.", name="ACTeam Logistics",
            country="HK")
    assert (r["geo_status"], r["geo_basis"]) == ("hong_kong", "country")
    # A mainland place with an HK country code is a conflict, listed for the user.
    assert geo(gaz, name="Shenzhen Example Ltd.", country="HK")["geo_status"] == "conflict"
    # The Hong Kong code of the geocoder (HK) is the one the location table's province names map to (config), it
    # is no mainland province's code, and a Hong Kong row gets the flag, never HK as a province code.
    assert _province_lookup()["Hong Kong"] == HK and HK not in PROVINCE_CODES
    assert geo(gaz, name="Example Ltd.", country="HK")["geo_province_code"] is None


def test_chinese_character_address(gaz):
    r = geo(gaz, name="嘉兆科技(深圳)有限公司")
    assert (r["geo_province_code"], r["geo_status"]) == (440000, "province")
    assert geo(gaz, name="AGCU Scientech [无锡中德美联生物技术有限公司]")["geo_province_code"] == JIANGSU
    assert geo(gaz, address="北京市海淀区太平路27号")["geo_province_code"] == BEIJING


def test_streets_ranks_and_conflicts(gaz):
    # Dali Road is a street in Tianjin, not Dali prefecture (Yunnan).
    assert geo(gaz, address="No. 1 Dali Road, Heping District, Tianjin, 300050, China.")["geo_province_code"] == TIANJIN
    assert geo(gaz, address="No. 1 Dali Road")["geo_status"] == "unresolved"
    # A province outranks a prefecture of another province in the same field (Jinhua is in Zhejiang).
    assert geo(gaz, name="Fujian Jinhua Integrated Circuit Company, Ltd.")["geo_province_code"] == 350000
    # County names count in parentheses (branch location) but not as bare company words.
    assert geo(gaz, name="Hoshine Silicon Industry (Shanshan) Co., Ltd.")["geo_province_code"] == 650000
    assert geo(gaz, name="Chongxin Bada Technology Development Co.")["geo_status"] == "unresolved"
    # Address and name naming different provinces: conflict, not a guess.
    assert geo(gaz, address="Nanjing, Jiangsu, China", name="Beijing Example Co.")["geo_status"] == "conflict"
    # Later fields are used only when earlier ones say nothing; the deciding field is recorded.
    r = geo(gaz, name="Huawei Technologies Co., Ltd.", city="Shenzhen")
    assert (r["geo_province_code"], r["geo_basis"]) == (440000, "city")
    # Romanisations not in the gazetteer's pinyin come from the configured aliases.
    assert geo(gaz, name="Aksu Huafu Textiles Co.")["geo_province_code"] == 650000
    assert geo(gaz, name="Kunhai (Yanjiao) Innovation Research Institute")["geo_province_code"] == 130000
