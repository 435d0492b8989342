"""The pydantic models of the files that define the exhibits: configs/exhibits.yaml (figures), configs/tables.yaml
(regression tables and their label map) and configs/power.yaml (the minimum-detectable-effect table).

Each loader validates the parsed file through its model first (:func:`analysis.schema.validate`), so an unknown
key, a missing key or a value of the wrong type or outside its allowed set is reported in the one style of every
config file, naming the file and the dotted key. Each model is built by a function from the vocabulary of the module
that implements it (exhibit kinds, table row kinds and headers, label kinds, smallest-effect rules), which that
module's loader passes in, so the vocabulary exists once and this module imports no figure, table or power code.
Checks that relate parts of a file or need the data (an id's form and its output type, each spec once, the window
in a caption) stay in the loaders, after the model.

=============  ==============================================  ==================================================
file           model                                           loader
=============  ==============================================  ==================================================
exhibits.yaml  :func:`exhibits_model` (KINDS)                  analysis.figures.exhibits.load_exhibits
tables.yaml    :func:`tables_model` (ROW_KINDS, HEADERS, ...)  analysis.models.table_config.load_tables
               :func:`label_map_model` (LABEL_KINDS)           analysis.models.table_labels.load_labels
power.yaml     :func:`power_model` (RULES)                     analysis.power.load_config
=============  ==============================================  ==================================================

The data stages' models are in :mod:`analysis.config_models`, the multiverse's in
:mod:`analysis.config_models_multiverse`; neither the estimation engine nor the multiverse imports this module, so
editing an exhibit's model reruns no estimate (:mod:`analysis.fingerprint`).
"""

from __future__ import annotations

import functools
from typing import Annotated, Literal, Optional, Union

from pydantic import AfterValidator, Field, StrictInt, StrictStr, create_model
from pydantic_core import PydanticCustomError

from analysis.schema import Column, Model, Number, SpecId, Text, Year


def _non_blank(text: str) -> str:
    if not text.strip():
        raise PydanticCustomError("blank_text", "must be non-empty text")
    return text


#: Text with at least one non-space character (a caption, a note, a label).
NonBlank = Annotated[StrictStr, AfterValidator(_non_blank)]


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
        rows=(Literal[row_kinds], ...), header=(Literal[headers], ...),
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
    smallest = create_model("SmallestEffect", __base__=SmallestEffect, bound=(Literal[rules], ...))
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
