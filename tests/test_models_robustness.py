"""Issue 14 §3/§5: unit-specific trends, dropped years, base-period interactions, the robustness table (tab07) and
the theater-heterogeneity exhibits (tab08, Figure 13).

Known truths: a simulated panel in which exposure is correlated with province-specific linear trends (the plain
two-way DiD is then biased, the trend specification is not); dummy-variable OLS (statsmodels) as the second
implementation of the trend regression; hand-computed base-period interactions.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis import paths
from analysis.analysis_panel import base_period_interaction, load_config
from analysis.models import regression
from analysis.models.sample import select_sample
from analysis.models.spec import resolve
from analysis.models.spec_vocabulary import SpecError
from analysis.models.table_config import TABLES
from analysis.models.table_labels import LABELS
from analysis.models.tables import build_grid, build_long
from models_engine_sim import CONT_EFFECT, base_spec, simulate_panel

TERM = "exposure:post"


def trending_panel(seed: int = 11, trend_loading: float = 0.4) -> pd.DataFrame:
    """The engine's simulated panel plus a province-specific linear trend ``trend_loading · exposure_i · (t − 2018)``
    in the outcome: exposure predicts the trend, so exposure × post picks it up unless the trends are modelled."""
    df = simulate_panel(seed=seed, noise=0.05)
    df["y_trend"] = df["y_cont"] + trend_loading * df["exposure"] * (df["year"] - 2018)
    return df


def _cont_did_spec(**overrides):
    return base_spec(estimator="cont_did", outcome="y_trend", exposure="exposure", treatment="post", **overrides)


def test_unit_trends_recover_the_effect_that_plain_twfe_misses():
    df = trending_panel()
    plain = regression.cont_did(df, _cont_did_spec()).set_index("term").loc[TERM]
    trends = regression.cont_did(df, _cont_did_spec(trends="unit_linear")).set_index("term").loc[TERM]
    # The trend loads on exposure: the post-minus-pre mean of (t − 2018) is 2.5 years, so plain TWFE is biased by
    # about 0.4 × 2.5 = 1.0 — far outside its interval — while the trend specification recovers 0.5.
    assert abs(plain["estimate"] - CONT_EFFECT) > 0.5
    assert abs(trends["estimate"] - CONT_EFFECT) < 3 * trends["std_error"]
    assert abs(trends["estimate"] - CONT_EFFECT) < 0.05
    assert trends["ci_low"] < CONT_EFFECT < trends["ci_high"]


def test_unit_trends_equal_the_dummy_variable_regression():
    df = trending_panel()
    treat = (df["exposure"] * df["post"]).rename("treat")
    t = df["year"] - df["year"].mean()
    units = pd.get_dummies(df["province_code"], dtype=float)
    years = pd.get_dummies(df["year"], dtype=float).iloc[:, 1:]
    # one slope fewer: with year effects the 31 slopes sum to a year-effect combination (a full-rank design, so
    # statsmodels' cluster-robust variance is exact; with a rank-deficient one its pseudo-inverse differs slightly)
    slopes = units.mul(t, axis=0).iloc[:, :-1]
    X = np.column_stack([treat, units, years, slopes])
    assert np.linalg.matrix_rank(X) == X.shape[1] == 68
    dummy = sm.OLS(df["y_trend"].to_numpy(), X).fit(cov_type="cluster",
                                                    cov_kwds={"groups": df["province_code"].to_numpy()})
    ours = regression.cont_did(df, _cont_did_spec(trends="unit_linear"))
    assert ours["term"].tolist() == [TERM]   # the slopes are not reported
    assert ours["estimate"].iloc[0] == pytest.approx(dummy.params[0], abs=1e-10)
    # K counts the 30 identified slopes (one is collinear with the year effects) beside β and the 7 non-nested FE
    # parameters (intercept + 6 years); statsmodels counts all 68 columns: G/(G-1)(N-1)/(N-K) differs only in K.
    assert "K=38" in ours["method"].iloc[0] and "30 slopes estimated, 1 collinear" in ours["method"].iloc[0]
    n = len(df)
    assert ours["std_error"].iloc[0] == pytest.approx(dummy.bse[0] * np.sqrt((n - 68) / (n - 38)), rel=1e-8)


def test_unit_trends_with_wild_bootstrap_and_unbalanced_rows():
    df = trending_panel().drop(index=[0, 1, 50])   # an unbalanced panel
    spec = _cont_did_spec(trends="unit_linear", inference={"wild_bootstrap": {"reps": 199}})
    out = regression.cont_did(df, spec)
    assert out["term"].tolist() == [TERM]
    assert out["p_value_wild"].iloc[0] < 0.01   # the true effect 0.5 is 10 standard errors away from zero
    assert out["n_obs"].iloc[0] == len(df)
    # Under the null (effect removed, trends kept) the trend-aware bootstrap does not reject, while the plain
    # two-way bootstrap does: it tests the trend-induced bias, not an effect.
    null = df.assign(y_trend=df["y_trend"] - CONT_EFFECT * df["exposure"] * df["post"])
    p_trends = regression.cont_did(null, spec)["p_value_wild"].iloc[0]
    p_plain = regression.cont_did(null, _cont_did_spec(inference={"wild_bootstrap": {"reps": 199}}))["p_value_wild"]
    assert p_trends > 0.10 and p_plain.iloc[0] < 0.01


def test_trends_key_is_validated():
    with pytest.raises(SpecError, match="trends"):
        _cont_did_spec(trends="quadratic")
    with pytest.raises(SpecError, match="trends"):
        base_spec(estimator="panel_fe", treatment="post", trends="unit_linear")


def test_drop_years_removes_exactly_those_years():
    df = simulate_panel()
    spec = base_spec(treatment="post", sample={"years": [2015, 2021], "drop_years": [2020]})
    out = select_sample(df, spec)
    assert sorted(out["year"].unique()) == [2015, 2016, 2017, 2018, 2019, 2021]
    assert len(out) == 31 * 6


def test_base_period_interaction_by_hand():
    frame = pd.DataFrame({"province_code": [1, 1, 1, 2, 2, 2], "year": [2016, 2017, 2019] * 2,
                          "gdp": [5.0, np.e, 9.0, 1.0, np.e ** 2, 3.0], "post": [0, 0, 1] * 2,
                          "z": [0.5, 0.5, 0.5, -1.0, -1.0, -1.0]})
    log_size = base_period_interaction(frame, {"column": "gdp", "years": [2017, 2017], "transform": "log",
                                               "times": "post"})
    assert log_size.tolist() == pytest.approx([0, 0, 1.0, 0, 0, 2.0])
    mcf = base_period_interaction(frame, {"column": "z", "years": [2016, 2016], "from_year": 2017})
    assert mcf.tolist() == pytest.approx([0, 0.5, 0.5, 0, -1.0, -1.0])
    with pytest.raises(ValueError, match="no value"):
        base_period_interaction(frame.assign(gdp=[np.nan, np.nan, 1, 1, 1, 1]),
                                {"column": "gdp", "years": [2017, 2017], "times": "post"})


def test_analysis_panel_config_declares_the_robustness_columns():
    cfg = load_config()
    inter = cfg["base_period_interactions"]
    assert inter["log_gdp_2017_x_post_huawei_2019"] == {"column": "gdp", "years": [2017, 2017], "transform": "log",
                                                         "times": "post_huawei_2019"}
    assert inter["exposure_defence_z_x_post_2017"]["from_year"] == 2017
    assert cfg["other_index_methods"]["levels_entropy_wsum"] == ["capability_index"]


def test_robustness_table_lists_existing_specs_that_vary_one_thing():
    tab07 = next(t for t in TABLES if t.name == "tab07_robustness")
    assert len(tab07.labels) == len(tab07.specs)
    resolved = {s: resolve(paths.SPECS / f"{s}.yaml") for s in tab07.specs}   # every column's spec exists
    headline = resolved["cont_did_capability_index"]
    assert tab07.specs[0] == "cont_did_capability_index"
    for spec_id, spec in resolved.items():
        assert spec.exposure == headline.exposure and spec.treatment == headline.treatment
        differs = {k for k in ("trends", "controls", "sample", "outcome") if getattr(spec, k) != getattr(headline, k)}
        assert len(differs) == (0 if spec_id == tab07.specs[0] else 1), (spec_id, differs)
    assert resolved["robust_trends_capability_index"].trends == "unit_linear"
    assert resolved["robust_no2020_capability_index"].sample.drop_years == (2020,)
    assert resolved["robust_no_hubei_capability_index"].sample.drop_units == (420000,)
    assert "2022" in tab07.note   # the window extension (f) is said to be missing, not faked


def _write_estimates(directory, spec_id, table, spec):
    table.assign(spec_id=spec_id).to_parquet(directory / f"{spec_id}.parquet")
    (directory / f"{spec_id}.json").write_text(json.dumps({"spec": spec.canonical(), "terms": table["term"].tolist()}))


def test_robustness_grid_shows_only_the_treatment_row(tmp_path):
    tab07 = next(t for t in TABLES if t.name == "tab07_robustness")
    df = simulate_panel().rename(columns={"exposure": "exposure_foreign_tech_z", "post": "post_huawei_2019"})
    for spec_id in tab07.specs:
        spec = base_spec(estimator="cont_did", exposure="exposure_foreign_tech_z", treatment="post_huawei_2019",
                         controls=["x1"])
        _write_estimates(tmp_path, spec_id, regression.cont_did(df, spec), spec)
    header, body = build_grid(tab07, tmp_path)
    assert header[1:] == [f"({i + 1}) {label}" for i, label in enumerate(tab07.labels)]
    assert [row[0] for row in body if row[0].strip()] == [LABELS.term(tab07.terms[0]), "Observations", "Clusters",
                                                          "Estimator"]


def test_theater_table_has_one_row_per_theater_with_its_cluster_count(tmp_path):
    tab08 = next(t for t in TABLES if t.name == "tab08_theater_heterogeneity")
    df = simulate_panel().rename(columns={"region": "theater_command", "exposure": "exposure_foreign_tech_z",
                                          "post": "post_huawei_2019"})
    spec = base_spec(estimator="cont_did", exposure="exposure_foreign_tech_z", treatment="post_huawei_2019",
                     heterogeneity="theater_command", fixed_effects=["province_code", "theater_command^year"])
    table = regression.cont_did(df, spec)
    _write_estimates(tmp_path, tab08.specs[0], table, spec)
    header, body = build_long(tab08, tmp_path)
    theaters = sorted(df["theater_command"].unique())
    assert [row[0] for row in body] == [LABELS.term(f"exposure_foreign_tech_z:post_huawei_2019:theater_command={t}")
                                        for t in theaters]
    counts = df.drop_duplicates("province_code").groupby("theater_command").size()
    column = header.index(LABELS.column("n_clusters_level"))
    assert [float(row[column]) for row in body] == [float(counts[t]) for t in theaters]
    assert "5-7 provinces" in tab08.note
