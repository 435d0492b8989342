"""Honest DiD (Rambachan--Roth 2023) sensitivity sets: hand cases, monotonicity, known truth, agreement with
diff-diff and scipy; the published HonestDiD example is in test_models_honest_did_medicaid.py."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.models import honest_did as H
from analysis.models import att_gt as CS, sunab as SA
from test_models_staggered import SPEC, simulate_staggered
from reference.make_reference_values import HONEST_GRID, diff_diff_honest_sd
from reference_data import reference_values


def _event_study(estimates: dict[int, float]) -> pd.DataFrame:
    return pd.DataFrame({"term": [f"ATT e={k}" for k in estimates], "estimate": list(estimates.values())})


def test_sd_with_m0_is_linear_extrapolation_ci():
    # One pre-period (e=-2) and e=0: under Delta^SD(0) delta_e = c (e + 1), so the only unbiased affine
    # estimator is beta_0 + beta_{-2} and the FLCI is it +/- z * sd(beta_0 + beta_{-2}).
    es = _event_study({-2: 0.3, 0: 1.0})
    vcov = np.array([[0.04, 0.01], [0.01, 0.09]])
    out = H.honest_did(es, vcov, "SD", [0.0], target=0).iloc[0]
    sd = np.sqrt(0.04 + 0.09 + 2 * 0.01)
    z = stats.norm.ppf(0.975)
    assert out["ci_low"] == pytest.approx(1.3 - z * sd, abs=1e-10)
    assert out["ci_high"] == pytest.approx(1.3 + z * sd, abs=1e-10)
    assert out["estimate"] == pytest.approx(1.0)
    # M > 0 adds worst-case curvature bias M (one second difference between e=-1 and e=0): the FLCI is
    # centred at the same estimator with half-length sd * cv_alpha(M / sd).
    m = 0.2
    wide = H.honest_did(es, vcov, "SD", [m], target=0).iloc[0]
    half = sd * H._folded_normal_cv(m / sd, 0.05)
    assert wide["ci_high"] - wide["ci_low"] == pytest.approx(2 * half, rel=1e-8)


def test_rm_sets_nest_in_mbar_and_mbar0_is_nearly_the_conventional_ci():
    es = _event_study({-3: 0.05, -2: -0.1, 0: 0.5, 1: 0.8})
    vcov = np.diag([0.01, 0.01, 0.02, 0.03])
    rm = H.honest_did(es, vcov, "RM", [0.0, 0.5, 1.0, 2.0], target=0)
    # Mbar = 0 pins delta_post = 0, so theta = tau_0 is tested by the moments +/-(beta_0 - theta) <= 0; the
    # conditional test given the sign of beta_0 - theta is a one-sided test of size (alpha - kappa) / (1 - kappa)
    # truncated at the least-favourable c.v., within 0.5% of the conventional half-width here.
    half = stats.norm.ppf(0.975) * np.sqrt(0.02)
    assert rm["ci_low"].iloc[0] == pytest.approx(0.5 - half, abs=0.005 * half)
    assert rm["ci_high"].iloc[0] == pytest.approx(0.5 + half, abs=0.005 * half)
    assert np.all(np.diff(rm["ci_low"]) < 0) and np.all(np.diff(rm["ci_high"]) > 0)  # nested, widening


@pytest.mark.parametrize("source", ["frozen", "live"])
def test_sd_sets_widen_with_m_and_agree_with_diff_diff(source):
    """Against diff-diff's smoothness sets: frozen in tests/data/reference_values.json (by
    tests/reference/make_reference_values.py), and live where diff-diff is installed (then equal to the frozen)."""
    df = simulate_staggered(seed=9, noise_sd=0.3)
    spec = SPEC.replace(aggregate="dynamic", event_window=[-3, 3])
    es, vcov = CS.att_gt_event_study(df, spec)
    grid = HONEST_GRID
    sd = H.honest_did(es, vcov, "SD", grid, target="average")
    widths = (sd["ci_high"] - sd["ci_low"]).to_numpy()
    assert np.all(np.diff(widths) > 0)

    ref = reference_values()["staggered"]["honest_sd"]
    if source == "live":
        pytest.importorskip("diff_diff", reason="diff-diff not installed: the frozen values were checked")
        live = diff_diff_honest_sd(df, grid)
        assert live["event_times"] == ref["event_times"]
        assert live["sd_sets"].keys() == ref["sd_sets"].keys()
        for m, bounds in live["sd_sets"].items():
            assert bounds == pytest.approx(ref["sd_sets"][m], rel=1e-10, abs=1e-12)
    # diff-diff's event study keeps all event times; restrict both to the same window via its l_vec
    # default (average of post periods) only when the windows coincide.
    if ref["event_times"] != sorted(int(t.split("=")[1]) for t in es["term"]):
        # a window wider than the panel: every event time
        es_full, vcov_full = CS.att_gt_event_study(df, spec.replace(event_window=[-100, 100]))
        sd = H.honest_did(es_full, vcov_full, "SD", grid, target="average")
    for row in sd.itertuples():
        ci_lb, ci_ub = ref["sd_sets"][repr(float(row.value))]
        # The half-length is flat near the optimum, so near-optimal estimators' centres differ by ~3e-6;
        # ours is never longer than diff-diff's (a grid zoom over sd with an SLSQP inner problem).
        assert row.ci_low == pytest.approx(ci_lb, abs=1e-5)
        assert row.ci_high == pytest.approx(ci_ub, abs=1e-5)
        assert row.ci_high - row.ci_low <= ci_ub - ci_lb + 1e-12


def test_honest_rows_appended_by_estimators():
    df = simulate_staggered(seed=2)
    spec = SPEC.replace(aggregate="dynamic", event_window=[-3, 3],
                        inference={"honest": {"M": [0.0, 0.1], "Mbar": [0.0, 1.0], "target": 0}})
    for estimator in (CS.att_gt, SA.sunab):
        out = estimator(df, spec).set_index("term")
        assert {"honest SD M=0 e=0", "honest SD M=0.1 e=0", "honest RM Mbar=0 e=0",
                "honest RM Mbar=1 e=0"} <= set(out.index)
        assert out.loc["honest SD M=0.1 e=0", "ci_high"] - out.loc["honest SD M=0.1 e=0", "ci_low"] > \
            out.loc["honest SD M=0 e=0", "ci_high"] - out.loc["honest SD M=0 e=0", "ci_low"]
    # For sunab, e=-1 is the reference, so RM with Mbar=0 tests theta = ATT e=0 alone: nearly its normal CI.
    # Honest DiD uses normal critical values (as R HonestDiD); the estimator's own CI uses t(G-1), so the set is
    # compared with the normal interval computed here, and is narrower than the t(G-1) one.
    sa = SA.sunab(df, spec).set_index("term")
    est, se = sa.loc["ATT e=0", "estimate"], sa.loc["ATT e=0", "std_error"]
    half = 1.959963984540054 * se
    assert sa.loc["honest RM Mbar=0 e=0", "ci_low"] == pytest.approx(est - half, abs=0.005 * half)
    assert sa.loc["honest RM Mbar=0 e=0", "ci_high"] == pytest.approx(est + half, abs=0.005 * half)
    assert sa.loc["ATT e=0", "ci_high"] - sa.loc["ATT e=0", "ci_low"] > 2 * half * 1.01


def test_honest_did_rejects_gaps():
    with pytest.raises(ValueError, match="consecutive"):
        H.honest_did(_event_study({-3: 0.0, 0: 1.0}), np.eye(2), "SD", [0.0])


def _max_bias_sd(weights: np.ndarray, loadings: np.ndarray, slope: np.ndarray, m: float) -> float:
    """max over Delta^SD(M) of weights' delta, in closed form (inf if ``weights`` are not invariant to linear trends).

    With delta = d * slope + K s (``loadings, slope`` from ``H._second_difference_loadings``), weights' delta =
    d (weights' slope) + (K' weights)' s; d is free and each |s_j| <= M, so the maximum is M * sum_j |(K' weights)_j|
    when weights' slope = 0 and unbounded otherwise: the reference the FLCI's half-length is checked against
    (honest_did computes the bias through ``_AffineFamily``); the linear programme :func:`_lp_max_bias` checks it.
    """
    scale = float(np.abs(weights) @ np.abs(slope)) or 1.0
    if abs(float(weights @ slope)) > 1e-9 * scale:
        return np.inf
    return float(m * np.abs(loadings.T @ weights).sum())


def _lp_max_bias(weights, event_times, m):
    """Reference: max weights'delta over |second differences of (delta with delta_{-1} = 0)| <= M, by HiGHS."""
    from scipy import optimize

    full = np.arange(event_times.min(), event_times.max() + 1)
    pos = {e: i for i, e in enumerate(event_times)}
    rows = []
    for e in full[1:-1]:
        row = np.zeros(len(event_times))
        for step, coef in ((-1, 1.0), (0, -2.0), (1, 1.0)):
            if e + step in pos:
                row[pos[e + step]] += coef
        rows.append(row)
    a = np.vstack(rows + [-r for r in rows])
    res = optimize.linprog(-weights, A_ub=a, b_ub=np.full(len(a), m), bounds=[(None, None)] * len(weights),
                           method="highs")
    return np.inf if res.status == 3 else float(-res.fun)


@pytest.mark.parametrize("times", [(-4, 2), (-2, 0), (-3, 3), (-6, 1)])
def test_closed_form_max_bias_equals_the_linear_programme(times):
    rng = np.random.default_rng(sum(times) + 10)
    event_times = np.array([e for e in range(times[0], times[1] + 1) if e != -1])
    slope = event_times + 1.0
    loadings, trend = H._second_difference_loadings(event_times)
    for _ in range(20):
        w = rng.normal(size=len(event_times))
        invariant = w - slope * (w @ slope) / (slope @ slope)  # zero bias on linear trends
        m = float(rng.uniform(0.01, 2.0))
        assert _max_bias_sd(invariant, loadings, trend, m) == pytest.approx(
            _lp_max_bias(invariant, event_times, m), rel=1e-7, abs=1e-10)
        assert _max_bias_sd(w, loadings, trend, m) == np.inf == _lp_max_bias(w, event_times, m)


def test_folded_normal_cv_is_convex_with_the_implicit_slope():
    # The FLCI objective h * cv(b / h) is convex only if cv is (its perspective); its gradient uses cv'.
    b = np.linspace(0.0, 12.0, 241)
    cv = np.array([H._folded_normal_cv(x, 0.05) for x in b])
    assert np.all(np.diff(cv, 2) >= -1e-9)
    numeric = (np.array([H._folded_normal_cv(x + 1e-6, 0.05) for x in b[1:-1]])
               - np.array([H._folded_normal_cv(x - 1e-6, 0.05) for x in b[1:-1]])) / 2e-6
    analytic = np.array([H._folded_normal_cv_slope(x, c) for x, c in zip(b[1:-1], cv[1:-1])])
    assert analytic == pytest.approx(numeric, abs=1e-6)


@pytest.mark.parametrize("times,target", [((-5, 2), 0), ((-4, 2), "average"), ((-3, 3), 1)])
def test_flci_half_length_is_the_minimum(times, target):
    # No affine estimator unbiased for linear trends has a shorter half-length: random directions around the
    # optimum and the minimum-variance and minimum-bias estimators are all at least as long.
    rng = np.random.default_rng(sum(times) + 3)
    event_times = np.array([e for e in range(times[0], times[1] + 1) if e != -1])
    root = rng.normal(size=(len(event_times), len(event_times)))
    sigma = root @ root.T / len(event_times) * 0.01 + np.eye(len(event_times)) * 0.002
    l_post = H._target_vector(event_times, target)
    family = H._AffineFamily.build(event_times, sigma, l_post)
    loadings, slope = H._second_difference_loadings(event_times)
    for m in (0.01, 0.05, 0.3):
        weights, half = H._flci(family, m, 0.05)

        def half_length(v):
            sd = np.sqrt(v @ sigma @ v)
            return sd * H._folded_normal_cv(_max_bias_sd(v, loadings, slope, m) / sd, 0.05)

        assert half == pytest.approx(half_length(weights), rel=1e-12)
        z_opt = np.linalg.lstsq(family.embed, weights - family.base, rcond=None)[0]
        for z in [family.min_variance(), family.min_bias()] + [z_opt + rng.normal(scale=s, size=z_opt.size)
                                                               for s in (1e-4, 1e-2, 1.0) for _ in range(30)]:
            assert half_length(family.weights(z)) >= half - 1e-12 * half


def test_dual_vertices_give_the_lp_statistic():
    # eta(y) = min_{eta, tau} eta s.t. y - X tau <= eta sd (ARP's statistic, HonestDiD .test_delta_lp_fn) equals
    # the largest gamma'y over the enumerated dual vertices, for the moment designs of the Delta^RM pieces.
    from scipy import optimize

    rng = np.random.default_rng(5)
    for n_pre, l_post in ((3, np.array([1.0, 0.0, 0.0, 0.0])), (4, np.full(3, 1 / 3)), (2, np.array([1.0]))):
        n = n_pre + len(l_post)
        sigma = np.diag(rng.uniform(0.5, 2.0, n))
        null = np.linalg.svd(l_post[None, :])[2][1:].T
        for s in range(-(n_pre - 1), 1):
            for positive in (True, False):
                a = H._rm_moments(n_pre, len(l_post), 1.5, s, positive)
                piece = H._ArpMoments.build(a, rng.normal(size=n), sigma, n_pre, l_post)
                sd, design = np.sqrt(np.diag(a @ sigma @ a.T)), a[:, n_pre:] @ null
                for _ in range(4):
                    y = rng.normal(size=len(sd))
                    res = optimize.linprog(np.r_[1.0, np.zeros(design.shape[1])],
                                           A_ub=-np.column_stack([sd, design]), b_ub=-y,
                                           bounds=[(None, None)] * (1 + design.shape[1]), method="highs")
                    assert (piece.vertices @ y).max() == pytest.approx(res.fun, abs=1e-9)


def test_rm_moments_are_honestdid_create_a_rm():
    # HonestDiD .create_A_RM(numPrePeriods = 2, numPostPeriods = 2, Mbar = 2, s = 0, max_positive = TRUE), post rows
    # only. Columns (delta_{-3}, delta_{-2}, delta_0, delta_1); the largest pre step is delta_{-1} - delta_{-2}
    # = -delta_{-2}. Post rows: +/-(delta_0 - 0) <= 2 (-delta_{-2}) and +/-(delta_1 - delta_0) <= 2 (-delta_{-2}).
    expected = np.array([[0, 2, 1, 0], [0, 2, -1, 1], [0, 2, -1, 0], [0, 2, 1, -1]], dtype=float)
    assert H._rm_moments(2, 2, 2.0, 0, True) == pytest.approx(expected)
    # s = -1 (step delta_{-2} - delta_{-3}), max negative: bound -(delta_{-2} - delta_{-3}).
    expected = np.array([[-2, 2, 1, 0], [-2, 2, -1, 1], [-2, 2, -1, 0], [-2, 2, 1, -1]], dtype=float)
    assert H._rm_moments(2, 2, 2.0, -1, False) == pytest.approx(expected)


def test_truncated_normal_quantile_agrees_with_scipy():
    p = 0.95
    lower = np.array([-np.inf, -3.0, -1.0, 0.0, 2.0, 5.0, 9.0, -12.0, -np.inf])
    upper = np.array([np.inf, 3.0, 0.5, 0.3, 2.5, np.inf, 30.0, -10.0, -7.0])
    ref = stats.truncnorm.ppf(p, lower, upper)
    assert H._truncated_normal_ppf(p, lower, upper) == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_rm_set_covers_the_true_effect_where_the_plug_in_does_not():
    # Known truth: one pre step of size a (delta_{-2} = -a), the post step at its Delta^RM(2) limit (delta_0 = 2a),
    # tau = 1, beta_hat ~ N(tau + delta, 0.25^2 I). The ARP set must cover tau in >= 95% of samples (up to Monte
    # Carlo error); the plug-in set (identified set at beta_hat +/- z sd) ignores the noise in the pre step and
    # covers ~84% here (Var(e_0 - 2 e_{-2}) = 5 sd^2).
    rng = np.random.default_rng(20240517)
    mbar, a, noise, tau = 2.0, 1.0, 0.25, 1.0
    sigma = np.eye(2) * noise**2
    draws = np.random.default_rng(H.LF_SEED).standard_normal((10_000, 2))
    covered = 0
    reps = 200
    for rep in range(reps):
        beta = np.array([-a, tau + mbar * a]) + rng.normal(0.0, noise, 2)
        low, high = H._rm_confidence_set(beta, sigma, 1, np.array([1.0]), mbar, 0.05, draws)
        covered += low <= tau <= high
        if rep == 0:  # the public function gives the same set (with its own, larger, set of draws)
            public = H.honest_did(_event_study({-2: beta[0], 0: beta[1]}), sigma, "RM", [mbar], target=0).iloc[0]
            assert public.ci_low == pytest.approx(low, abs=0.02) and public.ci_high == pytest.approx(high, abs=0.02)
    assert covered / reps >= 0.95 - 2 * np.sqrt(0.05 * 0.95 / reps)


def test_honest_did_is_deterministic():
    es = _event_study({-4: 0.02, -3: -0.03, -2: 0.01, 0: 0.4, 1: 0.5, 2: 0.7})
    vcov = np.diag([0.01, 0.012, 0.011, 0.02, 0.03, 0.04]) + 0.003
    first = pd.concat([H.honest_did(es, vcov, "RM", [0.0, 1.0], "average"),
                       H.honest_did(es, vcov, "SD", [0.0, 0.05], "average")])
    second = pd.concat([H.honest_did(es, vcov, "RM", [0.0, 1.0], "average"),
                        H.honest_did(es, vcov, "SD", [0.0, 0.05], "average")])
    pd.testing.assert_frame_equal(first, second, check_exact=True)


@pytest.mark.parametrize("scale", [1e-4, 1e3])
def test_sets_scale_with_the_outcome(scale):
    # Rescaling the outcome (beta -> c beta, Sigma -> c^2 Sigma, M -> c M) rescales every set by c: the solvers
    # work in scale-free units (an index in points or in shares gives the same conclusions).
    es = _event_study({-4: 0.02, -3: -0.03, -2: 0.01, 0: 0.4, 1: 0.5, 2: 0.7})
    vcov = np.diag([0.01, 0.012, 0.011, 0.02, 0.03, 0.04]) + 0.003
    scaled = es.assign(estimate=es["estimate"] * scale)
    for restriction, grid in (("SD", [0.0, 0.02, 0.1]), ("RM", [0.0, 0.5, 1.5])):
        base = H.honest_did(es, vcov, restriction, grid, "average")
        factor = scale if restriction == "SD" else 1.0  # M is in outcome units, Mbar is a ratio
        out = H.honest_did(scaled, vcov * scale**2, restriction, [g * factor for g in grid], "average")
        assert out["ci_low"].to_numpy() == pytest.approx(base["ci_low"].to_numpy() * scale, rel=1e-7)
        assert out["ci_high"].to_numpy() == pytest.approx(base["ci_high"].to_numpy() * scale, rel=1e-7)
