"""The table definitions of ``configs/tables.yaml`` (``tables:``): which specs are a table's columns, which terms its
rows, which sidecar field its column headers. Validated at load (the file's model in
:func:`analysis.config_models_exhibits.tables_model`, then the checks that relate keys), so that a student's typo
stops the run naming the file and the key. The label map in the same file is :mod:`analysis.models.table_labels`; laying
tables out is :mod:`analysis.models.tables`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from analysis import paths, schema
from analysis.config_models_exhibits import tables_model
from analysis.io import DataError
from analysis.models.table_labels import LABEL_KINDS
from analysis.schema import did_you_mean


@dataclass(frozen=True)
class TableDef:
    """One exhibit: output stem, caption, the spec ids (columns), which terms (rows), header field."""

    name: str
    caption: str
    specs: tuple[str, ...]
    rows: str          # "all" | "events" (e=k and ATT) | "att" (ATT only) | "treatment" (no controls) | "long"
    header: str        # sidecar spec field used as the column header: "outcome" | "estimator"
    extra_specs: tuple[str, ...] = ()   # specs whose single test row is appended (Hausman)
    note: str = ""                      # a table's own note, after the standard notes
    terms: tuple[str, ...] = ()         # if given, only these terms (rows), e.g. the treatment term of every column
    labels: tuple[str, ...] = ()        # column headers replacing the sidecar field (one per spec)


#: Values of a table's ``rows`` and ``header`` keys (also the choices of its model in analysis.config_models_exhibits).
ROW_KINDS = ("all", "events", "att", "treatment", "long")
HEADERS = ("outcome", "estimator")
_NAME = re.compile(r"^tab\d{2}_[a-z0-9_]+$")


def parse_tables(raw, file: str | Path = paths.TABLES_CONFIG) -> tuple[TableDef, ...]:
    """Validate the parsed ``configs/tables.yaml`` and return its tables in file order (DataError names the key).

    Keys, types, choices and non-blank texts are the file's model's
    (:func:`analysis.config_models_exhibits.tables_model`, one error style); here only what relates parts of a
    table: the name's form, each spec once, labels on every column or none, one column for ``rows: long``.
    """
    def fail(key: str, message: str):
        raise DataError(file, message, column=key)

    cfg = schema.validate(tables_model(ROW_KINDS, HEADERS, LABEL_KINDS), raw, file)
    out = []
    for name, t in cfg.tables.items():
        where = f"tables.{name}"
        if not _NAME.match(name):
            fail(where, f"table name {name!r} must look like tabNN_words (lower case)")
        specs, labels = [], []
        for i, c in enumerate(t.columns):
            spec, label = (c, None) if isinstance(c, str) else (c.spec, c.label)
            if spec in specs:
                fail(f"{where}.columns[{i}]", f"spec {spec!r} appears twice")
            specs.append(spec)
            labels.append(label)
        if any(labels) and not all(labels):
            fail(f"{where}.columns", "give a label to every column or to none")
        if t.rows == "long" and len(specs) != 1:
            fail(f"{where}.columns", "rows: long shows one spec; list exactly one column")
        out.append(TableDef(name, t.caption, tuple(specs), t.rows, t.header, extra_specs=tuple(t.extra_specs),
                            note=t.note, terms=tuple(t.terms), labels=tuple(labels) if all(labels) else ()))
    return tuple(out)


def load_tables(path: str | Path = paths.TABLES_CONFIG) -> tuple[TableDef, ...]:
    """Read and validate configs/tables.yaml (see :func:`parse_tables`)."""
    path = Path(path)
    raw = schema.read_yaml(path)
    return parse_tables(raw, path)


def check_specs(definitions, specs_dir: Path = paths.SPECS, file: str | Path = paths.TABLES_CONFIG) -> None:
    """Every spec a table lists must still have its spec file (``<specs_dir>/<id>.yaml``): an estimate file left
    behind by a deleted spec is never used. Raises DataError naming the table, the spec and the closest spec id."""
    known = {p.stem for p in Path(specs_dir).glob("*.yaml")}
    for d in definitions:
        for spec_id in d.specs + d.extra_specs:
            if spec_id not in known:
                raise DataError(file, f"table {d.name}: spec {spec_id!r} has no spec file "
                                      f"{paths.relative(Path(specs_dir) / (spec_id + '.yaml'))}"
                                      f"{did_you_mean(spec_id, known)}; "
                                      "its estimate file (if any) is orphaned and is not used",
                                column=f"tables.{d.name}")


#: Every table, in configs/tables.yaml order (read at import so that tests and tools can look tables up by name).
TABLES: tuple[TableDef, ...] = load_tables()
