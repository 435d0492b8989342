"""Regression tables (LaTeX and Markdown) laid out from estimate files and their JSON sidecars.

No number is typed here: every cell is read from ``<estimates-dir>/<spec id>.parquet`` and every column header
from the sidecar's resolved spec (or the column's label). The tables are declared in ``configs/tables.yaml``
(:mod:`analysis.models.table_config`): each is a list of spec ids (columns) and the terms to show (rows):

* cells (:mod:`analysis.models.table_cells`): estimate with significance stars from ``p_value`` (the estimator's
  own inference — CRV1 with t(G−1) for the regressions), standard error in parentheses below; ``[p = …]`` rows for
  the wild cluster bootstrap and randomization-inference p-values when an estimate file has them;
* footer rows: test statistics of ``extra_specs`` (terms ``hausman*``), observations, clusters, estimator;
* event-time terms are aligned across estimators: ``ATT e=k`` (staggered estimators) and ``e=k`` (regression
  event studies) share the row ``e=k``;
* every name through the label map (:mod:`analysis.models.table_labels`), and the notes generated from what the
  table shows (:mod:`analysis.models.table_notes`).

Stars: * p < 0.10, ** p < 0.05, *** p < 0.01.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.models.table_cells import P_ROWS, cell_stars, fmt, fmt_extra, long_columns, read_estimates, row_key
from analysis.models.table_config import TableDef
from analysis.models.table_labels import EVENT, LABELS, Labels
from analysis.models.table_notes import table_notes


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
    events = sorted((k for k in keys if EVENT.match(k)), key=lambda k: int(k[2:]))
    return events + [k for k in keys if not EVENT.match(k)]


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
             *[fmt_extra(table[c], r[c]) for c in varying]] for _, r in table.iterrows()]
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
