"""Assemble the shocks table (province_code x year), its codebook and the Markdown summary.

Pure functions of DataFrames and the validated config; :mod:`analysis.shocks.__main__` does the reading and
writing.
"""

from __future__ import annotations

import pandas as pd

from analysis.provinces import PROVINCE_CODES
from analysis.shocks.entity_list import (first_listing_years, listing_reasons, province_year_counts, rule_coverage,
                                         rule_table, transcriber_agreement, unresolved_rows)
from analysis.shocks.events import event_table, post_indicators
from analysis.shocks.exposure import compute_exposure, exposure_codebook

ENTITY_OUTPUT_COLUMNS = ["entity_list_new", "entity_list_cumulative", "entity_list_cumulative_per_million",
                         "entity_list_new_per_million", "first_listing_year", "first_listing_year_tech",
                         "first_listing_year_earliest_plausible", "first_listing_year_tech_earliest_plausible",
                         "entity_list_coverage",
                         "entity_list_coverage_cumulative", "entity_list_lower_bound", "entity_list_new_hong_kong",
                         "entity_list_new_unlocated", "entity_list_new_all"]


COHORT_COLUMNS = ["first_listing_year", "first_listing_year_tech", "first_listing_year_earliest_plausible",
                  "first_listing_year_tech_earliest_plausible"]


def build_shocks(panel: pd.DataFrame, provinces: pd.DataFrame, geocoded: pd.DataFrame, config,
                 panel_source="panel", provinces_source="provinces") -> pd.DataFrame:
    """One row per province_code x year of ``config.years``: post indicators, exposures, Entity List measures.

    Entity List columns are missing (NaN) in years outside ``entity_list.years``; the cohort columns
    (:data:`COHORT_COLUMNS`) are province attributes and are filled in every year.
    """
    years = config.years.years()
    grid = pd.DataFrame([(p, y) for p in PROVINCE_CODES for y in years], columns=["province_code", "year"])
    post = post_indicators(years, config.events, config.cutoff_month, config.cutoff_day)
    exposure = compute_exposure(panel, provinces, config, panel_source, provinces_source)
    el_years = [y for y in config.entity_years.years() if y in years]
    all_complete = all(s.complete for s in config.entity_sources)
    counts = province_year_counts(geocoded, panel, el_years, config.rules, all_complete, config.cutoff_month,
                                  config.cutoff_day, config.tech_reasons, config.plausible_listings)
    out = (grid.merge(post, on="year", how="left", validate="many_to_one")
           .merge(exposure, on="province_code", how="left", validate="many_to_one")
           .merge(counts, on=["province_code", "year"], how="left", validate="one_to_one"))
    for col in COHORT_COLUMNS:
        first = counts.groupby("province_code")[col].first()
        out[col] = out["province_code"].map(first).fillna(0).astype("int64")
    if set(el_years) == set(years):
        for c in ("entity_list_new", "entity_list_cumulative", "entity_list_new_hong_kong",
                  "entity_list_new_unlocated", "entity_list_new_all"):
            out[c] = out[c].astype("int64")
        out["entity_list_lower_bound"] = out["entity_list_lower_bound"].astype(bool)
    out["province_code"] = out["province_code"].astype("int64")
    out["year"] = out["year"].astype("int64")
    return out.sort_values(["province_code", "year"]).reset_index(drop=True)


def shocks_codebook(config, columns) -> pd.DataFrame:
    """Codebook for every column of the shocks table: column, label, unit, formula, years, source."""
    events = event_table(config.events, config.cutoff_month, config.cutoff_day)
    cutoff = f"{config.cutoff_month:02d}-{config.cutoff_day:02d}"
    el_years = f"{config.entity_years.first_year}-{config.entity_years.last_year}"
    lb = ("LOWER BOUND: the transcription holds about half the China/Hong Kong additions; see "
          "entity_list_coverage") if not all(s.complete for s in config.entity_sources) else "complete source(s)"
    rows = [dict(column="province_code", label="Province, GB/T 2260 code", unit="code", formula="key",
                 years="", source="analysis.provinces"),
            dict(column="year", label="Calendar year", unit="year", formula="key",
                 years=f"{config.years.first_year}-{config.years.last_year}", source="")]
    for e in events.itertuples():
        rows.append(dict(column=e.column, label=f"Post {e.label} ({e.role} event)", unit="0/1",
                         formula=f"1 if year >= {e.first_treated_year} (event {e.date}; treated from its year if on "
                                 f"or before {cutoff}, else from the next year)", years="all",
                         source=e.citation))
    rows += exposure_codebook(config).to_dict("records")
    src = "; ".join(str(s.path.name) for s in config.entity_sources)
    post = f"on or before {cutoff}: that year, else the next (post_rule)"
    ub = ("UPPER BOUND on the true first year: the transcription holds about half the additions, and an "
          "untranscribed earlier listing can only make it earlier (0 may hide a listing)"
          if not all(s.complete for s in config.entity_sources) else "complete source(s)")
    names = {p.province_code for p in config.plausible_listings}
    plausible_list = (": " + ", ".join(f"{p.rule} -> {p.province_code}" for p in config.plausible_listings)
                      if names else "")
    entity = {
        "entity_list_new": ("Entity List additions located in the province, by year of the Federal Register rule",
                            "count", f"rows geocoded to the province with fr_date in the year; {lb}"),
        "entity_list_cumulative": ("Entity List additions located in the province since the window start "
                                   "(ever listed; removals ignored)", "count",
                                   f"cumulative sum of entity_list_new from {config.entity_years.first_year}; {lb}"),
        "entity_list_cumulative_per_million": ("Cumulative additions per million residents", "per million persons",
                                               f"entity_list_cumulative / (population / 100), population in 10k "
                                               f"persons from the panel; {lb}"),
        "entity_list_new_per_million": ("Additions in the year per million residents", "per million persons",
                                        f"entity_list_new / (population / 100); {lb}"),
        "first_listing_year": ("First year a located listing treats the province (0 = none in the window)",
                               "year", f"min over the province's located listings of the first treated year of "
                                       f"fr_date ({post}); 0 if none or after {config.entity_years.last_year}; "
                                       f"{ub}"),
        "first_listing_year_tech": ("First year a located technology / military-end-use listing treats the "
                                    "province (0 = none in the window)", "year",
                                    "as first_listing_year, counting only rules (or entities of mixed rules) whose "
                                    f"reason is one of {', '.join(config.tech_reasons)} (entity_list.rules[].reason "
                                    f"in {config.file.name}); human-rights listings excluded; {ub}"),
        "first_listing_year_earliest_plausible": (
            "Sensitivity: first_listing_year moved earlier where an untranscribed entry of a partial or missing rule "
            "plausibly sits in the province", "year",
            "min(first_listing_year, first treated year of each rule in entity_list.plausible_earlier_listings for "
            f"the province{plausible_list}); one plausible earlier value, not a bound"),
        "first_listing_year_tech_earliest_plausible": (
            "Sensitivity: first_listing_year_tech moved earlier as in first_listing_year_earliest_plausible", "year",
            "as first_listing_year_earliest_plausible, only plausible entries of technology / military-end-use "
            "rules"),
        "entity_list_coverage": ("Share of the year's adding rules transcribed completely (national)", "share",
                                 "complete rules / rules that may fall in the year (entity_list.rules); 1 for a "
                                 "complete source"),
        "entity_list_coverage_cumulative": ("Share of all adding rules up to the year transcribed completely",
                                            "share", "complete rules / rules up to and including the year"),
        "entity_list_lower_bound": ("Counts of the year are lower bounds (national)", "bool",
                                    "entity_list_coverage < 1"),
        "entity_list_new_hong_kong": ("Additions located in Hong Kong in the year (national; not a province)",
                                      "count", "rows geocoded to Hong Kong"),
        "entity_list_new_unlocated": ("Mainland additions the geocoder could not place in the year (national)",
                                      "count", "rows listed in entity_list_unresolved.csv"),
        "entity_list_new_all": ("All China and Hong Kong additions transcribed in the year (national)", "count",
                                "all rows with fr_date in the year"),
    }
    for col, (label, unit, formula) in entity.items():
        rows.append(dict(column=col, label=label, unit=unit, formula=formula, years=el_years, source=src))
    book = pd.DataFrame(rows)
    missing = [c for c in columns if c not in set(book["column"])]
    if missing:
        raise ValueError(f"codebook has no entry for {missing}")
    return book.set_index("column").loc[list(columns)].reset_index()


def cohort_section(one: pd.DataFrame, geocoded: pd.DataFrame, provinces: pd.DataFrame, config) -> list[str]:
    """Markdown lines: cohort sizes under each definition and the cohort of every listed province."""
    names = provinces.set_index("province_code")["province_en"]
    years = config.entity_years.years()
    first_year = years[0]
    cutoff = f"{config.cutoff_month:02d}-{config.cutoff_day:02d}"
    detail = first_listing_years(geocoded, years, config.cutoff_month, config.cutoff_day, config.rules,
                                 config.tech_reasons, config.plausible_listings).set_index("province_code")
    located = geocoded[(geocoded["geo_status"] == "province") & geocoded["year"].isin(years)]
    calendar = located.groupby(located["geo_province_code"].astype(int))["year"].min()
    lines = ["## First-listing cohorts", "",
             f"A listing treats its province from the year given by the post rule of every event indicator (dated "
             f"on or before {cutoff}: that year, else the next), so Fujian Jinhua (30 October 2018) makes Fujian "
             f"a 2019 cohort. A first treated year after {years[-1]} is 0 (not treated in the window). "
             "`first_listing_year_tech` counts only the rules (or entities of mixed rules) whose reason is "
             + ", ".join(f"`{r}`" for r in config.tech_reasons) + " (not the human-rights rules). "
             "The `_earliest_plausible` columns move a province to the first treated year of a partial or missing "
             "rule whose untranscribed entries plausibly sit in it (sensitivity analysis; "
             "`entity_list.plausible_earlier_listings`).", ""]
    for col in COHORT_COLUMNS:
        c = one[col]
        sizes = c[c > 0].value_counts().sort_index()
        lines.append(f"- `{col}`: " + ", ".join(f"{y}: {n}" for y, n in sizes.items())
                     + f"; never in the window: {int((c == 0).sum())}.")
    always = sorted(int(p) for p in one.index[one["first_listing_year"] == first_year])
    if always:
        lines += ["", f"Always treated (cohort {first_year}, the first year of the window, so no untreated year is "
                      "observed): " + ", ".join(str(names.get(p, p)) for p in always) + ". The heterogeneity-robust "
                      "staggered estimators (Callaway-Sant'Anna, Sun-Abraham, imputation) drop them: with no "
                      "untreated year their effects are not identified (the TWFE event study and the Goodman-Bacon "
                      "decomposition keep them, as already-treated comparisons)."]
    table = []
    for code in PROVINCE_CODES:
        row = detail.loc[code]
        if row[COHORT_COLUMNS].max() == 0 and code not in calendar.index:
            continue
        table.append({"province": names.get(code, code),
                      "first FR year (calendar)": int(calendar.get(code, 0)),
                      "first_listing_year": int(row["first_listing_year"]),
                      "rule": row["first_listing_rule"],
                      "first_listing_year_tech": int(row["first_listing_year_tech"]),
                      "rule (tech)": row["first_listing_rule_tech"],
                      "earliest_plausible": int(row["first_listing_year_earliest_plausible"]),
                      "tech_earliest_plausible": int(row["first_listing_year_tech_earliest_plausible"])})
    lines += ["", "Listed provinces (0 = not treated in the window):", "",
              pd.DataFrame(table).to_markdown(index=False), ""]
    if config.plausible_listings:
        plaus = pd.DataFrame([{"rule": p.rule, "province": names.get(p.province_code, p.province_code),
                               "basis": p.basis, "source": p.source} for p in config.plausible_listings])
        lines += ["Plausible earlier listings used by the `_earliest_plausible` columns:", "", _md_table(plaus), ""]
    reasons = listing_reasons(located, config.rules) if len(located) else pd.Series(dtype="object")
    unclassified = int((reasons == "unclassified").sum())
    if unclassified:
        lines += [f"{unclassified} located rows belong to rules with no configured reason; they count in "
                  "`first_listing_year` but not in `first_listing_year_tech`.", ""]
    return lines


def _md_table(df: pd.DataFrame, floatfmt=".3f") -> str:
    return df.to_markdown(index=False, floatfmt=floatfmt)


def shocks_summary(shocks: pd.DataFrame, geocoded: pd.DataFrame, provinces: pd.DataFrame, config) -> str:
    """Markdown: events, exposure ranking, Entity List by province and year with coverage, geocode audit."""
    names = provinces.set_index("province_code")["province_en"]
    years = config.entity_years.years()
    partial = not all(s.complete for s in config.entity_sources)
    lines = ["# Sanction shocks by province and year", "",
             "Generated by `python -m analysis.shocks` from the panel, the province table and "
             f"`{config.file.name}`. Do not edit by hand.", ""]
    ev = event_table(config.events, config.cutoff_month, config.cutoff_day)
    lines += ["## Events and post indicators", "",
              f"An event dated on or before {config.cutoff_month:02d}-{config.cutoff_day:02d} of year t is treated "
              "from t, else from t + 1.", "",
              _md_table(ev[["column", "date", "role", "first_treated_year", "label"]]), ""]
    ex_cols = [m.name for m in config.ratio_measures] + [m.name for m in config.count_measures]
    comp = [c.name for c in config.composites]
    rank_by = f"{comp[0]}_z" if comp else f"{ex_cols[0]}_z"
    one = shocks.drop_duplicates("province_code").set_index("province_code")
    rank_cols = ex_cols + [f"{c}_z" for c in comp]
    if "exposure_defence" in ex_cols:
        rank_cols.append("exposure_defence_z")
    rank = one[rank_cols].copy()
    rank.insert(0, "province", names.reindex(rank.index).to_numpy())
    rank = rank.sort_values(rank_by, ascending=False).reset_index()
    lines += ["## Pre-shock exposure (ranked by " + f"`{rank_by}`)", "",
              f"Base years {config.base_years.first_year}-{config.base_years.last_year} (each measure's own years "
              "in the codebook, `shocks_codebook.csv`); no data from a treated year is used.", "",
              _md_table(rank), ""]
    zero = {m.name: int((one[f"{m.name}_zero_filled_years"] > 0).sum()) for m in config.ratio_measures}
    lines += ["Provinces with at least one blank numerator counted as 0: "
              + ", ".join(f"`{k}` {v}" for k, v in zero.items()) + ".", ""]

    in_years = geocoded[geocoded["year"].isin(years)]
    lines += ["## Entity List additions by province and year" + (" (LOWER BOUNDS)" if partial else ""), ""]
    if partial:
        lines += ["The transcription is incomplete (about half of the China and Hong Kong additions of 2015-2021; "
                  "complete for the rules marked `complete` below). Every count and per-capita rate is a lower "
                  "bound; every first-listing year is an upper bound on the true first year (an untranscribed "
                  "earlier listing can only make it earlier, and a province never listed here may have been "
                  "listed); `entity_list_coverage` gives the share of each year's rules transcribed completely.",
                  ""]
    located = in_years[in_years["geo_status"] == "province"]
    piv = located.pivot_table(index="geo_province_code", columns="year", values="entity_name", aggfunc="count",
                              fill_value=0)
    piv = piv.reindex(columns=years, fill_value=0)
    piv.index = [f"{names.get(int(c), c)}" for c in piv.index]
    piv["total"] = piv.sum(axis=1)
    piv = piv.sort_values("total", ascending=False)
    cov = rule_coverage(config.rules, years, not partial).set_index("year")
    extra = pd.DataFrame([
        in_years[in_years["geo_status"] == "hong_kong"].groupby("year").size().reindex(years, fill_value=0),
        in_years[~in_years["geo_status"].isin(["province", "hong_kong"])].groupby("year").size()
        .reindex(years, fill_value=0),
        in_years.groupby("year").size().reindex(years, fill_value=0),
    ], index=["Hong Kong (not a province)", "not located (see entity_list_unresolved.csv)", "all rows"])
    extra["total"] = extra.sum(axis=1)
    table = pd.concat([piv, extra]).astype(int).astype(str)
    table.loc["coverage (share of rules complete)"] = [f"{cov.loc[y, 'entity_list_coverage']:.2f}" for y in years] + [""]
    table.loc["rules in year (complete)"] = [f"{cov.loc[y, 'rules_in_year']} ({cov.loc[y, 'rules_complete']})"
                                             for y in years] + [""]
    lines += [table.reset_index(names="province").to_markdown(index=False), ""]
    lines += cohort_section(one, geocoded, provinces, config)

    lines += ["## Adding rules", "", _md_table(rule_table(geocoded, config.rules, years)), ""]
    agree = transcriber_agreement(geocoded)
    counts = agree["agreement"].value_counts()
    status = geocoded["geo_status"].value_counts()
    lines += ["## Geocoding audit", "",
              "Status of every row: " + ", ".join(f"{k} {v}" for k, v in status.items()) + ". Deciding field: "
              + ", ".join(f"{k or 'none'} {v}" for k, v in geocoded["geo_basis"].value_counts().items()) + ".", "",
              "Agreement with the transcription's own `province_en` (the transcriber's guess): "
              + ", ".join(f"{k} {v}" for k, v in counts.items()) + ".", ""]
    diff = agree[agree["agreement"].isin(["disagree", "geocoder_only", "transcriber_only"])]
    if len(diff):
        show = diff[["source_row", "entity_name", "transcribed_province_en", "geo_status", "geo_detail", "agreement"]]
        lines += ["Rows where the two differ (the geocoder's rule and the hand-checked table "
                  "`configs/entity_locations.yaml` are the package's; ambiguous rows are not guessed):",
                  "", _md_table(show), ""]
    return "\n".join(lines).rstrip() + "\n"
