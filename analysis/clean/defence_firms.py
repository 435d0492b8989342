"""Listed defence-industry firms by registered province and year, from the Shenwan classification history.

Sources (``data/raw/defence-listed-firms/``, see ``configs/data_sources.yaml``):

- Shenwan Hongyuan Research (申万) industry classification history of every A-share stock
  (``sw_stock_classification_history.xls``: 股票代码 stock code, 计入日期 date the code starts to apply, 行业代码
  six-digit industry code) and the SW2021 code table (``sw_class_codes_2021.xls``). Level-1 industry 国防军工
  (defence and military industry) has codes ``65xxxx``; the sector exists from 2014-02-21.
- Two snapshots of tushare's ``stock_basic`` list (2026-03-04, the universe; 2024-06-20, which still has the
  registered province of firms delisted between the two dates): code, name, ``area`` (registered province as a short
  name — ``深圳`` for Shenzhen, i.e. Guangdong, and ``内蒙`` for Inner Mongolia), ``list_date``, ``delist_date``.
- A CITIC (中信) level-1 snapshot of 2019-12-31 (code 28 taken to be 国防军工 — an inference), used only to
  cross-check the Shenwan membership.

Panel columns (counts of firms; a province with no such firm has a real 0, not a missing value). A firm is *listed
on 31 December of year t* if ``list_date ≤ 31 Dec t < delist_date`` (an empty ``delist_date`` means still listed),
with Beijing Stock Exchange (``.BJ``) firms counted from the exchange's opening (2021-11-15) at the earliest —
tushare gives the firms that moved from the NEEQ select tier their select-tier date (2020-07-27), before the exchange
existed:

- ``ever`` (``defence_listed_firms``): listed firms that Shenwan coded 65xxxx at any date of its history (a static
  definition, so a reclassification never moves the count; the year-end membership jumps with Shenwan's
  reclassifications of 2019-07-24 and 2021-07-30, inside the sanction window);
- ``yearend`` (``defence_listed_firms_yearend_sw``): listed firms whose Shenwan code in force on 31 Dec t (the row
  with the latest 计入日期 ≤ 31 Dec t) is 65xxxx — the documented alternative; missing before the sector existed;
- ``all`` (``listed_firms_total``): all listed A-share firms (the denominator of a share).

Province is the registered province of the 2026 list, filled for delisted firms from the 2024 list and, where a
delisted code's company lists again under another code (``province_from`` in the config), from that listing. A firm
whose province stays unknown is left out of the counts; the cleaning log names it (defence firms) or counts it by
year (all firms). A code that changed while Shenwan and CITIC keep the old one (``renamed_codes``: 300114 中航电测 →
302132 中航成飞, 2025) is read under its new code. The registered province can differ from where production is
(中航沈飞 is registered in Shandong, its plant is in Shenyang): the columns measure listed defence firms by seat, not
defence output.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.clean import CleaningLog
from analysis.clean.nbs import decode
from analysis.io import DataError
from analysis.provinces import PROVINCE_CODES, code_for_name

DEFINITIONS = ("ever", "yearend", "all")
FILE_KEYS = ("shenwan_history", "shenwan_codes", "stock_list", "stock_list_fill", "citic")
_KEYS = set(FILE_KEYS) | {"sector_prefix", "sector_name", "citic_sector", "citic_date", "exchange_opening",
                          "area_aliases", "renamed_codes", "province_from", "columns"}
HISTORY_HEADER = ("股票代码", "计入日期", "行业代码", "更新日期")
CODES_HEADER = ("行业代码", "一级行业名称", "二级行业名称", "三级行业名称")
STOCK_COLUMNS = ("ts_code", "symbol", "name", "area", "list_date", "delist_date", "status")
CITIC_COLUMNS = ("SecurityID", "ZXF")
_SIX_DIGITS = re.compile(r"^\d{6}$")
_TS_CODE = re.compile(r"^([0-9A-Z]{6})\.(SH|SZ|BJ)$")   # tushare gives a few long-delisted stocks letter codes (TS0018)
_CITIC_ID = re.compile(r"^(\d{6})\.(SSE|SZE)$")
_CITIC_CODE = re.compile(r"^(\d{2}|--)$")


# ---- configuration ----------------------------------------------------------------------------------------------

def check_config(block: dict, path: Path) -> None:
    """Validate the ``defence_firms`` block of ``configs/panel.yaml``; raise DataError naming the key."""
    where = "defence_firms"
    if not isinstance(block, dict):
        raise DataError(path, "expected a mapping", column=where)
    unknown = set(block) - _KEYS
    if unknown:
        raise DataError(path, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}", column=where)
    missing = _KEYS - set(block)
    if missing:
        raise DataError(path, f"missing key(s) {sorted(missing)}", column=where)
    for key in FILE_KEYS + ("sector_prefix", "sector_name", "citic_sector"):
        if not isinstance(block[key], str) or not block[key]:
            raise DataError(path, f"{key} must be a non-empty string (quote codes: \"65\")", column=f"{where}.{key}")
    if not isinstance(block["citic_date"], dt.date):
        raise DataError(path, "citic_date must be a date (YYYY-MM-DD)", column=f"{where}.citic_date")
    opening = block["exchange_opening"]
    if not isinstance(opening, dict) or not all(k in ("SH", "SZ", "BJ") and isinstance(v, dt.date)
                                                for k, v in opening.items()):
        raise DataError(path, "exchange_opening maps SH/SZ/BJ to a date", column=f"{where}.exchange_opening")
    if not isinstance(block["area_aliases"], dict) or any(code_for_name(v) is None
                                                          for v in block["area_aliases"].values()):
        raise DataError(path, "area_aliases maps a stock-list area to a province name known to analysis/provinces.py",
                        column=f"{where}.area_aliases")
    for key, fields in (("renamed_codes", ("old", "new", "note")), ("province_from", ("code", "from", "note"))):
        entries = block[key]
        if not isinstance(entries, list) or not all(
                isinstance(e, dict) and set(e) == set(fields) for e in entries):
            raise DataError(path, f"{key} is a list of {{{', '.join(fields)}}}", column=f"{where}.{key}")
        for e in entries:
            for f in fields[:2]:
                if not isinstance(e[f], str) or not _SIX_DIGITS.match(e[f]):
                    raise DataError(path, f"{key}: {f} {e[f]!r} is not a quoted six-digit stock code",
                                    column=f"{where}.{key}")
    columns = block["columns"]
    if not isinstance(columns, list) or not columns:
        raise DataError(path, "columns is a non-empty list", column=f"{where}.columns")
    for c in columns:
        if not isinstance(c, dict) or set(c) != {"name", "definition", "unit", "en", "cn"}:
            raise DataError(path, "each column has exactly name, definition, unit, en, cn", column=f"{where}.columns")
        if c["definition"] not in DEFINITIONS:
            raise DataError(path, f"column {c['name']}: definition {c['definition']!r} not one of {DEFINITIONS}",
                            column=f"{where}.columns")


# ---- readers ----------------------------------------------------------------------------------------------------

def _sheet(path: Path):
    """First sheet of a BIFF ``.xls`` workbook (xlrd; pandas' xlrd engine is deprecated, and xlrd directly gives
    each cell's type, so a stock code that lost its leading zeros is caught)."""
    import xlrd

    try:
        book = xlrd.open_workbook(str(path))
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except Exception as err:  # xlrd raises several unrelated types (XLRDError, CompDocError, struct.error) on bad files
        raise DataError(path, f"cannot be read as an Excel .xls workbook ({type(err).__name__}: {err})") from None
    if book.nsheets < 1:
        raise DataError(path, "workbook has no sheet")
    return book.sheet_by_index(0), book.datemode


def _check_header(path: Path, found: list, expected: tuple) -> None:
    if tuple(str(v).strip() for v in found[: len(expected)]) != expected:
        raise DataError(path, f"header {found!r} is not {list(expected)}", row=1)


def read_shenwan_history(path: Path) -> pd.DataFrame:
    """Shenwan classification history: one row per stock × date a code starts.

    Returns ``code`` (six-digit text), ``start`` (date the industry code applies from, datetime64 at midnight —
    a time of day in the file is dropped), ``industry_code`` (six-digit text) and ``row`` (1-based sheet row, header
    = row 1). A code stored as a number (leading zeros lost), a start that is not a date cell, an industry code that
    is not six digits, or two rows for one stock and date raise DataError naming the row and column.
    """
    import xlrd

    sheet, datemode = _sheet(path)
    if sheet.nrows < 2:
        raise DataError(path, "no data rows")
    _check_header(path, sheet.row_values(0), HISTORY_HEADER)
    codes, starts, industries = [], [], []
    for r in range(1, sheet.nrows):
        code, start, industry = sheet.cell(r, 0), sheet.cell(r, 1), sheet.cell(r, 2)
        if code.ctype != xlrd.XL_CELL_TEXT or not _SIX_DIGITS.match(code.value.strip()):
            raise DataError(path, f"stock code {code.value!r} is not six-digit text (leading zeros lost?)",
                            row=r + 1, column=HISTORY_HEADER[0])
        if start.ctype != xlrd.XL_CELL_DATE:
            raise DataError(path, f"start date {start.value!r} is not a date cell", row=r + 1, column=HISTORY_HEADER[1])
        value = industry.value if industry.ctype == xlrd.XL_CELL_TEXT else None
        if value is None or not _SIX_DIGITS.match(value.strip()):
            raise DataError(path, f"industry code {industry.value!r} is not six-digit text", row=r + 1,
                            column=HISTORY_HEADER[2])
        codes.append(code.value.strip())
        starts.append(xlrd.xldate.xldate_as_datetime(start.value, datemode))
        industries.append(value.strip())
    df = pd.DataFrame({"code": codes, "start": pd.to_datetime(starts).normalize(), "industry_code": industries,
                       "row": np.arange(2, sheet.nrows + 1)})
    dup = df.duplicated(["code", "start"])
    if dup.any():
        first = df[dup].iloc[0]
        raise DataError(path, f"stock {first['code']} has two industry codes starting {first['start']:%Y-%m-%d}",
                        row=int(first["row"]), column=HISTORY_HEADER[1])
    return df


def read_shenwan_codes(path: Path) -> pd.DataFrame:
    """SW2021 code table: ``industry_code``, ``level1``, ``level2``, ``level3`` (names; empty above the level)."""
    sheet, _ = _sheet(path)
    _check_header(path, sheet.row_values(0), CODES_HEADER)
    rows = []
    for r in range(1, sheet.nrows):
        values = [str(v).strip() for v in sheet.row_values(r)[:4]]
        if not _SIX_DIGITS.match(values[0]):
            raise DataError(path, f"industry code {values[0]!r} is not six digits", row=r + 1, column=CODES_HEADER[0])
        rows.append(values)
    df = pd.DataFrame(rows, columns=["industry_code", "level1", "level2", "level3"])
    if df["industry_code"].duplicated().any():
        raise DataError(path, f"industry code {df['industry_code'][df['industry_code'].duplicated()].iloc[0]} "
                        "listed twice", column=CODES_HEADER[0])
    return df


def _date_column(raw: pd.Series, path: Path, column: str, optional: bool) -> pd.Series:
    text = raw.str.strip()
    parsed = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
    bad = parsed.isna() & ((text != "") | (not optional))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(path, f"{raw.iloc[i]!r} is not a date YYYYMMDD", row=i + 2, column=column)
    return parsed


def read_stock_list(path: Path, encoding: str) -> pd.DataFrame:
    """A tushare ``stock_basic`` snapshot: ``symbol``, ``exchange`` (SH/SZ/BJ), ``name``, ``area``, ``list_date``,
    ``delist_date`` (NaT while listed), ``status`` (L listed, D delisted, P suspended) and ``row`` (line in the file).

    Checks: ts_code is ``<symbol>.<SH|SZ|BJ>`` (six digits, or six capitals and digits: tushare's placeholder for a
    few stocks delisted long ago, e.g. ``TS0018`` 上港集箱, delisted 2006); dates are YYYYMMDD; a delisting date exactly when status is D, after
    the listing date; one row per symbol.
    """
    import io

    raw = pd.read_csv(io.StringIO(decode(path, encoding)), dtype=str, keep_default_na=False)
    for col in STOCK_COLUMNS:
        if col not in raw.columns:
            raise DataError(path, f"missing column {col!r}", column=col)
    parts = raw["ts_code"].str.extract(_TS_CODE)
    bad = parts[0].isna() | (parts[0] != raw["symbol"])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(path, f"ts_code {raw['ts_code'].iloc[i]!r} is not '<symbol>.SH|SZ|BJ' for symbol "
                        f"{raw['symbol'].iloc[i]!r}", row=i + 2, column="ts_code")
    df = pd.DataFrame({"symbol": raw["symbol"], "exchange": parts[1], "name": raw["name"],
                       "area": raw["area"].str.strip(),
                       "list_date": _date_column(raw["list_date"], path, "list_date", optional=False),
                       "delist_date": _date_column(raw["delist_date"], path, "delist_date", optional=True),
                       "status": raw["status"].str.strip(), "row": np.arange(2, len(raw) + 2)})
    checks = [
        (~df["status"].isin(["L", "D", "P"]), "status", "status is not L, D or P"),
        ((df["status"] == "D") != df["delist_date"].notna(), "delist_date",
         "a delisting date is given exactly for status D"),
        (df["delist_date"] <= df["list_date"], "delist_date", "delisted on or before its listing date"),
        (df["symbol"].duplicated(), "symbol", "symbol listed twice"),
    ]
    for bad, column, message in checks:
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(path, f"{message} ({df['symbol'].iloc[i]})", row=i + 2, column=column)
    return df


def read_citic(path: Path, encoding: str) -> pd.DataFrame:
    """CITIC level-1 snapshot: ``symbol``, ``citic_code`` (two digits, or ``--`` = not classified), ``row``."""
    import io

    raw = pd.read_csv(io.StringIO(decode(path, encoding)), dtype=str, keep_default_na=False)
    for col in CITIC_COLUMNS:
        if col not in raw.columns:
            raise DataError(path, f"missing column {col!r}", column=col)
    ids = raw["SecurityID"].str.strip().str.extract(_CITIC_ID)
    codes = raw["ZXF"].str.strip()
    for bad, column, message in ((ids[0].isna(), "SecurityID", "is not '<six digits>.SSE|SZE'"),
                                 (~codes.str.match(_CITIC_CODE), "ZXF", "is not a two-digit code or '--'")):
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(path, f"{raw[column].iloc[i]!r} {message}", row=i + 2, column=column)
    df = pd.DataFrame({"symbol": ids[0], "citic_code": codes, "row": np.arange(2, len(raw) + 2)})
    if df["symbol"].duplicated().any():
        i = int(np.flatnonzero(df["symbol"].duplicated().to_numpy())[0])
        raise DataError(path, f"stock {df['symbol'].iloc[i]} listed twice", row=i + 2, column="SecurityID")
    return df


# ---- firms: province, listing spell, Shenwan membership --------------------------------------------------------

def resolve_firms(stocks: pd.DataFrame, fill: pd.DataFrame, block: dict, log: CleaningLog,
                  stock_path: Path, fill_path: Path) -> pd.DataFrame:
    """One row per stock of the 2026 list with ``province_code`` (Int64, NA if unknown), ``province_source`` and
    ``first_listed`` (the listing date, moved to the exchange's opening where it precedes it).

    Province: the list's own ``area``; if empty, the ``fill`` list's (same symbol); if still empty, the area of the
    same company's other listing named in ``province_from``. ``area_aliases`` first (``深圳`` → 广东, ``内蒙`` →
    内蒙古), then :func:`analysis.provinces.code_for_name`; an area that maps to no province raises DataError.
    """
    firms = stocks.copy()
    firms["province_source"] = np.where(firms["area"] != "", stock_path.name, "")
    fill_areas = dict(zip(fill["symbol"], fill["area"]))
    fill_area = firms["symbol"].map(lambda symbol: fill_areas.get(symbol, ""))
    filled = (firms["area"] == "") & (fill_area != "")
    firms.loc[filled, "area"] = fill_area[filled]
    firms.loc[filled, "province_source"] = fill_path.name
    log.add("clean", fill_path, "fill_province_from_older_list",
            f"{int(filled.sum())} delisted firms without an area in {stock_path.name} take it from {fill_path.name}",
            variable="province_code", n_rows=int(filled.sum()))
    by_symbol = firms.set_index("symbol")
    for entry in block["province_from"]:
        for code in (entry["code"], entry["from"]):
            if code not in by_symbol.index:
                raise DataError(stock_path, f"province_from: stock {code} is not in the list (configs/panel.yaml)",
                                column="symbol")
        target = firms["symbol"] == entry["code"]
        if firms.loc[target, "area"].iloc[0] == "" and by_symbol.at[entry["from"], "area"] != "":
            firms.loc[target, "area"] = by_symbol.at[entry["from"], "area"]
            firms.loc[target, "province_source"] = f"{stock_path.name} ({entry['from']})"
            log.add("clean", stock_path, "province_from_later_listing",
                    f"{entry['code']} takes the province of {entry['from']} ({by_symbol.at[entry['from'], 'area']}): "
                    f"{entry['note']}", variable="province_code")
    aliases = block["area_aliases"]
    mapped = firms["area"].map(lambda a: aliases.get(a, a))
    for alias, target in aliases.items():
        n = int((firms["area"] == alias).sum())
        log.add("clean", stock_path, "map_area_alias", f"area {alias!r} read as {target} ({n} firms)",
                variable="province_code", n_rows=n)
    codes = mapped.map(lambda a: code_for_name(a) if a else None)
    unknown = (mapped != "") & codes.isna()
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        src = fill_path if firms["province_source"].iloc[i] == fill_path.name else stock_path
        raise DataError(src, f"area {firms['area'].iloc[i]!r} of {firms['symbol'].iloc[i]} is not a province "
                        "(add an alias in configs/panel.yaml)", row=int(firms["row"].iloc[i]), column="area")
    firms["province_code"] = pd.array(codes, dtype="Int64")
    both = firms.merge(fill[fill["area"] != ""][["symbol", "area"]], on="symbol", suffixes=("", "_fill"))
    differ = both[(both["province_source"] == stock_path.name) & (both["area"] != both["area_fill"])
                  & (both["area"].map(lambda a: aliases.get(a, a)) != both["area_fill"].map(lambda a: aliases.get(a, a)))]
    log.add("clean", stock_path, "province_differs_between_snapshots",
            f"{len(differ)} firms have another registered province in {fill_path.name}; the newer list is used for "
            f"all years (a static province): {', '.join(differ['symbol'] + ' ' + differ['area_fill'] + '→' + differ['area'])}",
            variable="province_code", n_rows=len(differ))
    firms["first_listed"] = firms["list_date"]
    for exchange, opening in block["exchange_opening"].items():
        early = (firms["exchange"] == exchange) & (firms["list_date"] < pd.Timestamp(opening))
        firms.loc[early, "first_listed"] = pd.Timestamp(opening)
        log.add("clean", stock_path, "listed_from_exchange_opening",
                f"{int(early.sum())} {exchange} firms with a list_date before the exchange opened ({opening}) are "
                f"counted from {opening} (tushare gives their NEEQ select-tier date)", n_rows=int(early.sum()))
    return firms


def apply_renamed_codes(frame: pd.DataFrame, column: str, block: dict, stocks: pd.DataFrame, path: Path,
                        log: CleaningLog) -> pd.DataFrame:
    """Rows of a renamed stock code (``renamed_codes``: old → new, old absent from the stock list) take the new code."""
    out = frame.copy()
    for entry in block["renamed_codes"]:
        if entry["old"] in set(stocks["symbol"]) or entry["new"] not in set(stocks["symbol"]):
            raise DataError(path, f"renamed_codes {entry['old']} → {entry['new']}: the old code must be absent from "
                            "the stock list and the new one present (configs/panel.yaml)", column=column)
        hit = out[column] == entry["old"]
        out.loc[hit, column] = entry["new"]
        if hit.any():
            log.add("clean", path, "renamed_stock_code", f"{int(hit.sum())} rows of {entry['old']} read as "
                    f"{entry['new']}: {entry['note']}", n_rows=int(hit.sum()))
    return out


def sector_codes(history: pd.DataFrame, codes: pd.DataFrame, block: dict, history_path: Path,
                 codes_path: Path) -> pd.Series:
    """Boolean per history row: is the code in the sector (``sector_prefix``)? Checks the prefix against the code
    table (its level-1 code must be named ``sector_name``) and that every sector code in the history is in it."""
    prefix = block["sector_prefix"]
    top = codes[codes["industry_code"] == prefix.ljust(6, "0")]
    if top.empty or top["level1"].iloc[0] != block["sector_name"]:
        found = top["level1"].iloc[0] if len(top) else "absent"
        raise DataError(codes_path, f"level-1 code {prefix.ljust(6, '0')} is {found!r}, not "
                        f"{block['sector_name']!r} (sector_prefix in configs/panel.yaml)", column=CODES_HEADER[1])
    in_sector = history["industry_code"].str.startswith(prefix)
    stray = in_sector & ~history["industry_code"].isin(codes["industry_code"])
    if stray.any():
        first = history[stray].iloc[0]
        raise DataError(history_path, f"sector code {first['industry_code']} is not in {codes_path.name}",
                        row=int(first["row"]), column=HISTORY_HEADER[2])
    return in_sector


def code_on(history: pd.DataFrame, symbols: pd.Series, day: pd.Timestamp) -> pd.Series:
    """Shenwan industry code in force on ``day`` for each symbol (the latest start ≤ day; NaN before the first)."""
    current = history[history["start"] <= day].sort_values("start").groupby("code")["industry_code"].last()
    return symbols.map(current)


def listed_on(firms: pd.DataFrame, day: pd.Timestamp) -> pd.Series:
    """Listed at the end of ``day``: ``first_listed ≤ day < delist_date`` (no delisting date = still listed)."""
    return (firms["first_listed"] <= day) & (firms["delist_date"].isna() | (firms["delist_date"] > day))


def count_by_province(firms: pd.DataFrame, history: pd.DataFrame, in_sector: pd.Series, years,
                      columns: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts on 31 December of each year, by province, for each configured column.

    Returns (long frame ``province_code, year, variable, value`` over all 31 provinces × ``years``, zeros
    included; listed firms left out for an unknown province, one row per variable × year with ``n_unknown``).
    ``yearend`` is missing for years before the sector's first code in the history.
    """
    ever = set(history.loc[in_sector, "code"])
    sector_start = history.loc[in_sector, "start"].min()
    sector_history = history.assign(industry_code=np.where(in_sector, "S", "-"))
    records, unknown = [], []
    for year in years:
        day = pd.Timestamp(year, 12, 31)
        listed = listed_on(firms, day)
        selection = {"all": listed, "ever": listed & firms["symbol"].isin(ever),
                     "yearend": listed & (code_on(sector_history, firms["symbol"], day) == "S")}
        for col in columns:
            chosen = firms[selection[col["definition"]]]
            unknown.append({"variable": col["name"], "year": year, "n_unknown": int(chosen["province_code"].isna().sum()),
                            "symbols": " ".join(sorted(chosen.loc[chosen["province_code"].isna(), "symbol"]))})
            counts = chosen["province_code"].dropna().astype(int).value_counts()
            defined = col["definition"] != "yearend" or day >= sector_start
            for code in PROVINCE_CODES:
                records.append((code, year, col["name"], float(counts.get(code, 0)) if defined else np.nan))
    return (pd.DataFrame(records, columns=["province_code", "year", "variable", "value"]), pd.DataFrame(unknown))


def cohen_kappa_2x2(both: int, only_a: int, only_b: int, neither: int) -> float:
    """Cohen's kappa of two binary ratings from their 2 × 2 table: (p_o − p_e) / (1 − p_e), with observed agreement
    p_o = (both + neither) / n and chance agreement p_e = (a₁ b₁ + a₀ b₀) / n² from the margins (Cohen 1960).

    Written out because importing statsmodels' ``cohens_kappa`` (with scipy.stats) costs about 2 s in every clean
    run; tests check it against statsmodels.
    """
    n = both + only_a + only_b + neither
    p_observed = (both + neither) / n
    a_yes, b_yes = both + only_a, both + only_b
    p_chance = (a_yes * b_yes + (n - a_yes) * (n - b_yes)) / n ** 2
    return (p_observed - p_chance) / (1 - p_chance)


def citic_agreement(firms: pd.DataFrame, history: pd.DataFrame, in_sector: pd.Series, citic: pd.DataFrame,
                    day: pd.Timestamp, citic_sector: str) -> tuple[pd.DataFrame, dict]:
    """Agreement of Shenwan membership with CITIC ``citic_sector`` among stocks listed on ``day``.

    Compared: stocks listed on ``day`` (stock list dates) that the CITIC snapshot classifies (code not ``--``).
    Two Shenwan definitions: ever coded in the sector, and the code in force on ``day``. For each, the 2 × 2
    counts, the Jaccard index both / (both + only Shenwan + only CITIC) and Cohen's kappa (:func:`cohen_kappa_2x2`).
    Returns (table, disagreeing symbols by comparison).
    """
    listed = firms[listed_on(firms, day)]
    codes = listed["symbol"].map(citic.set_index("symbol")["citic_code"])
    n_absent, n_unclassified = int(codes.isna().sum()), int((codes == "--").sum())
    compared = listed[codes.notna() & (codes != "--")]
    in_citic = compared["symbol"].map(citic.set_index("symbol")["citic_code"]) == citic_sector
    ever = compared["symbol"].isin(set(history.loc[in_sector, "code"]))
    sector_history = history.assign(industry_code=np.where(in_sector, "S", "-"))
    on_day = code_on(sector_history, compared["symbol"], day) == "S"
    rows, disagree = [], {}
    for label, sw in (("shenwan_ever", ever), ("shenwan_on_date", on_day)):
        both, only_sw = int((sw & in_citic).sum()), int((sw & ~in_citic).sum())
        only_citic, neither = int((~sw & in_citic).sum()), int((~sw & ~in_citic).sum())
        kappa = cohen_kappa_2x2(both, only_sw, only_citic, neither)
        rows.append({"shenwan_definition": label, "citic_sector": citic_sector, "date": f"{day:%Y-%m-%d}",
                     "n_listed": len(listed), "n_not_in_citic": n_absent, "n_citic_unclassified": n_unclassified,
                     "n_compared": len(compared), "both": both, "only_shenwan": only_sw, "only_citic": only_citic,
                     "neither": neither, "jaccard": both / (both + only_sw + only_citic), "cohen_kappa": kappa})
        disagree[label] = {"only_shenwan": sorted(compared.loc[sw & ~in_citic, "symbol"]),
                           "only_citic": sorted(compared.loc[~sw & in_citic, "symbol"])}
    return pd.DataFrame(rows), disagree


def codebook_rows(block: dict) -> list[dict]:
    """Codebook rows (variable, labels, unit, source file and variable) for the configured columns."""
    stock_files = f"{block['stock_list']}; {block['stock_list_fill']} (province of delisted firms)"
    listing = "list_date ≤ 31 Dec < delist_date (BJ from the exchange's opening); area → province"
    sources = {
        "ever": (f"{block['shenwan_history']}; {stock_files}",
                 f"行业代码 {block['sector_prefix']}xxxx at any 计入日期 (ever); {listing}"),
        "yearend": (f"{block['shenwan_history']}; {stock_files}",
                    f"行业代码 in force on 31 Dec (latest 计入日期 ≤ 31 Dec) is {block['sector_prefix']}xxxx; {listing}"),
        "all": (stock_files, listing),
    }
    return [{"variable": c["name"], "label_en": c["en"], "label_cn": c["cn"], "unit": c["unit"],
             "source_file": sources[c["definition"]][0], "source_variable": sources[c["definition"]][1]}
            for c in block["columns"]]


# ---- the stage --------------------------------------------------------------------------------------------------

def read_defence_firms(block: dict, raw_dir: Path, years, log: CleaningLog, encodings: dict[str, str]
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the five files, build the counts and the CITIC cross-check, logging every rule applied.

    Returns (long frame ``province_code, year, variable, value`` for the configured columns, CITIC agreement table).
    """
    files = {key: Path(raw_dir) / block[key] for key in FILE_KEYS}

    def encoding(key):
        enc = encodings.get(block[key])
        if enc is None:
            raise DataError(files[key], "no declared encoding in configs/data_sources.yaml", column="encoding")
        return enc

    stocks = read_stock_list(files["stock_list"], encoding("stock_list"))
    fill = read_stock_list(files["stock_list_fill"], encoding("stock_list_fill"))
    history = read_shenwan_history(files["shenwan_history"])
    codes = read_shenwan_codes(files["shenwan_codes"])
    citic = read_citic(files["citic"], encoding("citic"))
    history = apply_renamed_codes(history, "code", block, stocks, files["shenwan_history"], log)
    citic = apply_renamed_codes(citic, "symbol", block, stocks, files["citic"], log)
    in_sector = sector_codes(history, codes, block, files["shenwan_history"], files["shenwan_codes"])
    firms = resolve_firms(stocks, fill, block, log, files["stock_list"], files["stock_list_fill"])

    ever = history[in_sector].groupby("code")["start"].min()
    log.add("clean", files["shenwan_history"], "sector_membership",
            f"{len(history)} rows, {history['code'].nunique()} stocks; {len(ever)} stocks coded "
            f"{block['sector_prefix']}xxxx ({block['sector_name']}) at some date; first sector code "
            f"{history.loc[in_sector, 'start'].min():%Y-%m-%d}", n_rows=len(history))
    log.add("clean", files["shenwan_history"], "shenwan_reclassification",
            "dates with five or more stocks moved into or out of the sector (the year-end membership count jumps; "
            f"the static count does not): {_reclassifications(history, in_sector)}")
    absent = sorted(set(ever.index) - set(firms["symbol"]))
    for code in absent:
        log.add("clean", files["shenwan_history"], "sector_stock_not_in_stock_list",
                f"{code} (first sector code {ever[code]:%Y-%m-%d}) is not in {files['stock_list'].name}: not counted")

    counts, unknown = count_by_province(firms, history, in_sector, years, block["columns"])
    defence_unknown = firms[firms["symbol"].isin(ever.index) & firms["province_code"].isna()]
    for _, firm in defence_unknown.iterrows():
        years_listed = [y for y in years if firm["first_listed"] <= pd.Timestamp(y, 12, 31)
                        and (pd.isna(firm["delist_date"]) or firm["delist_date"] > pd.Timestamp(y, 12, 31))]
        span = f"{years_listed[0]}–{years_listed[-1]}" if years_listed else "none"
        log.add("clean", files["stock_list"], "province_unknown_left_out",
                f"{firm['symbol']} {firm['name']} (listed {firm['list_date']:%Y-%m-%d}–"
                f"{firm['delist_date']:%Y-%m-%d}; sector member) has no area in either stock list: left out of the "
                f"counts; year-ends affected: {span}", variable="province_code", n_rows=len(years_listed))
    for name, grp in unknown.groupby("variable", sort=False):
        detail = ", ".join(f"{int(r.year)}: {r.n_unknown}" for r in grp.itertuples() if r.n_unknown)
        log.add("clean", files["stock_list"], "province_unknown_left_out",
                f"listed firms left out for an unknown province, by year: {detail or 'none'}", variable=name,
                n_rows=int(grp["n_unknown"].sum()))

    table, disagree = citic_agreement(firms, history, in_sector, citic, pd.Timestamp(block["citic_date"]),
                                      block["citic_sector"])
    for rec, (label, lists) in zip(table.to_dict("records"), disagree.items()):
        log.add("clean", files["citic"], "citic_crosscheck",
                f"Shenwan ({label}) vs CITIC {rec['citic_sector']} on {rec['date']}, {rec['n_compared']} listed stocks "
                f"classified by CITIC ({rec['n_not_in_citic']} listed stocks absent, {rec['n_citic_unclassified']} "
                f"unclassified): both {rec['both']}, only Shenwan {rec['only_shenwan']}, only CITIC "
                f"{rec['only_citic']}, neither {rec['neither']}; Jaccard {rec['jaccard']:.3f}, Cohen's kappa "
                f"{rec['cohen_kappa']:.3f}; only Shenwan: {' '.join(lists['only_shenwan'])}; only CITIC: "
                f"{' '.join(lists['only_citic'])}", n_rows=rec["n_compared"])
    return counts, table


def _reclassifications(history: pd.DataFrame, in_sector: pd.Series, min_moves: int = 5) -> str:
    """Dates on which at least ``min_moves`` stocks already in the history moved into or out of the sector (first
    listings excluded): ``'YYYY-MM-DD: n entered, m left; …'``."""
    h = history.assign(member=in_sector).sort_values(["code", "start"])
    before = h.groupby("code")["member"].shift()
    moved = h[before.notna()].assign(entered=lambda d: d["member"] & (before[d.index] == False),  # noqa: E712
                                     left=lambda d: ~d["member"] & (before[d.index] == True))  # noqa: E712
    per_day = moved.groupby("start")[["entered", "left"]].sum()
    per_day = per_day[per_day.sum(axis=1) >= min_moves]
    return "; ".join(f"{d:%Y-%m-%d}: {int(r.entered)} entered, {int(r.left)} left" for d, r in per_day.iterrows())
