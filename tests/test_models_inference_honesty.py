"""Issue 13 §4: no silent NaN inference, honest Hausman, treated-cluster counts, reported drops.

Each test here fails on the code before its fix (noted in the test's docstring).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.io import DataError
from analysis.models import att_gt as CS, bacon as GB
from analysis.models.spec import Spec
from tests.test_models_staggered import SPEC, simulate_staggered


# ------------------------------------------------------------------------- att_gt: controls, unbalanced panel


def _tibet_like(seed: int = 11) -> pd.DataFrame:
    """The simulated 31 x 7 panel with a control ``x``; one never-treated unit (like Tibet) lacks its 2015 and
    2016 outcomes, so it has no base-period row in the cells with base 2015 or 2016."""
    df = simulate_staggered(seed=seed)
    never = df.loc[df["first_year"] == 0, "province_code"].iloc[0]
    df.loc[(df["province_code"] == never) & df["year"].isin([2015, 2016]), "y"] = np.nan
    return df


def test_att_gt_with_control_and_missing_base_row_has_finite_standard_errors():
    """Old code: 0 * NaN (the missing unit's base-period control times its zero residual) made every unit's
    influence function NaN in the cells the unit is absent from, so every aggregated SE was NaN (exit 0)."""
    df = _tibet_like()
    spec = SPEC.replace(controls=["x"], control_group="notyettreated", aggregate="dynamic",
                        allow_unbalanced_panel=True)
    out = CS.att_gt(df, spec)
    assert np.isfinite(out["std_error"]).all() and np.isfinite(out["p_value"]).all()
    gte = CS.group_time_effects(df, spec)
    assert np.isfinite(gte.influence).all()


def test_att_gt_cell_variance_ignores_units_outside_the_cell():
    """A unit absent from cell (g, t) must not change that cell's estimate or variance: the cell's SE on the
    full panel equals its SE when only the units observed in t and its base period are kept."""
    df = _tibet_like()
    spec = SPEC.replace(controls=["x"], control_group="nevertreated", allow_unbalanced_panel=True)
    gte = CS.group_time_effects(df, spec)
    n = len(gte.cohort_of_unit)
    se_full, _ = CS._influence_inference(gte.influence, gte.cluster_of_unit, n, 0, None)
    wide = df.pivot(index="province_code", columns="year", values="y")
    checked = 0
    for k, cell in enumerate(gte.cells.itertuples()):
        present = wide.index[wide[cell.t].notna() & wide[cell.base].notna()]
        if len(present) == wide.shape[0]:
            continue
        sub = CS.group_time_effects(df.loc[df["province_code"].isin(present)], spec)
        j = int(np.flatnonzero((sub.cells["g"] == cell.g) & (sub.cells["t"] == cell.t))[0])
        se_sub, _ = CS._influence_inference(sub.influence[:, [j]], sub.cluster_of_unit, len(sub.cohort_of_unit),
                                           0, None)
        assert sub.cells["att"].iloc[j] == pytest.approx(cell.att, abs=1e-12)
        assert se_sub[0] == pytest.approx(se_full[k], rel=1e-10)
        checked += 1
    assert checked >= 3  # the cells with base 2015 or 2016 (and t = 2016)


def test_non_finite_standard_error_is_a_data_error_naming_the_spec():
    with pytest.raises(DataError, match=r"configs/specs/x\.yaml.*ATT e=1.*not finite"):
        CS._require_finite_se(np.array([0.1, np.nan]), ["ATT", "ATT e=1"],
                             SPEC.replace(spec_files=["configs/specs/x.yaml"]))


# ------------------------------------------------------------------------------------------------- Hausman


def test_f_sf_equals_scipy_stats():
    from scipy import stats

    from analysis.models.distributions import f_sf

    for x, m, n in [(2.034754, 5, 30), (0.1, 1, 4), (7.0, 3, 12)]:
        assert float(f_sf(x, m, n)) == pytest.approx(stats.f.sf(x, m, n), rel=1e-12)
    assert float(f_sf(-1.0, 2, 10)) == 1.0


def test_hausman_definiteness_by_hand():
    """V_FE - V_RE = diag(1, -0.5), d = (1, 1): H = 1/1 + 1/(-0.5) = -1, the negative direction adds -2."""
    from analysis.models import panel

    definite, min_eig, negative = panel.hausman_definiteness(np.array([2.0, 1.0]), np.array([1.0, 0.0]),
                                                             np.diag([2.0, 0.5]), np.diag([1.0, 1.0]))
    assert not definite and min_eig == pytest.approx(-0.5) and negative == pytest.approx(-2.0)
    definite, min_eig, negative = panel.hausman_definiteness(np.array([2.0, 0.0]), np.array([1.0, 1.0]),
                                                             np.diag([1.0, 3.0]), np.diag([0.5, 1.0]))
    assert definite and min_eig == pytest.approx(0.5) and negative == 0.0


def test_hausman_reports_definiteness_and_robust_f_with_g_minus_1_denominator():
    """Old code: no F(k, G-1) row and no definiteness flag (the classical H was reported as if valid)."""
    from scipy import stats

    from analysis.models import panel, registry
    from analysis.models.sample import select_sample
    from models_engine_sim import base_spec, simulate_panel

    df = simulate_panel(4)
    spec = base_spec(estimator="hausman", treatment="x1", outcome="y_cont", controls=["gdp"])
    out = registry.estimate(select_sample(df, spec), spec).set_index("term")
    w, k = out.loc["hausman_mundlak_chi2", "estimate"], int(out.loc["hausman_mundlak_chi2", "df_t"])
    f_row = out.loc["hausman_mundlak_F"]
    n_clusters = df["province_code"].nunique()
    assert k == 2 and int(f_row["df_num"]) == k and int(f_row["df_t"]) == n_clusters - 1
    assert f_row["estimate"] == pytest.approx(w / k, rel=1e-12)
    assert f_row["p_value"] == pytest.approx(stats.f.sf(w / k, k, n_clusters - 1), rel=1e-10)
    assert f_row["p_value"] > out.loc["hausman_mundlak_chi2", "p_value"]  # F(k, 30) has fatter tails than chi2/k
    # the flag agrees with the eigenvalues of the difference of the reported classical covariances (1 regressor
    # is enough to check the sign: V_FE - V_RE = se_FE^2 - se_RE^2 for the diagonal)
    flag = out.loc["hausman_chi2", "vdiff_positive_definite"]
    assert flag in (True, False)
    assert (out.loc["hausman_chi2", "vdiff_min_eigenvalue"] > 0) == bool(flag)
    if not flag:
        assert "NOT positive definite" in out.loc["hausman_chi2", "method"]


def test_tab04_marks_an_invalid_classical_hausman(tmp_path):
    import json

    from analysis.models.table_config import TableDef
    from analysis.models.table_labels import parse_labels
    from analysis.models.tables import build_grid

    fe = pd.DataFrame({"term": ["x"], "estimate": [1.0], "std_error": [0.5], "p_value": [0.05], "ci_low": [0.0],
                       "ci_high": [2.0], "n_obs": [100], "method": ["m"]})
    tests = pd.DataFrame({"term": ["hausman_mundlak_F", "hausman_chi2"], "estimate": [2.0, 35.9],
                          "std_error": [np.nan, np.nan], "p_value": [0.1, 1e-6], "ci_low": np.nan, "ci_high": np.nan,
                          "n_obs": [100, 100], "method": ["F", "classical"], "df_t": [30, 5], "df_num": [5, np.nan],
                          "vdiff_positive_definite": pd.array([pd.NA, False], dtype="boolean"),
                          "vdiff_min_eigenvalue": [np.nan, -8.9e-6], "vdiff_negative_part": [np.nan, -61.25]})
    for name, frame, estimator in (("fe", fe, "panel_fe"), ("h", tests, "hausman")):
        frame.to_parquet(tmp_path / f"{name}.parquet")
        (tmp_path / f"{name}.json").write_text(json.dumps({"spec": {"estimator": estimator, "outcome": "y"},
                                                            "terms": list(frame["term"])}))
    # the synthetic terms get their own label map (not configs/tables.yaml's)
    labels = parse_labels({"labels": {"terms": {"x": "x", "hausman_mundlak_F": "Mundlak F",
                                                "hausman_chi2": "Classical chi2"},
                                      "estimators": {"panel_fe": "Within"}, "event_time": "e={k}"}}, "test")
    header, body = build_grid(TableDef("t", "c", ("fe",), "all", "estimator", extra_specs=("h",)), tmp_path, labels)
    rows = {row[0]: row[1] for row in body}
    assert rows["Mundlak F (df 5, 30)"].startswith("2.000 [p = 0.100]")
    assert "not valid" in rows["Classical chi2 (df 5)"] and "-8.9e-06" in rows["Classical chi2 (df 5)"]
    assert "not valid" not in rows["Mundlak F (df 5, 30)"]


# ------------------------------------------------------------------------------------ treated-cluster counts


def test_treated_clusters_per_event_time_and_cohort_flag_few():
    """A 1-unit cohort (2016) is the only cohort observed at e = 5 in 2015-2021: that row carries one treated
    cluster and is flagged; the overall ATT carries all 9. Old code: no such columns."""
    from analysis.models import registry

    df = simulate_staggered(seed=5, sizes={2016: 1, 2019: 8, 0: 22})
    spec = SPEC.replace(aggregate="dynamic", estimator="att_gt")
    out = registry.estimate(df, spec).set_index("term")
    assert out.loc["ATT", "n_treated_clusters"] == 9
    assert out.loc["ATT e=5", "n_treated_clusters"] == 1 and bool(out.loc["ATT e=5", "few_treated_clusters"])
    assert "FEW TREATED CLUSTERS (1 < 5)" in out.loc["ATT e=5", "method"]
    assert out.loc["ATT e=0", "n_treated_clusters"] == 9 and not out.loc["ATT e=0", "few_treated_clusters"]
    assert out.loc["ATT e=-3", "n_treated_clusters"] == 8  # 2016 - 3 is before the window
    assert set(out["n_treated_clusters_by_cohort"]) == {"2016:1;2019:8"}


def test_treated_clusters_for_treatment_variable_designs():
    from analysis.models import registry
    from models_engine_sim import base_spec, simulate_panel

    df = simulate_panel(2)
    df["one_treated"] = ((df["province_code"] == df["province_code"].iloc[0]) & (df["year"] >= 2019)).astype(float)
    out = registry.estimate(df, base_spec(estimator="feols", treatment="one_treated")).set_index("term")
    assert out.loc["one_treated", "n_treated_clusters"] == 1 and out.loc["one_treated", "few_treated_clusters"]
    assert "FEW TREATED CLUSTERS" in out.loc["one_treated", "method"]
    cont = registry.estimate(df, base_spec(estimator="cont_did", exposure="exposure", treatment="post"))
    assert (cont["n_treated_clusters"] == 31).all() and not cont["few_treated_clusters"].any()


def test_few_treated_rows_take_stars_from_the_resampling_p_value():
    from analysis.models.table_cells import cell_stars

    row = pd.Series({"p_value": 0.001, "p_value_wild": 0.30, "few_treated_clusters": True})
    assert cell_stars(row) == "†"                      # analytic p would give ***
    assert cell_stars(row.drop("p_value_wild")) == "†"  # no resampling p-value: no stars
    assert cell_stars(pd.Series({**row, "p_value_wild": 0.02})) == "**†"
    assert cell_stars(pd.Series({"p_value": 0.001, "few_treated_clusters": False})) == "***"


def test_placebo_p_value_floor_is_one_over_j_plus_one():
    from analysis.models.treated import annotate

    table = pd.DataFrame({"term": ["ATT t=2020"], "method": ["synth"], "p_value": [0.2667],
                          "p_value_placebo": [0.2667], "n_units_ranked": [30]})
    df = pd.DataFrame({"u": [1, 2], "t": [2019, 2020], "y": [0.0, 1.0], "d": [0.0, 1.0]})
    spec = Spec.from_mapping({"estimator": "synth", "outcome": "y", "unit": "u", "time": "t", "treatment": "d",
                              "cluster": "u"})
    out = annotate(table, df, spec)
    assert out["p_value_floor"].iloc[0] == pytest.approx(1 / 30)
    assert out["n_treated_clusters"].iloc[0] == 1 and not out["few_treated_clusters"].iloc[0]  # placebo p, no flag


# ------------------------------------------------------------------------------------------- reported drops


def test_bacon_reports_the_observations_it_used():
    """Old code: n_obs counted every observed row (216 here), though the decomposition drops the unit with a
    missing period and uses the 30 x 7 balanced panel."""
    df = simulate_staggered(seed=2)
    df = df.drop(index=df.index[(df["province_code"] == df["province_code"].iloc[0]) & (df["year"] == 2018)])
    out = GB.bacon(df, SPEC.replace(estimator="bacon"))
    assert (out["n_obs"] == 30 * 7).all() and (out["n_units_dropped_unbalanced"] == 1).all()
    assert "1 unit(s) with a missing period dropped" in out["method"].iloc[0]
