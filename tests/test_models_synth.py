"""Synthetic control and synthetic DiD: known truth on simulated panels, hand-computed placebo ranks, agreement
with pysyncon, input validation and determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.io import DataError
from analysis.models.sdid import sdid, sdid_estimate
from analysis.models.simplex import simplex_least_squares
from analysis.models.single_treated import single_treated_panel
from reference_data import reference_values   # tests/ is on sys.path
from analysis.models.synth import synth, synth_fit
from analysis.models.spec import Spec

SPEC = Spec.from_mapping({"estimator": "synth", "outcome": "y", "unit": "unit", "time": "year", "treatment": "d",
                          "controls": [], "inference": {}, "seed": 7})


def factor_panel(effect: float = 5.0, n_donors: int = 20, n_years: int = 20, first_post: int = 2015,
                 level_shift: float = 0.0, noise: float = 0.05, seed: int = 0, treated_noise: float = 0.0
                 ) -> tuple[pd.DataFrame, np.ndarray]:
    """Two-factor panel; the treated unit is a known convex combination of donors (plus ``level_shift``) plus
    ``effect`` in every post year (plus ``treated_noise`` x N(0, 1), drawn after everything else). Returns the long
    frame and the true donor weights."""
    rng = np.random.default_rng(seed)
    years = np.arange(first_post - n_years + 5, first_post + 5)
    factors = np.column_stack([np.linspace(0, 3, len(years)) ** 1.5, np.sin(np.arange(len(years)) / 2.0)])
    loadings = rng.normal(1.0, 0.6, size=(n_donors, 2))
    unit_fe = rng.normal(10.0, 2.0, size=n_donors)
    donors = unit_fe[:, None] + loadings @ factors.T + noise * rng.normal(size=(n_donors, len(years)))
    true_w = np.zeros(n_donors)
    true_w[[1, 2, 3] if n_donors < 8 else [1, 4, 7]] = [0.5, 0.3, 0.2]
    treated = true_w @ donors + level_shift + (years >= first_post) * effect
    if treated_noise:
        treated = treated + treated_noise * rng.normal(size=len(years))
    rows = [
        {"unit": f"u{i:02d}", "year": int(t), "y": float(donors[i, j]), "d": 0}
        for i in range(n_donors) for j, t in enumerate(years)
    ] + [{"unit": "treated", "year": int(t), "y": float(treated[j]), "d": int(t >= first_post)}
         for j, t in enumerate(years)]
    return pd.DataFrame(rows), true_w


def test_synth_recovers_known_effect_and_weights_inside_convex_hull():
    df, true_w = factor_panel(effect=5.0, noise=0.0)
    result = synth_fit(df, SPEC)
    att = result.estimates.set_index("term").loc["ATT"]
    # Noise-free and inside the hull with more pre periods than donors: the fit and the gap are exact.
    assert att["estimate"] == pytest.approx(5.0, abs=1e-6)
    # A perfect pre fit has pre RMSPE 0 and ratio +inf (not rounding noise). The RMSPE ratio of the treated unit
    # is then undefined: no ATT p-value (it would only count the placebos that also fit perfectly, issue 13).
    assert att["rmspe_pre"] == 0.0 and att["rmspe_ratio"] == np.inf
    perfect = (result.paths.groupby("unit")["rmspe_pre"].first() == 0).sum()
    assert 1 < perfect < 21 and att["n_placebos_perfect_fit"] == perfect - 1
    assert np.isnan(att["p_value"]) and np.isnan(att["placebo_rank"])
    assert att["p_value_statistic"].startswith("none: treated pre-RMSPE is 0")
    assert att["p_value_floor"] == pytest.approx(1 / 21)
    # Donors span only three dimensions (level and two factors) and the post periods follow the same factors, so
    # any exact fit would give the same gaps: the ATT is identified and the classic weights are kept. Here the
    # treated point lies on the boundary of the donors' hull, so even the weights are unique (their range over all
    # exact fits is a point).
    assert att["fit_unique"] and att["synth_method"] == "classic" and np.isnan(att["identified_low"])
    np.testing.assert_allclose(result.weights["weight"].to_numpy(), true_w, atol=1e-6)
    np.testing.assert_allclose(result.weights["weight_min"], result.weights["weight_max"], atol=1e-7)
    per_year = result.estimates[result.estimates["term"].str.startswith("ATT t=")]
    assert list(per_year["term"]) == [f"ATT t={y}" for y in range(2015, 2020)]
    np.testing.assert_allclose(per_year["estimate"], 5.0, atol=1e-6)


def test_synth_recovers_effect_with_noise_and_placebo_rejects():
    # The treated unit gets noise of its own, so its pre-period fit is not exact and the RMSPE ratio is defined.
    df, _ = factor_panel(effect=3.0, noise=0.05, seed=3, treated_noise=0.05)
    est = synth(df, SPEC).set_index("term")
    assert est.loc["ATT", "estimate"] == pytest.approx(3.0, abs=0.15)
    # The treated unit's RMSPE ratio is the largest of all 21 units: p = 1/21.
    assert est.loc["ATT", "placebo_rank"] == 1
    assert est.loc["ATT", "p_value"] == pytest.approx(1 / 21)
    assert np.isnan(est.loc["ATT", "std_error"])


def test_weights_lie_on_simplex_for_every_fit():
    df, _ = factor_panel(effect=0.0, noise=0.5, seed=11, n_years=8)  # 3 pre periods, 20 donors: not unique
    result = synth_fit(df, SPEC)
    w = result.weights["weight"].to_numpy()
    assert (w >= 0).all() and w.sum() == pytest.approx(1.0, abs=1e-12)
    # Each placebo's synthetic path is a convex combination of the others: it lies within their range.
    wide = df.pivot(index="unit", columns="year", values="y")
    for unit, path in result.paths[result.paths["role"] == "placebo"].groupby("unit"):
        others = wide.drop(index=[unit, "treated"])
        assert (path["synthetic"].to_numpy() <= others.max().to_numpy() + 1e-9).all()
        assert (path["synthetic"].to_numpy() >= others.min().to_numpy() - 1e-9).all()


def test_simplex_least_squares_matches_brute_force_on_two_donors():
    # One-dimensional problem: w_B minimises sum_t (b_t - (1 - w) A_t - w B_t)^2 on [0, 1].
    A = np.array([[0.0, 2.0], [1.0, 5.0], [3.0, 1.0]])
    b = np.array([1.0, 2.0, 2.5])
    grid = np.linspace(0, 1, 200001)
    losses = ((b[:, None] - np.outer(A[:, 0], 1 - grid) - np.outer(A[:, 1], grid)) ** 2).sum(axis=0)
    w = simplex_least_squares(A, b)
    assert w[1] == pytest.approx(grid[np.argmin(losses)], abs=1e-5)


def tiny_panel(treated_post: tuple[float, float]) -> pd.DataFrame:
    """Three units, pre 2015-2017, post 2018-2019 (values chosen so every fit is computable by hand)."""
    paths = {"A": [0, 0, 0, 0, 0], "B": [2, 2, 2, 2, 10], "T": [1, 1, 2, *treated_post]}
    return pd.DataFrame([{"unit": u, "year": 2015 + j, "y": float(v), "d": int(u == "T" and j >= 3)}
                         for u, values in paths.items() for j, v in enumerate(values)])


def test_placebo_p_value_equals_rank_over_n_by_hand():
    # Treated: w_B = mean(T_pre)/2 = 2/3; pre gaps (-1/3, -1/3, 2/3) -> RMSPE_pre = sqrt(2)/3.
    # Post synthetic (4/3, 20/3); T_post = (5, 2) -> gaps (11/3, -14/3), RMSPE_post = sqrt((121+196)/18).
    # Placebo A: synthetic = B (its only donor): RMSPE_pre 2, RMSPE_post sqrt((4+100)/2); ratio 3.606.
    # Placebo B: synthetic = A: same ratio. Treated ratio = sqrt(317/18) / (sqrt(2)/3) = 8.90 -> rank 1 of 3.
    result = synth_fit(tiny_panel((5.0, 2.0)), SPEC)
    est = result.estimates.set_index("term")
    assert result.weights.set_index("unit")["weight"]["B"] == pytest.approx(2 / 3, abs=1e-9)
    assert est.loc["ATT", "estimate"] == pytest.approx((11 / 3 - 14 / 3) / 2, abs=1e-9)
    assert est.loc["ATT", "rmspe_pre"] == pytest.approx(np.sqrt(2) / 3, abs=1e-9)
    assert est.loc["ATT", "rmspe_ratio"] == pytest.approx(np.sqrt(317 / 18) / (np.sqrt(2) / 3), abs=1e-8)
    assert est.loc["ATT", "placebo_rank"] == 1
    assert est.loc["ATT", "p_value"] == pytest.approx(1 / 3)
    # Per year, |gap|: 2018: T 11/3 vs placebos 2, 2 -> 1/3; 2019: T 14/3 vs 10, 10 -> 3/3.
    assert est.loc["ATT t=2018", "p_value"] == pytest.approx(1 / 3)
    assert est.loc["ATT t=2019", "p_value"] == pytest.approx(1.0)
    ratios = result.paths.groupby("unit")["rmspe_ratio"].first()
    assert ratios["A"] == pytest.approx(np.sqrt(52) / 2) and ratios["B"] == pytest.approx(np.sqrt(52) / 2)


def test_placebo_p_value_when_treated_ranks_last():
    # T_post = (1.5, 7): gaps (1/6, 1/3) -> ratio 0.559 < 3.606 for both placebos -> p = 3/3.
    est = synth(tiny_panel((1.5, 7.0)), SPEC).set_index("term")
    assert est.loc["ATT", "placebo_rank"] == 3
    assert est.loc["ATT", "p_value"] == pytest.approx(1.0)


def test_synth_paths_cover_treated_and_every_placebo():
    df, _ = factor_panel(seed=2, n_donors=6, n_years=10)
    fit = synth_fit(df, SPEC)
    paths = fit.paths
    assert sorted(paths["unit"].unique()) == sorted(df["unit"].unique())
    assert (paths.groupby("unit").size() == 10).all()
    assert set(paths.loc[paths["unit"] == "treated", "role"]) == {"treated"}
    np.testing.assert_allclose(paths["gap"], paths["actual"] - paths["synthetic"])
    assert fit.weights["weight"].sum() == pytest.approx(1.0)


def _custom_v_design():
    rng = np.random.default_rng(5)
    pre = rng.normal(size=(24, 8)).cumsum(axis=0) + 50  # 24 pre periods, 8 donors: unique weights
    treated = pre @ np.array([0.4, 0.0, 0.3, 0.0, 0.0, 0.2, 0.1, 0.0]) + rng.normal(0, 0.3, 24)
    return pre, treated


def test_synth_agrees_with_frozen_pysyncon_custom_v():
    """The check below against pysyncon 1.7.0's weights frozen in tests/data/reference_values.json
    (tests/reference/make_reference_values.py), without the package."""
    frozen = np.asarray(reference_values()["synth"]["synth_custom_v"]["W"])
    pre, treated = _custom_v_design()
    sd = np.column_stack([pre, treated]).std(axis=1, ddof=1)
    w = simplex_least_squares(pre, treated, v=1 / sd**2)
    np.testing.assert_allclose(w, frozen, atol=2e-4)
    loss = lambda x: (((treated - pre @ x) / sd) ** 2).sum()  # noqa: E731
    assert loss(w) <= loss(frozen) + 1e-12


def test_synth_agrees_with_pysyncon_custom_v():
    pysyncon = pytest.importorskip("pysyncon", reason="pysyncon not installed: the frozen weights were checked")
    rng = np.random.default_rng(5)
    pre = rng.normal(size=(24, 8)).cumsum(axis=0) + 50  # 24 pre periods, 8 donors: unique weights
    treated = pre @ np.array([0.4, 0.0, 0.3, 0.0, 0.0, 0.2, 0.1, 0.0]) + rng.normal(0, 0.3, 24)
    X0 = pd.DataFrame(pre, columns=[f"u{i}" for i in range(8)])
    X1 = pd.Series(treated, name="treated")
    reference = pysyncon.Synth()
    reference.fit(X0=X0, X1=X1, Z0=X0, Z1=X1, custom_V=np.ones(24))
    # pysyncon standardises each predictor by its cross-unit sd before applying V: our v = 1/sd^2.
    sd = pd.concat([X0, X1], axis=1).std(axis=1).to_numpy()
    w = simplex_least_squares(pre, treated, v=1 / sd**2)
    np.testing.assert_allclose(w, reference.W, atol=2e-4)
    loss = lambda x: (((treated - pre @ x) / sd) ** 2).sum()  # noqa: E731
    assert loss(w) <= loss(np.asarray(reference.W)) + 1e-12  # ours is at least as good an optimum
    np.testing.assert_allclose(reference.W, reference_values()["synth"]["synth_custom_v"]["W"], rtol=0, atol=1e-12)


def test_synth_option_inverse_variance_matches_direct_solve():
    df, _ = factor_panel(seed=4, n_donors=5, n_years=12)
    spec = SPEC.replace(synth={"v": "inverse_variance"})
    w = synth_fit(df, spec).weights["weight"].to_numpy()
    wide = df.pivot(index="unit", columns="year", values="y")
    pre = wide.loc[:, wide.columns < 2015]
    sd = pre.std(axis=0).to_numpy()
    direct = simplex_least_squares(pre.drop(index="treated").to_numpy().T, pre.loc["treated"].to_numpy(),
                                   v=1 / sd**2)
    np.testing.assert_allclose(w, direct, atol=1e-10)


def test_sdid_recovers_known_effect_with_level_shift():
    df, _ = factor_panel(effect=4.0, level_shift=7.0, noise=0.05, seed=8, n_donors=25)
    est = sdid(df, SPEC.replace(estimator="sdid", inference={"reps": 50})).set_index("term")
    # SC alone would be biased by the level shift; SDID's intercept absorbs it.
    assert est.loc["ATT", "estimate"] == pytest.approx(4.0, abs=0.3)
    assert est.loc["ATT", "p_value"] < 0.01
    assert est.loc["ATT", "ci_low"] < 4.0 < est.loc["ATT", "ci_high"]
    per_year = est.loc[[f"ATT t={y}" for y in range(2015, 2020)], "estimate"]
    assert per_year.mean() == pytest.approx(est.loc["ATT", "estimate"], abs=1e-10)
    panel = single_treated_panel(df, SPEC)
    fitted = sdid_estimate(panel.Y, panel.n_pre, reps=0)
    omega, lam = fitted.omega, fitted.lambda_
    assert omega.sum() == pytest.approx(1.0) and lam.sum() == pytest.approx(1.0)
    assert (omega >= 0).all() and (lam >= 0).all()


def test_sdid_and_synth_are_deterministic_given_seed():
    df, _ = factor_panel(effect=1.0, noise=0.3, seed=9, n_donors=10, n_years=10)
    spec = SPEC.replace(estimator="sdid", inference={"reps": 30})
    first, second = sdid(df, spec), sdid(df, spec)
    pd.testing.assert_frame_equal(first, second)
    other_seed = sdid(df, spec.replace(seed=8))
    assert other_seed.loc[0, "std_error"] != first.loc[0, "std_error"]
    assert other_seed.loc[0, "estimate"] == first.loc[0, "estimate"]  # the point estimate has no randomness
    pd.testing.assert_frame_equal(synth(df, SPEC), synth(df.sample(frac=1.0, random_state=1), SPEC))


def test_incomplete_donor_is_excluded_not_imputed():
    df, _ = factor_panel(seed=1, n_donors=6, n_years=10)
    df.loc[(df["unit"] == "u03") & (df["year"] == 2012), "y"] = np.nan
    est = synth(df, SPEC)
    assert est.loc[0, "donors_excluded"] == "u03" and est.loc[0, "n_donors"] == 5


@pytest.mark.parametrize("mutate, message", [
    (lambda df: df.assign(d=np.where(df["unit"] == "u01", 1, df["d"])), "exactly one unit"),
    (lambda df: df.assign(d=df["d"].where(df.index != 3, 2)), "must be 0 or 1"),
    (lambda df: pd.concat([df, df.iloc[[5]]], ignore_index=True), "duplicate"),
    (lambda df: df.assign(y=df["y"].where(~((df["unit"] == "treated") & (df["year"] == 2013)))), "treated unit"),
    (lambda df: df.drop(columns="y"), "missing"),
])
def test_bad_input_raises_data_error_naming_the_column(mutate, message):
    df, _ = factor_panel(seed=1, n_donors=4, n_years=8)
    with pytest.raises(DataError, match=message) as info:
        synth(mutate(df), SPEC)
    assert info.value.column in {"unit", "d", "y"}
