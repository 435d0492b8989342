"""Check the reproduced study's published claims against our indices: every claim, reading, metric and method.

A claim in configs/index.yaml has its published wording (``quote``, where public), one or more *readings* (a rule
and its parameters; several where the wording allows more than one, e.g. "most potential" as highest level and as
fastest growth) and a *natural metric* (what its wording most naturally means). Every reading is evaluated on every
metric of ``claim_metrics`` under every index method, because a reader may mean any of them.

For one method a rule returns our number, whether the claim holds (``passes``: yes / no / unreachable /
not evaluable) and, for threshold rules, the largest value the method could attain at all (``max_attainable``):

* every claim metric is bounded above by :data:`METRIC_UPPER_BOUND` under every method, so a ratio rule starting from
  the observed value v cannot exceed 1/v. When even that cannot pass, the result is *unreachable* — a property of
  the construction, not of the data — and is reported apart from *no*.

:func:`verdict` turns the per-method results of one claim × reading × metric into "supported" (every method that
can evaluate it passes), "not supported" (none passes), "depends on method" (some do), "unreachable by
construction" (every evaluable method is unreachable) or "not evaluable"; :func:`across_metrics` states the
verdicts of one claim × reading over the metrics. Nothing here is tuned to the claims: thresholds are the study's
own words, and readings are listed side by side rather than chosen.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from analysis.index.build import build_indices
from analysis.index.config import IndexConfig, Period, claim_years

METRIC_UPPER_BOUND = 1.0
"""Upper bound of every metric in :data:`BOUNDED_METRICS`, under every index method, whatever the data.

Subsystem scores U_M, U_C ∈ [0, 1]: every normalisation maps into [0, 1] (min–max over the rows it is fitted on,
pooled over the window — or fixed goalposts with clipping; Φ(z) ∈ (0, 1)), and a weighted sum with weights summing
to 1 or a TOPSIS closeness stays in [0, 1]. Hence T = αU_M + βU_C ≤ 1 (α + β = 1), the coupling C ≤ 1,
the coordination degree D = √(C·T) ≤ 1, and the directional transfers U_s^s · U_r^(1−s) ≤ 1. All are ≥ 0.
(Formulas: analysis/index/methods.py; tested on the built indices in tests/test_index_pipeline.py.)"""

BOUNDED_METRICS = frozenset({
    "u_military", "u_civil", "comprehensive_development", "coupling_traditional", "coupling_corrected",
    "coordination_traditional", "coordination_corrected", "capability_index", "transfer_civ_to_mil",
    "transfer_mil_to_civ", "civil_share", "techmkt_outflow_share",
})

YES, NO, UNREACHABLE, NOT_EVALUABLE_PASS = "yes", "no", "unreachable", "not evaluable"
PASSES = (YES, NO, UNREACHABLE, NOT_EVALUABLE_PASS)
SUPPORTED, NOT_SUPPORTED, DEPENDS = "supported", "not supported", "depends on method"
UNREACHABLE_BY_CONSTRUCTION, NOT_EVALUABLE = "unreachable by construction", "not evaluable"
VERDICTS = (SUPPORTED, DEPENDS, NOT_SUPPORTED, UNREACHABLE_BY_CONSTRUCTION, NOT_EVALUABLE)

OUTPUT_COLUMNS = ["claim_id", "reading", "claim", "reading_text", "source", "quote", "rule", "metric",
                  "is_natural_metric", "threshold", "method", "is_default", "index_window", "value", "max_attainable",
                  "passes", "detail", "verdict", "verdict_across_metrics"]


# --- national and theater aggregates ------------------------------------------------------------------------------
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


def _theater_growth(ix: pd.DataFrame, metric: str, from_year: int, to_year: int) -> pd.Series:
    """Ratio of theater means to_year / from_year over the provinces observed in both years."""
    balanced = observed_in(ix, metric, [from_year, to_year])
    a = _theater_table(ix, metric, [from_year], "mean", balanced)
    b = _theater_table(ix, metric, [to_year], "mean", balanced)
    if a.empty or b.empty:
        return pd.Series(dtype=float)
    return (b / a).where(a > 0).dropna()


def _ranking(table: pd.Series) -> str:
    return "; ".join(f"{k} {v:.3f}" for k, v in table.sort_values(ascending=False).items())


# --- rules --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleResult:
    """One rule on one method and metric: our number, the outcome (one of :data:`PASSES`), how it was computed,
    and the largest value the method can attain given the data's starting point (NaN where not applicable)."""

    value: float
    passes: str
    detail: str
    max_attainable: float = np.nan


def _bound(metric: str) -> float:
    return METRIC_UPPER_BOUND if metric in BOUNDED_METRICS else np.inf


def _outcome(value: float, holds: bool, reachable: bool = True) -> str:
    if np.isnan(value):
        return NOT_EVALUABLE_PASS
    if not reachable:
        return UNREACHABLE
    return YES if holds else NO


def _finite_or_nan(x: float) -> float:
    return float(x) if np.isfinite(x) else np.nan


def rule_province_value_above(ix, spec, metric, national) -> RuleResult:
    """value(province, year) > threshold. Unreachable only if threshold ≥ the metric's upper bound."""
    v = _value(ix, metric, spec["province_code"], spec["year"])
    bound = _bound(metric)
    return RuleResult(v, _outcome(v, v > spec["threshold"], spec["threshold"] < bound), f"value in {spec['year']}",
                      _finite_or_nan(bound))


def rule_province_max_yoy_ratio_at_least(ix, spec, metric, national) -> RuleResult:
    """max over t in ``years`` of value(t) / value(t − 1) ≥ threshold. Since value(t) ≤ bound, the ratio for t is
    at most bound / value(t − 1); max_attainable is the largest of these, and below the threshold → unreachable."""
    code, bound = spec["province_code"], _bound(metric)
    ratios, ceilings = {}, {}
    for t in spec["years"]:
        now, before = _value(ix, metric, code, t), _value(ix, metric, code, t - 1)
        ratios[t] = now / before if before > 0 else np.nan
        ceilings[t] = bound / before if before > 0 else np.nan
    r, cap = pd.Series(ratios, dtype=float), pd.Series(ceilings, dtype=float)
    if r.isna().any():
        missing = [f"{t}/{t - 1}" for t in r.index[r.isna()]]
        return RuleResult(np.nan, NOT_EVALUABLE_PASS, f"year-on-year ratio not computable: {', '.join(missing)}")
    value, max_att = float(r.max()), _finite_or_nan(cap.max())
    reachable = np.isnan(max_att) or max_att >= spec["threshold"]
    detail = "y/y ratio " + ", ".join(f"{t}/{t - 1} {r[t]:.3f} (at most {cap[t]:.3f})" for t in r.index)
    return RuleResult(value, _outcome(value, value >= spec["threshold"], reachable), detail, max_att)


def rule_national_value_below(ix, spec, metric, national) -> RuleResult:
    """National level < threshold in every year of ``years`` the method can evaluate (years where no province has
    the metric — an input of the method is not observed — are listed as not evaluable); value = the largest of
    those levels. Unreachable only if threshold ≤ 0 (every metric is ≥ 0)."""
    levels, counts, missing = {}, {}, []
    for y in spec["years"]:
        provinces = observed_in(ix, metric, [y])
        level = float(national(metric, provinces).get(y, np.nan)) if provinces else np.nan
        if np.isnan(level):
            missing.append(y)
        else:
            levels[y], counts[y] = level, len(provinces)
    parts = [f"{y} {levels[y]:.3f} ({counts[y]} provinces)" for y in levels]
    detail = "national level " + ("; ".join(parts) if parts else "not computable")
    if missing:
        detail += (f"; not evaluable in {', '.join(map(str, missing))} (no province has this metric: an input of "
                   "the method is not observed)")
    if not levels:
        return RuleResult(np.nan, NOT_EVALUABLE_PASS, detail)
    value = max(levels.values())
    return RuleResult(value, _outcome(value, value < spec["threshold"], spec["threshold"] > 0), detail)


def rule_national_ratio_above(ix, spec, metric, national) -> RuleResult:
    """national(to_year) / national(from_year) > threshold, over the provinces observed in both years. The national
    level is at most the bound, so the ratio is at most bound / national(from_year) = max_attainable."""
    f, t = spec["from_year"], spec["to_year"]
    provinces = observed_in(ix, metric, [f, t])
    s = national(metric, provinces) if provinces else pd.Series(dtype=float)
    a, b = float(s.get(f, np.nan)), float(s.get(t, np.nan))
    v = b / a if a > 0 else np.nan
    max_att = _finite_or_nan(_bound(metric) / a) if a > 0 else np.nan
    reachable = np.isnan(max_att) or max_att > spec["threshold"]
    detail = f"national {f} {a:.3f} → {t} {b:.3f} ({len(provinces)} provinces observed in both)"
    return RuleResult(v, _outcome(v, v > spec["threshold"], reachable), detail, max_att)


def _theater_rule(table: pd.Series, theater: str, what: str, holds: Callable[[pd.Series], bool] | None = None
                  ) -> RuleResult:
    if table.empty or theater not in table:
        return RuleResult(np.nan, NOT_EVALUABLE_PASS, f"{what}: not computable")
    ok = holds(table) if holds else table.idxmax() == theater
    return RuleResult(float(table[theater]), YES if ok else NO, f"{what}: {_ranking(table)}")


def rule_theater_highest_mean(ix, spec, metric, national) -> RuleResult:
    """The theater's mean over all its province-years in the span [first, last] is the highest."""
    first, last = spec["years"]
    return _theater_rule(_theater_table(ix, metric, list(range(first, last + 1)), "mean"), spec["theater"],
                         f"theater mean {first}–{last}")


def rule_theater_highest_growth(ix, spec, metric, national) -> RuleResult:
    """The theater's ratio of means to_year / from_year (provinces observed in both years) is the highest."""
    growth = _theater_growth(ix, metric, spec["from_year"], spec["to_year"])
    return _theater_rule(growth, spec["theater"], f"ratio of theater means {spec['to_year']}/{spec['from_year']}")


def rule_theater_growth_above_median(ix, spec, metric, national) -> RuleResult:
    """The theater's ratio of means to_year / from_year is above the median of the theaters' ratios."""
    growth = _theater_growth(ix, metric, spec["from_year"], spec["to_year"])
    median = float(growth.median()) if not growth.empty else np.nan
    return _theater_rule(growth, spec["theater"],
                         f"ratio of theater means {spec['to_year']}/{spec['from_year']} (median {median:.3f})",
                         lambda g: bool(g[spec["theater"]] > median))


def rule_theater_highest_max(ix, spec, metric, national) -> RuleResult:
    """The theater's best province in ``year`` is the best of all theaters."""
    return _theater_rule(_theater_table(ix, metric, [spec["year"]], "max"), spec["theater"],
                         f"best province in {spec['year']}")


RULES: Mapping[str, Callable[..., RuleResult]] = {
    "province_value_above": rule_province_value_above,
    "province_max_yoy_ratio_at_least": rule_province_max_yoy_ratio_at_least,
    "national_value_below": rule_national_value_below,
    "national_ratio_above": rule_national_ratio_above,
    "theater_highest_mean": rule_theater_highest_mean,
    "theater_highest_growth": rule_theater_highest_growth,
    "theater_growth_above_median": rule_theater_growth_above_median,
    "theater_highest_max": rule_theater_highest_max,
}


# --- verdicts -----------------------------------------------------------------------------------------------------
def verdict(passes: Iterable[str | bool | None]) -> str:
    """Verdict over methods from their outcomes (yes / no / unreachable / not evaluable; True, False, None are read
    as yes, no, not evaluable): not evaluable (no method evaluable); unreachable by construction (every evaluable
    method unreachable); supported (every evaluable method passes); not supported (none passes); depends on method
    (some pass)."""
    as_text = {True: YES, False: NO, None: NOT_EVALUABLE_PASS}
    ok = [as_text.get(p, p) if isinstance(p, (bool, type(None))) else p for p in passes]
    ok = [p for p in ok if p != NOT_EVALUABLE_PASS]
    if not ok:
        return NOT_EVALUABLE
    if all(p == UNREACHABLE for p in ok):
        return UNREACHABLE_BY_CONSTRUCTION
    if all(p == YES for p in ok):
        return SUPPORTED
    if not any(p == YES for p in ok):
        return NOT_SUPPORTED
    return DEPENDS


def across_metrics(verdicts: Mapping[str, str], unreachable: Mapping[str, tuple[int, int]] | None = None) -> str:
    """One sentence of the verdicts of a claim × reading over metrics (``{metric: verdict}``, in metric order),
    grouped by verdict in the order of :data:`VERDICTS`, e.g. "supported on transfer_civ_to_mil; not supported on
    capability_index, comprehensive_development". ``unreachable`` ({metric: (k, n)}: k of the n evaluable methods
    unreachable) adds "(unreachable under k of n methods)" after a metric where 0 < k < n."""
    def label(m: str) -> str:
        k, n = (unreachable or {}).get(m, (0, 0))
        return f"{m} (unreachable under {k} of {n} methods)" if 0 < k < n else m

    groups = [(v, [label(m) for m, got in verdicts.items() if got == v]) for v in VERDICTS]
    return "; ".join(f"{v} on {', '.join(ms)}" for v, ms in groups if ms)


def window_label(period: Period) -> str:
    return f"{period.first_year}–{period.last_year}"


def claims_window_indices(panel: pd.DataFrame, config: IndexConfig, file: str = "panel",
                          progress: bool = False) -> pd.DataFrame | None:
    """The indices of every configured method built on ``claims_window`` instead of ``window`` (same methods, same
    base periods; pooled normalisations then pool over the longer window), for the claim readings that refer to years
    outside ``window``. None when the claims window is the window."""
    period = config.claims_period()
    if period == config.window:
        return None
    return build_indices(panel, replace(config, window=period), file=file, progress=progress)[0]


def check_claims(indices: pd.DataFrame, config: IndexConfig, population: pd.DataFrame | None = None,
                 extended: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per claim × reading × metric × method (columns :data:`OUTPUT_COLUMNS`).

    A reading whose years all lie in ``config.window`` is evaluated on ``indices``; any other on ``extended`` (the
    indices built on ``config.claims_window``, :func:`claims_window_indices`); ``index_window`` says which.
    ``verdict`` is per claim × reading × metric over methods, ``verdict_across_metrics`` per claim × reading.
    """
    window = config.window
    sources = {True: (indices, window_label(window)),
               False: (extended, window_label(config.claims_period()))}
    by_method: dict[tuple[bool, str], pd.DataFrame] = {}
    rows: list[dict[str, Any]] = []
    for cid, claim in config.claims.items():
        for rid, reading in claim["readings"].items():
            inside = all(window.first_year <= y <= window.last_year for y in claim_years(reading))
            frame, label = sources[inside]
            if frame is None:
                raise ValueError(f"claim {cid}.{rid} reads years outside the window {window_label(window)}: "
                                 "pass the indices built on claims_window (claims_window_indices)")
            for metric in config.claim_metrics:
                for name in config.methods:
                    if (inside, name) not in by_method:
                        by_method[inside, name] = frame.loc[frame["method"] == name]
                    ix = by_method[inside, name]

                    def national(m, provinces=None, _ix=ix):
                        return national_series(_ix, m, config.national, population, provinces)

                    res = RULES[reading["rule"]](ix, reading, metric, national)
                    rows.append({
                        "claim_id": cid, "reading": rid, "claim": claim["text"],
                        "reading_text": reading.get("description", ""), "source": claim["source"],
                        "quote": claim["quote"], "rule": reading["rule"], "metric": metric,
                        "is_natural_metric": metric in claim["natural_metric"],
                        "threshold": float(reading.get("threshold", np.nan)), "method": name,
                        "is_default": name == config.default_method, "index_window": label,
                        "value": float(res.value), "max_attainable": float(res.max_attainable),
                        "passes": res.passes, "detail": res.detail})
    out = pd.DataFrame(rows)
    keys = ["claim_id", "reading", "metric"]
    grouped = out.groupby(keys, sort=False)["passes"]
    per_metric = pd.DataFrame({"verdict": grouped.apply(verdict),
                               "k": grouped.apply(lambda s: int((s == UNREACHABLE).sum())),
                               "n": grouped.apply(lambda s: int((s != NOT_EVALUABLE_PASS).sum()))})
    out["verdict"] = [per_metric.at[k, "verdict"] for k in zip(*(out[c] for c in keys))]
    summary = {k: across_metrics(g.set_index("metric")["verdict"].to_dict(),
                                 {m: (k_, n_) for m, k_, n_ in zip(g["metric"], g["k"], g["n"])})
               for k, g in per_metric.reset_index().groupby(["claim_id", "reading"], sort=False)}
    out["verdict_across_metrics"] = [summary[k] for k in zip(out["claim_id"], out["reading"])]
    return out[OUTPUT_COLUMNS]


def verdict_table(claims: pd.DataFrame) -> pd.DataFrame:
    """One row per claim × reading × metric: the default method's value and outcome, the counts of methods passing /
    failing / unreachable / not evaluable, and the verdict (from a :func:`check_claims` frame)."""
    keys = ["claim_id", "reading", "metric"]
    default = claims.loc[claims["is_default"].astype(bool)].set_index(keys)
    counts = (claims.groupby(keys, sort=False)["passes"]
              .agg(n_pass=lambda s: int((s == YES).sum()), n_fail=lambda s: int((s == NO).sum()),
                   n_unreachable=lambda s: int((s == UNREACHABLE).sum()),
                   n_not_evaluable=lambda s: int((s == NOT_EVALUABLE_PASS).sum())))
    first = claims.drop_duplicates(keys).set_index(keys)
    out = pd.DataFrame({
        "natural": first["is_natural_metric"].astype(bool), "threshold": first["threshold"],
        "index_window": first["index_window"], "default_value": default["value"].reindex(first.index),
        "default_max_attainable": default["max_attainable"].reindex(first.index),
        "default_passes": default["passes"].reindex(first.index)}, index=first.index).join(counts)
    out["verdict"] = first["verdict"]
    return out.reset_index()


def across_metrics_table(claims: pd.DataFrame) -> pd.DataFrame:
    """One row per claim × reading: claim, reading description, natural metric(s), verdict across metrics."""
    keys = ["claim_id", "reading"]
    first = claims.drop_duplicates(keys).set_index(keys)
    natural = (claims.loc[claims["is_natural_metric"].astype(bool)].drop_duplicates(keys + ["metric"])
               .groupby(keys, sort=False)["metric"].agg(", ".join))
    return pd.DataFrame({"claim": first["claim"], "reading_text": first["reading_text"],
                         "natural_metric": natural.reindex(first.index),
                         "verdict_across_metrics": first["verdict_across_metrics"]}).reset_index()


# --- bounds diagnostic --------------------------------------------------------------------------------------------
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
