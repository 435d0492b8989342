"""Rambachan & Roth (2023, REStud 90(5)) "Honest DiD" sensitivity sets for event studies.

Used by the staggered estimators' event studies (:mod:`analysis.models.att_gt`, :mod:`analysis.models.sunab`) and
the regression event studies (:func:`analysis.models.regression.add_honest_rows`). Two restrictions on the
post-treatment violation of parallel trends delta, each with the confidence set Rambachan and Roth recommend and their R package HonestDiD
(0.2.8, github.com/asheshrambachan/HonestDiD) computes by default:

* Delta^SD(M), smoothness: the optimal fixed-length confidence interval (FLCI; Armstrong & Kolesar 2018, RR
  Section 4.1; HonestDiD ``findOptimalFLCI``), found as the convex programme it is (:func:`_flci`).
* Delta^RM(Mbar), relative magnitudes: the conditional / conditional-least-favourable hybrid test of Andrews,
  Roth & Pakes (2023, "Inference for linear conditional moment inequalities", REStud 90(6); "ARP"), inverted over
  theta (RR Section 3.2; HonestDiD ``computeConditionalCS_DeltaRM`` with ``hybrid_flag = "LF"``), see
  :func:`_rm_confidence_set`.

Why written here rather than called from a library: the Python ports either need cvxpy (``moderndid.didhonest``;
neither is in this environment), or do not implement the ARP sets for Delta^RM
(``diff_diff.HonestDiD`` 3.13 reports a plug-in interval for it). tests/test_models_staggered_honest.py checks
both sets against HonestDiD's own published Medicaid-expansion results and the SD sets against diff-diff's FLCI.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import special

from analysis.models.distributions import norm_cdf, norm_ppf
from analysis.models.spec_vocabulary import DEFAULT_ALPHA
from analysis.models.staggered_panel import RESULT_COLUMNS, result_frame  # the estimators' result contract

#: Default significance level for the robust sets: :data:`analysis.models.spec_vocabulary.DEFAULT_ALPHA` (imported above).

#: Size of the first-stage least-favourable test of the hybrid as a share of alpha: kappa = alpha / 10, the
#: value Andrews, Roth & Pakes and HonestDiD (``hybrid_kappa = alpha/10``) use.
HYBRID_KAPPA_SHARE = 0.1

#: Normal draws for the least-favourable critical value (the 1 - kappa quantile of the LP statistic under the
#: least-favourable null) and their seed. HonestDiD draws 1,000 (seed 0); its 0.995 quantile then has a Monte
#: Carlo standard error of about 0.15 on the z scale, so we take 100,000 (about 0.015), at a cost of a few ms.
LF_DRAWS = 100_000
LF_SEED = 0

#: Points of the theta grid on which the ARP test is first evaluated (HonestDiD uses 1,000 and reports grid
#: points, so its bounds sit up to one grid step inside the set's ends); each end is then refined.
THETA_GRID_POINTS = 1001
#: Points per end and round when the ends of the accepted set are refined (six rounds: 64^6 ~ 7e10).
REFINE_POINTS = 65

#: Largest number of candidate dual bases enumerated for the ARP statistic (C(2P, P) for P post periods:
#: 184,756 at P = 10).
MAX_DUAL_BASES = 200_000


# --------------------------------------------------------------------------------------------------------------
# Event-study input
# --------------------------------------------------------------------------------------------------------------


def _event_study_arrays(event_study: pd.DataFrame, vcov: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(event_times, beta, sigma) sorted by event time, the reference e = -1 dropped; consecutive times checked."""
    terms = event_study["term"].astype(str)
    if not terms.str.match(r"^ATT e=-?\d+$").all():
        raise ValueError("event_study terms must all be 'ATT e=k'")
    event_times = terms.str.split("=").str[1].astype(int).to_numpy()
    beta = event_study["estimate"].to_numpy(dtype=float)
    sigma = np.asarray(vcov, dtype=float)
    keep = event_times != -1
    event_times, beta, sigma = event_times[keep], beta[keep], sigma[np.ix_(keep, keep)]
    order = np.argsort(event_times)
    event_times, beta, sigma = event_times[order], beta[order], sigma[np.ix_(order, order)]
    full = np.arange(event_times.min(), event_times.max() + 1)
    if not np.array_equal(np.setdiff1d(full, [-1]), event_times) or event_times.min() > -2 or event_times.max() < 0:
        raise ValueError("honest_did needs consecutive event times with at least e=-2 and e=0")
    return event_times, beta, sigma


def _target_vector(event_times: np.ndarray, target: str | int) -> np.ndarray:
    """l over the post periods (e >= 0): the indicator of e = ``target`` or, for ``"average"``, 1/P each."""
    post = event_times >= 0
    if target == "average":
        return np.full(post.sum(), 1.0 / post.sum())
    l_post = (event_times[post] == int(target)).astype(float)
    if not l_post.any():
        raise ValueError(f"target event time {target} not in the event study")
    return l_post


# --------------------------------------------------------------------------------------------------------------
# Delta^SD(M): the optimal fixed-length confidence interval
# --------------------------------------------------------------------------------------------------------------


def _folded_normal_cv(bias_over_sd: float, alpha: float) -> float:
    """1 - alpha quantile of |N(b, 1)|: the c solving Phi(c - b) - Phi(-c - b) = 1 - alpha.

    (HonestDiD takes it from 10^6 simulated draws, so its intervals differ from these exact ones by up to ~0.1% of
    the half-length.)
    """
    from scipy import optimize  # here, not at module level: only the HonestDiD bounds need it
    b = abs(bias_over_sd)
    if b > 10:  # the lower tail is negligible
        return float(b + norm_ppf(1 - alpha))
    f = lambda c: norm_cdf(c - b) - norm_cdf(-c - b) - (1 - alpha)
    return float(optimize.brentq(f, 0.0, b + 10.0, xtol=1e-14, rtol=1e-15))


def _folded_normal_cv_slope(bias_over_sd: float, cv: float) -> float:
    """d cv_alpha(b) / db, by implicit differentiation of Phi(c - b) - Phi(-c - b) = 1 - alpha:
    (phi(c - b) - phi(c + b)) / (phi(c - b) + phi(c + b)), in [0, 1)."""
    b = abs(bias_over_sd)
    # Ratio of densities written as tanh(c b): phi(c + b) / phi(c - b) = exp(-2 c b).
    return float(math.tanh(cv * b))


def _second_difference_loadings(event_times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, slope): every path delta with delta_{-1} = 0 on the consecutive event times (reference -1 left out) is
    delta = d * slope + K s, where d = delta_0 and s are the second differences
    s_j = delta_{j+1} - 2 delta_j + delta_{j-1} at the interior event times j of the full path.

    Forward from the reference, delta_e = d (e + 1) + sum_{0 <= j < e} (e - j) s_j (e >= 0); backward,
    delta_e = d (e + 1) + sum_{e < j <= -1} (j - e) s_j (e <= -2). The map (d, s) -> delta is one-to-one.
    """
    full = np.arange(event_times.min(), event_times.max() + 1)
    interior = full[1:-1]
    e, j = event_times[:, None].astype(float), interior[None, :].astype(float)
    forward = (e >= 1) & (j >= 0) & (j < e)
    backward = (e <= -2) & (j <= -1) & (j > e)
    loadings = np.where(forward, e - j, 0.0) + np.where(backward, j - e, 0.0)
    return loadings, event_times + 1.0


@dataclass(frozen=True)
class _AffineFamily:
    """The affine estimators l' beta_post + w' beta_pre with zero bias on linear trends, w = w0 + N z.

    For v(z) = base + E z (E places N in the pre rows): variance v' Sigma v = z' H z + 2 g' z + c0, and
    K' v = c + D z, so the worst-case bias over Delta^SD(M) is M (sum_j |c_j + D_j z| + const) (rows of D that
    are zero, e.g. post-period second differences, only add the constant).
    """

    base: np.ndarray
    embed: np.ndarray
    hess: np.ndarray
    grad: np.ndarray
    var0: float
    c: np.ndarray
    d: np.ndarray
    const: float

    @classmethod
    def build(cls, event_times: np.ndarray, sigma: np.ndarray, l_post: np.ndarray) -> "_AffineFamily":
        pre, post = event_times < 0, event_times >= 0
        slope = event_times[pre] + 1.0
        offset = float(l_post @ (event_times[post] + 1.0))
        w0 = -slope * offset / (slope @ slope)  # zero bias on delta_e = c (e + 1): w'(e_pre + 1) + l'(e_post + 1) = 0
        null = np.linalg.svd(slope[None, :])[2][1:].T  # basis of {w: slope'w = 0}
        base = np.zeros(len(event_times))
        base[pre], base[post] = w0, l_post
        embed = np.zeros((len(event_times), null.shape[1]))
        embed[pre] = null
        loadings, _ = _second_difference_loadings(event_times)
        c, d = loadings.T @ base, loadings.T @ embed
        free = np.abs(d).sum(axis=1) > 1e-12 * max(1.0, float(np.abs(d).max(initial=0.0)))
        return cls(base=base, embed=embed, hess=embed.T @ sigma @ embed, grad=embed.T @ sigma @ base,
                   var0=float(base @ sigma @ base), c=c[free], d=d[free], const=float(np.abs(c[~free]).sum()))

    def weights(self, z: np.ndarray) -> np.ndarray:
        return self.base + self.embed @ z

    def sd(self, z: np.ndarray) -> float:
        return float(np.sqrt(max(z @ self.hess @ z + 2 * self.grad @ z + self.var0, 0.0)))

    def bias(self, z: np.ndarray) -> float:
        """Worst-case bias per unit of M."""
        return float(np.abs(self.c + self.d @ z).sum() + self.const)

    def min_variance(self) -> np.ndarray:
        """The z of the minimum-variance (M = 0) estimator: solves H z = -g."""
        return np.linalg.solve(self.hess, -self.grad) if self.hess.size else np.zeros(0)

    def min_bias(self) -> np.ndarray:
        """A z minimising sum_j |c_j + D_j z| (an LP, HiGHS): the other end of the bias-variance frontier."""
        from scipy import optimize
        k, j = self.d.shape[1], self.d.shape[0]
        if k == 0 or j == 0:
            return np.zeros(k)
        # Variables (z, u); minimise sum u subject to -u <= c + D z <= u.
        cost = np.concatenate([np.zeros(k), np.ones(j)])
        a_ub = np.block([[self.d, -np.eye(j)], [-self.d, -np.eye(j)]])
        b_ub = np.concatenate([-self.c, self.c])
        res = optimize.linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=[(None, None)] * k + [(0, None)] * j,
                               method="highs")
        return res.x[:k] if res.status == 0 else self.min_variance()


def _flci(family: _AffineFamily, m: float, alpha: float) -> tuple[np.ndarray, float]:
    """(weights v, half-length chi) of the optimal FLCI over Delta^SD(M): minimise over z
    chi(z) = sd(z) * cv_alpha(M bias(z) / sd(z)).

    Why this is a convex programme: g(b, h) = h cv_alpha(b / h) is the perspective of cv_alpha, which is convex
    in b, so g is jointly convex for h > 0; it increases in b and in h (dg/dh = cv(t) - t cv'(t) at t = b / h,
    the intercept of cv's tangent, falls from z_{1-alpha/2} to z_{1-alpha} > 0); bias(z) (a sum of absolute
    values of affine functions) and sd(z) (a norm of an affine function) are convex, so
    chi(z) = g(M bias(z), sd(z)) is convex. It is solved in epigraph form -- variables (z, u),
    minimise g(M (sum u + const), sd(z)) subject to -u <= c + D z <= u -- a smooth convex objective under linear
    constraints, by SLSQP (scipy), started from both ends of the bias-variance frontier (the minimum-variance and
    the minimum-bias estimators); at a KKT point of a convex programme it is the global minimum. HonestDiD solves
    the same problem as a 1-D derivative bisection over sd with a second-order-cone inner problem (CVXR/ECOS).
    """
    from scipy import optimize

    z_minvar = family.min_variance()
    if m == 0 or z_minvar.size == 0 or family.d.shape[0] == 0:  # no bias the weights can trade: least variance
        sd = family.sd(z_minvar)
        return family.weights(z_minvar), sd * _folded_normal_cv(m * family.bias(z_minvar) / sd, alpha)
    k, j = z_minvar.size, family.d.shape[0]
    scale = family.sd(z_minvar)  # objective in units of the smallest attainable sd, so it is O(1)

    def half_length(z: np.ndarray) -> float:
        sd = family.sd(z)
        return sd * _folded_normal_cv(m * family.bias(z) / sd, alpha)

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        z, u = x[:k], x[k:]
        var = z @ family.hess @ z + 2 * family.grad @ z + family.var0
        sd = math.sqrt(max(var, 1e-300))
        b = m * (u.sum() + family.const)
        cv = _folded_normal_cv(b / sd, alpha)
        slope = _folded_normal_cv_slope(b / sd, cv)
        d_sd = (family.hess @ z + family.grad) / sd
        grad = np.concatenate([(cv - b / sd * slope) * d_sd, np.full(j, m * slope)])
        return sd * cv / scale, grad / scale

    a_ineq = np.block([[-family.d, np.eye(j)], [family.d, np.eye(j)]])  # u - (c + Dz) >= 0, u + (c + Dz) >= 0
    constraint = {"type": "ineq", "fun": lambda x: a_ineq @ x + np.concatenate([-family.c, family.c]),
                  "jac": lambda x: a_ineq}
    best_z, best = z_minvar, half_length(z_minvar)
    for z_start in (z_minvar, family.min_bias()):
        x0 = np.concatenate([z_start, np.abs(family.c + family.d @ z_start)])
        res = optimize.minimize(objective, x0, jac=True, method="SLSQP", constraints=[constraint],
                                options={"ftol": 1e-15, "maxiter": 1000})
        value = half_length(res.x[:k])  # recomputed from z: u only bounds the bias from above
        if value < best:
            best_z, best = res.x[:k], value
    return family.weights(best_z), best


# --------------------------------------------------------------------------------------------------------------
# Delta^RM(Mbar): the ARP conditional / least-favourable hybrid confidence set
# --------------------------------------------------------------------------------------------------------------


def _rm_moments(n_pre: int, n_post: int, mbar: float, s: int, positive: bool) -> np.ndarray:
    """A with Delta^RM_{s,+/-}(Mbar) = {delta : A delta <= 0} restricted to the rows that involve post periods
    (HonestDiD ``.create_A_RM`` with ``postPeriodMomentsOnly = TRUE``); columns are the pre then the post
    coefficients (reference dropped).

    Steps are taken along the full path delta_{-T}, ..., delta_{-1} = 0 (the reference), delta_0, ...; step s
    (s = -(T - 1), ..., 0, s = 0 the step into the reference) is the largest pre-period step, with sign + or -.
    Each post step t satisfies |delta_{t+1} - delta_t| <= Mbar * (+/-)(step s).
    """
    n_cols = n_pre + n_post + 1
    steps = np.zeros((n_pre + n_post, n_cols))
    for r in range(n_pre + n_post):
        steps[r, r], steps[r, r + 1] = -1.0, 1.0
    largest = np.zeros(n_cols)
    largest[n_pre - 1 + s], largest[n_pre + s] = -1.0, 1.0
    if not positive:
        largest = -largest
    bound = np.vstack([np.tile(largest, (n_pre, 1)), np.tile(mbar * largest, (n_post, 1))])
    a = np.vstack([steps - bound, -steps - bound])
    a = a[(a * a).sum(axis=1) > 1e-10]
    a = np.delete(a, n_pre, axis=1)
    return a[np.abs(a[:, n_pre:]).sum(axis=1) > 0]


def _truncated_normal_ppf(p: float, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """p-quantile of N(0, 1) truncated to [lower, upper], accurate in either tail (log-space CDFs; the role of
    ``TruncatedNormal::norminvp`` in HonestDiD)."""
    lower, upper = np.broadcast_arrays(np.asarray(lower, float), np.asarray(upper, float))
    out = np.empty(lower.shape)
    right = lower >= 0  # both ends in the upper tail: work with survival functions 1 - Phi(x) = Phi(-x)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_s_lo, log_s_hi = special.log_ndtr(-lower[right]), special.log_ndtr(-upper[right])
        ratio = np.exp(log_s_hi - log_s_lo)
        out[right] = -special.ndtri_exp(log_s_lo + np.log1p(-p * (1.0 - ratio)))
        lo, hi = lower[~right], upper[~right]
        log_f_lo, log_f_hi = special.log_ndtr(lo), special.log_ndtr(hi)
        ratio = np.exp(log_f_lo - log_f_hi)
        out[~right] = special.ndtri_exp(log_f_hi + np.log(p + (1.0 - p) * ratio))
    return np.clip(out, lower, upper)


def _dual_vertices(sd: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Rows gamma: the vertices of {gamma >= 0, sd' gamma = 1, X' gamma = 0}, the feasible set of the dual of
    eta(y) = min_{eta, tau} eta s.t. y - X tau <= eta * sd (ARP's LP statistic), so eta(y) = max_gamma gamma' y.

    Enumerated as basic feasible solutions (supports of size rank(X) + 1); the set depends only on the moments'
    design, not on y or theta, so one enumeration serves every theta and every simulated draw.
    """
    m = len(sd)
    if x.shape[1]:
        u, sv, _ = np.linalg.svd(x, full_matrices=False)
        x = u[:, sv > 1e-10 * sv.max()]  # an orthonormal basis of X's columns: same nuisance space
    k = x.shape[1]
    norm = float(np.linalg.norm(sd))
    system = np.column_stack([sd / norm, x]).T  # (k + 1) x m, rows of comparable scale (X is orthonormal)
    n_bases = math.comb(m, k + 1)
    if n_bases > MAX_DUAL_BASES:
        raise ValueError(f"honest_did RM: {n_bases} candidate dual bases (more than {MAX_DUAL_BASES}); shorten "
                         "the event window's post periods")
    supports = np.array(list(combinations(range(m), k + 1)), dtype=int)
    blocks = np.transpose(system[:, supports], (1, 0, 2))  # (n_bases, k + 1, k + 1)
    rhs = np.zeros(k + 1)
    rhs[0] = 1.0 / norm  # (sd / |sd|)' gamma = 1 / |sd|
    cond = np.linalg.cond(blocks)
    ok = np.isfinite(cond) & (cond < 1e12)
    gamma_s = np.linalg.solve(blocks[ok], np.broadcast_to(rhs, (ok.sum(), k + 1))[..., None])[..., 0]
    feasible = (gamma_s >= -1e-12).all(axis=1)
    vertices = np.zeros((int(feasible.sum()), m))
    np.put_along_axis(vertices, supports[ok][feasible], np.clip(gamma_s[feasible], 0.0, None), axis=1)
    # Degenerate vertices come from several bases: keep one of each (compared on the scale-free gamma * |sd|).
    _, first = np.unique(np.round(vertices * norm, 11), axis=0, return_index=True)
    return vertices[np.sort(first)]


@dataclass(frozen=True)
class _ArpMoments:
    """ARP's moment inequalities E[y - a1 theta - X tau] <= 0 for one Delta^RM_{s,+/-}(Mbar) piece.

    With beta = tau + delta (tau_pre = 0) and A delta <= 0: y = A beta_hat, theta = l' tau_post, and
    tau_post = theta l / (l'l) + N tau~ (N a basis of l's orthogonal complement), so a1 = A_post l / (l'l) and
    X = A_post N (the nuisance directions). Cov(y) = A Sigma A'.
    """

    y: np.ndarray
    a1: np.ndarray
    cov: np.ndarray
    vertices: np.ndarray
    vertex_cov: np.ndarray  # G Cov(y) G'

    @classmethod
    def build(cls, a: np.ndarray, beta: np.ndarray, sigma: np.ndarray, n_pre: int, l_post: np.ndarray
              ) -> "_ArpMoments":
        a_post = a[:, n_pre:]
        null = np.linalg.svd(l_post[None, :])[2][1:].T
        cov = a @ sigma @ a.T
        vertices = _dual_vertices(np.sqrt(np.diag(cov)), a_post @ null)
        return cls(y=a @ beta, a1=a_post @ l_post / (l_post @ l_post), cov=cov, vertices=vertices,
                   vertex_cov=vertices @ cov @ vertices.T)

    def least_favorable_cv(self, draws_t: np.ndarray, kappa: float) -> float:
        """1 - kappa quantile of eta(xi), xi ~ N(0, Cov(y)) (the least-favourable null y = 0; ARP Section 5.2),
        from n standard-normal m-vectors given as the columns of ``draws_t`` (m x n, so that the maximum over
        vertices runs down contiguous rows), mapped by the symmetric square root of Cov(y) as
        ``mvtnorm::rmvnorm(method = "eigen")`` in HonestDiD; quantile type 7."""
        values, vectors = np.linalg.eigh(self.cov)
        root = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
        loadings = self.vertices @ root  # gamma' xi = (G R) z for xi = R z (R symmetric)
        eta = np.concatenate([(loadings @ draws_t[:, i:i + 20_000]).max(axis=0)
                              for i in range(0, draws_t.shape[1], 20_000)])
        return float(np.quantile(eta, 1.0 - kappa))

    def accepts(self, theta: np.ndarray, alpha: float, kappa: float, lf_cv: float) -> np.ndarray:
        """ARP's hybrid test of H0: theta, for each theta (vectorised): reject if eta > c_LF; otherwise the
        conditional test of size (alpha - kappa) / (1 - kappa) given the optimal dual vertex gamma* and
        eta <= c_LF. Conditional on gamma* and S = y - b eta (b = Cov gamma* / gamma*' Cov gamma*), eta is
        N(gamma*' mu, gamma*' Cov gamma*) truncated to [V_lo, min(V_up, c_LF)], where gamma* stays optimal:
        eta (1 - gamma' b) >= gamma' S for every vertex gamma. Rejects when eta / sigma_B exceeds
        max(0, the 1 - size quantile of that truncated normal) (HonestDiD ``.lp_conditional_test_fn``).
        """
        y = self.y[:, None] - self.a1[:, None] * np.asarray(theta, float)[None, :]
        values = self.vertices @ y  # (n_vertices, n_theta)
        best = values.argmax(axis=0)
        cols = np.arange(values.shape[1])
        eta = values[best, cols]
        var_b = self.vertex_cov[best, best]
        rho = 1.0 - self.vertex_cov[:, best] / var_b  # 1 - gamma' b for every vertex
        numer = values - (1.0 - rho) * eta  # gamma' S
        tol = 1e-10
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = numer / rho
            v_lo = np.where(rho > tol, ratio, -np.inf).max(axis=0)
            v_up = np.where(rho < -tol, ratio, np.inf).min(axis=0)
        sd_b = np.sqrt(np.clip(var_b, 0.0, None))
        size = (alpha - kappa) / (1.0 - kappa)
        degenerate = var_b < np.finfo(float).eps
        safe_sd = np.where(degenerate, 1.0, sd_b)
        z_lo, z_up = v_lo / safe_sd, np.minimum(v_up, lf_cv) / safe_sd
        stat = eta / safe_sd
        inside = (z_lo <= stat) & (stat <= z_up)
        with np.errstate(invalid="ignore"):
            cval = np.maximum(0.0, _truncated_normal_ppf(1.0 - size, np.where(inside, z_lo, -1.0),
                                                         np.where(inside, z_up, 1.0)))
        reject = np.where(eta > lf_cv, True,
                          np.where(degenerate, eta > 0, inside & (stat > cval)))
        return ~reject


def _rm_pieces(beta: np.ndarray, sigma: np.ndarray, n_pre: int, l_post: np.ndarray, mbar: float
               ) -> list[_ArpMoments]:
    """The 2T pieces Delta^RM_{s,+/-}(Mbar) (s = -(T-1), ..., 0); Delta^RM is their union."""
    n_post = len(l_post)
    return [_ArpMoments.build(_rm_moments(n_pre, n_post, mbar, s, positive), beta, sigma, n_pre, l_post)
            for s in range(-(n_pre - 1), 1) for positive in (True, False)]


def _rm_confidence_set(beta: np.ndarray, sigma: np.ndarray, n_pre: int, l_post: np.ndarray, mbar: float,
                       alpha: float, normal_draws: np.ndarray) -> tuple[float, float]:
    """(lower, upper) of the C-LF confidence set for theta = l' tau_post under Delta^RM(Mbar).

    theta is accepted if any piece's hybrid test accepts it (HonestDiD takes the union over s and +/-); as
    HonestDiD, the set reported is from the smallest to the largest accepted theta. The test is evaluated on a
    grid of :data:`THETA_GRID_POINTS` points over l'beta_post +/- (half-width of the identified set at beta_hat +
    20 sd(l'beta_post)) (widened while an end is accepted), then each end is refined between its outermost
    accepted point and the rejected neighbour to ~1e-11 of a grid step. ``normal_draws`` (n x 2P standard
    normals) give the least-favourable critical values.
    """
    kappa = HYBRID_KAPPA_SHARE * alpha
    pieces = _rm_pieces(beta, sigma, n_pre, l_post, mbar)
    draws_t = np.ascontiguousarray(normal_draws.T)
    cvs = [piece.least_favorable_cv(draws_t, kappa) for piece in pieces]

    def accepts(theta: np.ndarray) -> np.ndarray:
        out = np.zeros(len(theta), dtype=bool)
        for piece, cv in zip(pieces, cvs):
            out |= piece.accepts(theta, alpha, kappa, cv)
        return out

    estimate = float(l_post @ beta[n_pre:])
    sd_theta = float(np.sqrt(l_post @ sigma[n_pre:, n_pre:] @ l_post))
    path = np.concatenate([beta[:n_pre], [0.0]])
    largest_pre_step = float(np.max(np.abs(np.diff(path))))
    tail_sums = np.cumsum(l_post[::-1])[::-1]
    reach = mbar * largest_pre_step * float(np.abs(tail_sums).sum()) + 20.0 * sd_theta
    for _ in range(8):
        grid = np.linspace(estimate - reach, estimate + reach, THETA_GRID_POINTS)
        accepted = accepts(grid)
        if not accepted.any():
            warnings.warn(f"honest_did RM (Mbar={mbar:g}): no theta accepted; the restriction is rejected by the "
                          "pre-period estimates", RuntimeWarning, stacklevel=3)
            return np.nan, np.nan
        if not (accepted[0] or accepted[-1]):
            break
        reach *= 4.0
    else:
        warnings.warn(f"honest_did RM (Mbar={mbar:g}): the confidence set is unbounded", RuntimeWarning,
                      stacklevel=3)
        return (-np.inf if accepted[0] else float(grid[accepted][0]),
                np.inf if accepted[-1] else float(grid[accepted][-1]))
    first, last = np.flatnonzero(accepted)[[0, -1]]
    # Refine both ends at once: each round tests REFINE_POINTS points across each bracket (rejected outside end,
    # accepted inside end) and keeps the outermost accepted point and its rejected neighbour; six rounds shrink a
    # grid step by 64^6 (~1e-11), i.e. to rounding error of theta.
    low_out, low_in, high_in, high_out = grid[first - 1], grid[first], grid[last], grid[last + 1]
    for _ in range(6):
        low_pts = np.linspace(low_out, low_in, REFINE_POINTS)
        high_pts = np.linspace(high_in, high_out, REFINE_POINTS)
        ok = accepts(np.concatenate([low_pts, high_pts]))
        i = int(np.argmax(ok[:REFINE_POINTS]))  # first accepted (the last point, low_in, always is)
        j = int(np.flatnonzero(ok[REFINE_POINTS:])[-1])  # last accepted (the first point, high_in, always is)
        low_out, low_in = low_pts[max(i - 1, 0)], low_pts[i]
        high_in, high_out = high_pts[j], high_pts[min(j + 1, REFINE_POINTS - 1)]
    return float(low_in), float(high_in)


def _lf_normal_draws(n_moments: int) -> np.ndarray:
    """Standard-normal draws for the least-favourable critical values (seeded: reruns are identical)."""
    return np.random.default_rng(LF_SEED).standard_normal((LF_DRAWS, n_moments))


# --------------------------------------------------------------------------------------------------------------
# Public interface
# --------------------------------------------------------------------------------------------------------------


def honest_did(event_study: pd.DataFrame, vcov: np.ndarray, restriction: str = "SD",
               grid: list[float] | tuple[float, ...] = (0.0,), target: str | int = 0,
               alpha: float = DEFAULT_ALPHA) -> pd.DataFrame:
    """Rambachan--Roth (2023) robust confidence sets for a post-treatment effect.

    ``event_study`` has rows ``term = "ATT e=k"`` and ``estimate`` for consecutive event times k, with
    e = -1 the reference period (omitted, or present with estimate 0); ``vcov`` is their covariance in the
    same row order. The target is theta = l' tau_post with l selecting e = ``target`` or, for
    ``target="average"``, the mean over all post periods. beta = tau + delta with delta_{-1} = 0 and
    tau_pre = 0.

    * ``restriction="SD"`` (Delta^SD(M): |delta_{e+1} - 2 delta_e + delta_{e-1}| <= M) -- the optimal FLCI
      (RR Section 4.1, after Armstrong and Kolesar; HonestDiD ``findOptimalFLCI``): over affine estimators
      theta_hat = l' beta_post + w' beta_pre unbiased for linear trends, the worst-case bias over Delta^SD(M) is
      M * sum_j |(K'v)_j| (:class:`_AffineFamily`) and the half-length sd * cv_alpha(maxbias / sd), cv_alpha the
      1 - alpha quantile of |N(b, 1)|; the w minimising the half-length is found as a convex programme
      (:func:`_flci`). With M = 0 this is the linear-extrapolation CI.
    * ``restriction="RM"`` (Delta^RM(Mbar): every post-period step |delta_{e+1} - delta_e| <= Mbar times the
      largest pre-period step, steps along ..., delta_{-2}, delta_{-1} = 0, delta_0, ...) -- the conditional /
      least-favourable hybrid confidence set of Andrews, Roth and Pakes (RR Section 3.2; HonestDiD's default
      ``C-LF``, kappa = alpha / 10), inverted over theta (:func:`_rm_confidence_set`). It accounts for the
      sampling error in the pre-period steps. (With one post period HonestDiD's own code leaves the
      least-favourable bound out of the conditional test's truncation; here both cases use ARP's hybrid.)

    Returns one row per grid value: ``restriction, parameter (M or Mbar), value, target, estimate (l'beta_post,
    the original estimate), ci_low, ci_high, method``.
    """
    event_times, beta, sigma = _event_study_arrays(event_study, vcov)
    l_post = _target_vector(event_times, target)
    pre, post = event_times < 0, event_times >= 0
    estimate = float(l_post @ beta[post])
    target_name = str(target)
    rows = []
    if restriction == "SD":
        family = _AffineFamily.build(event_times, sigma, l_post)
        for m in grid:
            weights, half = _flci(family, float(m), alpha)
            centre = float(weights @ beta)
            rows.append({"restriction": "SD", "parameter": "M", "value": float(m), "target": target_name,
                         "estimate": estimate, "ci_low": centre - half, "ci_high": centre + half,
                         "method": "honest_did optimal FLCI (Rambachan-Roth 2023, Delta^SD; convex programme)"})
    elif restriction == "RM":
        n_pre = int(pre.sum())
        draws = _lf_normal_draws(2 * int(post.sum()))
        method = (f"honest_did C-LF (Rambachan-Roth 2023, Delta^RM; ARP hybrid, kappa = alpha/10, "
                  f"least-favourable c.v. from {LF_DRAWS} draws, seed {LF_SEED})")
        for mbar in grid:
            low, high = _rm_confidence_set(beta, sigma, n_pre, l_post, float(mbar), alpha, draws)
            rows.append({"restriction": "RM", "parameter": "Mbar", "value": float(mbar), "target": target_name,
                         "estimate": estimate, "ci_low": low, "ci_high": high, "method": method})
    else:
        raise ValueError(f"restriction must be SD or RM, not {restriction!r}")
    return pd.DataFrame(rows)


def honest_rows(event_study: pd.DataFrame, vcov: np.ndarray, config, alpha: float, n_obs: int
                ) -> pd.DataFrame:
    """Result rows for ``inference.honest: {M: [...], Mbar: [...], target: 0 | average}`` (``config``: the spec's
    :class:`analysis.models.spec.Honest`, defaults filled).

    Term ``honest SD M=0.01 e=0`` etc.; ``estimate`` is the original point estimate, the CI the robust set.
    """
    target = config.target
    parts = []
    for restriction, key in (("SD", "M"), ("RM", "Mbar")):
        if getattr(config, key) is not None:
            parts.append(honest_did(event_study, vcov, restriction, list(getattr(config, key)), target, alpha))
    if not parts:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    sets = pd.concat(parts, ignore_index=True)
    label = "average" if target == "average" else f"e={target}"
    return result_frame([{"term": f"honest {r.restriction} {r.parameter}={r.value:g} {label}",
                          "estimate": r.estimate, "std_error": np.nan, "p_value": np.nan, "ci_low": r.ci_low,
                          "ci_high": r.ci_high, "n_obs": n_obs, "method": r.method} for r in sets.itertuples()])
