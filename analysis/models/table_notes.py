"""The notes under each table, generated from what the table shows and what its estimate files record: inference
(standard errors, star levels, the [p wild] / [p ri] rows that appear), the Entity List coverage caveat, the
few-treated-clusters caveat, why the number of observations differs across columns (:func:`observations_note`,
checked by arithmetic against the analysis panel), what the estimators dropped (:func:`dropped_note`), values that
are the same on every row of a long table, the spec files, and the table's own note. No number is typed here.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from analysis import paths
from analysis.models.table_cells import P_ROWS, fmt_extra, long_columns, read_estimates
from analysis.models.table_config import TableDef
from analysis.models.table_labels import LABELS, Labels


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
                f"{labels.column(c, where).lower()}: {fmt_extra(table[c], table[c].iloc[0])}"
                for c in constant) + ".")
        parts.append(f"Spec: configs/specs/{definition.specs[0]}.yaml.")
    else:
        parts.append("Specs (configs/specs/<id>.yaml): " + "; ".join(
            f"({i + 1}) {s}" for i, s in enumerate(definition.specs))
            + (f"; tests: {', '.join(definition.extra_specs)}" if definition.extra_specs else "") + ".")
    if definition.note:
        parts.append(definition.note)
    return " ".join(p for p in parts if p)
