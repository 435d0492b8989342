"""US Entity List additions in mainland China and Hong Kong: read, geocode, count by province and year.

Two input formats, detected from the header (:func:`read_entity_file`):

- the package's transcription ``data/raw/entity-list/entity_list_cn_additions_2015_2021.csv`` (columns
  ``entity_name, address, city, province_en, country, fr_citation, fr_date, source_url, note``; the rule id is
  ``rule=Rnn`` in ``note``). It is INCOMPLETE (about half the additions; see ``entity_list.rules`` in
  ``configs/shocks.yaml`` for which rules are complete), so every count is a LOWER BOUND and every first-listing
  year an UPPER BOUND (see below).
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
persons), and the year's coverage (share of rules transcribed completely). Counts from an incomplete source are
LOWER BOUNDS (an untranscribed entry can only add to them).

Cohorts (:func:`first_listing_years`), province attributes: ``first_listing_year`` is the first year a located
listing TREATS the province under the post rule of ``configs/shocks.yaml`` (the half-year rule of every event
indicator: Fujian Jinhua, 30 October 2018 -> 2019), 0 = not treated in the window; ``first_listing_year_tech``
counts only technology / military-end-use / export-control rules (each rule's ``reason`` in the config), not the
human-rights rules; ``*_earliest_plausible`` move a province earlier where an untranscribed entry of a partial or
missing rule plausibly sits in it (``entity_list.plausible_earlier_listings``). From an incomplete source an
observed first-listing year is an UPPER BOUND on the true first year (an untranscribed earlier listing can only
make it earlier; a 0 may hide a listing). Hong Kong entries and entries that could not be located are national
columns (same value for every province), never assigned to a province.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from pathlib import Path

import pandas as pd

from analysis.io import DataError
from analysis.paths import relative
from analysis.provinces import PROVINCE_CODES, identity_table
from analysis.shocks.config import name_key
from analysis.shocks.events import first_treated_year
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


@functools.lru_cache(maxsize=1)
def _province_keys() -> dict:
    ident = identity_table()
    to_code = {latin_key(k): c for c, en, py in zip(ident["province_code"], ident["province_en"], ident["pinyin"])
               for k in (en, py)}
    to_code[latin_key("Hong Kong")] = HK
    return to_code


def transcribed_code(value: str):
    """The transcription's ``province_en`` as a province code (int), :data:`HK`, None (blank) or
    ``"unknown:<text>"`` (a name the identity table does not know)."""
    if not value:
        return None
    code = _province_keys().get(latin_key(value))
    return f"unknown:{value}" if code is None else (code if code == HK else int(code))


def geocode_table(entities: pd.DataFrame, gaz: Gazetteer, fields=("address", "entity_name", "city"),
                  locations=()) -> pd.DataFrame:
    """``entities`` with the geocode columns of :func:`~analysis.shocks.geocode.geocode_entity` appended.

    ``locations``: the hand-checked table (:class:`~analysis.shocks.config.EntityLocation` rows), matched on
    :func:`~analysis.shocks.config.name_key` of the entity name. The transcription's own province is passed as
    the ``transcribed`` hint (it settles ambiguous matches only).
    """
    table = {name_key(loc.name): loc.province_code for loc in locations}
    geo = []
    for r in entities.to_dict("records"):
        hint = transcribed_code(r.get("transcribed_province_en", ""))
        geo.append(geocode_entity({"address": r["address"], "entity_name": r["entity_name"], "city": r["city"]},
                                  r["country"], gaz, fields,
                                  transcribed=hint if not (isinstance(hint, str) and hint.startswith("unknown:"))
                                  else None,
                                  table=table.get(name_key(r["entity_name"]))))
    geo = pd.DataFrame(geo, index=entities.index,
                       columns=["geo_province_code", "geo_hong_kong", "geo_status", "geo_basis", "geo_detail"])
    geo["geo_province_code"] = geo["geo_province_code"].astype("Int64")
    return pd.concat([entities, geo], axis=1)


def transcriber_agreement(geocoded: pd.DataFrame) -> pd.DataFrame:
    """Compare the geocode with the transcription's own ``province_en`` (the transcriber's guess), row by row.

    ``agreement``: ``agree``, ``disagree``, ``geocoder_only`` (transcriber left it blank),
    ``transcriber_only`` (geocoder listed it as unresolved/ambiguous/conflict), ``neither``.
    Rows that the transcription itself settled (``geo_basis`` ``transcription``) agree by construction.
    """
    t = geocoded["transcribed_province_en"].map(transcribed_code)
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


def listing_reasons(geocoded: pd.DataFrame, rules) -> pd.Series:
    """Why each row was listed: its rule's ``reason``, or the rule's ``entity_reasons`` entry for that name.

    Rows whose rule is not configured (a complete CSL source, whose rules are Federal Register citations) are
    ``unclassified``: they count in ``first_listing_year`` but not in the technology-only cohort.
    """
    by_id = {r.id: r for r in rules}
    out = []
    for rule_id, name in zip(geocoded["rule_id"], geocoded["entity_name"]):
        rule = by_id.get(rule_id)
        if rule is None:
            out.append("unclassified")
            continue
        override = {name_key(k): v for k, v in rule.entity_reasons.items()}
        out.append(override.get(name_key(name), rule.reason))
    return pd.Series(out, index=geocoded.index, name="listing_reason", dtype="object")


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


def check_rules(geocoded: pd.DataFrame, rules, file_for_errors=None, config_file=None) -> None:
    """Every transcribed row's rule must be in the configured rule list (else coverage would be wrong), and
    every name in a rule's ``entity_reasons`` must be a row of that rule (else the override is a typo)."""
    known = {r.id for r in rules}
    partial = geocoded[~geocoded["source_complete"]]
    bad = partial[~partial["rule_id"].isin(known)]
    if len(bad):
        rec = bad.iloc[0]
        raise DataError(rec["source_file"], f"rule {rec['rule_id']!r} is not in entity_list.rules of the config; "
                                            "add it with its completeness status", row=int(rec["source_row"]),
                        column="note")
    for i, rule in enumerate(rules):
        names = {name_key(n) for n in geocoded.loc[geocoded["rule_id"] == rule.id, "entity_name"]}
        for name in rule.entity_reasons:
            if name_key(name) not in names:
                raise DataError(config_file or "configs/shocks.yaml",
                                f"entity {name!r} is not a row of rule {rule.id} in the Entity List source(s)",
                                column=f"entity_list.rules[{i}].entity_reasons")


def check_locations(geocoded: pd.DataFrame, locations, not_placed, locations_file=None) -> None:
    """Every name of the hand-checked table must match a row of the source(s) (a name that matches nothing
    is a typo and would silently place nothing). Checked only where every source is the transcription."""
    if not len(geocoded) or (geocoded["source_format"] != "transcription").any():
        return
    names = {name_key(n) for n in geocoded["entity_name"]}
    for kind, items in (("placed", locations), ("not_placed", not_placed)):
        for i, item in enumerate(items):
            if name_key(item.name) not in names:
                raise DataError(locations_file or "configs/entity_locations.yaml",
                                f"{item.name!r} matches no entity name of the Entity List source(s)",
                                column=f"{kind}[{i}].name")


def first_listing_years(geocoded: pd.DataFrame, years, cutoff_month: int = 6, cutoff_day: int = 30,
                        rules=(), tech_reasons=(), plausible=()) -> pd.DataFrame:
    """Cohorts per province (all 31): the first year treated by a listing located there, by the post rule.

    A listing dated ``fr_date`` treats its province from :func:`~analysis.shocks.events.first_treated_year`
    (the same half-year rule as every event indicator: on or before the cutoff day of year t -> t, else t + 1;
    Fujian Jinhua, 30 October 2018 -> 2019). A first treated year after the last year of ``years`` is 0 (not
    treated in the window), like a province never listed. Columns:

    - ``first_listing_year``: every located listing;
    - ``first_listing_year_tech``: only listings whose reason (:func:`listing_reasons`) is in ``tech_reasons``
      (technology, military end use, export-control violations; not the human-rights rules);
    - ``first_listing_year_earliest_plausible`` and ``first_listing_year_tech_earliest_plausible``: the same,
      where a ``plausible`` entry (a province that an untranscribed entry of a partial or missing rule plausibly
      sits in) may make it earlier: min(observed, that rule's first treated year). The observed year is an upper
      bound on the true one (a missing listing can only make it earlier); this column is one plausible earlier
      value, for sensitivity analysis, not a lower bound.
    - ``first_listing_rule`` / ``first_listing_rule_tech``: the rule that set the year ("" when 0).
    """
    years = list(years)
    last = max(years)
    rows = geocoded[geocoded["geo_status"] == "province"].copy()
    rows = rows[rows["year"].isin(years)]
    rows["treated_year"] = [first_treated_year(dt.date.fromisoformat(d), cutoff_month, cutoff_day)
                            for d in rows["fr_date"]]
    rows["reason"] = listing_reasons(rows, rules) if len(rows) else pd.Series(dtype="object")
    rows = rows[rows["treated_year"] <= last]
    rows["province_code"] = rows["geo_province_code"].astype(int)
    out = pd.DataFrame({"province_code": list(PROVINCE_CODES)})

    def first(sub: pd.DataFrame, suffix: str) -> None:
        sub = sub.sort_values(["treated_year", "fr_date", "rule_id"])
        head = sub.drop_duplicates("province_code").set_index("province_code")
        year, rule = head["treated_year"].to_dict(), head["rule_id"].to_dict()
        out[f"first_listing_year{suffix}"] = pd.Series([int(year.get(c, 0)) for c in out["province_code"]],
                                                       dtype="int64")
        out[f"first_listing_rule{suffix}"] = [str(rule.get(c, "")) for c in out["province_code"]]

    first(rows, "")
    first(rows[rows["reason"].isin(list(tech_reasons))], "_tech")
    by_id = {r.id: r for r in rules}
    for suffix, tech_only in (("", False), ("_tech", True)):
        observed = out[f"first_listing_year{suffix}"]
        earliest = observed.copy()
        for p in plausible:
            rule = by_id[p.rule]
            if tech_only and rule.reason not in tech_reasons:
                continue
            year = first_treated_year(rule.first_date, cutoff_month, cutoff_day)
            if year > last:
                continue
            sel = out["province_code"] == p.province_code
            earliest[sel] = [year if (o == 0 or year < o) else o for o in earliest[sel]]
        out[f"first_listing_year{suffix}_earliest_plausible"] = earliest.astype("int64")
    return out


def province_year_counts(geocoded: pd.DataFrame, population: pd.DataFrame, years, rules,
                         all_complete: bool, cutoff_month: int = 6, cutoff_day: int = 30, tech_reasons=(),
                         plausible=()) -> pd.DataFrame:
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
    cohorts = first_listing_years(geocoded, years, cutoff_month, cutoff_day, rules, tech_reasons, plausible)
    cohorts = cohorts.drop(columns=[c for c in cohorts.columns if c.startswith("first_listing_rule")])
    out = out.merge(cohorts, on="province_code", how="left", validate="many_to_one")
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
                          else f"{r.first_date.isoformat()}..{r.last_date.isoformat()}", "basis": r.basis,
                          "reason": r.reason + (" (+ per entity)" if r.entity_reasons else "")}
                         for r in rules], columns=["rule_id", "status", "date", "basis", "reason"])
    out = meta.merge(counts.reset_index(), on="rule_id", how="outer")
    out["date"] = out["date"].fillna(out["fr_date"])
    out["status"] = out["status"].fillna("complete (source declared complete)")
    out["basis"] = out["basis"].fillna("")
    out["reason"] = out["reason"].fillna("unclassified")
    for c in ("rows", "in_province", "hong_kong", "unlocated"):
        out[c] = out[c].fillna(0).astype("int64")
    return out.drop(columns="fr_date").sort_values(["date", "rule_id"]).reset_index(drop=True)[
        ["rule_id", "date", "status", "reason", "rows", "in_province", "hong_kong", "unlocated", "basis"]]


def unresolved_rows(geocoded: pd.DataFrame, not_placed=()) -> pd.DataFrame:
    """Rows the geocoder would not place (ambiguous, conflict, unresolved), for the user to resolve by hand.

    ``not_placed_reason``: why the hand check left the entity without a province (``not_placed`` of the
    locations file), blank where it was not checked.
    """
    cols = ["source_file", "source_row", "entity_name", "address", "city", "country", "fr_date", "rule_id",
            "geo_status", "geo_detail", "transcribed_province_en"]
    bad = geocoded[~geocoded["geo_status"].isin(["province", "hong_kong"])]
    reasons = {name_key(n.name): n.reason for n in not_placed}
    out = bad[cols].reset_index(drop=True)
    out["not_placed_reason"] = [reasons.get(name_key(n), "") for n in out["entity_name"]]
    return out
