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

    if not isinstance(raw, dict) or set(raw) != {"tables"} or not isinstance(raw["tables"], dict) or not raw["tables"]:
        fail("tables", "expected one top-level key 'tables' mapping table names to their settings")
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


#: Every table, in configs/tables.yaml order (read at import so that tests and tools can look tables up by name).
TABLES: tuple[TableDef, ...] = load_tables()


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


def build_grid(definition: TableDef, estimates_dir: Path) -> tuple[list[str], list[list[str]]]:
    """(header, body rows) of a wide table: one column per spec; cells as strings."""
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
    header = ["", *[f"({i + 1}) {definition.labels[i] if definition.labels else sidecar['spec'][definition.header]}"
                    for i, (_, _, sidecar) in enumerate(columns)]]
    body: list[list[str]] = []
    has = {c: any(c in table.columns and table[c].notna().any() for _, table, _ in columns)
           for c in ("p_value_wild", "p_value_ri")}
    for key in keys:
        est_row, se_row = [key], [""]
        extra = {c: [f"  {c.replace('p_value_', 'p ')}"] for c in has if has[c]}
        for _, table, _ in columns:
            match = table[table["row"] == key]
            if match.empty:
                est_row.append("")
                se_row.append("")
                for c in extra:
                    extra[c].append("")
                continue
            r = match.iloc[0]
            est_row.append(fmt(r["estimate"]) + cell_stars(r))
            se_row.append(f"({fmt(r['std_error'])})" if not math.isnan(r["std_error"]) else "")
            for c in extra:
                value = r[c] if c in match.columns else float("nan")
                extra[c].append(f"[{fmt(value)}]" if not math.isnan(value) else "")
        body += [est_row, se_row, *extra.values()]
    for spec_id in definition.extra_specs:
        table, sidecar = read_estimates(estimates_dir, spec_id)
        for _, test in table[table["term"].str.startswith("hausman")].iterrows():
            label = f"{test['term']} (df {int(test['df_t'])})" if "df_t" in table.columns else test["term"]
            if "df_num" in table.columns and pd.notna(test["df_num"]):  # F(k, G-1)
                label = f"{test['term']} (df {int(test['df_num'])}, {int(test['df_t'])})"
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
    body.append(["Estimator", *[s["spec"]["estimator"] for _, _, s in columns]])
    body.append(["Spec", *[spec_id for spec_id, _, _ in columns]])
    return header, body


def build_long(definition: TableDef, estimates_dir: Path) -> tuple[list[str], list[list[str]]]:
    """A long table (term, estimate, std. error, p-value, extra numeric columns) for one spec."""
    (spec_id,) = definition.specs
    table, _ = read_estimates(estimates_dir, spec_id)
    extra = [c for c in table.columns if c not in ("term", "estimate", "std_error", "p_value", "ci_low", "ci_high",
                                                    "n_obs", "method", "spec_id", "estimator", "statistic", "df_t")
             and pd.api.types.is_numeric_dtype(table[c])]
    header = ["term", "estimate", "std. error", "p-value", *extra]
    body = [[str(r["term"]), fmt(r["estimate"]), fmt(r["std_error"]), fmt(r["p_value"]),
             *[fmt(float(r[c])) for c in extra]] for _, r in table.iterrows()]
    return header, body


def to_markdown(caption: str, header: list[str], body: list[list[str]], notes: str) -> str:
    lines = [f"**{caption}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    return "\n".join(lines + ["", notes, ""])


_LATEX_ESCAPE = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}"}


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


NOTES = ("Standard errors in parentheses (each estimator's own inference; regressions: CRV1 by province with the "
         "fixest small-sample factor; p-values and intervals of every cluster-robust statistic, the staggered "
         "estimators' included, from t(G-1), G the number of clusters). [p wild]: wild cluster bootstrap p-value; [p ri]: "
         "randomization-inference p-value. * p<0.10, ** p<0.05, *** p<0.01.")


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


def dropped_note(read: list[tuple[pd.DataFrame, dict]]) -> str:
    """A sentence per spec that dropped something, read from its estimate file: always-treated units
    (``always_treated_dropped``), units dropped to balance the panel (``units_dropped_unbalanced``), units entering only
    some cells (``units_partial``), non-imputable treated observations and regressors dropped as collinear
    (``dropped_collinear``). Empty when nothing was dropped."""
    parts = []
    for table, sidecar in read:
        spec_id = sidecar.get("spec", {}).get("id") or (table["spec_id"].iloc[0] if "spec_id" in table and len(table)
                                                        else "?")
        said = []

        def listed(column: str) -> list[str]:
            if column not in table.columns:
                return []
            values = table[column].dropna().astype(str)
            return sorted({u for v in values for u in v.split(";") if u})

        for column, text in (("always_treated_dropped", "always-treated units dropped"),
                             ("units_dropped_unbalanced", "units not observed in every year dropped to balance the "
                                                          "panel"),
                             ("units_partial", "units entering only the cells whose years they have"),
                             ("dropped_collinear", "regressors dropped as collinear")):
            units = listed(column)
            if units:
                said.append(f"{text}: {', '.join(units)}")
        if "n_treated_obs_not_imputable" in table.columns and table["n_treated_obs_not_imputable"].fillna(0).max() > 0:
            said.append(f"{int(table['n_treated_obs_not_imputable'].max())} treated observations not imputable")
        if said:
            parts.append(f"{spec_id}: " + "; ".join(said))
    return ("Dropped (from the estimate files): " + ". ".join(parts) + ".") if parts else ""


def uses_entity_list(spec: dict) -> bool:
    """Whether a resolved spec reads any Entity List variable (as outcome, treatment, cohort or control)."""
    fields = [spec.get(k) for k in ("outcome", "treatment", "cohort", "exposure", "heterogeneity")]
    fields += list(spec.get("controls") or [])
    return any(isinstance(f, str) and (f.startswith("entity_list") or f.startswith("first_listing_year"))
               for f in fields)


def table_notes(definition: TableDef, estimates_dir: Path) -> str:
    """The standard notes, the Entity List coverage caveat whenever a spec in the table uses it, and the table's
    own note."""
    read = [read_estimates(estimates_dir, s) for s in definition.specs + definition.extra_specs]
    specs = [side["spec"] for _, side in read]
    few = any("few_treated_clusters" in table.columns and table["few_treated_clusters"].fillna(False).astype(bool).any()
              for table, _ in read)
    dropped = dropped_note(read)
    return (NOTES + (" " + ENTITY_LIST_NOTE if any(uses_entity_list(s) for s in specs) else "")
            + (" " + FEW_TREATED_NOTE if few else "") + (" " + dropped if dropped else "")
            + (" " + definition.note if definition.note else ""))


def render(definition: TableDef, estimates_dir: Path) -> tuple[str, str]:
    """(LaTeX, Markdown) text of one table."""
    if definition.rows == "long":
        header, body = build_long(definition, estimates_dir)
    else:
        header, body = build_grid(definition, estimates_dir)
    notes = table_notes(definition, estimates_dir)
    return (to_latex(definition.caption, definition.name, header, body, notes),
            to_markdown(definition.caption, header, body, notes))
