"""Linear regressions with fixed effects and few-cluster-honest inference: feols, cont_did, event_study.

The core, :func:`ols_fe`, is ordinary least squares with any number of fixed effects, computed by the
Frisch–Waugh–Lovell theorem: the outcome and regressors are residualised on the fixed-effect dummies (a least
squares projection, exact, so unbalanced panels and interacted effects ``a^b`` need no iteration) and the
residualised outcome is regressed on the residualised regressors. Coefficients and residuals equal those of the
dummy-variable regression. Panels here are small (31 provinces × ≤14 years), so the dense projection is cheap.

Covariance estimators (``inference.vcov``), with the fixest small-sample conventions (Bergé 2018, fixest
``ssc(adj = TRUE, fixef.K = "nested", cluster.adj = TRUE, cluster.df = "min")``; pyfixest's default
``ssc(k_adj=True, k_fixef="nonnested", G_adj=True, G_df="min")``):

* ``CRV1`` (default): V = G/(G−1) · (N−1)/(N−K) · (X̃'X̃)⁻¹ (Σ_g X̃_g'û_g û_g'X̃_g) (X̃'X̃)⁻¹, where G is the number
  of clusters, N the observations used, and K = p + rank(D) − Σ_{FE nested in the cluster}(levels − 1): the p
  regressors plus the fixed-effect parameters, not counting effects nested in the clusters (a province effect
  within province clusters) but keeping one for the intercept. Tests and intervals use Student's t with G − 1
  degrees of freedom — with 31 provinces this matters (t₃₀ vs normal).
  Where K differs from fixest/pyfixest: they count the fixed-effect parameters as Σ levels − (number of effects − 1),
  i.e. one redundancy per additional effect, which is exact for two crossed effects but not for irregular ones
  (interactions such as ``theater^year`` beside ``province``, where every theater's year dummies sum to the sum of its
  provinces' dummies: 5 redundancies, not 1). K here uses rank(D), the exact number of identified effect parameters.
  On the shipped ``cont_did_theater_capability_index`` (N = 215, FE province + theater^year, province clusters)
  K = 5 + 61 − 30 = 36 here and 5 + 65 − 31 + 1 = 40 in pyfixest 0.x ``ssc()`` defaults, so our CRV1 standard
  errors are pyfixest's × √((N−40)/(N−36)) = 0.98876 (checked on the real data); for regular two-way designs
  (every other shipped regression) the two K agree and so do the standard errors (tests).
* ``hetero``: HC1, N/(N−K) · (X̃'X̃)⁻¹ (Σ_i x̃_i x̃_i' û_i²) (X̃'X̃)⁻¹ with K counting every fixed effect (as
  fixest/pyfixest); t with N − K degrees of freedom.
* ``iid``: s² (X̃'X̃)⁻¹ with s² = û'û/(N − K); t with N − K.
* ``driscoll_kraay`` (Driscoll & Kraay 1998): scores summed by period, ξ_t = Σ_i x̃_it û_it, then a Bartlett
  kernel, S = Σ_{j=0}^{L} w_j (Γ_j + Γ_j') with Γ_j = Σ_t ξ_t ξ_{t−j}', w_0 = 1/2 (so Γ_0 counts once), w_j = 1 − j/(L+1);
  V = N/(N − K) · (X̃'X̃)⁻¹ S (X̃'X̃)⁻¹ with K counting every fixed effect. L defaults to ⌊4 (T/100)^{2/9}⌋.
  This is linearmodels' ``cov_type="kernel"`` with ``debiased=True`` (and its count of absorbed effects);
  tests check the equality. t with T − 1 degrees of freedom (T periods), as for clustering by period. Its
  consistency is in T: with fewer than ``DK_MIN_PERIODS`` = 10 periods (our panels have 7) it warns and the
  ``method`` column says the result is unreliable.

Other libraries count differently: linearmodels ``PanelOLS(..., cov_type="clustered", debiased=True,
group_debias=True)`` uses G/(G−1) · (N−1)/(N − K_lm) with K_lm = p + every absorbed effect (units + periods − 1),
so our clustered variance equals linearmodels' times (N − K_lm)/(N − K); statsmodels OLS with dummies and
``cov_type="cluster"`` uses G/(G−1) · (N−1)/(N − p − all dummies). The tests verify both relations.

Wild cluster bootstrap and randomization inference p-values are added when the spec asks for them, from
:mod:`analysis.models.inference` (imported only then).

Unit-specific linear trends (``trends: unit_linear`` in a spec): regressors d_i · (t − t̄) for every unit i
(d_i the unit dummy, t̄ the mean period of the rows used), appended after the treatment and the controls, so
y_it = β·x_it + α_i + γ_t + δ_i·(t − t̄) + ε_it. With period effects one slope is collinear (Σ_i d_i (t − t̄) is
spanned by the period dummies) and is dropped like any collinear regressor. The slopes are estimated as ordinary
regressors — K counts them (fixest's ``unit[time]`` slopes, by contrast, may be discounted as nested in unit
clusters; counting them is the conservative choice: standard errors larger by √((N−K)/(N−K−S)) for S
slopes, ≈ 8 % on our headline panel) — and they stay in X for the wild cluster bootstrap, so the restricted bootstrap refits them in every draw
exactly as a dummy-variable WCR with trend regressors does. They are not reported (terms ``trend:<unit>=<id>``
are dropped from the tidy output); the ``method`` column says that trends were included and how many.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.io import DataError
from analysis.models.distributions import t_ppf, t_sf
from analysis.models.spec import control_column, control_name

CONFIDENCE = 0.95
_COLLINEAR_TOL = 1e-9
#: Driscoll–Kraay is consistent as the number of periods grows; below this many it warns and says so in ``method``.
DK_MIN_PERIODS = 10
# Name prefix of the unit-trend regressors (never reported in the tidy output).
TREND_PREFIX = "trend:"


@dataclass(frozen=True)
class OLSResult:
    """Fit of :func:`ols_fe`. Arrays follow ``names``; ``y_tilde``/``x_tilde`` are residualised on the FE."""

    names: list[str]
    coef: np.ndarray
    vcov: np.ndarray
    df_t: int
    n_obs: int
    n_clusters: int | None
    k_ssc: int
    vcov_label: str
    y_tilde: np.ndarray
    x_tilde: np.ndarray
    residuals: np.ndarray
    clusters: np.ndarray | None
    dropped: list[str] = field(default_factory=list)

    @property
    def std_error(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov))


def fe_dummies(fe_codes: list[np.ndarray]) -> np.ndarray:
    """Dense dummy matrix for the fixed effects (all levels of each; the projection handles the redundancy)."""
    n = len(fe_codes[0]) if fe_codes else 0
    blocks = []
    for codes in fe_codes:
        block = np.zeros((n, int(codes.max()) + 1))
        block[np.arange(n), codes] = 1.0
        blocks.append(block)
    return np.hstack(blocks) if blocks else np.ones((n, 1))


def residualise(matrix: np.ndarray, dummies: np.ndarray) -> np.ndarray:
    """M_D · matrix: residuals of a least-squares projection on the dummy columns (minimum-norm, rank-safe)."""
    coef, *_ = np.linalg.lstsq(dummies, matrix, rcond=None)
    return matrix - dummies @ coef


def _nested_levels(codes: np.ndarray, clusters: np.ndarray) -> int:
    """Levels − 1 of a fixed effect if each of its levels lies inside one cluster (fixest's 'nested'), else 0."""
    codes = np.asarray(codes, dtype=np.int64)
    _, clusters = np.unique(np.asarray(clusters), return_inverse=True)
    n_levels = len(np.unique(codes))
    # nested <=> as many distinct (level, cluster) pairs as levels
    n_pairs = len(np.unique(codes * (int(clusters.max()) + 1) + clusters.astype(np.int64)))
    return n_levels - 1 if n_pairs == n_levels else 0


def bartlett_default_bandwidth(n_periods: int) -> int:
    """⌊4 (T/100)^{2/9}⌋, the rule of thumb linearmodels uses for the Bartlett kernel."""
    return int(np.floor(4 * (n_periods / 100) ** (2 / 9)))


def ols_fe(y: np.ndarray, X: np.ndarray, names: list[str], fe_codes: list[np.ndarray] | None = None,
           clusters: np.ndarray | None = None, vcov: str = "CRV1", time_codes: np.ndarray | None = None,
           bandwidth: int | None = None) -> OLSResult:
    """OLS of ``y`` on ``X`` with fixed effects, by FWL; see the module docstring for the covariances.

    ``fe_codes``: one integer code array (0..levels−1) per fixed effect; none means an intercept only.
    ``clusters``: integer codes for CRV1. ``time_codes``: integer period codes for Driscoll–Kraay.
    Regressors that are collinear with the fixed effects or with earlier regressors are dropped (like fixest) and
    listed in ``dropped``. Rows must already be complete (no NaN).
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float).reshape(len(y), -1)
    fe_codes = list(fe_codes or [])
    n_obs = len(y)
    dummies = fe_dummies(fe_codes) if fe_codes else np.ones((n_obs, 1))
    rank_d = int(np.linalg.matrix_rank(dummies))
    y_t = residualise(y[:, None], dummies)[:, 0]
    x_t = residualise(X, dummies)
    # Drop regressors whose residualised column is (numerically) spanned by the FE and earlier regressors.
    keep: list[int] = []
    dropped: list[str] = []
    for j in range(x_t.shape[1]):
        col = x_t[:, j]
        scale = max(np.linalg.norm(X[:, j]), 1.0)
        if keep:
            resid = col - x_t[:, keep] @ np.linalg.lstsq(x_t[:, keep], col, rcond=None)[0]
        else:
            resid = col
        if np.linalg.norm(resid) <= _COLLINEAR_TOL * scale * np.sqrt(n_obs):
            dropped.append(names[j])
        else:
            keep.append(j)
    names = [names[j] for j in keep]
    x_t = x_t[:, keep]
    p = x_t.shape[1]
    if p == 0:
        raise ValueError(f"every regressor is collinear with the fixed effects: {dropped}")
    xtx_inv = np.linalg.inv(x_t.T @ x_t)
    coef = xtx_inv @ (x_t.T @ y_t)
    resid = y_t - x_t @ coef
    k_full = p + rank_d
    scores = x_t * resid[:, None]
    n_clusters = None
    if vcov == "CRV1":
        if clusters is None:
            raise ValueError("CRV1 needs cluster codes")
        nested = sum(_nested_levels(codes, clusters) for codes in fe_codes)
        k_ssc = k_full - nested
        groups, inverse = np.unique(clusters, return_inverse=True)
        n_clusters = len(groups)
        if n_clusters < 2:
            raise ValueError("CRV1 needs at least two clusters")
        summed = np.zeros((n_clusters, p))
        np.add.at(summed, inverse, scores)
        meat = summed.T @ summed
        factor = n_clusters / (n_clusters - 1) * (n_obs - 1) / (n_obs - k_ssc)
        df_t = n_clusters - 1
        label = "CRV1"
    elif vcov == "hetero":
        k_ssc = k_full
        meat = scores.T @ scores
        factor = n_obs / (n_obs - k_ssc)
        df_t = n_obs - k_ssc
        label = "hetero (HC1)"
    elif vcov == "iid":
        k_ssc = k_full
        xtx = x_t.T @ x_t
        meat = xtx * float(resid @ resid) / (n_obs - k_ssc)
        factor = 1.0
        df_t = n_obs - k_ssc
        label = "iid"
    elif vcov == "driscoll_kraay":
        if time_codes is None:
            raise ValueError("Driscoll–Kraay needs period codes")
        k_ssc = k_full
        periods, inverse = np.unique(time_codes, return_inverse=True)
        n_periods = len(periods)
        lag = bartlett_default_bandwidth(n_periods) if bandwidth is None else int(bandwidth)
        if lag >= n_periods:
            raise ValueError(f"Driscoll–Kraay bandwidth {lag} must be below the number of periods {n_periods}")
        xi = np.zeros((n_periods, p))
        np.add.at(xi, inverse, scores)  # periods sorted, so row t is period t
        meat = xi.T @ xi
        for j in range(1, lag + 1):
            gamma = xi[j:].T @ xi[:-j]
            meat += (1 - j / (lag + 1)) * (gamma + gamma.T)
        factor = n_obs / (n_obs - k_ssc)
        df_t = n_periods - 1
        label = f"Driscoll-Kraay (Bartlett, bandwidth {lag})"
        if n_periods < DK_MIN_PERIODS:
            # Its consistency is in T (the kernel averages over periods); with T < 10 the covariance rests on a
            # handful of period sums and the t(T - 1) reference is only a rough guide (Driscoll & Kraay 1998).
            warnings.warn(f"Driscoll-Kraay with T = {n_periods} < {DK_MIN_PERIODS} periods: the covariance is "
                          "estimated from so few period sums that its tests are unreliable; prefer CRV1 by unit",
                          stacklevel=2)
            label += f", T = {n_periods} < {DK_MIN_PERIODS}: unreliable"
    else:
        raise ValueError(f"unknown vcov {vcov!r}")
    cov = factor * xtx_inv @ meat @ xtx_inv
    return OLSResult(names=names, coef=coef, vcov=cov, df_t=int(df_t), n_obs=n_obs, n_clusters=n_clusters,
                     k_ssc=int(k_ssc), vcov_label=label, y_tilde=y_t, x_tilde=x_t, residuals=resid,
                     clusters=clusters, dropped=dropped)


def tidy_rows(terms: list[str], estimate: np.ndarray, std_error: np.ndarray, df_t: int, n_obs: int,
              method: str, **extra) -> pd.DataFrame:
    """The contract's tidy frame: term, estimate, std_error, statistic, p_value, ci_low, ci_high, n_obs, method."""
    estimate = np.asarray(estimate, dtype=float)
    std_error = np.asarray(std_error, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = estimate / std_error
    p_value = 2 * t_sf(np.abs(statistic), df_t)
    half = t_ppf(0.5 + CONFIDENCE / 2, df_t) * std_error
    frame = pd.DataFrame({
        "term": terms, "estimate": estimate, "std_error": std_error, "statistic": statistic, "p_value": p_value,
        "ci_low": estimate - half, "ci_high": estimate + half, "n_obs": int(n_obs), "method": method,
        "df_t": int(df_t),
    })
    for key, value in extra.items():
        frame[key] = value
    return frame


def result_table(fit: OLSResult, method_prefix: str, report: list[str] | None = None) -> pd.DataFrame:
    """Tidy rows for the regressors in ``report`` (default all) of an :class:`OLSResult`."""
    index = [i for i, name in enumerate(fit.names)
             if (report is None or name in report) and not name.startswith(TREND_PREFIX)]
    se = fit.std_error
    method = f"{method_prefix}; {method_string(fit)}"
    n_trends = sum(name.startswith(TREND_PREFIX) for name in fit.names)
    if n_trends:
        method += (f"; unit-specific linear trends ({n_trends} slopes estimated, "
                   f"{sum(n.startswith(TREND_PREFIX) for n in fit.dropped)} collinear with the period effects)")
    dropped = [name for name in fit.dropped if not name.startswith(TREND_PREFIX)]
    if dropped:
        method += f"; collinear with the fixed effects or earlier regressors and dropped: {', '.join(dropped)}"
    return tidy_rows([fit.names[i] for i in index], fit.coef[index], se[index], fit.df_t, fit.n_obs, method,
                     n_clusters=fit.n_clusters if fit.n_clusters is not None else np.nan,
                     dropped_collinear=";".join(dropped))


def method_string(fit: OLSResult) -> str:
    """Human-readable inference description for the ``method`` column."""
    if fit.vcov_label == "CRV1":
        return (f"CRV1 by cluster (fixest small-sample: G/(G-1)*(N-1)/(N-K), G={fit.n_clusters}, "
                f"K={fit.k_ssc}), t({fit.df_t})")
    return f"{fit.vcov_label}, t({fit.df_t})"


def linear_combination(fit: OLSResult, weights: dict[str, float]) -> tuple[float, float]:
    """(a'β, √(a'Va)) for regressor weights ``weights`` (names absent from the fit are an error)."""
    a = np.zeros(len(fit.names))
    for name, w in weights.items():
        a[fit.names.index(name)] = w
    return float(a @ fit.coef), float(np.sqrt(a @ fit.vcov @ a))


# --------------------------------------------------------------------------------------------------------------
# Building designs from a spec


def fe_codes_for(df: pd.DataFrame, fixed_effects: list[str]) -> list[np.ndarray]:
    """Integer codes (sorted levels, so deterministic) for each fixed effect; ``a^b`` interacts columns."""
    codes = []
    for fe in fixed_effects:
        parts = fe.split("^")
        key = df[parts[0]].astype(str)
        for part in parts[1:]:
            key = key + "^" + df[part].astype(str)
        codes.append(pd.factorize(key, sort=True)[0])
    return codes


def control_matrix(df: pd.DataFrame, controls: list[str]) -> tuple[np.ndarray, list[str]]:
    """Control columns (``log(x)`` applied) and their names; nonpositive values under log are NaN here and
    rejected by :func:`check_log_domain` before estimation."""
    cols, names = [], []
    for control in controls:
        column, transform = control_column(control)
        values = df[column].to_numpy(dtype=float)
        if transform == "log":
            with np.errstate(divide="ignore", invalid="ignore"):
                values = np.where(values > 0, np.log(values), np.nan)
        cols.append(values)
        names.append(control_name(control))
    return (np.column_stack(cols) if cols else np.empty((len(df), 0))), names


def unit_trend_matrix(df: pd.DataFrame, unit: str, time: str) -> tuple[np.ndarray, list[str]]:
    """Unit-specific linear trends: column i is 1[unit = i] · (t − t̄), t̄ the mean of ``time`` over ``df``'s rows
    (centring only changes the unit effects, not the other coefficients); names ``trend:<unit>=<id>``, units in
    sorted order. ``df`` must hold only the rows used (so t̄ is their mean)."""
    levels = sorted(df[unit].dropna().unique().tolist())
    t = df[time].to_numpy(dtype=float)
    centred = t - t.mean()
    cols = [np.where(df[unit].to_numpy() == level, centred, 0.0) for level in levels]
    return np.column_stack(cols), [f"{TREND_PREFIX}{unit}={level}" for level in levels]


def fit_design(df: pd.DataFrame, spec: dict, regressors: np.ndarray, names: list[str]) -> tuple[OLSResult, pd.DataFrame]:
    """Add controls (and unit trends when ``trends: unit_linear``), drop incomplete rows, and run :func:`ols_fe`
    with the spec's FE, cluster and vcov.

    Returns the fit and the rows used (for the inference hooks).
    """
    controls, control_names = control_matrix(df, spec["controls"])
    X = np.column_stack([regressors, controls]) if controls.size else regressors
    all_names = list(names) + control_names
    y = df[spec["outcome"]].to_numpy(dtype=float)
    fe_cols = sorted({part for fe in spec["fixed_effects"] for part in fe.split("^")})
    complete = np.isfinite(y) & np.isfinite(X).all(axis=1)
    trend_cols = [spec["unit"]] if spec.get("trends") == "unit_linear" else []
    for column in fe_cols + [spec["cluster"], spec["time"]] + trend_cols:
        complete &= df[column].notna().to_numpy()
    used = df.loc[complete]
    if spec.get("trends") == "unit_linear" and len(used):
        # Built on the complete rows only, after the treatment and controls, so that the one slope that is
        # collinear with the period effects is the one dropped (ols_fe drops later collinear columns).
        trends, trend_names = unit_trend_matrix(used, spec["unit"], spec["time"])
        X = np.column_stack([X[complete], trends])
        y = y[complete]
        all_names += trend_names
        complete = np.ones(len(used), dtype=bool)
    if len(used) == 0:
        raise ValueError(f"spec {spec.get('id')}: no complete rows for {spec['outcome']} and its regressors")
    inference = spec["inference"]
    try:
        fit = _ols_fe_for_spec(y, X, complete, all_names, used, spec, inference)
    except ValueError as exc:
        if not str(exc).startswith("every regressor is collinear"):
            raise
        files = spec.get("spec_files") or [spec.get("id") or "spec"]
        raise DataError(files[0], f"requested term(s) {', '.join(names)} are collinear with the fixed effects "
                        f"{spec['fixed_effects']} and cannot be estimated ({exc})", key="treatment") from None
    lost = [name for name in names if name in fit.dropped]
    if lost:
        key = "event_window" if any(name.startswith("e=") for name in lost) else (
            "heterogeneity" if spec.get("heterogeneity") else "treatment")
        files = spec.get("spec_files") or [spec.get("id") or "spec"]
        raise DataError(files[0], f"requested term(s) {', '.join(lost)} are collinear with the fixed effects "
                        f"{spec['fixed_effects']} or the other regressors and cannot be estimated (a dropped treatment "
                        "term is an error, not a missing row)", key=key)
    return fit, used


def _ols_fe_for_spec(y, X, complete, all_names, used, spec, inference) -> OLSResult:
    """:func:`ols_fe` with the spec's fixed effects, clusters, covariance and bandwidth on the complete rows."""
    return ols_fe(
        y[complete], X[complete], all_names,
        fe_codes=fe_codes_for(used, spec["fixed_effects"]),
        clusters=pd.factorize(used[spec["cluster"]], sort=True)[0],
        vcov=inference["vcov"],
        time_codes=pd.factorize(used[spec["time"]], sort=True)[0],
        bandwidth=inference["bandwidth"],
    )


def heterogeneity_levels(df: pd.DataFrame, column: str) -> list:
    """Sorted levels of a heterogeneity column."""
    return sorted(df[column].dropna().unique().tolist())


def shock_period(df: pd.DataFrame, spec: dict) -> int:
    """First period with ``treatment == 1`` for a common-timing post indicator (same for every unit)."""
    treat, time = spec["treatment"], spec["time"]
    by_time = df.groupby(time)[treat].agg(["min", "max"])
    if (by_time["min"] != by_time["max"]).any():
        raise ValueError(f"{treat!r} varies across units within a period; cont_did's event-study form needs a "
                         f"common post indicator")
    post = by_time.index[by_time["max"] == 1]
    if len(post) == 0:
        raise ValueError(f"{treat!r} is never 1 in the sample")
    return int(post.min())


def event_dummies(event_time: np.ndarray, window: list[int], reference: int, scale: np.ndarray | None = None
                  ) -> tuple[np.ndarray, list[str]]:
    """Event-time dummies e=k for k in the window except the reference; times beyond the window are binned
    into the end points; NaN event time (never treated) gives zeros. ``scale`` multiplies each row (exposure)."""
    binned = np.clip(event_time, window[0], window[1])
    ks = [k for k in range(window[0], window[1] + 1) if k != reference]
    cols = [np.where(np.isnan(binned), 0.0, (binned == k).astype(float)) for k in ks]
    X = np.column_stack(cols)
    if scale is not None:
        X = X * scale[:, None]
    return X, [f"e={k}" for k in ks]


def add_att_row(table: pd.DataFrame, fit: OLSResult, method: str) -> pd.DataFrame:
    """Append ``ATT``: the equally weighted mean of the post-period coefficients e=0, e=1, … present in the fit."""
    post = [name for name in fit.names if name.startswith("e=") and int(name[2:]) >= 0]
    if not post:
        return table
    est, se = linear_combination(fit, {name: 1 / len(post) for name in post})
    row = tidy_rows(["ATT"], [est], [se], fit.df_t, fit.n_obs,
                    f"{method}; ATT = mean of e>=0 coefficients ({', '.join(post)})",
                    n_clusters=fit.n_clusters if fit.n_clusters is not None else np.nan)
    return pd.concat([table, row], ignore_index=True)


def add_honest_rows(table: pd.DataFrame, fit: OLSResult, spec: dict) -> pd.DataFrame:
    """Append Rambachan–Roth (2023) sensitivity rows when the spec sets ``inference.honest`` (event-study forms).

    The event-time coefficients ``e=k`` and their block of the covariance (the spec's ``inference.vcov``, CRV1 by
    default) go to :func:`analysis.models.honest_did.honest_did` exactly as the staggered estimators' event studies
    do; terms ``honest SD M=... average`` etc. The robust sets use normal critical values (as Rambachan and Roth),
    while this module's own intervals use t(G − 1): with 31 clusters the sets are ~4% narrower than a t-based
    version would be. Event times binned at the ends of ``event_window`` are treated as single periods, so set the
    window to cover the sample (as the shipped specs do) before reading the smoothness bounds.
    """
    honest = (spec.get("inference") or {}).get("honest")
    if not honest:
        return table
    from analysis.models.honest_did import honest_rows

    names = [name for name in fit.names if name.startswith("e=")]
    idx = [fit.names.index(name) for name in names]
    event_study = pd.DataFrame({"term": [f"ATT {name}" for name in names], "estimate": fit.coef[idx]})
    rows = honest_rows(event_study, fit.vcov[np.ix_(idx, idx)], honest, 1 - CONFIDENCE, fit.n_obs)
    return pd.concat([table, rows], ignore_index=True)


# --------------------------------------------------------------------------------------------------------------
# Estimators (contract: fit(df, spec) -> tidy DataFrame)


def _treatment_design(df: pd.DataFrame, spec: dict, base: np.ndarray, base_name: str) -> tuple[np.ndarray, list[str]]:
    """The regressor of interest, or its interaction with each level of ``heterogeneity``."""
    het = spec["heterogeneity"]
    if het is None:
        return base[:, None], [base_name]
    cols, names = [], []
    for level in heterogeneity_levels(df, het):
        cols.append(base * (df[het] == level).to_numpy(dtype=float))
        names.append(f"{base_name}:{het}={level}")
    return np.column_stack(cols), names


def add_level_clusters(table: pd.DataFrame, used: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """With ``heterogeneity``: column ``n_clusters_level`` = the number of clusters (provinces) among the rows used
    that have the term's level, i.e. how many clusters identify that interaction (NaN for other terms). A
    coefficient identified from 5–7 clusters has unreliable CRV1 inference even when G is 31 (MacKinnon & Webb
    2017, JAE 32(2)), so tables print this count."""
    het = spec["heterogeneity"]
    if het is None:
        return table
    counts = used.groupby(het)[spec["cluster"]].nunique()
    suffix = {f":{het}={level}": int(n) for level, n in counts.items()}
    table["n_clusters_level"] = [next((float(n) for end, n in suffix.items() if term.endswith(end)), np.nan)
                                 for term in table["term"]]
    return table


def feols(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """OLS of ``outcome`` on ``treatment`` (per ``heterogeneity`` level if set) and ``controls`` with
    ``fixed_effects``; reports every non-FE regressor. Inference: ``inference.vcov`` (see module docstring)."""
    base = df[spec["treatment"]].to_numpy(dtype=float)
    X, names = _treatment_design(df, spec, base, spec["treatment"])
    fit, used = fit_design(df, spec, X, names)
    table = add_level_clusters(result_table(fit, f"feols FE[{', '.join(spec['fixed_effects'])}]"), used, spec)
    return add_resampling_pvalues(table, fit, used, spec, names, feols, data=df)


def cont_did(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Continuous-exposure difference in differences: y_it = β · exposure_i × post_t + FE + controls + ε.

    ``aggregate: dynamic`` gives the event-study form: exposure_i × 1[t − t* = k] for event times k in
    ``event_window`` except ``reference_period`` (t* = first period of the common post indicator ``treatment``;
    times outside the window binned into the end points), reported as terms ``e=k`` plus ``ATT`` (mean of e ≥ 0).
    β is the effect per unit of exposure (per standard deviation for the ``*_z`` exposures).
    """
    exposure = df[spec["exposure"]].to_numpy(dtype=float)
    if spec["aggregate"] == "dynamic":
        t_star = shock_period(df, spec)
        event_time = (df[spec["time"]].to_numpy(dtype=float) - t_star)
        X, names = event_dummies(event_time, spec["event_window"], spec["reference_period"], scale=exposure)
        fit, used = fit_design(df, spec, X, names)
        method = (f"cont_did event study ({spec['exposure']} x 1[{spec['time']}-{t_star}=k]) "
                  f"FE[{', '.join(spec['fixed_effects'])}]")
        table = result_table(fit, method)
        table = add_att_row(table, fit, f"{method}; {method_string(fit)}")
        table = add_resampling_pvalues(table, fit, used, spec, [n for n in fit.names if n.startswith("e=")], cont_did,
                                       data=df)
        return add_honest_rows(table, fit, spec)
    base = exposure * df[spec["treatment"]].to_numpy(dtype=float)
    X, names = _treatment_design(df, spec, base, f"{spec['exposure']}:{spec['treatment']}")
    fit, used = fit_design(df, spec, X, names)
    table = result_table(fit, f"cont_did ({spec['exposure']} x {spec['treatment']}) FE[{', '.join(spec['fixed_effects'])}]")
    table = add_level_clusters(table, used, spec)
    return add_resampling_pvalues(table, fit, used, spec, names, cont_did, data=df)


def cohort_event_time(df: pd.DataFrame, spec: dict) -> np.ndarray:
    """time − cohort for units with a positive cohort; NaN for never treated (cohort 0 or missing)."""
    cohort = df[spec["cohort"]].to_numpy(dtype=float)
    time = df[spec["time"]].to_numpy(dtype=float)
    treated = np.isfinite(cohort) & (cohort > 0)
    return np.where(treated, time - np.where(treated, cohort, 0.0), np.nan)


def event_study(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Two-way fixed-effects event study on first-treatment cohorts: y_it = Σ_k β_k 1[t − g_i = k] + FE + ε.

    Never-treated units (cohort 0/missing) have all dummies zero; ``reference_period`` (default −1) is omitted;
    event times beyond ``event_window`` are binned into its end points. Terms ``e=k`` and ``ATT`` (equally
    weighted mean of e ≥ 0). With staggered timing and heterogeneous effects these TWFE weights can be
    negative (Goodman-Bacon 2021; Sun & Abraham 2021) — compare with att_gt/sunab/did_imputation.
    """
    event_time = cohort_event_time(df, spec)
    X, names = event_dummies(event_time, spec["event_window"], spec["reference_period"])
    fit, used = fit_design(df, spec, X, names)
    method = f"TWFE event study (cohort {spec['cohort']}) FE[{', '.join(spec['fixed_effects'])}]"
    table = result_table(fit, method)
    table = add_att_row(table, fit, f"{method}; {method_string(fit)}")
    table = add_resampling_pvalues(table, fit, used, spec, [n for n in fit.names if n.startswith("e=")], event_study,
                                   data=df)
    return add_honest_rows(table, fit, spec)


# --------------------------------------------------------------------------------------------------------------
# Resampling inference hooks (other module; imported only when asked for)


def _inference_module():
    try:
        from analysis.models import inference
    except ImportError as exc:  # the module is written separately; say what is missing
        raise NotImplementedError(
            "the spec asks for wild bootstrap / randomization inference, but analysis.models.inference is not "
            f"available ({exc})") from exc
    return inference


def add_resampling_pvalues(table: pd.DataFrame, fit: OLSResult, used: pd.DataFrame, spec: dict,
                           terms: list[str], estimator=None, data: pd.DataFrame | None = None) -> pd.DataFrame:
    """Add ``p_value_wild`` and ``p_value_ri`` when the spec's inference asks for them.

    Wild cluster bootstrap (restricted, WCR) for each of ``terms``: ``inference.wild_bootstrap_pvalue`` on the
    FE-residualised outcome and regressors (FWL) with ``n_absorbed`` = the non-nested fixed-effect parameters, so
    its t uses the same fixest factor as our CRV1, and with the fixed-effect codes, so that effects not nested in
    the clusters (year effects with province clusters; the intercept when there are no effects) are annihilated
    inside every bootstrap refit, as in the dummy-variable bootstrap (wildboottest via pyfixest).
    Randomization inference for the single treatment regressor of feols / static cont_did with two-way
    (unit, time) effects: ``inference.ri_pvalue`` permutes the treatment path (cont_did: exposure x post, i.e.
    the exposure) across units and re-estimates the TWFE coefficient. The paths are taken from ``data`` (the whole
    sample, rows with a missing outcome included; ``used`` if not given), so a unit observed in fewer years (Tibet
    before 2017) can receive, and pass on, a complete treatment path: the statistic is computed on the rows with an
    observed outcome, the permutation is over the full sample's paths.
    """
    inference = spec["inference"]
    wild, ri = inference.get("wild_bootstrap"), inference.get("ri")
    if wild is None and ri is None:
        return table
    module = _inference_module()
    terms = [t for t in terms if t in fit.names]
    if wild is not None:
        n_absorbed = fit.k_ssc - len(fit.names)
        # The effects that were partialled out (ols_fe: an intercept when the spec lists none).
        absorbed = fe_codes_for(used, spec["fixed_effects"]) or [np.zeros(len(used), dtype=np.int64)]
        pvals = {}
        for term in terms:
            result = module.wild_bootstrap_pvalue(
                fit.y_tilde, fit.x_tilde, fit.clusters, fit.names.index(term), reps=wild["reps"],
                weights=wild["weights"], seed=spec["seed"], n_absorbed=n_absorbed, fixed_effects=absorbed)
            pvals[term] = float(result["p_value"] if isinstance(result, dict) else result)
        table["p_value_wild"] = table["term"].map(pvals).astype(float)
        table["method"] = table["method"].where(
            ~table["term"].isin(list(pvals)),
            table["method"] + f"; wild cluster bootstrap WCR ({wild['weights']}, {wild['reps']} reps, "
                              f"seed {spec['seed']})")
    if ri is not None:
        single = len(terms) == 1 and not any(t.startswith("e=") for t in terms)
        if not single or sorted(spec["fixed_effects"]) != sorted([spec["unit"], spec["time"]]):
            raise NotImplementedError(
                "randomization inference is wired for one treatment regressor with unit and time effects "
                f"(feols, static cont_did without heterogeneity); spec {spec.get('id')!r} has terms {terms} and "
                f"fixed effects {spec['fixed_effects']}")
        (term,) = terms
        sample = used if data is None else data
        frame = sample[[spec["unit"], spec["time"], spec["outcome"]]].copy()
        if spec["estimator"] == "cont_did":
            frame["ri_treatment"] = (sample[spec["exposure"]].to_numpy(float)
                                     * sample[spec["treatment"]].to_numpy(float))
        else:
            frame["ri_treatment"] = sample[spec["treatment"]].to_numpy(float)
        controls, control_names = control_matrix(sample, spec["controls"])
        for j, name in enumerate(control_names):
            frame[f"ri_control_{name}"] = controls[:, j]
        result = module.ri_pvalue(frame, spec["unit"], spec["time"], spec["outcome"], "ri_treatment",
                                  reps=ri["reps"], seed=spec["seed"], fe="twoway",
                                  controls=[f"ri_control_{n}" for n in control_names])
        table["p_value_ri"] = np.where(table["term"] == term, float(result["p_value"]), np.nan)
        table["method"] = table["method"].where(
            table["term"] != term,
            table["method"] + f"; randomization inference ({ri['reps']} permutations of units, seed {spec['seed']})")
    return table
