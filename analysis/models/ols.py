"""Ordinary least squares with fixed effects and cluster-robust, heteroskedasticity-robust, iid or Driscoll–Kraay
covariances: :func:`ols_fe`, the numerical core of :mod:`analysis.models.regression` and :mod:`analysis.models.panel`.

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
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

#: A regressor whose FE-residualised column has norm at most this x max(‖x‖, 1) x √N is collinear and dropped.
COLLINEAR_TOL = 1e-9
#: Driscoll–Kraay is consistent as the number of periods grows; below this many it warns and says so in ``method``.
DK_MIN_PERIODS = 10


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


def nested_levels(codes: np.ndarray, clusters: np.ndarray) -> int:
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
        if np.linalg.norm(resid) <= COLLINEAR_TOL * scale * np.sqrt(n_obs):
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
        nested = sum(nested_levels(codes, clusters) for codes in fe_codes)
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
