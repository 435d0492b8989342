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

from analysis import config_models_multiverse as file_model, paths, schema
from analysis.index.config import IndexConfig, Method, Period
from analysis.io import DataError
from analysis.models import spec as engine_spec
from analysis.models.spec_vocabulary import SpecError

MULTIVERSE_CONFIG = paths.CONFIGS / "multiverse.yaml"

#: Treatment kinds (the keys of ``treatments:``, from the file's model).
TREATMENT_KINDS: tuple[str, ...] = tuple(file_model.Treatments.model_fields)

#: Columns of the results that describe a cell's choices (in this order).
CHOICE_COLUMNS = [
    "index_normalisation", "index_weighting", "index_aggregation", "index_indicator_set", "outcome",
    "treatment_kind", "treatment", "exposure", "event", "estimator", "controls", "sample",
]

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
    spec: engine_spec.Spec
    drop_years: tuple[int, ...]
    term: str

    def hash_payload(self) -> dict:
        """Everything that determines the cell's numbers (names of choices excluded: renaming a sample must not
        recompute it). The spec id is excluded too, since it is derived from the hash."""
        spec = {k: v for k, v in self.spec.canonical().items() if k not in ("id", "spec_files", "data_file")}
        return {"index": self.index.as_dict(), "spec": spec, "drop_years": list(self.drop_years), "term": self.term}


# ---------------------------------------------------------------------------------------------------------------
def parse_config(raw: Mapping, index_config: IndexConfig, file: str | os.PathLike = MULTIVERSE_CONFIG
                 ) -> MultiverseConfig:
    """Validate a parsed configs/multiverse.yaml against the index vocabulary and the engine's spec rules.

    Keys, types, allowed values, non-empty and repeat-free lists are the file's model's
    (:class:`analysis.config_models_multiverse.MultiverseFile`, one error style); here only what relates parts of the
    file or another file: an indicator set must be one of configs/index.yaml, an estimator's treatment kind must be
    declared under ``treatments``, and its ``spec`` may not set the keys the other axes own.
    """
    file = str(file)
    cfg = schema.validate(file_model.MultiverseFile, raw, file)

    idx = cfg.index
    sets: list[tuple[str, Period | None]] = []
    for i, entry in enumerate(idx.indicator_sets):
        where = f"index.indicator_sets[{i}]"
        name, base = (entry, None) if isinstance(entry, str) else (entry.name, entry.base_period)
        if name not in index_config.indicator_sets:
            raise DataError(file, f"{where}: {name!r} is not an indicator set of {index_config.source} "
                                  f"({sorted(index_config.indicator_sets)})", column=where)
        sets.append((name, base))
    index_choices = tuple(IndexChoice(n, w, a, s, b) for s, b in sets
                          for n, w, a in itertools.product(idx.normalisation, idx.weighting, idx.aggregation))

    treatments = _treatments(cfg.treatments)
    estimators = _estimators(file, cfg.estimators, {t.kind for t in treatments})
    control_sets = {name: tuple(columns) for name, columns in cfg.controls.items()}
    samples = tuple(Sample(name, tuple(s.drop_units or ()), tuple(s.drop_years or ()),
                           tuple(s.years) if s.years else None)
                    for name, s in ((name, s or file_model.Sample()) for name, s in cfg.samples.items()))
    inf = cfg.inference
    inference = None if inf is None else InferenceSettings(inf.n_permutations, inf.seed, inf.block_size)

    return MultiverseConfig(chunk_size=cfg.chunk_size, workers=cfg.workers, seed=cfg.seed,
                            outcomes=tuple(idx.outcomes), index_choices=index_choices, treatments=treatments,
                            estimators=estimators, control_sets=control_sets, samples=samples,
                            source=paths.relative(Path(file)), inference=inference,
                            max_failure_share=float(cfg.max_failure_share))


def _treatments(declared: file_model.Treatments) -> tuple[Treatment, ...]:
    out: list[Treatment] = []
    if declared.exposure_post is not None:
        for exposure, event in itertools.product(declared.exposure_post.exposures, declared.exposure_post.events):
            out.append(Treatment("exposure_post", f"{exposure} x {event}",
                                 (("exposure", exposure), ("treatment", event)), exposure, event))
    for cohort in declared.cohort or ():
        out.append(Treatment("cohort", cohort, (("cohort", cohort),)))
    for column in declared.intensity or ():
        out.append(Treatment("intensity", column, (("treatment", column),)))
    return tuple(out)


def _estimators(file: str, declared: Mapping[str, file_model.EstimatorChoice], kinds: set[str]
                ) -> tuple[EstimatorChoice, ...]:
    out = []
    for name, entry in declared.items():
        where = f"estimators.{name}"
        if entry.treatment_kind not in kinds:
            raise DataError(file, f"{where}.treatment_kind: no treatment of kind {entry.treatment_kind!r} is declared",
                            column=f"{where}.treatment_kind")
        owned = sorted(set(entry.spec) & _GRID_OWNED_SPEC_KEYS)
        if owned:
            raise DataError(file, f"{where}.spec: {owned} are set by the grid's other axes, not here",
                            column=f"{where}.spec")
        out.append(EstimatorChoice(name, entry.treatment_kind, copy.deepcopy(dict(entry.spec)), entry.uses_controls,
                                   entry.term))
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


def focal_term(treatment: Treatment, estimator: EstimatorChoice, spec: engine_spec.Spec) -> str:
    """The coefficient a cell reports: the estimator's ``term`` if given; else the overall ``ATT`` for cohort
    designs and event-study forms; else the exposure × post interaction (cont_did) or the treatment column."""
    if estimator.term:
        return estimator.term
    if treatment.kind == "cohort" or spec.aggregate == "dynamic":
        return "ATT"
    keys = dict(treatment.spec_keys)
    if treatment.kind == "exposure_post":
        return f"{keys['exposure']}:{keys['treatment']}"
    return keys["treatment"]


def resolve_spec(config: MultiverseConfig, outcome: str, treatment: Treatment, estimator: EstimatorChoice,
                 controls: str, sample: Sample, default_years: list[int] | None = None) -> engine_spec.Spec:
    """The engine spec of one (outcome, treatment, estimator, controls, sample) combination, validated by
    :func:`analysis.models.spec.validate` (errors name configs/multiverse.yaml and the estimator's key)."""
    raw = copy.deepcopy(dict(estimator.spec))
    raw.update({"outcome": outcome, "controls": list(config.control_sets[controls]), "seed": config.seed})
    raw.update(dict(treatment.spec_keys))
    years = list(sample.years) if sample.years else default_years
    raw["sample"] = {"years": years, "drop_units": list(sample.drop_units), "keep_units": []}
    try:
        spec = engine_spec.validate(raw, config.source)
    except SpecError as exc:
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
