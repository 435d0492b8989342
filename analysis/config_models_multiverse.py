"""The pydantic model of configs/multiverse.yaml (:mod:`analysis.schema` holds the base and shared types).

The loader :func:`analysis.multiverse.grid.load_config` validates the parsed file through :class:`MultiverseFile`
first (:func:`analysis.schema.validate`), so an unknown key, a missing key or a value of the wrong type or outside
its allowed set is reported in the one style of every config file, naming the file and the dotted key. The index
axes' choices come from the index stage (:mod:`analysis.index.config`, the module that implements them), so they
exist once. Checks that need another file (an indicator set declared in configs/index.yaml, the treatment kinds a
spec's estimator needs, the spec keys the grid owns) stay in the loader, after the model.

This module is separate from the data stages' models (:mod:`analysis.config_models`) and the exhibits' models
(:mod:`analysis.config_models_exhibits`) so that the multiverse cells' code fingerprint
(:mod:`analysis.fingerprint`, ``analysis.multiverse.cache.CODE_ENTRIES``) covers the multiverse's own file model and
no figure or table code.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import AfterValidator, Field, StrictBool, StrictInt, StrictStr, model_validator
from pydantic_core import PydanticCustomError

from analysis.index import config as index_vocabulary
from analysis.schema import Column, Model, Seed, YearPair, YearRange

#: An integer >= 1 (a chunk size, a worker count, a number of permutations).
Positive = Annotated[StrictInt, Field(ge=1)]
IntList = list[StrictInt]


def _unique(values: list) -> list:
    """``values`` if no entry repeats (an axis listed twice would fit every cell twice)."""
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise PydanticCustomError("duplicates", "duplicate entries {repeated}", {"repeated": repeated})
    return values


def _axis(values) -> Any:
    """A non-empty, repeat-free list of choices among ``values`` (pydantic reports the allowed values,
    :mod:`analysis.schema` adds a near match)."""
    return Annotated[list[Literal[tuple(values)]], Field(min_length=1), AfterValidator(_unique)]


#: A non-empty list of names without repeats (the axes of the multiverse).
UniqueNames = Annotated[list[StrictStr], Field(min_length=1), AfterValidator(_unique)]


class IndicatorSetChoice(Model):
    name: Column
    base_period: Optional[YearRange] = None


class MultiverseIndex(Model):
    outcomes: _axis(index_vocabulary.INDEX_COLUMNS)
    normalisation: _axis(index_vocabulary.NORMALISATIONS)
    weighting: _axis(index_vocabulary.WEIGHTINGS)
    aggregation: _axis(index_vocabulary.AGGREGATIONS)
    indicator_sets: Annotated[list[Union[Column, IndicatorSetChoice]], Field(min_length=1)]
class ExposurePost(Model):
    exposures: UniqueNames
    events: UniqueNames


class Treatments(Model):
    """The treatment kinds (the field names: analysis.multiverse.grid.TREATMENT_KINDS); at least one. A kind's key
    written without a value (``cohort:``) is refused, not read as absent (the default None is not validated)."""

    exposure_post: ExposurePost = None
    cohort: UniqueNames = None
    intensity: UniqueNames = None

    @model_validator(mode="after")
    def _some_kind(self) -> "Treatments":
        if all(getattr(self, kind) is None for kind in type(self).model_fields):
            raise PydanticCustomError("no_treatment", "declare at least one kind ({kinds})",
                                      {"kinds": ", ".join(type(self).model_fields)})
        return self


class EstimatorChoice(Model):
    treatment_kind: Literal[tuple(Treatments.model_fields)]
    spec: dict[str, Any]
    uses_controls: StrictBool = True
    term: Optional[StrictStr] = None
    description: Optional[StrictStr] = None


class Sample(Model):
    drop_units: Optional[IntList] = None
    drop_years: Optional[IntList] = None
    years: Optional[YearPair] = None
    description: Optional[StrictStr] = None


class MultiverseInference(Model):
    n_permutations: Positive
    seed: Seed
    block_size: Positive = 50


class MultiverseFile(Model):
    """configs/multiverse.yaml: the axes of the specification curve and its permutation inference."""

    chunk_size: Positive
    workers: Positive
    seed: Seed
    #: share of cells (failed / all, in [0, 1]) that may fail before the run stops; stated, no default in code
    max_failure_share: Annotated[float, Field(strict=True, ge=0, le=1)]
    index: MultiverseIndex
    treatments: Annotated[Treatments, Field()]
    estimators: Annotated[dict[str, EstimatorChoice], Field(min_length=1)]
    controls: Annotated[dict[str, list[StrictStr]], Field(min_length=1)]
    samples: Annotated[dict[str, Optional[Sample]], Field(min_length=1)]
    inference: Optional[MultiverseInference] = None
