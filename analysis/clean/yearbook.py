"""Readers for the China Statistical Yearbook on Science and Technology tables (``data/raw/yearbook-sci-tech``).

The tables come from the R package ``techme`` as long-format ``.rda`` files with columns
``province, year, chn_block4, value, units, variables`` (``HitechFirmsPub``: ``index, year, province, num``).
Known defects handled here, each logged:

- province names with embedded spaces (``上   海``) — whitespace removed;
- OCR typos in province names (:data:`OCR_PROVINCE_TYPOS`), each mapped to the province that is otherwise absent
  from that table-year (the key-uniqueness check proves the mapping does not collide);
- national (``全国``) and regional aggregate rows (``东部地区`` …, including the OCR-garbled ``尔部地区``) — dropped;
- unit labels that contradict the variable dictionary (``varsList``), e.g. R&D FTE labelled 万元 in 2020 — the label
  is corrected to the dictionary's unit when the value's scale matches the same province's other years (a genuine
  unit change would show a scale jump and stops the run instead);
- years stored as text or float — parsed to integers (a non-integer year stops the run).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import paths
from analysis.clean import CleaningLog
from analysis.io import DataError
from analysis.provinces import NATIONAL_NAMES, code_for_name, normalise_name

# OCR typo → intended short name. Each was checked against the table-year in which it occurs: the intended
# province has no other row there (e.g. RDPatentAuthority 2012 has `山两` and no `山西` — Shanxi, not Shaanxi 陕西).
OCR_PROVINCE_TYPOS = {
    "内蒙占": "内蒙古",
    "江两": "江西",
    "江四": "江西",
    "山两": "山西",
    "两藏": "西藏",
    "四藏": "西藏",
    "浙汀": "浙江",
}
# Regional aggregates (not provinces); `尔部地区` is an OCR-garbled `东部地区`.
REGIONAL_AGGREGATES = frozenset({"东部地区", "中部地区", "西部地区", "东北地区", "尔部地区"})
# Variables that may legitimately be negative.
MAY_BE_NEGATIVE = frozenset({"hitech_profit"})
# Ratio bounds for accepting a corrected unit label: the value must be within this factor of the same province's
# median in the table's other years (a 万元 ↔ 人年 mislabel leaves the scale unchanged; a real ×10,000 would not).
UNIT_SCALE_TOLERANCE = 10.0

LONG_COLUMNS = ("province", "year", "value", "units", "variables")


def read_rda(path: Path, table: str) -> pd.DataFrame:
    """Read one data frame from an ``.rda`` file; DataError if the file or the object is unreadable."""
    import pyreadr

    try:
        result = pyreadr.read_r(str(path))
    except Exception as err:  # pyreadr raises its own error types for corrupt files
        raise DataError(path, f"cannot be read as an R data file ({type(err).__name__}: {err})") from None
    if table not in result:
        raise DataError(path, f"has no object named {table!r} (found {sorted(result)})")
    return result[table]


def variable_dictionary(path: Path = paths.YEARBOOK / "varsList.rda") -> pd.DataFrame:
    """The yearbook's variable dictionary: ``variables`` (code) → Chinese name and unit."""
    vl = read_rda(path, "varsList")
    for col in ("variables", "units", "chn_full_name"):
        if col not in vl.columns:
            raise DataError(path, f"missing column {col!r}", column=col)
    return vl.set_index("variables")


def _parse_year(values: pd.Series, path: Path) -> pd.Series:
    """Years stored as text ('2015') or float (2015.0) → int; anything else stops the run."""
    num = pd.to_numeric(values.astype("string").str.strip(), errors="coerce")
    bad = num.isna() | (num % 1 != 0)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(path, f"year {values.iloc[i]!r} is not an integer year", row=i + 1, column="year")
    return num.astype(int)


def _parse_value(values: pd.Series, path: Path, column: str) -> pd.Series:
    """Numeric cell values; a non-numeric or non-finite (±inf) cell stops the run (missing cells stay missing)."""
    if pd.api.types.is_numeric_dtype(values):
        num = values.astype(float)
    else:
        text = values.astype("string").str.strip()
        num = pd.to_numeric(text, errors="coerce")
        bad = num.isna() & text.notna() & (text != "")
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(path, f"non-numeric value {values.iloc[i]!r}", row=i + 1, column=column)
        num = num.astype(float)
    infinite = np.isinf(num.to_numpy())
    if infinite.any():
        i = int(np.flatnonzero(infinite)[0])
        raise DataError(path, f"non-finite value {num.iloc[i]!r}; cells hold finite numbers or NA", row=i + 1,
                        column=column)
    return num


def resolve_provinces(names: pd.Series, path: Path, table: str, log: CleaningLog) -> pd.Series:
    """Map raw province names to GB codes: strip spaces, fix OCR typos, mark aggregates as NA.

    Returns an ``Int64`` series (NA for national and regional aggregate rows). An unknown name stops the run.
    """
    cleaned = names.astype("string").map(normalise_name)
    spaced = names.astype("string").str.contains(r"\s", regex=True).fillna(False)
    if spaced.any():
        log.add("clean", path, "strip_spaces_in_province_name",
                f"{table}: removed embedded spaces from {int(spaced.sum())} province names (e.g. "
                f"{names[spaced].iloc[0]!r})", n_rows=int(spaced.sum()))
    typo = cleaned.isin(list(OCR_PROVINCE_TYPOS))
    for wrong, n in cleaned[typo].value_counts().sort_index().items():
        right = OCR_PROVINCE_TYPOS[wrong]
        log.add("clean", path, "fix_ocr_province_typo", f"{table}: {wrong!r} → {right!r}",
                province_code=code_for_name(right), n_rows=int(n))
    cleaned = cleaned.where(~typo, cleaned.map(OCR_PROVINCE_TYPOS))
    aggregate = cleaned.isin(list(NATIONAL_NAMES | REGIONAL_AGGREGATES))
    for name, n in cleaned[aggregate].value_counts().sort_index().items():
        log.add("clean", path, "drop_aggregate_row", f"{table}: dropped {name!r} (national or regional total)",
                n_rows=int(n))
    codes = cleaned.map(code_for_name)
    unknown = codes.isna() & ~aggregate
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise DataError(path, f"unknown province {names.iloc[i]!r}", row=i + 1, column="province")
    return codes.astype("Int64")


def clean_yearbook_table(raw: pd.DataFrame, table: str, variables: dict[str, str], dictionary: pd.DataFrame,
                         path: Path, log: CleaningLog) -> pd.DataFrame:
    """Clean one long-format yearbook table.

    ``variables`` maps source code → panel name (codes needed for cross-checks included). Returns a long frame
    ``province_code, year, variable, value`` (variable = panel name), one row per key, aggregates removed.
    """
    if table == "HitechFirmsPub":
        for col in ("year", "province", "num"):
            if col not in raw.columns:
                raise DataError(path, f"missing column {col!r}", column=col)
        raw = raw.assign(value=raw["num"], variables="num", units="个")
    for col in LONG_COLUMNS:
        if col not in raw.columns:
            raise DataError(path, f"missing column {col!r}", column=col)
    df = pd.DataFrame({
        "province_code": resolve_provinces(raw["province"], path, table, log),
        "year": _parse_year(raw["year"], path),
        "code": raw["variables"].astype("string"),
        "units": raw["units"].astype("string"),
        "value": _parse_value(raw["value"], path, "value"),
        "row": np.arange(1, len(raw) + 1),
    })
    df = df[df["province_code"].notna()]

    missing = sorted(set(variables) - set(df["code"].dropna()))
    if missing:
        raise DataError(path, f"expected variable(s) {missing} not found", column="variables")
    extra = sorted(set(df["code"].dropna()) - set(variables))
    if extra:
        log.add("clean", path, "ignore_unused_variable", f"{table}: variables not in configs/panel.yaml ignored: "
                f"{', '.join(extra)}", n_rows=int(df["code"].isin(extra).sum()))
    df = df[df["code"].isin(list(variables))].copy()

    dup = df.duplicated(["province_code", "year", "code"], keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        raise DataError(path, f"duplicate key: province {first['province_code']}, year {first['year']}, variable "
                        f"{first['code']} appears more than once", row=int(first["row"]), column="province")

    _correct_unit_labels(df, table, dictionary, path, log)
    df["variable"] = df["code"].map(variables)
    negative = (df["value"] < 0) & ~df["variable"].isin(list(MAY_BE_NEGATIVE))
    if negative.any():
        first = df[negative].iloc[0]
        raise DataError(path, f"negative value {first['value']} for a non-negative quantity ({first['code']})",
                        row=int(first["row"]), column="value")
    df["source_row"], df["source_column"], df["source_file"] = df["row"], "value", str(path)
    return df[["province_code", "year", "variable", "value", "source_row", "source_column", "source_file"]
              ].reset_index(drop=True)


def _correct_unit_labels(df: pd.DataFrame, table: str, dictionary: pd.DataFrame, path: Path,
                         log: CleaningLog) -> None:
    """Replace unit labels that contradict the variable dictionary, after checking the value's scale."""
    expected = df["code"].map(dictionary["units"].to_dict())  # NaN for a code not in the dictionary
    if table == "HitechFirmsPub":
        return
    no_unit = expected.isna()
    if no_unit.any():
        first = df[no_unit].iloc[0]
        raise DataError(path, f"variable {first['code']} is not in the variable dictionary (varsList)",
                        row=int(first["row"]), column="variables")
    wrong = df["units"] != expected
    if not wrong.any():
        return
    for (code, year, label), grp in df[wrong].groupby(["code", "year", "units"], sort=True):
        others = df[(df["code"] == code) & (df["year"] != year) & ~wrong]
        medians = others.groupby("province_code")["value"].median()
        ratio = grp.set_index("province_code")["value"] / medians.reindex(grp["province_code"]).to_numpy()
        ratio = ratio[(ratio > 0) & np.isfinite(ratio)]
        if len(ratio) and not ((ratio.median() < UNIT_SCALE_TOLERANCE) and (ratio.median() > 1 / UNIT_SCALE_TOLERANCE)):
            raise DataError(path, f"{code} in {year} is labelled {label!r} (dictionary: {expected[grp.index[0]]!r}) and "
                            f"its scale differs from other years by ×{ratio.median():.3g}; cannot tell which is right",
                            row=int(grp["row"].iloc[0]), column="units")
        log.add("clean", path, "correct_unit_label",
                f"{table}: {code} labelled {label!r} but the dictionary unit is {expected[grp.index[0]]!r}; values "
                f"match the scale of other years (median ratio {ratio.median():.2f}), label corrected, values unchanged",
                year=int(year), n_rows=len(grp))
    df.loc[wrong, "units"] = expected[wrong]
