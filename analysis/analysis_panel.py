"""The analysis panel: cleaned panel ⋈ default index ⋈ sanction shocks, over the analysis window.

``python -m analysis.analysis_panel`` writes ``data/processed/analysis_panel.parquet``, one row per province_code × year
in the study window (configs/panel.yaml ``window``; 217 rows for 2015–2021). Models read it by default (``data:`` in a spec can point elsewhere).
Also adds the single-unit case-study treatments, a few log controls, base-period splits and base-period × post
interactions declared in ``configs/analysis_panel.yaml``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import paths
from analysis.cli import guard, report
from analysis.io import DataError, write_csv, write_parquet
from analysis.provinces import PROVINCE_CODES
from analysis.schema import did_you_mean
from analysis.window import moved_key, study_window

CONFIG = paths.CONFIGS / "analysis_panel.yaml"
KEYS = ["province_code", "year"]
_FUNCTIONS = {"log": np.log}


def load_config(path: Path = CONFIG, window: tuple[int, int] | None = None) -> dict:
    """Read and check ``configs/analysis_panel.yaml``; ``cfg["window"]`` is set from ``window`` (first_year,
    last_year), None = the study window (configs/panel.yaml ``window``, :func:`analysis.window.study_window`)."""
    from analysis import config_models, schema

    cfg = schema.read_yaml(path)
    if isinstance(cfg, dict) and "window" in cfg:
        raise moved_key(path, "window")
    # keys, types and year pairs: the model; what needs the identity table, the functions or the window: here
    schema.validate(config_models.AnalysisPanelFile, cfg, path)
    first, last = study_window() if window is None else window
    cfg["window"] = {"first_year": int(first), "last_year": int(last)}
    for name, cs in cfg.get("case_studies", {}).items():
        if cs["province_code"] not in PROVINCE_CODES:
            raise DataError(path, f"unknown province code {cs['province_code']!r}",
                            key=f"case_studies.{name}.province_code")
    for name, (fn, _) in cfg.get("derived", {}).items():
        if fn not in _FUNCTIONS:
            raise DataError(path, f"unknown function {fn!r} (allowed: {', '.join(sorted(_FUNCTIONS))})"
                                  f"{did_you_mean(fn, _FUNCTIONS)}", key=f"derived.{name}[0]")
    first, last = cfg["window"]["first_year"], cfg["window"]["last_year"]
    for name, spec in cfg.get("base_period_interactions", {}).items():
        where = f"base_period_interactions.{name}"
        if len(set(spec) & {"times", "from_year"}) != 1:
            raise DataError(path, "give exactly one of `times` (an indicator column) or `from_year`", key=where)
        years = spec["years"]   # [first, last], first <= last (the model)
        if not first <= years[0] <= years[1] <= last:
            raise DataError(path, f"must lie inside the window {first}–{last}, got {years!r}", key=f"{where}.years")
        if spec.get("transform", "none") not in {"none", *_FUNCTIONS}:
            raise DataError(path, f"unknown transform {spec['transform']!r} (allowed: none, "
                                  f"{', '.join(sorted(_FUNCTIONS))}){did_you_mean(spec['transform'], _FUNCTIONS)}",
                            key=f"{where}.transform")
    return cfg


def base_period_interaction(frame: pd.DataFrame, spec: dict) -> pd.Series:
    """f(base-period mean of ``column``) of the province × a post indicator, row by row of ``frame``.

    The base value is the province's mean of ``spec['column']`` over ``spec['years']`` (inclusive), transformed by
    ``spec['transform']`` (``log`` = natural log; ``none``); the indicator is the column ``spec['times']`` or
    1[year ≥ ``spec['from_year']``]. Fixed before the shock, the base value cannot respond to it; interacted with
    the post indicator it lets a control's pre-period level have its own post-period shift (e.g. log GDP in 2017 ×
    post-2019 for size, a defence-intensity measure × post-2017 for the January 2017 military–civil fusion push).
    A province with no base value is an error (a silent NaN would drop it from every model using the column).
    """
    first, last = spec["years"]
    base = frame.loc[frame["year"].between(first, last)].groupby("province_code")[spec["column"]].mean()
    missing = sorted(set(frame["province_code"]) - set(base.dropna().index))
    if missing:
        raise ValueError(f"base-period interaction on {spec['column']!r}: no value in {first}–{last} for "
                         f"province(s) {missing}")
    transform = spec.get("transform", "none")
    if transform != "none":
        if (base <= 0).any() and transform == "log":
            raise ValueError(f"log of {spec['column']!r} needs positive base values")
        base = _FUNCTIONS[transform](base)
    post = (frame[spec["times"]].to_numpy(dtype=float) if "times" in spec
            else (frame["year"] >= spec["from_year"]).to_numpy(dtype=float))
    return frame["province_code"].map(base) * post


def other_index_columns(indices: pd.DataFrame, methods: dict) -> pd.DataFrame:
    """Columns of non-default index methods, wide, named ``<column>__<method>`` (e.g. ``capability_index__x``), so
    that a spec can use another construction as its outcome (``other_index_methods`` in the config)."""
    out = None
    for method, columns in methods.items():
        sub = indices.loc[indices["method"] == method, KEYS + list(columns)]
        if sub.empty:
            raise ValueError(f"other_index_methods: no rows for method {method!r} in the indices")
        sub = sub.rename(columns={c: f"{c}__{method}" for c in columns})
        out = sub if out is None else out.merge(sub, on=KEYS, how="outer", validate="one_to_one")
    return out


def base_period_split(panel: pd.DataFrame, column: str, years: list[int]) -> pd.Series:
    """1 for provinces whose mean of ``column`` over ``years`` (inclusive) is above the median province's, else 0
    (a time-invariant heterogeneity split, fixed before the sanctions; indexed by province_code)."""
    first, last = years
    means = panel.loc[panel["year"].between(first, last)].groupby("province_code")[column].mean()
    if means.isna().any():
        raise ValueError(f"base-period split on {column!r}: missing for province(s) {means.index[means.isna()].tolist()}")
    return (means > means.median()).astype("int64")


def build(panel: pd.DataFrame, index_wide: pd.DataFrame, shocks: pd.DataFrame, cfg: dict,
          growth: pd.DataFrame | None = None) -> pd.DataFrame:
    """Join the three inputs (and the indicator-growth outcomes of :mod:`analysis.index.growth`, if given) on
    province_code × year within the window; add case-study treatments and logs.

    Column names must not collide (a collision means two stages produce the same variable: an error).
    """
    first, last = cfg["window"]["first_year"], cfg["window"]["last_year"]
    base = panel[panel["year"].between(first, last)].copy()
    out = base
    others = [("indices", index_wide), ("shocks", shocks)] + ([("growth", growth)] if growth is not None else [])
    for name, other in others:
        other = other[other["year"].between(first, last)]
        clash = (set(other.columns) & set(out.columns)) - set(KEYS)
        if clash:
            raise ValueError(f"{name} columns {sorted(clash)} already exist in the analysis panel")
        out = out.merge(other, on=KEYS, how="left", validate="one_to_one")
    if len(out) != len(base):
        raise ValueError("join changed the number of province-years")
    for name, cs in cfg.get("case_studies", {}).items():
        out[name] = ((out["province_code"] == cs["province_code"]) & (out["year"] >= cs["first_year"])).astype("int64")
    for name, (fn, source) in cfg.get("derived", {}).items():
        out[name] = _FUNCTIONS[fn](out[source])
    for name, split in cfg.get("base_period_splits", {}).items():
        out[name] = out["province_code"].map(base_period_split(panel, split["column"], split["years"]))
    for name, spec in cfg.get("base_period_interactions", {}).items():
        if name in out.columns:
            raise ValueError(f"base_period_interactions: column {name!r} already exists in the analysis panel")
        out[name] = base_period_interaction(out, spec).astype(float)
    return out.sort_values(KEYS).reset_index(drop=True)


#: What each wide index column measures (U_M, U_C: the state-oriented ("military") and business-oriented ("civil")
#: subsystem indices of analysis/index/methods.py; weights from configs/index.yaml).
INDEX_COLUMN_DOCS = {
    "u_military": "State/public-research-oriented ('military') subsystem index U_M: weighted aggregate of its "
                  "normalised indicators",
    "u_civil": "Business/market-oriented ('civil') subsystem index U_C: weighted aggregate of its normalised indicators",
    "comprehensive_development": "Comprehensive development T = a*U_M + b*U_C (comprehensive_weights)",
    "coupling_traditional": "Traditional coupling degree C = 2*sqrt(U_M*U_C)/(U_M+U_C)",
    "coupling_corrected": "Corrected coupling degree C = sqrt([1-|U_M-U_C|]*min/max) (Wang et al. 2021)",
    "coordination_traditional": "Coupling coordination degree D = sqrt(C*T), traditional C",
    "coordination_corrected": "Coupling coordination degree D = sqrt(C*T), corrected C",
    "transfer_civ_to_mil": "Directional transfer capability civil -> military, U_C^s * U_M^(1-s) (directional.source_weight)",
    "transfer_mil_to_civ": "Directional transfer capability military -> civil, U_M^s * U_C^(1-s) (directional.source_weight)",
}
CODEBOOK_COLUMNS = ["column", "label", "unit", "stage", "source"]


def _index_doc(column: str, index_config) -> str:
    if column == "capability_index":
        return (f"Dual-use transfer-capability index: the column {index_config.capability_index} "
                f"({INDEX_COLUMN_DOCS[index_config.capability_index]})")
    return INDEX_COLUMN_DOCS[column]


def codebook(out: pd.DataFrame, panel_codebook: pd.DataFrame, shocks_codebook: pd.DataFrame, index_config,
             cfg: dict) -> pd.DataFrame:
    """One row per column of the analysis panel ``out``, in its column order: column, label, unit, stage (the stage
    that makes it: clean, index, shocks, analysis_panel) and source (input file or config key, and the formula where
    one applies). Labels come from the panel codebook (``codebook.csv``), the shocks codebook
    (``shocks_codebook.csv``), the index column docs above, the growth outcomes (analysis/index/growth.py) and
    ``configs/analysis_panel.yaml``. A column that no source documents is an error (the codebook is complete)."""
    from analysis.index.build import DEFAULT_INDEX_COLUMNS
    from analysis.index.growth import growth_column
    from analysis.index.config import SUBSYSTEMS

    rows: dict[str, tuple[str, str, str, str]] = {}
    for r in panel_codebook.itertuples(index=False):
        src = "; ".join(str(x) for x in (r.source_file, r.source_variable) if isinstance(x, str) and x)
        rows[r.variable] = (r.label_en, r.unit, "clean", src or "data/processed/codebook.csv")
    for r in shocks_codebook.itertuples(index=False):
        if r.column in rows:
            continue  # the keys (province_code, year) are the panel's
        src = "; ".join(str(x) for x in (r.formula, r.source) if isinstance(x, str) and x)
        rows[r.column] = (r.label, r.unit, "shocks", src or "configs/shocks.yaml")
    method, index_src = index_config.default_method, "data/processed/indices.parquet"
    unit = "index (pooled min-max scale, 0-1)" if index_config.methods[method].normalisation == "minmax_pooled" \
        else f"index ({index_config.methods[method].normalisation})"
    for column in DEFAULT_INDEX_COLUMNS:
        rows[column] = (_index_doc(column, index_config), unit, "index",
                        f"{index_src}, default_method {method} (configs/index.yaml)")
    for other, columns in (cfg.get("other_index_methods") or {}).items():
        norm = index_config.methods[other].normalisation if other in index_config.methods else "?"
        for column in columns:
            rows[f"{column}__{other}"] = (f"{_index_doc(column, index_config)}; index method {other}",
                                          f"index ({norm})", "index",
                                          f"{index_src}, method {other} (configs/analysis_panel.yaml other_index_methods)")
    for subsystem in SUBSYSTEMS:
        rows[growth_column(subsystem)] = (
            f"Mean over the default method's {subsystem} indicators of the annual log change of the real indicator "
            "(missing if any indicator is missing or non-positive in t or t-1)", "log points per year", "index",
            "analysis/index/growth.py: mean_k [log x_kit - log x_ki,t-1]")
    src = "configs/analysis_panel.yaml"
    for name, cs in (cfg.get("case_studies") or {}).items():
        rows[name] = (f"1 for province {cs['province_code']} from {cs['first_year']} on, else 0 (single-unit case "
                      "study treatment)", "0/1", "analysis_panel", f"{src} case_studies.{name}")
    for name, (fn, column) in (cfg.get("derived") or {}).items():
        base_unit = rows.get(column, ("", "", "", ""))[1]
        rows[name] = (f"Natural log of {column}", f"log({base_unit})" if base_unit else "log", "analysis_panel",
                      f"{src} derived.{name}: {fn}({column})")
    for name, split in (cfg.get("base_period_splits") or {}).items():
        a, b = split["years"]
        rows[name] = (f"1 if the province's mean of {split['column']} over {a}-{b} is above the median province's, "
                      "else 0 (time-invariant)", "0/1", "analysis_panel", f"{src} base_period_splits.{name}")
    for name, spec in (cfg.get("base_period_interactions") or {}).items():
        a, b = spec["years"]
        f = spec.get("transform", "none")
        base = f"{f}(mean of {spec['column']}, {a}-{b})" if f != "none" else f"mean of {spec['column']}, {a}-{b}"
        post = spec["times"] if "times" in spec else f"1[year >= {spec['from_year']}]"
        rows[name] = (f"Province's base-period {base} x {post}", "as the base value", "analysis_panel",
                      f"{src} base_period_interactions.{name}")
    missing = [c for c in out.columns if c not in rows]
    if missing:
        raise ValueError(f"analysis panel codebook: no documentation for column(s) {missing}")
    return pd.DataFrame([(c, *rows[c]) for c in out.columns], columns=CODEBOOK_COLUMNS)


@guard
def main(argv: list[str] | None = None) -> int:
    from analysis.index.build import default_index
    from analysis.index.config import load_config as load_index_config
    from analysis.index.growth import indicator_growth

    p = argparse.ArgumentParser(prog="python -m analysis.analysis_panel", description=__doc__.splitlines()[0])
    p.add_argument("--panel", type=Path, default=paths.PANEL)
    p.add_argument("--indices", type=Path, default=paths.INDICES)
    p.add_argument("--index-config", type=Path, default=paths.INDEX_CONFIG)
    p.add_argument("--shocks", type=Path, default=paths.SHOCKS)
    p.add_argument("--config", type=Path, default=CONFIG)
    p.add_argument("--out", type=Path, default=paths.ANALYSIS_PANEL)
    p.add_argument("--panel-codebook", type=Path, default=paths.CODEBOOK)
    p.add_argument("--shocks-codebook", type=Path, default=paths.SHOCKS_CODEBOOK)
    p.add_argument("--codebook", type=Path, default=None,
                   help="where to write the codebook (default: <out folder>/analysis_panel_codebook.csv)")
    p.add_argument("--window", type=int, nargs=2, metavar=("FIRST", "LAST"),
                   help="override the study window (default: configs/panel.yaml `window`) for a robustness build")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config, args.window)
        index_config = load_index_config(args.index_config, args.window)
        indices = pd.read_parquet(args.indices)
        wide = default_index(indices, index_config)
        if cfg.get("other_index_methods"):
            wide = wide.merge(other_index_columns(indices, cfg["other_index_methods"]), on=KEYS, how="left",
                              validate="one_to_one")
        panel = pd.read_parquet(args.panel)
        out = build(panel, wide, pd.read_parquet(args.shocks), cfg, indicator_growth(panel, index_config))
        book = codebook(out, pd.read_csv(args.panel_codebook), pd.read_csv(args.shocks_codebook), index_config, cfg)
    except DataError as err:
        return report(err)
    book_path = args.codebook or args.out.parent / paths.ANALYSIS_PANEL_CODEBOOK_NAME
    write_parquet(out, args.out)
    write_csv(book, book_path)
    print(f"analysis panel: {len(out)} province-years, {out.shape[1]} columns; codebook {paths.relative(book_path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
