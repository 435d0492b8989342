"""Fast resampling inference for the regression engine: wild cluster bootstrap and randomization inference.

Both are vectorised: every bootstrap draw or permutation is a column of a matrix, and all test statistics come
out of a few matrix products instead of a loop of refits.

Wild cluster bootstrap-t, :func:`wild_bootstrap_pvalue`
    Cameron, Gelbach and Miller (2008, REStat 90(3)); MacKinnon and Webb (2017, JAE 32(2)) for the six-point
    weights; the closed-form algebra of Roodman, MacKinnon, Nielsen and Webb (2019, Stata Journal 19(1),
    "fast and wild", section 3). Fixed effects are partialled out of ``y`` and ``X`` (Frisch-Waugh-Lovell: the
    coefficient and the cluster scores equal those of the regression with the dummies); pass their codes as
    ``fixed_effects`` and the number of absorbed parameters that are *not* nested in the clusters as
    ``n_absorbed``, so that the t-statistic carries the fixest small-sample factor. The bootstrap p-value does
    not depend on the small-sample factor (it scales the original and every bootstrap t alike).

    Fixed effects in the bootstrap. Partialling the effects out once, before bootstrapping, is exact only for
    effects nested in the clusters. The dummy-variable bootstrap refits ``y* = X b_r + D a_r + v_g u_r`` on
    ``[X, D]``; its residuals are ``u* = M_[X,D] (v o u_r) = M_D (v o u_r) - X~ (b* - b_r)`` with
    ``X~ = M_D X``. For effects nested in the clusters ``v`` is constant on each effect's rows and
    ``D'u_r = 0``, so ``M_D (v o u_r) = v o u_r``; for effects that cut across the clusters (year effects with
    province clusters) it is not, and the partial-out-once bootstrap draws from a DGP that is not the
    regression's (its bootstrap standard errors carry the year-mean noise that the regression absorbs, so
    p-values come out too small). Here the annihilator is applied inside the closed form. With
    ``r = (X~'X~)^-1 e_j``, the bootstrap score of cluster g is ``r'X~_g'u*_g = sum_h (A[g, h] - K[g, h]) v_h``,
    where ``K[g, h] = r'X~_g'X~_g (X~'X~)^-1 X~_h'u_h`` (Roodman et al.'s matrix) and
    ``A[g, h] = r'X~_g' [M_D (u o 1_h)]_g = a_g 1[g = h] - (X~ r)_g' B_g B_h'u_h``, ``a_g = r'X~_g'u_g``,
    ``1_h`` the indicator of cluster h's rows and ``B`` an orthonormal basis of the dummies' span (SVD,
    rank-safe; ``B_g`` its rows in cluster g). The extra term is a (G, rank D) x (rank D, G) product per
    residual vector, so the cost per draw is unchanged: one (G, G) matrix times the (G, reps) weights. With
    ``fixed_effects=None``, or only effects nested in the clusters, ``A`` is diagonal (the published formula).
    The result equals the dummy-variable bootstrap draw by draw (tests: to 1e-10 on an unbalanced two-way panel).

    CRV1 variance: ``V = c (X'X)^-1 (sum_g X_g'u_g u_g'X_g) (X'X)^-1`` with the fixest factor
    ``c = G/(G-1) * (n-1)/(n-k)``, ``k`` = columns of X + ``n_absorbed``. Restricted (WCR, ``impose_null=True``):
    residuals and fitted values from the regression with ``beta_j = beta0`` imposed; bootstrap outcomes
    ``y* = X b_r + v_g u_r``; ``t* = (b*_j - beta0) / se*``. Unrestricted (WCU): unrestricted residuals and
    ``t* = (b*_j - b_j) / se*``. Two-sided symmetric p-value: share of draws with ``|t*| >= |t|``.
    Weights: Rademacher (+-1) or Webb (+-sqrt(1/2), +-1, +-sqrt(3/2)), drawn with ``np.random.default_rng(seed)``.
    The confidence interval (optional, ``confidence=0.95``) inverts the WCR test with the same draws.

Randomization inference, :func:`ri_pvalue`
    Fisher-style permutation of the treatment across provinces: each permutation gives every unit the treatment
    path of another unit. The statistic is the TWFE coefficient of ``y`` on the single treatment regressor (plus
    optional controls). After partialling out the fixed effects and controls (``M``), ``beta = d'M y / d'M d``;
    since ``M y`` is fixed, only ``M d`` changes with the permutation, so all permuted treatments are stacked into a
    (reps, units, times) array and demeaned together. Unbalanced panels are handled by alternating projections on the observed cells.
    p-value = ``(1 + #{|beta_perm| >= |beta_obs|}) / (1 + reps)`` (Phipson and Smyth 2010), two-sided.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

class PValueResult(dict):
    """A result dict whose ``float()`` is its ``p_value`` (so callers that only need the p-value can take it)."""

    def __float__(self) -> float:
        return float(self["p_value"])


#: Largest number of bootstrap draws or permutations (documented limit; specs are checked against it by
#: :func:`analysis.models.checks.check_spec`, key ``inference.*.reps``). The draws are held in memory at once: a
#: (clusters x reps) float64 matrix for the wild bootstrap, a (reps x units) permutation matrix and a
#: (reps x units x periods) treatment array for randomization inference; reps = 10^8 with 31 provinces asked for
#: 23 GiB (the machine swapped instead of erroring). At 100,000 draws the Monte Carlo standard error of a p-value
#: near 0.05 is sqrt(0.05 * 0.95 / 10^5) ~ 0.0007, below anything reported, and the arrays stay under 0.2 GB on a
#: 31 x 7 panel.
MAX_REPS = 100_000


def _check_reps(reps) -> None:
    if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or not 1 <= reps <= MAX_REPS:
        raise ValueError(f"reps must be an integer from 1 to {MAX_REPS:,} (MAX_REPS: the draws are held in memory), "
                         f"got {reps!r}")


WEBB_WEIGHTS = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])


# ----------------------------------------------------------------------------------------------------------------
# Demeaning helpers
# ----------------------------------------------------------------------------------------------------------------


def demean_twoway(values: np.ndarray, mask: np.ndarray, fe: str = "twoway", tol: float = 1e-13,
                  max_iter: int = 10_000) -> np.ndarray:
    """Partial unit and/or time fixed effects out of ``values`` (..., units, times) on the observed cells.

    ``mask`` (units, times) marks observed cells; unobserved cells are returned as 0. ``fe`` is 'twoway',
    'unit', 'time' or 'none'. Alternating projections (unit means, then time means) until the largest change
    is below ``tol`` times the data's scale; a balanced two-way panel converges after one sweep.
    """
    if fe not in {"twoway", "unit", "time", "none"}:
        raise ValueError(f"fe must be 'twoway', 'unit', 'time' or 'none', got {fe!r}")
    m = mask.astype(float)
    z = np.where(mask, values, 0.0).astype(float)
    if fe == "none":
        return z
    n_unit = np.maximum(m.sum(axis=-1, keepdims=True), 1.0)
    n_time = np.maximum(m.sum(axis=-2, keepdims=True), 1.0)
    scale = max(float(np.abs(z).max()), 1e-300)
    for _ in range(max_iter):
        change = 0.0
        if fe in {"twoway", "unit"}:
            unit_means = z.sum(axis=-1, keepdims=True) / n_unit
            z = (z - unit_means) * m
            change = max(change, float(np.abs(unit_means).max()))
        if fe in {"twoway", "time"}:
            time_means = z.sum(axis=-2, keepdims=True) / n_time
            z = (z - time_means) * m
            change = max(change, float(np.abs(time_means).max()))
        if fe != "twoway" or change <= tol * scale:
            break
    return z


# ----------------------------------------------------------------------------------------------------------------
# Wild cluster bootstrap
# ----------------------------------------------------------------------------------------------------------------


def _draw_weights(kind: str, n_clusters: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    _check_reps(reps)
    if kind == "rademacher":
        return rng.integers(0, 2, size=(n_clusters, reps)).astype(float) * 2.0 - 1.0
    if kind == "webb":
        return WEBB_WEIGHTS[rng.integers(0, 6, size=(n_clusters, reps))]
    raise ValueError(f"weights must be 'rademacher' or 'webb', got {kind!r}")


def _cluster_sums(matrix: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """Sum the rows of ``matrix`` (n, k) within clusters -> (G, k)."""
    out = np.zeros((n_clusters, matrix.shape[1]))
    np.add.at(out, codes, matrix)
    return out


def _fe_basis(fixed_effects, codes: np.ndarray) -> tuple[np.ndarray, bool]:
    """(orthonormal basis (n, rank) of the span of the fixed-effect dummies (all levels of each effect; SVD),
    whether every effect is nested in the clusters ``codes``, i.e. each of its levels lies inside one cluster)."""
    n = len(codes)
    blocks, nested = [], True
    for labels in fixed_effects:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"each fixed effect needs {n} labels, one per row; got shape {labels.shape}")
        if labels.dtype.kind in "iub":  # integer codes (the engine's): numpy, no pandas overhead
            levels = np.unique(labels, return_inverse=True)[1].ravel()
        else:
            levels, _ = pd.factorize(pd.Series(labels), sort=True)
            if (levels < 0).any():
                raise ValueError("fixed-effect labels must not be missing")
        n_levels = int(levels.max()) + 1
        block = np.zeros((n, n_levels))
        block[np.arange(n), levels] = 1.0
        blocks.append(block)
        # nested <=> as many distinct (level, cluster) pairs as levels
        nested &= len(np.unique(levels.astype(np.int64) * (int(codes.max()) + 1) + codes)) == n_levels
    dummies = np.hstack(blocks)
    basis, singular, _ = np.linalg.svd(dummies, full_matrices=False)
    return basis[:, singular > singular[0] * max(dummies.shape) * np.finfo(float).eps], bool(nested)


def wild_bootstrap_pvalue(y, X, clusters, coef_index: int, reps: int = 9999, weights: str = "rademacher",
                          seed: int = 0, impose_null: bool = True, beta0: float = 0.0, n_absorbed: int = 0,
                          confidence: float | None = None, fixed_effects=None, return_draws: bool = False) -> dict:
    """Wild cluster bootstrap-t p-value for ``H0: beta[coef_index] = beta0`` (see the module docstring).

    ``y`` (n,), ``X`` (n, k), ``clusters`` (n,) labels. ``fixed_effects``: a list of label arrays (n,), one per
    effect (``a^b`` interactions as one array of combined labels), or None. ``y`` and ``X`` are residualised on
    their dummies here (a no-op up to rounding when the caller already did), and effects that are not nested in
    the clusters enter the bootstrap residuals exactly (module docstring); with None, ``X`` must already have
    any fixed effects partialled out and they are taken to be nested in the clusters.
    Returns dict(p_value, t_stat, estimate, std_error (CRV1, fixest factor), ci_low, ci_high (NaN unless
    ``confidence`` is given; WCR test inversion), reps, weights, impose_null, n_clusters, plus ``t_star`` (the
    (reps,) bootstrap t-statistics) when ``return_draws``).
    """
    y = np.asarray(y, dtype=float).ravel()
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    n, k = X.shape
    if y.shape[0] != n or len(clusters) != n:
        raise ValueError(f"y ({y.shape[0]}), X ({n}) and clusters ({len(clusters)}) must have the same length")
    if not (np.isfinite(y).all() and np.isfinite(X).all()):
        raise ValueError("y and X must be finite (drop missing rows before the bootstrap)")
    codes, _ = pd.factorize(pd.Series(np.asarray(clusters)), sort=True)
    G = int(codes.max()) + 1
    if G < 2:
        raise ValueError("need at least 2 clusters")
    ssc = G / (G - 1) * (n - 1) / (n - k - n_absorbed)

    basis = None  # orthonormal basis of the dummies, kept only if some effect cuts across the clusters
    if fixed_effects is not None and len(fixed_effects) > 0:
        fe_basis, nested = _fe_basis(fixed_effects, codes)
        y = y - fe_basis @ (fe_basis.T @ y)
        norms = np.linalg.norm(X, axis=0)
        X = X - fe_basis @ (fe_basis.T @ X)
        absorbed = np.linalg.norm(X, axis=0) <= 1e-9 * np.maximum(norms, 1e-300)
        if absorbed.any():
            raise ValueError(f"columns {np.flatnonzero(absorbed).tolist()} of X are collinear with the fixed "
                             "effects (drop them, e.g. an intercept, before the bootstrap)")
        if not nested:
            basis = fe_basis
    xtx_inv = np.linalg.inv(X.T @ X)
    beta = xtx_inv @ (X.T @ y)
    r = xtx_inv[:, coef_index]  # (X'X)^-1 R' for R = e_j
    xr = X @ r
    # r' X_h'X_h for every cluster h: (G, k)
    rH = _cluster_sums(xr[:, None] * X, codes, G)
    # (X r)_g' B_g for every cluster g: (G, rank D); the non-nested fixed effects' part of the bootstrap scores
    xr_basis = None if basis is None else _cluster_sums(xr[:, None] * basis, codes, G)

    def stats_for(residuals: np.ndarray):
        """a_g = r'X_g'u_g and K[g, h] = r'X_g'X_g (X'X)^-1 X_h'u_h - (A[g, h] - a_g 1[g = h]) (module
        docstring) for the given residuals: the bootstrap score of cluster g is a_g v_g - (K v)_g."""
        scores = _cluster_sums(X * residuals[:, None], codes, G)  # (G, k): X_g'u_g
        a = scores @ r
        K = rH @ (xtx_inv @ scores.T)
        if xr_basis is not None:
            K = K + xr_basis @ _cluster_sums(basis * residuals[:, None], codes, G).T  # + (Xr)_g'B_g B_h'u_h
        return a, K

    residuals = y - X @ beta
    a_hat, _ = stats_for(residuals)
    std_error = float(np.sqrt(ssc * (a_hat**2).sum()))
    t_stat = float((beta[coef_index] - beta0) / std_error)

    rng = np.random.default_rng(seed)
    V = _draw_weights(weights, G, reps, rng)

    # Restricted residuals are linear in beta0: u_r(b0) = M_{-j} y - b0 M_{-j} x_j.
    others = [c for c in range(k) if c != coef_index]
    if others:
        Xo = X[:, others]
        proj = np.linalg.lstsq(Xo, np.column_stack([y, X[:, coef_index]]), rcond=None)[0]
        resid_y, resid_x = (np.column_stack([y, X[:, coef_index]]) - Xo @ proj).T
    else:
        resid_y, resid_x = y.copy(), X[:, coef_index].copy()
    a_y, K_y = stats_for(resid_y)
    a_x, K_x = stats_for(resid_x)

    def bootstrap_t(a: np.ndarray, K: np.ndarray) -> np.ndarray:
        numerator = a @ V
        Q = a[:, None] * V - K @ V
        return numerator / np.sqrt(ssc * (Q**2).sum(axis=0))

    def wcr_pvalue(null: float) -> float:
        a, K = a_y - null * a_x, K_y - null * K_x
        t_obs = (beta[coef_index] - null) / std_error
        return float(np.mean(np.abs(bootstrap_t(a, K)) >= abs(t_obs)))

    if impose_null:
        t_star = bootstrap_t(a_y - beta0 * a_x, K_y - beta0 * K_x)
    else:
        t_star = bootstrap_t(*stats_for(residuals))
    p_value = float(np.mean(np.abs(t_star) >= abs(t_stat)))

    ci_low = ci_high = np.nan
    if confidence is not None:
        ci_low, ci_high = _invert(wcr_pvalue, float(beta[coef_index]), std_error, 1 - confidence)
    result = PValueResult(p_value=p_value, t_stat=t_stat, estimate=float(beta[coef_index]), std_error=std_error,
                          ci_low=ci_low, ci_high=ci_high, reps=int(reps), weights=weights,
                          impose_null=bool(impose_null), n_clusters=G)
    if return_draws:
        result["t_star"] = t_star
    return result


def _invert(pvalue_at: Callable[[float], float], estimate: float, std_error: float, alpha: float,
            tol: float = 1e-6) -> tuple[float, float]:
    """Bisection for the two nulls where the bootstrap p-value crosses ``alpha`` (the estimate has p = 1)."""

    def edge(direction: float) -> float:
        inside, width = estimate, std_error
        outside = estimate + direction * width
        for _ in range(60):  # widen until the null is rejected
            if pvalue_at(outside) < alpha:
                break
            inside, outside = outside, outside + direction * width
            width *= 2
        else:
            return direction * np.inf
        while abs(outside - inside) > tol * max(std_error, 1e-300):
            middle = 0.5 * (inside + outside)
            if pvalue_at(middle) < alpha:
                outside = middle
            else:
                inside = middle
        return 0.5 * (inside + outside)

    return edge(-1.0), edge(1.0)


# ----------------------------------------------------------------------------------------------------------------
# Randomization inference
# ----------------------------------------------------------------------------------------------------------------

def _permutations(n_units: int, reps: int, seed: int) -> np.ndarray:
    """``reps`` uniform random permutations of ``range(n_units)``, one per row (``default_rng(seed)``)."""
    _check_reps(reps)
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((reps, n_units)), axis=1)


def ri_null_distribution(df: pd.DataFrame, unit: str, time: str, outcome: str,
                         treatment: str, reps: int = 1000, seed: int = 0,
                         fe: str = "twoway", controls: list[str] | tuple = ()) -> dict:
    """Observed and permuted TWFE coefficients of ``outcome`` on the treatment (see the module docstring).

    ``treatment`` is a column; each permutation reassigns whole unit paths. Rows with a missing outcome, treatment
    or control are dropped. Returns dict(observed, permuted (reps,), permutations (reps, N), units, times,
    n_obs).
    """
    controls = list(controls)
    columns = [unit, time, outcome, treatment] + controls
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"columns {missing} are not in the data")
    if df.duplicated([unit, time]).any():
        raise ValueError(f"duplicate {unit} x {time} rows")
    data = df[columns].dropna()
    units = sorted(data[unit].unique().tolist())
    times = sorted(data[time].unique().tolist())
    grid = data.set_index([unit, time])

    def wide(column: str, frame: pd.DataFrame = grid) -> np.ndarray:
        return frame[column].unstack(time).reindex(index=units, columns=times).to_numpy(dtype=float)

    y = wide(outcome)
    mask = ~np.isnan(y)
    permutations = _permutations(len(units), reps, seed)
    # Paths come from every row with the treatment observed (also where the outcome is missing), so a unit
    # can pass its path on to a unit observed in years it is not.
    d_obs = wide(treatment, df[[unit, time, treatment]].dropna().set_index([unit, time]))
    if np.isnan(d_obs).any():
        raise ValueError(f"treatment {treatment!r} must be observed for every unit in every year "
                         f"{times[0]}-{times[-1]} to permute whole paths")
    d_perm = d_obs[permutations]  # unit i gets the path of unit permutations[r, i]

    y_tilde = demean_twoway(y, mask, fe)
    d_tilde = demean_twoway(np.concatenate([d_obs[None], d_perm]), mask, fe)
    if controls:
        W = np.stack([demean_twoway(wide(c), mask, fe) for c in controls], axis=-1)[mask]  # (n_obs, k)
        W_pinv = np.linalg.pinv(W)
        y_tilde = y_tilde.copy()
        y_tilde[mask] -= W @ (W_pinv @ y_tilde[mask])
        flat = d_tilde[:, mask]  # (reps + 1, n_obs)
        flat = flat - (flat @ W_pinv.T) @ W.T
    else:
        flat = d_tilde[:, mask]
    numerator = flat @ y_tilde[mask]
    denominator = (flat**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        coefficients = numerator / denominator
    return {"observed": float(coefficients[0]), "permuted": coefficients[1:], "permutations": permutations,
            "units": units, "times": times, "n_obs": int(mask.sum())}


def ri_pvalue(df: pd.DataFrame, unit: str, time: str, outcome: str, treatment: str, reps: int = 1000, seed: int = 0,
              fe: str = "twoway", controls: list[str] | tuple = ()) -> PValueResult:
    """Randomization-inference p-value of the TWFE treatment coefficient (see the module docstring), from
    :func:`ri_null_distribution` with the same arguments.

    Returns a :class:`PValueResult` (``float()`` of it is the p-value) with p_value, observed, reps, n_obs,
    null_mean, null_sd, null_q025, null_q975 and n_undefined (permutations whose coefficient is undefined, e.g.
    treatment collinear with the fixed effects; dropped).
    """
    result = ri_null_distribution(df, unit, time, outcome, treatment, reps=reps, seed=seed, fe=fe,
                                  controls=controls)
    return _summarise_null(result["observed"], result["permuted"], reps, result["n_obs"])


def _summarise_null(observed: float, null: np.ndarray, reps: int, n_obs: int) -> PValueResult:
    defined = null[np.isfinite(null)]
    # Ties up to rounding count as "at least as extreme".
    extreme = np.abs(defined) >= abs(observed) * (1 - 1e-10)
    return PValueResult(
        p_value=float((1 + extreme.sum()) / (1 + len(defined))), observed=float(observed), reps=int(reps),
        n_obs=int(n_obs), null_mean=float(defined.mean()), null_sd=float(defined.std(ddof=1)),
        null_q025=float(np.quantile(defined, 0.025)), null_q975=float(np.quantile(defined, 0.975)),
        n_undefined=int(len(null) - len(defined)),
    )
