"""The index formulas: normalisation, weights, aggregation, coupling, coordination and directional transfer.

Each function is pure (DataFrames/Series/arrays in, the same out), documents its formula and a reference, and
knows nothing about files or configuration. Notation: x_ij is indicator j for observation (province-year) i,
i = 1..n, j = 1..m; U_M and U_C are the military-oriented and civil subsystem scores in [0, 1].
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from analysis.models.distributions import norm_cdf


# --- normalisation ----------------------------------------------------------------------------------------------
def _oriented(values: pd.DataFrame, directions: Mapping[str, str]) -> pd.DataFrame:
    """Multiply cost indicators by −1 so that larger is better for every column (used before z-scores)."""
    sign = pd.Series({c: (-1.0 if directions.get(c, "benefit") == "cost" else 1.0) for c in values.columns})
    return values * sign


def minmax_goalposts(values: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Lower and upper goalposts (column min and max, NaN ignored) of the rows given."""
    return values.min(skipna=True), values.max(skipna=True)


def normalise_minmax(values: pd.DataFrame, directions: Mapping[str, str], lower: pd.Series | None = None,
                     upper: pd.Series | None = None, clip: bool = False) -> pd.DataFrame:
    """Min–max normalisation to [0, 1].

    benefit: x'_ij = (x_ij − L_j) / (H_j − L_j);  cost: x'_ij = (H_j − x_ij) / (H_j − L_j),
    with goalposts L_j, H_j = min and max over all rows given (pooled over provinces and years — the usual
    choice in the coupling-coordination literature) unless fixed goalposts are passed (e.g. from a base period,
    as the UNDP Human Development Index does). With fixed goalposts values outside [L, H] fall outside [0, 1];
    ``clip=True`` censors them (and so saturates leaders at 1). A constant indicator (H = L) carries no
    information and raises ValueError. Ref.: OECD/JRC (2008) Handbook on Constructing Composite Indicators, §5.
    """
    lo, hi = minmax_goalposts(values)
    lo = lo if lower is None else lower.reindex(values.columns)
    hi = hi if upper is None else upper.reindex(values.columns)
    span = hi - lo
    flat = span.index[~(span > 0)].tolist()
    if flat:
        raise ValueError(f"min–max normalisation: indicator(s) {flat} are constant (max == min) on the goalpost rows")
    out = (values - lo) / span
    cost = [c for c in values.columns if directions.get(c, "benefit") == "cost"]
    out[cost] = 1.0 - out[cost]
    return out.clip(0.0, 1.0) if clip else out


def normalise_zscore_probit(values: pd.DataFrame, directions: Mapping[str, str], mean: pd.Series | None = None,
                            sd: pd.Series | None = None) -> pd.DataFrame:
    """Pooled z-score mapped into (0, 1) by the standard normal CDF: x'_ij = Φ((±x_ij − μ_j) / σ_j).

    μ_j and σ_j (sample s.d., ddof = 1) are pooled over the rows given unless passed; cost indicators are negated
    first. Φ is monotone, so ranks within an indicator are those of the z-score, while the bounded values make
    entropy weights, TOPSIS and the coupling formulas (which need non-negative scores) well defined.
    Ref.: OECD/JRC (2008) Handbook, §5 (standardisation); the probit bound is our choice, stated here.
    """
    oriented = _oriented(values, directions)
    mu = oriented.mean() if mean is None else mean.reindex(values.columns)
    sigma = oriented.std(ddof=1) if sd is None else sd.reindex(values.columns)
    flat = sigma.index[~(sigma > 0)].tolist()
    if flat:
        raise ValueError(f"z-score normalisation: indicator(s) {flat} have zero variance")
    z = (oriented - mu) / sigma
    return pd.DataFrame(norm_cdf(z.to_numpy(dtype=float)), index=values.index, columns=values.columns)


# --- weights ----------------------------------------------------------------------------------------------------
def _complete(x: pd.DataFrame) -> pd.DataFrame:
    x = x.dropna(how="any")
    if len(x) < 2:
        raise ValueError("weights need at least two complete observations")
    return x


def entropy_weights(normalised: pd.DataFrame) -> pd.Series:
    """Entropy weights: p_ij = x_ij / Σ_i x_ij;  e_j = −(1/ln n) Σ_i p_ij ln p_ij  (0·ln 0 = 0);
    d_j = 1 − e_j;  w_j = d_j / Σ_k d_k.  Needs x ≥ 0 (normalised values). Rows with any missing value are dropped.
    Ref.: Shannon (1948); Zou, Yun & Sun (2006), J. Environ. Sci. 18(5):1020–1023 (entropy weight method).
    """
    x = _complete(normalised)
    if (x.to_numpy() < 0).any():
        raise ValueError("entropy weights need non-negative values")
    n = len(x)
    col = x.sum()
    if not (col > 0).all():
        raise ValueError(f"entropy weights: all-zero indicator(s) {col.index[~(col > 0)].tolist()}")
    p = x / col
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log(p), 0.0)
    e = -plogp.sum(axis=0) / np.log(n)
    d = pd.Series(1.0 - e, index=x.columns)
    if not d.sum() > 0:
        raise ValueError("entropy weights: every indicator has maximal entropy (all constant shares)")
    return d / d.sum()


def critic_weights(normalised: pd.DataFrame) -> pd.Series:
    """CRITIC weights: C_j = σ_j Σ_k (1 − r_jk);  w_j = C_j / Σ_k C_k, with σ_j the sample s.d. (ddof = 1) and r
    the Pearson correlation of the normalised indicators (complete rows).
    Ref.: Diakoulaki, Mavrotas & Papayannakis (1995), Computers & Operations Research 22(7):763–770.
    """
    x = _complete(normalised)
    sigma = x.std(ddof=1)
    r = x.corr(method="pearson").to_numpy()
    info = sigma.to_numpy() * (1.0 - r).sum(axis=1)
    c = pd.Series(info, index=x.columns)
    if not c.sum() > 0:
        raise ValueError("CRITIC weights: no information (zero variance or perfect correlation)")
    return c / c.sum()


def equal_weights(columns) -> pd.Series:
    """Equal weights w_j = 1/m."""
    columns = list(columns)
    return pd.Series(1.0 / len(columns), index=columns)


def pca_weights(normalised: pd.DataFrame) -> pd.Series:
    """PCA weights from the correlation matrix R = V Λ V′ (complete rows): keep components with eigenvalue
    λ_k > 1 (Kaiser; at least the first), and set w_j = Σ_k λ_k v_jk² / Σ_k λ_k — each retained component's
    squared loadings (which sum to one) weighted by its explained variance, so Σ_j w_j = 1 and the sign of an
    eigenvector does not matter. Ref.: OECD/JRC (2008) Handbook, §6.1; Nicoletti, Scarpetta & Boylaud (2000).
    """
    x = _complete(normalised)
    r = x.corr(method="pearson").to_numpy()
    eigval, eigvec = np.linalg.eigh(r)
    order = np.argsort(eigval)[::-1]
    eigval, eigvec = eigval[order], eigvec[:, order]
    keep = max(1, int((eigval > 1.0).sum()))
    lam = eigval[:keep]
    w = (eigvec[:, :keep] ** 2 * lam).sum(axis=1) / lam.sum()
    return pd.Series(w / w.sum(), index=x.columns)


WEIGHT_FUNCTIONS = {"entropy": entropy_weights, "critic": critic_weights, "pca": pca_weights,
                    "equal": lambda x: equal_weights(x.columns)}


# --- aggregation ------------------------------------------------------------------------------------------------
def weighted_sum(normalised: pd.DataFrame, weights: pd.Series) -> pd.Series:
    """U_i = Σ_j w_j x_ij (missing if any x_ij is missing; never re-weighted over the observed indicators).
    With x in [0, 1] and Σ w = 1, U is in [0, 1]."""
    w = weights.reindex(normalised.columns)
    return normalised.mul(w, axis=1).sum(axis=1, min_count=len(w)).where(normalised.notna().all(axis=1))


def topsis(normalised: pd.DataFrame, weights: pd.Series, ideal: pd.Series | None = None,
           anti_ideal: pd.Series | None = None) -> pd.Series:
    """TOPSIS closeness: v_ij = w_j x_ij; D⁺_i = ‖v_i − v⁺‖₂, D⁻_i = ‖v_i − v⁻‖₂; U_i = D⁻_i / (D⁺_i + D⁻_i),
    with ideal v⁺_j = max_i v_ij and anti-ideal v⁻_j = min_i v_ij pooled over all rows given (all provinces and
    years, so scores are comparable over time) unless passed. x must already be oriented (larger is better).
    Ref.: Hwang & Yoon (1981), Multiple Attribute Decision Making, Springer.
    """
    w = weights.reindex(normalised.columns)
    v = normalised.mul(w, axis=1)
    vp = v.max() if ideal is None else ideal.reindex(v.columns)
    vm = v.min() if anti_ideal is None else anti_ideal.reindex(v.columns)
    d_plus = np.sqrt(((v - vp) ** 2).sum(axis=1, min_count=len(w)))
    d_minus = np.sqrt(((v - vm) ** 2).sum(axis=1, min_count=len(w)))
    score = d_minus / (d_plus + d_minus)
    return score.where(normalised.notna().all(axis=1))


# --- coupling, coordination, direction --------------------------------------------------------------------------
def _arrays(u_m, u_c):
    u_m = np.asarray(u_m, dtype=float)
    u_c = np.asarray(u_c, dtype=float)
    return u_m, u_c


def coupling_traditional(u_m, u_c) -> np.ndarray:
    """Traditional two-system coupling degree C = 2·√(U_M·U_C) / (U_M + U_C) ∈ [0, 1] (= 1 iff U_M = U_C > 0).

    The factor 2 matters: without it C ≤ 0.5 (a frequent error). Defined as 0 when U_M + U_C = 0 (no development,
    no coupling). Note C depends only on the ratio U_M/U_C, so it is near 1 for most balanced pairs — the reason
    for the corrected form. Ref.: the form reviewed (and criticised) by Wang et al. (2021), see coupling_corrected.
    """
    u_m, u_c = _arrays(u_m, u_c)
    total = u_m + u_c
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(total > 0, 2.0 * np.sqrt(u_m * u_c) / total, 0.0)
    return np.where(np.isnan(total), np.nan, c)


def coupling_corrected(u_m, u_c) -> np.ndarray:
    """Corrected coupling degree C = √{ [1 − |U_M − U_C|] · min(U_M, U_C) / max(U_M, U_C) } ∈ [0, 1].

    Equals 1 only when U_M = U_C (> 0) and falls with imbalance, both in the difference and in the ratio;
    0 when max(U_M, U_C) = 0. Ref.: Wang Shujia, Kong Wei, Ren Liang, Zhi Dandan & Dai Bingtao (2021),
    "国内耦合协调度模型的误区及修正" (errors in, and a correction of, the coupling coordination
    degree model), 自然资源学报 (Journal of Natural Resources) 36(3):793–810.
    """
    u_m, u_c = _arrays(u_m, u_c)
    hi = np.maximum(u_m, u_c)
    lo = np.minimum(u_m, u_c)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(hi > 0, lo / hi, 0.0)
    c = np.sqrt(np.clip(1.0 - np.abs(u_m - u_c), 0.0, None) * ratio)
    return np.where(np.isnan(hi), np.nan, c)


def comprehensive_development(u_m, u_c, alpha: float = 0.5, beta: float = 0.5) -> np.ndarray:
    """T = α·U_M + β·U_C (α + β = 1), the comprehensive development level."""
    u_m, u_c = _arrays(u_m, u_c)
    return alpha * u_m + beta * u_c


def coordination(coupling, development) -> np.ndarray:
    """Coupling coordination degree D = √(C·T) ∈ [0, 1] for C, T ∈ [0, 1]."""
    c = np.asarray(coupling, dtype=float)
    t = np.asarray(development, dtype=float)
    return np.sqrt(c * t)


def directional_transfer(u_source, u_receiver, source_weight: float = 2 / 3) -> np.ndarray:
    """Directional transfer capability U_S^s · U_R^(1−s), s ∈ (0.5, 1], bounded in [0, 1].

    A Cobb–Douglas transfer function: transfer from subsystem S to R needs something to transfer (S) and the
    capacity to absorb it (R — absorptive capacity, Cohen & Levinthal 1990, ASQ 35(1):128–152); s > ½ makes the
    source the binding input, which is what gives the index its direction. The yearbooks have no military/civil
    breakdown of flows, so direction comes only from this weighting; the flow proxy is techmkt_outflow_share.
    transfer_civ_to_mil = U_C^s U_M^(1−s); transfer_mil_to_civ = U_M^s U_C^(1−s).
    """
    u_s, u_r = _arrays(u_source, u_receiver)
    return np.power(u_s, source_weight) * np.power(u_r, 1.0 - source_weight)


def relative_development(u_numerator, u_denominator) -> np.ndarray:
    """Relative development degree U_A / U_B (相对发展度; > 1: A leads B); missing where U_B = 0."""
    a, b = _arrays(u_numerator, u_denominator)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / b, np.nan)


def share(part, other) -> np.ndarray:
    """Bounded share part / (part + other) ∈ [0, 1]; missing where both are 0."""
    a, b = _arrays(part, other)
    with np.errstate(divide="ignore", invalid="ignore"):  # inf + -inf and 0/0 give NaN, which np.where discards
        total = a + b
        return np.where(total > 0, a / total, np.nan)
