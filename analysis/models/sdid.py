"""Synthetic difference-in-differences for a single treated unit, :func:`sdid` (Arkhangelsky, Athey, Hirshberg,
Imbens and Wager 2021, AER 111(12), 4088-4118, Algorithm 1 and Algorithm 4).

A transcription of the reference R package ``synthdid`` (v0.0.9): unit weights ``omega`` with intercept and
ridge penalty ``zeta_omega = ((N1 T1)^(1/4)) * sigma`` where ``sigma`` is the standard deviation of the
first differences of the donors' pre-period outcomes; time weights ``lambda`` with intercept and
``zeta_lambda = 1e-6 sigma``; both solved by Frank-Wolfe (at most 100 iterations, then sparsified - weights
below max/4 set to zero - then at most 10,000 iterations, stopping when the objective falls by less than
``(1e-5 sigma)^2``). ATT = ``(Ybar_1,post - omega'Y_0,post) - (lambda'Y_1,pre - omega'Y_0 lambda)``.
Standard error by placebo (Algorithm 4): ``reps`` draws, each a random permutation of the donors whose last
unit plays the treated unit, weights re-estimated (warm-started from the fitted ones as in the R package,
same zetas); ``se = sqrt((reps - 1) / reps) * sd(placebo estimates)``. p-value and 95% CI are normal
approximations, ``2 (1 - Phi(|ATT| / se))`` and ``ATT -/+ 1.96 se``. The Frank-Wolfe iterations of all
placebo draws run together as one batched array computation.
Checked against the Python port of the R package (``synthdid-py``) and against the published California
Proposition 99 numbers in tests/test_models_synth_prop99.py.
The panel (one treated unit, donors with a complete outcome path): :mod:`analysis.models.single_treated`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.models.distributions import norm_ppf, norm_sf
from analysis.models.single_treated import estimator_options, single_treated_panel

#: Estimator options a spec may set, with their defaults (for the engine's spec validation).
SDID_OPTIONS: dict[str, object] = {}
#: Inference options sdid reads from ``spec["inference"]``, with defaults.
SDID_INFERENCE_OPTIONS: dict[str, object] = {"method": "placebo", "reps": 200}

_SDID_METHOD = (
    "synthetic DiD (Arkhangelsky et al. 2021; R synthdid defaults); placebo standard error "
    "(Algorithm 4, {reps} draws, seed {seed}); normal p-value and 95% CI"
)


def _frank_wolfe_batch(Y: np.ndarray, zeta: float, x0: np.ndarray, min_decrease: float, max_iter: int
                       ) -> np.ndarray:
    """R synthdid's ``sc.weight.fw`` for a batch of problems at once.

    ``Y`` has shape (batch, rows, n + 1): for each problem the first ``n`` columns are ``A`` and the last is
    ``b``; the problem is ``min_x zeta^2 |x|^2 + |A x - b|^2 / rows`` over the simplex, by Frank-Wolfe with exact
    line search, starting at ``x0`` (batch, n). Each problem stops on its own when its objective falls by no more
    than ``min_decrease^2`` (after at least two steps) or after ``max_iter`` steps, exactly as in the R code.
    """
    Y = np.array(Y, dtype=float, copy=True)
    Y -= Y.mean(axis=1, keepdims=True)  # the intercept (R: intercept = TRUE, both weight problems)
    A, b = Y[:, :, :-1], Y[:, :, -1]
    batch, rows, n = A.shape
    eta = rows * zeta**2
    gram = A.transpose(0, 2, 1) @ A
    Atb = np.einsum("brn,br->bn", A, b)
    x = np.array(x0, dtype=float, copy=True)
    previous = np.full(batch, np.inf)
    active = np.ones(batch, dtype=bool)
    problems = np.arange(batch)
    for step_number in range(1, max_iter + 1):
        if step_number % 200 == 1:
            # Recompute the running quantities exactly now and then so rounding cannot drift.
            Ax = np.einsum("brn,bn->br", A, x)
            grad = np.einsum("br,brn->bn", Ax - b, A)  # A'(Ax - b): half the gradient of the fit term
        half_grad = grad + eta * x
        i = np.argmin(half_grad, axis=1)
        dx = -x
        dx[problems, i] += 1.0
        d_err = A[problems, :, i] - Ax
        denominator = (d_err**2).sum(axis=1) + eta * (dx**2).sum(axis=1)
        numerator = -(half_grad * dx).sum(axis=1)
        # denominator 0 <=> dx == 0: already at the vertex, where R returns x unchanged; finished problems stay put.
        moving = active & (denominator > 0)
        step = np.where(moving, np.clip(numerator / np.where(moving, denominator, 1.0), 0.0, 1.0), 0.0)
        x += step[:, None] * dx
        Ax += step[:, None] * d_err
        # A' d_err = G[:, i] - A'A x = G[:, i] - (grad + A'b)
        grad += step[:, None] * (gram[problems, :, i] - grad - Atb)
        value = zeta**2 * (x**2).sum(axis=1) + ((Ax - b) ** 2).sum(axis=1) / rows
        done = active & (step_number >= 2) & (previous - value <= min_decrease**2)
        previous = np.where(active, value, previous)
        active &= ~done
        if not active.any():
            break
    return x


def _sparsify(weights: np.ndarray) -> np.ndarray:
    """R synthdid's ``sparsify_function``, row-wise: zero weights <= max/4 and renormalise."""
    w = np.where(weights <= weights.max(axis=1, keepdims=True) / 4, 0.0, weights)
    return w / w.sum(axis=1, keepdims=True)


def _sum_normalise(weights: np.ndarray) -> np.ndarray:
    total = weights.sum(axis=1, keepdims=True)
    uniform = np.full_like(weights, 1.0 / weights.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total != 0, weights / np.where(total != 0, total, 1.0), uniform)


@dataclass(frozen=True)
class SdidFit:
    """Batched synthetic-DiD fits: ``tau`` (batch,), per-post-period effects ``curve`` (batch, T1), weights."""

    tau: np.ndarray
    curve: np.ndarray
    omega: np.ndarray
    lambda_: np.ndarray


def sdid_weights_batch(Y: np.ndarray, n_pre: int, zeta_omega: float, zeta_lambda: float, min_decrease: float,
                       omega0: np.ndarray | None = None, lambda0: np.ndarray | None = None,
                       max_iter: int = 10_000, max_iter_pre_sparsify: int = 100) -> SdidFit:
    """Synthetic-DiD weights and estimates for a batch of panels with one treated unit in the last row.

    ``Y`` has shape (batch, N0 + 1, T). Follows R synthdid's ``synthdid_estimate`` (both intercepts, sparsify).
    """
    Y = np.asarray(Y, dtype=float)
    batch, n_units, n_times = Y.shape
    n0, t0 = n_units - 1, n_pre
    controls, treated = Y[:, :n0, :], Y[:, n0, :]
    # Collapsed form: donors' pre outcomes and post means; the treated row's pre outcomes and post mean.
    lambda_problem = np.concatenate([controls[:, :, :t0], controls[:, :, t0:].mean(axis=2, keepdims=True)], axis=2)
    omega_problem = np.concatenate([controls[:, :, :t0], treated[:, None, :t0]], axis=1).transpose(0, 2, 1)
    lam = np.full((batch, t0), 1.0 / t0) if lambda0 is None else np.array(lambda0, dtype=float)
    om = np.full((batch, n0), 1.0 / n0) if omega0 is None else np.array(omega0, dtype=float)
    lam = _frank_wolfe_batch(lambda_problem, zeta_lambda, lam, min_decrease, max_iter_pre_sparsify)
    lam = _frank_wolfe_batch(lambda_problem, zeta_lambda, _sparsify(lam), min_decrease, max_iter)
    om = _frank_wolfe_batch(omega_problem, zeta_omega, om, min_decrease, max_iter_pre_sparsify)
    om = _frank_wolfe_batch(omega_problem, zeta_omega, _sparsify(om), min_decrease, max_iter)
    # Effect curve (synthdid_effect_curve): post gap minus the lambda-weighted pre gap.
    gap = treated - np.einsum("bn,bnt->bt", om, controls)
    curve = gap[:, t0:] - np.einsum("bt,bt->b", lam, gap[:, :t0])[:, None]
    return SdidFit(tau=curve.mean(axis=1), curve=curve, omega=om, lambda_=lam)


def sdid_estimate(Y: np.ndarray, n_pre: int, reps: int = 200, seed: int = 0) -> dict:
    """Synthetic DiD on a matrix ``Y`` (donors first, the one treated unit last) with placebo standard errors.

    Returns dict(tau, curve, omega, lambda_, se, curve_se, placebo_taus, noise_level, zeta_omega, zeta_lambda).
    ``reps = 0`` skips the placebo (se NaN). The placebo draws use ``np.random.default_rng(seed)``.
    """
    Y = np.asarray(Y, dtype=float)
    n0 = Y.shape[0] - 1
    t1 = Y.shape[1] - n_pre
    noise_level = float(np.std(np.diff(Y[:n0, :n_pre], axis=1), ddof=1))
    zeta_omega = (1 * t1) ** 0.25 * noise_level  # eta_omega = (N1 T1)^(1/4), N1 = 1
    zeta_lambda = 1e-6 * noise_level
    min_decrease = 1e-5 * noise_level
    fit = sdid_weights_batch(Y[None], n_pre, zeta_omega, zeta_lambda, min_decrease)
    out = {"tau": float(fit.tau[0]), "curve": fit.curve[0], "omega": fit.omega[0], "lambda_": fit.lambda_[0],
           "noise_level": noise_level, "zeta_omega": zeta_omega, "zeta_lambda": zeta_lambda,
           "se": np.nan, "curve_se": np.full(t1, np.nan), "placebo_taus": np.array([])}
    if reps > 0:
        if n0 < 2:
            raise ValueError("placebo standard errors need at least 2 donors")
        rng = np.random.default_rng(seed)
        # One permutation of the donors per draw, drawn one at a time as R's sample(1:N0) and diff-diff do, so
        # that a seed gives the same placebo draws as diff_diff.SyntheticDiD(seed=...).
        permutations = np.stack([rng.permutation(n0) for _ in range(reps)])
        placebo_Y = Y[:n0][permutations]  # last donor of each permutation plays the treated unit
        omega0 = _sum_normalise(fit.omega[0][permutations[:, :-1]])
        lambda0 = np.repeat(fit.lambda_, reps, axis=0)
        placebo = sdid_weights_batch(placebo_Y, n_pre, zeta_omega, zeta_lambda, min_decrease,
                                     omega0=omega0, lambda0=lambda0)
        factor = np.sqrt((reps - 1) / reps)
        out["se"] = float(factor * np.std(placebo.tau, ddof=1))
        out["curve_se"] = factor * np.std(placebo.curve, axis=0, ddof=1)
        out["placebo_taus"] = placebo.tau
    return out


def sdid(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Synthetic-DiD estimates (ATT and per-year effects) under the estimator contract; see the module docstring.

    Reads ``spec["inference"]`` keys ``method`` ('placebo') and ``reps`` (default 200) and ``spec["seed"]``.
    """
    estimator_options(spec, "sdid", SDID_OPTIONS)
    inference = estimator_options(spec, "inference", SDID_INFERENCE_OPTIONS)
    if inference["method"] != "placebo":
        raise ValueError(f"sdid supports inference method 'placebo' only, got {inference['method']!r}")
    reps, seed = int(inference["reps"]), int(spec["seed"])
    panel = single_treated_panel(df, spec)
    result = sdid_estimate(panel.Y, panel.n_pre, reps=reps, seed=seed)
    z = norm_ppf(0.975)
    post_times = panel.times[panel.n_pre:]
    terms = ["ATT"] + [f"ATT t={t}" for t in post_times]
    estimate = np.concatenate([[result["tau"]], result["curve"]])
    se = np.concatenate([[result["se"]], result["curve_se"]])
    with np.errstate(invalid="ignore", divide="ignore"):
        p_value = 2 * norm_sf(np.abs(estimate / se))
    estimates = pd.DataFrame({
        "term": terms, "estimate": estimate, "std_error": se, "p_value": p_value,
        "ci_low": estimate - z * se, "ci_high": estimate + z * se, "n_obs": int(panel.Y.size),
        "method": _SDID_METHOD.format(reps=reps, seed=seed),
        "treated_unit": panel.treated_unit, "first_treated_time": panel.first_treated_time,
        "n_pre_periods": panel.n_pre, "n_donors": panel.n_donors, "reps": reps,
        "noise_level": result["noise_level"], "zeta_omega": result["zeta_omega"],
        "donors_excluded": ",".join(str(u) for u in panel.donors_excluded),
    })
    return estimates
