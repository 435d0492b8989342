"""The multiverse configuration (configs/multiverse.yaml) and its expansion into specifications ("cells").

A cell is one point of the cross product

    index choice (normalisation × weighting × aggregation × indicator set) × outcome
    × treatment (exposure × event date, or a staggered cohort, or an intensity)
    × estimator (only those that accept the treatment's kind) × control set × sample,

with estimators that take no controls (``uses_controls: false``) combined only with empty control sets. So the
number of cells is

    n_index × n_outcomes × Σ_estimators n_treatments(kind) × n_control_sets(estimator) × n_samples

(:func:`expected_count` computes it from the configuration alone; the tests compare it with the expansion).

Every cell carries a resolved engine spec (:func:`analysis.models.spec.validate` fills the defaults and rejects
bad keys/values, naming configs/multiverse.yaml), so a cell is fitted exactly as ``python -m analysis.estimate``
would fit the same spec on a panel holding that cell's index. Vocabulary: the index choices are those of
configs/index.yaml (:mod:`analysis.index.config`); the estimators are the registry's
(:mod:`analysis.models.registry`). Unknown keys and bad values raise :class:`analysis.io.DataError` naming the
file and the key, before any computation.
"""

from __future__ import annotations

import copy
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from analysis import paths
from analysis.index.config import (AGGREGATIONS, INDEX_COLUMNS, NORMALISATIONS, WEIGHTINGS, IndexConfig, Method,
                                   Period)
from analysis.io import DataError
from analysis.models import spec as engine_spec

MULTIVERSE_CONFIG = paths.CONFIGS / "multiverse.yaml"

#: Treatment kinds and the engine-spec keys each fills.
TREATMENT_KINDS = ("exposure_post", "cohort", "intensity")

#: Columns of the results that describe a cell's choices (in this order).
CHOICE_COLUMNS = [
    "index_normalisation", "index_weighting", "index_aggregation", "index_indicator_set", "outcome",
    "treatment_kind", "treatment", "exposure", "event", "estimator", "controls", "sample",
]

_TOP_KEYS = {"chunk_size", "workers", "seed", "max_failure_share", "index", "treatments", "estimators", "controls",
             "samples"}
_TOP_KEYS_OPTIONAL = {"inference"}
_INFERENCE_KEYS = {"n_permutations", "seed", "block_size"}
_INDEX_KEYS = {"outcomes", "normalisation", "weighting", "aggregation", "indicator_sets"}
_ESTIMATOR_KEYS_REQUIRED = {"treatment_kind", "spec"}
_ESTIMATOR_KEYS_OPTIONAL = {"uses_controls", "term", "description"}
_SAMPLE_KEYS = {"drop_units", "drop_years", "years", "description"}
# Engine-spec keys the grid owns (an estimator's `spec:` may not set them: they are the other axes).
_GRID_OWNED_SPEC_KEYS = {"outcome", "treatment", "exposure", "cohort", "controls", "sample", "seed", "data", "extends"}


@dataclass(frozen=True)
class IndexChoice:
    """One index construction: an :class:`analysis.index.config.Method` named by its choices."""

    normalisation: str
    weighting: str
    aggregation: str
    indicator_set: str
    base_period: Period | None = None

    @property
    def name(self) -> str:
        return f"{self.normalisation}-{self.weighting}-{self.aggregation}-{self.indicator_set}"

    def method(self) -> Method:
        return Method(self.name, self.normalisation, self.weighting, self.aggregation, self.indicator_set,
                      self.base_period)

    def as_dict(self) -> dict:
        """Plain, JSON-ready description (for the spec hash)."""
        bp = None if self.base_period is None else [self.base_period.first_year, self.base_period.last_year]
        return {"normalisation": self.normalisation, "weighting": self.weighting, "aggregation": self.aggregation,
                "indicator_set": self.indicator_set, "base_period": bp}


@dataclass(frozen=True)
class Treatment:
    """A treatment definition: its kind, a display name and the engine-spec keys it sets."""

    kind: str
    name: str
    spec_keys: tuple[tuple[str, str], ...]  # e.g. (("exposure", "exposure_defence_z"), ("treatment", "post_zte_2018"))
    exposure: str = ""
    event: str = ""


@dataclass(frozen=True)
class EstimatorChoice:
    name: str
    treatment_kind: str
    spec: Mapping[str, Any]
    uses_controls: bool = True
    term: str | None = None


@dataclass(frozen=True)
class Sample:
    name: str
    drop_units: tuple[int, ...] = ()
    drop_years: tuple[int, ...] = ()
    years: tuple[int, int] | None = None


@dataclass(frozen=True)
class InferenceSettings:
    """Specification-curve permutation inference (:mod:`analysis.multiverse.permutation`): number of permutations
    of the provinces' treatment assignments, their seed, and permutations per dask task (the blocks are fixed by the
    configuration, never by the number of workers, so results do not depend on it)."""

    n_permutations: int
    seed: int
    block_size: int = 50


@dataclass(frozen=True)
class MultiverseConfig:
    chunk_size: int
    workers: int
    seed: int
    outcomes: tuple[str, ...]
    index_choices: tuple[IndexChoice, ...]
    treatments: tuple[Treatment, ...]
    estimators: tuple[EstimatorChoice, ...]
    control_sets: Mapping[str, tuple[str, ...]]
    samples: tuple[Sample, ...]
    source: str = "configs/multiverse.yaml"
    inference: InferenceSettings | None = None
    #: Largest share of specifications (failed / all cells, in [0, 1]) the engine may fail to estimate before the
    #: run stops with exit status 2 instead of writing results (configs/multiverse.yaml, ``max_failure_share``).
    max_failure_share: float = 0.0


@dataclass
class Cell:
    """One specification: its choices (names, for the results), the index to build, and the resolved engine spec.

    ``drop_years`` are removed from the panel before the engine's own sample selection (the engine's ``sample``
    takes a contiguous year range). ``term`` is the reported coefficient of the engine's tidy output.
    """

    choices: dict[str, str]
    index: IndexChoice
    spec: dict
    drop_years: tuple[int, ...]
    term: str

    def hash_payload(self) -> dict:
        """Everything that determines the cell's numbers (names of choices excluded: renaming a sample must not
        recompute it). The spec id is excluded too, since it is derived from the hash."""
        spec = {k: v for k, v in self.spec.items() if k not in ("id", "spec_files", "data_file")}
        return {"index": self.index.as_dict(), "spec": spec, "drop_years": list(self.drop_years), "term": self.term}


# ---------------------------------------------------------------------------------------------------------------
def _keys(file: str, where: str, got: Any, required: set[str], optional: set[str] = frozenset()) -> None:
    if not isinstance(got, Mapping):
        raise DataError(file, f"{where}: expected a mapping, got {type(got).__name__}", column=where)
    unknown = set(got) - required - set(optional)
    if unknown:
        raise DataError(file, f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(required | set(optional))}",
                        column=where)
    missing = required - set(got)
    if missing:
        raise DataError(file, f"{where}: missing key(s) {sorted(missing)}", column=where)


def _str_list(file: str, where: str, value: Any, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise DataError(file, f"{where}: need a non-empty list of names, got {value!r}", column=where)
    if len(set(value)) != len(value):
        raise DataError(file, f"{where}: duplicate entries in {value!r}", column=where)
    if allowed is not None:
        bad = [v for v in value if v not in allowed]
        if bad:
            raise DataError(file, f"{where}: {bad} not among {list(allowed)}", column=where)
    return tuple(value)


def _int_list(file: str, where: str, value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise DataError(file, f"{where}: need a list of integers, got {value!r}", column=where)
    return tuple(value)


def _positive_int(file: str, key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DataError(file, f"{key}: need a positive integer, got {value!r}", column=key)
    return value


def parse_config(raw: Mapping, index_config: IndexConfig, file: str | os.PathLike = MULTIVERSE_CONFIG
                 ) -> MultiverseConfig:
    """Validate a parsed configs/multiverse.yaml against the index vocabulary and the engine's spec rules."""
    file = str(file)
    from analysis import config_models, schema

    schema.validate(config_models.MultiverseFile, raw, file)
    _keys(file, "top level", raw, _TOP_KEYS, _TOP_KEYS_OPTIONAL)
    chunk_size = _positive_int(file, "chunk_size", raw["chunk_size"])
    workers = _positive_int(file, "workers", raw["workers"])
    seed = raw["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise DataError(file, f"seed: need a non-negative integer, got {seed!r}", column="seed")
    max_failure_share = raw["max_failure_share"]
    if isinstance(max_failure_share, bool) or not isinstance(max_failure_share, (int, float)) \
            or not 0 <= max_failure_share <= 1:
        raise DataError(file, f"max_failure_share: need a share between 0 and 1, got {max_failure_share!r}",
                        column="max_failure_share")

    idx = raw["index"]
    _keys(file, "index", idx, _INDEX_KEYS)
    outcomes = _str_list(file, "index.outcomes", idx["outcomes"], INDEX_COLUMNS)
    normalisations = _str_list(file, "index.normalisation", idx["normalisation"], NORMALISATIONS)
    weightings = _str_list(file, "index.weighting", idx["weighting"], WEIGHTINGS)
    aggregations = _str_list(file, "index.aggregation", idx["aggregation"], AGGREGATIONS)
    sets: list[tuple[str, Period | None]] = []
    if not isinstance(idx["indicator_sets"], list) or not idx["indicator_sets"]:
        raise DataError(file, "index.indicator_sets: need a non-empty list", column="index.indicator_sets")
    for i, entry in enumerate(idx["indicator_sets"]):
        where = f"index.indicator_sets[{i}]"
        if isinstance(entry, str):
            name, base = entry, None
        else:
            _keys(file, where, entry, {"name"}, {"base_period"})
            name = entry["name"]
            bp = entry.get("base_period")
            base = None
            if bp is not None:
                _keys(file, f"{where}.base_period", bp, {"first_year", "last_year"})
                base = Period(int(bp["first_year"]), int(bp["last_year"]))
        if name not in index_config.indicator_sets:
            raise DataError(file, f"{where}: {name!r} is not an indicator set of {index_config.source} "
                                  f"({sorted(index_config.indicator_sets)})", column=where)
        sets.append((name, base))
    index_choices = tuple(IndexChoice(n, w, a, s, b) for s, b in sets
                          for n, w, a in itertools.product(normalisations, weightings, aggregations))

    treatments = _parse_treatments(file, raw["treatments"])
    estimators = _parse_estimators(file, raw["estimators"], {t.kind for t in treatments})

    controls = raw["controls"]
    if not isinstance(controls, Mapping) or not controls:
        raise DataError(file, "controls: need a mapping of set name -> list of columns", column="controls")
    control_sets: dict[str, tuple[str, ...]] = {}
    for name, columns in controls.items():
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise DataError(file, f"controls.{name}: need a list of columns or log(column)", column=f"controls.{name}")
        control_sets[str(name)] = tuple(columns)

    samples_raw = raw["samples"]
    if not isinstance(samples_raw, Mapping) or not samples_raw:
        raise DataError(file, "samples: need a mapping of sample name -> {drop_units, drop_years, years}",
                        column="samples")
    samples = []
    for name, spec in samples_raw.items():
        where = f"samples.{name}"
        spec = spec or {}
        _keys(file, where, spec, set(), _SAMPLE_KEYS)
        years = _int_list(file, f"{where}.years", spec.get("years"))
        if years and (len(years) != 2 or years[0] > years[1]):
            raise DataError(file, f"{where}.years: need [first, last] with first <= last", column=f"{where}.years")
        samples.append(Sample(str(name), _int_list(file, f"{where}.drop_units", spec.get("drop_units")),
                              _int_list(file, f"{where}.drop_years", spec.get("drop_years")),
                              tuple(years) if years else None))

    inference = None
    if raw.get("inference") is not None:
        inf = raw["inference"]
        _keys(file, "inference", inf, {"n_permutations", "seed"}, _INFERENCE_KEYS)
        inf_seed = inf["seed"]
        if not isinstance(inf_seed, int) or isinstance(inf_seed, bool) or inf_seed < 0:
            raise DataError(file, f"inference.seed: need a non-negative integer, got {inf_seed!r}",
                            column="inference.seed")
        inference = InferenceSettings(_positive_int(file, "inference.n_permutations", inf["n_permutations"]),
                                      inf_seed, _positive_int(file, "inference.block_size", inf.get("block_size", 50)))

    return MultiverseConfig(chunk_size=chunk_size, workers=workers, seed=seed, outcomes=outcomes,
                            index_choices=index_choices, treatments=treatments, estimators=estimators,
                            control_sets=control_sets, samples=tuple(samples), source=paths.relative(Path(file)),
                            inference=inference, max_failure_share=float(max_failure_share))


def _parse_treatments(file: str, raw: Any) -> tuple[Treatment, ...]:
    _keys(file, "treatments", raw, set(), set(TREATMENT_KINDS))
    if not raw:
        raise DataError(file, "treatments: declare at least one kind", column="treatments")
    out: list[Treatment] = []
    if "exposure_post" in raw:
        ep = raw["exposure_post"]
        _keys(file, "treatments.exposure_post", ep, {"exposures", "events"})
        exposures = _str_list(file, "treatments.exposure_post.exposures", ep["exposures"])
        events = _str_list(file, "treatments.exposure_post.events", ep["events"])
        for exposure, event in itertools.product(exposures, events):
            out.append(Treatment("exposure_post", f"{exposure} x {event}",
                                 (("exposure", exposure), ("treatment", event)), exposure, event))
    if "cohort" in raw:
        for cohort in _str_list(file, "treatments.cohort", raw["cohort"]):
            out.append(Treatment("cohort", cohort, (("cohort", cohort),)))
    if "intensity" in raw:
        for column in _str_list(file, "treatments.intensity", raw["intensity"]):
            out.append(Treatment("intensity", column, (("treatment", column),)))
    return tuple(out)


def _parse_estimators(file: str, raw: Any, kinds: set[str]) -> tuple[EstimatorChoice, ...]:
    if not isinstance(raw, Mapping) or not raw:
        raise DataError(file, "estimators: need a mapping of choice name -> {treatment_kind, spec}", column="estimators")
    out = []
    for name, entry in raw.items():
        where = f"estimators.{name}"
        _keys(file, where, entry, _ESTIMATOR_KEYS_REQUIRED, _ESTIMATOR_KEYS_OPTIONAL)
        kind = entry["treatment_kind"]
        if kind not in TREATMENT_KINDS:
            raise DataError(file, f"{where}.treatment_kind: {kind!r} is not one of {list(TREATMENT_KINDS)}",
                            column=f"{where}.treatment_kind")
        if kind not in kinds:
            raise DataError(file, f"{where}.treatment_kind: no treatment of kind {kind!r} is declared",
                            column=f"{where}.treatment_kind")
        spec = entry["spec"]
        if not isinstance(spec, Mapping) or "estimator" not in spec:
            raise DataError(file, f"{where}.spec: need a mapping with at least `estimator`", column=f"{where}.spec")
        owned = sorted(set(spec) & _GRID_OWNED_SPEC_KEYS)
        if owned:
            raise DataError(file, f"{where}.spec: {owned} are set by the grid's other axes, not here",
                            column=f"{where}.spec")
        uses_controls = entry.get("uses_controls", True)
        if not isinstance(uses_controls, bool):
            raise DataError(file, f"{where}.uses_controls: need true or false", column=f"{where}.uses_controls")
        term = entry.get("term")
        if term is not None and not isinstance(term, str):
            raise DataError(file, f"{where}.term: need a term name", column=f"{where}.term")
        out.append(EstimatorChoice(str(name), kind, copy.deepcopy(dict(spec)), uses_controls, term))
    return tuple(out)


def load_config(path: str | os.PathLike, index_config: IndexConfig) -> MultiverseConfig:
    """Read and validate configs/multiverse.yaml."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "multiverse configuration not found") from None
    except yaml.YAMLError as exc:
        raise DataError(path, f"not valid YAML: {exc}") from None
    return parse_config(raw, index_config, path)


# ---------------------------------------------------------------------------------------------------------------
def _control_sets_for(config: MultiverseConfig, estimator: EstimatorChoice) -> list[str]:
    if estimator.uses_controls:
        return list(config.control_sets)
    return [name for name, columns in config.control_sets.items() if not columns]


def expected_count(config: MultiverseConfig) -> int:
    """Number of cells, from the configuration's sizes (the closed form in the module docstring)."""
    per_index = sum(sum(t.kind == e.treatment_kind for t in config.treatments) * len(_control_sets_for(config, e))
                    for e in config.estimators)
    return len(config.index_choices) * len(config.outcomes) * per_index * len(config.samples)


def focal_term(treatment: Treatment, estimator: EstimatorChoice, spec: dict) -> str:
    """The coefficient a cell reports: the estimator's ``term`` if given; else the overall ``ATT`` for cohort
    designs and event-study forms; else the exposure × post interaction (cont_did) or the treatment column."""
    if estimator.term:
        return estimator.term
    if treatment.kind == "cohort" or spec.get("aggregate") == "dynamic":
        return "ATT"
    keys = dict(treatment.spec_keys)
    if treatment.kind == "exposure_post":
        return f"{keys['exposure']}:{keys['treatment']}"
    return keys["treatment"]


def resolve_spec(config: MultiverseConfig, outcome: str, treatment: Treatment, estimator: EstimatorChoice,
                 controls: str, sample: Sample, default_years: list[int] | None = None) -> dict:
    """The engine spec of one (outcome, treatment, estimator, controls, sample) combination, validated by
    :func:`analysis.models.spec.validate` (errors name configs/multiverse.yaml and the estimator's key)."""
    raw = copy.deepcopy(dict(estimator.spec))
    raw.update({"outcome": outcome, "controls": list(config.control_sets[controls]), "seed": config.seed})
    raw.update(dict(treatment.spec_keys))
    years = list(sample.years) if sample.years else default_years
    raw["sample"] = {"years": years, "drop_units": list(sample.drop_units), "keep_units": []}
    try:
        spec = engine_spec.validate(raw, config.source)
    except engine_spec.SpecError as exc:
        raise DataError(config.source, f"estimators.{estimator.name} with treatment {treatment.name!r}, controls "
                                       f"{controls!r}, sample {sample.name!r}: {exc}",
                        column=f"estimators.{estimator.name}") from None
    return spec


def needed_columns(cells: list[Cell]) -> list[str]:
    """Every data column the cells' specs read (outcome, treatment, controls, fixed effects, cluster …)."""
    from analysis.models.sample import required_columns

    specs = {id(cell.spec): cell.spec for cell in cells}  # cells of different index choices share spec dicts
    return sorted({column for spec in specs.values() for column in required_columns(spec)})


def expand(config: MultiverseConfig) -> list[Cell]:
    """All cells, in the order index choice → outcome → estimator → treatment → controls → sample."""
    model_cells: list[tuple[dict, dict, tuple[int, ...], str]] = []
    for outcome, estimator in itertools.product(config.outcomes, config.estimators):
        for treatment in (t for t in config.treatments if t.kind == estimator.treatment_kind):
            for controls, sample in itertools.product(_control_sets_for(config, estimator), config.samples):
                spec = resolve_spec(config, outcome, treatment, estimator, controls, sample)
                choices = {"outcome": outcome, "treatment_kind": treatment.kind, "treatment": treatment.name,
                           "exposure": treatment.exposure, "event": treatment.event, "estimator": estimator.name,
                           "controls": controls, "sample": sample.name}
                model_cells.append((choices, spec, sample.drop_years, focal_term(treatment, estimator, spec)))
    cells = []
    for index in config.index_choices:
        index_choices = {"index_normalisation": index.normalisation, "index_weighting": index.weighting,
                         "index_aggregation": index.aggregation, "index_indicator_set": index.indicator_set}
        for choices, spec, drop_years, term in model_cells:
            merged = {**index_choices, **choices}
            cells.append(Cell({c: merged[c] for c in CHOICE_COLUMNS}, index, spec, drop_years, term))
    return cells
