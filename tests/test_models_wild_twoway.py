"""Wild cluster bootstrap (WCR/WCU) with fixed effects that are not nested in the clusters (issue 13, section 1).

The regression's bootstrap refits ``y* = X b_r + D a_r + v_g u_r`` on ``[X, D]`` with every fixed-effect dummy.
Partialling the effects out once, before the bootstrap, reproduces that only for effects nested in the clusters;
year effects with province clusters are not. These tests hold ``analysis.models.inference.wild_bootstrap_pvalue``
to (a) a slow dummy-variable refit loop on the same draws (to 1e-10), (b) wildboottest through pyfixest, which
bootstraps the one-hot design (same draws: identical p-value; independent draws: Monte Carlo tolerance), and
(c) the engine's ``p_value_wild``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.models import registry
from analysis.models.sample import select_sample
from analysis.models.inference import _draw_weights, wild_bootstrap_pvalue
from analysis.models.ols import fe_dummies, residualise
from models_engine_sim import base_spec, simulate_panel
from reference_data import reference_values


def twoway_panel(seed: int = 1, G: int = 31, T: int = 7, n_missing: int = 9, spread: float = 3.0,
                 beta: float = 0.0):
    """Unbalanced G x T panel: unit and year effects, exposure x post regressor ``d``, a control ``z``.

    Error scale differs across units (log-normal with sd ``spread``/2), so a few clusters carry most of the
    noise: the design where the year-effect part of the bootstrap residuals matters most.
    """
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(G), T)
    year = np.tile(np.arange(T), G)
    exposure = rng.normal(size=G)
    d = exposure[unit] * (year >= 4)
    z = rng.normal(size=G * T)
    scale = np.exp(spread * rng.normal(size=G) / 2)
    y = (beta * d + 0.3 * z + rng.normal(size=G)[unit] + rng.normal(size=T)[year]
         + rng.normal(size=G * T) * scale[unit])
    keep = np.ones(G * T, dtype=bool)
    keep[rng.choice(G * T, n_missing, replace=False)] = False
    return y[keep], np.column_stack([d, z])[keep], unit[keep], year[keep]


def dummy_variable_t_star(y, X, fe_labels, clusters, V, j, ssc, impose_null=True):
    """The textbook algorithm, one refit per draw: design Z = [X, all FE dummies (full rank)]; restricted fit
    without column j (WCR) or the full fit (WCU); y* = fitted + v_g u; OLS of y* on Z; CRV1 t with ``ssc``."""
    blocks = []
    for position, labels in enumerate(fe_labels):
        levels = np.unique(labels)
        block = (labels[:, None] == levels[None, :]).astype(float)
        blocks.append(block if position == 0 else block[:, 1:])  # drop one level of every later effect
    Z = np.column_stack([X] + blocks)
    assert np.linalg.matrix_rank(Z) == Z.shape[1]
    zz_inv = np.linalg.inv(Z.T @ Z)
    b = zz_inv @ Z.T @ y
    if impose_null:
        Zr = np.delete(Z, j, axis=1)
        fitted = Zr @ np.linalg.lstsq(Zr, y, rcond=None)[0]
        center = 0.0
    else:
        fitted = Z @ b
        center = b[j]
    u = y - fitted
    codes = pd.factorize(pd.Series(clusters), sort=True)[0]
    G = codes.max() + 1
    t = np.empty(V.shape[1])
    for r in range(V.shape[1]):
        y_star = fitted + V[codes, r] * u
        b_star = zz_inv @ Z.T @ y_star
        u_star = y_star - Z @ b_star
        scores = np.zeros((G, Z.shape[1]))
        np.add.at(scores, codes, Z * u_star[:, None])
        variance = ssc * (zz_inv @ scores.T @ scores @ zz_inv)[j, j]
        t[r] = (b_star[j] - center) / np.sqrt(variance)
    return t


def fixest_ssc(n: int, G: int, k: int, n_absorbed: int) -> float:
    return G / (G - 1) * (n - 1) / (n - k - n_absorbed)


@pytest.mark.parametrize("weights", ["webb", "rademacher"])
@pytest.mark.parametrize("impose_null", [True, False])
@pytest.mark.parametrize("partialled", [True, False])
def test_twoway_bootstrap_equals_dummy_variable_refits_on_same_draws(weights, impose_null, partialled):
    """Two-way FE, unbalanced, 31 clusters: every bootstrap t equals the dummy-variable refit's to 1e-10.

    ``partialled``: y and X arrive residualised on the effects (as from ols_fe) or raw (residualised inside).
    """
    y, X, unit, year = twoway_panel(seed=2)
    n, G, reps, seed, n_absorbed = len(y), 31, 199, 7, 7  # K = 2 + intercept + 6 year effects
    D = fe_dummies([unit, year])
    y_in, X_in = (residualise(y[:, None], D)[:, 0], residualise(X, D)) if partialled else (y, X)
    ours = wild_bootstrap_pvalue(y_in, X_in, unit, 0, reps=reps, weights=weights, seed=seed, n_absorbed=n_absorbed,
                                 impose_null=impose_null, fixed_effects=[unit, year], return_draws=True)
    V = _draw_weights(weights, G, reps, np.random.default_rng(seed))
    slow = dummy_variable_t_star(y, X, [unit, year], unit, V, 0, fixest_ssc(n, G, 2, n_absorbed), impose_null)
    np.testing.assert_allclose(ours["t_star"], slow, rtol=0, atol=1e-10)
    assert ours["p_value"] == np.mean(np.abs(slow) >= abs(ours["t_stat"]))
    # The partial-out-once bootstrap (no fixed effects passed) is a different, wrong DGP on this design.
    once = wild_bootstrap_pvalue(residualise(y[:, None], D)[:, 0], residualise(X, D), unit, 0, reps=reps,
                                 weights=weights, seed=seed, n_absorbed=n_absorbed, impose_null=impose_null,
                                 return_draws=True)
    assert np.abs(once["t_star"] - slow).max() > 0.1


def test_nested_effects_need_no_correction():
    """Unit effects only (nested in the unit clusters): the published formula is already exact, so passing the
    effects or not gives the same draws, and both equal the dummy-variable refits."""
    y, X, unit, year = twoway_panel(seed=4)
    n, G, reps, seed = len(y), 31, 199, 3
    D = fe_dummies([unit])
    y_t, X_t = residualise(y[:, None], D)[:, 0], residualise(X, D)
    with_fe = wild_bootstrap_pvalue(y_t, X_t, unit, 1, reps=reps, seed=seed, fixed_effects=[unit],
                                    return_draws=True)
    without = wild_bootstrap_pvalue(y_t, X_t, unit, 1, reps=reps, seed=seed, return_draws=True)
    np.testing.assert_allclose(with_fe["t_star"], without["t_star"], rtol=0, atol=1e-10)
    V = _draw_weights("rademacher", G, reps, np.random.default_rng(seed))
    slow = dummy_variable_t_star(y, X, [unit], unit, V, 1, fixest_ssc(n, G, 2, 0))
    np.testing.assert_allclose(with_fe["t_star"], slow, rtol=0, atol=1e-10)


def test_intercept_as_a_fixed_effect_equals_intercept_regressor():
    """An intercept is an effect that cuts across every cluster: passed as a one-level fixed effect it must give
    the same draws as the plain regression with a constant column (where the published formula is exact)."""
    y, X, unit, _ = twoway_panel(seed=5)
    n = len(y)
    as_fe = wild_bootstrap_pvalue(y, X, unit, 0, reps=499, weights="webb", seed=2, n_absorbed=1,
                                  fixed_effects=[np.zeros(n, dtype=int)], return_draws=True)
    as_column = wild_bootstrap_pvalue(y, np.column_stack([X, np.ones(n)]), unit, 0, reps=499, weights="webb",
                                      seed=2, return_draws=True)
    np.testing.assert_allclose(as_fe["t_star"], as_column["t_star"], rtol=0, atol=1e-10)
    assert as_fe["t_stat"] == pytest.approx(as_column["t_stat"], rel=1e-10)
    assert as_fe["p_value"] == as_column["p_value"]


def test_twoway_bootstrap_agrees_with_frozen_wildboottest():
    """The comparison below against pyfixest/wildboottest's numbers frozen in tests/data/reference_values.json
    (tests/reference/make_reference_values.py; the first 200 of its 9,999 bootstrap t's), without the packages."""
    frozen = reference_values()["wild_bootstrap"]["twoway"]
    y, X, unit, year = twoway_panel(seed=1)
    reps = 9999

    def ours(seed: int, **options):
        return wild_bootstrap_pvalue(y, X, unit, 0, reps=reps, weights="webb", seed=seed, n_absorbed=7,
                                     fixed_effects=[unit, year], **options)

    independent = ours(11)
    mc_sd = np.sqrt(2 * frozen["p_value"] * (1 - frozen["p_value"]) / reps)
    assert abs(independent["p_value"] - frozen["p_value"]) < 4 * mc_sd + 1e-3
    assert independent["estimate"] == pytest.approx(frozen["coef_d"], rel=1e-10)
    same = ours(12, return_draws=True)
    assert same["p_value"] == frozen["p_value"]
    kept = len(frozen["t_star_first"])
    ratio = same["t_star"][:kept] / np.asarray(frozen["t_star_first"])
    np.testing.assert_allclose(ratio, same["t_stat"] / frozen["t_value"], rtol=1e-8)


def test_twoway_bootstrap_agrees_with_wildboottest():
    """pyfixest's ``wildboottest()`` bootstraps the one-hot (dummy-variable) design with wildboottest 0.3.2.

    Independent draws (seeds 11 vs 12): the two p-values are each a mean of B = 9,999 Bernoulli draws, so their
    difference has sd sqrt(2 p (1 - p) / B) (~0.007 here); we allow 4 sd + 0.001 (a false alarm about once in
    15,000 runs). On this design the partial-out-once bootstrap is off by ~0.05 (7 sd), so the check bites.
    Same seed: wildboottest draws its weights with the same generator calls as ours (numpy ``choice`` over the
    sorted clusters), so the bootstrap t's agree up to the ratio of the two small-sample factors (wildboottest
    counts the unit dummies in k) and the p-values are identical.
    """
    import pyfixest as pf

    pytest.importorskip("wildboottest", reason="wildboottest not installed: the frozen values were checked")
    y, X, unit, year = twoway_panel(seed=1)
    frame = pd.DataFrame({"y": y, "d": X[:, 0], "z": X[:, 1], "unit": unit, "year": year})
    fit = pf.feols("y ~ d + z | unit + year", frame, vcov={"CRV1": "unit"})
    reps = 9999

    def ours(seed: int, **options):
        return wild_bootstrap_pvalue(y, X, unit, 0, reps=reps, weights="webb", seed=seed, n_absorbed=7,
                                     fixed_effects=[unit, year], **options)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference, reference_t = fit.wildboottest(reps=reps, param="d", weights_type="webb", impose_null=True,
                                                  seed=12, return_bootstrapped_t_stats=True)
    p_ref = float(reference["Pr(>|t|)"])
    independent = ours(11)
    mc_sd = np.sqrt(2 * p_ref * (1 - p_ref) / reps)
    assert abs(independent["p_value"] - p_ref) < 4 * mc_sd + 1e-3
    assert independent["estimate"] == pytest.approx(fit.coef()["d"], rel=1e-10)

    same = ours(12, return_draws=True)
    assert same["p_value"] == p_ref
    ratio = same["t_star"] / np.asarray(reference_t).ravel()
    np.testing.assert_allclose(ratio, same["t_stat"] / float(reference["t value"]), rtol=1e-8)


def test_engine_p_value_wild_equals_dummy_variable_bootstrap():
    """The engine's ``p_value_wild`` for a two-way-FE cont_did on an unbalanced panel is the dummy-variable WCR
    p-value on the same draws (seed from the spec, Webb weights)."""
    df = simulate_panel(21, noise=1.0)
    df.loc[[3, 40, 41, 100, 150], "y_cont"] = np.nan
    df["y_null"] = df["y_cont"] - 0.5 * df["exposure"] * df["post"]  # remove the true effect: p not ~0
    reps, seed = 999, 17
    spec = base_spec(estimator="cont_did", outcome="y_null", exposure="exposure", treatment="post",
                     controls=["x1"], seed=seed, inference={"wild_bootstrap": {"reps": reps, "weights": "webb"}})
    out = registry.estimate(select_sample(df, spec), spec).set_index("term")
    used = df.dropna(subset=["y_null"]).sort_values(["province_code", "year"])
    y = used["y_null"].to_numpy()
    X = np.column_stack([(used["exposure"] * used["post"]).to_numpy(), used["x1"].to_numpy()])
    unit, year = used["province_code"].to_numpy(), used["year"].to_numpy()
    n, G = len(y), 31
    V = _draw_weights("webb", G, reps, np.random.default_rng(seed))
    slow = dummy_variable_t_star(y, X, [unit, year], unit, V, 0, fixest_ssc(n, G, 2, 7))
    t_obs = out.loc["exposure:post", "statistic"]
    p_slow = np.mean(np.abs(slow) >= abs(t_obs))
    assert out.loc["exposure:post", "p_value_wild"] == pytest.approx(p_slow, abs=1e-12)
    assert 0.05 < p_slow < 0.95


def test_regressor_absorbed_by_the_fixed_effects_is_an_error():
    y, X, unit, year = twoway_panel(seed=3)
    X = np.column_stack([X, (year == 2).astype(float)])  # a year dummy: spanned by the year effects
    with pytest.raises(ValueError, match=r"columns \[2\] of X are collinear with the fixed effects"):
        wild_bootstrap_pvalue(y, X, unit, 0, reps=99, fixed_effects=[unit, year])
