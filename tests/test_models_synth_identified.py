"""Synthetic control when the weights are not unique (issue 13): the identified set of the ATT over all optimal
weights (known by hand and checked against a second linear-programming route), the penalised estimator of Abadie
and L'Hour (2021) and its lambda -> 0+ limit (against the quadratic programme and pysyncon), no RMSPE-ratio
p-value for a perfect treated fit, in-time placebos, spec validation, and the paths/weights written with the
estimates."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import paths
from analysis.models.simplex import fit_weights, penalized_limit_weights, penalized_weights, simplex_least_squares
from analysis.models.synth import synth_fit
from analysis.models.spec import Spec
from reference_data import reference_values   # tests/ is on sys.path

SPEC = Spec.from_mapping({"estimator": "synth", "outcome": "y", "unit": "unit", "time": "year", "treatment": "d",
                          "controls": [], "inference": {}, "seed": 7})

# Two pre periods, four donors: the treated pre path (1, 1) is fitted exactly by w = (1/2 - s, 1/2 - s, s, s) for
# every s in [0, 1/2] (solve 2 wB - wC + 3 wD = 1, 2 wB + 3 wC - wD = 1, sum = 1 by hand: wC = wD = s).
# Post 2017: synthetic 2 (1/2 - s) + 6 s = 1 + 4 s, treated 4 -> gap 3 - 4 s in [1, 3].
# Post 2018: every donor and the treated unit are 1 -> gap 0 for every s.
# ATT = mean gap = (3 - 4 s) / 2 in [0.5, 1.5].
# Penalty d_j = ||(1, 1) - a_j||^2 = (2, 2, 8, 8): sum_j w_j d_j = 2 + 12 s, smallest at s = 0 -> w = (1/2, 1/2, 0, 0),
# gaps (3, 0), ATT 1.5.
SEGMENT = {"A": [0, 0, 0, 1], "B": [2, 2, 2, 1], "C": [-1, 3, 6, 1], "D": [3, -1, 0, 1], "T": [1, 1, 4, 1]}


def segment_panel() -> pd.DataFrame:
    return pd.DataFrame([{"unit": u, "year": 2015 + j, "y": float(v), "d": int(u == "T" and j >= 2)}
                         for u, values in SEGMENT.items() for j, v in enumerate(values)])


def factor_panel(n_donors=20, n_pre=15, n_post=5, noise=0.05, treated_noise=0.05, effect=2.0, seed=0):
    """Two-factor panel; the treated unit is 0.5/0.3/0.2 of donors 1, 4, 7 plus noise of its own plus ``effect``
    after the pre periods (years 2000 + t)."""
    rng = np.random.default_rng(seed)
    T = n_pre + n_post
    factors = np.column_stack([np.linspace(0, 3, T) ** 1.5, np.sin(np.arange(T) / 2.0)])
    donors = (rng.normal(10.0, 2.0, n_donors)[:, None] + rng.normal(1.0, 0.6, (n_donors, 2)) @ factors.T
              + noise * rng.normal(size=(n_donors, T)))
    true_w = np.zeros(n_donors)
    true_w[[1, 4, 7]] = [0.5, 0.3, 0.2]
    treated = true_w @ donors + treated_noise * rng.normal(size=T) + effect * (np.arange(T) >= n_pre)
    rows = [{"unit": f"u{i:02d}", "year": 2000 + t, "y": donors[i, t], "d": 0} for i in range(n_donors)
            for t in range(T)]
    rows += [{"unit": "treated", "year": 2000 + t, "y": treated[t], "d": int(t >= n_pre)} for t in range(T)]
    return pd.DataFrame(rows)


def matrices(df: pd.DataFrame, n_pre: int):
    wide = df.pivot(index="unit", columns="year", values="y")
    donors = wide.drop(index="treated" if "treated" in wide.index else "T").to_numpy()
    treated = wide.loc["treated" if "treated" in wide.index else "T"].to_numpy()
    return donors[:, :n_pre].T, treated[:n_pre], donors[:, n_pre:].T, treated[n_pre:]


# ---- identified set ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["auto", "classic"])
def test_identified_set_of_an_exact_fit_is_the_hand_computed_interval(method):
    est = synth_fit(segment_panel(), SPEC.replace(synth={"method": method})).estimates.set_index("term")
    assert not est.loc["ATT", "fit_unique"]
    assert est.loc["ATT", ["identified_low", "identified_high"]].tolist() == pytest.approx([0.5, 1.5], abs=1e-8)
    assert est.loc["ATT t=2017", ["identified_low", "identified_high"]].tolist() == pytest.approx([1, 3], abs=1e-8)
    assert est.loc["ATT t=2018", ["identified_low", "identified_high"]].tolist() == pytest.approx([0, 0], abs=1e-8)
    # Whatever weights are reported, the ATT lies in the identified set.
    assert 0.5 - 1e-8 <= est.loc["ATT", "estimate"] <= 1.5 + 1e-8


def test_auto_reports_the_unique_penalised_weights_where_the_fit_is_not_unique():
    result = synth_fit(segment_panel(), SPEC)
    est = result.estimates.set_index("term")
    assert est.loc["ATT", "synth_method"] == "penalized" and est.loc["ATT", "penalty_rule"] == "min"
    assert est.loc["ATT", "weights_unique"]
    assert est.loc["ATT", "estimate"] == pytest.approx(1.5, abs=1e-9)  # s = 0 (hand computation above)
    weights = result.weights.set_index("unit")
    np.testing.assert_allclose(weights["weight"], [0.5, 0.5, 0, 0], atol=1e-10)
    np.testing.assert_allclose(weights["weight_min"], 0, atol=1e-9)
    np.testing.assert_allclose(weights["weight_max"], 0.5, atol=1e-9)


def test_identified_range_agrees_with_an_independent_interior_point_programme():
    # 3 pre periods, 12 donors: exact fit, weights not unique. Second route: the interior-point solver on the
    # unscaled equalities {w >= 0, sum w = 1, A w = b}; every sampled optimal weight vector lies in the range.
    from scipy.optimize import linprog

    df = factor_panel(n_donors=12, n_pre=3, n_post=3, noise=0.3, treated_noise=0.0, seed=4)
    A, b, P, y = matrices(df, 3)
    fit = fit_weights(A, b, P, y)
    assert np.abs(A @ fit.classic_weights - b).max() < 1e-9 and not fit.fit_unique
    A_eq, b_eq = np.vstack([A, np.ones(12)]), np.append(b, 1.0)
    post_mean = P.mean(axis=0)
    low = y.mean() - linprog(-post_mean, A_eq=A_eq, b_eq=b_eq, bounds=(0, None), method="highs-ipm").x @ post_mean
    high = y.mean() - linprog(post_mean, A_eq=A_eq, b_eq=b_eq, bounds=(0, None), method="highs-ipm").x @ post_mean
    assert fit.gap_ranges[-1] == pytest.approx([low, high], abs=1e-7)
    assert high - low > 0.05
    rng = np.random.default_rng(0)
    for _ in range(20):
        w = linprog(rng.normal(size=12), A_eq=A_eq, b_eq=b_eq, bounds=(0, None), method="highs-ipm").x
        assert low - 1e-7 <= y.mean() - post_mean @ w <= high + 1e-7


def test_unique_fit_has_no_identified_range_and_auto_keeps_classic():
    df = factor_panel(seed=1)
    result = synth_fit(df, SPEC)
    est = result.estimates.set_index("term")
    assert est.loc["ATT", "fit_unique"] and est.loc["ATT", "synth_method"] == "classic"
    assert est.filter(like="ATT", axis=0)[["identified_low", "identified_high"]].isna().all().all()
    A, b, _, _ = matrices(df, 15)
    np.testing.assert_allclose(result.weights["weight"], simplex_least_squares(A, b), atol=0)
    np.testing.assert_allclose(result.weights["weight_min"], result.weights["weight_max"], atol=1e-7)


# ---- penalised synthetic control ----------------------------------------------------------------------------------


def test_penalised_limit_equals_classic_where_classic_is_unique():
    df = factor_panel(seed=2)
    A, b, P, y = matrices(df, 15)
    classic = simplex_least_squares(A, b)
    np.testing.assert_allclose(penalized_limit_weights(A, b), classic, atol=1e-10)
    penalised = synth_fit(df, SPEC.replace(synth={"method": "penalized"})).estimates.set_index("term")
    reference = synth_fit(df, SPEC.replace(synth={"method": "classic"})).estimates.set_index("term")
    assert penalised.loc["ATT", "estimate"] == pytest.approx(reference.loc["ATT", "estimate"], abs=1e-10)
    # and the quadratic programme with a tiny lambda is the classic solution up to O(lambda)
    np.testing.assert_allclose(penalized_weights(A, b, 1e-7), classic, atol=1e-4)


def test_penalised_quadratic_programme_converges_to_the_lambda_zero_plus_rule():
    A, b, _, _ = matrices(segment_panel(), 2)
    limit = penalized_limit_weights(A, b)
    np.testing.assert_allclose(limit, [0.5, 0.5, 0, 0], atol=1e-10)
    for lam in (1e-2, 1e-4, 1e-6):
        np.testing.assert_allclose(penalized_weights(A, b, lam), limit, atol=10 * lam)


def test_penalised_weights_agree_with_frozen_pysyncon():
    """The check below against pysyncon 1.7.0's PenalizedSynth weights frozen in tests/data/reference_values.json
    (tests/reference/make_reference_values.py), without the package."""
    frozen = reference_values()["synth"]["penalized_lambda_0.1"]
    A, b, _, _ = matrices(factor_panel(n_donors=10, n_pre=6, n_post=2, noise=0.4, seed=6), 6)
    sd = np.column_stack([A, b]).std(axis=1, ddof=1)
    ours = penalized_weights(A, b, 0.1, v=1 / sd**2)
    np.testing.assert_allclose(ours, frozen["W"], atol=1e-3)
    At, bt = A / sd[:, None], b / sd
    loss = lambda w: ((bt - At @ w) ** 2).sum() + 0.1 * w @ ((bt[:, None] - At) ** 2).sum(axis=0)  # noqa: E731
    assert loss(ours) <= loss(np.asarray(frozen["W"])) + 1e-12
    np.testing.assert_allclose(ours, frozen["W_tight"], atol=1e-5)


def test_penalised_weights_agree_with_pysyncon():
    pysyncon = pytest.importorskip("pysyncon", reason="pysyncon not installed: the frozen weights were checked")
    df = factor_panel(n_donors=10, n_pre=6, n_post=2, noise=0.4, seed=6)
    A, b, _, _ = matrices(df, 6)
    X0 = pd.DataFrame(A, columns=[f"u{i}" for i in range(10)])
    X1 = pd.Series(b, name="treated")
    reference = pysyncon.PenalizedSynth()
    reference.fit(X0=X0, X1=X1, lambda_=0.1)
    sd = pd.concat([X0, X1], axis=1).std(axis=1).to_numpy()  # pysyncon standardises each predictor by its sd
    ours = penalized_weights(A, b, 0.1, v=1 / sd**2)
    # pysyncon's default SLSQP tolerance (ftol 1e-6) stops ~5e-4 short in the weights; ours is a better optimum
    np.testing.assert_allclose(ours, np.asarray(reference.W), atol=1e-3)
    At, bt = A / sd[:, None], b / sd
    loss = lambda w: ((bt - At @ w) ** 2).sum() + 0.1 * w @ ((bt[:, None] - At) ** 2).sum(axis=0)  # noqa: E731
    assert loss(ours) <= loss(np.asarray(reference.W)) + 1e-12
    # pysyncon's programme solved to a tight tolerance gives our weights
    tight, _ = reference.w_optimize(V_mat=np.eye(6), X0=At, X1=bt, lambda_=0.1,
                                    qp_options={"maxiter": 1000, "ftol": 1e-14})
    np.testing.assert_allclose(ours, tight, atol=1e-5)


def test_fixed_penalty_is_reported():
    est = synth_fit(segment_panel(), SPEC.replace(synth={"penalty": 0.01})).estimates.set_index("term")
    assert est.loc["ATT", "synth_method"] == "penalized" and est.loc["ATT", "penalty_rule"] == "fixed"
    assert est.loc["ATT", "penalty_lambda"] == 0.01
    assert est.loc["ATT", "estimate"] == pytest.approx(1.5, abs=0.05)


# ---- inference ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["auto", "classic"])
def test_no_rmspe_ratio_p_value_when_the_treated_pre_fit_is_perfect(method):
    est = synth_fit(segment_panel(), SPEC.replace(synth={"method": method})).estimates.set_index("term")
    assert est.loc["ATT", "rmspe_pre"] == 0.0
    assert np.isnan(est.loc["ATT", "p_value"]) and np.isnan(est.loc["ATT", "p_value_placebo"])
    assert est.loc["ATT", "p_value_statistic"].startswith("none: treated pre-RMSPE is 0")
    # per-year placebo p-values rank |gap|, which stays defined; the floor is 1 / (units ranked)
    assert est.loc["ATT t=2017", "p_value_statistic"] == "abs_gap"
    assert est.loc["ATT t=2017", "p_value"] >= est.loc["ATT", "p_value_floor"] == pytest.approx(1 / 5)


def test_in_time_placebos_find_no_effect_before_treatment():
    # Effect 2 from year 15 on; fits that end earlier see no effect: backdated gaps are noise-sized.
    df = factor_panel(n_donors=15, n_pre=8, n_post=3, noise=0.02, treated_noise=0.02, seed=3)
    est = synth_fit(df, SPEC).estimates
    in_time = est[est["term"].str.startswith("placebo-in-time")].set_index("term")
    assert list(in_time.index) == [f"placebo-in-time t0={2000 + k}" for k in range(2, 8)]
    assert list(in_time["n_pre_periods"]) == list(range(2, 8))
    assert in_time["p_value"].isna().all()
    att = est.set_index("term").loc["ATT", "estimate"]
    assert att == pytest.approx(2.0, abs=0.2)
    # fits on 2-3 years extrapolate worse, but every backdated gap is far below the real effect
    assert (in_time["estimate"].abs() < 0.15 * att).all()
    assert (in_time.loc[in_time["n_pre_periods"] >= 4, "estimate"].abs() < 0.15).all()


# ---- spec validation and the files written with the estimates ---------------------------------------------------


@pytest.mark.parametrize("options, key", [({"method": "best"}, "synth.method"), ({"penalty": -1}, "synth.penalty"),
                                          ({"penalty": "cv"}, "synth.penalty")])
def test_bad_synth_option_values_fail_at_load_naming_the_key(tmp_path, options, key):
    from analysis.models.spec import resolve
    from analysis.models.spec_vocabulary import SpecError

    spec = yaml.safe_load((paths.SPECS / "synth_shaanxi_2020.yaml").read_text())
    spec["synth"] = options
    file = tmp_path / "bad.yaml"
    file.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError, match="must be") as info:  # a bad value, not an unknown key
        resolve(file)
    assert info.value.key == key
    spec["synth"] = {"method": "classic", "penalty": 0.5}
    file.write_text(yaml.safe_dump(spec))
    assert resolve(file).synth.model_dump() == {"v": "identity", "method": "classic", "penalty": 0.5}


def test_paths_and_weights_are_written_with_the_estimates_and_read_back_without_refitting(tmp_path, monkeypatch):
    from analysis import estimate as engine
    from analysis.figures import exhibits
    from analysis.models import synth as synth_module
    from analysis.models.spec import resolve

    panel = segment_panel()
    panel_file = tmp_path / "panel.parquet"
    panel.to_parquet(panel_file, index=False)
    spec_file = tmp_path / "specs" / "case.yaml"
    spec_file.parent.mkdir()
    spec_file.write_text(yaml.safe_dump({"estimator": "synth", "outcome": "y", "treatment": "d", "unit": "unit",
                                         "time": "year", "data": str(panel_file), "sample": {"years": [2015, 2018]}}))
    out = tmp_path / "estimates" / "case.parquet"
    out.parent.mkdir()
    estimates = engine.estimate_spec(resolve(spec_file), out)
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["companions"] == {"paths": {"file": "case.paths.parquet", "n_rows": 20},
                                  "weights": {"file": "case.weights.parquet", "n_rows": 4}}
    stored_paths = pd.read_parquet(paths.companion(out, "paths"))
    treated = stored_paths[(stored_paths["role"] == "treated") & stored_paths["post"]]
    assert treated["gap"].mean() == pytest.approx(estimates.set_index("term").loc["ATT", "estimate"])
    assert pd.read_parquet(paths.companion(out, "weights"))["weight"].tolist() == pytest.approx([0.5, 0.5, 0, 0])
    # the figure input reads the files; refitting would fail here
    monkeypatch.setattr(synth_module, "synth_fit", lambda *a, **k: pytest.fail("refitted"))
    exhibit = exhibits.Exhibit(id="fig99_case", kind="synth", caption="", note="",
                               options={"spec": "case", "unit_label": "T"})
    where = exhibits.Locations(processed=tmp_path, estimates=out.parent)
    frame, table, weights, spec = exhibits.synth_inputs(exhibit, where)
    assert spec["outcome"] == "y" and len(frame) == 20 and len(weights) == 4
    # a missing companion table makes the spec stale for `estimate --all`
    assert engine.recorded_fingerprint(out) == side["fingerprint"]
    paths.companion(out, "weights").unlink()
    assert engine.recorded_fingerprint(out) is None
