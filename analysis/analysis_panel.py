"""The analysis panel: cleaned panel ⋈ default index ⋈ sanction shocks, over the analysis window.

``python -m analysis.analysis_panel`` writes ``data/processed/analysis_panel.parquet``, one row per province_code × year
in the window (217 rows for 2015–2021). Models read it by default (``data:`` in a spec can point elsewhere).
Also adds the single-unit case-study treatments, a few log controls, base-period splits and base-period × post
interactions declared in ``configs/analysis_panel.yaml``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis.cli import guard, report
from analysis import paths
from analysis.io import DataError, write_parquet
from analysis.provinces import PROVINCE_CODES

CONFIG = paths.CONFIGS / "analysis_panel.yaml"
KEYS = ["province_code", "year"]
_FUNCTIONS = {"log": np.log}


def load_config(path: Path = CONFIG) -> dict:
    cfg = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    allowed = {"window", "case_studies", "derived", "other_index_methods", "base_period_splits",
               "base_period_interactions"}
    if set(cfg) - allowed:
        raise DataError(path, f"unknown key(s) {sorted(set(cfg) - allowed)}")
    for name, cs in cfg.get("case_studies", {}).items():
        if set(cs) != {"province_code", "first_year"} or cs["province_code"] not in PROVINCE_CODES:
            raise DataError(path, f"case study {name}: needs a known province_code and first_year", column=name)
    for name, (fn, _) in cfg.get("derived", {}).items():
        if fn not in _FUNCTIONS:
            raise DataError(path, f"derived {name}: unknown function {fn!r} (allowed: {sorted(_FUNCTIONS)})", column=name)
    for name, split in cfg.get("base_period_splits", {}).items():
        if set(split) != {"column", "years"} or len(split["years"]) != 2:
            raise DataError(path, f"base_period_splits.{name}: needs `column` and `years: [first, last]`",
                            column=f"base_period_splits.{name}")
    first, last = cfg["window"]["first_year"], cfg["window"]["last_year"]
    for name, spec in cfg.get("base_period_interactions", {}).items():
        where = f"base_period_interactions.{name}"
        keys = set(spec) if isinstance(spec, dict) else set()
        if not ({"column", "years"} <= keys <= {"column", "years", "transform", "times", "from_year"}
                and len(keys & {"times", "from_year"}) == 1):
            raise DataError(path, f"{where}: needs `column`, `years: [first, last]`, optional `transform` and "
                                  "exactly one of `times` (an indicator column) or `from_year`", column=where)
        years = spec["years"]
        if not (isinstance(years, list) and len(years) == 2 and first <= years[0] <= years[1] <= last):
            raise DataError(path, f"{where}: years must be [first, last] inside the window {first}–{last}, "
                                  f"got {years!r}", column=where)
        if spec.get("transform", "none") not in {"none", *_FUNCTIONS}:
            raise DataError(path, f"{where}: unknown transform {spec['transform']!r} (allowed: none, "
                                  f"{', '.join(sorted(_FUNCTIONS))})", column=where)
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
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config)
        index_config = load_index_config(args.index_config)
        indices = pd.read_parquet(args.indices)
        wide = default_index(indices, index_config)
        if cfg.get("other_index_methods"):
            wide = wide.merge(other_index_columns(indices, cfg["other_index_methods"]), on=KEYS, how="left",
                              validate="one_to_one")
        panel = pd.read_parquet(args.panel)
        out = build(panel, wide, pd.read_parquet(args.shocks), cfg, indicator_growth(panel, index_config))
    except DataError as err:
        return report(err)
    write_parquet(out, args.out)
    print(f"analysis panel: {len(out)} province-years, {out.shape[1]} columns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
