"""Build the indices from the panel: transform → normalise → weight (frozen on the base period) → aggregate per
subsystem → couple, coordinate, and take directions.

Entry points: :func:`build_indices` (all methods, long), :func:`build_method` (one method), :func:`default_index`
(the default method, wide, for the analysis panel). All pure: DataFrames and an :class:`IndexConfig` in,
DataFrames out.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from tqdm import tqdm

from analysis.index import methods as fm
from analysis.index.config import IndexConfig, Indicator, Method, Period
from analysis.io import DataError
from analysis.schema import did_you_mean

KEYS = ["province_code", "year"]
IDENTITY_COLUMNS = ["province_en", "theater_command"]

# Wide columns of the default index joined into the analysis panel (naming contract).
DEFAULT_INDEX_COLUMNS = [
    "u_military", "u_civil", "capability_index", "comprehensive_development", "coupling_traditional",
    "coupling_corrected", "coordination_traditional", "coordination_corrected", "transfer_civ_to_mil",
    "transfer_mil_to_civ",
]
OUTPUT_COLUMNS = KEYS + IDENTITY_COLUMNS + [
    "method", "u_military", "u_civil", "comprehensive_development", "coupling_traditional", "coupling_corrected",
    "coordination_traditional", "coordination_corrected", "capability_index", "transfer_civ_to_mil",
    "transfer_mil_to_civ", "civil_share", "relative_civ_to_mil", "relative_mil_to_civ", "techmkt_outflow_share",
    "deflator_filled",
]


# --- input checks and transformations -----------------------------------------------------------------------------
def required_columns(config: IndexConfig, method: Method) -> list[str]:
    """Panel columns a method needs."""
    inds = config.indicators_of(method)
    scale = config.indicator_sets[method.indicator_set].scale
    cols = [i.name for i in inds]
    if any(i.deflate for i in inds) or scale == "per_gdp":
        cols.append(config.deflator_column)
    if scale == "per_gdp":
        cols.append("gdp")
    if scale == "per_capita":
        cols.append("population")
    return cols


def validate_panel(panel: pd.DataFrame, config: IndexConfig, file: str | os.PathLike = "panel") -> pd.DataFrame:
    """Check the panel has what every configured method needs; return the window rows sorted by key.

    Raises DataError naming the file, the 1-based record and the column for: a missing column, duplicate
    province_code × year, a negative value in an indicator, a non-positive deflator/GDP/population.
    """
    needed = set(KEYS + IDENTITY_COLUMNS + ["techmkt_outflow_value", "techmkt_inflow_value"])
    for m in config.methods.values():
        needed.update(required_columns(config, m))
    missing = sorted(needed - set(panel.columns))
    if missing:
        raise DataError(file, f"missing column(s) needed by the index: {missing}"
                              f"{did_you_mean(missing[0], panel.columns)}", column=missing[0])
    dup = panel.duplicated(KEYS, keep=False)
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(file, "duplicate province_code × year", row=row + 1, column="province_code")
    w = config.window
    win = panel.loc[panel["year"].between(w.first_year, w.last_year)].copy()
    win = win.sort_values(KEYS, kind="mergesort")
    for col in sorted(needed - set(KEYS + IDENTITY_COLUMNS)):
        values = pd.to_numeric(win[col], errors="coerce")
        positive_only = col in (config.deflator_column, "gdp", "population")
        bad = (values <= 0) if positive_only else (values < 0)
        if bad.any():
            label = win.index[np.flatnonzero(bad.to_numpy())[0]]
            row = int(panel.index.get_loc(label)) + 1
            raise DataError(file, f"{'non-positive' if positive_only else 'negative'} value {values[label]!r}",
                            row=row, column=col)
    win = win.reset_index(drop=True)
    if config.deflator_column in win:
        win["deflator_used"], win["deflator_filled"] = deflator(win, config.deflator_column, config.deflator_missing)
    else:
        win["deflator_filled"] = False
    return win


def deflator(panel: pd.DataFrame, column: str = "gdp_deflator", missing: str = "none") -> tuple[pd.Series, pd.Series]:
    """The deflator applied to monetary indicators and a flag for rows where it was filled.

    missing = "none": the provincial deflator as is (missing stays missing). missing = "year_median": where a
    province's deflator is missing, the median of the observed provincial deflators of that year (configured
    explicitly in configs/index.yaml; flagged row by row)."""
    own = panel[column].astype(float)
    if missing == "none":
        return own, pd.Series(False, index=panel.index)
    if missing != "year_median":
        raise ValueError(f"unknown deflator rule {missing!r}")
    median = own.groupby(panel["year"]).transform("median")
    filled = own.isna() & median.notna()
    return own.fillna(median), filled


def transform_indicator(panel: pd.DataFrame, indicator: Indicator, scale: str, log1p: bool,
                        deflator_column: str = "deflator_used") -> pd.Series:
    """x = value × unit_factor; ÷ gdp_deflator if deflate (2015 prices); ÷ population (per_capita, per 10k persons)
    or ÷ real GDP = gdp / gdp_deflator (per_gdp; a deflated money value ÷ real GDP equals nominal ÷ nominal);
    then log(1 + x) if log1p. Missing stays missing. The deflator is the column ``deflator_column`` (built by
    :func:`validate_panel` from the configured deflator)."""
    x = panel[indicator.name].astype(float) * indicator.unit_factor
    if indicator.deflate:
        x = x / panel[deflator_column]
    if scale == "per_capita":
        x = x / panel["population"]
    elif scale == "per_gdp":
        x = x / (panel["gdp"] / panel[deflator_column])
    return np.log1p(x) if log1p else x


def transformed_indicators(panel: pd.DataFrame, config: IndexConfig, method: Method) -> pd.DataFrame:
    """The method's indicators transformed, one column each, rows aligned with ``panel``."""
    iset = config.indicator_sets[method.indicator_set]
    return pd.DataFrame({i.name: transform_indicator(panel, i, iset.scale, iset.log1p)
                         for i in config.indicators_of(method)}, index=panel.index)


# --- normalisation and weights --------------------------------------------------------------------------------------
def _in_period(years: pd.Series, period: Period) -> pd.Series:
    return years.between(period.first_year, period.last_year)


def normalise(x: pd.DataFrame, directions: dict[str, str], normalisation: str, fit_rows: pd.Series) -> pd.DataFrame:
    """Normalise every row of ``x`` with parameters fitted on the rows where ``fit_rows`` is True (NaN ignored)."""
    fit = x.loc[fit_rows]
    if normalisation == "minmax_pooled":
        lo, hi = fm.minmax_goalposts(fit)
        return fm.normalise_minmax(x, directions, lo, hi)
    if normalisation == "minmax_goalposts":
        lo, hi = fm.minmax_goalposts(fit)
        return fm.normalise_minmax(x, directions, lo, hi, clip=True)
    if normalisation == "zscore_probit":
        oriented_fit = fm._oriented(fit, directions)
        return fm.normalise_zscore_probit(x, directions, oriented_fit.mean(), oriented_fit.std(ddof=1))
    raise ValueError(f"unknown normalisation {normalisation!r}")


def base_period_weights(x: pd.DataFrame, years: pd.Series, directions: dict[str, str], method: Method,
                        base: Period) -> pd.Series:
    """Weights of one subsystem estimated on the base period only, then frozen.

    The base-period rows are normalised with parameters fitted on the base period itself (for every
    normalisation), so nothing after the base period — in particular no post-sanction year — can change the
    weights. Rows with a missing indicator are dropped (complete cases) for the estimate. Σ w = 1.
    """
    in_base = _in_period(years, base)
    xb = x.loc[in_base].dropna(how="any")
    if len(xb) < 2:
        raise ValueError(f"method {method.name}: fewer than two complete base-period ({base.first_year}–"
                         f"{base.last_year}) observations for {list(x.columns)}")
    nb = normalise(xb, directions, method.normalisation, pd.Series(True, index=xb.index))
    return fm.WEIGHT_FUNCTIONS[method.weighting](nb)


def subsystem_scores(panel: pd.DataFrame, config: IndexConfig, method: Method) -> tuple[pd.DataFrame, pd.DataFrame]:
    """U_M and U_C for every window row, plus the weights table (method, subsystem, indicator, weight, base period).

    Normalisation parameters: minmax_pooled and zscore_probit are fitted on all window rows (pooled),
    minmax_goalposts on the base period; weights always on the base period (:func:`base_period_weights`);
    TOPSIS ideal points pooled over all window rows.
    """
    x = transformed_indicators(panel, config, method)
    base = config.base_period_for(method)
    years = panel["year"]
    fit_rows = _in_period(years, base) if method.normalisation == "minmax_goalposts" else pd.Series(True, index=x.index)
    scores = {}
    weight_rows = []
    for sub in ("military", "civil"):
        inds = [i for i in config.indicators_of(method) if i.subsystem == sub]
        cols = [i.name for i in inds]
        directions = {i.name: i.direction for i in inds}
        xs = x[cols]
        w = base_period_weights(xs, years, directions, method, base)
        ns = normalise(xs, directions, method.normalisation, fit_rows)
        if method.aggregation == "weighted_sum":
            u = fm.weighted_sum(ns, w)
        else:
            u = fm.topsis(ns, w)
        scores[f"u_{sub}"] = u
        n_base = int(xs.loc[_in_period(years, base)].dropna(how="any").shape[0])
        for name in cols:
            weight_rows.append({"method": method.name, "subsystem": sub, "indicator": name,
                                "weight": float(w[name]), "base_first_year": base.first_year,
                                "base_last_year": base.last_year, "n_base_observations": n_base,
                                "weighting": method.weighting, "normalisation": method.normalisation,
                                "indicator_set": method.indicator_set})
    return pd.DataFrame(scores, index=panel.index), pd.DataFrame(weight_rows)


def derived_indices(u_military, u_civil, config: IndexConfig) -> pd.DataFrame:
    """Coupling, coordination and directional indices from the subsystem scores (columns named as in the output)."""
    um = np.asarray(u_military, dtype=float)
    uc = np.asarray(u_civil, dtype=float)
    alpha, beta = config.comprehensive_weights
    t = fm.comprehensive_development(um, uc, alpha, beta)
    c_trad = fm.coupling_traditional(um, uc)
    c_corr = fm.coupling_corrected(um, uc)
    out = pd.DataFrame({
        "u_military": um, "u_civil": uc, "comprehensive_development": t,
        "coupling_traditional": c_trad, "coupling_corrected": c_corr,
        "coordination_traditional": fm.coordination(c_trad, t), "coordination_corrected": fm.coordination(c_corr, t),
        "transfer_civ_to_mil": fm.directional_transfer(uc, um, config.source_weight),
        "transfer_mil_to_civ": fm.directional_transfer(um, uc, config.source_weight),
        "civil_share": fm.share(uc, um),
        "relative_civ_to_mil": fm.relative_development(uc, um),
        "relative_mil_to_civ": fm.relative_development(um, uc),
    })
    out["capability_index"] = out[config.capability_index]
    return out


def build_method(window_panel: pd.DataFrame, config: IndexConfig, method: Method) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Indices (long rows for this method) and weights for one method, on a panel already restricted to the window
    (see :func:`validate_panel`)."""
    u, weights = subsystem_scores(window_panel, config, method)
    out = derived_indices(u["u_military"], u["u_civil"], config)
    out.index = window_panel.index
    ident = window_panel[KEYS + IDENTITY_COLUMNS].copy()
    ident["method"] = method.name
    uses_deflator = (any(i.deflate for i in config.indicators_of(method))
                     or config.indicator_sets[method.indicator_set].scale == "per_gdp")
    out["deflator_filled"] = window_panel["deflator_filled"].to_numpy() & uses_deflator
    # Flow proxy for military→civil spin-off: share of the region's technology-market turnover that it sells.
    # Deflation cancels in the ratio; independent of the method.
    out["techmkt_outflow_share"] = fm.share(window_panel["techmkt_outflow_value"], window_panel["techmkt_inflow_value"])
    return pd.concat([ident, out], axis=1)[OUTPUT_COLUMNS], weights


def build_indices(panel: pd.DataFrame, config: IndexConfig, file: str | os.PathLike = "panel",
                  progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All configured methods: (indices long — province_code × year × method, weights long).

    Rows: every window province-year for every method; a subsystem score is missing where one of its indicators is
    missing (never imputed), e.g. before 2016/2018 for the extended indicator sets. Order: methods as configured,
    then province_code, year. The column ``capability_index`` is config.capability_index.
    """
    win = validate_panel(panel, config, file)
    frames, weights = [], []
    for method in tqdm(list(config.methods.values()), desc="index methods", disable=not progress):
        idx, w = build_method(win, config, method)
        frames.append(idx)
        weights.append(w)
    indices = pd.concat(frames, ignore_index=True)
    indices["province_code"] = indices["province_code"].astype("int64")
    indices["year"] = indices["year"].astype("int64")
    return indices, pd.concat(weights, ignore_index=True)


def default_index(indices: pd.DataFrame, config: IndexConfig, method: str | None = None) -> pd.DataFrame:
    """The default method's indices, wide: province_code, year and DEFAULT_INDEX_COLUMNS (one row per
    province-year), ready to join into the analysis panel on province_code × year."""
    name = method or config.default_method
    sub = indices.loc[indices["method"] == name, KEYS + DEFAULT_INDEX_COLUMNS]
    if sub.empty:
        raise ValueError(f"no rows for method {name!r} in the indices")
    return sub.sort_values(KEYS, kind="mergesort").reset_index(drop=True)
