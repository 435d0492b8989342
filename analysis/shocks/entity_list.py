"""US Entity List additions in mainland China and Hong Kong: read, geocode, count by province and year.

Two input formats, detected from the header (:func:`read_entity_file`):

- the package's transcription ``data/raw/entity-list/entity_list_cn_additions_2015_2021.csv`` (columns
  ``entity_name, address, city, province_en, country, fr_citation, fr_date, source_url, note``; the rule id is
  ``rule=Rnn`` in ``note``). It is INCOMPLETE (about half the additions; see ``entity_list.rules`` in
  ``configs/shocks.yaml`` for which rules are complete), so every count is a LOWER BOUND.
- the official Consolidated Screening List CSV (``source, entity_number, type, programs, name, ..., addresses,
  federal_register_notice, start_date, ...``): rows whose ``source`` contains "Entity List" with an address in
  a country of ``entity_list.countries`` (the last comma-separated part of each ``;``-separated address). The
  first such address is geocoded; the first Federal Register citation is the adding rule; ``start_date`` is the
  listing date. Declared ``complete: true`` in the config, it gives coverage 1.

Both become the same internal table (:data:`ENTITY_COLUMNS`). Counts are by calendar year of the Federal
Register date (``fr_date``), the publication of the adding rule.

Per province-year (:func:`province_year_counts`): ``entity_list_new`` (entries added that year located in the
province), ``entity_list_cumulative`` (added since the first year of ``entity_list.years``, removals ignored:
ever-listed), ``entity_list_cumulative_per_million`` (per million residents, population from the panel in 10k
persons), ``first_listing_year`` (first year with cumulative > 0; 0 = none in the window), and the year's
coverage (share of rules transcribed completely). Hong Kong entries and entries that could not be located are
national columns (same value for every province), never assigned to a province.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd

from analysis.io import DataError
from analysis.paths import relative
from analysis.provinces import PROVINCE_CODES, identity_table
from analysis.shocks.geocode import HK, Gazetteer, geocode_entity, latin_key

TRANSCRIPTION_COLUMNS = ("entity_name", "address", "city", "province_en", "country", "fr_citation", "fr_date",
                         "source_url", "note")
CSL_COLUMNS = ("source", "name", "addresses", "federal_register_notice", "start_date")
ENTITY_COLUMNS = ("source_file", "source_row", "source_format", "source_complete", "entity_name", "address",
                  "city", "country", "fr_citation", "fr_date", "year", "rule_id", "transcribed_province_en")
_RULE = re.compile(r"\brule=(R\d+)\b")


# Bytes 0x80-0x9f decoded as C1 controls are Windows-1252 punctuation in the official CSL export (Gui\x92an):
# map them back to the characters meant (Gui’an).
_C1_TO_CP1252 = {c: bytes([c]).decode("cp1252", errors="ignore") or None for c in range(0x80, 0xA0)}


def _clean_text(value: str) -> str:
    return str(value).translate(_C1_TO_CP1252).strip()


def detect_format(columns) -> str:
    """``transcription`` or ``csl`` from a header; anything else is an error for the caller to report."""
    cols = set(columns)
    if set(TRANSCRIPTION_COLUMNS) <= cols:
        return "transcription"
    if set(CSL_COLUMNS) <= cols:
        return "csl"
    return "unknown"


def _parse_date(value: str, file, row: int, column: str) -> dt.date:
    """An ISO date ``YYYY-MM-DD`` (a CSL time part after it is ignored), else a DataError at file/row/column."""
    text = str(value).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}([ T].*)?", text):
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            pass
    raise DataError(file, f"not a date YYYY-MM-DD: {value!r}", row=row, column=column)


def read_entity_file(path: str | Path, complete: bool, countries=("CN", "HK")) -> pd.DataFrame:
    """Read one Entity List file (either format) into the internal table (:data:`ENTITY_COLUMNS`)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    raw = raw.apply(lambda col: col.map(_clean_text))
    fmt = detect_format(raw.columns)
    if fmt == "unknown":
        need = [c for c in TRANSCRIPTION_COLUMNS if c not in raw.columns]
        raise DataError(path, "header is neither the transcription format nor the Consolidated Screening List "
                              f"format; missing transcription column(s) {need}", row=1, column=need[0])
    rows = []
    file = relative(path)
    for i, rec in enumerate(raw.to_dict("records")):
        line = i + 2  # header is line 1
        if fmt == "transcription":
            if not rec["entity_name"].strip():
                raise DataError(path, "empty entity name", row=line, column="entity_name")
            country = rec["country"].strip().upper()
            if country not in countries:
                continue
            date = _parse_date(rec["fr_date"], path, line, "fr_date")
            rule = _RULE.search(rec["note"])
            rows.append(dict(source_row=line, entity_name=rec["entity_name"].strip(), address=rec["address"].strip(),
                             city=rec["city"].strip(), country=country, fr_citation=rec["fr_citation"].strip(),
                             fr_date=date, rule_id=rule.group(1) if rule else rec["fr_citation"].strip(),
                             transcribed_province_en=rec["province_en"].strip()))
        else:
            if "entity list" not in rec["source"].lower():
                continue
            addresses = [a.strip() for a in rec["addresses"].split(";") if a.strip()]
            located = [(a, a.rsplit(",", 1)[-1].strip().upper()) for a in addresses]
            located = [(a, c) for a, c in located if c in countries]
            if not located:
                continue
            if not rec["name"].strip():
                raise DataError(path, "empty entity name", row=line, column="name")
            if not rec["start_date"].strip():
                raise DataError(path, "missing listing date", row=line, column="start_date")
            date = _parse_date(rec["start_date"], path, line, "start_date")
            address, country = located[0]
            citation = rec["federal_register_notice"].split(",")[0].strip()
            rows.append(dict(source_row=line, entity_name=rec["name"].strip(), address=address, city="",
                             country=country, fr_citation=citation, fr_date=date, rule_id=citation or "unknown",
                             transcribed_province_en=""))
    out = pd.DataFrame(rows, columns=[c for c in ENTITY_COLUMNS if c not in
                                      ("source_file", "source_format", "source_complete", "year")])
    out.insert(0, "source_file", file)
    out.insert(2, "source_format", fmt)
    out.insert(3, "source_complete", bool(complete))
    out["year"] = [d.year for d in out["fr_date"]] if len(out) else pd.Series(dtype="int64")
    out["year"] = out["year"].astype("int64")
    out["fr_date"] = [d.isoformat() for d in out["fr_date"]]
    return out[list(ENTITY_COLUMNS)]


def read_entity_sources(sources, countries=("CN", "HK")) -> pd.DataFrame:
    """All configured sources, stacked; an entity repeated across files (same name key and date) is kept once."""
    frames = [read_entity_file(s.path, s.complete, countries) for s in sources]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(ENTITY_COLUMNS))
    key = table["entity_name"].map(latin_key) + "|" + table["fr_date"]
    return table[~key.duplicated()].reset_index(drop=True)


def geocode_table(entities: pd.DataFrame, gaz: Gazetteer, fields=("address", "entity_name", "city")) -> pd.DataFrame:
    """``entities`` with the geocode columns of :func:`~analysis.shocks.geocode.geocode_entity` appended."""
    geo = [geocode_entity({"address": r["address"], "entity_name": r["entity_name"], "city": r["city"]},
                          r["country"], gaz, fields) for r in entities.to_dict("records")]
    geo = pd.DataFrame(geo, index=entities.index,
                       columns=["geo_province_code", "geo_hong_kong", "geo_status", "geo_basis", "geo_detail"])
    geo["geo_province_code"] = geo["geo_province_code"].astype("Int64")
    return pd.concat([entities, geo], axis=1)


def transcriber_agreement(geocoded: pd.DataFrame) -> pd.DataFrame:
    """Compare the geocode with the transcription's own ``province_en`` (the transcriber's guess), row by row.

    ``agreement``: ``agree``, ``disagree``, ``geocoder_only`` (transcriber left it blank),
    ``transcriber_only`` (geocoder listed it as unresolved/ambiguous/conflict), ``neither``.
    """
    ident = identity_table()
    to_code = {latin_key(k): c for c, en, py in zip(ident["province_code"], ident["province_en"], ident["pinyin"])
               for k in (en, py)}
    to_code[latin_key("Hong Kong")] = HK

    def transcribed(v):
        if not v:
            return None
        code = to_code.get(latin_key(v))
        if code is None:
            return f"unknown:{v}"
        return code

    t = geocoded["transcribed_province_en"].map(transcribed)
    g = [HK if hk else (int(c) if pd.notna(c) else None)
         for c, hk in zip(geocoded["geo_province_code"], geocoded["geo_hong_kong"])]
    status = []
    for a, b in zip(t, g):
        if a is None and b is None:
            status.append("neither")
        elif a is None:
            status.append("geocoder_only")
        elif b is None:
            status.append("transcriber_only")
        else:
            status.append("agree" if a == b else "disagree")
    return geocoded.assign(transcribed_code=[str(x) if x is not None else "" for x in t], agreement=status)


def rule_coverage(rules, years, all_complete: bool) -> pd.DataFrame:
    """Per year: rules that may fall in it, complete ones, and the coverage share.

    ``entity_list_coverage`` = complete / rules in the year (1.0 when every source is complete or the year has
    no rule); ``entity_list_coverage_cumulative`` counts every rule up to and including the year.
    """
    out = []
    for y in years:
        in_year = [r for r in rules if y in r.years]
        upto = [r for r in rules if min(r.years) <= y]
        share = (sum(r.status == "complete" for r in in_year) / len(in_year)) if in_year else 1.0
        share_cum = (sum(r.status == "complete" for r in upto) / len(upto)) if upto else 1.0
        out.append(dict(year=y, rules_in_year=len(in_year), rules_complete=sum(r.status == "complete" for r in in_year),
                        entity_list_coverage=1.0 if all_complete else share,
                        entity_list_coverage_cumulative=1.0 if all_complete else share_cum))
    return pd.DataFrame(out)


def check_rules(geocoded: pd.DataFrame, rules, file_for_errors=None) -> None:
    """Every transcribed row's rule must be in the configured rule list (else coverage would be wrong)."""
    known = {r.id for r in rules}
    partial = geocoded[~geocoded["source_complete"]]
    bad = partial[~partial["rule_id"].isin(known)]
    if len(bad):
        rec = bad.iloc[0]
        raise DataError(rec["source_file"], f"rule {rec['rule_id']!r} is not in entity_list.rules of the config; "
                                            "add it with its completeness status", row=int(rec["source_row"]),
                        column="note")


def province_year_counts(geocoded: pd.DataFrame, population: pd.DataFrame, years, rules,
                         all_complete: bool) -> pd.DataFrame:
    """Province x year Entity List measures for ``years`` (every province in every year).

    ``population``: ``province_code``, ``year``, ``population`` (10k persons). Returns the columns described in
    the module docstring plus national ``entity_list_new_hong_kong``, ``entity_list_new_unlocated`` and
    ``entity_list_new_all`` and ``entity_list_lower_bound`` (True unless the year's coverage is 1).
    """
    years = list(years)
    rows = geocoded[geocoded["year"].isin(years)]
    located = rows[rows["geo_status"] == "province"]
    grid = pd.MultiIndex.from_product([list(PROVINCE_CODES), years], names=["province_code", "year"])
    new = (located.groupby([located["geo_province_code"].astype(int).rename("province_code"), "year"]).size()
           .reindex(grid, fill_value=0).rename("entity_list_new"))
    out = new.reset_index()
    out["entity_list_cumulative"] = out.groupby("province_code")["entity_list_new"].cumsum()
    pop = population[["province_code", "year", "population"]].copy()
    pop["province_code"] = pop["province_code"].astype(int)
    pop["year"] = pop["year"].astype(int)
    out = out.merge(pop, on=["province_code", "year"], how="left", validate="one_to_one")
    # population is in 10k persons: millions = population / 100.
    out["entity_list_cumulative_per_million"] = out["entity_list_cumulative"] / (out["population"] / 100.0)
    out["entity_list_new_per_million"] = out["entity_list_new"] / (out["population"] / 100.0)
    first = out[out["entity_list_cumulative"] > 0].groupby("province_code")["year"].min()
    out["first_listing_year"] = out["province_code"].map(first).fillna(0).astype("int64")
    national = pd.DataFrame({"year": years})
    national["entity_list_new_hong_kong"] = national["year"].map(
        rows[rows["geo_status"] == "hong_kong"].groupby("year").size()).fillna(0).astype("int64")
    national["entity_list_new_unlocated"] = national["year"].map(
        rows[~rows["geo_status"].isin(["province", "hong_kong"])].groupby("year").size()).fillna(0).astype("int64")
    national["entity_list_new_all"] = national["year"].map(rows.groupby("year").size()).fillna(0).astype("int64")
    national = national.merge(rule_coverage(rules, years, all_complete)[
        ["year", "entity_list_coverage", "entity_list_coverage_cumulative"]], on="year")
    national["entity_list_lower_bound"] = national["entity_list_coverage"] < 1.0
    out = out.merge(national, on="year", how="left").drop(columns="population")
    return out.sort_values(["province_code", "year"]).reset_index(drop=True)


def rule_table(geocoded: pd.DataFrame, rules, years) -> pd.DataFrame:
    """Per adding rule: transcribed rows and where they were located (sums equal the rows of each rule)."""
    rows = geocoded[geocoded["year"].isin(list(years))]
    g = rows.groupby("rule_id")
    counts = pd.DataFrame({
        "rows": g.size(),
        "in_province": g["geo_status"].apply(lambda s: int((s == "province").sum())),
        "hong_kong": g["geo_status"].apply(lambda s: int((s == "hong_kong").sum())),
        "unlocated": g["geo_status"].apply(lambda s: int((~s.isin(["province", "hong_kong"])).sum())),
        "fr_date": g["fr_date"].min(),
    })
    meta = pd.DataFrame([{"rule_id": r.id, "status": r.status,
                          "date": r.first_date.isoformat() if r.first_date == r.last_date
                          else f"{r.first_date.isoformat()}..{r.last_date.isoformat()}", "basis": r.basis}
                         for r in rules], columns=["rule_id", "status", "date", "basis"])
    out = meta.merge(counts.reset_index(), on="rule_id", how="outer")
    out["date"] = out["date"].fillna(out["fr_date"])
    out["status"] = out["status"].fillna("complete (source declared complete)")
    out["basis"] = out["basis"].fillna("")
    for c in ("rows", "in_province", "hong_kong", "unlocated"):
        out[c] = out[c].fillna(0).astype("int64")
    return out.drop(columns="fr_date").sort_values(["date", "rule_id"]).reset_index(drop=True)[
        ["rule_id", "date", "status", "rows", "in_province", "hong_kong", "unlocated", "basis"]]


def unresolved_rows(geocoded: pd.DataFrame) -> pd.DataFrame:
    """Rows the geocoder would not place (ambiguous, conflict, unresolved), for the user to resolve by hand."""
    cols = ["source_file", "source_row", "entity_name", "address", "city", "country", "fr_date", "rule_id",
            "geo_status", "geo_detail", "transcribed_province_en"]
    bad = geocoded[~geocoded["geo_status"].isin(["province", "hong_kong"])]
    return bad[cols].reset_index(drop=True)
