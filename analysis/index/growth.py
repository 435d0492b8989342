"""Growth outcomes: how fast each subsystem's indicators grow within a province, free of index scaling.

The level indices are dominated by differences in size between provinces (``index_validity.md``), and a sanction
effect can only show in the within-province part. These outcomes use that part directly:

    growth_<subsystem>_indicators_it = mean over the subsystem's indicators k of [log x_kit − log x_ki,t−1]

with x the indicator in real terms exactly as the index method transforms it (× unit_factor, ÷ the configured GDP
deflator for monetary flows, 2015 prices), in log points per year (0.05 ≈ 5% growth). The indicators are those of the
default method's indicator set in ``configs/index.yaml``. A province-year is missing when any of its indicators is
missing or non-positive in t or t − 1 (never imputed); the first year of the panel has no growth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.index.build import deflator, transform_indicator
from analysis.index.config import SUBSYSTEMS, IndexConfig

KEYS = ["province_code", "year"]


def growth_column(subsystem: str) -> str:
    return f"growth_{subsystem}_indicators"


def indicator_growth(panel: pd.DataFrame, config: IndexConfig, method: str | None = None) -> pd.DataFrame:
    """province_code, year and one growth column per subsystem (see the module docstring), over every year of
    ``panel`` (pass the full cleaned panel so the first window year has a previous year)."""
    m = config.methods[method or config.default_method]
    frame = panel.sort_values(KEYS, kind="mergesort").reset_index(drop=True)
    frame = frame.assign(deflator_used=deflator(frame, config.deflator_column, config.deflator_missing)[0])
    out = frame[KEYS].copy()
    for subsystem in SUBSYSTEMS:
        logs = []
        for indicator in config.indicators_of(m):
            if indicator.subsystem != subsystem:
                continue
            x = transform_indicator(frame, indicator, "level", log1p=False)
            logs.append(np.log(x.where(x > 0)))
        logs = pd.concat(logs, axis=1)
        change = logs - logs.groupby(frame["province_code"]).shift(1)
        # consecutive years only: a gap in the panel's years must not become a multi-year "annual" change
        consecutive = frame["year"].diff().eq(1) & frame["province_code"].eq(frame["province_code"].shift(1))
        out[growth_column(subsystem)] = change.mean(axis=1, skipna=False).where(consecutive)
    return out
