"""Descriptive statistics by theater command (LaTeX and Markdown), formatting only.

For each variable and theater command over the analysis window: N (observed province-years), mean, standard
deviation (ddof = 1), minimum and maximum; an "All provinces" block closes the table. Monetary panel variables are
in the panel's units (see data/processed/codebook.csv), index variables on their [0, 1] scale.
"""

from __future__ import annotations

import pandas as pd

from analysis.figures.style import THEATER_ORDER

STAT_COLUMNS = ["n", "mean", "sd", "min", "max"]


def descriptives_by_theater(frame: pd.DataFrame, variables: list[str], years: tuple[int, int]) -> pd.DataFrame:
    """Long table: variable, theater_command (incl. 'All provinces'), n, mean, sd, min, max."""
    missing = [c for c in ["province_code", "year", "theater_command", *variables] if c not in frame.columns]
    if missing:
        raise ValueError(f"descriptives: missing column(s) {missing}")
    window = frame[frame["year"].between(*years)]
    rows = []
    for variable in variables:
        groups = [(t, window[window["theater_command"] == t]) for t in THEATER_ORDER] + [("All provinces", window)]
        for theater, part in groups:
            x = part[variable].astype(float)
            rows.append({"variable": variable, "theater_command": theater, "n": int(x.count()), "mean": x.mean(),
                         "sd": x.std(ddof=1), "min": x.min(), "max": x.max()})
    return pd.DataFrame(rows)


def _fmt(value: float) -> str:
    if pd.isna(value):
        return ""
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def _cells(table: pd.DataFrame, labels: dict[str, str]) -> list[list[str]]:
    body = []
    for variable, part in table.groupby("variable", sort=False):
        for i, (_, rec) in enumerate(part.iterrows()):
            first = labels.get(variable, variable) if i == 0 else ""
            body.append([first, rec["theater_command"], str(rec["n"])] + [_fmt(rec[c]) for c in STAT_COLUMNS[1:]])
    return body


HEADER = ["Variable", "Theater command", "N", "Mean", "SD", "Min", "Max"]


def to_markdown(table: pd.DataFrame, caption: str, note: str, labels: dict[str, str]) -> str:
    lines = [f"**{caption}**", "", "| " + " | ".join(HEADER) + " |",
             "|" + "|".join(["---"] * 2 + ["---:"] * 5) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in _cells(table, labels)]
    return "\n".join(lines + ["", f"*Note:* {note}", ""])


def _tex(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("$", r"\$"), ("→", r"$\rightarrow$"), ("–", "--")):
        text = text.replace(a, b)
    return text


def to_latex(table: pd.DataFrame, caption: str, label: str, note: str, labels: dict[str, str]) -> str:
    lines = [r"\begin{table}[htbp]", r"\centering", r"\small", f"\\caption{{{_tex(caption)}}}",
             f"\\label{{{label}}}", r"\begin{tabular}{llrrrrr}", r"\toprule",
             " & ".join(HEADER) + r" \\", r"\midrule"]
    body = _cells(table, labels)
    for i, row in enumerate(body):
        if i and row[0]:
            lines.append(r"\addlinespace")
        lines.append(" & ".join(_tex(c).replace(",", "{,}") for c in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", "",
              f"\\parbox{{\\linewidth}}{{\\footnotesize \\emph{{Note:}} {_tex(note)}}}", r"\end{table}", ""]
    return "\n".join(lines)
