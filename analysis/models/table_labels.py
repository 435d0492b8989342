"""The label map of the tables (``labels:`` in ``configs/tables.yaml``): raw names -> human-readable text.

Estimate-file terms (``exposure_foreign_tech_z:post_huawei_2019``, ``e=-2``, ``<term>:theater_command=Eastern``),
sidecar outcomes and estimators, and the extra columns of long tables each get their label here, or the table stops
with a DataError naming the name and the config key to add it under: no raw column name reaches a table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from analysis import paths, schema
from analysis.config_models_exhibits import label_map_model
from analysis.io import DataError
from analysis.schema import did_you_mean

#: An event-time term: ``e=k`` (regression event studies) or ``ATT e=k`` (staggered estimators); group 1 is k.
EVENT = re.compile(r"^(?:ATT )?e=(-?\d+)$")
#: The mappings of the label map (and of its model in analysis.config_models_exhibits).
LABEL_KINDS = ("terms", "levels", "outcomes", "estimators", "columns")


@dataclass(frozen=True)
class Labels:
    """The one label map of the tables (``labels:`` in configs/tables.yaml): raw names -> human-readable text.

    Every lookup either returns a label or raises DataError naming the name and the config key to add it under, so
    that no raw column name (``exposure_foreign_tech_z:post_huawei_2019``) reaches a table.
    """

    terms: dict
    event_time: str
    levels: dict
    outcomes: dict
    estimators: dict
    columns: dict
    file: Path = paths.TABLES_CONFIG

    def _missing(self, kind: str, name: str, where: str = "") -> DataError:
        known = getattr(self, kind)
        return DataError(self.file, f"no label for {kind[:-1]} {name!r}{where}; add it under labels.{kind}"
                                    f"{did_you_mean(name, known)}", key=f"labels.{kind}")

    def term(self, term: str, where: str = "") -> str:
        """Row label of an estimate-file term: an exact entry of ``terms``; ``e=k`` / ``ATT e=k`` by ``event_time``;
        ``<term>:<variable>=<level>`` as "<label of term> × <levels[variable] with {level}>"."""
        if term in self.terms:
            return self.terms[term]
        event = EVENT.match(term)
        if event:
            return self.event_time.format(k=int(event.group(1)))
        base, _, level = term.rpartition("=")
        base, _, variable = base.rpartition(":")
        if base and variable in self.levels and level:
            return f"{self.term(base, where)} × {self.levels[variable].format(level=level)}"
        raise self._missing("terms", term, where)

    def header(self, field: str, value: str, where: str = "") -> str:
        """Column header for the sidecar field ``outcome`` or ``estimator``."""
        kind = {"outcome": "outcomes", "estimator": "estimators"}[field]
        table = getattr(self, kind)
        if value not in table:
            raise self._missing(kind, value, where)
        return table[value]

    def column(self, name: str, where: str = "") -> str:
        """Header of an extra numeric column of a long table."""
        if name not in self.columns:
            raise self._missing("columns", name, where)
        return self.columns[name]


def parse_labels(raw, file: str | Path = paths.TABLES_CONFIG) -> Labels:
    """Validate the ``labels:`` section of configs/tables.yaml (DataError naming the key).

    Keys, types and non-blank labels are the section's model's
    (:func:`analysis.config_models_exhibits.label_map_model`, which the whole file's model extends); here only the
    ``str.format`` fields the labels are filled with: ``{k}`` in ``event_time`` and ``{level}`` in every ``levels``
    text.
    """
    # the section alone: the rest of the file (``tables:``) is the table definitions' (table_config.parse_tables)
    section = {"labels": raw["labels"]} if isinstance(raw, dict) and "labels" in raw else {}
    labels = schema.validate(label_map_model(LABEL_KINDS), section, file).labels
    if "{k}" not in labels.event_time:
        raise DataError(file, "expected text containing {k} (the event time)", key="labels.event_time")
    for name, text in labels.levels.items():
        if "{level}" not in text:
            raise DataError(file, "expected text containing {level}", key=f"labels.levels.{name}")
    return Labels(event_time=labels.event_time, file=Path(file), **{kind: dict(getattr(labels, kind))
                                                                    for kind in LABEL_KINDS})


def load_labels(path: str | Path = paths.TABLES_CONFIG) -> Labels:
    """Read and validate the ``labels:`` section of configs/tables.yaml (see :func:`parse_labels`)."""
    path = Path(path)
    raw = schema.read_yaml(path)
    return parse_labels(raw, path)


#: The label map of every table (configs/tables.yaml ``labels:``).
LABELS: Labels = load_labels()
