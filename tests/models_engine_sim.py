"""Simulated province panels with known effects, for the estimation-engine tests (tests/test_models_engine*.py).

31 units (the GB/T 2260 province codes) × 7 years (2015–2021), unit and year effects, seeded. Known truths:

* ``post``: 1 from 2019 (common timing, like post_huawei_2019);
* ``exposure`` (standard normal across units) and ``y_cont = unit + year + CONT_EFFECT · exposure · post + x-effect + ε``;
  the dynamic version has effect CONT_EFFECT · (1 + k) for event time k ≥ 0 (k = year − 2019) and 0 before;
* ``cohort``: staggered first-treatment years (2018, 2019, 2020 or 0 = never), ``treated`` = 1[year ≥ cohort],
  ``y_bin = unit + year + BIN_EFFECT · treated + ε`` (homogeneous, so TWFE is unbiased);
* ``x1``: a control with coefficient X_EFFECT; ``gdp`` positive (for log controls); ``region``: 5 groups.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.provinces import PROVINCE_CODES

CONT_EFFECT = 0.5
BIN_EFFECT = 1.0
X_EFFECT = -0.3
YEARS = list(range(2015, 2022))


def simulate_panel(seed: int = 7, noise: float = 0.2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    units = np.array(PROVINCE_CODES)
    n_units, n_years = len(units), len(YEARS)
    unit_effect = rng.normal(0, 1, n_units)
    year_effect = rng.normal(0, 0.5, n_years)
    exposure = rng.normal(0, 1, n_units)
    cohorts = np.array([2018, 2019, 2020, 0])[np.arange(n_units) % 4]
    regions = np.array(["Central", "Eastern", "Northern", "Southern", "Western"])[np.arange(n_units) % 5]
    rows = []
    for i, unit in enumerate(units):
        for t, year in enumerate(YEARS):
            rows.append((unit, year, unit_effect[i], year_effect[t], exposure[i], cohorts[i], regions[i]))
    df = pd.DataFrame(rows, columns=["province_code", "year", "alpha", "gamma", "exposure", "cohort", "region"])
    n = len(df)
    df["post"] = (df["year"] >= 2019).astype(float)
    df["x1"] = rng.normal(0, 1, n)
    event_k = df["year"] - 2019
    dyn_effect = np.where(event_k >= 0, CONT_EFFECT * (1 + event_k), 0.0)
    base = df["alpha"] + df["gamma"] + X_EFFECT * df["x1"]
    df["y_cont"] = base + CONT_EFFECT * df["exposure"] * df["post"] + rng.normal(0, noise, n)
    df["y_dyn"] = base + dyn_effect * df["exposure"] + rng.normal(0, noise, n)
    df["treated"] = ((df["cohort"] > 0) & (df["year"] >= df["cohort"])).astype(float)
    df["y_bin"] = df["alpha"] + df["gamma"] + BIN_EFFECT * df["treated"] + rng.normal(0, noise, n)
    df["gdp"] = np.exp(1 + 0.1 * rng.normal(0, 1, n) + 0.05 * (df["year"] - 2015))
    df["cohort"] = df["cohort"].astype(float)
    return df.drop(columns=["alpha", "gamma"])


def base_spec(**overrides):
    """A resolved :class:`analysis.models.spec.Spec` (via the validator) for the simulated panel."""
    from analysis.models.spec import Spec

    raw = {"estimator": "feols", "outcome": "y_cont", "sample": {"years": [2015, 2021]}, "id": "simulated"}
    raw.update(overrides)
    return Spec.from_mapping(raw, "tests/simulated.yaml")
