"""Regression tables (LaTeX and Markdown) built only from estimate files and their JSON sidecars.

No number is typed here: every cell is read from ``<estimates-dir>/<spec id>.parquet`` and every column header
from the sidecar's resolved spec (or the column's label). The tables are declared in ``configs/tables.yaml``: each is
a list of spec ids (columns) and the terms to show (rows):

* cells: estimate with significance stars from ``p_value`` (the estimator's own inference — CRV1 with t(G−1) for
  the regressions), standard error in parentheses below; ``[p = …]`` rows for the wild cluster bootstrap and
  randomization-inference p-values when an estimate file has them;
* footer rows: test statistics of ``extra_specs`` (terms ``hausman*``), observations, clusters, estimator;
* event-time terms are aligned across estimators: ``ATT e=k`` (staggered estimators) and ``e=k`` (regression
  event studies) share the row ``e=k``.

Stars: * p < 0.10, ** p < 0.05, *** p < 0.01.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd
import yaml

from analysis import paths
from analysis.io import DataError

STARS = ((0.01, "***"), (0.05, "**"), (0.10, "*"))
_EVENT = re.compile(r"^(?:ATT )?e=(-?\d+)$")


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


#: The tables, declared in configs/tables.yaml (see its header comment); read by :func:`load_tables`.
TABLES_CONFIG = paths.CONFIGS / "tables.yaml"
ROW_KINDS = ("all", "events", "att", "treatment", "long")
HEADERS = ("outcome", "estimator")
_NAME = re.compile(r"^tab\d{2}_[a-z0-9_]+$")
_SPEC_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _closest(word: str, choices) -> str:
    match = difflib.get_close_matches(str(word), sorted(choices), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def parse_tables(raw, file: str | Path = TABLES_CONFIG) -> tuple[TableDef, ...]:
    """Validate the parsed ``configs/tables.yaml`` and return its tables in file order (DataError names the key)."""
    def fail(key: str, message: str):
        raise DataError(file, message, column=key)

    from analysis import config_models, schema

    schema.validate(config_models.tables_model(), raw, file)
    if (not isinstance(raw, dict) or "tables" not in raw or set(raw) - {"tables", "labels"}
            or not isinstance(raw["tables"], dict) or not raw["tables"]):
        fail("tables", "expected the top-level keys 'tables' (table names to their settings) and 'labels'")
    out = []
    for name, t in raw["tables"].items():
        where = f"tables.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            fail(where, f"table name {name!r} must look like tabNN_words (lower case)")
        if not isinstance(t, dict):
            fail(where, "expected a mapping (caption, columns, rows, header, ...)")
        allowed = {"caption", "columns", "rows", "header", "terms", "extra_specs", "note"}
        for key in sorted(set(t) - allowed):
            fail(f"{where}.{key}", f"unknown key {key!r}{_closest(key, allowed)}")
        for key in ("caption", "columns", "rows", "header"):
            if key not in t:
                fail(f"{where}.{key}", f"missing key {key!r}")
        for key in ("caption", "note"):
            if key in t and not (isinstance(t[key], str) and t[key].strip()):
                fail(f"{where}.{key}", "expected non-empty text")
        for key, choices in (("rows", ROW_KINDS), ("header", HEADERS)):
            if t[key] not in choices:
                fail(f"{where}.{key}", f"{t[key]!r} is not one of {list(choices)}{_closest(t[key], choices)}")
        columns = t["columns"]
        if not isinstance(columns, list) or not columns:
            fail(f"{where}.columns", "expected a non-empty list of spec ids or {spec, label} mappings")
        specs, labels = [], []
        for i, c in enumerate(columns):
            key = f"{where}.columns[{i}]"
            if isinstance(c, dict):
                if set(c) - {"spec", "label"} or "spec" not in c:
                    fail(key, f"a column is a spec id or {{spec: <id>, label: <text>}}, got keys {sorted(c)}")
                spec, label = c["spec"], c.get("label")
                if label is not None and not (isinstance(label, str) and label.strip()):
                    fail(key, "label must be non-empty text")
            else:
                spec, label = c, None
            if not isinstance(spec, str) or not _SPEC_ID.match(spec):
                fail(key, f"spec id {spec!r} is not a spec file name (configs/specs/<id>.yaml)")
            if spec in specs:
                fail(key, f"spec {spec!r} appears twice")
            specs.append(spec)
            labels.append(label)
        if any(labels) and not all(labels):
            fail(f"{where}.columns", "give a label to every column or to none")
        if t["rows"] == "long" and len(specs) != 1:
            fail(f"{where}.columns", "rows: long shows one spec; list exactly one column")
        lists = {}
        for key in ("terms", "extra_specs"):
            value = t.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                fail(f"{where}.{key}", "expected a list of names")
            lists[key] = tuple(value)
        out.append(TableDef(name, t["caption"], tuple(specs), t["rows"], t["header"],
                            extra_specs=lists["extra_specs"], note=t.get("note", ""), terms=lists["terms"],
                            labels=tuple(labels) if all(labels) else ()))
    return tuple(out)


def load_tables(path: str | Path = TABLES_CONFIG) -> tuple[TableDef, ...]:
    """Read and validate configs/tables.yaml (see :func:`parse_tables`)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise DataError(path, f"not valid YAML: {err}") from err
    return parse_tables(raw, path)


def check_specs(definitions, specs_dir: Path = paths.SPECS, file: str | Path = TABLES_CONFIG) -> None:
    """Every spec a table lists must still have its spec file (``<specs_dir>/<id>.yaml``): an estimate file left
    behind by a deleted spec is never used. Raises DataError naming the table, the spec and the closest spec id."""
    known = {p.stem for p in Path(specs_dir).glob("*.yaml")}
    for d in definitions:
        for spec_id in d.specs + d.extra_specs:
            if spec_id not in known:
                raise DataError(file, f"table {d.name}: spec {spec_id!r} has no spec file "
                                      f"{paths.relative(Path(specs_dir) / (spec_id + '.yaml'))}{_closest(spec_id, known)}; "
                                      "its estimate file (if any) is orphaned and is not used",
                                column=f"tables.{d.name}")


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
    file: Path = TABLES_CONFIG

    def _missing(self, kind: str, name: str, where: str = "") -> DataError:
        known = getattr(self, kind)
        return DataError(self.file, f"no label for {kind[:-1]} {name!r}{where}; add it under labels.{kind}"
                                    f"{_closest(name, known)}", key=f"labels.{kind}")

    def term(self, term: str, where: str = "") -> str:
        """Row label of an estimate-file term: an exact entry of ``terms``; ``e=k`` / ``ATT e=k`` by ``event_time``;
        ``<term>:<variable>=<level>`` as "<label of term> × <levels[variable] with {level}>"."""
        if term in self.terms:
            return self.terms[term]
        event = _EVENT.match(term)
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


def parse_labels(raw, file: str | Path = TABLES_CONFIG) -> Labels:
    """Validate the ``labels:`` section of configs/tables.yaml (DataError naming the key)."""
    section = raw.get("labels") if isinstance(raw, dict) else None
    if not isinstance(section, dict):
        raise DataError(file, "missing the 'labels' section (the label map of every term, outcome, estimator and "
                              "long-table column the tables show)", key="labels")
    allowed = set(LABEL_KINDS) | {"event_time"}
    for key in sorted(set(section) - allowed):
        raise DataError(file, f"unknown key {key!r}{_closest(key, allowed)}", key=f"labels.{key}")
    maps = {}
    for kind in LABEL_KINDS:
        value = section.get(kind, {})
        if not isinstance(value, dict):
            raise DataError(file, "expected a mapping of names to labels", key=f"labels.{kind}")
        for name, label in value.items():
            if not (isinstance(label, str) and label.strip()):
                raise DataError(file, f"the label of {name!r} must be non-empty text", key=f"labels.{kind}.{name}")
        maps[kind] = {str(k): v for k, v in value.items()}
    event_time = section.get("event_time")
    if not (isinstance(event_time, str) and "{k}" in event_time):
        raise DataError(file, "expected text containing {k} (the event time)", key="labels.event_time")
    for name, text in maps["levels"].items():
        if "{level}" not in text:
            raise DataError(file, "expected text containing {level}", key=f"labels.levels.{name}")
    return Labels(event_time=event_time, file=Path(file), **maps)


def load_labels(path: str | Path = TABLES_CONFIG) -> Labels:
    """Read and validate the ``labels:`` section of configs/tables.yaml (see :func:`parse_labels`)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise DataError(path, f"not valid YAML: {err}") from err
    return parse_labels(raw, path)


#: Every table, in configs/tables.yaml order (read at import so that tests and tools can look tables up by name).
TABLES: tuple[TableDef, ...] = load_tables()
#: The label map of every table (configs/tables.yaml ``labels:``).
LABELS: Labels = load_labels()


def read_estimates(estimates_dir: Path, spec_id: str) -> tuple[pd.DataFrame, dict]:
    """The estimate table and sidecar of one spec (a missing file is a DataError naming it)."""
    parquet = Path(estimates_dir) / f"{spec_id}.parquet"
    sidecar = parquet.with_suffix(".json")
    for path in (parquet, sidecar):
        if not path.exists():
            raise DataError(path, f"estimates for spec {spec_id!r} not found (run python -m analysis.estimate)")
    return pd.read_parquet(parquet), json.loads(sidecar.read_text(encoding="utf-8"))


def fmt(value: float, digits: int = 4) -> str:
    """Fixed decimals; scientific for tiny non-zero values; blank for NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if value != 0 and abs(value) < 10 ** (-digits):
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def stars(p_value: float) -> str:
    if p_value is None or math.isnan(p_value):
        return ""
    return next((mark for cut, mark in STARS if p_value < cut), "")


#: p-values read instead of the analytic one on a row flagged ``few_treated_clusters``, first available wins.
RESAMPLING_P = ("p_value_wild", "p_value_ri", "p_value_placebo")


def cell_stars(row: pd.Series) -> str:
    """Stars of the row's p-value; with fewer than five treated clusters (``few_treated_clusters``) the analytic
    p-value is unreliable, so the stars come from the wild-bootstrap / randomization / placebo p-value and the
    cell carries a dagger (no stars if the row has none of them)."""
    flag = row.get("few_treated_clusters")
    if flag is None or pd.isna(flag) or not bool(flag):
        return stars(row["p_value"])
    for column in RESAMPLING_P:
        value = row.get(column, float("nan"))
        if value is not None and not pd.isna(value):
            return stars(float(value)) + "†"
    return "†"


def row_key(term: str) -> str:
    """Align event-time terms across estimators (``ATT e=k`` and ``e=k`` -> ``e=k``)."""
    match = _EVENT.match(term)
    return f"e={match.group(1)}" if match else term


def _select(table: pd.DataFrame, rows: str, sidecar: dict, terms: tuple[str, ...] = ()) -> pd.DataFrame:
    table = table.assign(row=table["term"].map(row_key))
    if terms:
        return table[table["term"].isin(terms)]
    if rows == "events":
        return table[table["row"].str.match(r"^(e=-?\d+|ATT)$")]
    if rows == "att":
        return table[table["row"] == "ATT"]
    if rows == "treatment":
        controls = set(sidecar.get("terms", [])) - {sidecar["spec"].get("treatment")}
        return table[~table["term"].isin(controls)]
    return table


def _event_sort(keys: list[str]) -> list[str]:
    """e=k rows in numeric order, then the rest in first-seen order."""
    events = sorted((k for k in keys if _EVENT.match(k)), key=lambda k: int(k[2:]))
    return events + [k for k in keys if not _EVENT.match(k)]


P_ROWS = {"p_value_wild": "  p wild", "p_value_ri": "  p ri"}   # resampling p-value rows, as [p]


def build_grid(definition: TableDef, estimates_dir: Path, labels: Labels | None = None
               ) -> tuple[list[str], list[list[str]]]:
    """(header, body rows) of a wide table: one column per spec; cells as strings, every name labelled by
    ``labels`` (:data:`LABELS`). A p-value row ([p wild], [p ri]) appears only under an estimate that has one."""
    labels = labels or LABELS
    where = f" (table {definition.name})"
    columns = []
    for spec_id in definition.specs:
        table, sidecar = read_estimates(estimates_dir, spec_id)
        columns.append((spec_id, _select(table, definition.rows, sidecar, definition.terms), sidecar))
    if definition.labels and len(definition.labels) != len(definition.specs):
        raise ValueError(f"table {definition.name}: {len(definition.labels)} labels for {len(definition.specs)} specs")
    keys: list[str] = []
    for _, table, _ in columns:
        keys += [k for k in table["row"] if k not in keys]
    keys = _event_sort(keys)
    header = ["", *[f"({i + 1}) " + (definition.labels[i] if definition.labels else
                                     labels.header(definition.header, sidecar["spec"][definition.header], where))
                    for i, (_, _, sidecar) in enumerate(columns)]]
    body: list[list[str]] = []
    for key in keys:
        est_row, se_row = [labels.term(key, where)], [""]
        extra = {c: [label] for c, label in P_ROWS.items()}
        for _, table, _ in columns:
            match = table[table["row"] == key]
            if match.empty:
                for row in (est_row, se_row, *extra.values()):
                    row.append("")
                continue
            r = match.iloc[0]
            est_row.append(fmt(r["estimate"]) + cell_stars(r))
            se = r.get("std_error", float("nan"))
            se_row.append(f"({fmt(se)})" if se is not None and not pd.isna(se) else "")
            for c in extra:
                value = r[c] if c in match.columns else float("nan")
                extra[c].append(f"[{fmt(value)}]" if not pd.isna(value) else "")
        body += [row for row in (est_row, se_row, *extra.values()) if row is est_row or any(row[1:])]
    for spec_id in definition.extra_specs:
        table, sidecar = read_estimates(estimates_dir, spec_id)
        for _, test in table[table["term"].str.startswith("hausman")].iterrows():
            name = labels.term(test["term"], where)
            label = f"{name} (df {int(test['df_t'])})" if "df_t" in table.columns else name
            if "df_num" in table.columns and pd.notna(test["df_num"]):  # F(k, G-1)
                label = f"{name} (df {int(test['df_num'])}, {int(test['df_t'])})"
            cell = f"{fmt(test['estimate'], 3)} [p = {fmt(test['p_value'], 3)}]"
            definite = test["vdiff_positive_definite"] if "vdiff_positive_definite" in table.columns else None
            if definite is not None and pd.notna(definite) and not bool(definite):
                cell += (f" not valid: V_FE-V_RE not positive definite (eigenvalue "
                         f"{test['vdiff_min_eigenvalue']:.2g}; negative directions add "
                         f"{fmt(test['vdiff_negative_part'], 1)})")
            body.append([label, cell, *[""] * (len(columns) - 1)])
    body.append(["Observations", *[str(int(t["n_obs"].max())) if len(t) else "" for _, t, _ in columns]])
    if any("n_clusters" in t.columns for _, t, _ in columns):
        body.append(["Clusters", *[str(int(t["n_clusters"].max())) if "n_clusters" in t.columns
                                   and t["n_clusters"].notna().any() else "" for _, t, _ in columns]])
    body.append(["Estimator", *[labels.header("estimator", s["spec"]["estimator"], where) for _, _, s in columns]])
    return header, body


#: columns of an estimate file that a long table never shows (identifiers, or shown as estimate / std. error / p)
_LONG_SKIP = ("term", "estimate", "std_error", "p_value", "ci_low", "ci_high", "n_obs", "method", "spec_id",
              "estimator", "statistic", "df_t")


def _is_flag(series: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(series) or series.name.startswith("few_")


def _fmt_extra(series: pd.Series, value) -> str:
    """A long table's extra cell: yes/no for flags, integers without decimals, else :func:`fmt`."""
    if pd.isna(value):
        return ""
    if _is_flag(series):
        return "yes" if bool(value) else "no"
    whole = series.dropna()
    if len(whole) and (whole == whole.round()).all() and not series.name.startswith("weight"):
        return str(int(value))
    return fmt(float(value))


def long_columns(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The extra numeric columns of a long table: (those that vary across rows -> shown as columns, those with one
    value on every row -> said once in the note). Columns with no value at all are left out."""
    extra = [c for c in table.columns if c not in _LONG_SKIP and table[c].notna().any()
             and (pd.api.types.is_numeric_dtype(table[c]) or pd.api.types.is_bool_dtype(table[c]))]
    constant = [c for c in extra if len(table) > 1 and table[c].nunique(dropna=False) == 1]
    return [c for c in extra if c not in constant], constant


def build_long(definition: TableDef, estimates_dir: Path, labels: Labels | None = None
               ) -> tuple[list[str], list[list[str]]]:
    """A long table for one spec: labelled term, estimate, std. error and p-value (only if the file has them), and
    the extra numeric columns that vary across rows (constant ones go to the note, see :func:`long_columns`)."""
    labels = labels or LABELS
    where = f" (table {definition.name})"
    (spec_id,) = definition.specs
    table, _ = read_estimates(estimates_dir, spec_id)
    varying, _ = long_columns(table)
    inference = [(c, h) for c, h in (("std_error", "Std. error"), ("p_value", "p-value"))
                 if c in table.columns and table[c].notna().any()]
    header = ["", "Estimate", *[h for _, h in inference], *[labels.column(c, where) for c in varying]]
    body = [[labels.term(str(r["term"]), where), fmt(r["estimate"]), *[fmt(r[c]) for c, _ in inference],
             *[_fmt_extra(table[c], r[c]) for c in varying]] for _, r in table.iterrows()]
    return header, body


def to_markdown(caption: str, header: list[str], body: list[list[str]], notes: str) -> str:
    lines = [f"**{caption}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    return "\n".join(lines + ["", notes, ""])


_LATEX_ESCAPE = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "<": r"\textless{}",
                 ">": r"\textgreater{}", "×": r"$\times$", "χ": r"$\chi$", "²": r"$^2$", "†": r"$^\dagger$",
                 "–": "--", "−": "$-$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPE.get(ch, ch) for ch in text)


def to_latex(caption: str, label: str, header: list[str], body: list[list[str]], notes: str) -> str:
    spec = "l" + "c" * (len(header) - 1)
    lines = [r"\begin{table}[htbp]", r"\centering", rf"\caption{{{latex_escape(caption)}}}",
             rf"\label{{tab:{label}}}", rf"\begin{{tabular}}{{{spec}}}", r"\hline",
             " & ".join(latex_escape(h) for h in header) + r" \\", r"\hline"]
    lines += [" & ".join(latex_escape(cell) for cell in row) + r" \\" for row in body]
    lines += [r"\hline", r"\end{tabular}", "", r"\par\smallskip\footnotesize " + latex_escape(notes),
              r"\end{table}", ""]
    return "\n".join(lines)


#: What the standard errors are (said only when a table shows standard errors).
SE_NOTE = ("each estimator's own inference (regressions: CRV1 by province with the fixest small-sample factor; "
           "p-values and intervals of every cluster-robust statistic, the staggered estimators' included, from t(G-1), "
           "G the number of clusters)")
#: Star levels (said only for the marks that appear in the table).
STAR_TEXT = {"*": "* p<0.10", "**": "** p<0.05", "***": "*** p<0.01"}
_STAR_MARK = re.compile(r"\d(\*{1,3})(?:†)?$")

ENTITY_LIST_NOTE = ("Entity List variables (first_listing_year*, entity_list_*) come from a transcription of about half "
                    "of the 2015–2021 China/Hong Kong additions (complete for 13 of 25 rules; 17 rows not placed in "
                    "a province): listing counts are lower bounds, and an observed first-listing year is an upper "
                    "bound on the true one (an untranscribed earlier listing can only make it earlier; a province "
                    "never listed here may have been listed). A listing treats its province from its year if dated "
                    "on or before 30 June, else from the next year.")


FEW_TREATED_NOTE = ("†: fewer than five treated clusters (provinces) carry this estimate (n_treated_clusters in the "
                    "estimate file; per event time for the event studies). With so few treated clusters the analytic "
                    "cluster-robust p-value (CRV1, Callaway-Sant'Anna, Sun-Abraham) rejects a true null far too often "
                    "(about 70% at 5% with one treated province), so the stars use the wild cluster bootstrap, "
                    "randomization or placebo p-value where the estimate file has one, and no stars otherwise. "
                    "Placebo-in-space p-values cannot be below 1/(J+1), J placebo units (p_value_floor).")


@lru_cache(maxsize=1)
def _province_names() -> dict[int, str]:
    from analysis.provinces import identity_table

    return {int(c): str(n) for c, n in identity_table()[["province_code", "province_en"]].itertuples(index=False)}


def province_name(code) -> str:
    """English name of a province code (``'540000'`` -> ``'Tibet'``); the code itself if unknown."""
    try:
        return _province_names().get(int(float(code)), str(code))
    except (TypeError, ValueError):
        return str(code)


def _names(codes) -> str:
    return ", ".join(province_name(c) for c in codes)


def _listed(table: pd.DataFrame, column: str) -> list[str]:
    """Units listed in a ';'-separated column of an estimate file (e.g. always_treated_dropped), sorted."""
    if column not in table.columns:
        return []
    values = table[column].dropna().astype(str)
    return sorted({u for v in values for u in v.split(";") if u})


def _spec_id(table: pd.DataFrame, sidecar: dict) -> str:
    return (sidecar.get("spec", {}).get("id") or sidecar.get("spec_id")
            or (str(table["spec_id"].iloc[0]) if "spec_id" in table and len(table) else "?"))


def dropped_note(read: list[tuple[pd.DataFrame, dict]], skip: tuple[str, ...] = ()) -> str:
    """A sentence per spec that dropped something, read from its estimate file: always-treated units
    (``always_treated_dropped``), units dropped to balance the panel (``units_dropped_unbalanced``), units entering only
    some cells (``units_partial``), non-imputable treated observations and regressors dropped as collinear
    (``dropped_collinear``). Provinces by name; columns in ``skip`` are left to another note. Empty when nothing was
    dropped."""
    parts = []
    for table, sidecar in read:
        said = []
        for column, text, units in (("always_treated_dropped", "always-treated provinces dropped", True),
                                    ("units_dropped_unbalanced", "provinces not observed in every year dropped to "
                                                                 "balance the panel", True),
                                    ("units_partial", "provinces entering only the cells whose years they have", True),
                                    ("dropped_collinear", "regressors dropped as collinear", False)):
            listed = [] if column in skip else _listed(table, column)
            if listed:
                said.append(f"{text}: {_names(listed) if units else ', '.join(listed)}")
        if "n_treated_obs_not_imputable" in table.columns and table["n_treated_obs_not_imputable"].fillna(0).max() > 0:
            said.append(f"{int(table['n_treated_obs_not_imputable'].max())} treated observations not imputable")
        if said:
            parts.append(f"{_spec_id(table, sidecar)}: " + "; ".join(said))
    return ("Dropped (from the estimate files): " + ". ".join(parts) + ".") if parts else ""


def _years_text(years: list[int]) -> str:
    """2015, 2016, 2018 -> '2015–2016, 2018'."""
    runs: list[list[int]] = []
    for y in sorted(years):
        if runs and y == runs[-1][-1] + 1:
            runs[-1].append(y)
        else:
            runs.append([y])
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def _data_file(spec: dict) -> Path | None:
    name = spec.get("data_file") or spec.get("data")
    if not name:
        return None
    path = Path(name) if Path(name).is_absolute() else paths.ROOT / name
    return path if path.exists() else None


def sample_accounting(table: pd.DataFrame, sidecar: dict) -> tuple[int, list[str], int | None]:
    """Why one estimate has the observations it has: (N, reasons, N the reasons account for or None).

    Read from the estimate file and its sidecar (the resolved spec): the window and the years / provinces the spec
    drops, always-treated provinces and provinces dropped to balance the panel (recorded by the estimator), first
    differences (each province loses its first year) and, from the analysis panel the sidecar names, the province-
    years whose outcome or regressor is missing. When the panel is there, the reasons are checked by arithmetic: the
    third element is the N they imply, to compare with the estimate's N (None without the panel).
    """
    spec = sidecar.get("spec", {})
    n = int(table["n_obs"].max()) if "n_obs" in table.columns and len(table) else 0
    sample = spec.get("sample") or {}
    reasons: list[str] = []
    years = sample.get("years")
    if years:
        reasons.append(f"window {years[0]}–{years[1]}")
    if sample.get("drop_years"):
        reasons.append(f"year {_years_text(sample['drop_years'])} dropped")
    if sample.get("drop_units"):
        reasons.append(f"{_names(sample['drop_units'])} dropped")
    if sample.get("keep_units"):
        reasons.append(f"only {_names(sample['keep_units'])}")
    always = _listed(table, "always_treated_dropped")
    unbalanced = _listed(table, "units_dropped_unbalanced")
    if always:
        reasons.append(f"always-treated {_names(always)} dropped")
    if unbalanced:
        reasons.append(f"{_names(unbalanced)} dropped to balance the panel")
    first_diff = spec.get("estimator") == "first_diff"
    if first_diff:
        reasons.append("first differences: each province's first year has no difference")
    implied = None
    panel_file = _data_file(spec)
    unit, time = spec.get("unit", "province_code"), spec.get("time", "year")
    if panel_file is not None:
        # a spec's `data:` may be CSV or Parquet, as analysis.models.sample.read_panel reads it (not imported here:
        # it would bring the estimation engine into the tables)
        panel = pd.read_csv(panel_file) if panel_file.suffix.lower() == ".csv" else pd.read_parquet(panel_file)
        if unit in panel.columns and time in panel.columns:
            if years:
                panel = panel[panel[time].between(years[0], years[1])]
            panel = panel[~panel[time].isin(sample.get("drop_years") or [])]
            panel = panel[~panel[unit].isin(sample.get("drop_units") or [])]
            if sample.get("keep_units"):
                panel = panel[panel[unit].isin(sample["keep_units"])]
            used = [spec.get(k) for k in ("outcome", "treatment", "exposure", "cohort")]
            used += [c for c in spec.get("controls") or [] if isinstance(c, str)]
            used = [c for c in used if isinstance(c, str) and c in panel.columns]
            missing = panel[panel[used].isna().any(axis=1)] if used else panel.iloc[:0]
            for code, group in missing.groupby(unit, sort=True):
                what = ["outcome" if c == spec.get("outcome") else c for c in used if group[c].isna().any()]
                reasons.append(f"{' and '.join(what)} missing for {province_name(code)} "
                               f"{_years_text(group[time].astype(int).tolist())}")
            kept = panel.drop(missing.index)
            kept = kept[~kept[unit].astype(str).isin(always + unbalanced)]
            implied = len(kept) - (kept[unit].nunique() if first_diff else 0)
    return n, reasons, implied


def observations_note(read: list[tuple[pd.DataFrame, dict]], column_numbers: list[int]) -> str:
    """When the columns of a table have different N, say why (:func:`sample_accounting`): reasons shared by every
    column once, then each column's N and its own reasons (a window other than the columns' usual one included). Any
    observations the recorded reasons do not account for are counted, not hidden. Empty when N is the same."""
    accounts = [sample_accounting(table, sidecar) for table, sidecar in read]
    if len({n for n, _, _ in accounts}) <= 1:
        return ""
    windows = [r[0] for _, r, _ in accounts if r and r[0].startswith("window")]
    usual = max(sorted(set(windows)), key=windows.count) if windows else None
    own = [[r for r in reasons if r != usual] for _, reasons, _ in accounts]
    shared = [r for r in own[0] if all(r in o for o in own[1:])]
    parts = []
    for number, (n, _, implied), reasons in zip(column_numbers, accounts, own):
        shown = [r for r in reasons if r not in shared]
        if implied is not None and implied != n:
            shown.append(f"{abs(implied - n)} observations {'fewer' if implied > n else 'more'} than these reasons "
                         "imply (dropped by the estimator)")
        parts.append(f"({number}) {n}" + (f": {'; '.join(shown)}" if shown else ""))
    return ("Observations (N) differ across columns" + (f" (window {usual[7:]} unless said)" if usual else "")
            + (f"; in every column: {'; '.join(shared)}" if shared else "") + ". " + "; ".join(parts) + ".")


def uses_entity_list(spec: dict) -> bool:
    """Whether a resolved spec reads any Entity List variable (as outcome, treatment, cohort or control)."""
    fields = [spec.get(k) for k in ("outcome", "treatment", "cohort", "exposure", "heterogeneity")]
    fields += list(spec.get("controls") or [])
    return any(isinstance(f, str) and (f.startswith("entity_list") or f.startswith("first_listing_year"))
               for f in fields)


def _cells(body: list[list[str]] | None) -> list[str]:
    return [cell for row in body or [] for cell in row[1:]]


def inference_note(definition: TableDef, header: list[str], body: list[list[str]],
                   read: list[tuple[pd.DataFrame, dict]]) -> str:
    """What the table shows about inference, and only that: standard errors (if any cell or column has one), the
    star levels that appear, the [p wild] / [p ri] rows that appear (with the bootstrap's weights and replications
    from the sidecars). Nothing about standard errors for a table without them (a decomposition, tab05)."""
    cells = _cells(body)
    said = []
    if definition.rows == "long":
        if "Std. error" in header:
            said.append("Standard errors and p-values: " + SE_NOTE + ".")
    elif any(c.startswith("(") and c.endswith(")") for c in cells):
        said.append("Standard errors in parentheses: " + SE_NOTE + ".")
    labels_shown = {row[0] for row in body}
    if P_ROWS["p_value_wild"] in labels_shown:
        settings = sorted({(w.get("weights"), w.get("reps")) for _, side in read
                           for w in [((side.get("spec") or {}).get("inference") or {}).get("wild_bootstrap") or {}]
                           if w})
        how = "; ".join(f"{str(weights).capitalize()} weights, {reps:,} replications" for weights, reps in settings
                        if weights and reps)
        said.append("[p wild]: wild cluster bootstrap p-value (restricted, WCR" + (f"; {how}" if how else "")
                    + "; seeds in the estimate sidecars).")
    if P_ROWS["p_value_ri"] in labels_shown:
        said.append("[p ri]: randomization-inference p-value.")
    marks = {m.group(1) for c in cells for m in [_STAR_MARK.search(c)] if m}
    if marks:
        said.append(", ".join(STAR_TEXT[m] for m in sorted(marks, key=len)) + ".")
    return " ".join(said)


def table_notes(definition: TableDef, estimates_dir: Path, header: list[str] | None = None,
                body: list[list[str]] | None = None, labels: Labels | None = None) -> str:
    """The table's notes, generated from what it shows (``header``/``body`` as rendered; without them, only the
    parts that do not depend on the cells): inference (:func:`inference_note`), the Entity List coverage caveat when
    a spec uses it, the few-treated-clusters caveat when a cell carries †, why N differs across columns, what was
    dropped, values that are the same on every row of a long table, the spec file of each column, and the table's
    own note."""
    labels = labels or LABELS
    read = [read_estimates(estimates_dir, s) for s in definition.specs + definition.extra_specs]
    columns_read = read[:len(definition.specs)]
    specs = [side.get("spec", {}) for _, side in read]
    parts = []
    if body is not None:
        parts.append(inference_note(definition, header or [], body, columns_read))
    if any(uses_entity_list(s) for s in specs):
        parts.append(ENTITY_LIST_NOTE)
    if body is not None:
        few = any("†" in c for c in _cells(body))
    else:
        few = any("few_treated_clusters" in t.columns and t["few_treated_clusters"].fillna(False).astype(bool).any()
                  for t, _ in read)
    if few:
        parts.append(FEW_TREATED_NOTE)
    n_note = "" if definition.rows == "long" else observations_note(
        columns_read, list(range(1, len(definition.specs) + 1)))
    parts.append(n_note)
    parts.append(dropped_note(read, skip=("always_treated_dropped", "units_dropped_unbalanced") if n_note else ()))
    if definition.rows == "long":
        table = columns_read[0][0]
        _, constant = long_columns(table)
        if constant:
            where = f" (table {definition.name})"
            parts.append("On every row: " + "; ".join(
                f"{labels.column(c, where).lower()}: {_fmt_extra(table[c], table[c].iloc[0])}"
                for c in constant) + ".")
        parts.append(f"Spec: configs/specs/{definition.specs[0]}.yaml.")
    else:
        parts.append("Specs (configs/specs/<id>.yaml): " + "; ".join(
            f"({i + 1}) {s}" for i, s in enumerate(definition.specs))
            + (f"; tests: {', '.join(definition.extra_specs)}" if definition.extra_specs else "") + ".")
    if definition.note:
        parts.append(definition.note)
    return " ".join(p for p in parts if p)


def render(definition: TableDef, estimates_dir: Path, labels: Labels | None = None) -> tuple[str, str]:
    """(LaTeX, Markdown) text of one table; every name through the label map ``labels`` (:data:`LABELS`)."""
    labels = labels or LABELS
    if definition.rows == "long":
        header, body = build_long(definition, estimates_dir, labels)
    else:
        header, body = build_grid(definition, estimates_dir, labels)
    notes = table_notes(definition, estimates_dir, header, body, labels)
    return (to_latex(definition.caption, definition.name, header, body, notes),
            to_markdown(definition.caption, header, body, notes))
