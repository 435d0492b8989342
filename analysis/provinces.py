"""The province identity table: the one place that says which province is which.

Keys are GB/T 2260 codes (e.g. 610000 Shaanxi 陕西, 140000 Shanxi 山西 — two different provinces whose
romanisations differ by one letter; never match on pinyin without the tone-free spelling used here).
Theater commands (2016 reform) and pre-2016 military regions come from the reference file
``data/raw/reference/pla_theater_commands_2016_by_province.csv`` (compiled from public pages; disputed
assignments carried in ``theater_command_alt``). Defence-industrial presence (Seven Sons universities, state key
laboratories, defence-hosted state key laboratories) is counted from the raw reference and yearbook files by
:func:`defence_presence`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from analysis import paths
from analysis.io import DataError

# code, short Chinese name, full Chinese name, pinyin (official romanisation; Shaanxi keeps its double 'a')
_IDENTITY = [
    (110000, "北京", "北京市", "Beijing"),
    (120000, "天津", "天津市", "Tianjin"),
    (130000, "河北", "河北省", "Hebei"),
    (140000, "山西", "山西省", "Shanxi"),
    (150000, "内蒙古", "内蒙古自治区", "Nei Mongol"),
    (210000, "辽宁", "辽宁省", "Liaoning"),
    (220000, "吉林", "吉林省", "Jilin"),
    (230000, "黑龙江", "黑龙江省", "Heilongjiang"),
    (310000, "上海", "上海市", "Shanghai"),
    (320000, "江苏", "江苏省", "Jiangsu"),
    (330000, "浙江", "浙江省", "Zhejiang"),
    (340000, "安徽", "安徽省", "Anhui"),
    (350000, "福建", "福建省", "Fujian"),
    (360000, "江西", "江西省", "Jiangxi"),
    (370000, "山东", "山东省", "Shandong"),
    (410000, "河南", "河南省", "Henan"),
    (420000, "湖北", "湖北省", "Hubei"),
    (430000, "湖南", "湖南省", "Hunan"),
    (440000, "广东", "广东省", "Guangdong"),
    (450000, "广西", "广西壮族自治区", "Guangxi"),
    (460000, "海南", "海南省", "Hainan"),
    (500000, "重庆", "重庆市", "Chongqing"),
    (510000, "四川", "四川省", "Sichuan"),
    (520000, "贵州", "贵州省", "Guizhou"),
    (530000, "云南", "云南省", "Yunnan"),
    (540000, "西藏", "西藏自治区", "Xizang"),
    (610000, "陕西", "陕西省", "Shaanxi"),
    (620000, "甘肃", "甘肃省", "Gansu"),
    (630000, "青海", "青海省", "Qinghai"),
    (640000, "宁夏", "宁夏回族自治区", "Ningxia"),
    (650000, "新疆", "新疆维吾尔自治区", "Xinjiang"),
]

PROVINCE_CODES: tuple[int, ...] = tuple(row[0] for row in _IDENTITY)
NATIONAL_NAMES = frozenset({"全国", "全 国"})
THEATER_COMMANDS: tuple[str, ...] = ("Central", "Eastern", "Southern", "Western", "Northern")

# Administrators and hosts that mark a state key laboratory as hosted by the defence system: the Central
# Military Commission's departments, MIIT (which supervises the Seven Sons and the defence conglomerates),
# PLA units, and the defence-industry groups. Matched as substrings of `administrator` or `institution`.
DEFENCE_HOST_MARKERS = (
    "中央军委", "解放军", "国防科技大学", "军事医学", "工信部", "工业和信息化部", "国防科工",
    "中国航天", "航天科技", "航天科工", "中国兵器", "兵器工业", "兵器装备", "中国电子科技集团", "中电科",
    "中国船舶", "船舶重工", "中国航空工业", "航空工业集团", "中国航发", "中国核工业", "中核", "中国工程物理研究院",
)


def identity_table() -> pd.DataFrame:
    """The 31 provinces: code, names, pinyin and theater command (no counts; no raw files but the reference).

    Columns: ``province_code`` (int, GB/T 2260), ``name_cn`` (short), ``name_cn_full``, ``pinyin``, ``province_en``
    (English as in the reference file, e.g. 'Tibet', 'Inner Mongolia'), ``theater_command`` (2016),
    ``theater_command_cn``, ``theater_command_alt`` (disputed alternative or empty), ``military_region_pre2016``.
    """
    ident = pd.DataFrame(_IDENTITY, columns=["province_code", "name_cn", "name_cn_full", "pinyin"])
    ref = read_theater_reference()
    merged = ident.merge(ref, on="province_code", how="left", validate="one_to_one", suffixes=("", "_ref"))
    mismatch = merged[merged["name_cn"] != merged["name_cn_ref"]]
    if len(mismatch):
        code = int(mismatch.iloc[0]["province_code"])
        raise DataError(paths.THEATER_COMMANDS, f"province {code} is named {mismatch.iloc[0]['name_cn_ref']!r}, "
                        f"expected {mismatch.iloc[0]['name_cn']!r}", column="province_cn")
    return merged.drop(columns="name_cn_ref")


def read_theater_reference(path: Path = paths.THEATER_COMMANDS) -> pd.DataFrame:
    """Read and check the theater-command reference file (31 rows, known codes, five commands)."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    required = ["gb2260_code", "province_cn", "province_en", "theater_command_2016", "theater_command_cn",
                "military_region_pre2016", "disputed_alternative"]
    for col in required:
        if col not in raw.columns:
            raise DataError(path, f"missing column {col!r}", column=col)
    for i, rec in raw.iterrows():
        line = i + 2  # header is line 1
        if not rec["gb2260_code"].isdigit() or int(rec["gb2260_code"]) not in PROVINCE_CODES:
            raise DataError(path, f"unknown province code {rec['gb2260_code']!r}", row=line, column="gb2260_code")
        for col in ("theater_command_2016", "disputed_alternative"):
            if rec[col] and rec[col] not in THEATER_COMMANDS:
                raise DataError(path, f"unknown theater command {rec[col]!r}", row=line, column=col)
    if raw["gb2260_code"].duplicated().any():
        line = int(raw.index[raw["gb2260_code"].duplicated()][0]) + 2
        raise DataError(path, "duplicate province code", row=line, column="gb2260_code")
    if len(raw) != len(PROVINCE_CODES):
        raise DataError(path, f"expected {len(PROVINCE_CODES)} provinces, found {len(raw)}")
    return pd.DataFrame({
        "province_code": raw["gb2260_code"].astype(int),
        "name_cn_ref": raw["province_cn"],
        "province_en": raw["province_en"],
        "theater_command": raw["theater_command_2016"],
        "theater_command_cn": raw["theater_command_cn"],
        "theater_command_alt": raw["disputed_alternative"],
        "military_region_pre2016": raw["military_region_pre2016"],
    })


_SPACES = re.compile(r"[\s\u3000]+")
_FULL_TO_SHORT = {full: short for _, short, full, _ in _IDENTITY}
_SHORT_TO_CODE = {short: code for code, short, _, _ in _IDENTITY}


def normalise_name(name: str) -> str:
    """Strip all whitespace (incl. ideographic spaces) and administrative suffixes from a Chinese province name.

    ``'上   海'`` → ``'上海'``; ``'内蒙古自治区'`` → ``'内蒙古'``; ``'广西壮族自治区'`` → ``'广西'``.
    """
    s = _SPACES.sub("", str(name))
    return _FULL_TO_SHORT.get(s, s)


def code_for_name(name: str) -> int | None:
    """GB code for a Chinese province name (short or full, spaces ignored); ``None`` if unknown."""
    return _SHORT_TO_CODE.get(normalise_name(name))


def defence_presence(seven_sons_path: Path = paths.SEVEN_SONS,
                     key_labs_path: Path = paths.YEARBOOK / "PubSKLMost.rda") -> pd.DataFrame:
    """Counts of defence-related institutions by province (time-invariant, as of the lists' dates).

    - ``seven_sons_universities``: MIIT-supervised 'Seven Sons of National Defence' universities located in the
      province (reference file).
    - ``state_key_labs``: state key laboratories of all types (SKL, FSKL, PSKL) in MOST's list (``PubSKLMost``).
    - ``state_key_labs_defence``: those whose administrator or host institution matches
      :data:`DEFENCE_HOST_MARKERS` or names a Seven Sons university.
    """
    import pyreadr

    sons = pd.read_csv(seven_sons_path, dtype=str)
    for i, rec in sons.iterrows():
        if not str(rec["gb2260_province_code"]).isdigit() or int(rec["gb2260_province_code"]) not in PROVINCE_CODES:
            raise DataError(seven_sons_path, f"unknown province code {rec['gb2260_province_code']!r}",
                            row=i + 2, column="gb2260_province_code")
    sons_count = sons["gb2260_province_code"].astype(int).value_counts()

    labs = pyreadr.read_r(key_labs_path)["PubSKLMost"]
    labs = labs.assign(province_code=labs["province"].map(code_for_name))
    unknown = labs["province_code"].isna()
    if unknown.any():
        i = int(labs.index[unknown][0])
        raise DataError(key_labs_path, f"unknown province {labs.loc[i, 'province']!r}", row=i + 1, column="province")
    host = labs["institution"].fillna("") + "|" + labs["administrator"].fillna("")
    pattern = "|".join(map(re.escape, DEFENCE_HOST_MARKERS + tuple(sons["name_cn"])))
    labs["defence"] = host.str.contains(pattern, regex=True)
    out = pd.DataFrame({"province_code": list(PROVINCE_CODES)})
    out["seven_sons_universities"] = out["province_code"].map(sons_count).fillna(0).astype(int)
    out["state_key_labs"] = out["province_code"].map(labs.groupby("province_code").size()).fillna(0).astype(int)
    out["state_key_labs_defence"] = (out["province_code"].map(labs[labs["defence"]].groupby("province_code").size())
                                     .fillna(0).astype(int))
    return out


def province_table() -> pd.DataFrame:
    """Identity plus defence presence: the table written to ``data/processed/provinces.csv``."""
    return identity_table().merge(defence_presence(), on="province_code", validate="one_to_one")
