"""Issue 13 §4 (second part): what was dropped is reported, one reference distribution (t(G-1)), randomization
inference with missing outcomes, edge cases stop with a message naming the spec key, Honest DiD sets drawn from
their bounds.

Each test says how the code before its fix failed.
"""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from analysis.io import DataError  # noqa: E402
from analysis.models import registry  # noqa: E402
from analysis.models.table_config import TableDef  # noqa: E402
from analysis.models.table_notes import dropped_note, table_notes  # noqa: E402
from analysis.models import att_gt as CS, did_imputation as BJS, sunab as SA  # noqa: E402
from analysis.models.distributions import norm_ppf, t_ppf, t_sf  # noqa: E402
from analysis.models.spec_vocabulary import SpecError  # noqa: E402
from models_engine_sim import base_spec, simulate_panel  # noqa: E402
from tests.test_models_staggered import SPEC, simulate_staggered  # noqa: E402


def _with_missing_never_treated(seed: int = 11) -> tuple[pd.DataFrame, object]:
    """The simulated 31 x 7 staggered panel; one never-treated unit (like Tibet) lacks its 2015 and 2016 outcomes."""
    df = simulate_staggered(seed=seed)
    never = df.loc[df["first_year"] == 0, "province_code"].iloc[0]
    df.loc[(df["province_code"] == never) & df["year"].isin([2015, 2016]), "y"] = np.nan
    return df, never


# ------------------------------------------------------------------------------ Callaway-Sant'Anna balancing


def test_att_gt_balances_the_panel_by_default_as_r_did():
    """R did (panel = TRUE) drops units not observed in every period, with a warning. Old code kept the unit in the
    cells it had (silently): its estimate differed from the balanced one and no column said so."""
    df, never = _with_missing_never_treated()
    spec = SPEC.replace(control_group="notyettreated", aggregate="dynamic")
    with pytest.warns(UserWarning, match="balances the panel"):
        out = CS.att_gt(df, spec)
    balanced = CS.att_gt(df.loc[df["province_code"] != never], spec)
    pd.testing.assert_series_equal(out["estimate"], balanced["estimate"])
    pd.testing.assert_series_equal(out["std_error"], balanced["std_error"])
    assert (out["n_units_dropped_unbalanced"] == 1).all()
    assert (out["units_dropped_unbalanced"] == str(never)).all()
    assert out["n_obs"].iloc[0] == 30 * 7
    assert "panel balanced" in out["method"].iloc[0]

    # Asked for, the unbalanced estimator keeps the unit in the cells whose periods it has, and says so.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = CS.att_gt(df, spec.replace(allow_unbalanced_panel=True))
    assert (kept["n_units_dropped_unbalanced"] == 0).all() and (kept["n_units_partial"] == 1).all()
    assert (kept["units_partial"] == str(never)).all()
    assert not np.allclose(kept["estimate"], out["estimate"])


def test_allow_unbalanced_panel_is_validated_at_load():
    with pytest.raises(SpecError, match="allow_unbalanced_panel"):
        base_spec(estimator="feols", treatment="x1", allow_unbalanced_panel=True)
    with pytest.raises(SpecError, match="allow_unbalanced_panel"):
        base_spec(estimator="att_gt", cohort="cohort", allow_unbalanced_panel="yes")


# ------------------------------------------------------------------------------ always-treated and collinear drops


def test_staggered_estimators_report_the_always_treated_units_they_drop():
    """Old code dropped cohorts treated in the first period with no trace on the rows (tables hard-coded a note)."""
    df = simulate_staggered(seed=3)
    first = df["province_code"].unique()[:2]
    df.loc[df["province_code"].isin(first), "first_year"] = 2015  # treated in the first period: always treated
    spec = SPEC.replace(aggregate="dynamic", event_window=[-2, 2])
    expected = ";".join(str(u) for u in sorted(first))
    for estimator in (CS.att_gt, SA.sunab, BJS.did_imputation):
        out = estimator(df, spec)
        assert (out["n_always_treated_dropped"] == 2).all(), estimator.__name__
        assert (out["always_treated_dropped"] == expected).all(), estimator.__name__
        assert "always-treated unit(s) dropped" in out["method"].iloc[0]


def test_collinear_control_is_reported_and_a_collinear_treatment_is_an_error():
    """Old code: a dropped regressor vanished from the output (no column), and a dropped treatment term was a missing
    row with exit code 0."""
    df = simulate_panel(5)
    df["x1_copy"] = 2.0 * df["x1"]
    out = registry.estimate(df, base_spec(treatment="x1", controls=["x1_copy"]))
    assert list(out["term"]) == ["x1"]
    assert (out["dropped_collinear"] == "x1_copy").all()
    assert "x1_copy" in out["method"].iloc[0]

    df["unit_constant"] = df.groupby("province_code")["x1"].transform("mean")  # absorbed by the unit effects
    spec = base_spec(treatment="unit_constant", controls=["x1"])
    spec = spec.replace(spec_files=["configs/specs/collinear_test.yaml"])
    with pytest.raises(DataError, match="collinear") as caught:
        registry.estimate(df, spec)
    assert caught.value.key == "treatment" and "collinear_test.yaml" in str(caught.value)


def test_duplicated_control_stops_at_load_naming_the_key():
    """Old code: panel_re (linearmodels) stopped with a library error about duplicate columns."""
    with pytest.raises(SpecError) as caught:
        base_spec(estimator="panel_re", treatment="x1", controls=["log(gdp)", "log(gdp)"])
    assert "controls[1]" in str(caught.value) and "twice" in str(caught.value)


# ------------------------------------------------------------------------------ one reference distribution


@pytest.mark.parametrize("estimator", [CS.att_gt, SA.sunab, BJS.did_imputation])
def test_staggered_p_values_and_intervals_use_t_with_g_minus_1(estimator):
    """Old code: normal critical values (t(30) intervals are 4.2% wider with 31 clusters)."""
    df = simulate_staggered(seed=5)
    spec = SPEC.replace(aggregate="dynamic", event_window=[-2, 2])
    out = estimator(df, spec)
    g = df["province_code"].nunique()
    assert (out["df_t"] == g - 1).all() and (out["n_clusters"] == g).all()
    z = out["estimate"] / out["std_error"]
    np.testing.assert_allclose(out["p_value"], 2 * t_sf(np.abs(z), g - 1), rtol=1e-12)
    half = (out["ci_high"] - out["ci_low"]) / 2
    np.testing.assert_allclose(half, t_ppf(0.975, g - 1) * out["std_error"], rtol=1e-12)
    assert (half > norm_ppf(0.975) * out["std_error"] * 1.04).all()


def test_driscoll_kraay_with_few_periods_warns_and_says_so():
    """Old code: no warning with T = 7 periods."""
    df = simulate_panel(6)
    spec = base_spec(treatment="x1", inference={"vcov": "driscoll_kraay"})
    with pytest.warns(UserWarning, match="Driscoll-Kraay with T = 7"):
        out = registry.estimate(df, spec)
    assert "unreliable" in out["method"].iloc[0]


# ------------------------------------------------------------------------------ randomization inference


def test_randomization_inference_with_missing_outcomes_permutes_full_sample_paths():
    """Old code: the paths were taken from the rows with an observed outcome only, so one unit with a missing year
    stopped RI with 'treatment must be observed for every unit in every year'."""
    df = simulate_panel(8)
    df["exposure_post"] = df["exposure"] * df["post"]
    missing = (df["province_code"] == df["province_code"].iloc[0]) & df["year"].isin([2015, 2016])
    df.loc[missing, "y_cont"] = np.nan
    spec = base_spec(treatment="exposure_post", inference={"ri": {"reps": 199}})
    out = registry.estimate(df, spec).set_index("term")
    p = out.loc["exposure_post", "p_value_ri"]
    assert 1 / 200 <= p <= 1 and p < 0.05  # the simulated effect is large
    # The statistic is the regression's own coefficient on the observed rows (the observed draw is not permuted).
    from analysis.models import inference

    frame = df[["province_code", "year", "y_cont", "exposure_post"]]
    direct = inference.ri_pvalue(frame, "province_code", "year", "y_cont", "exposure_post", reps=199,
                                 seed=spec.seed)
    assert direct["observed"] == pytest.approx(out.loc["exposure_post", "estimate"], rel=1e-10)
    assert direct["p_value"] == pytest.approx(p)


# ------------------------------------------------------------------------------ edge cases name the spec key


@pytest.mark.parametrize("estimator", [SA.sunab, BJS.did_imputation])
def test_all_units_in_one_cohort_is_a_data_error_naming_the_key(estimator):
    """Old code: library errors (sunab: pyfixest on an empty set of cohort dummies; did_imputation: pandas
    "Shape of passed values" on an empty result) with no spec file or key."""
    df = simulate_staggered(seed=4)
    df["first_year"] = 2018
    spec = SPEC.replace(aggregate="dynamic", spec_files=["configs/specs/all_treated.yaml"])
    with pytest.raises(DataError) as caught:
        estimator(df, spec)
    assert caught.value.key == "cohort" and "all_treated.yaml" in str(caught.value)


# ------------------------------------------------------------------------------ figure and table notes


def test_event_study_figure_draws_an_honest_set_that_excludes_the_estimate():
    """Old code: error bars from the estimate to the bounds; a set above the estimate gave negative lengths and
    matplotlib raised ValueError."""
    from analysis.figures.event_study import plot_event_study

    est = pd.DataFrame({"term": ["ATT e=-2", "ATT e=0", "ATT e=1", "honest SD M=0.5 average",
                                 "honest SD M=1 average"],
                        "estimate": [0.0, 0.1, 0.2, 0.15, 0.15],
                        "ci_low": [-0.1, 0.0, 0.1, 0.16, 0.17], "ci_high": [0.1, 0.2, 0.3, 0.4, 0.5]})
    fig = plot_event_study({"a": est})
    segments = fig.axes[1].collections[0].get_segments()
    bounds = sorted((float(s[0][1]), float(s[1][1])) for s in segments)
    assert bounds == [(0.16, 0.4), (0.17, 0.5)]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_table_notes_list_what_the_estimate_files_say_was_dropped(tmp_path):
    """Old code: only a hard-coded always-treated sentence; nothing read from the estimate files."""
    import json

    rows = pd.DataFrame({"term": ["ATT"], "estimate": [0.1], "std_error": [0.05], "p_value": [0.04],
                         "ci_low": [0.0], "ci_high": [0.2], "n_obs": [10], "method": ["m"],
                         "always_treated_dropped": ["440000;120000"], "units_dropped_unbalanced": ["540000"],
                         "dropped_collinear": [""]})
    rows.to_parquet(tmp_path / "a.parquet")
    (tmp_path / "a.json").write_text(json.dumps({"spec": {"id": "a", "estimator": "att_gt", "outcome": "y"}}))
    clean = rows.drop(columns=["always_treated_dropped", "units_dropped_unbalanced"])
    clean.to_parquet(tmp_path / "b.parquet")
    (tmp_path / "b.json").write_text(json.dumps({"spec": {"id": "b", "estimator": "feols", "outcome": "y"}}))
    note = table_notes(TableDef("t", "c", ("a", "b"), "all", "estimator"), tmp_path)
    # provinces by name, in code order (120000 Tianjin, 440000 Guangdong; 540000 Tibet)
    assert ("a: always-treated provinces dropped: Tianjin, Guangdong; provinces not observed in every year dropped to "
            "balance the panel: Tibet.") in note
    assert "b:" not in note
    assert dropped_note([(clean, {"spec": {"id": "b"}})]) == ""
