"""Model specifications: one YAML file per model, validated at load, resolved to a frozen, typed :class:`Spec`.

A spec lives in ``configs/specs/<id>.yaml``; the file name is the spec id and the name of its output
(``data/processed/estimates/<id>.parquet``). ``extends: <other id>`` makes a variant: the parent (looked up in
the same folder) is deep-merged under the child — mappings merge key by key, every other value (lists included)
is replaced by the child's. Chains are followed to any depth; a cycle is an error.

Validation is strict: an unknown key, a value of the wrong type or outside its allowed set is a :class:`SpecError`
naming the file and the dotted key (e.g. ``inference.wild_bootstrap.weights``). Configs hold no code: the only
transformation a spec may ask for is ``log(column)`` in ``controls`` (natural log, checked to be positive).

The resolved spec (:func:`resolve`; :meth:`Spec.from_mapping` for a mapping, e.g. a multiverse cell or a test)
fills every optional key with its default, so estimators receive one shape and read attributes (``spec.cluster``,
``spec.inference.alpha``, ``spec.synth.method``): see :data:`DEFAULTS` and :class:`Spec`. ``Spec.canonical()`` is
the plain form recorded in sidecars and hashed by fingerprints (the same keys and values as the resolved dict that
preceded the model, so fingerprints did not move). Estimators: :data:`ESTIMATORS`.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Optional, Union

import yaml
from pydantic import create_model, model_serializer

from analysis import paths, schema
from analysis.io import DataError
from analysis.models.spec_vocabulary import (
    AGGREGATIONS, BOOTSTRAP_WEIGHTS, CONTROL_GROUPS, DEFAULT_ALPHA, DEFAULT_MULTIPLIER_BOOTSTRAP_REPS, DEFAULT_RI_REPS,
    DEFAULT_SEED, DEFAULT_WILD_BOOTSTRAP_REPS, DEFAULTS, ESTIMATORS, INFERENCE_DEFAULTS, NEEDS, REQUIRED, TREND_ESTIMATORS,
    TRENDS, VCOV_TYPES, SpecError, _COLUMN, _default_years, _FE_TERM, _LOG_COLUMN)

def deep_merge(base: dict, override: dict) -> dict:
    """``base`` updated by ``override``: mappings merge recursively, other values (lists too) are replaced."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_yaml_mapping(path: Path) -> dict:
    """The YAML file's top-level mapping (an empty file or a non-mapping is a SpecError)."""
    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    except FileNotFoundError:
        raise SpecError(path, None, "spec file not found") from None
    except yaml.YAMLError as exc:
        raise SpecError(path, None, f"not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecError(path, None, "a spec must be a YAML mapping of keys to values")
    return raw


def load_raw(path: str | os.PathLike) -> tuple[dict, list[Path]]:
    """Follow ``extends`` and deep-merge the chain; returns the merged mapping and the files read (child first).

    Each file is checked for unknown keys before merging, so the error names the file that holds the key.
    """
    path = Path(path)
    chain: list[Path] = []
    layers: list[dict] = []
    current = path
    while True:
        resolved = current.resolve()
        if resolved in [p.resolve() for p in chain]:
            names = " -> ".join(p.stem for p in chain + [current])
            raise SpecError(path, "extends", f"cycle in extends chain: {names}")
        raw = read_yaml_mapping(current)
        _check_file(raw, current)
        chain.append(current)
        layers.append(raw)
        parent = raw.get("extends")
        if parent is None:
            break
        if not isinstance(parent, str) or not _COLUMN.match(parent.removesuffix(".yaml")):
            raise SpecError(current, "extends", f"must be the id of another spec (a file name), got {parent!r}")
        current = current.parent / f"{parent.removesuffix('.yaml')}.yaml"
        if not current.exists():
            raise SpecError(chain[-1], "extends", f"parent spec {parent!r} not found ({paths.relative(current)})")
    merged: dict = {}
    for layer in reversed(layers):
        merged = deep_merge(merged, layer)
    merged["extends"] = layers[0].get("extends")
    return merged, chain


def _spec_file_model():
    """The model of one spec file: every key of :data:`DEFAULTS` (and of ``sample``) optional, nothing else; the
    values are checked on the merged spec by :func:`validate`, which knows the estimator."""
    sample = create_model("SpecSample", __base__=schema.Model, **{key: (Any, None) for key in DEFAULTS["sample"]})
    fields: dict[str, Any] = {key: (Any, None) for key in DEFAULTS}
    fields["sample"] = (Optional[sample], None)
    return create_model("SpecFile", __base__=schema.Model, **fields)


#: The model of one spec file of an ``extends`` chain (configs/specs/<id>.yaml).
SpecFile = _spec_file_model()


def _check_file(raw: dict, file: Path) -> None:
    """One spec file's keys, through :data:`SpecFile` (unknown key: the allowed keys and the closest one)."""
    try:
        schema.validate(SpecFile, raw, file)
    except DataError as exc:
        raise SpecError(file, exc.key, exc.message) from None


def _check_keys(raw: dict, allowed: dict, file: Path, prefix: str) -> None:
    from analysis.schema import did_you_mean

    for key in raw:
        dotted = f"{prefix}{key}"
        if key not in allowed:
            hint = ", ".join(sorted(allowed))
            raise SpecError(file, dotted, f"unknown key; allowed keys here: {hint}{did_you_mean(key, allowed)}")
        if key == "sample" and isinstance(raw[key], dict):
            _check_keys(raw[key], DEFAULTS[key], file, prefix=f"{dotted}.")


def _fail(file, key, message):
    raise SpecError(file, key, message)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _column(file, key, value, allow_none=True):
    if value is None and allow_none:
        return
    if not isinstance(value, str) or not _COLUMN.match(value):
        _fail(file, key, f"must be a column name (letters, digits, underscore), got {value!r}")


def validate(spec: dict, file: str | os.PathLike) -> "Spec":
    """Check types and allowed values of a merged spec and fill defaults; returns the resolved, frozen :class:`Spec`.

    Raises :class:`SpecError` naming ``file`` and the dotted key.
    """
    return Spec.model_validate(_validate_mapping(spec, file))


def _validate_mapping(spec: dict, file: str | os.PathLike) -> dict:
    """:func:`validate`'s checks, on plain mappings: the resolved spec as a dict (the input of :class:`Spec`)."""
    file = Path(file)
    _check_keys(spec, DEFAULTS, file, prefix="")
    out = deep_merge(DEFAULTS, spec)
    for key in REQUIRED:
        if out[key] is None:
            _fail(file, key, "required key is missing")
    if out["estimator"] not in ESTIMATORS:
        from analysis.schema import did_you_mean

        _fail(file, "estimator", f"unknown estimator {out['estimator']!r}; choose one of {', '.join(ESTIMATORS)}"
                                 f"{did_you_mean(out['estimator'], ESTIMATORS)}")
    for key in ("outcome", "treatment", "exposure", "heterogeneity", "unit", "time", "cohort", "cluster"):
        _column(file, key, out[key], allow_none=key not in ("outcome", "unit", "time"))
    for key in NEEDS[out["estimator"]]:
        if out[key] is None:
            _fail(file, key, f"estimator {out['estimator']!r} needs {key!r}")
    if not isinstance(out["description"], str):
        _fail(file, "description", "must be text")
    if out["data"] is not None and not isinstance(out["data"], str):
        _fail(file, "data", "must be a path (text) to a CSV or Parquet panel")
    if out["data"] is not None and Path(out["data"]).suffix.lower() not in (".csv", ".parquet"):
        _fail(file, "data", f"must end in .csv or .parquet, got {out['data']!r}")
    if not isinstance(out["controls"], list):
        _fail(file, "controls", "must be a list of column names or log(column)")
    for i, control in enumerate(out["controls"]):
        if not isinstance(control, str) or not (_COLUMN.match(control) or _LOG_COLUMN.match(control)):
            _fail(file, f"controls[{i}]", f"must be a column name or log(column), got {control!r}")
        if control in out["controls"][:i]:
            # A repeated control is perfectly collinear with itself: the regressions would drop it silently and
            # linearmodels (panel_re, first_diff, hausman) stops with a duplicate-column error.
            _fail(file, f"controls[{i}]", f"{control!r} is listed twice (first as controls[{out['controls'].index(control)}])")
    if out["fixed_effects"] is None:
        out["fixed_effects"] = [out["unit"], out["time"]]
    if not isinstance(out["fixed_effects"], list):
        _fail(file, "fixed_effects", "must be a list of columns (a^b for interacted effects)")
    for i, fe in enumerate(out["fixed_effects"]):
        if not isinstance(fe, str) or not _FE_TERM.match(fe):
            _fail(file, f"fixed_effects[{i}]", f"must be a column or a^b interaction, got {fe!r}")
    if out["cluster"] is None:
        out["cluster"] = out["unit"]
    if out["control_group"] not in CONTROL_GROUPS:
        _fail(file, "control_group", f"must be one of {', '.join(CONTROL_GROUPS)}, got {out['control_group']!r}")
    if out["aggregate"] not in AGGREGATIONS:
        _fail(file, "aggregate", f"must be one of {', '.join(AGGREGATIONS)}, got {out['aggregate']!r}")
    _validate_sample(out["sample"], file)
    out["inference"] = _validate_inference(out["inference"], out["estimator"], file)
    if out["trends"] is not None:
        if out["trends"] not in TRENDS:
            _fail(file, "trends", f"must be one of {', '.join(TRENDS)} (or absent), got {out['trends']!r}")
        if out["estimator"] not in TREND_ESTIMATORS:
            _fail(file, "trends", f"unit trends are implemented for {', '.join(TREND_ESTIMATORS)}, not "
                                  f"{out['estimator']!r}")
        if out["inference"].get("ri") is not None:
            _fail(file, "inference.ri", "randomization inference does not partial out unit trends; drop `ri` or "
                                        "`trends`")
    if out["estimator"] == "cont_did" and out["inference"].get("honest") and out["aggregate"] != "dynamic":
        _fail(file, "inference.honest", "Honest DiD needs the event-study form of cont_did (aggregate: dynamic)")
    if not _is_int(out["seed"]) or out["seed"] < 0:
        _fail(file, "seed", f"must be a non-negative integer, got {out['seed']!r}")
    window = out["event_window"]
    if not (isinstance(window, list) and len(window) == 2 and all(_is_int(w) for w in window) and window[0] < window[1]):
        _fail(file, "event_window", f"must be [first, last] integers with first < last, got {window!r}")
    if not _is_int(out["reference_period"]):
        _fail(file, "reference_period", f"must be an integer event time, got {out['reference_period']!r}")
    if not (window[0] <= out["reference_period"] <= window[1]):
        _fail(file, "reference_period", f"{out['reference_period']} lies outside event_window {window}")
    if not _is_int(out["anticipation"]) or out["anticipation"] < 0:
        _fail(file, "anticipation", f"must be a non-negative integer, got {out['anticipation']!r}")
    if out["base_period"] not in ("varying", "universal"):
        _fail(file, "base_period", f"must be varying or universal, got {out['base_period']!r}")
    if not isinstance(out["allow_unbalanced_panel"], bool):
        _fail(file, "allow_unbalanced_panel", f"must be true or false, got {out['allow_unbalanced_panel']!r}")
    if out["allow_unbalanced_panel"] and out["estimator"] != "att_gt":
        _fail(file, "allow_unbalanced_panel", f"only att_gt balances its panel; estimator {out['estimator']!r} uses "
                                              "every observed row")
    for key in ("synth", "sdid"):
        _validate_estimator_options(out, key, file)
    return out


def _validate_estimator_options(out: dict, key: str, file) -> None:
    """``synth:``/``sdid:`` option mappings: only for that estimator, keys from the estimator module."""
    options = out[key]
    if not isinstance(options, dict):
        _fail(file, key, "must be a mapping of option names to values")
    if options and out["estimator"] != key:
        _fail(file, key, f"options for estimator {key!r} given, but the estimator is {out['estimator']!r}")
    if options:
        from analysis.models import synth  # the estimator module checks the values

        allowed = (SynthOptions if key == "synth" else SdidOptions)().model_dump()
        for name in options:
            if name not in allowed:
                _fail(file, f"{key}.{name}", f"unknown option; allowed: {', '.join(sorted(allowed)) or 'none'}")
        if key == "synth":  # values too, so a bad method or penalty stops the run before any data are read
            merged = {**allowed, **options}
            try:
                synth.check_method(merged["method"], merged["penalty"])
            except ValueError as exc:
                bad = "method" if "method" in str(exc).split(" must")[0] else "penalty"
                _fail(file, f"synth.{bad}", str(exc))


def _validate_sample(sample, file) -> None:
    if not isinstance(sample, dict):
        _fail(file, "sample", "must be a mapping (years, drop_units, keep_units, drop_years)")
    if sample["years"] is None:
        sample["years"] = _default_years()
    years = sample["years"]
    if not (isinstance(years, list) and len(years) == 2 and all(_is_int(y) for y in years) and years[0] <= years[1]):
        _fail(file, "sample.years", f"must be [first, last] integers with first <= last, got {years!r}")
    for key in ("drop_units", "keep_units"):
        units = sample[key]
        if units is None:
            sample[key] = []
        elif not isinstance(units, list) or not all(_is_int(u) or isinstance(u, str) for u in units):
            _fail(file, f"sample.{key}", f"must be a list of unit ids, got {units!r}")
    drop_years = sample["drop_years"]
    if drop_years is None:
        sample["drop_years"] = []
    elif not (isinstance(drop_years, list) and all(_is_int(y) for y in drop_years)):
        _fail(file, "sample.drop_years", f"must be a list of integer periods, got {drop_years!r}")


def _validate_honest(honest, file) -> None:
    """``inference.honest``: {M: [non-negative numbers], Mbar: [...], target: average | event time ≥ 0}."""
    if not isinstance(honest, dict):
        _fail(file, "inference.honest", "must be a mapping of sensitivity settings (M, Mbar, target)")
    for key in honest:
        if key not in ("M", "Mbar", "target"):
            _fail(file, f"inference.honest.{key}", "unknown key; allowed keys here: M, Mbar, target")
    if honest.get("M") is None and honest.get("Mbar") is None:
        _fail(file, "inference.honest", "give M (smoothness bounds) and/or Mbar (relative-magnitude bounds)")
    for key in ("M", "Mbar"):
        grid = honest.get(key)
        if grid is not None and not (isinstance(grid, list) and grid and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in grid)):
            _fail(file, f"inference.honest.{key}", f"must be a non-empty list of non-negative numbers, got {grid!r}")
    target = honest.get("target", 0)
    if not (target == "average" or (_is_int(target) and target >= 0)):
        _fail(file, "inference.honest.target", f"must be 'average' or a post-period event time >= 0, got {target!r}")


def _validate_inference(inference, estimator: str, file) -> dict:
    """Check ``inference`` against the estimator family's keys (:data:`INFERENCE_DEFAULTS`); fill defaults."""
    if inference is None:
        inference = {}
    if not isinstance(inference, dict):
        _fail(file, "inference", "must be a mapping")
    allowed = INFERENCE_DEFAULTS[estimator]
    for key in inference:
        if key not in allowed:
            _fail(file, f"inference.{key}", f"not an inference setting of estimator {estimator!r}; allowed: "
                  f"{', '.join(allowed) or 'none'}")
    inference = {**copy.deepcopy(allowed), **inference}
    if "vcov" in inference and inference["vcov"] not in VCOV_TYPES:
        _fail(file, "inference.vcov", f"must be one of {', '.join(VCOV_TYPES)}, got {inference['vcov']!r}")
    bw = inference.get("bandwidth")
    if bw is not None and not (_is_int(bw) and bw >= 0):
        _fail(file, "inference.bandwidth", f"must be a non-negative integer, got {bw!r}")
    wild = inference.get("wild_bootstrap")
    if wild is not None:
        if not isinstance(wild, dict):
            _fail(file, "inference.wild_bootstrap", "must be a mapping {reps, weights}")
        for key in wild:
            if key not in ("reps", "weights"):
                _fail(file, f"inference.wild_bootstrap.{key}", "unknown key; allowed keys here: reps, weights")
        wild.setdefault("reps", DEFAULT_WILD_BOOTSTRAP_REPS)
        wild.setdefault("weights", "webb")  # Webb's six-point weights: better than Rademacher with few clusters
        if not (_is_int(wild["reps"]) and wild["reps"] > 0):
            _fail(file, "inference.wild_bootstrap.reps", f"must be a positive integer, got {wild['reps']!r}")
        if wild["weights"] not in BOOTSTRAP_WEIGHTS:
            _fail(file, "inference.wild_bootstrap.weights",
                  f"must be one of {', '.join(BOOTSTRAP_WEIGHTS)}, got {wild['weights']!r}")
    ri = inference.get("ri")
    if ri is not None:
        if not isinstance(ri, dict):
            _fail(file, "inference.ri", "must be a mapping {reps}")
        for key in ri:
            if key != "reps":
                _fail(file, f"inference.ri.{key}", "unknown key; allowed keys here: reps")
        ri.setdefault("reps", DEFAULT_RI_REPS)
        if not (_is_int(ri["reps"]) and ri["reps"] > 0):
            _fail(file, "inference.ri.reps", f"must be a positive integer, got {ri['reps']!r}")
    if "alpha" in inference and not (isinstance(inference["alpha"], float) and 0 < inference["alpha"] < 1):
        _fail(file, "inference.alpha", f"must be a number strictly between 0 and 1, got {inference['alpha']!r}")
    boot = inference.get("bootstrap")
    if boot is not None:
        if not (isinstance(boot, dict) and set(boot) <= {"reps"}
                and _is_int(boot.get("reps", DEFAULT_MULTIPLIER_BOOTSTRAP_REPS))
                and boot.get("reps", DEFAULT_MULTIPLIER_BOOTSTRAP_REPS) > 0):
            _fail(file, "inference.bootstrap", f"must be a mapping {{reps: positive integer}}, got {boot!r}")
        boot.setdefault("reps", DEFAULT_MULTIPLIER_BOOTSTRAP_REPS)  # filled here, so the estimator reads it
    if inference.get("honest") is not None:
        _validate_honest(inference["honest"], file)
    if "placebo" in inference and not isinstance(inference["placebo"], bool):
        _fail(file, "inference.placebo", f"must be true or false, got {inference['placebo']!r}")
    if "method" in inference and inference["method"] != "placebo":
        _fail(file, "inference.method", f"only 'placebo' is implemented, got {inference['method']!r}")
    if "reps" in inference and not (_is_int(inference["reps"]) and inference["reps"] > 1):
        _fail(file, "inference.reps", f"must be an integer > 1, got {inference['reps']!r}")
    return inference


def resolve(path: str | os.PathLike) -> "Spec":
    """Load, merge (``extends``) and validate a spec file; returns the resolved, frozen :class:`Spec`.

    Adds ``id`` (the file stem) and ``spec_files`` (repository-relative paths of the files in the extends chain,
    child first) so the sidecar can fingerprint them.
    """
    path = Path(path)
    merged, chain = load_raw(path)
    spec = _validate_mapping(merged, path)
    spec["id"] = path.stem
    spec["spec_files"] = [paths.relative(p) for p in chain]
    # The file estimators name in their DataErrors (repository-relative, so no machine paths in sidecars).
    spec["data_file"] = paths.relative(_data_path(spec["data"]))
    return Spec.model_validate(spec)


def data_path(spec: "Spec") -> Path:
    """The panel a spec reads: its ``data`` (relative to the repository root unless absolute) or the default."""
    return _data_path(spec.data)


def _data_path(data: str | None) -> Path:
    if data is None:
        return paths.ANALYSIS_PANEL
    candidate = Path(data)
    return candidate if candidate.is_absolute() else paths.ROOT / candidate


def control_column(control: str) -> tuple[str, str | None]:
    """(source column, transform) for a control entry: ``'log(gdp)'`` -> ``('gdp', 'log')``."""
    match = _LOG_COLUMN.match(control)
    return (match.group(1), "log") if match else (control, None)


def control_name(control: str) -> str:
    """The regressor's name in the estimates: ``'log(gdp)'`` -> ``'log_gdp'``."""
    column, transform = control_column(control)
    return f"{transform}_{column}" if transform else column


# ---------------------------------------------------------------------------------------------------------------
# The typed, frozen, resolved spec the estimators receive.
# ---------------------------------------------------------------------------------------------------------------

_Number = Union[int, float]  # kept as written (0 stays 0, not 0.0), so the canonical JSON is unchanged


class Sample(schema.Model):
    """``sample:`` — the rows an estimator uses. ``years``: [first, last] inclusive (default: the study window);
    ``drop_units``/``keep_units``: unit ids (as written: int codes or text); ``drop_years``: periods removed."""

    years: tuple[int, int]
    drop_units: tuple[Union[int, str], ...] = ()
    keep_units: tuple[Union[int, str], ...] = ()
    drop_years: tuple[int, ...] = ()


class WildBootstrap(schema.Model):
    """``inference.wild_bootstrap``: wild cluster bootstrap (``reps`` draws; Webb's six-point weights by default,
    better than Rademacher with few clusters)."""

    reps: int = DEFAULT_WILD_BOOTSTRAP_REPS
    weights: str = "webb"


class Resampling(schema.Model):
    """``inference.ri`` (randomization inference) and ``inference.bootstrap`` (multiplier bootstrap): ``reps``."""

    reps: int


class Honest(schema.Model):
    """``inference.honest``: Rambachan–Roth sensitivity: smoothness bounds ``M`` and/or relative-magnitude bounds
    ``Mbar`` (outcome units / multiples of the largest pre-period violation); ``target``: ``average`` or an event
    time >= 0. Only the keys the spec gives enter its canonical form (the estimators read the defaults here)."""

    M: Optional[tuple[_Number, ...]] = None
    Mbar: Optional[tuple[_Number, ...]] = None
    target: Union[int, str] = 0


class Inference(schema.Model):
    """``inference:`` every key of every estimator family, each with its default; a spec may set only its family's
    keys (:data:`INFERENCE_DEFAULTS`, checked by :func:`validate`) and only those enter its canonical form."""

    vcov: str = INFERENCE_DEFAULTS["feols"]["vcov"]
    bandwidth: Optional[int] = None
    wild_bootstrap: Optional[WildBootstrap] = None
    ri: Optional[Resampling] = None
    honest: Optional[Honest] = None
    alpha: float = DEFAULT_ALPHA
    bootstrap: Optional[Resampling] = None
    placebo: bool = INFERENCE_DEFAULTS["synth"]["placebo"]
    method: str = INFERENCE_DEFAULTS["synth"]["method"]
    reps: int = INFERENCE_DEFAULTS["sdid"]["reps"]


class SynthOptions(schema.Model):
    """``synth:`` options: V (``identity`` or ``inverse_variance``), weight ``method`` and ``penalty`` (see
    :func:`analysis.models.synth.check_method`). The one place their defaults live."""

    v: str = "identity"
    method: str = "auto"
    penalty: Union[str, float, int] = "min"


class SdidOptions(schema.Model):
    """``sdid:`` options (none today)."""


#: Keys the spec carries beside the file's keys, set by :func:`resolve` (absent from the canonical form if unset).
_RESOLVED_KEYS = ("id", "spec_files", "data_file")


class Spec(schema.Model):
    """A resolved spec: every key of :data:`DEFAULTS` with its default filled in (``fixed_effects`` = [unit, time],
    ``cluster`` = unit, ``sample.years`` = study window, ``inference`` = the family's defaults), frozen. Built only
    by :func:`validate` (:func:`resolve` for a file, :meth:`from_mapping` for a mapping); estimators read its
    attributes. :meth:`canonical` is the plain form the sidecars record and the fingerprints hash."""

    description: str = ""
    data: Optional[str] = None
    estimator: str
    outcome: str
    treatment: Optional[str] = None
    exposure: Optional[str] = None
    heterogeneity: Optional[str] = None
    unit: str = DEFAULTS["unit"]
    time: str = DEFAULTS["time"]
    cohort: Optional[str] = None
    controls: tuple[str, ...] = ()
    fixed_effects: tuple[str, ...]
    cluster: str
    control_group: str = DEFAULTS["control_group"]
    aggregate: str = DEFAULTS["aggregate"]
    trends: Optional[str] = None
    sample: Sample
    inference: Inference = Inference()
    seed: int = DEFAULT_SEED
    event_window: tuple[int, int] = tuple(DEFAULTS["event_window"])
    reference_period: int = DEFAULTS["reference_period"]
    anticipation: int = DEFAULTS["anticipation"]
    base_period: str = DEFAULTS["base_period"]
    allow_unbalanced_panel: bool = False
    synth: SynthOptions = SynthOptions()
    sdid: SdidOptions = SdidOptions()
    extends: Optional[str] = None
    id: str = ""
    spec_files: tuple[str, ...] = ()
    data_file: Optional[str] = None

    @model_serializer(mode="wrap")
    def _canonical_form(self, handler, info):
        """Only the inference keys of the spec's estimator family, the option and ``honest`` keys the spec gave,
        and the resolved keys that were set: the same plain form (hence fingerprints) as the resolved dict of old."""
        data = handler(self)
        family = INFERENCE_DEFAULTS[self.estimator]
        data["inference"] = {k: v for k, v in data["inference"].items() if k in family}
        if "honest" in family and self.inference.honest is not None:
            data["inference"]["honest"] = self.inference.honest.model_dump(mode=info.mode, exclude_unset=True)
        for key in ("synth", "sdid"):
            data[key] = getattr(self, key).model_dump(mode=info.mode, exclude_unset=True)
        for key in _RESOLVED_KEYS:
            if key not in self.model_fields_set:
                data.pop(key, None)
        return data

    def canonical(self) -> dict:
        """The plain JSON-ready form (lists, not tuples): what sidecars record and fingerprints hash."""
        return self.model_dump(mode="json")

    @classmethod
    def from_mapping(cls, mapping: dict, file: str | os.PathLike = "<spec>") -> "Spec":
        """Validate a spec mapping (as a spec file would hold it, optionally with ``id``/``spec_files``/
        ``data_file``) and fill its defaults: the one way tests and the multiverse build a spec by hand."""
        raw = dict(mapping)
        resolved = {key: raw.pop(key) for key in _RESOLVED_KEYS if key in raw}
        return cls.model_validate({**_validate_mapping(raw, file), **resolved})

    def replace(self, **changes) -> "Spec":
        """A copy with ``changes`` (top-level keys and values as a spec file would hold them; a mapping replaces
        the whole key), validated again. A new ``estimator`` keeps only the inference keys of its family."""
        base = self.canonical()
        family = INFERENCE_DEFAULTS[changes.get("estimator", self.estimator)]
        base["inference"] = {k: v for k, v in base["inference"].items() if k in family}
        return Spec.from_mapping({**base, **changes})
