"""A small synthetic panel with the real panel's column names, for tests and for developing later stages.

Each province has a size (log-normal) and a trend; every indicator is size × exp(growth·(year − 2015)) × noise,
in units like the real ones. Coverage gaps mirror the real sources: hitech_newprod_sales missing before 2016 and
hitech_enterprises_certified before 2018. Deterministic given ``seed`` (np.random.default_rng).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.provinces import identity_table

INDICATOR_SCALES = {  # typical provincial magnitude in the panel's units
    "rd_exp_gov": 5e5, "rd_exp_basic": 2e5, "budget_exp_sci_tech": 50.0, "rd_fte_basic": 8e3, "papers_sci": 5e3,
    "rd_exp_enterprise": 3e6, "patent_grant_invention": 5e3, "techmkt_outflow_value": 3e6,
    "techmkt_inflow_value": 3e6, "hitech_newprod_sales": 5e7, "hitech_enterprises_certified": 5e3,
    "rd_exp_total": 4e6,
    "defence_listed_share_pct": 5.0,    # a share (percent of listed firms), generated like the others for simplicity
}


def synthetic_panel(seed: int = 20240601, first_year: int = 2015, last_year: int = 2021) -> pd.DataFrame:
    """province_code × year panel with identity columns, indicators, gdp, gdp_deflator and population."""
    rng = np.random.default_rng(seed)
    ident = identity_table()[["province_code", "province_en", "name_cn", "theater_command"]]
    years = np.arange(first_year, last_year + 1)
    n = len(ident)
    size = np.exp(rng.normal(0.0, 1.0, n))
    growth = rng.uniform(0.02, 0.15, n)
    frame = ident.loc[ident.index.repeat(len(years))].reset_index(drop=True)
    frame["year"] = np.tile(years, n)
    p = np.repeat(np.arange(n), len(years))
    t = frame["year"].to_numpy() - first_year
    for name, scale in INDICATOR_SCALES.items():
        tilt = np.exp(rng.normal(0.0, 0.5, n))  # province-specific composition
        frame[name] = scale * size[p] * tilt[p] * np.exp(growth[p] * t) * np.exp(rng.normal(0, 0.05, len(frame)))
    frame["gdp"] = 3e4 * size[p] * np.exp(0.07 * t)
    frame["gdp_deflator"] = 1.02 ** t
    frame["population"] = 4e3 * size[p] ** 0.5
    frame.loc[frame["year"] < 2016, "hitech_newprod_sales"] = np.nan
    frame.loc[frame["year"] < 2018, "hitech_enterprises_certified"] = np.nan
    frame["province_code"] = frame["province_code"].astype("int64")
    frame["year"] = frame["year"].astype("int64")
    return frame
