"""Synthetic difference-in-differences for a single treated unit, :func:`sdid` (Arkhangelsky, Athey, Hirshberg,
Imbens and Wager 2021, AER 111(12), 4088-4118, Algorithm 1 and Algorithm 4), computed by ``diff_diff.SyntheticDiD``.

The estimator is the library's (diff-diff, a maintained port of the reference R package ``synthdid`` v0.0.9 with
its defaults): unit weights ``omega`` with intercept and ridge penalty ``zeta_omega = (N1 T1)^(1/4) sigma``, where
``sigma`` is the standard deviation of the first differences of the donors' pre-period outcomes; time weights
``lambda`` with intercept and ``zeta_lambda = 1e-6 sigma``; both by Frank-Wolfe with R's sparsification.
ATT = ``(Ybar_1,post - omega'Ybar_0,post) - (lambda'Y_1,pre - omega'Y_0,pre lambda)`` in outcome units.
Standard error by placebo (Algorithm 4): ``reps`` draws, each a permutation of the donors (one
``rng.permutation(N0)`` per draw from ``np.random.default_rng(seed)``) whose last unit plays the treated unit,
weights re-estimated warm-started from the fitted ones; ``se = sqrt((reps - 1) / reps) sd(placebo ATTs)``.
p-value and 95% CI are normal approximations, ``2 (1 - Phi(|ATT| / se))`` and ``ATT -/+ 1.96 se`` (as R's
``synthdid``; diff-diff's own ``p_value`` is the placebo rank, not used here).

What this module adds to the library call (why it is not a bare call):

* the single-treated-unit panel and its checks (:mod:`analysis.models.single_treated`: one treated unit, donors
  with a complete path, clear errors naming the file and column);
* the per-period effects ``ATT t=<year>`` = ``(Y_1t - omega'Y_0t) - lambda'(Y_1,pre - Y_0,pre omega)`` (their mean
  is the ATT) and their placebo standard errors. diff-diff reports the ATT of the placebo draws only, so the draws
  are replayed here with diff-diff's own weight solvers (``compute_sdid_unit_weights``, ``compute_time_weights``)
  on the same permutations and the same normalised outcomes; every replayed placebo ATT must equal the library's
  (:data:`DRAW_TOLERANCE`), or the fit stops — the per-period SEs come from exactly the library's draws;
* refusal of a degenerate result: every placebo draw must succeed (diff-diff skips failed draws, with a warning
  only above 5 %); fewer than ``reps`` draws is an error, never an SE on fewer draws written silently;
* the companion tables (:func:`sdid_outputs`): the synthetic path (``paths``), the unit weights ``omega``
  (``weights``) and the time weights ``lambda`` (``time_weights``), from the library's result object.

Checked against the Python port of the R package (``synthdid-py``), against diff-diff called directly and against
the published California Proposition 99 number in tests/test_models_synth_prop99.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import warnings
from dataclasses import dataclass
from importlib import metadata

import numpy as np
import pandas as pd

from analysis.models.distributions import norm_ppf, norm_sf
from analysis.models.single_treated import single_treated_panel

if TYPE_CHECKING:  # annotations only: the spec module imports the registry
    from analysis.models.spec import Spec

#: Largest difference allowed between a replayed placebo ATT and diff-diff's, relative to the largest |placebo
#: ATT|. Same inputs, same solver, same permutations: the replay agrees to rounding (about 1e-15 on the real
#: panel and on Proposition 99); anything near this bound means the library's draws changed.
DRAW_TOLERANCE = 1e-9

_SDID_METHOD = (
    "synthetic DiD (Arkhangelsky et al. 2021; R synthdid defaults) by diff-diff {version} SyntheticDiD; placebo "
    "standard error (Algorithm 4, {reps} draws, seed {seed}; per-period SEs from the same draws); normal p-value "
    "and 95% CI"
)


def _diff_diff():
    """diff-diff's ``SyntheticDiD`` and weight solvers, imported when an sdid fit runs (the package loads slowly)."""
    from diff_diff import SyntheticDiD
    from diff_diff.utils import compute_sdid_unit_weights, compute_time_weights

    return SyntheticDiD, compute_sdid_unit_weights, compute_time_weights


def diff_diff_version() -> str:
    return metadata.version("diff-diff")


def _sum_normalise(weights: np.ndarray) -> np.ndarray:
    """R synthdid's ``sum_normalize``: weights / their sum, uniform if the sum is not positive."""
    total = weights.sum()
    return weights / total if total > 0 else np.full(len(weights), 1.0 / len(weights))


@dataclass(frozen=True)
class SdidResult:
    """One synthetic-DiD fit on a unit x time matrix (donors first, the treated unit last).

    ``tau`` ATT; ``curve`` per-post-period effects (their mean is ``tau``); ``omega`` (N0,) donor weights;
    ``lambda_`` (T0,) pre-period weights; ``synthetic`` (T,) the donors' weighted path ``omega'Y_0t``;
    ``se``/``curve_se`` placebo standard errors (NaN without draws); ``placebo_taus``/``placebo_curves`` the draws;
    ``noise_level``, ``zeta_omega``, ``zeta_lambda`` the regularisation (outcome units), as diff-diff reports them.
    """

    tau: float
    curve: np.ndarray
    omega: np.ndarray
    lambda_: np.ndarray
    synthetic: np.ndarray
    se: float
    curve_se: np.ndarray
    placebo_taus: np.ndarray
    placebo_curves: np.ndarray
    noise_level: float
    zeta_omega: float
    zeta_lambda: float


def _long_frame(Y: np.ndarray, n_pre: int) -> tuple[pd.DataFrame, list[int]]:
    """The matrix as diff-diff's long input: units 0..N-1 in row order (so its sorted control order is ours), the
    block treatment indicator (1 in every period for the last row), times 0..T-1; returns it and the post times."""
    n_units, n_times = Y.shape
    frame = pd.DataFrame({
        "unit": np.repeat(np.arange(n_units), n_times),
        "time": np.tile(np.arange(n_times), n_units),
        "y": Y.ravel(),
        "treated": np.repeat((np.arange(n_units) == n_units - 1).astype(int), n_times),
    })
    return frame, list(range(n_pre, n_times))


def _placebo_curves(Y: np.ndarray, n_pre: int, reps: int, seed: int, omega: np.ndarray, lambda_: np.ndarray,
                    noise_level: float, zeta_omega: float, zeta_lambda: float) -> tuple[np.ndarray, np.ndarray]:
    """Replay diff-diff's placebo draws (``SyntheticDiD._placebo_variance_se``, non-survey path) and return
    (placebo ATTs (reps,), placebo per-period effects (reps, T1)) in outcome units.

    As the library: outcomes normalised by the mean and standard deviation of the donors' pre-period outcomes,
    zetas and the stopping rule ``1e-5 noise level`` on that scale; per draw one ``rng.permutation(N0)``, the last
    donor pseudo-treated, omega warm-started from the fitted omega of the pseudo-donors (renormalised), lambda
    from the fitted lambda, both re-estimated by the library's solvers. Written here only because the library does
    not return the per-period effects of its draws.
    """
    _, unit_weights, time_weights = _diff_diff()
    donors = Y[:-1].T  # (T, N0), the library's layout
    shift = float(np.mean(donors[:n_pre]))
    scale = float(np.std(donors[:n_pre]))
    if not (np.isfinite(scale) and scale > 1e-12 * max(abs(shift), 1.0)):
        scale = 1.0  # the library's floor for a (near-)constant pre-period outcome
    normalised = (donors - shift) / scale
    noise_n = noise_level / scale
    min_decrease = 1e-5 * noise_n if noise_n > 0 else 1e-5
    rng = np.random.default_rng(seed)
    n0 = donors.shape[1]
    taus, curves = np.empty(reps), np.empty((reps, Y.shape[1] - n_pre))
    for draw in range(reps):
        permutation = rng.permutation(n0)
        pseudo_donors, pseudo_treated = permutation[:-1], permutation[-1]
        pre, post = normalised[:n_pre, pseudo_donors], normalised[n_pre:, pseudo_donors]
        treated_path = normalised[:, pseudo_treated]
        omega_b = unit_weights(pre, treated_path[:n_pre], zeta_omega=zeta_omega / scale,
                               min_decrease=min_decrease, init_weights=_sum_normalise(omega[pseudo_donors]))
        lambda_b = time_weights(pre, post, zeta_lambda=zeta_lambda / scale, min_decrease=min_decrease,
                                init_weights=lambda_)
        gap = treated_path - normalised[:, pseudo_donors] @ omega_b
        curves[draw] = (gap[n_pre:] - lambda_b @ gap[:n_pre]) * scale
        taus[draw] = curves[draw].mean()
    return taus, curves


def sdid_estimate(Y: np.ndarray, n_pre: int, reps: int = 200, seed: int = 0) -> SdidResult:
    """Synthetic DiD on a matrix ``Y`` (donors first, the one treated unit last) by ``diff_diff.SyntheticDiD``,
    with placebo standard errors of the ATT (the library's) and of the per-period effects (its draws replayed).

    ``reps = 0`` skips the placebo (SEs NaN; the library is then called with its deterministic jackknife variance,
    whose SE is discarded). The placebo draws use ``np.random.default_rng(seed)``, one permutation per draw.
    Raises ``ValueError`` when a placebo draw fails or a replayed draw differs from the library's.
    """
    Y = np.asarray(Y, dtype=float)
    n0, t1 = Y.shape[0] - 1, Y.shape[1] - n_pre
    if reps > 0 and n0 < 2:
        raise ValueError("placebo standard errors need at least 2 donors")
    synthetic_did, _, _ = _diff_diff()
    frame, post_times = _long_frame(Y, n_pre)
    estimator = (synthetic_did(variance_method="placebo", n_bootstrap=reps, seed=seed) if reps > 0
                 else synthetic_did(variance_method="jackknife", n_bootstrap=0, seed=seed))
    with warnings.catch_warnings():
        # diff-diff's own warnings pass through (its "pre-treatment fit is poor" diagnostic included), except, for
        # reps = 0, the note that the discarded jackknife SE is not available with one treated unit.
        if reps == 0:
            warnings.filterwarnings("ignore", message="Jackknife variance requires", category=UserWarning)
        fit = estimator.fit(frame, outcome="y", treatment="treated", unit="unit", time="time",
                            post_periods=post_times)
    omega = np.array([fit.unit_weights[u] for u in range(n0)])
    lambda_ = np.array([fit.time_weights[t] for t in range(n_pre)])
    synthetic = omega @ Y[:-1]
    gap = Y[-1] - synthetic
    curve = gap[n_pre:] - lambda_ @ gap[:n_pre]
    se, curve_se = np.nan, np.full(t1, np.nan)
    placebo_taus, placebo_curves = np.array([]), np.empty((0, t1))
    if reps > 0:
        library_taus = np.asarray(fit.variance_effects if fit.variance_effects is not None else [])
        if len(library_taus) != reps:
            raise ValueError(f"synthetic DiD: only {len(library_taus)} of {reps} placebo draws succeeded in "
                             "diff-diff; no standard error is reported on fewer draws than the spec asks for")
        placebo_taus, placebo_curves = _placebo_curves(Y, n_pre, reps, seed, omega, lambda_, fit.noise_level,
                                                       fit.zeta_omega, fit.zeta_lambda)
        deviation = float(np.max(np.abs(placebo_taus - library_taus)))
        if deviation > DRAW_TOLERANCE * max(float(np.max(np.abs(library_taus))), np.finfo(float).tiny):
            raise ValueError(f"synthetic DiD: the replayed placebo draws differ from diff-diff's by up to "
                             f"{deviation:.3g} (diff-diff {diff_diff_version()} changed its draws?); per-period "
                             "standard errors would not come from the library's draws")
        factor = np.sqrt((reps - 1) / reps)
        se = float(fit.se)
        curve_se = factor * np.std(placebo_curves, axis=0, ddof=1)
        placebo_taus = library_taus
    return SdidResult(tau=float(fit.att), curve=curve, omega=omega, lambda_=lambda_, synthetic=synthetic, se=se,
                      curve_se=curve_se, placebo_taus=placebo_taus, placebo_curves=placebo_curves,
                      noise_level=float(fit.noise_level), zeta_omega=float(fit.zeta_omega),
                      zeta_lambda=float(fit.zeta_lambda))


@dataclass(frozen=True)
class SdidOutputs:
    """The estimates (estimator contract), the companion tables ``paths``, ``weights``, ``time_weights``, and the
    fit they come from (placebo draws included)."""

    estimates: pd.DataFrame
    paths: pd.DataFrame
    weights: pd.DataFrame
    time_weights: pd.DataFrame
    fit: SdidResult


def sdid_fit(df: pd.DataFrame, spec: Spec) -> SdidOutputs:
    """Synthetic DiD under the estimator contract, with its companion tables; see the module docstring.

    Reads ``spec.inference`` keys ``method`` ('placebo') and ``reps`` (default 200) and ``spec.seed``.
    Estimates: rows ``ATT`` and ``ATT t=<time>`` per post period. Companions: ``paths`` (treated unit by time:
    ``actual``, ``synthetic`` = omega'Y_0t, ``gap`` = actual - synthetic, ``counterfactual`` = synthetic + the
    lambda-weighted pre-period gap, so that a post period's effect is ``actual - counterfactual``, ``post``,
    ``time_weight`` lambda_t (0 after the treatment)); ``weights`` (donor ``unit``, ``weight`` omega);
    ``time_weights`` (pre-period ``time``, ``weight`` lambda).
    """
    inference = spec.inference  # method and reps: defaults in analysis.models.spec.Inference
    if inference.method != "placebo":
        raise ValueError(f"sdid supports inference method 'placebo' only, got {inference.method!r}")
    reps, seed = int(inference.reps), int(spec.seed)
    panel = single_treated_panel(df, spec)
    result = sdid_estimate(panel.Y, panel.n_pre, reps=reps, seed=seed)
    z = norm_ppf(0.975)
    post_times = panel.times[panel.n_pre:]
    terms = ["ATT"] + [f"ATT t={t}" for t in post_times]
    estimate = np.concatenate([[result.tau], result.curve])
    se = np.concatenate([[result.se], result.curve_se])
    with np.errstate(invalid="ignore", divide="ignore"):
        p_value = 2 * norm_sf(np.abs(estimate / se))
    estimates = pd.DataFrame({
        "term": terms, "estimate": estimate, "std_error": se, "p_value": p_value,
        "ci_low": estimate - z * se, "ci_high": estimate + z * se, "n_obs": int(panel.Y.size),
        "method": _SDID_METHOD.format(version=diff_diff_version(), reps=reps, seed=seed),
        "treated_unit": panel.treated_unit, "first_treated_time": panel.first_treated_time,
        "n_pre_periods": panel.n_pre, "n_donors": panel.n_donors, "reps": reps,
        "noise_level": result.noise_level, "zeta_omega": result.zeta_omega,
        "donors_excluded": ",".join(str(u) for u in panel.donors_excluded),
    })
    actual = panel.Y[-1]
    gap = actual - result.synthetic
    time_weight = np.concatenate([result.lambda_, np.zeros(len(post_times))])
    paths = pd.DataFrame({
        "unit": panel.treated_unit, "time": panel.times, "actual": actual, "synthetic": result.synthetic,
        "gap": gap, "counterfactual": result.synthetic + result.lambda_ @ gap[:panel.n_pre],
        "post": np.arange(len(panel.times)) >= panel.n_pre, "time_weight": time_weight,
    })
    weights = pd.DataFrame({"unit": panel.units[:-1], "weight": result.omega})
    time_weights = pd.DataFrame({"time": panel.times[:panel.n_pre], "weight": result.lambda_})
    return SdidOutputs(estimates=estimates, paths=paths, weights=weights, time_weights=time_weights, fit=result)


def sdid(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Synthetic-DiD estimates (ATT and per-period effects) under the estimator contract; see :func:`sdid_fit`."""
    return sdid_fit(df, spec).estimates


def sdid_outputs(df: pd.DataFrame, spec: Spec) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Estimates and the companion tables the estimation stage writes beside them (``paths``, ``weights``,
    ``time_weights``; :func:`analysis.paths.companion`)."""
    result = sdid_fit(df, spec)
    return result.estimates, {"paths": result.paths, "weights": result.weights, "time_weights": result.time_weights}
