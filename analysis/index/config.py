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
from analysis.provinces import PROVINCE_CODES, THEATER_COMMANDS

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

# Required keys per claim rule (besides text, rule, metric).
CLAIM_RULES: dict[str, tuple[str, ...]] = {
    "province_value_above": ("province_code", "year", "threshold"),
    "province_max_yoy_ratio_at_least": ("province_code", "years", "threshold"),
    "national_value_below": ("year", "threshold"),
    "national_ratio_above": ("from_year", "to_year", "threshold"),
    "theater_highest_mean": ("theater", "years"),
    "theater_highest_growth": ("theater", "from_year", "to_year"),
    "theater_highest_max": ("theater", "year"),
}


@dataclass(frozen=True)
class Period:
    """Inclusive span of calendar years."""

    first_year: int
    last_year: int

    def years(self) -> list[int]:
        return list(range(self.first_year, self.last_year + 1))


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
    source: str = "configs/index.yaml"

    def method(self, name: str) -> Method:
        return self.methods[name]

    def base_period_for(self, method: Method) -> Period:
        return method.base_period or self.base_period

    def indicators_of(self, method: Method) -> list[Indicator]:
        return [self.indicators[n] for n in self.indicator_sets[method.indicator_set].indicators]

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
        raise DataError(file, f"{where}.indicator_set: unknown set {m.indicator_set!r}", column=f"{where}.indicator_set")


def method_from_dict(name: str, raw: Mapping, file: str = "configs/index.yaml") -> Method:
    """Build a :class:`Method` from a mapping with keys normalisation, weighting, aggregation, indicator_set
    (and optionally base_period {first_year, last_year}); structural checks only (see IndexConfig.with_methods)."""
    where = f"methods.{name}"
    _check_keys(file, where, raw, {"normalisation", "weighting", "aggregation", "indicator_set"}, {"base_period"})
    bp = _period(file, f"{where}.base_period", raw["base_period"]) if "base_period" in raw else None
    return Method(name, raw["normalisation"], raw["weighting"], raw["aggregation"], raw["indicator_set"], bp)


def parse_config(raw: Mapping, file: str | os.PathLike = "configs/index.yaml") -> IndexConfig:
    """Validate a parsed YAML mapping and return the :class:`IndexConfig` (raises DataError naming the key)."""
    file = str(file)
    top_required = {"window", "base_period", "comprehensive_weights", "directional", "capability_index",
                    "default_method", "indicators", "indicator_sets", "methods", "sensitivity", "national", "claims",
                    "deflation"}
    _check_keys(file, "top level", raw, top_required)
    window = _period(file, "window", raw["window"])
    base = _period(file, "base_period", raw["base_period"])

    cw = raw["comprehensive_weights"]
    _check_keys(file, "comprehensive_weights", cw, {"military", "civil"})
    if abs(cw["military"] + cw["civil"] - 1) > 1e-9 or min(cw["military"], cw["civil"]) < 0:
        raise DataError(file, "comprehensive_weights: military + civil must be 1, both >= 0", column="comprehensive_weights")
    defl = raw["deflation"]
    _check_keys(file, "deflation", defl, {"column", "missing"})
    _choice(file, "deflation.missing", defl["missing"], DEFLATOR_MISSING)
    _check_keys(file, "directional", raw["directional"], {"source_weight"})
    sw = raw["directional"]["source_weight"]
    if not isinstance(sw, (int, float)) or not 0.5 < sw <= 1:
        raise DataError(file, f"directional.source_weight: need 0.5 < s <= 1, got {sw!r}", column="directional.source_weight")

    indicators: dict[str, Indicator] = {}
    for name, spec in raw["indicators"].items():
        where = f"indicators.{name}"
        _check_keys(file, where, spec, {"subsystem", "direction"}, {"deflate", "unit_factor", "label"})
        _choice(file, f"{where}.subsystem", spec["subsystem"], SUBSYSTEMS)
        _choice(file, f"{where}.direction", spec["direction"], DIRECTIONS)
        uf = spec.get("unit_factor", 1)
        if not isinstance(uf, (int, float)) or uf <= 0:
            raise DataError(file, f"{where}.unit_factor must be a positive number", column=f"{where}.unit_factor")
        indicators[name] = Indicator(name, spec["subsystem"], spec["direction"], bool(spec.get("deflate", False)),
                                     float(uf), spec.get("label", ""))

    sets: dict[str, IndicatorSet] = {}
    for name, spec in raw["indicator_sets"].items():
        where = f"indicator_sets.{name}"
        _check_keys(file, where, spec, {"indicators", "scale", "log1p"}, {"description"})
        unknown = [i for i in spec["indicators"] if i not in indicators]
        if unknown:
            raise DataError(file, f"{where}.indicators: not declared under `indicators`: {unknown}", column=where)
        if len(set(spec["indicators"])) != len(spec["indicators"]):
            raise DataError(file, f"{where}.indicators: duplicates", column=where)
        for sub in SUBSYSTEMS:
            if not any(indicators[i].subsystem == sub for i in spec["indicators"]):
                raise DataError(file, f"{where}: no {sub} indicator", column=where)
        _choice(file, f"{where}.scale", spec["scale"], SCALES)
        sets[name] = IndicatorSet(name, tuple(spec["indicators"]), spec["scale"], bool(spec["log1p"]),
                                  spec.get("description", ""))

    methods: dict[str, Method] = {}
    for name, spec in raw["methods"].items():
        m = method_from_dict(name, spec, file)
        _validate_method(m, sets, file)
        methods[name] = m
    if raw["default_method"] not in methods:
        raise DataError(file, f"default_method {raw['default_method']!r} is not a method", column="default_method")
    _choice(file, "capability_index", raw["capability_index"], BOUNDED_CAPABILITY_COLUMNS)

    sens = raw["sensitivity"]
    _check_keys(file, "sensitivity", sens, {"comparison_year", "rank_shift_threshold"})
    _choice(file, "national", raw["national"], NATIONAL_AGGREGATES)

    claims = {}
    for cid, spec in raw["claims"].items():
        where = f"claims.{cid}"
        rule = spec.get("rule") if isinstance(spec, Mapping) else None
        _choice(file, f"{where}.rule", rule, tuple(CLAIM_RULES))
        _check_keys(file, where, spec, {"text", "rule", "metric", *CLAIM_RULES[rule]})
        _choice(file, f"{where}.metric", spec["metric"], INDEX_COLUMNS)
        if "province_code" in spec and spec["province_code"] not in PROVINCE_CODES:
            raise DataError(file, f"{where}.province_code: unknown code {spec['province_code']!r}", column=where)
        if "theater" in spec:
            _choice(file, f"{where}.theater", spec["theater"], THEATER_COMMANDS)
        claims[cid] = dict(spec)

    return IndexConfig(
        window=window, base_period=base,
        comprehensive_weights=(float(cw["military"]), float(cw["civil"])), source_weight=float(sw),
        capability_index=raw["capability_index"], default_method=raw["default_method"],
        indicators=indicators, indicator_sets=sets, methods=methods,
        sensitivity_year=int(sens["comparison_year"]), rank_shift_threshold=int(sens["rank_shift_threshold"]),
        national=raw["national"], deflator_column=str(defl["column"]), deflator_missing=defl["missing"],
        claims=claims, source=paths.relative(Path(file)),
    )


def load_config(path: str | os.PathLike = paths.INDEX_CONFIG) -> IndexConfig:
    """Read and validate configs/index.yaml."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataError(path, f"not valid YAML: {exc}") from exc
    return parse_config(raw, path)
