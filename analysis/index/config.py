"""The index configuration (configs/index.yaml) as validated, frozen dataclasses.

Every choice the index makes is data here: indicators (subsystem, direction, transformation), indicator sets, and
methods (normalisation × weighting × aggregation × indicator set × base period). Unknown keys and bad values raise
:class:`analysis.io.DataError` naming the file and the key, at load, before any computation.

A :class:`Method` is small and hashable, so a multiverse stage can build many of them (``Method(...)`` or
:func:`method_from_dict`) from the same vocabulary without touching the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

from analysis import paths
from analysis.io import DataError
from analysis.schema import YearRange as Period  # an inclusive span of calendar years (one type, analysis.schema)
from analysis.schema import did_you_mean
from analysis.provinces import PROVINCE_CODES, THEATER_COMMANDS
from analysis.window import moved_key, study_window

SUBSYSTEMS = ("military", "civil")
DIRECTIONS = ("benefit", "cost")
SCALES = ("level", "per_capita", "per_gdp")
NORMALISATIONS = ("minmax_pooled", "minmax_goalposts", "zscore_probit")
WEIGHTINGS = ("entropy", "critic", "equal", "pca")
AGGREGATIONS = ("weighted_sum", "topsis")
NATIONAL_AGGREGATES = ("mean", "population_weighted")
DEFLATOR_MISSING = ("none", "year_median")

# Columns of indices.parquet a claim or the capability index may refer to.
INDEX_COLUMNS = (
    "u_military", "u_civil", "comprehensive_development", "coupling_traditional", "coupling_corrected",
    "coordination_traditional", "coordination_corrected", "transfer_civ_to_mil", "transfer_mil_to_civ",
    "civil_share", "relative_civ_to_mil", "relative_mil_to_civ", "techmkt_outflow_share", "capability_index",
)
BOUNDED_CAPABILITY_COLUMNS = ("comprehensive_development", "coordination_corrected", "coordination_traditional",
                              "u_military", "u_civil")

# Required keys of a claim reading per rule (besides `rule`; `description` is optional). Year keys: `year`,
# `from_year`, `to_year` are single years; `years` is a list of years, except for theater_highest_mean where it is the
# span [first, last] averaged over.
CLAIM_RULES: dict[str, tuple[str, ...]] = {
    "province_value_above": ("province_code", "year", "threshold"),
    "province_max_yoy_ratio_at_least": ("province_code", "years", "threshold"),
    "national_value_below": ("years", "threshold"),
    "national_ratio_above": ("from_year", "to_year", "threshold"),
    "theater_highest_mean": ("theater", "years"),
    "theater_highest_growth": ("theater", "from_year", "to_year"),
    "theater_growth_above_median": ("theater", "from_year", "to_year"),
    "theater_highest_max": ("theater", "year"),
}
CLAIM_KEYS = ("text", "source", "quote", "natural_metric", "readings")


@dataclass(frozen=True)
class Indicator:
    """One panel column entering a subsystem. Transformation order: ×unit_factor, ÷deflator, scale, log1p."""

    name: str
    subsystem: str
    direction: str = "benefit"
    deflate: bool = False
    unit_factor: float = 1.0
    label: str = ""


@dataclass(frozen=True)
class IndicatorSet:
    name: str
    indicators: tuple[str, ...]
    scale: str = "level"
    log1p: bool = True
    description: str = ""


@dataclass(frozen=True)
class Method:
    """One index construction. ``base_period`` None means the configuration's top-level base period."""

    name: str
    normalisation: str
    weighting: str
    aggregation: str
    indicator_set: str
    base_period: Period | None = None


@dataclass(frozen=True)
class IndexConfig:
    window: Period
    base_period: Period
    comprehensive_weights: tuple[float, float]  # (military, civil)
    source_weight: float
    capability_index: str
    default_method: str
    indicators: Mapping[str, Indicator]
    indicator_sets: Mapping[str, IndicatorSet]
    methods: Mapping[str, Method]
    sensitivity_year: int
    rank_shift_threshold: int
    national: str
    deflator_column: str = "gdp_deflator"
    deflator_missing: str = "none"
    claims: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    claim_metrics: tuple[str, ...] = ("capability_index",)
    claims_window: Period | None = None  # None: the claims are read on `window` only
    source: str = "configs/index.yaml"

    def method(self, name: str) -> Method:
        return self.methods[name]

    def base_period_for(self, method: Method) -> Period:
        return method.base_period or self.base_period

    def indicators_of(self, method: Method) -> list[Indicator]:
        return [self.indicators[n] for n in self.indicator_sets[method.indicator_set].indicators]

    def claims_period(self) -> Period:
        """The years a claim reading may refer to: ``claims_window`` (which contains ``window``), or ``window``."""
        return self.claims_window or self.window

    def with_methods(self, methods: Mapping[str, Method]) -> "IndexConfig":
        """A copy with another method list (validated), e.g. for a multiverse."""
        for m in methods.values():
            _validate_method(m, self.indicator_sets, self.source)
        return replace(self, methods=dict(methods))


# ---------------------------------------------------------------------------------------------------------------
def _check_keys(file: str, where: str, got: Mapping, required: set[str], optional: set[str] = frozenset()) -> None:
    if not isinstance(got, Mapping):
        raise DataError(file, f"{where}: expected a mapping, got {type(got).__name__}", column=where)
    unknown = set(got) - required - set(optional)
    if unknown:
        raise DataError(file, f"{where}: unknown key(s) {sorted(unknown)}", column=where)
    missing = required - set(got)
    if missing:
        raise DataError(file, f"{where}: missing key(s) {sorted(missing)}", column=where)


def _choice(file: str, where: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise DataError(file, f"{where}: {value!r} is not one of {list(allowed)}", column=where)
    return value


def _period(file: str, where: str, raw: Mapping) -> Period:
    _check_keys(file, where, raw, {"first_year", "last_year"})
    first, last = raw["first_year"], raw["last_year"]
    if not (isinstance(first, int) and isinstance(last, int)) or first > last:
        raise DataError(file, f"{where}: need integer first_year <= last_year, got {first!r}, {last!r}", column=where)
    return Period(first, last)


def _validate_method(m: Method, sets: Mapping[str, IndicatorSet], file: str) -> None:
    where = f"methods.{m.name}"
    _choice(file, f"{where}.normalisation", m.normalisation, NORMALISATIONS)
    _choice(file, f"{where}.weighting", m.weighting, WEIGHTINGS)
    _choice(file, f"{where}.aggregation", m.aggregation, AGGREGATIONS)
    if m.indicator_set not in sets:
        raise DataError(file, f"{where}.indicator_set: unknown set {m.indicator_set!r}"
                              f"{did_you_mean(m.indicator_set, sets)}", column=f"{where}.indicator_set")


def method_from_dict(name: str, raw: Mapping, file: str = "configs/index.yaml") -> Method:
    """Build a :class:`Method` from a mapping with keys normalisation, weighting, aggregation, indicator_set
    (and optionally base_period {first_year, last_year}); structural checks only (see IndexConfig.with_methods)."""
    where = f"methods.{name}"
    _check_keys(file, where, raw, {"normalisation", "weighting", "aggregation", "indicator_set"}, {"base_period"})
    bp = _period(file, f"{where}.base_period", raw["base_period"]) if "base_period" in raw else None
    return Method(name, raw["normalisation"], raw["weighting"], raw["aggregation"], raw["indicator_set"], bp)


def claim_years(reading: Mapping[str, Any]) -> list[int]:
    """Every year a claim reading reads, sorted: its year keys, the span of theater_highest_mean, and for
    year-on-year ratios each year t together with t − 1."""
    rule = reading["rule"]
    if rule == "theater_highest_mean":
        first, last = reading["years"]
        return list(range(first, last + 1))
    years = set(reading.get("years", [])) | {reading[k] for k in ("year", "from_year", "to_year") if k in reading}
    if rule == "province_max_yoy_ratio_at_least":
        years |= {t - 1 for t in reading["years"]}
    return sorted(years)


def _claim_reading(file: str, where: str, spec: Any, period: Period) -> dict[str, Any]:
    """Validate one reading of a claim: its rule, the rule's keys, codes, years (integers inside ``period``) and
    threshold (a number)."""
    rule = spec.get("rule") if isinstance(spec, Mapping) else None
    _choice(file, f"{where}.rule", rule, tuple(CLAIM_RULES))
    _check_keys(file, where, spec, {"rule", *CLAIM_RULES[rule]}, {"description"})
    if "province_code" in spec and spec["province_code"] not in PROVINCE_CODES:
        raise DataError(file, f"{where}.province_code: unknown code {spec['province_code']!r}",
                        column=f"{where}.province_code")
    if "theater" in spec:
        _choice(file, f"{where}.theater", spec["theater"], THEATER_COMMANDS)
    if "threshold" in spec and (isinstance(spec["threshold"], bool) or not isinstance(spec["threshold"], (int, float))):
        raise DataError(file, f"{where}.threshold: need a number, got {spec['threshold']!r}",
                        column=f"{where}.threshold")
    for key in ("year", "from_year", "to_year", "years"):
        if key not in spec:
            continue
        values = spec[key] if key == "years" else [spec[key]]
        if key == "years" and (not isinstance(values, list) or not values):
            raise DataError(file, f"{where}.years: need a non-empty list of years, got {values!r}",
                            column=f"{where}.years")
        if not all(isinstance(y, int) and not isinstance(y, bool) for y in values):
            raise DataError(file, f"{where}.{key}: need integer years, got {spec[key]!r}", column=f"{where}.{key}")
    if rule == "theater_highest_mean" and (len(spec["years"]) != 2 or spec["years"][0] > spec["years"][1]):
        raise DataError(file, f"{where}.years: need the span [first, last] with first <= last, got {spec['years']!r}",
                        column=f"{where}.years")
    if "from_year" in spec and spec["from_year"] >= spec["to_year"]:
        raise DataError(file, f"{where}: need from_year < to_year", column=f"{where}.from_year")
    outside = [y for y in claim_years(spec) if not period.first_year <= y <= period.last_year]
    if outside:
        raise DataError(file, f"{where}: year(s) {outside} outside claims_window {period.first_year}–"
                        f"{period.last_year}", column=where)
    return dict(spec)


def _claims(file: str, raw: Any, metrics: tuple[str, ...], period: Period) -> dict[str, dict[str, Any]]:
    """Validate the ``claims`` section: each claim has text, source, quote (the verbatim published wording, or null
    where no public text exists), natural_metric (one of claim_metrics, or a list of them) and one or more
    readings."""
    if not isinstance(raw, Mapping) or not raw:
        raise DataError(file, "claims: need a non-empty mapping of claims", column="claims")
    claims = {}
    for cid, spec in raw.items():
        where = f"claims.{cid}"
        _check_keys(file, where, spec, set(CLAIM_KEYS))
        for key in ("text", "source"):
            if not isinstance(spec[key], str) or not spec[key].strip():
                raise DataError(file, f"{where}.{key}: need a non-empty string", column=f"{where}.{key}")
        if spec["quote"] is not None and (not isinstance(spec["quote"], str) or not spec["quote"].strip()):
            raise DataError(file, f"{where}.quote: need the verbatim wording or null", column=f"{where}.quote")
        natural = spec["natural_metric"]
        natural = [natural] if isinstance(natural, str) else natural
        if not isinstance(natural, list) or not natural:
            raise DataError(file, f"{where}.natural_metric: need a metric or a list of metrics",
                            column=f"{where}.natural_metric")
        for m in natural:
            _choice(file, f"{where}.natural_metric", m, metrics)
        readings = spec["readings"]
        if not isinstance(readings, Mapping) or not readings:
            raise DataError(file, f"{where}.readings: need a non-empty mapping of readings", column=f"{where}.readings")
        claims[cid] = {**spec, "natural_metric": tuple(natural),
                       "readings": {rid: _claim_reading(file, f"{where}.readings.{rid}", r, period)
                                    for rid, r in readings.items()}}
    return claims


def parse_config(raw: Mapping, file: str | os.PathLike = "configs/index.yaml",
                 window: tuple[int, int] | None = None) -> IndexConfig:
    """Validate a parsed YAML mapping and return the :class:`IndexConfig` (raises DataError naming the key).

    ``window``: (first_year, last_year) the index is built on; None = the study window (configs/panel.yaml
    ``window``, :func:`analysis.window.study_window`). ``claims_window`` gives only its first year; it ends where
    the window ends.
    """
    file = str(file)
    if isinstance(raw, Mapping) and "window" in raw:
        raise moved_key(file, "window")
    from analysis import config_models, schema

    # keys, types and allowed values: the model (one error style); below, what relates parts of the file
    cfg = schema.validate(config_models.IndexFile, raw, file)
    window = Period(*(study_window() if window is None else window))
    base = cfg.base_period

    cw = cfg.comprehensive_weights
    if abs(cw.military + cw.civil - 1) > 1e-9:
        raise DataError(file, "military + civil must be 1, both >= 0", key="comprehensive_weights")
    sw = cfg.directional.source_weight

    indicators: dict[str, Indicator] = {
        name: Indicator(name, spec.subsystem, spec.direction, spec.deflate, float(spec.unit_factor), spec.label)
        for name, spec in cfg.indicators.items()}

    sets: dict[str, IndicatorSet] = {}
    for name, spec in cfg.indicator_sets.items():
        where = f"indicator_sets.{name}"
        unknown = [i for i in spec.indicators if i not in indicators]
        if unknown:
            raise DataError(file, f"{where}.indicators: not declared under `indicators`: {unknown}"
                                  f"{did_you_mean(unknown[0], indicators)}", column=where)
        if len(set(spec.indicators)) != len(spec.indicators):
            raise DataError(file, f"{where}.indicators: duplicates", column=where)
        for sub in SUBSYSTEMS:
            if not any(indicators[i].subsystem == sub for i in spec.indicators):
                raise DataError(file, f"{where}: no {sub} indicator", column=where)
        sets[name] = IndicatorSet(name, tuple(spec.indicators), spec.scale, spec.log1p, spec.description)

    methods: dict[str, Method] = {}
    for name, spec in cfg.methods.items():
        m = Method(name, spec.normalisation, spec.weighting, spec.aggregation, spec.indicator_set, spec.base_period)
        _validate_method(m, sets, file)
        methods[name] = m
    if cfg.default_method not in methods:
        raise DataError(file, f"default_method {cfg.default_method!r} is not a method"
                              f"{did_you_mean(cfg.default_method, methods)}", column="default_method")

    metrics = raw["claim_metrics"]
    if len(set(metrics)) != len(metrics):
        raise DataError(file, f"claim_metrics: need a non-empty list without duplicates, got {metrics!r}",
                        column="claim_metrics")
    claims_window = Period(cfg.claims_window.first_year, window.last_year)
    if claims_window.first_year > window.first_year:
        raise DataError(file, f"claims_window: first_year {claims_window.first_year} is after the study window's "
                        f"first year {window.first_year} (it must contain the window)", column="claims_window")
    claims = _claims(file, raw["claims"], tuple(metrics), claims_window)

    return IndexConfig(
        window=window, base_period=base,
        comprehensive_weights=(float(cw.military), float(cw.civil)), source_weight=float(sw),
        capability_index=cfg.capability_index, default_method=cfg.default_method,
        indicators=indicators, indicator_sets=sets, methods=methods,
        sensitivity_year=int(cfg.sensitivity.comparison_year),
        rank_shift_threshold=int(cfg.sensitivity.rank_shift_threshold),
        national=cfg.national, deflator_column=str(cfg.deflation.column), deflator_missing=cfg.deflation.missing,
        claims=claims, claim_metrics=tuple(metrics), claims_window=claims_window, source=paths.relative(Path(file)),
    )


def load_config(path: str | os.PathLike = paths.INDEX_CONFIG, window: tuple[int, int] | None = None) -> IndexConfig:
    """Read and validate configs/index.yaml; ``window`` (first_year, last_year) overrides the study window."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataError(path, f"not valid YAML: {exc}") from exc
    return parse_config(raw, path, window)
