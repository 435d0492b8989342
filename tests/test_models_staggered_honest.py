"""Honest DiD (Rambachan--Roth 2023) sensitivity sets: hand cases, monotonicity, agreement with diff-diff."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.models import honest_did as H
from analysis.models import staggered as S
from test_models_staggered import SPEC, simulate_staggered


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


def test_rm_with_mbar0_is_conventional_ci_and_sets_widen():
    es = _event_study({-3: 0.05, -2: -0.1, 0: 0.5, 1: 0.8})
    vcov = np.diag([0.01, 0.01, 0.02, 0.03])
    rm = H.honest_did(es, vcov, "RM", [0.0, 0.5, 1.0, 2.0], target=0)
    z = stats.norm.ppf(0.975)
    assert rm["ci_low"].iloc[0] == pytest.approx(0.5 - z * np.sqrt(0.02), abs=1e-12)
    assert rm["ci_high"].iloc[0] == pytest.approx(0.5 + z * np.sqrt(0.02), abs=1e-12)
    # Identified set half-width = Mbar * largest pre step (|0 - (-0.1)| vs |-0.1 - 0.05|: 0.15) for e=0.
    assert (rm["ci_high"] - rm["ci_low"]).iloc[1] == pytest.approx(2 * z * np.sqrt(0.02) + 2 * 0.5 * 0.15)
    assert np.all(np.diff(rm["ci_high"] - rm["ci_low"]) > 0)


def test_sd_sets_widen_with_m_and_agree_with_diff_diff():
    import diff_diff as dd

    df = simulate_staggered(seed=9, noise_sd=0.3)
    spec = {**SPEC, "aggregate": "dynamic", "event_window": [-3, 3]}
    es, vcov = S.att_gt_event_study(df, spec)
    grid = [0.0, 0.05, 0.1, 0.3]
    sd = H.honest_did(es, vcov, "SD", grid, target="average")
    widths = (sd["ci_high"] - sd["ci_low"]).to_numpy()
    assert np.all(np.diff(widths) > 0)
    rm = H.honest_did(es, vcov, "RM", [0.0, 0.5, 1.0], target="average")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_fit = dd.CallawaySantAnna(estimation_method="reg", base_period="universal").fit(
            df, outcome="y", unit="province_code", time="year", first_treat="first_year", aggregate="event_study")
        # diff-diff's event study keeps all event times; restrict both to the same window via its l_vec
        # default (average of post periods) only when the windows coincide.
        times = sorted(k for k in ref_fit.event_study_effects if k != -1)
        if times != sorted(int(t.split("=")[1]) for t in es["term"]):
            es_full, vcov_full = S.att_gt_event_study(df, {**spec, "event_window": None})
            sd = H.honest_did(es_full, vcov_full, "SD", grid, target="average")
            rm = H.honest_did(es_full, vcov_full, "RM", [0.0, 0.5, 1.0], target="average")
        for row in sd.itertuples():
            ref = dd.HonestDiD(method="smoothness", M=row.value).fit(ref_fit)
            assert row.ci_low == pytest.approx(ref.ci_lb, abs=1e-5)
            assert row.ci_high == pytest.approx(ref.ci_ub, abs=1e-5)
        for row in rm.itertuples():
            ref = dd.HonestDiD(method="relative_magnitude", M=row.value).fit(ref_fit)
            assert row.ci_low == pytest.approx(ref.ci_lb, abs=1e-6)
            assert row.ci_high == pytest.approx(ref.ci_ub, abs=1e-6)


def test_honest_rows_appended_by_estimators():
    df = simulate_staggered(seed=2)
    spec = {**SPEC, "aggregate": "dynamic", "event_window": [-3, 3],
            "inference": {"honest": {"M": [0.0, 0.1], "Mbar": [0.0, 1.0], "target": 0}}}
    for estimator in (S.att_gt, S.sunab):
        out = estimator(df, spec).set_index("term")
        assert {"honest SD M=0 e=0", "honest SD M=0.1 e=0", "honest RM Mbar=0 e=0",
                "honest RM Mbar=1 e=0"} <= set(out.index)
        assert out.loc["honest SD M=0.1 e=0", "ci_high"] - out.loc["honest SD M=0.1 e=0", "ci_low"] > \
            out.loc["honest SD M=0 e=0", "ci_high"] - out.loc["honest SD M=0 e=0", "ci_low"]
    # For sunab, e=-1 is the reference, so RM with Mbar=0 is exactly the ordinary CI of ATT e=0.
    sa = S.sunab(df, spec).set_index("term")
    assert sa.loc["honest RM Mbar=0 e=0", "ci_low"] == pytest.approx(sa.loc["ATT e=0", "ci_low"], abs=1e-12)


def test_honest_did_rejects_gaps():
    with pytest.raises(ValueError, match="consecutive"):
        H.honest_did(_event_study({-3: 0.0, 0: 1.0}), np.eye(2), "SD", [0.0])


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
        assert H._max_bias_sd(invariant, loadings, trend, m) == pytest.approx(
            _lp_max_bias(invariant, event_times, m), rel=1e-7, abs=1e-10)
        assert H._max_bias_sd(w, loadings, trend, m) == np.inf == _lp_max_bias(w, event_times, m)
