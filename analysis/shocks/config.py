"""Load and validate ``configs/shocks.yaml`` into plain, typed objects.

Unknown keys and bad values stop the run with a :class:`~analysis.io.DataError` that names the file and the key
(dotted path, e.g. ``events.zte_2018.date``). Nothing here computes; the stages take the validated objects.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from analysis import paths
from analysis.io import DataError
from analysis.schema import YearRange  # an inclusive span of calendar years (one type, analysis.schema)
from analysis.shocks.events import first_treated_year
from analysis.window import moved_key, study_window

_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")
RULE_STATUSES = ("complete", "partial", "missing")
LOCATION_PROVINCES_EXTRA = ("Hong Kong",)
EVENT_ROLES = ("main", "alternative")
GEOCODE_FIELDS = ("address", "entity_name", "city")


@dataclass(frozen=True)
class Event:
    name: str
    date: dt.date
    role: str
    label: str
    citation: str


@dataclass(frozen=True)
class RatioMeasure:
    name: str
    numerator: str
    denominator: str
    years: YearRange
    missing_numerator: str  # "zero" or "error"
    scale: float
    unit: str
    label: str
    numerator_factor: float = 1.0
    numerator_fx: str | None = None


@dataclass(frozen=True)
class CountMeasure:
    name: str
    columns: tuple[str, ...]
    unit: str
    label: str


@dataclass(frozen=True)
class Composite:
    name: str
    components: tuple[str, ...]
    label: str


@dataclass(frozen=True)
class Rule:
    id: str
    first_date: dt.date  # equal to last_date when the date is known
    last_date: dt.date
    status: str
    basis: str
    reason: str = "unknown"                 # a key of entity_list.reasons (the rule's stated basis for listing)
    reason_source: str = ""                 # where that basis is stated (Federal Register text, press release)
    entity_reasons: dict[str, str] = field(default_factory=dict)  # entity name -> reason, where it differs

    @property
    def years(self) -> list[int]:
        """Every calendar year the rule may fall in (one year when the date is known)."""
        return list(range(self.first_date.year, self.last_date.year + 1))


@dataclass(frozen=True)
class EntitySource:
    path: Path
    complete: bool


@dataclass(frozen=True)
class PlausibleListing:
    """A province that an untranscribed entry of a partial or missing rule plausibly sits in (sensitivity)."""

    rule: str
    province_code: int
    basis: str
    source: str


@dataclass(frozen=True)
class EntityLocation:
    """A hand-checked entity name -> province (``configs/entity_locations.yaml``, ``placed``)."""

    name: str
    province_code: int | str   # GB/T 2260 province code, or "HK"
    basis: str
    source: str


@dataclass(frozen=True)
class NotPlaced:
    """An entity checked by hand and deliberately left without a province, with the reason."""

    name: str
    reason: str


@dataclass(frozen=True)
class ShocksConfig:
    file: Path
    years: YearRange
    cutoff_month: int
    cutoff_day: int
    events: tuple[Event, ...]
    base_years: YearRange
    fx: dict[str, dict[int, float]]
    ratio_measures: tuple[RatioMeasure, ...]
    count_measures: tuple[CountMeasure, ...]
    composites: tuple[Composite, ...]
    entity_sources: tuple[EntitySource, ...]
    entity_years: YearRange
    countries: tuple[str, ...]
    rules: tuple[Rule, ...]
    geocode_fields: tuple[str, ...]
    aliases: dict[str, str] = field(default_factory=dict)
    street_words: tuple[str, ...] = ()
    direction_words: tuple[str, ...] = ()
    reasons: dict[str, str] = field(default_factory=dict)
    tech_reasons: tuple[str, ...] = ()
    plausible_listings: tuple[PlausibleListing, ...] = ()
    locations_file: Path | None = None
    locations: tuple[EntityLocation, ...] = ()
    not_placed: tuple[NotPlaced, ...] = ()

    @property
    def exposure_names(self) -> list[str]:
        return ([m.name for m in self.ratio_measures] + [m.name for m in self.count_measures]
                + [c.name for c in self.composites])


class _Reader:
    """Checks of values the model (:class:`analysis.config_models.ShocksFile`) cannot make alone (non-blank text,
    dates, choices among the file's own reasons and rules), reporting the file and the dotted key."""

    def __init__(self, file: Path):
        self.file = file

    def fail(self, key: str, message: str):
        raise DataError(self.file, message, key=key)

    def integer(self, value, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"expected an integer, got {value!r}")
        return value

    def number(self, value, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"expected a number, got {value!r}")
        return float(value)

    def text(self, value, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"expected a non-empty string, got {value!r}")
        return value

    def date(self, value, key: str) -> dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.fail(key, f"expected a date YYYY-MM-DD, got {value!r}")

    def year_range(self, value, key: str) -> YearRange:
        return YearRange(value["first_year"], value["last_year"])  # integers, first <= last: checked by the model

    def choice(self, value, key: str, options) -> str:
        if value not in options:
            self.fail(key, f"expected one of {', '.join(options)}, got {value!r}")
        return value

    def string_list(self, value, key: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            self.fail(key, "expected a non-empty list")
        return tuple(self.text(v, f"{key}[{i}]") for i, v in enumerate(value))


def load_config(path: str | Path = paths.SHOCKS_CONFIG, window: tuple[int, int] | None = None) -> ShocksConfig:
    """Read and validate the shocks configuration (see the comments in ``configs/shocks.yaml``).

    ``window``: the (first_year, last_year) of the rows written; None = the study window (configs/panel.yaml
    ``window``, :func:`analysis.window.study_window`).
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise DataError(path, f"not valid YAML: {err}") from err
    r = _Reader(path)
    if isinstance(raw, dict) and "years" in raw:
        raise moved_key(path, "years")
    from analysis import config_models, schema

    schema.validate(config_models.ShocksFile, raw, path)
    top = raw
    years = YearRange(*(study_window() if window is None else window))

    post = top["post_rule"]
    md = _MONTH_DAY.match(str(post["cutoff_month_day"]))
    if not md:
        r.fail("post_rule.cutoff_month_day", f"expected MM-DD, got {post['cutoff_month_day']!r}")
    cutoff_month, cutoff_day = int(md.group(1)), int(md.group(2))
    try:
        dt.date(2001, cutoff_month, cutoff_day)  # a non-leap year: 02-29 is not a valid cutoff
    except ValueError:
        r.fail("post_rule.cutoff_month_day", f"not a calendar day: {post['cutoff_month_day']!r}")

    events = []
    for name, spec in top["events"].items():
        key = f"events.{name}"
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)):
            r.fail(key, "event names must be lower_snake_case (they become post_<name> columns)")
        s = spec
        events.append(Event(name, r.date(s["date"], f"{key}.date"), r.choice(s["role"], f"{key}.role", EVENT_ROLES),
                            r.text(s["label"], f"{key}.label"), r.text(s["citation"], f"{key}.citation")))
    if not any(e.role == "main" for e in events):
        r.fail("events", "at least one event must have role: main")

    ex = top["exposure"]
    base = r.year_range(ex["base_years"], "exposure.base_years")
    first_main = min(first_treated_year(e.date, cutoff_month, cutoff_day) for e in events if e.role == "main")
    if base.last_year >= first_main:
        r.fail("exposure.base_years.last_year",
               f"{base.last_year} is not before {first_main}, the first year treated by a main event")
    fx = {}
    if "usd_cny" in ex:
        fx_map = ex["usd_cny"]
        fx["usd_cny"] = {r.integer(y, "exposure.usd_cny"): r.number(v, f"exposure.usd_cny.{y}") for y, v in fx_map.items()}
    ratios, counts, names = [], [], set()
    for i, spec in enumerate(ex["measures"]):
        key = f"exposure.measures[{i}]"
        formula = r.choice((spec or {}).get("formula"), f"{key}.formula", ("ratio_of_sums", "province_count"))
        name = r.text(spec.get("name"), f"{key}.name")
        if not name.startswith("exposure_") or name.endswith("_z"):
            r.fail(f"{key}.name", "exposure names start with 'exposure_' and do not end in '_z'")
        if name in names:
            r.fail(f"{key}.name", f"duplicate measure {name!r}")
        names.add(name)
        if formula == "ratio_of_sums":
            s = spec
            yrs = r.year_range(s["years"], f"{key}.years")
            if yrs.first_year < base.first_year or yrs.last_year > base.last_year:
                r.fail(f"{key}.years", f"{yrs.first_year}-{yrs.last_year} lies outside exposure.base_years "
                                       f"{base.first_year}-{base.last_year}")
            fx_name = s.get("numerator_fx")
            if fx_name is not None:
                if fx_name not in fx:
                    r.fail(f"{key}.numerator_fx", f"no exchange-rate table {fx_name!r} under exposure")
                missing = [y for y in yrs.years() if y not in fx[fx_name]]
                if missing:
                    r.fail(f"exposure.{fx_name}", f"no rate for year(s) {missing} used by {name}")
            ratios.append(RatioMeasure(
                name=name, numerator=r.text(s["numerator"], f"{key}.numerator"),
                denominator=r.text(s["denominator"], f"{key}.denominator"), years=yrs,
                missing_numerator=r.choice(s["missing_numerator"], f"{key}.missing_numerator", ("zero", "error")),
                scale=r.number(s["scale"], f"{key}.scale"), unit=r.text(s["unit"], f"{key}.unit"),
                label=r.text(s["label"], f"{key}.label"),
                numerator_factor=r.number(s.get("numerator_factor", 1.0), f"{key}.numerator_factor"),
                numerator_fx=fx_name))
        else:
            s = spec
            counts.append(CountMeasure(name, r.string_list(s["columns"], f"{key}.columns"),
                                       r.text(s["unit"], f"{key}.unit"), r.text(s["label"], f"{key}.label")))
    composites = []
    for i, spec in enumerate(ex.get("composites") or []):
        key = f"exposure.composites[{i}]"
        s = spec
        comps = r.string_list(s["components"], f"{key}.components")
        for c in comps:
            if c not in names:
                r.fail(f"{key}.components", f"unknown measure {c!r}")
        name = r.text(s["name"], f"{key}.name")
        if name in names or not name.startswith("exposure_"):
            r.fail(f"{key}.name", f"composite name {name!r} must be new and start with 'exposure_'")
        names.add(name)
        composites.append(Composite(name, comps, r.text(s["label"], f"{key}.label")))

    el = top["entity_list"]
    reasons = {str(k): r.text(v, f"entity_list.reasons.{k}") for k, v in el["reasons"].items()}
    tech_reasons = r.string_list(el["tech_cohort_reasons"], "entity_list.tech_cohort_reasons")
    for i, t in enumerate(tech_reasons):
        r.choice(t, f"entity_list.tech_cohort_reasons[{i}]", tuple(reasons))
    sources = []
    for i, spec in enumerate(el["sources"]):
        key = f"entity_list.sources[{i}]"
        s = spec
        p = Path(r.text(s["path"], f"{key}.path"))
        sources.append(EntitySource(p if p.is_absolute() else paths.ROOT / p, s["complete"]))
    rules, rule_ids = [], set()
    for i, spec in enumerate(el["rules"] or []):
        key = f"entity_list.rules[{i}]"
        s = spec
        rid = r.text(s["id"], f"{key}.id")
        if rid in rule_ids:
            r.fail(f"{key}.id", f"duplicate rule {rid!r}")
        rule_ids.add(rid)
        if ("date" in s) == ("date_range" in s):
            r.fail(key, "give exactly one of date or date_range")
        if "date" in s:
            first = last = r.date(s["date"], f"{key}.date")
        else:
            rng = s["date_range"]
            if not isinstance(rng, list) or len(rng) != 2:
                r.fail(f"{key}.date_range", "expected [earliest, latest]")
            first, last = r.date(rng[0], f"{key}.date_range[0]"), r.date(rng[1], f"{key}.date_range[1]")
            if first > last:
                r.fail(f"{key}.date_range", "earliest date is after latest date")
        entity_reasons = {}
        for name, why in (s.get("entity_reasons") or {}).items():
            entity_reasons[r.text(name, f"{key}.entity_reasons")] = r.choice(
                why, f"{key}.entity_reasons.{name}", tuple(reasons))
        rules.append(Rule(rid, first, last, r.choice(s["status"], f"{key}.status", RULE_STATUSES),
                          r.text(s["basis"], f"{key}.basis"), r.choice(s["reason"], f"{key}.reason", tuple(reasons)),
                          r.text(s["reason_source"], f"{key}.reason_source"), entity_reasons))
    to_code = _province_lookup()
    plausible = []
    for i, spec in enumerate(el.get("plausible_earlier_listings") or []):
        key = f"entity_list.plausible_earlier_listings[{i}]"
        s = spec
        rule = next((x for x in rules if x.id == s["rule"]), None)
        if rule is None:
            r.fail(f"{key}.rule", f"unknown rule {s['rule']!r} (not in entity_list.rules)")
        if rule.status == "complete":
            r.fail(f"{key}.rule", f"rule {rule.id} is complete: every entry is transcribed, none can be missing")
        code = to_code.get(str(s["province"]))
        if not isinstance(code, int):
            r.fail(f"{key}.province", f"not a mainland province name of the identity table: {s['province']!r}")
        plausible.append(PlausibleListing(rule.id, code, r.text(s["basis"], f"{key}.basis"),
                                          r.text(s["source"], f"{key}.source")))

    geo = top["geocode"]
    locations_file, locations, not_placed = None, (), ()
    if "locations" in geo:
        p = Path(r.text(geo["locations"], "geocode.locations"))
        locations_file = p if p.is_absolute() else paths.ROOT / p
        locations, not_placed = load_locations(locations_file, to_code)
    fields = r.string_list(geo["fields"], "geocode.fields")
    for i, f in enumerate(fields):
        r.choice(f, f"geocode.fields[{i}]", GEOCODE_FIELDS)
    aliases = {}
    for k, v in (geo.get("aliases") or {}).items():
        v = str(v)
        if v != "HK" and not re.fullmatch(r"\d{6}", v):
            r.fail(f"geocode.aliases.{k}", f"expected a six-digit GB/T 2260 code or HK, got {v!r}")
        aliases[str(k)] = v
    return ShocksConfig(
        file=path, years=years, cutoff_month=cutoff_month, cutoff_day=cutoff_day, events=tuple(events),
        base_years=base, fx=fx, ratio_measures=tuple(ratios), count_measures=tuple(counts),
        composites=tuple(composites), entity_sources=tuple(sources),
        entity_years=r.year_range(el["years"], "entity_list.years"),
        countries=r.string_list(el["countries"], "entity_list.countries"), rules=tuple(rules),
        geocode_fields=fields, aliases=aliases,
        street_words=tuple(geo.get("street_words") or ()), direction_words=tuple(geo.get("direction_words") or ()),
        reasons=reasons, tech_reasons=tech_reasons, plausible_listings=tuple(plausible),
        locations_file=locations_file, locations=locations, not_placed=not_placed)


def _province_lookup() -> dict[str, int | str]:
    """Province name (English, pinyin or Chinese, as in the identity table) -> GB code; "Hong Kong" -> HK."""
    from analysis.provinces import identity_table

    ident = identity_table()
    out: dict[str, int | str] = {}
    for rec in ident.itertuples():
        for name in (rec.province_en, rec.pinyin, rec.name_cn):
            out[str(name)] = int(rec.province_code)
    out["Hong Kong"] = "HK"
    return out


def name_key(name: str) -> str:
    """The key an entity name is matched on: case-folded Latin letters and digits (``latin_key``), or the
    stripped name itself when it has none (a name written only in Chinese characters)."""
    from analysis.shocks.geocode import latin_key

    return latin_key(name) or str(name).strip()


def load_locations(path: Path, to_code: dict | None = None) -> tuple[tuple[EntityLocation, ...], tuple[NotPlaced, ...]]:
    """Read and validate the hand-checked name -> province table (see the comments in the file).

    ``placed``: name, province (identity-table English name or Hong Kong), basis, source -- all required and
    non-empty. ``not_placed``: name, reason. A name (by :func:`name_key`) may appear once in all.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found (named by geocode.locations in the shocks config)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise DataError(path, f"not valid YAML: {err}") from err
    from analysis import config_models, schema

    schema.validate(config_models.EntityLocationsFile, raw, path)
    r = _Reader(path)
    top = raw
    to_code = _province_lookup() if to_code is None else to_code
    seen: dict[str, str] = {}
    placed, not_placed = [], []

    def check_name(value, key):
        name = r.text(value, key)
        k = name_key(name)
        if k in seen:
            r.fail(key, f"{name!r} is already listed at {seen[k]}")
        seen[k] = key
        return name

    for i, spec in enumerate(top["placed"] or []):
        key = f"placed[{i}]"
        s = spec
        name = check_name(s["name"], f"{key}.name")
        code = to_code.get(str(s["province"]))
        if code is None:
            r.fail(f"{key}.province", f"not a province name of the identity table (or Hong Kong): {s['province']!r}")
        placed.append(EntityLocation(name, code, r.text(s["basis"], f"{key}.basis"),
                                     r.text(s["source"], f"{key}.source")))
    for i, spec in enumerate(top["not_placed"] or []):
        key = f"not_placed[{i}]"
        s = spec
        not_placed.append(NotPlaced(check_name(s["name"], f"{key}.name"), r.text(s["reason"], f"{key}.reason")))
    return tuple(placed), tuple(not_placed)
