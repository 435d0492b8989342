"""Rambachan & Roth (2023, REStud 90(5)) "Honest DiD" sensitivity sets for event studies.

Used by the staggered estimators' event studies (:mod:`analysis.models.staggered`) and the regression event
studies (:func:`analysis.models.regression.add_honest_rows`). See :func:`honest_did` for exactly what is
implemented.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.models.distributions import norm_cdf, norm_ppf

#: Default significance level for the robust sets (as the estimators' DEFAULT_ALPHA).
DEFAULT_ALPHA = 0.05


def _folded_normal_cv(bias_over_sd: float, alpha: float) -> float:
    """1 - alpha quantile of |N(b, 1)|: the c solving Phi(c - b) - Phi(-c - b) = 1 - alpha."""
    from scipy import optimize  # here, not at module level: only the HonestDiD bounds need it
    b = abs(bias_over_sd)
    if b > 10:  # the lower tail is negligible
        return float(b + norm_ppf(1 - alpha))
    f = lambda c: norm_cdf(c - b) - norm_cdf(-c - b) - (1 - alpha)
    return float(optimize.brentq(f, 0.0, b + 10.0, xtol=1e-12))


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


def _max_bias_sd(weights: np.ndarray, loadings: np.ndarray, slope: np.ndarray, m: float) -> float:
    """max over Delta^SD(M) of weights' delta, in closed form (inf if ``weights`` are not invariant to linear trends).

    With delta = d * slope + K s (``loadings, slope`` from :func:`_second_difference_loadings`, computed once per
    event study: this runs at every Nelder-Mead step), weights' delta = d (weights' slope) + (K' weights)' s; d is
    free and each |s_j| <= M, so the maximum is M * sum_j |(K' weights)_j| when weights' slope = 0 and unbounded
    otherwise. (The linear programme over delta gives the same number; tests/test_models_staggered_honest.py checks
    them against each other.)
    """
    scale = float(np.abs(weights) @ np.abs(slope)) or 1.0
    if abs(float(weights @ slope)) > 1e-9 * scale:
        return np.inf
    return float(m * np.abs(loadings.T @ weights).sum())


def honest_did(event_study: pd.DataFrame, vcov: np.ndarray, restriction: str = "SD",
               grid: list[float] | tuple[float, ...] = (0.0,), target: str | int = 0,
               alpha: float = DEFAULT_ALPHA) -> pd.DataFrame:
    """Rambachan--Roth (2023) robust confidence sets for a post-treatment effect.

    ``event_study`` has rows ``term = "ATT e=k"`` and ``estimate`` for consecutive event times k, with
    e = -1 the reference period (omitted, or present with estimate 0); ``vcov`` is their covariance in the
    same row order. The target is theta = l' tau_post with l selecting e = ``target`` or, for
    ``target="average"``, the mean over all post periods. beta = tau + delta with delta_{-1} = 0 and
    tau_pre = 0. Implemented exactly:

    * ``restriction="SD"`` (Delta^SD(M): |delta_{e+1} - 2 delta_e + delta_{e-1}| <= M) -- the fixed-length
      confidence interval (FLCI, RR Section 4.1 after Armstrong and Kolesar): affine estimators
      theta_hat = l' beta_post + w' beta_pre; for each w the worst-case bias over Delta^SD(M) is
      M * sum_j |(K'v)_j| (closed form of that linear programme, :func:`_max_bias_sd`) and the half-length is
      sd(w) * cv_alpha(maxbias / sd), cv_alpha the 1-alpha
      quantile of |N(b, 1)|; w minimises the half-length (Nelder--Mead over the w with zero bias on linear
      trends, started from the minimum-variance such w, the M = 0 optimum). With M = 0 this is the
      linear-extrapolation CI: the minimum-variance estimator unbiased for linear pre-trends +/- z sd.
    * ``restriction="RM"`` (Delta^RM(Mbar): every post-period step |delta_{e+1} - delta_e| <= Mbar times the
      largest pre-period step, steps taken along ..., delta_{-2}, delta_{-1} = 0, delta_0, ...) -- the
      identified set at beta_hat is closed form, l'beta_post +/- Mbar * m_pre * sum_j |sum_{e >= j} l_e|,
      and the reported set widens it by z_{1-alpha/2} sd(l' beta_hat_post). This is a plug-in
      approximation, NOT RR's conditional/hybrid (ARP) test: it ignores the sampling error in m_pre. With
      Mbar = 0 it is exactly the conventional CI for l' beta_post.

    Returns one row per grid value: ``restriction, parameter (M or Mbar), value, target, estimate (l'beta_post,
    the original estimate), ci_low, ci_high, method``.
    """
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
    pre, post = event_times < 0, event_times >= 0
    if target == "average":
        l_post = np.full(post.sum(), 1.0 / post.sum())
    else:
        l_post = (event_times[post] == int(target)).astype(float)
        if not l_post.any():
            raise ValueError(f"target event time {target} not in the event study")
    l_full = np.zeros(len(event_times))
    l_full[post] = l_post
    estimate = float(l_full @ beta)
    sd_post = float(np.sqrt(l_full @ sigma @ l_full))
    z = norm_ppf(1 - alpha / 2)
    target_name = str(target)
    rows = []

    if restriction == "SD":
        # Zero bias on linear trends delta_e = c (e + 1): w'(e_pre + 1) + l'(e_post + 1) = 0.
        slope = event_times[pre] + 1.0
        offset = float(l_post @ (event_times[post] + 1.0))
        w0 = -slope * offset / (slope @ slope)
        null = np.linalg.svd(slope[None, :])[2][1:].T  # basis of {w: slope'w = 0}
        s_pp, s_pre_post = sigma[np.ix_(pre, pre)], sigma[np.ix_(pre, post)]

        def weights_of(zv: np.ndarray) -> np.ndarray:
            v = np.zeros(len(event_times))
            v[pre] = w0 + null @ zv
            v[post] = l_post
            return v

        # Minimum-variance zero-linear-bias w (the M = 0 FLCI): minimise v' Sigma v over z (a least squares).
        if null.shape[1]:
            lhs = null.T @ s_pp @ null
            rhs = -(null.T @ (s_pp @ w0 + s_pre_post @ l_post))
            z_minvar = np.linalg.solve(lhs, rhs)
        else:
            z_minvar = np.zeros(0)

        from scipy import optimize

        loadings, trend = _second_difference_loadings(event_times)
        for m in grid:
            def half_length(zv: np.ndarray) -> float:
                v = weights_of(zv)
                sd = float(np.sqrt(v @ sigma @ v))
                bias = _max_bias_sd(v, loadings, trend, float(m))
                return sd * _folded_normal_cv(bias / sd, alpha) if np.isfinite(bias) else np.inf

            best_z, best = z_minvar, half_length(z_minvar)
            if null.shape[1] and m > 0:
                res = optimize.minimize(half_length, z_minvar, method="Nelder-Mead",
                                        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000})
                if res.fun < best:
                    best_z, best = res.x, float(res.fun)
            centre = float(weights_of(best_z) @ beta)
            rows.append({"restriction": "SD", "parameter": "M", "value": float(m), "target": target_name,
                         "estimate": estimate, "ci_low": centre - best, "ci_high": centre + best,
                         "method": "honest_did FLCI (Rambachan-Roth 2023, Delta^SD)"})
    elif restriction == "RM":
        path = np.concatenate([beta[pre], [0.0]])  # delta_pre = beta_pre, then delta_{-1} = 0
        m_pre = float(np.max(np.abs(np.diff(path))))
        tail_sums = np.cumsum(l_post[::-1])[::-1]  # sum_{e >= j} l_e for j = 0..P
        reach = m_pre * float(np.abs(tail_sums).sum())
        for mbar in grid:
            rows.append({"restriction": "RM", "parameter": "Mbar", "value": float(mbar), "target": target_name,
                         "estimate": estimate, "ci_low": estimate - mbar * reach - z * sd_post,
                         "ci_high": estimate + mbar * reach + z * sd_post,
                         "method": "honest_did identified set +/- z se (plug-in, Delta^RM; not ARP)"})
    else:
        raise ValueError(f"restriction must be SD or RM, not {restriction!r}")
    return pd.DataFrame(rows)


def honest_rows(event_study: pd.DataFrame, vcov: np.ndarray, config: dict, alpha: float, n_obs: int
                 ) -> pd.DataFrame:
    """Result rows for ``inference.honest: {M: [...], Mbar: [...], target: 0 | average}``.

    Term ``honest SD M=0.01 e=0`` etc.; ``estimate`` is the original point estimate, the CI the robust set.
    """
    target = config.get("target", 0)
    parts = []
    for restriction, key in (("SD", "M"), ("RM", "Mbar")):
        if config.get(key) is not None:
            parts.append(honest_did(event_study, vcov, restriction, config[key], target, alpha))
    from analysis.models.staggered import RESULT_COLUMNS, _tidy  # the estimators' result contract

    if not parts:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    sets = pd.concat(parts, ignore_index=True)
    label = "average" if target == "average" else f"e={target}"
    return _tidy([{"term": f"honest {r.restriction} {r.parameter}={r.value:g} {label}", "estimate": r.estimate,
                   "std_error": np.nan, "p_value": np.nan, "ci_low": r.ci_low, "ci_high": r.ci_high,
                   "n_obs": n_obs, "method": r.method} for r in sets.itertuples()])
