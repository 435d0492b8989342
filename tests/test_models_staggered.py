"""Staggered-adoption DiD estimators: known truth, hand 2x2 DiDs, second implementations, published numbers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import reference_data
from analysis.io import DataError
from analysis.models import att_gt as CS, bacon as GB, did_imputation as BJS, staggered_panel, sunab as SA
from analysis.models.spec import Spec

YEARS = np.arange(2015, 2022)  # the analysis window, 7 years
#: 31 "provinces": three cohorts and a never-treated group (0).
COHORT_SIZES = {2017: 8, 2018: 8, 2019: 7, 0: 8}
#: Effects grow with exposure and differ by cohort: tau_{g,e} = slope_g * (e + 1) -- the case where TWFE's
#: already-treated comparisons get the sign of the dynamics wrong.
EFFECT_SLOPES = {2017: 1.0, 2018: 0.6, 2019: 0.3}


def simulate_staggered(seed: int = 20240501, noise_sd: float = 0.1, sizes: dict | None = None) -> pd.DataFrame:
    """31 x 7 panel: unit and year effects + tau_{g,e} + N(0, noise_sd) noise; column ``true_effect`` holds tau."""
    rng = np.random.default_rng(seed)
    sizes = sizes or COHORT_SIZES
    cohorts = np.repeat(list(sizes), list(sizes.values()))
    unit_effect = rng.normal(0, 1, len(cohorts))
    year_effect = np.cumsum(rng.normal(0.2, 0.3, len(YEARS)))
    rows = []
    for i, g in enumerate(cohorts):
        for k, t in enumerate(YEARS):
            e = t - g
            tau = EFFECT_SLOPES.get(g, 0.0) * (e + 1) if g and e >= 0 else 0.0
            y = unit_effect[i] + year_effect[k] + tau + rng.normal(0, noise_sd)
            rows.append({"province_code": 110000 + i * 10000, "year": int(t), "first_year": int(g),
                         "y": y, "true_effect": tau, "x": rng.normal()})
    return pd.DataFrame(rows)


# event_window wider than any panel here: every event time is reported
SPEC = Spec.from_mapping({"estimator": "att_gt", "outcome": "y", "unit": "province_code", "time": "year",
                          "cohort": "first_year", "controls": [], "control_group": "nevertreated",
                          "aggregate": "simple", "event_window": [-100, 100], "inference": {}, "seed": 7,
                          "cluster": "province_code"})


def true_att(df: pd.DataFrame) -> float:
    """Average effect over treated observations (= CS 'simple', SA 'ATT', BJS overall in a balanced panel)."""
    treated = (df["first_year"] > 0) & (df["year"] >= df["first_year"])
    return float(df.loc[treated, "true_effect"].mean())


@pytest.fixture(scope="module")
def sim() -> pd.DataFrame:
    return simulate_staggered()


def _mpdta() -> pd.DataFrame:
    """R did::mpdta (Callaway--Sant'Anna minimum-wage example), tests/data/mpdta.csv (exported from moderndid 0.2.0)."""
    return reference_data.load_mpdta()


MPDTA_SPEC = Spec.from_mapping({"estimator": "att_gt", "outcome": "lemp", "unit": "countyreal", "time": "year",
                                "cohort": "first_treat", "controls": [], "control_group": "nevertreated",
                                "aggregate": "simple", "event_window": [-100, 100], "seed": 1})


# ---------------------------------------------------------------------------------------------------- contract


def test_result_columns_and_terms(sim):
    for aggregate, prefix in [("simple", None), ("dynamic", "ATT e="), ("group", "ATT g="), ("calendar", "ATT t=")]:
        out = CS.att_gt(sim, SPEC.replace(aggregate=aggregate))
        assert list(out.columns[:8]) == staggered_panel.RESULT_COLUMNS
        assert out["term"].iloc[0] == "ATT"
        if prefix:
            assert out["term"].iloc[1:].str.startswith(prefix).all()
    dynamic = CS.att_gt(sim, SPEC.replace(aggregate="dynamic", event_window=[-2, 2]))
    assert dynamic["term"].tolist() == ["ATT", "ATT e=-2", "ATT e=-1", "ATT e=0", "ATT e=1", "ATT e=2"]


def test_bad_input_names_file_row_and_column(sim):
    with pytest.raises(DataError, match="column 'missing_outcome'"):
        CS.att_gt(sim, SPEC.replace(outcome="missing_outcome"))
    broken = sim.copy()
    broken.loc[3, "first_year"] = 2020  # unit 0's cohort changes in its 4th row
    with pytest.raises(DataError, match=r"row 4, column 'first_year'"):
        CS.att_gt(broken, SPEC)
    broken = sim.copy()
    broken["y"] = broken["y"].astype(object)
    broken.loc[5, "y"] = "n/a"
    with pytest.raises(DataError, match=r"row 6, column 'y'"):
        SA.sunab(broken, SPEC)


# ----------------------------------------------------------------------------------------------- known truth


def test_twfe_is_biased_and_heterogeneity_robust_estimators_recover_att(sim):
    truth = true_att(sim)
    _, twfe = GB.bacon_decomposition(sim, SPEC)
    # Growing effects make the later-vs-earlier comparisons negative: TWFE is far below the truth.
    assert truth - twfe > 0.5
    estimates = {
        "att_gt": CS.att_gt(sim, SPEC),
        "att_gt_nyt": CS.att_gt(sim, SPEC.replace(control_group="notyettreated")),
        "sunab": SA.sunab(sim, SPEC),
        "did_imputation": BJS.did_imputation(sim, SPEC),
    }
    for name, out in estimates.items():
        row = out.set_index("term").loc["ATT"]
        assert abs(row["estimate"] - truth) < 0.1, name
        assert row["ci_low"] < truth < row["ci_high"], name
        assert not (row["ci_low"] < twfe < row["ci_high"]), name


def test_dynamic_effects_recovered(sim):
    # True ATT at event time e: cohort-size-weighted mean of slope_g * (e + 1) over cohorts observed at e.
    out = CS.att_gt(sim, SPEC.replace(aggregate="dynamic")).set_index("term")
    imp = BJS.did_imputation(sim, SPEC).set_index("term")
    for e in range(0, 5):
        cohorts = [g for g in EFFECT_SLOPES if g + e <= YEARS[-1]]
        w = np.array([COHORT_SIZES[g] for g in cohorts], float)
        truth = float(w @ np.array([EFFECT_SLOPES[g] * (e + 1) for g in cohorts]) / w.sum())
        assert abs(out.loc[f"ATT e={e}", "estimate"] - truth) < 0.15
        assert abs(imp.loc[f"ATT e={e}", "estimate"] - truth) < 0.15
    for e in (-3, -2):  # no anticipation in the design: pre-period estimates near zero
        assert abs(out.loc[f"ATT e={e}", "estimate"]) < 0.15


def test_att_gt_cells_equal_hand_2x2_did():
    df = simulate_staggered(seed=3, noise_sd=0.5)
    wide = df.pivot(index="province_code", columns="year", values="y")
    cohort = df.groupby("province_code")["first_year"].first()
    for control_group in ("nevertreated", "notyettreated"):
        gte = CS.group_time_effects(df, SPEC.replace(control_group=control_group))
        assert len(gte.cells) == 3 * (len(YEARS) - 1)
        for cell in gte.cells.itertuples():
            dy = wide[cell.t] - wide[cell.base]
            if control_group == "nevertreated":
                control = cohort == 0
            else:
                control = (cohort == 0) | ((cohort > max(cell.t, cell.base)) & (cohort != cell.g))
            hand = dy[cohort == cell.g].mean() - dy[control].mean()
            assert cell.att == pytest.approx(hand, abs=1e-12)
            expected_base = cell.t - 1 if cell.t < cell.g else cell.g - 1  # varying base period
            assert cell.base == expected_base


def test_att_gt_with_controls_reduces_to_unconditional_when_control_is_irrelevant(sim):
    # A control constant within units adds nothing when it is the same for all units: x = 1 for everyone.
    df = sim.assign(const=1.0)
    plain = CS.att_gt(df, SPEC)
    with_x = CS.att_gt(df, SPEC.replace(controls=["const"]))
    np.testing.assert_allclose(with_x[["estimate", "std_error"]], plain[["estimate", "std_error"]], atol=1e-10)


# --------------------------------------------------------------------------------- second implementations


#: diff-diff's numbers on these designs, frozen with their provenance by tests/reference/make_reference_values.py
#: (tests/data/reference_values.json), so each comparison runs without diff-diff ("frozen"); where diff-diff is
#: installed the same call runs now ("live", skipped with a reason otherwise) and must still give the frozen numbers.
FROZEN = reference_data.reference_values()["staggered"]
SOURCES = pytest.mark.parametrize("source", ["frozen", "live"])


def _reference(source: str, key: str, name: str, df, **options) -> dict:
    if source == "frozen":
        return FROZEN[key]
    pytest.importorskip("diff_diff", reason="diff-diff not installed: the frozen values were checked")
    from reference.make_reference_values import diff_diff_staggered

    live, frozen = _flat(diff_diff_staggered(name, df, **options)), _flat(FROZEN[key])
    assert sorted(live) == sorted(frozen)
    assert [live[k] for k in sorted(live)] == pytest.approx([frozen[k] for k in sorted(live)], rel=1e-10, abs=1e-12)
    return FROZEN[key]


def _flat(values, prefix: str = "") -> dict:
    """Nested dicts and lists as {"a/b/0": number}."""
    if isinstance(values, dict):
        return {k: v for key, value in values.items() for k, v in _flat(value, f"{prefix}{key}/").items()}
    if isinstance(values, list):
        return {f"{prefix}{i}": v for i, v in enumerate(values)}
    return {prefix: values}


@SOURCES
@pytest.mark.parametrize("control_group", ["nevertreated", "notyettreated"])
def test_att_gt_agrees_with_diff_diff(sim, control_group, source):
    ref = _reference(source, f"cs_{control_group}", "cs", sim,
                     control_group={"nevertreated": "never_treated", "notyettreated": "not_yet_treated"}[control_group])
    spec = SPEC.replace(control_group=control_group)
    gte = CS.group_time_effects(sim, spec)
    n = len(gte.cohort_of_unit)
    assert len(gte.cells) == len(ref["group_time"])
    for cell, se in zip(gte.cells.itertuples(), np.sqrt((gte.influence**2).sum(axis=0)) / n):
        effect, ref_se = ref["group_time"][f"{cell.g},{cell.t}"]
        assert cell.att == pytest.approx(effect, abs=1e-10)
        assert se == pytest.approx(ref_se, rel=1e-8)
    simple = CS.att_gt(sim, spec).set_index("term")
    assert simple.loc["ATT", "estimate"] == pytest.approx(ref["overall"][0], abs=1e-10)
    assert simple.loc["ATT", "std_error"] == pytest.approx(ref["overall"][1], rel=1e-8)
    dynamic = CS.att_gt(sim, spec.replace(aggregate="dynamic")).set_index("term")
    for e, (effect, ref_se) in ref["event_study"].items():
        assert dynamic.loc[f"ATT e={e}", "estimate"] == pytest.approx(effect, abs=1e-10)
        assert dynamic.loc[f"ATT e={e}", "std_error"] == pytest.approx(ref_se, rel=1e-8)
    group = CS.att_gt(sim, spec.replace(aggregate="group")).set_index("term")
    for g, (effect, ref_se) in ref["group"].items():
        assert group.loc[f"ATT g={g}", "estimate"] == pytest.approx(effect, abs=1e-10)
        assert group.loc[f"ATT g={g}", "std_error"] == pytest.approx(ref_se, rel=1e-8)


def test_att_gt_reproduces_published_mpdta_group_time_effects():
    """did package's documented mpdta example (att_gt, est_method = "reg", never-treated controls).

    Source: the printed output of ``att_gt(yname="lemp", gname="first.treat", idname="countyreal",
    tname="year", xformla=~1, data=mpdta, est_method="reg")`` in "did" package walkthrough
    (https://rstudio-pubs-static.s3.amazonaws.com/736765_c47909c746704c79922fdc03ab352edf.html), rounded to
    4 decimals there. The printed standard errors are multiplier-bootstrap draws, so only points are asserted.
    """
    published = {(2004, 2004): -0.0105, (2004, 2005): -0.0704, (2004, 2006): -0.1373, (2004, 2007): -0.1008,
                 (2006, 2004): 0.0065, (2006, 2005): -0.0028, (2006, 2006): -0.0046, (2006, 2007): -0.0412,
                 (2007, 2004): 0.0305, (2007, 2005): -0.0027, (2007, 2006): -0.0311, (2007, 2007): -0.0261}
    cells = CS.group_time_effects(_mpdta(), MPDTA_SPEC).cells.set_index(["g", "t"])["att"]
    assert len(cells) == len(published)
    for key, value in published.items():
        assert cells[key] == pytest.approx(value, abs=5e-5), key


@SOURCES
def test_att_gt_mpdta_overall_agrees_with_diff_diff_and_bootstrap_is_seeded(source):
    mpdta = _mpdta()
    ref = _reference(source, "cs_mpdta", "cs_mpdta", mpdta)
    ours = CS.att_gt(mpdta, MPDTA_SPEC).set_index("term").loc["ATT"]
    assert ours["estimate"] == pytest.approx(ref["overall"][0], abs=1e-10)
    assert ours["std_error"] == pytest.approx(ref["overall"][1], rel=1e-8)
    boot_spec = MPDTA_SPEC.replace(inference={"bootstrap": {"reps": 999}}, seed=11)
    first, second = CS.att_gt(mpdta, boot_spec), CS.att_gt(mpdta, boot_spec)
    pd.testing.assert_frame_equal(first, second)
    assert first["std_error"].iloc[0] == pytest.approx(ours["std_error"], rel=0.12)
    other = CS.att_gt(mpdta, boot_spec.replace(seed=12))
    assert other["std_error"].iloc[0] != first["std_error"].iloc[0]


@SOURCES
def test_sunab_agrees_with_diff_diff(sim, source):
    ref = _reference(source, "sunab", "sunab", sim)
    ours = SA.sunab(sim, SPEC).set_index("term")
    assert ours.loc["ATT", "estimate"] == pytest.approx(ref["overall"][0], abs=1e-8)
    assert ours.loc["ATT", "std_error"] == pytest.approx(ref["overall"][1], rel=1e-6)
    assert ref["event_study"]
    for e, (effect, ref_se) in ref["event_study"].items():
        assert ours.loc[f"ATT e={e}", "estimate"] == pytest.approx(effect, abs=1e-8)
        assert ours.loc[f"ATT e={e}", "std_error"] == pytest.approx(ref_se, rel=1e-6)


def test_sunab_window_att_is_diff_diff_event_effects_weighted_by_treated_counts():
    """Why sunab keeps its own aggregation (docs/estimators.md): diff-diff's ``SunAbraham`` overall ATT averages every
    post period, whereas ours is fixest's ``agg = "ATT"`` within ``event_window``. Ours equals diff-diff's event-time
    effects e = 0..3 weighted by their treated-observation counts (abs 1e-8), its SE the delta method on diff-diff's
    ``event_study_vcov`` (rel 1e-6); and it differs from diff-diff's overall ATT in this design (effects grow with e)."""
    import diff_diff as dd

    sim = simulate_staggered(seed=8, noise_sd=0.3)
    ours = SA.sunab(sim, SPEC.replace(event_window=[-2, 3])).set_index("term")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = dd.SunAbraham(cluster="province_code").fit(sim, outcome="y", unit="province_code", time="year",
                                                         first_treat="first_year")
    rel = (sim["year"] - sim["first_year"]).where(sim["first_year"] > 0)
    counts = rel.value_counts()
    window = [0, 1, 2, 3]
    pi = np.array([counts[e] for e in window], float)
    pi /= pi.sum()
    index = [int(e) for e in ref.event_study_vcov_index]
    positions = [index.index(e) for e in window]
    att = float(pi @ np.array([ref.event_study_effects[e]["effect"] for e in window]))
    se = float(np.sqrt(pi @ ref.event_study_vcov[np.ix_(positions, positions)] @ pi))
    assert ours.loc["ATT", "estimate"] == pytest.approx(att, abs=1e-8)
    assert ours.loc["ATT", "std_error"] == pytest.approx(se, rel=1e-6)
    assert abs(ours.loc["ATT", "estimate"] - float(ref.overall_att)) > 0.05


def _bjs_by_hand(df: pd.DataFrame, window_end: int) -> dict:
    """BJS (2024) imputation written out from the paper, as the independent reference for diff-diff's
    ImputationDiD behind ``did_imputation``: unit + year dummies fit by least squares on untreated observations,
    tau_it = Y_it - fitted on treated ones, each estimand sum_it v_it Y_it with v = w on treated and
    v = -Z0 (Z0'Z0)^+ Z1' w on untreated observations, and the conservative variance of their Theorem 3,
    sum over clusters of (sum v_it eps_it)^2 with eps = residual (untreated) or tau_it minus its cohort x horizon mean
    (treated). Returns {term: (estimate, se)} for ``ATT`` (0 <= e <= window_end) and ``ATT e=k``."""
    units, unit_idx = np.unique(df["province_code"], return_inverse=True)
    years, year_idx = np.unique(df["year"], return_inverse=True)
    z = np.zeros((len(df), len(units) + len(years) - 1))
    z[np.arange(len(df)), unit_idx] = 1.0
    z[np.flatnonzero(year_idx > 0), len(units) + year_idx[year_idx > 0] - 1] = 1.0
    g, y = df["first_year"].to_numpy(), df["y"].to_numpy()
    treated = (g > 0) & (df["year"].to_numpy() >= g)
    e = np.where(treated, df["year"].to_numpy() - g, -1)
    z0, z1, y0 = z[~treated], z[treated], y[~treated]
    gram_pinv = np.linalg.pinv(z0.T @ z0)
    coef = gram_pinv @ z0.T @ y0
    tau = y[treated] - z1 @ coef
    cells = pd.Series(tau).groupby([g[treated], e[treated]]).transform("mean").to_numpy()
    eps = np.empty(len(df))
    eps[~treated], eps[treated] = y0 - z0 @ coef, tau - cells
    out = {}
    e1 = e[treated]
    for term, mask in [("ATT", (e1 >= 0) & (e1 <= window_end))] + [(f"ATT e={k}", e1 == k)
                                                                    for k in range(window_end + 1) if (e1 == k).any()]:
        w = mask / mask.sum()
        v = np.empty(len(df))
        v[treated], v[~treated] = w, -z0 @ (gram_pinv @ (z1.T @ w))
        se = np.sqrt((pd.Series(v * eps).groupby(df["province_code"].to_numpy()).sum() ** 2).sum())
        out[term] = (float(w @ tau), float(se))
    return out


@pytest.mark.parametrize("window_end", [3, 5])
def test_did_imputation_equals_bjs_theorem_3_by_hand_and_pyfixest_did2s(window_end):
    """Post-period effects and their conservative SEs equal the paper's formulas written out (abs 1e-10, rel 1e-8);
    ``event_window`` [-1, 3] restricts the overall ATT to e <= 3 (diff-diff's own overall ATT averages every treated
    observation, so the wrapper must leave the others out of the call); the static ATT equals Gardner's two-stage
    DiD (pyfixest ``did2s``), which has the same point estimate (abs 1e-8)."""
    import pyfixest as pf

    sim = simulate_staggered(seed=12, noise_sd=0.4)
    ours = BJS.did_imputation(sim, SPEC.replace(event_window=[-1, window_end])).set_index("term")
    hand = _bjs_by_hand(sim, window_end)
    assert [t for t in ours.index if not t.startswith("ATT e=-")] == [t for t in hand if t in ours.index]
    assert len(ours.index) == len(hand) + 1  # e = -1, BJS Test 1
    for term, (effect, se) in hand.items():
        assert ours.loc[term, "estimate"] == pytest.approx(effect, abs=1e-10)
        assert ours.loc[term, "std_error"] == pytest.approx(se, rel=1e-8)
    if window_end == 5:  # every treated observation (the panel's last event time is 2021 - 2017 = 4)
        df = sim.assign(treat=((sim["first_year"] > 0) & (sim["year"] >= sim["first_year"])).astype(float))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            two_stage = pf.did2s(df, yname="y", first_stage="~ 0 | province_code + year", second_stage="~ treat",
                                 treatment="treat", cluster="province_code")
        assert ours.loc["ATT", "estimate"] == pytest.approx(float(two_stage.coef()["treat"]), abs=1e-8)
    else:  # the window matters in this design
        assert abs(ours.loc["ATT", "estimate"] - _bjs_by_hand(sim, 5)["ATT"][0]) > 0.1


def test_pyfixest_is_called_without_deprecated_arguments_and_with_the_same_demeaning(sim):
    """sunab and did_imputation's pre-trend test (BJS Test 1, leads with event_window reaching back) pass pyfixest
    0.60 a typed ``demeaner=`` (no DeprecationWarning, which ``feols(fixef_tol=...)`` raised at both call sites), and
    that demeaner is what the legacy argument resolved to, so the numbers are unchanged: equal to the last digit."""
    import pyfixest as pf

    spec = SPEC.replace(event_window=[-3, 4])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=DeprecationWarning, message="The `demeaner_backend`")
        SA.sunab(sim, spec)
        out = BJS.did_imputation(sim, spec)
    assert out["method"].str.contains("pre-trend test").any()  # the pyfixest call ran
    data = sim.assign(d=((sim["first_year"] > 0) & (sim["year"] >= sim["first_year"])).astype(float))
    typed = pf.feols("y ~ d | province_code + year", data=data, demeaner=staggered_panel.pyfixest_demeaner())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        legacy = pf.feols("y ~ d | province_code + year", data=data, fixef_tol=staggered_panel.PYFIXEST_FIXEF_TOL)
    assert typed.coef()["d"] == legacy.coef()["d"] and typed.se()["d"] == legacy.se()["d"]


# ------------------------------------------------------------------------------------------- Goodman-Bacon


@pytest.mark.parametrize("sizes", [COHORT_SIZES, {2015: 4, 2017: 8, 2018: 8, 2019: 7, 0: 4}],
                         ids=["never-treated", "with-always-treated"])
def test_bacon_weights_sum_to_one_and_reproduce_twfe(sizes):
    import pyfixest as pf

    df = simulate_staggered(seed=5, sizes=sizes)
    pairs, twfe = GB.bacon_decomposition(df, SPEC)
    assert pairs["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert (pairs["weight"] > 0).all()
    assert float((pairs["weight"] * pairs["estimate"]).sum()) == pytest.approx(twfe, abs=1e-12)
    df = df.assign(treat=((df["first_year"] > 0) & (df["year"] >= df["first_year"])).astype(float))
    fe = pf.feols("y ~ treat | province_code + year", data=df)
    assert twfe == pytest.approx(float(fe.coef()["treat"]), abs=1e-10)
    summary = GB.bacon(df, SPEC).set_index("term")
    assert summary.loc["TWFE", "estimate"] == pytest.approx(twfe, abs=1e-12)
    types = summary.drop(index="TWFE")
    assert types["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert float((types["weight"] * types["estimate"]).sum()) == pytest.approx(twfe, abs=1e-12)
    if 2015 in sizes:
        assert "bacon treated vs always treated" in types.index


@SOURCES
def test_bacon_agrees_with_diff_diff(sim, source):
    ref = _reference(source, "bacon", "bacon", sim)
    summary = GB.bacon(sim, SPEC).set_index("term")
    assert summary.loc["TWFE", "estimate"] == pytest.approx(ref["twfe"], abs=1e-10)
    assert summary.loc["bacon treated vs never treated", "weight"] == pytest.approx(
        ref["weight_treated_vs_never"], abs=1e-10)
    assert summary.loc["bacon later vs earlier treated", "estimate"] == pytest.approx(
        ref["later_vs_earlier"], abs=1e-10)


@pytest.mark.parametrize("design", ["never-treated", "with-always-treated", "unbalanced"])
def test_bacon_components_equal_diff_diff(design):
    """Component by component: every 2x2 comparison (treated cohort, control cohort, type, estimate, weight) of
    ours equals diff-diff's ``BaconDecomposition`` (abs 1e-10). Two documented differences in what the two report:
    units treated from the first period are a control group of their own in ours ("treated vs always treated"),
    which diff-diff folds into the never-treated bucket (Goodman-Bacon 2021, fn. 11) -- per treated cohort, our
    never- and always-treated comparisons pooled (weights summed, estimates weight-averaged) equal its one
    ``treated_vs_never`` comparison; and ours drops units with a missing period (diff-diff only warns), so on an
    unbalanced panel ours equals diff-diff on the balanced units."""
    import diff_diff as dd

    sizes = COHORT_SIZES if design == "never-treated" else {2015: 4, 2017: 8, 2018: 8, 2019: 7, 0: 4}
    df = simulate_staggered(seed=5, noise_sd=0.5, sizes=sizes)
    if design == "unbalanced":  # units 2 (cohort 2015) and 20 (cohort 2019) lose one period each
        df = df.drop(index=[2 * len(YEARS) + 3, 20 * len(YEARS) + 1]).reset_index(drop=True)
    pairs, twfe = GB.bacon_decomposition(df, SPEC)
    balanced = df.loc[df.groupby("province_code")["year"].transform("size") == len(YEARS)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its note that always-treated units were moved to the never-treated bucket
        ref = dd.BaconDecomposition().fit(balanced, outcome="y", unit="province_code", time="year",
                                          first_treat="first_year")
    assert twfe == pytest.approx(float(ref.twfe_estimate), abs=1e-10)
    kinds = {"earlier vs later treated": "earlier_vs_later", "later vs earlier treated": "later_vs_earlier",
             "treated vs never treated": "treated_vs_never", "treated vs always treated": "treated_vs_never"}
    ours = pairs.assign(kind=pairs["type"].map(kinds), control=np.where(
        pairs["type"].str.startswith("treated vs"), "never_treated", pairs["control"].astype(str)))
    ours = ours.assign(product=ours["weight"] * ours["estimate"]).groupby(["treated", "control", "kind"]).sum(
        numeric_only=True)
    theirs = ref.to_dataframe().assign(control=lambda r: r["control_group"].astype(str)).set_index(
        ["treated_group", "control", "comparison_type"])
    assert sorted(ours.index) == sorted((int(g), c, k) for g, c, k in theirs.index)
    for (g, c, k), row in ours.iterrows():
        expected = theirs.loc[(g, c, k)]
        assert row["weight"] == pytest.approx(expected["weight"], abs=1e-10)
        assert row["product"] / row["weight"] == pytest.approx(expected["estimate"], abs=1e-10)
    assert (design == "never-treated") == ("treated vs always treated" not in set(pairs["type"]))
