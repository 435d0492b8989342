"""The pydantic models of the data stages' config files (:mod:`analysis.schema` holds the base and shared types).

Each stage's loader validates the parsed file through its model first (:func:`analysis.schema.validate`), so every
file reports an unknown key (with the allowed keys and a "did you mean"), a missing key, a value of the wrong type
or outside its allowed set in one style, naming the file and the dotted key. The vocabularies (normalisations,
weightings, claim rules, ...) come from the module that implements them (:mod:`analysis.index.config`), so they
exist once. Checks that need more than one file or the data (an indicator set naming a declared indicator, a claim
year inside the window, an exposure measure's years inside the base years) stay in the loaders, after the model.

=====================  ======================================  =============================================
file                   model                                   loader
=====================  ======================================  =============================================
configs/panel.yaml     :class:`PanelFile`                      analysis.clean.panel.load_config
configs/index.yaml     :class:`IndexFile`                      analysis.index.config.load_config
configs/shocks.yaml    :class:`ShocksFile`                     analysis.shocks.config.load_config
entity_locations.yaml  :class:`EntityLocationsFile`            analysis.shocks.config.load_locations
analysis_panel.yaml    :class:`AnalysisPanelFile`              analysis.analysis_panel.load_config
data_sources.yaml      :class:`DataSourcesFile`                analysis.manifest.load_manifest
=====================  ======================================  =============================================

The other config files' models live beside the code that reads them, one module per job, so that a code
fingerprint (:mod:`analysis.fingerprint`) covers only the models its stage reads:

- configs/multiverse.yaml: :class:`analysis.config_models_multiverse.MultiverseFile`;
- configs/exhibits.yaml, tables.yaml, power.yaml: :mod:`analysis.config_models_exhibits` (built from the figure,
  table and power code's vocabularies, which their loaders pass in);
- configs/specs/<id>.yaml: :class:`analysis.models.spec.SpecFile` (built there from the spec DEFAULTS).

Neither the estimation engine nor the multiverse imports figure, table or power code through these models.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Field, StrictBool, StrictInt, StrictStr

from analysis.schema import Column, Model, Number, Text, Year, YearPair, YearRange

# ---------------------------------------------------------------------------------------------------------------
# Small helpers


def _choice(values) -> Any:
    """A ``Literal`` of the allowed values (pydantic reports them, :mod:`analysis.schema` adds a near match)."""
    return Literal[tuple(values)]


#: A non-empty list of names.
NameList = Annotated[list[StrictStr], Field(min_length=1)]


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
# Every file of this module

#: The data stages' config files -> their model (the other files: the module docstring).
MODELS: dict[str, type[Model]] = {
    "panel.yaml": PanelFile,
    "index.yaml": IndexFile,
    "shocks.yaml": ShocksFile,
    "entity_locations.yaml": EntityLocationsFile,
    "analysis_panel.yaml": AnalysisPanelFile,
    "data_sources.yaml": DataSourcesFile,
}
