"""Check the reproduced study's published claims against our indices, method by method.

Each claim in configs/index.yaml names a rule (below), a metric column and its parameters. For each method a rule
returns our number and whether the claim holds; :func:`verdict` turns the per-method results into
"supported" (every method that can evaluate it passes), "not supported" (none passes), "depends on method"
(some do) or "not evaluable". Nothing here is tuned to the claims: the thresholds are the study's own words.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from analysis.index.config import IndexConfig

SUPPORTED, NOT_SUPPORTED, DEPENDS, NOT_EVALUABLE = "supported", "not supported", "depends on method", "not evaluable"


def national_series(indices: pd.DataFrame, metric: str, how: str = "mean",
                    population: pd.DataFrame | None = None, provinces: list[int] | None = None) -> pd.Series:
    """National level by year over the provinces observed that year (or only ``provinces``): the unweighted mean
    (``how='mean'``) or the population-weighted mean (``population``: province_code, year, population)."""
    df = indices.loc[indices[metric].notna(), ["province_code", "year", metric]]
    if provinces is not None:
        df = df.loc[df["province_code"].isin(provinces)]
    if how == "mean":
        return df.groupby("year")[metric].mean()
    if population is None:
        raise ValueError("population-weighted national level needs the population column")
    df = df.merge(population[["province_code", "year", "population"]], on=["province_code", "year"], how="left")
    df = df.loc[df["population"].notna()]
    df["_wx"] = df[metric] * df["population"]
    g = df.groupby("year")
    return g["_wx"].sum() / g["population"].sum()


def observed_in(indices: pd.DataFrame, metric: str, years: list[int]) -> list[int]:
    """Province codes with ``metric`` observed in every one of ``years`` (a balanced comparison set)."""
    sub = indices.loc[indices["year"].isin(years) & indices[metric].notna()]
    counts = sub.groupby("province_code")["year"].nunique()
    return sorted(counts.index[counts == len(set(years))].tolist())


def _value(indices: pd.DataFrame, metric: str, code: int, year: int) -> float:
    s = indices.loc[(indices["province_code"] == code) & (indices["year"] == year), metric]
    return float(s.iloc[0]) if len(s) == 1 else np.nan


def _theater_table(indices: pd.DataFrame, metric: str, years: list[int], agg: str,
                   provinces: list[int] | None = None) -> pd.Series:
    """Theater aggregate (``agg`` over province-years) of ``metric`` in ``years``, over observed values (and only
    ``provinces`` when given)."""
    sub = indices.loc[indices["year"].isin(years) & indices[metric].notna()]
    if provinces is not None:
        sub = sub.loc[sub["province_code"].isin(provinces)]
    if sub.empty:
        return pd.Series(dtype=float)
    return sub.groupby("theater_command")[metric].agg(agg)


def _ranking(table: pd.Series) -> str:
    return "; ".join(f"{k} {v:.3f}" for k, v in table.sort_values(ascending=False).items())


Result = tuple[float, bool | None, str]


def rule_province_value_above(ix, spec, national) -> Result:
    v = _value(ix, spec["metric"], spec["province_code"], spec["year"])
    return (v, None if np.isnan(v) else bool(v > spec["threshold"]), f"value in {spec['year']}")


def rule_province_max_yoy_ratio_at_least(ix, spec, national) -> Result:
    ratios = {}
    for t in spec["years"]:
        now, before = _value(ix, spec["metric"], spec["province_code"], t), _value(ix, spec["metric"], spec["province_code"], t - 1)
        ratios[t] = now / before if before > 0 else np.nan
    r = pd.Series(ratios, dtype=float)
    if r.isna().any():
        return np.nan, None, "year-on-year ratio not computable"
    return float(r.max()), bool(r.max() >= spec["threshold"]), "max y/y ratio: " + ", ".join(
        f"{t}/{t - 1} {v:.3f}" for t, v in r.items())


def rule_national_value_below(ix, spec, national) -> Result:
    provinces = observed_in(ix, spec["metric"], [spec["year"]])
    v = float(national(spec["metric"], provinces).get(spec["year"], np.nan)) if provinces else np.nan
    return v, None if np.isnan(v) else bool(v < spec["threshold"]), (
        f"national level in {spec['year']} ({len(provinces)} provinces observed)")


def rule_national_ratio_above(ix, spec, national) -> Result:
    provinces = observed_in(ix, spec["metric"], [spec["from_year"], spec["to_year"]])
    s = national(spec["metric"], provinces) if provinces else pd.Series(dtype=float)
    a, b = s.get(spec["from_year"], np.nan), s.get(spec["to_year"], np.nan)
    v = float(b / a) if a > 0 else np.nan
    return v, None if np.isnan(v) else bool(v > spec["threshold"]), (
        f"national {spec['from_year']} {a:.3f} → {spec['to_year']} {b:.3f} ({len(provinces)} provinces observed in both)")


def _theater_rule(table: pd.Series, theater: str, what: str) -> Result:
    if table.empty or theater not in table:
        return np.nan, None, f"{what}: not computable"
    return float(table[theater]), bool(table.idxmax() == theater), f"{what}: {_ranking(table)}"


def rule_theater_highest_mean(ix, spec, national) -> Result:
    first, last = spec["years"]
    return _theater_rule(_theater_table(ix, spec["metric"], list(range(first, last + 1)), "mean"),
                         spec["theater"], f"theater mean {first}–{last}")


def rule_theater_highest_growth(ix, spec, national) -> Result:
    balanced = observed_in(ix, spec["metric"], [spec["from_year"], spec["to_year"]])
    a = _theater_table(ix, spec["metric"], [spec["from_year"]], "mean", balanced)
    b = _theater_table(ix, spec["metric"], [spec["to_year"]], "mean", balanced)
    growth = (b / a).where(a > 0) if not (a.empty or b.empty) else pd.Series(dtype=float)
    return _theater_rule(growth.dropna(), spec["theater"], f"ratio of theater means {spec['to_year']}/{spec['from_year']}")


def rule_theater_highest_max(ix, spec, national) -> Result:
    return _theater_rule(_theater_table(ix, spec["metric"], [spec["year"]], "max"), spec["theater"],
                         f"best province in {spec['year']}")


RULES: Mapping[str, Callable[..., Result]] = {
    "province_value_above": rule_province_value_above,
    "province_max_yoy_ratio_at_least": rule_province_max_yoy_ratio_at_least,
    "national_value_below": rule_national_value_below,
    "national_ratio_above": rule_national_ratio_above,
    "theater_highest_mean": rule_theater_highest_mean,
    "theater_highest_growth": rule_theater_highest_growth,
    "theater_highest_max": rule_theater_highest_max,
}


def verdict(passes: list[bool | None]) -> str:
    """supported: every evaluable method passes; not supported: none passes; depends on method: some pass;
    not evaluable: no method can evaluate the claim."""
    ok = [p for p in passes if p is not None]
    if not ok:
        return NOT_EVALUABLE
    if all(ok):
        return SUPPORTED
    if not any(ok):
        return NOT_SUPPORTED
    return DEPENDS


def check_claims(indices: pd.DataFrame, config: IndexConfig, population: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per claim × method: value, threshold, passes (True/False/None = not evaluable), detail, and the
    claim's verdict over methods; the default method's row has is_default True."""
    rows: list[dict[str, Any]] = []
    for name in config.methods:
        ix = indices.loc[indices["method"] == name]

        def national(metric, provinces=None, _ix=ix):
            return national_series(_ix, metric, config.national, population, provinces)

        for cid, spec in config.claims.items():
            value, passes, detail = RULES[spec["rule"]](ix, spec, national)
            rows.append({"claim_id": cid, "claim": spec["text"], "rule": spec["rule"], "metric": spec["metric"],
                         "threshold": spec.get("threshold", np.nan), "method": name,
                         "is_default": name == config.default_method, "value": value,
                         "passes": passes, "detail": detail})
    out = pd.DataFrame(rows)
    verdicts = out.groupby("claim_id", sort=False)["passes"].apply(lambda s: verdict(list(s)))
    out["verdict"] = out["claim_id"].map(verdicts)
    out["passes"] = out["passes"].map({True: "yes", False: "no", None: "not evaluable"})
    return out


def bounds_diagnostic(indices: pd.DataFrame, config: IndexConfig,
                      population: pd.DataFrame | None = None) -> pd.DataFrame:
    """Which constructions produce a 0–1 "theoretical limit" at all: per method, the minimum and maximum of the
    capability index, where they occur, the share of province-years ≥ 0.9, and the national level in the first and
    last year (over the provinces observed). Pooled min–max puts the weakest early province-year near 0 and the largest province in the last year
    near 1 by construction; fixed goalposts clipped at 1 saturate leaders; z-scores and intensities do neither."""
    rows = []
    first, last = config.window.first_year, config.window.last_year
    for name in config.methods:
        ix = indices.loc[indices["method"] == name].dropna(subset=["capability_index"])
        if ix.empty:
            continue
        imax, imin = ix["capability_index"].idxmax(), ix["capability_index"].idxmin()
        nat = national_series(indices.loc[indices["method"] == name], "capability_index", config.national,
                              population)
        m = config.methods[name]
        rows.append({
            "method": name, "normalisation": m.normalisation, "weighting": m.weighting,
            "aggregation": m.aggregation, "indicator_set": m.indicator_set,
            "n_province_years": int(len(ix)),
            "min": float(ix.at[imin, "capability_index"]),
            "argmin": f"{ix.at[imin, 'province_en']} {int(ix.at[imin, 'year'])}",
            "max": float(ix.at[imax, "capability_index"]),
            "argmax": f"{ix.at[imax, 'province_en']} {int(ix.at[imax, 'year'])}",
            "share_at_least_0_9": float((ix["capability_index"] >= 0.9).mean()),
            "max_u_military": float(ix["u_military"].max()), "max_u_civil": float(ix["u_civil"].max()),
            f"national_{first}": float(nat.get(first, np.nan)), f"national_{last}": float(nat.get(last, np.nan)),
        })
    return pd.DataFrame(rows)
