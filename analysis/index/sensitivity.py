"""How much each construction choice matters: rank agreement of the capability index across methods.

Spearman's ρ between each method and the default (pooled over the province-years both define, and within the
comparison year), the full pairwise ρ matrix in the comparison year, and the provinces whose rank in the
comparison year moves by more than the configured threshold relative to the default method.
"""

from __future__ import annotations

import pandas as pd

from analysis.index.config import IndexConfig

METRIC = "capability_index"


def _wide(indices: pd.DataFrame, metric: str = METRIC) -> pd.DataFrame:
    return indices.pivot_table(index=["province_code", "year"], columns="method", values=metric, sort=True)


def spearman_matrix(indices: pd.DataFrame, year: int | None = None, metric: str = METRIC,
                    methods: list[str] | None = None) -> pd.DataFrame:
    """Pairwise Spearman rank correlation of ``metric`` across methods (pairwise-complete province-years);
    restricted to one year when ``year`` is given."""
    wide = _wide(indices, metric)
    if year is not None:
        wide = wide.xs(year, level="year")
    if methods is not None:
        wide = wide[methods]
    return wide.corr(method="spearman")


def ranks_in_year(indices: pd.DataFrame, year: int, metric: str = METRIC) -> pd.DataFrame:
    """Rank of each province (1 = highest ``metric``; ties share the lowest rank) by method in ``year``."""
    sub = indices.loc[indices["year"] == year]
    wide = sub.pivot_table(index="province_code", columns="method", values=metric, sort=True)
    return wide.rank(ascending=False, method="min")


def sensitivity_table(indices: pd.DataFrame, config: IndexConfig, names: pd.Series | None = None) -> pd.DataFrame:
    """One row per method: Spearman ρ with the default (pooled and in the comparison year), and the provinces whose
    comparison-year rank differs from the default's by more than ``rank_shift_threshold``.
    ``names``: province_code → display name (defaults to the code)."""
    default = config.default_method
    year = config.sensitivity_year
    methods = list(config.methods)
    pooled = spearman_matrix(indices, None, methods=methods)
    in_year = spearman_matrix(indices, year, methods=methods)
    ranks = ranks_in_year(indices, year)
    wide = _wide(indices)
    rows = []
    for m in methods:
        common = wide[[default, m]].dropna()
        movers = []
        if m in ranks and default in ranks:
            shift = (ranks[m] - ranks[default]).dropna()
            for code, s in shift[shift.abs() > config.rank_shift_threshold].items():
                label = names.get(code, str(code)) if names is not None else str(code)
                movers.append(f"{label} ({code}): {int(ranks.at[code, default])}→{int(ranks.at[code, m])}")
        rows.append({
            "method": m, "reference_method": default,
            "normalisation": config.methods[m].normalisation, "weighting": config.methods[m].weighting,
            "aggregation": config.methods[m].aggregation, "indicator_set": config.methods[m].indicator_set,
            "n_common_province_years": int(len(common)),
            "spearman_pooled": float(pooled.at[default, m]),
            "comparison_year": year,
            "spearman_comparison_year": float(in_year.at[default, m]),
            "rank_shift_threshold": config.rank_shift_threshold,
            "n_provinces_moving": len(movers),
            "provinces_moving": "; ".join(movers),
        })
    return pd.DataFrame(rows)
