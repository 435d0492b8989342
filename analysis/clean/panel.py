"""Assemble the province × year panel from the cleaned tables, add derived variables, check and document it.

Derived variables (formulas; units):

- ``gdp_per_capita`` = gdp × 1e8 / (population × 1e4) — yuan per resident (current prices);
- ``trade_openness_pct`` = trade_total / gdp × 100 — percent (both in 100m yuan, current prices);
- ``gdp_deflator`` — implicit GDP deflator, 2015 = 1, chained from nominal GDP growth over real GDP growth:
  P_t / P_{t-1} = (gdp_t / gdp_{t-1}) / (gdp_index_prev100_t / 100). Nominal GDP is the latest NBS vintage; the
  real index comes from the merged NBS panel, where it is filed one year late (row t holds year t−1's growth) and is
  realigned on reading (``year_offset`` in ``configs/panel.yaml``; the alignment is checked against nominal growth
  and logged). The two sources are different NBS releases, so revisions between vintages remain.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis import paths
from analysis.clean import CleaningLog
from analysis.clean.defence_firms import check_config as check_defence_config
from analysis.clean.defence_firms import codebook_rows as defence_codebook_rows
from analysis.clean.defence_firms import read_defence_firms
from analysis.clean.nbs import check_year_alignment, read_integrated_panel, read_nbs_export
from analysis.clean.yearbook import MAY_BE_NEGATIVE, clean_yearbook_table, read_rda, variable_dictionary
from analysis.io import DataError
from analysis.schema import did_you_mean
from analysis.provinces import PROVINCE_CODES, identity_table

INTEGRATED_PANEL = "nbs-province-panel/nbs_province_panel_2005_2024_integrated.csv"   # relative to data/raw
DEFENCE_CROSSCHECK = paths.DEFENCE_CROSSCHECK_NAME.removesuffix(".csv")  # side table of the clean stage (<key>.csv)
ID_COLUMNS = ["province_code", "year", "province_en", "name_cn", "theater_command"]
DERIVED = [
    {"name": "gdp_per_capita", "unit": "yuan per person", "en": "GDP per capita (current prices)",
     "cn": "人均地区生产总值", "source_file": "derived", "source_variable": "gdp*1e8/(population*1e4)"},
    {"name": "trade_openness_pct", "unit": "percent of GDP", "en": "Trade openness (imports + exports) / GDP",
     "cn": "贸易开放度", "source_file": "derived", "source_variable": "trade_total/gdp*100"},
    {"name": "gdp_deflator", "unit": "index, 2015 = 1", "en": "Implicit GDP deflator (chained; nominal GDP latest "
     "vintage, real index from the merged NBS panel realigned by one year: its row t holds year t-1's growth)", "cn": "地区生产总值平减指数", "source_file": "derived",
     "source_variable": "chain of (gdp_t/gdp_t-1)/(gdp_index_prev100_t/100), 2015 = 1"},
    {"name": "defence_listed_share_pct", "unit": "percent of listed firms", "en": "Defence-industry share of listed "
     "A-share firms: defence_listed_firms / listed_firms_total × 100 (registered province; a size-free measure of "
     "defence orientation)", "cn": "国防军工上市公司占比", "source_file": "derived",
     "source_variable": "defence_listed_firms/listed_firms_total*100"},
]


def load_config(path: Path = paths.PANEL_CONFIG) -> dict:
    """Read and validate ``configs/panel.yaml``: keys, types, year spans and ``year_offset`` through
    :class:`analysis.config_models.PanelFile`; here, what relates parts of the file (column names used once, the
    plausibility rules' columns, the defence-firm block)."""
    from analysis import config_models, schema

    cfg = schema.read_yaml(path)
    schema.validate(config_models.PanelFile, cfg, path)
    if "defence_firms" in cfg:
        check_defence_config(cfg["defence_firms"], path)
    names = [v["name"] for vs in cfg["yearbook"].values() for v in vs] + [
        v["name"] for vs in cfg["nbs"].values() for v in vs] + defence_columns(cfg)
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise DataError(path, f"panel column name(s) used twice: {sorted(dup)}")
    check_plausibility_config(cfg.get("plausibility", {}), set(names), path)
    return cfg


def check_plausibility_config(rules: dict, names: set[str], path: Path) -> None:
    """``plausibility`` in configs/panel.yaml: known keys, known panel columns, positive bounds."""
    allowed = {"percent", "components", "scale_ratio_max"}
    if not isinstance(rules, dict) or set(rules) - allowed:
        raise DataError(path, f"plausibility: allowed keys are {sorted(allowed)}", key="plausibility")
    for name in rules.get("percent", []):
        if name not in names:
            raise DataError(path, f"{name!r} is not a panel column{did_you_mean(name, names)}",
                            key="plausibility.percent")
    for i, rule in enumerate(rules.get("components", [])):
        where = f"plausibility.components[{i}]"
        if not isinstance(rule, dict) or set(rule) != {"total", "parts", "abs_tolerance"}:
            raise DataError(path, "need {total: <column>, parts: [<column>, ...], abs_tolerance: <number>}", key=where)
        for name in [rule["total"], *rule["parts"]]:
            if name not in names:
                raise DataError(path, f"{name!r} is not a panel column{did_you_mean(name, names)}", key=where)
    bound = rules.get("scale_ratio_max")
    if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float)) or bound <= 1):
        raise DataError(path, f"must be a number above 1, got {bound!r}", key="plausibility.scale_ratio_max")


def _where(rows: pd.DataFrame, fallback: Path) -> dict:
    """File, row and column of the first of ``rows`` (long-frame provenance columns), for a DataError."""
    r = rows.iloc[0]
    if "source_file" in rows and isinstance(r.get("source_file"), str):
        return {"file": Path(r["source_file"]), "row": int(r["source_row"]), "column": str(r["source_column"])}
    return {"file": fallback, "row": None, "column": str(r["variable"])}


def check_plausibility(long: pd.DataFrame, rules: dict, config: Path = paths.PANEL_CONFIG) -> None:
    """Reject values no real statistic can take, naming the raw file, row and column (rules in configs/panel.yaml).

    - every value finite; non-negative unless the variable may be negative (:data:`MAY_BE_NEGATIVE`);
    - ``percent`` variables in [0, 100];
    - ``components``: each part ≤ its total + ``abs_tolerance`` (the rounding of the two tables), same province-year;
    - ``scale_ratio_max`` R: a positive value more than R times, or less than 1/R of, the median of the same
      province's other positive years of that variable is a scale slip (a 元-for-万元 slip is ×10,000) or a typo.
    """
    def fail(rows: pd.DataFrame, what: str) -> None:
        w = _where(rows, config)
        raise DataError(w["file"], what, row=w["row"], column=w["column"])

    values = long["value"].to_numpy(dtype=float)
    bad = ~np.isfinite(values) & ~np.isnan(values)
    if bad.any():
        fail(long[bad], f"non-finite value {values[bad][0]!r}")
    negative = (long["value"] < 0) & ~long["variable"].isin(list(MAY_BE_NEGATIVE))
    if negative.any():
        fail(long[negative], f"negative value {long.loc[negative, 'value'].iloc[0]:g} in a non-negative quantity "
             f"({long.loc[negative, 'variable'].iloc[0]})")
    pct = long["variable"].isin(rules.get("percent", [])) & (long["value"] > 100)
    if pct.any():
        fail(long[pct], f"{long.loc[pct, 'variable'].iloc[0]} is a percentage but is "
             f"{long.loc[pct, 'value'].iloc[0]:g} (> 100)")
    keyed = long.set_index(["province_code", "year"])
    for rule in rules.get("components", []):
        total = keyed.loc[keyed["variable"] == rule["total"], "value"]
        for part in rule["parts"]:
            rows = keyed[keyed["variable"] == part]
            excess = rows["value"] - total.reindex(rows.index)
            over = (excess > rule["abs_tolerance"]).to_numpy()
            if over.any():
                fail(rows[over].reset_index(), f"{part} = {rows['value'][over].iloc[0]:g} exceeds its total "
                     f"{rule['total']} = {total.reindex(rows.index)[over].iloc[0]:g} in year "
                     f"{rows.index[over][0][1]} (plausibility.components in {paths.relative(config)})")
    bound = rules.get("scale_ratio_max")
    if bound:
        pos = long[long["value"] > 0]
        for (_, _), grp in pos.groupby(["province_code", "variable"], sort=True):
            if len(grp) < 3:
                continue
            v = grp["value"].to_numpy()
            # leave-one-out median: the suspect value must not set its own yardstick
            med = np.array([np.median(np.delete(v, i)) for i in range(len(v))])
            ratio = np.maximum(v / med, med / v)
            if (ratio > bound).any():
                i = int(np.argmax(ratio > bound))
                fail(grp.iloc[[i]], f"{grp['variable'].iloc[0]} = {v[i]:g} in {int(grp['year'].iloc[i])} is "
                     f"{ratio[i]:.3g} times off the median of the province's other years ({med[i]:g}; bound "
                     f"plausibility.scale_ratio_max = {bound:g} in {paths.relative(config)}); check the unit and digits")


def defence_columns(cfg: dict) -> list[str]:
    """Panel columns from the listed-defence-firms block (none if the config has no such block)."""
    return [c["name"] for c in cfg.get("defence_firms", {}).get("columns", [])]


def manifest_encodings(manifest: Path = paths.DATA_SOURCES) -> dict[str, str]:
    """Declared encodings of raw CSV files, by path relative to ``data/raw``."""
    doc = yaml.safe_load(Path(manifest).read_text(encoding="utf-8"))
    return {e["path"]: e["encoding"] for e in doc["files"] if e.get("encoding")}


def read_sources(cfg: dict, raw_dir: Path = paths.RAW, log: CleaningLog | None = None,
                 encodings: dict[str, str] | None = None) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Read and clean every configured source. Returns (long frame of panel variables, cross-check frames)."""
    log = log if log is not None else CleaningLog()
    encodings = encodings if encodings is not None else manifest_encodings()
    yearbook_dir = Path(raw_dir) / "yearbook-sci-tech"
    dictionary = variable_dictionary(yearbook_dir / "varsList.rda")
    frames, checks = [], {}
    for table, variables in cfg["yearbook"].items():
        codes = {v["code"]: v["name"] for v in variables}
        for chk in cfg.get("cross_checks", []):
            if chk["check_table"] == table:
                codes.setdefault(chk["check_code"], f"__check__{chk['check_code']}")
        path = yearbook_dir / f"{table}.rda"
        long = clean_yearbook_table(read_rda(path, table), table, codes, dictionary, path, log)
        is_check = long["variable"].str.startswith("__check__")
        for code in long.loc[is_check, "variable"].unique():
            checks[(table, code.removeprefix("__check__"))] = long[long["variable"] == code]
        frames.append(long[~is_check])
    for group, entries in cfg["nbs"].items():
        if group == "integrated":
            path = Path(raw_dir) / INTEGRATED_PANEL
            offsets = {e["name"]: e["year_offset"] for e in entries if e.get("year_offset")}
            frames.append(read_integrated_panel(path, {e["column"]: e["name"] for e in entries}, log, offsets))
            continue
        for entry in entries:
            path = Path(raw_dir) / entry["file"]
            encoding = encodings.get(entry["file"])
            if encoding is None:
                raise DataError(path, "no declared encoding in configs/data_sources.yaml", column="encoding")
            window = cfg["window"]
            # Every window year must be in the export (a truncated download stops here), except years before the
            # series' first published year (`first_published`): those stay missing, never imputed, and are logged.
            first = max(window["first_year"], entry.get("first_published", window["first_year"]))
            if first > window["first_year"]:
                log.add("clean", path, "not_published", f"{entry['name']}: first published for {first}; window years "
                        f"{window['first_year']}–{first - 1} left missing (never imputed)", n_rows=0)
            frames.append(read_nbs_export(path, encoding, entry["name"], log,
                                          range(first, window["last_year"] + 1)))
    if "defence_firms" in cfg:
        years = range(cfg["keep_years"]["first_year"], cfg["keep_years"]["last_year"] + 1)
        counts, crosscheck = read_defence_firms(cfg["defence_firms"], raw_dir, years, log, encodings)
        frames.append(counts)
        checks[DEFENCE_CROSSCHECK] = crosscheck
    return pd.concat(frames, ignore_index=True), checks


def run_cross_checks(long: pd.DataFrame, checks: dict, cfg: dict, log: CleaningLog, raw_dir: Path = paths.RAW) -> None:
    """The same quantity reported in two tables must agree up to the rounding of the coarser table.

    Tolerance: ``abs_tolerance`` in the check table's unit (half its rounding step), converted by ``factor``.
    """
    for chk in cfg.get("cross_checks", []):
        keep = long[long["variable"] == chk["keep"]].set_index(["province_code", "year"])["value"]
        other = checks[(chk["check_table"], chk["check_code"])].set_index(["province_code", "year"])["value"]
        both = pd.concat([keep, other * chk["factor"]], axis=1, keys=["keep", "other"], join="inner")
        diff = (both["keep"] - both["other"]).abs()
        tol = chk["abs_tolerance"] * chk["factor"]
        path = Path(raw_dir) / "yearbook-sci-tech" / f"{chk['check_table']}.rda"
        if (diff > tol).any():
            (code, year) = diff[diff > tol].index[0]
            raise DataError(path, f"{chk['check_code']} for province {code}, {year} differs from {chk['keep']} "
                            f"({chk['keep_table']}) by {diff.max():g} (> rounding tolerance {tol:g})",
                            column=chk["check_code"])
        log.add("clean", path, "cross_check_duplicate_variable",
                f"{chk['check_code']} ({chk['check_table']}) duplicates {chk['keep']} ({chk['keep_table']}): "
                f"{len(both)} province-years agree within rounding (max |diff| {diff.max():g}, tolerance {tol:g}); "
                f"kept {chk['keep_table']}'s finer values", variable=chk["keep"], n_rows=len(both))


def assemble(long: pd.DataFrame, cfg: dict, log: CleaningLog) -> pd.DataFrame:
    """Wide panel over all 31 provinces × ``keep_years``; derived variables; identity columns first."""
    first, last = cfg["keep_years"]["first_year"], cfg["keep_years"]["last_year"]
    outside = ~long["year"].between(first, last)
    if outside.any():
        log.add("clean", None, "restrict_years", f"dropped {int(outside.sum())} values outside {first}–{last} "
                "(keep_years in configs/panel.yaml)", n_rows=int(outside.sum()))
    long = long[~outside]
    wide = long.pivot(index=["province_code", "year"], columns="variable", values="value")
    grid = pd.MultiIndex.from_product([list(PROVINCE_CODES), range(first, last + 1)], names=["province_code", "year"])
    wide = wide.reindex(grid)
    order = [v["name"] for vs in cfg["yearbook"].values() for v in vs] + [
        v["name"] for vs in cfg["nbs"].values() for v in vs] + defence_columns(cfg)
    wide = wide[order].reset_index()
    wide["gdp_per_capita"] = wide["gdp"] * 1e8 / (wide["population"] * 1e4)
    wide["trade_openness_pct"] = wide["trade_total"] / wide["gdp"] * 100
    wide["gdp_deflator"] = _deflator(wide)
    if {"defence_listed_firms", "listed_firms_total"} <= set(wide.columns):
        wide["defence_listed_share_pct"] = (wide["defence_listed_firms"] / wide["listed_firms_total"] * 100).where(
            wide["listed_firms_total"] > 0)
    ident = identity_table()[["province_code", "province_en", "name_cn", "theater_command"]]
    panel = ident.merge(wide, on="province_code", how="right", validate="one_to_many")
    panel["province_code"] = panel["province_code"].astype("int64")
    panel["year"] = panel["year"].astype("int64")
    value_cols = [c for c in panel.columns if c not in ID_COLUMNS]
    panel[value_cols] = panel[value_cols].astype("float64")
    panel = panel[ID_COLUMNS + value_cols]
    return panel.sort_values(["province_code", "year"]).reset_index(drop=True)


def _deflator(wide: pd.DataFrame, base_year: int = 2015) -> pd.Series:
    """Chained implicit GDP deflator by province, ``base_year`` = 1 (NaN where a link is missing)."""
    out = pd.Series(np.nan, index=wide.index)
    for _, grp in wide.groupby("province_code", sort=False):
        grp = grp.sort_values("year")
        link = (grp["gdp"] / grp["gdp"].shift(1)) / (grp["gdp_index_prev100"] / 100)
        years = grp["year"].to_numpy()
        if base_year not in years:
            continue
        level = pd.Series(np.nan, index=grp.index)
        b = grp.index[years == base_year][0]
        level[b] = 1.0
        pos = list(grp.index)
        k = pos.index(b)
        for i in range(k + 1, len(pos)):
            level[pos[i]] = level[pos[i - 1]] * link[pos[i]]
        for i in range(k - 1, -1, -1):
            level[pos[i]] = level[pos[i + 1]] / link[pos[i + 1]]
        out[grp.index] = level
    return out


def check_panel(panel: pd.DataFrame, cfg: dict, where: Path = paths.PANEL) -> None:
    """Schema checks on the assembled panel: keys, provinces, years, signs, window coverage."""
    keys = panel[["province_code", "year"]]
    if keys.isna().any().any():
        raise DataError(where, "missing key values", column="province_code/year")
    if keys.duplicated().any():
        i = int(np.flatnonzero(keys.duplicated().to_numpy())[0])
        raise DataError(where, "duplicate province_code × year", row=i + 1, column="province_code")
    unknown = ~panel["province_code"].isin(PROVINCE_CODES)
    if unknown.any():
        raise DataError(where, f"unknown province {panel['province_code'][unknown].iloc[0]}", column="province_code")
    first, last = cfg["keep_years"]["first_year"], cfg["keep_years"]["last_year"]
    if not panel["year"].between(first, last).all():
        raise DataError(where, f"year outside {first}–{last}", column="year")
    w = panel[panel["year"].between(cfg["window"]["first_year"], cfg["window"]["last_year"])]
    n_years = cfg["window"]["last_year"] - cfg["window"]["first_year"] + 1
    if len(w) != len(PROVINCE_CODES) * n_years:
        raise DataError(where, f"window has {len(w)} province-years, expected {len(PROVINCE_CODES) * n_years}")
    numeric = panel.drop(columns=ID_COLUMNS).drop(columns=list(MAY_BE_NEGATIVE), errors="ignore")
    negative = (numeric < 0).any()
    if negative.any():
        raise DataError(where, "negative value in a non-negative quantity", column=negative[negative].index[0])


def codebook(panel: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """One row per panel column: label (en, cn), unit, source file and code, coverage in the window."""
    rows = [
        {"variable": "province_code", "label_en": "Province code (GB/T 2260)", "label_cn": "省级行政区划代码",
         "unit": "code", "source_file": "analysis/provinces.py", "source_variable": ""},
        {"variable": "year", "label_en": "Calendar year", "label_cn": "年份", "unit": "year", "source_file": "",
         "source_variable": ""},
        {"variable": "province_en", "label_en": "Province (English)", "label_cn": "省份英文名", "unit": "",
         "source_file": "reference/pla_theater_commands_2016_by_province.csv", "source_variable": "province_en"},
        {"variable": "name_cn", "label_en": "Province (Chinese, short)", "label_cn": "省份", "unit": "",
         "source_file": "analysis/provinces.py", "source_variable": ""},
        {"variable": "theater_command", "label_en": "PLA theater command (2016 reform)", "label_cn": "战区",
         "unit": "", "source_file": "reference/pla_theater_commands_2016_by_province.csv",
         "source_variable": "theater_command_2016"},
    ]
    for table, entries in cfg["yearbook"].items():
        for e in entries:
            rows.append({"variable": e["name"], "label_en": e["en"], "label_cn": e["cn"], "unit": e["unit"],
                         "source_file": f"yearbook-sci-tech/{table}.rda", "source_variable": e["code"]})
    for group, entries in cfg["nbs"].items():
        for e in entries:
            src = e.get("file", INTEGRATED_PANEL)
            rows.append({"variable": e["name"], "label_en": e["en"], "label_cn": e["cn"], "unit": e["unit"],
                         "source_file": src, "source_variable": e.get("column", e["name"])})
    if "defence_firms" in cfg:
        rows += defence_codebook_rows(cfg["defence_firms"])
    rows += [dict(variable=d["name"], label_en=d["en"], label_cn=d["cn"], unit=d["unit"],
                  source_file=d["source_file"], source_variable=d["source_variable"]) for d in DERIVED
             if d["name"] in panel.columns]
    book = pd.DataFrame(rows)
    first, last = cfg["window"]["first_year"], cfg["window"]["last_year"]
    w = panel[panel["year"].between(first, last)]
    years_present, missing = [], []
    for var in book["variable"]:
        have = panel.loc[panel[var].notna(), "year"]
        years_present.append(f"{have.min()}–{have.max()}" if len(have) else "")
        missing.append(int(w[var].isna().sum()))
    book["years_with_data"] = years_present
    book[f"n_missing_{first}_{last}"] = missing
    return book


def build(cfg: dict, raw_dir: Path = paths.RAW, encodings: dict | None = None, tables: dict | None = None
          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Raw files → (panel, codebook, cleaning log). Pure apart from reading ``raw_dir``.

    If ``tables`` is a dict, side tables for the CLI to write are put in it, by output name
    (``defence_firms_crosscheck``: Shenwan vs CITIC 国防军工 membership, see :mod:`analysis.clean.defence_firms`).
    """
    log = CleaningLog()
    long, checks = read_sources(cfg, raw_dir, log, encodings)
    check_plausibility(long, cfg.get("plausibility", {}))
    if tables is not None and DEFENCE_CROSSCHECK in checks:
        tables[DEFENCE_CROSSCHECK] = checks[DEFENCE_CROSSCHECK]
    run_cross_checks(long, checks, cfg, log, raw_dir)
    # The deflator divides nominal by real GDP growth, so the two must refer to the same year (checked, logged).
    real = next((e for e in cfg["nbs"].get("integrated", []) if e["name"] == "gdp_index_prev100"), None)
    if real is not None and "gdp" in set(long["variable"]):
        check_year_alignment(long, "gdp_index_prev100", "gdp", int(real.get("year_offset", 0)),
                             Path(raw_dir) / INTEGRATED_PANEL, log,
                             (cfg["keep_years"]["first_year"], cfg["keep_years"]["last_year"]))
    panel = assemble(long, cfg, log)
    check_panel(panel, cfg)
    n_missing = int(panel.drop(columns=ID_COLUMNS).isna().sum().sum())
    log.add("clean", None, "missing_stays_missing", f"{n_missing} province-year-variable cells have no source value "
            "and are left missing (never zero-filled or imputed)", n_rows=n_missing)
    return panel, codebook(panel, cfg), log.frame()
