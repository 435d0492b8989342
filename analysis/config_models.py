"""One pydantic model per YAML file the package reads (:mod:`analysis.schema` holds the base and shared types).

Each stage's loader validates the parsed file through its model first (:func:`analysis.schema.validate`), so every
file reports an unknown key (with the allowed keys and a "did you mean"), a missing key, a value of the wrong type
or outside its allowed set in one style, naming the file and the dotted key. The vocabularies (allowed methods,
exhibit kinds, table row kinds, ...) come from the module that implements them, so they exist once: the index
vocabulary is imported here; the figures', tables' and power module's vocabularies are passed in by their loaders
(:func:`exhibits_model`, :func:`tables_model`, :func:`power_model`), and the spec-file model lives in
:mod:`analysis.models.spec`, so that neither the estimation engine nor the multiverse imports figure or table code
(it would enter their code fingerprints, :mod:`analysis.fingerprint`). Checks that need more than one file or the
data (an indicator set naming a declared indicator, a claim year inside the window, an exposure measure's years
inside the base years) stay in the loaders, after the model.

=====================  ======================================  =============================================
file                   model                                   loader
=====================  ======================================  =============================================
configs/panel.yaml     :class:`PanelFile`                      analysis.clean.panel.load_config
configs/index.yaml     :class:`IndexFile`                      analysis.index.config.load_config
configs/shocks.yaml    :class:`ShocksFile`                     analysis.shocks.config.load_config
entity_locations.yaml  :class:`EntityLocationsFile`            analysis.shocks.config.load_locations
analysis_panel.yaml    :class:`AnalysisPanelFile`              analysis.analysis_panel.load_config
exhibits.yaml          :func:`exhibits_model` (KINDS)          analysis.figures.exhibits.load_exhibits
multiverse.yaml        :class:`MultiverseFile`                 analysis.multiverse.grid.load_config
data_sources.yaml      :class:`DataSourcesFile`                analysis.manifest.load_manifest
tables.yaml            :func:`tables_model` (ROW_KINDS, ...)   analysis.models.table_config.load_tables
power.yaml             :func:`power_model` (RULES)             analysis.power.load_config
specs/<id>.yaml        analysis.models.spec.SpecFile           analysis.models.spec.load_raw (each file)
=====================  ======================================  =============================================
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import AfterValidator, Field, StrictBool, StrictInt, StrictStr, create_model, model_validator
from pydantic_core import PydanticCustomError

from analysis.schema import Column, Model, Number, Seed, SpecId, Text, Year, YearPair, YearRange

# ---------------------------------------------------------------------------------------------------------------
# Small helpers


def _choice(values) -> Any:
    """A ``Literal`` of the allowed values (pydantic reports them, :mod:`analysis.schema` adds a near match)."""
    return Literal[tuple(values)]


NameList = Annotated[list[StrictStr], Field(min_length=1)]
IntList = list[StrictInt]


def _unique(values: list) -> list:
    """``values`` if no entry repeats (an axis listed twice would fit every cell twice)."""
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise PydanticCustomError("duplicates", "duplicate entries {repeated}", {"repeated": repeated})
    return values


def _non_blank(text: str) -> str:
    if not text.strip():
        raise PydanticCustomError("blank_text", "must be non-empty text")
    return text


def _containing(placeholder: str, meaning: str):
    """A check that text contains ``placeholder`` (a ``str.format`` field the code fills in, e.g. ``{k}``)."""
    def check(text: str) -> str:
        if placeholder not in text:
            raise PydanticCustomError("missing_placeholder", "must be text containing {placeholder} ({meaning})",
                                      {"placeholder": placeholder, "meaning": meaning})
        return text
    return check


#: A non-empty list of names without repeats (the axes of the multiverse).
UniqueNames = Annotated[list[StrictStr], Field(min_length=1), AfterValidator(_unique)]
#: Text with at least one non-space character (a caption, a note, a label).
NonBlank = Annotated[StrictStr, AfterValidator(_non_blank)]


# ---------------------------------------------------------------------------------------------------------------
# configs/panel.yaml


class YearbookVariable(Model):
    name: Column
    code: StrictStr
    unit: StrictStr
    en: StrictStr
    cn: StrictStr


class NbsVariable(Model):
    name: Column
    column: Optional[StrictStr] = None
    file: Optional[StrictStr] = None
    unit: Optional[StrictStr] = None
    en: Optional[StrictStr] = None
    cn: Optional[StrictStr] = None
    first_published: Optional[Year] = None
    year_offset: Literal[-1, 0, 1] = 0   # see configs/panel.yaml: the merged panel files real growth one year late


class CrossCheck(Model):
    keep: Column
    keep_table: StrictStr
    check_code: StrictStr
    check_table: StrictStr
    factor: Number
    abs_tolerance: Number


class ComponentsRule(Model):
    total: Column
    parts: Annotated[list[Column], Field(min_length=1)]
    abs_tolerance: Number


class Plausibility(Model):
    percent: list[Column] = []
    components: list[ComponentsRule] = []
    scale_ratio_max: Optional[Annotated[float, Field(strict=True, gt=1)]] = None


class DefenceFirms(Model):
    shenwan_history: Text
    shenwan_codes: Text
    stock_list: Text
    stock_list_fill: Text
    citic: Text
    sector_prefix: Text
    sector_name: Text
    citic_sector: Text
    citic_date: Any
    exchange_opening: Any
    area_aliases: Any
    renamed_codes: Any
    province_from: Any
    columns: Any


class PanelFile(Model):
    """configs/panel.yaml: the study window, the years kept, and the variables read from each source."""

    window: YearRange
    keep_years: YearRange
    yearbook: dict[str, list[YearbookVariable]]
    nbs: dict[str, list[NbsVariable]]
    cross_checks: list[CrossCheck] = []
    defence_firms: Optional[DefenceFirms] = None
    plausibility: Plausibility = Plausibility()


# ---------------------------------------------------------------------------------------------------------------
# configs/index.yaml

def _index_vocabulary():
    from analysis.index import config as c

    return c


_ic = _index_vocabulary()


class Indicator(Model):
    subsystem: _choice(_ic.SUBSYSTEMS)
    direction: _choice(_ic.DIRECTIONS)
    deflate: StrictBool = False
    unit_factor: Annotated[float, Field(strict=True, gt=0)] = 1.0
    label: StrictStr = ""


class IndicatorSet(Model):
    indicators: Annotated[list[Column], Field(min_length=1)]
    scale: _choice(_ic.SCALES)
    log1p: StrictBool
    description: StrictStr = ""


class Method(Model):
    normalisation: _choice(_ic.NORMALISATIONS)
    weighting: _choice(_ic.WEIGHTINGS)
    aggregation: _choice(_ic.AGGREGATIONS)
    indicator_set: Column
    base_period: Optional[YearRange] = None


class ComprehensiveWeights(Model):
    military: Annotated[float, Field(strict=True, ge=0, le=1)]
    civil: Annotated[float, Field(strict=True, ge=0, le=1)]


class Deflation(Model):
    column: Column
    missing: _choice(_ic.DEFLATOR_MISSING)


class Directional(Model):
    source_weight: Annotated[float, Field(strict=True, gt=0.5, le=1)]


class Sensitivity(Model):
    comparison_year: Year
    rank_shift_threshold: StrictInt


class ClaimsWindow(Model):
    first_year: Year


class ClaimReading(Model):
    """One reading of a published claim; which keys a rule needs is checked by the loader (CLAIM_RULES)."""

    rule: _choice(_ic.CLAIM_RULES)
    description: StrictStr = ""
    province_code: Optional[StrictInt] = None
    theater: Optional[_choice(_ic.THEATER_COMMANDS)] = None
    year: Optional[Year] = None
    years: Optional[Annotated[list[Year], Field(min_length=1)]] = None
    from_year: Optional[Year] = None
    to_year: Optional[Year] = None
    threshold: Optional[Number] = None


class Claim(Model):
    text: Text
    source: Text
    quote: Optional[Text]
    natural_metric: Union[_choice(_ic.INDEX_COLUMNS), Annotated[list[_choice(_ic.INDEX_COLUMNS)], Field(min_length=1)]]
    readings: Annotated[dict[str, ClaimReading], Field(min_length=1)]


class IndexFile(Model):
    """configs/index.yaml: indicators, indicator sets, methods, and the published claims checked on the index."""

    base_period: YearRange
    comprehensive_weights: ComprehensiveWeights
    directional: Directional
    capability_index: _choice(_ic.BOUNDED_CAPABILITY_COLUMNS)
    default_method: Column
    indicators: dict[str, Indicator]
    indicator_sets: dict[str, IndicatorSet]
    methods: dict[str, Method]
    sensitivity: Sensitivity
    national: _choice(_ic.NATIONAL_AGGREGATES)
    claims: Annotated[dict[str, Claim], Field(min_length=1)]
    claim_metrics: Annotated[list[_choice(_ic.INDEX_COLUMNS)], Field(min_length=1)]
    claims_window: ClaimsWindow
    deflation: Deflation


# ---------------------------------------------------------------------------------------------------------------
# configs/shocks.yaml and configs/entity_locations.yaml

_sc_roles = ("main", "alternative")
DateValue = Union[dt.date, StrictStr]


class PostRule(Model):
    cutoff_month_day: StrictStr


class Event(Model):
    date: DateValue
    role: _choice(_sc_roles)
    label: Text
    citation: Text


class RatioMeasure(Model):
    name: Text
    formula: Literal["ratio_of_sums"]
    numerator: Text
    denominator: Text
    years: YearRange
    missing_numerator: Literal["zero", "error"]
    scale: Number
    unit: Text
    label: Text
    numerator_factor: Number = 1.0
    numerator_fx: Optional[Text] = None


class CountMeasure(Model):
    name: Text
    formula: Literal["province_count"]
    columns: NameList
    unit: Text
    label: Text


class Composite(Model):
    name: Text
    components: NameList
    label: Text


class Exposure(Model):
    base_years: YearRange
    usd_cny: Optional[dict[StrictInt, Number]] = None
    measures: Annotated[list[Annotated[Union[RatioMeasure, CountMeasure], Field(discriminator="formula")]],
                        Field(min_length=1)]
    composites: Optional[list[Composite]] = None


class EntitySource(Model):
    path: Text
    complete: StrictBool


class EntityRule(Model):
    id: Text
    date: Optional[DateValue] = None
    date_range: Optional[Annotated[list[DateValue], Field(min_length=2, max_length=2)]] = None
    status: Literal["complete", "partial", "missing"]
    basis: Text
    reason: Text
    reason_source: Text
    entity_reasons: Optional[dict[str, Text]] = None


class PlausibleListing(Model):
    rule: Text
    province: Text
    basis: Text
    source: Text


class EntityList(Model):
    sources: Annotated[list[EntitySource], Field(min_length=1)]
    years: YearRange
    countries: NameList
    reasons: Annotated[dict[str, Text], Field(min_length=1)]
    tech_cohort_reasons: NameList
    rules: Optional[list[EntityRule]] = None
    plausible_earlier_listings: Optional[list[PlausibleListing]] = None


class Geocode(Model):
    fields: Annotated[list[Literal["address", "entity_name", "city"]], Field(min_length=1)]
    aliases: Optional[dict[str, Union[StrictStr, StrictInt]]] = None
    street_words: Optional[list[StrictStr]] = None
    direction_words: Optional[list[StrictStr]] = None
    locations: Optional[Text] = None


class ShocksFile(Model):
    """configs/shocks.yaml: the events, the exposure measures and the Entity List transcription."""

    post_rule: PostRule
    events: Annotated[dict[str, Event], Field(min_length=1)]
    exposure: Exposure
    entity_list: EntityList
    geocode: Geocode


class PlacedEntity(Model):
    name: Text
    province: Text
    basis: Text
    source: Text


class NotPlacedEntity(Model):
    name: Text
    reason: Text


class EntityLocationsFile(Model):
    """configs/entity_locations.yaml: hand-checked entity name -> province, and the names left unplaced."""

    placed: Optional[list[PlacedEntity]]
    not_placed: Optional[list[NotPlacedEntity]]


# ---------------------------------------------------------------------------------------------------------------
# configs/analysis_panel.yaml


class CaseStudy(Model):
    province_code: StrictInt
    first_year: Year


class BasePeriodSplit(Model):
    column: Column
    years: YearPair


class BasePeriodInteraction(Model):
    column: Column
    years: YearPair
    transform: StrictStr = "none"   # none or a function of analysis.analysis_panel (checked there)
    times: Optional[Column] = None
    from_year: Optional[Year] = None


class AnalysisPanelFile(Model):
    """configs/analysis_panel.yaml: the columns the analysis panel adds to the panel, indices and shocks."""

    case_studies: dict[str, CaseStudy] = {}
    derived: dict[str, Annotated[list[StrictStr], Field(min_length=2, max_length=2)]] = {}
    other_index_methods: dict[str, Annotated[list[Column], Field(min_length=1)]] = {}
    base_period_splits: dict[str, BasePeriodSplit] = {}
    base_period_interactions: dict[str, BasePeriodInteraction] = {}


# ---------------------------------------------------------------------------------------------------------------
# configs/exhibits.yaml: one model per exhibit kind, built from analysis.figures.exhibits.KINDS (the one list),
# which the loader passes in (importing the figure code here would put it into the estimates' code fingerprint)

_TYPES = {str: StrictStr, int: StrictInt, float: Number, list: list}


@functools.cache
def _exhibits_model(kinds_key: tuple) -> type[Model]:
    models = []
    for kind, keys in kinds_key:
        # an optional key defaults to None (not validated) but, written without a value, is refused
        fields = {"kind": (Literal[kind], ...), "caption": (StrictStr, ...), "note": (StrictStr, ...),
                  "method": (StrictStr, None), "language": (Literal["en", "cn"], "en")}
        for key, typ, required in keys:
            fields[key] = (_TYPES[typ], ...) if required else (_TYPES[typ], None)
        models.append(create_model(f"Exhibit_{kind}", __base__=Model, **fields))
    exhibit = Annotated[Union[tuple(models)], Field(discriminator="kind")]
    return create_model("ExhibitsFile", __base__=Model,
                        __doc__="configs/exhibits.yaml: exhibit id -> kind and settings (keys per kind: KINDS).",
                        exhibits=(Annotated[dict[str, exhibit], Field(min_length=1)], ...))


def exhibits_model(kinds: dict) -> type[Model]:
    """The model of configs/exhibits.yaml for ``kinds`` (analysis.figures.exhibits.KINDS: kind -> (output type,
    {key: (type, required)})): a discriminated union on ``kind``, one model per kind."""
    return _exhibits_model(tuple((kind, tuple((k, t, r) for k, (t, r) in keys.items()))
                                 for kind, (_, keys) in kinds.items()))


# ---------------------------------------------------------------------------------------------------------------
# configs/multiverse.yaml

Positive = Annotated[StrictInt, Field(ge=1)]


class IndicatorSetChoice(Model):
    name: Column
    base_period: Optional[YearRange] = None


class MultiverseIndex(Model):
    outcomes: Annotated[list[_choice(_ic.INDEX_COLUMNS)], Field(min_length=1), AfterValidator(_unique)]
    normalisation: Annotated[list[_choice(_ic.NORMALISATIONS)], Field(min_length=1), AfterValidator(_unique)]
    weighting: Annotated[list[_choice(_ic.WEIGHTINGS)], Field(min_length=1), AfterValidator(_unique)]
    aggregation: Annotated[list[_choice(_ic.AGGREGATIONS)], Field(min_length=1), AfterValidator(_unique)]
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
    treatment_kind: _choice(Treatments.model_fields)
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


# ---------------------------------------------------------------------------------------------------------------
# configs/data_sources.yaml


class Replaced(Model):
    sha256: Text
    origin: Text
    licence: Text
    replaced_on: Union[dt.date, StrictStr]


class RawFile(Model):
    path: Text
    sha256: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")]
    origin: Text
    licence: Text
    encoding: Optional[Text] = None
    added_on: Optional[Union[dt.date, StrictStr]] = None
    replaces: Optional[list[Replaced]] = None


class DataSourcesFile(Model):
    """configs/data_sources.yaml: every raw file with its SHA-256, origin and licence."""

    files: list[RawFile]


# ---------------------------------------------------------------------------------------------------------------
# configs/tables.yaml: the vocabulary (row kinds, headers, label kinds) is passed in by the table code
# (analysis.models.table_config and analysis.models.table_labels)


def tables_model(row_kinds: tuple[str, ...], headers: tuple[str, ...], label_kinds: tuple[str, ...] = ()
                 ) -> type[Model]:
    """The model of configs/tables.yaml; the vocabulary comes from the table code (analysis.models.table_config
    ROW_KINDS, HEADERS; analysis.models.table_labels LABEL_KINDS), which passes it in. It extends
    :func:`label_map_model`, so the label map is declared once for both readers of the file."""
    return _tables_model(tuple(row_kinds), tuple(headers), tuple(label_kinds))


@functools.cache
def label_map_model(label_kinds: tuple[str, ...]) -> type[Model]:
    """The ``labels:`` section of configs/tables.yaml (required), as the label-map reader
    (analysis.models.table_labels.parse_labels) validates it: ``event_time`` (required) and, per kind of
    ``label_kinds``, a mapping of raw names to non-blank labels (absent: empty)."""
    labels = create_model("TableLabels", __base__=Model, event_time=(NonBlank, ...),
                          **{kind: (dict[str, NonBlank], Field(default_factory=dict)) for kind in label_kinds})
    return create_model("LabelMap", __base__=Model, labels=(labels, ...))


@functools.cache
def _tables_model(row_kinds: tuple[str, ...], headers: tuple[str, ...], label_kinds: tuple[str, ...]) -> type[Model]:
    column = create_model("TableColumn", __base__=Model, spec=(SpecId, ...), label=(Optional[NonBlank], None))
    table = create_model(
        "Table", __base__=Model, caption=(NonBlank, ...),
        columns=(Annotated[list[Union[SpecId, column]], Field(min_length=1)], ...),
        rows=(_choice(row_kinds), ...), header=(_choice(headers), ...),
        terms=(list[Text], Field(default_factory=list)), extra_specs=(list[SpecId], Field(default_factory=list)),
        note=(NonBlank, ""))
    return create_model("TablesFile", __base__=label_map_model(label_kinds), __doc__="configs/tables.yaml: the "
                        "regression tables and their label map.",
                        tables=(Annotated[dict[str, table], Field(min_length=1)], ...))


# ---------------------------------------------------------------------------------------------------------------
# configs/power.yaml


class Doubling(Model):
    province_code: StrictInt
    pre_year: Year


@functools.cache
def power_model(rules: tuple[str, ...]) -> type[Model]:
    """The model of configs/power.yaml; ``rules``: the smallest-effect rules of analysis.power (RULES)."""
    smallest = create_model("SmallestEffect", __base__=SmallestEffect, bound=(_choice(rules), ...))
    return create_model("PowerFile", __base__=PowerFile, smallest_effect=(smallest, ...))


class SmallestEffect(Model):
    bound: StrictStr
    doubling: Doubling
    log_change_outcomes: list[Column]
    exposure_contrast_sd: Annotated[float, Field(strict=True, gt=0)]


class PowerFile(Model):
    """configs/power.yaml: size and power of the minimum-detectable-effect calculation, and its specs."""

    alpha: Annotated[float, Field(strict=True, gt=0, lt=1)]
    power: Annotated[float, Field(strict=True, gt=0, lt=1)]
    specs: Annotated[dict[str, Annotated[list[StrictStr], Field(min_length=1)]], Field(min_length=1)]
    smallest_effect: SmallestEffect


# ---------------------------------------------------------------------------------------------------------------
# configs/specs/<id>.yaml: analysis.models.spec.SpecFile (built there from the spec DEFAULTS, so that the engine
# does not import this module and its vocabularies)


#: The config files whose model needs no vocabulary from a stage's module -> their model (exhibits.yaml, tables.yaml
#: and power.yaml: :func:`exhibits_model`, :func:`tables_model`, :func:`power_model` with the owner's vocabulary).
MODELS: dict[str, type[Model]] = {
    "panel.yaml": PanelFile,
    "index.yaml": IndexFile,
    "shocks.yaml": ShocksFile,
    "entity_locations.yaml": EntityLocationsFile,
    "analysis_panel.yaml": AnalysisPanelFile,
    "multiverse.yaml": MultiverseFile,
    "data_sources.yaml": DataSourcesFile,
}
