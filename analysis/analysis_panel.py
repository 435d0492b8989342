"""The analysis panel: cleaned panel ⋈ default index ⋈ sanction shocks, over the analysis window.

``python -m analysis.analysis_panel`` writes ``data/processed/analysis_panel.parquet``, one row per province_code × year
in the window (217 rows for 2015–2021). Models read it by default (``data:`` in a spec can point elsewhere).
Also adds the single-unit case-study treatments and a few log controls declared in ``configs/analysis_panel.yaml``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis import paths
from analysis.io import DataError, write_parquet
from analysis.provinces import PROVINCE_CODES

CONFIG = paths.CONFIGS / "analysis_panel.yaml"
KEYS = ["province_code", "year"]
_FUNCTIONS = {"log": np.log}


def load_config(path: Path = CONFIG) -> dict:
    cfg = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    allowed = {"window", "case_studies", "derived"}
    if set(cfg) - allowed:
        raise DataError(path, f"unknown key(s) {sorted(set(cfg) - allowed)}")
    for name, cs in cfg.get("case_studies", {}).items():
        if set(cs) != {"province_code", "first_year"} or cs["province_code"] not in PROVINCE_CODES:
            raise DataError(path, f"case study {name}: needs a known province_code and first_year", column=name)
    for name, (fn, _) in cfg.get("derived", {}).items():
        if fn not in _FUNCTIONS:
            raise DataError(path, f"derived {name}: unknown function {fn!r} (allowed: {sorted(_FUNCTIONS)})", column=name)
    return cfg


def build(panel: pd.DataFrame, index_wide: pd.DataFrame, shocks: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """Join the three inputs on province_code × year within the window; add case-study treatments and logs.

    Column names must not collide (a collision means two stages produce the same variable: an error).
    """
    first, last = cfg["window"]["first_year"], cfg["window"]["last_year"]
    base = panel[panel["year"].between(first, last)].copy()
    out = base
    for name, other in (("indices", index_wide), ("shocks", shocks)):
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
    return out.sort_values(KEYS).reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    from analysis.index.build import default_index
    from analysis.index.config import load_config as load_index_config

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
        wide = default_index(pd.read_parquet(args.indices), load_index_config(args.index_config))
        out = build(pd.read_parquet(args.panel), wide, pd.read_parquet(args.shocks), cfg)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    write_parquet(out, args.out)
    print(f"analysis panel: {len(out)} province-years, {out.shape[1]} columns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
