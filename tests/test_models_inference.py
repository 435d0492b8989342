"""Wild cluster bootstrap and randomization inference: agreement with a naive refit loop on the same draws,
with the wildboottest package (Monte Carlo tolerance), with pyfixest, and seeded determinism."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.models.inference import (
    _draw_weights,
    demean_twoway,
    ri_null_distribution,
    ri_pvalue,
    wild_bootstrap_pvalue,
)
from reference_data import reference_values   # tests/ is on sys.path


def clustered_data(seed: int = 3, G: int = 31, T: int = 7, beta: float = 0.15):
    rng = np.random.default_rng(seed)
    n = G * T
    clusters = np.repeat(np.arange(G), T)
    x = rng.normal(size=n) + rng.normal(size=G)[clusters]
    z = rng.normal(size=n)
    y = beta * x + 0.3 * z + rng.normal(size=n) + rng.normal(size=G)[clusters]
    return y, np.column_stack([np.ones(n), x, z]), clusters


def naive_wild_t(y, X, clusters, j, V, impose_null, ssc):
    """One OLS refit per draw with explicit residuals and CRV1 sandwich: the textbook algorithm."""
    G = V.shape[0]
    xtx_inv = np.linalg.inv(X.T @ X)
    beta = xtx_inv @ X.T @ y
    if impose_null:
        Xo = np.delete(X, j, axis=1)
        fitted = Xo @ np.linalg.lstsq(Xo, y, rcond=None)[0]
        center = 0.0
    else:
        fitted = X @ beta
        center = beta[j]
    resid = y - fitted
    t = np.empty(V.shape[1])
    for b in range(V.shape[1]):
        y_star = fitted + V[clusters, b] * resid
        b_star = xtx_inv @ X.T @ y_star
        u = y_star - X @ b_star
        meat = sum(np.outer(X[clusters == g].T @ u[clusters == g], X[clusters == g].T @ u[clusters == g])
                   for g in range(G))
        var = ssc * (xtx_inv @ meat @ xtx_inv)[j, j]
        t[b] = (b_star[j] - center) / np.sqrt(var)
    return t


@pytest.mark.parametrize("impose_null", [True, False])
@pytest.mark.parametrize("weights", ["rademacher", "webb"])
def test_wild_bootstrap_equals_naive_refit_loop_on_same_draws(impose_null, weights):
    y, X, clusters = clustered_data(G=12, T=5)
    reps, seed = 300, 4
    fast = wild_bootstrap_pvalue(y, X, clusters, 1, reps=reps, weights=weights, seed=seed, impose_null=impose_null)
    V = _draw_weights(weights, 12, reps, np.random.default_rng(seed))
    n, k = X.shape
    ssc = 12 / 11 * (n - 1) / (n - k)
    t_star = naive_wild_t(y, X, clusters, 1, V, impose_null, ssc)
    assert fast["p_value"] == pytest.approx(np.mean(np.abs(t_star) >= abs(fast["t_stat"])), abs=1e-12)


def test_t_stat_is_crv1_with_fixest_small_sample_factor():
    import statsmodels.api as sm

    y, X, clusters = clustered_data()
    result = wild_bootstrap_pvalue(y, X, clusters, 1, reps=99, seed=1)
    # statsmodels' cluster covariance uses the same G/(G-1) (n-1)/(n-k) factor.
    reference = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": clusters})
    assert result["t_stat"] == pytest.approx(reference.tvalues[1], rel=1e-10)
    assert result["std_error"] == pytest.approx(reference.bse[1], rel=1e-10)
    assert float(result) == result["p_value"]


@pytest.mark.parametrize("impose_null, weights", [(True, "rademacher"), (True, "webb"), (False, "rademacher")])
def test_wild_bootstrap_agrees_with_frozen_wildboottest(impose_null, weights):
    """The same comparison against wildboottest 0.3.2's numbers frozen in tests/data/reference_values.json (made by
    tests/reference/make_reference_values.py), so it runs without the package."""
    frozen = reference_values()["wild_bootstrap"]["oneway"]["results"][f"{weights}-impose_null={impose_null}"]
    y, X, clusters = clustered_data(seed=12, beta=0.35)
    reps = 9999
    ours = wild_bootstrap_pvalue(y, X, clusters, 1, reps=reps, weights=weights, seed=5, impose_null=impose_null)
    assert ours["t_stat"] == pytest.approx(frozen["statistic"], rel=1e-8)
    mc_sd = np.sqrt(2 * frozen["p_value"] * (1 - frozen["p_value"]) / reps)
    assert abs(ours["p_value"] - frozen["p_value"]) < 4 * mc_sd + 1e-3


@pytest.mark.parametrize("impose_null, weights", [(True, "rademacher"), (True, "webb"), (False, "rademacher")])
def test_wild_bootstrap_agrees_with_wildboottest(impose_null, weights):
    import statsmodels.api as sm

    wildboottest = pytest.importorskip("wildboottest.wildboottest",
                                       reason="wildboottest not installed: the frozen values were checked")
    y, X, clusters = clustered_data(seed=12, beta=0.35)
    reps = 9999
    ours = wild_bootstrap_pvalue(y, X, clusters, 1, reps=reps, weights=weights, seed=5, impose_null=impose_null)
    model = sm.OLS(y, pd.DataFrame(X, columns=["const", "x", "z"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = wildboottest.wildboottest(model, B=reps, cluster=clusters, param="x", weights_type=weights,
                                              impose_null=impose_null, seed=6, show=False)
    p_ref = float(reference["p-value"].iloc[0])
    assert ours["t_stat"] == pytest.approx(float(reference["statistic"].iloc[0]), rel=1e-8)
    # Independent draws: the two p-values differ by Monte Carlo error, sd sqrt(2 p (1 - p) / B).
    mc_sd = np.sqrt(2 * p_ref * (1 - p_ref) / reps)
    assert abs(ours["p_value"] - p_ref) < 4 * mc_sd + 1e-3
    frozen = reference_values()["wild_bootstrap"]["oneway"]["results"][f"{weights}-impose_null={impose_null}"]
    assert (float(reference["statistic"].iloc[0]), p_ref) == pytest.approx((frozen["statistic"], frozen["p_value"]),
                                                                           rel=1e-12)


def test_wild_bootstrap_ci_inverts_the_test():
    y, X, clusters = clustered_data(seed=2)
    result = wild_bootstrap_pvalue(y, X, clusters, 1, reps=999, seed=3, confidence=0.95)
    assert result["ci_low"] < result["estimate"] < result["ci_high"]
    inside = wild_bootstrap_pvalue(y, X, clusters, 1, reps=999, seed=3, beta0=result["ci_low"] + 1e-3)
    outside = wild_bootstrap_pvalue(y, X, clusters, 1, reps=999, seed=3, beta0=result["ci_low"] - 1e-3)
    assert inside["p_value"] >= 0.05 > outside["p_value"]


def test_wild_bootstrap_is_deterministic_and_seed_dependent():
    y, X, clusters = clustered_data(seed=9, beta=0.2)
    a = wild_bootstrap_pvalue(y, X, clusters, 1, reps=999, seed=1)
    assert a == wild_bootstrap_pvalue(y, X, clusters, 1, reps=999, seed=1)
    assert a["p_value"] != wild_bootstrap_pvalue(y, X, clusters, 1, reps=999, seed=2)["p_value"]


def staggered_panel(seed: int = 3, N: int = 31, T: int = 7, effect: float = 0.5, n_missing: int = 3):
    rng = np.random.default_rng(seed)
    cohorts = pd.Series(rng.choice([0, 2018, 2019, 2020], N), index=np.arange(N))
    df = pd.DataFrame({"unit": np.repeat(np.arange(N), T), "year": np.tile(np.arange(2015, 2015 + T), N)})
    c = cohorts[df["unit"]].to_numpy()
    df["d"] = ((c > 0) & (df["year"] >= c)).astype(float)
    df["x"] = rng.normal(size=len(df))
    df["y"] = (effect * df["d"] + 0.2 * df["x"] + rng.normal(size=N)[df["unit"]]
               + rng.normal(size=T)[df["year"] - 2015] + rng.normal(size=len(df)))
    df.loc[rng.choice(len(df), n_missing, replace=False), "y"] = np.nan  # unbalanced
    return df, cohorts


@pytest.mark.parametrize("controls", [[], ["x"]])
def test_ri_coefficients_equal_pyfixest_refits_on_same_permutations(controls):
    import pyfixest as pf

    df, _ = staggered_panel()
    result = ri_null_distribution(df, "unit", "year", "y", "d", reps=200, seed=1, controls=controls)
    rhs = " + ".join(["dp"] + controls)
    observed = pf.feols(f"y ~ {' + '.join(['d'] + controls)} | unit + year", df).coef()["d"]
    assert result["observed"] == pytest.approx(observed, abs=1e-10)
    paths = df.pivot(index="unit", columns="year", values="d").to_numpy()
    for r in range(0, 200, 25):
        frame = df.assign(dp=paths[result["permutations"][r]][df["unit"], df["year"] - 2015])
        refit = pf.feols(f"y ~ {rhs} | unit + year", frame).coef()["dp"]
        assert result["permuted"][r] == pytest.approx(refit, abs=1e-10)


def test_ri_pvalue_formula_and_power():
    df, _ = staggered_panel(effect=1.5, seed=4)
    result = ri_pvalue(df, "unit", "year", "y", "d", reps=999, seed=3)
    null = ri_null_distribution(df, "unit", "year", "y", "d", reps=999, seed=3)["permuted"]
    by_hand = (1 + np.sum(np.abs(null) >= abs(result["observed"]) * (1 - 1e-10))) / 1000
    assert result["p_value"] == pytest.approx(by_hand)
    assert result["p_value"] < 0.01  # a strong effect is detected
    assert ri_pvalue(df, "unit", "year", "y", "d", reps=999, seed=3) == result  # deterministic


def test_demean_twoway_balanced_equals_closed_form():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(6, 5))
    closed = Z - Z.mean(axis=1, keepdims=True) - Z.mean(axis=0, keepdims=True) + Z.mean()
    np.testing.assert_allclose(demean_twoway(Z, np.ones_like(Z, dtype=bool)), closed, atol=1e-13)
