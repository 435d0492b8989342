"""One schema layer for every YAML file the package reads: a strict pydantic (v2) base model, the shared types
(a year span, a seed, a spec id, a column name) defined once, and one error formatter.

Every config model derives from :class:`Model`: unknown keys are refused (``extra="forbid"``) with a
"did you mean" for near misses, instances are frozen, and values are not coerced across types (an integer field
refuses ``true`` and ``"2015"``; a number field accepts an integer). :func:`validate` turns a pydantic
``ValidationError`` into the project's :class:`analysis.io.DataError`, whose message names the file, the dotted key
(``events.zte_2018.date``, ``controls[1]``) and what is allowed::

    configs/index.yaml, key 'methods.entropy_wsum.normalization': unknown key; allowed here: aggregation,
    base_period, indicator_set, normalisation, weighting (did you mean 'normalisation'?)

Why hand-written at all: pydantic reports unknown keys one at a time as ``extra_forbidden`` without the allowed
names; a check in the base model (:meth:`Model._known_keys`) adds them and the closest match (:mod:`difflib`), and
:func:`message` puts pydantic's ``loc`` into the dotted form every other error of the package uses.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Annotated, Any, Iterable, TypeVar

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr,
                      ValidationError, model_validator)
from pydantic_core import PydanticCustomError

from analysis.io import SPEC_ID as _SPEC_ID_PATTERN
from analysis.io import DataError

M = TypeVar("M", bound="Model")

#: A column of a data frame (and a YAML key that names one): a Python identifier, so it also works in a formula.
COLUMN_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


def did_you_mean(word: Any, choices: Iterable[Any]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to ``word`` (difflib ratio ≥ 0.6), else ``""``."""
    match = difflib.get_close_matches(str(word), sorted(str(c) for c in choices), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


class Model(BaseModel):
    """Base of every config model: unknown keys refused (with the allowed keys and a near match), frozen, strict
    about types where the field is ``Strict*`` (see the types below)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = {f.alias or name for name, f in cls.model_fields.items()}
            for key in data:
                if key not in allowed:
                    raise PydanticCustomError(
                        "unknown_key", "unknown key; allowed here: {allowed}{hint}",
                        {"key": key, "allowed": ", ".join(sorted(allowed)) or "none",
                         "hint": did_you_mean(key, allowed)})
        elif data is not None and not isinstance(data, BaseModel):
            raise PydanticCustomError("mapping_type", "need a mapping of keys to values, got {got}",
                                      {"got": repr(data)})
        return data


# ---------------------------------------------------------------------------------------------------------------
# Shared types (one definition each)

Year = Annotated[StrictInt, Field(ge=1900, le=2100)]
#: A number from YAML: an integer or a float, never a boolean or a string.
Number = Annotated[float, Field(strict=True)]
#: A seed for ``numpy.random.default_rng``: a non-negative integer, given in a spec or config (never the clock).
Seed = Annotated[StrictInt, Field(ge=0)]
#: A spec id (file stem of configs/specs/<id>.yaml and of its estimates), see :data:`analysis.io.SPEC_ID`.
SpecId = Annotated[StrictStr, Field(pattern=_SPEC_ID_PATTERN.pattern)]
#: A column name (see :data:`COLUMN_PATTERN`).
Column = Annotated[StrictStr, Field(pattern=COLUMN_PATTERN)]
Text = Annotated[StrictStr, Field(min_length=1)]
Flag = StrictBool


class YearRange(Model):
    """An inclusive span of calendar years ``{first_year, last_year}`` with first_year ≤ last_year (the study
    window, an index base period, the exposure base years, ...)."""

    first_year: Year
    last_year: Year

    def __init__(self, *span: int, **data: Any):
        # positional form, as the dataclasses it replaces: YearRange(2015, 2021); pydantic calls a custom __init__
        # with the keys when it validates a mapping, so keywords pass through unchanged
        super().__init__(**dict(zip(("first_year", "last_year"), span)), **data)

    @model_validator(mode="after")
    def _ordered(self) -> "YearRange":
        if self.first_year > self.last_year:
            raise PydanticCustomError("year_order", "first_year {first} is after last_year {last}",
                                      {"first": self.first_year, "last": self.last_year})
        return self

    def years(self) -> list[int]:
        """Every year of the span, in order."""
        return list(range(self.first_year, self.last_year + 1))


#: Alias: the index configuration calls a year span a period.
Period = YearRange


def _ordered_pair(value: list[int]) -> list[int]:
    if value[0] > value[1]:
        raise PydanticCustomError("year_order", "need [first, last] with first <= last, got {got}",
                                  {"got": repr(value)})
    return value


#: A year span written as a list ``[first, last]`` (spec ``sample.years``, base-period splits), first ≤ last.
YearPair = Annotated[list[StrictInt], Field(min_length=2, max_length=2), AfterValidator(_ordered_pair)]


# ---------------------------------------------------------------------------------------------------------------
# Errors

def dotted(loc: Iterable[Any], data: Any = None) -> str:
    """pydantic's ``loc`` as the package's dotted key: ``('controls', 1)`` -> ``controls[1]``.

    With the validated ``data``, parts of ``loc`` that are not keys or indices of it are dropped: pydantic inserts
    the name of a union member or a discriminator's value (``str``, ``TableColumn``, ``trajectories``) there.
    """
    out = ""
    node, follow = data, data is not None
    for part in loc:
        if follow:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                continue  # a union member's name, not a key of the file
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _expected(ctx: dict) -> list[str]:
    """The allowed values of a literal_error (pydantic writes ``'a', 'b' or 'c'`` and ``-1, 0 or 1``)."""
    text = str(ctx.get("expected", ""))
    quoted = re.findall(r"'([^']*)'", text)
    return quoted if quoted else [v.strip() for v in re.split(r",| or ", text) if v.strip()]


def message(error: dict, data: Any = None) -> tuple[str, str]:
    """(dotted key, message) for one entry of ``ValidationError.errors()`` on ``data``."""
    loc = list(error.get("loc", ()))
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "unknown_key":
        return _join(dotted(loc, data), ctx["key"]), error["msg"]
    if kind == "missing":
        return _join(dotted(loc[:-1], data), loc[-1]), "required key is missing"
    got = error.get("input")
    text = error["msg"]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        # a discriminated union (e.g. an exhibit's `kind`): name the discriminating key and its allowed values
        tag = str(ctx.get("discriminator", "")).strip("'")
        tags = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
        where = _join(dotted(loc, data), tag)
        if kind == "union_tag_not_found":
            return where, f"required key is missing (one of {', '.join(tags)})" if tags else "required key is missing"
        value = ctx.get("tag")
        return where, f"must be one of {', '.join(tags)}, got {value!r}{did_you_mean(value, tags)}"
    if kind == "literal_error":
        text = f"must be one of {', '.join(_expected(ctx))}, got {got!r}{did_you_mean(got, _expected(ctx))}"
    elif kind in _TYPE_WORDS:
        text = f"must be {_TYPE_WORDS[kind]}, got {got!r}"
    elif kind == "string_pattern_mismatch" and ctx.get("pattern") == COLUMN_PATTERN:
        text = f"must be a column name (letters, digits, underscore; not starting with a digit), got {got!r}"
    elif kind not in ("year_order", "mapping_type") and not kind.startswith("value_error"):
        text = f"{text[0].lower()}{text[1:]}, got {got!r}"
    return dotted(loc, data), text


#: pydantic error type -> what the value must be, in the package's words
_TYPE_WORDS = {
    "string_type": "text", "int_type": "an integer", "int_from_float": "an integer", "float_type": "a number",
    "bool_type": "true or false", "list_type": "a list", "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values", "model_attributes_type": "a mapping of keys to values",
    "date_type": "a date YYYY-MM-DD", "tuple_type": "a list",
}


def _join(prefix: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)


def _most_specific(errors: list[dict], data: Any) -> dict:
    """The error to report: a value that matches no member of a union yields one error per member; of the errors
    at or below the first error's key, the one that got furthest into the value (longest ``loc``, an unknown key
    counting one deeper) says what is wrong."""
    def depth(error: dict) -> int:
        return len(error.get("loc", ())) + (error.get("type") == "unknown_key")

    def related(a: str, b: str) -> bool:
        return a == b or a.startswith((b + ".", b + "[")) or b.startswith((a + ".", a + "[")) or not a or not b

    first = dotted(errors[0].get("loc", ()), data)
    return max((e for e in errors if related(dotted(e.get("loc", ()), data), first)), key=depth)


def data_error(exc: ValidationError, file: str | os.PathLike, data: Any = None, at: str = "") -> DataError:
    """The most specific error of ``exc`` as a :class:`DataError` naming ``file`` and the dotted key (prefixed by
    ``at``, the key of ``data`` in its file; the number of further problems is appended, so fixing one at a time is
    not a surprise)."""
    errors = exc.errors()
    key, text = message(_most_specific(errors, data), data)
    key = ".".join(filter(None, [at, key]))
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''} in this file)"
    return DataError(file, text, key=key or None)


def validate(model: type[M], raw: Any, file: str | os.PathLike, context: dict | None = None, at: str = "") -> M:
    """``raw`` (a parsed YAML mapping, or the part of one under the dotted key ``at``) validated by ``model``; a
    problem is a :class:`DataError` naming ``file`` and the dotted key."""
    try:
        return model.model_validate(raw, context=context)
    except ValidationError as exc:
        raise data_error(exc, file, raw, at) from None


def read_yaml(path: str | os.PathLike) -> Any:
    """Parse a YAML file (invalid YAML is a DataError naming the file)."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataError(path, f"not valid YAML: {exc}") from None


def load(model: type[M], path: str | os.PathLike, context: dict | None = None) -> tuple[M, Any]:
    """Read ``path`` and validate it by ``model``; returns (model instance, the parsed YAML)."""
    raw = read_yaml(path)
    return validate(model, raw, path, context), raw
