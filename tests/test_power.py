"""What the data can rule out (analysis/power.py): minimum detectable effects, TOST equivalence tests, the smallest
effects of interest, and the CLI that writes power.csv and tab09_power.

References: statsmodels' power solvers (NormalIndPower, TTestPower) and equivalence tests (ttost_paired, ztost);
hand values from printed t and normal tables; simulated panels with a true zero effect run through the project's own
estimation engine.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from statsmodels.stats.power import NormalIndPower, TTestPower
from statsmodels.stats.weightstats import ttost_paired, ztost

from analysis import estimate, paths, power
from analysis.power import confidence_interval, mde, tost
from models_engine_sim import CONT_EFFECT, X_EFFECT, simulate_panel


# ---- minimum detectable effect -------------------------------------------------------------------------------------
def test_mde_hand_computation():
    # normal: z_.975 + z_.80 = 1.959964 + 0.841621 = 2.801585 (Bloom 1995's "2.8 standard errors")
    assert mde(1.0) == pytest.approx(2.801585, abs=1e-6)
    assert mde(0.01) == pytest.approx(0.02801585, abs=1e-8)
    # t(30), printed tables: t_.975 = 2.0423, t_.80 = 0.8538
    assert mde(1.0, 30) == pytest.approx(2.0423 + 0.8538, abs=2e-4)
    # other sizes and powers: z_.995 + z_.90 = 2.575829 + 1.281552
    assert mde(2.0, None, alpha=0.01, power=0.9) == pytest.approx(2 * (2.575829 + 1.281552), abs=1e-5)


def test_mde_equals_statsmodels_normal_power():
    # one-sided size α/2 is exactly the formula; two-sided adds the wrong-tail rejection (< 1e-5 here)
    one_sided = NormalIndPower().solve_power(effect_size=None, nobs1=1, alpha=0.025, power=0.8, ratio=0,
                                             alternative="larger")
    assert mde(1.0) == pytest.approx(one_sided, rel=1e-7)
    two_sided = NormalIndPower().solve_power(effect_size=None, nobs1=1, alpha=0.05, power=0.8, ratio=0,
                                             alternative="two-sided")
    assert mde(1.0) == pytest.approx(two_sided, rel=1e-5)


@pytest.mark.parametrize("df", [10, 30, 100, 1000])
def test_mde_close_to_statsmodels_noncentral_t(df):
    # TTestPower solves the noncentral t; the central-quantile formula is within 0.1% for df >= 10 and its power is 0.8
    n = df + 1
    exact = TTestPower().solve_power(effect_size=None, nobs=n, alpha=0.05, power=0.8, alternative="two-sided")
    assert mde(1.0, df) == pytest.approx(exact * math.sqrt(n), rel=1e-3)
    achieved = TTestPower().power(effect_size=mde(1.0, df) / math.sqrt(n), nobs=n, alpha=0.05, alternative="two-sided")
    assert achieved == pytest.approx(0.8, abs=1e-3)


def test_mde_t_exceeds_normal_and_converges():
    assert mde(1.0, 30) > mde(1.0, 100) > mde(1.0, 10_000) > mde(1.0)
    assert mde(1.0, 10**7) == pytest.approx(mde(1.0), rel=1e-6)
    assert mde(1.0, float("nan")) == mde(1.0, float("inf")) == mde(1.0, None)


# ---- TOST ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shift, bound", [(0.0, 0.5), (0.3, 0.5), (0.55, 0.5), (-0.2, 0.3), (1.0, 0.2)])
def test_tost_equals_statsmodels_ttost_paired(shift, bound):
    rng = np.random.default_rng(11)
    x1 = rng.normal(shift, 1.0, 25)
    x2 = np.zeros_like(x1)
    ref, (t1, p1, df1), (t2, p2, df2) = ttost_paired(x1, x2, -bound, bound)
    est, se, df = x1.mean(), x1.std(ddof=1) / math.sqrt(len(x1)), len(x1) - 1
    p_lower, p_upper, p_tost = tost(est, se, bound, df)
    assert df1 == df2 == df
    assert p_lower == pytest.approx(p1, abs=1e-12) and p_upper == pytest.approx(p2, abs=1e-12)
    assert p_tost == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("shift", [0.0, 0.2, 0.6])
def test_tost_normal_equals_statsmodels_ztost(shift):
    rng = np.random.default_rng(5)
    x1 = rng.normal(shift, 1.0, 40)
    ref, (_, p1), (_, p2) = ztost(x1, -0.5, 0.5)
    p_lower, p_upper, p_tost = tost(x1.mean(), x1.std(ddof=1) / math.sqrt(len(x1)), 0.5)
    assert (p_lower, p_upper, p_tost) == pytest.approx((p1, p2, ref), abs=1e-12)


def test_tost_hand_values():
    # est 0, SE 1, bound 1.959964: each one-sided test is at z = 1.959964, p = 0.025
    assert tost(0.0, 1.0, 1.959964)[2] == pytest.approx(0.025, abs=1e-7)
    # est 0.5, SE 0.25, bound 1, normal: p_lower = Φ(-6) , p_upper = Φ(-2) = 0.0227501
    p_lower, p_upper, p = tost(0.5, 0.25, 1.0)
    assert p_upper == pytest.approx(0.0227501319, abs=1e-9) and p == p_upper and p_lower < 1e-8
    with pytest.raises(ValueError):
        tost(0.0, 1.0, 0.0)


@pytest.mark.parametrize("df", [None, 5, 30])
def test_equivalence_iff_90pct_ci_inside_bounds(df):
    rng = np.random.default_rng(2024)
    for _ in range(3000):
        est, se, bound = rng.normal(0, 1), rng.uniform(0.05, 1.0), rng.uniform(0.01, 2.5)
        low, high = confidence_interval(est, se, df, level=0.90)
        if min(abs(low + bound), abs(high - bound)) < 1e-9:
            continue  # on the boundary the two are equal up to rounding
        assert (tost(est, se, bound, df)[2] < 0.05) == (low > -bound and high < bound)


def test_tost_size_at_the_bound():
    # a true effect exactly at the bound is declared equivalent in at most α of the draws (≈ α: one side binds)
    rng = np.random.default_rng(99)
    se, bound = 0.1, 0.25
    draws = rng.normal(bound, se, 40_000)
    rejected = np.mean([tost(e, se, bound)[2] < 0.05 for e in draws])
    assert 0.045 < rejected < 0.055


# ---- smallest effects of interest ----------------------------------------------------------------------------------
def small_panel() -> pd.DataFrame:
    return pd.DataFrame({
        "province_code": [1, 1, 1, 2, 2, 2],
        "year": [2018, 2019, 2020, 2018, 2019, 2020],
        "y": [1.0, 2.0, 3.0, 10.0, 10.0, np.nan],
        "x": [0.5, 0.5, 0.5, -1.5, -1.5, -1.5],
        "post": [0, 1, 1, 0, 1, 1],
    })


def test_within_province_sd_by_hand():
    # deviations: province 1: -1, 0, 1; province 2: 0, 0 (missing row dropped) -> sqrt(2 / 5)
    assert power.within_province_sd(small_panel(), "y") == pytest.approx(math.sqrt(2 / 5), abs=1e-12)


def test_doubling_rule_level_and_log_change():
    panel = small_panel()
    assert power.doubling_effect(panel, "y", 1, 2019, log_change=False) == 2.0
    assert power.doubling_effect(panel, "y", 1, 2019, log_change=True, n_post_years=2) == pytest.approx(
        math.log(2) / 2)
    with pytest.raises(power.DataError, match="2020"):
        power.doubling_effect(panel, "y", 2, 2020, log_change=False)   # missing value, never imputed
    with pytest.raises(power.DataError, match="non-positive"):
        power.doubling_effect(panel.assign(y=-panel["y"]), "y", 1, 2019, log_change=False)


def test_exposure_sd_and_time_varying_exposure():
    panel = small_panel()
    assert power.exposure_sd(panel, "x") == pytest.approx(np.std([0.5, -1.5], ddof=1))
    with pytest.raises(power.DataError, match="varies over time"):
        power.exposure_sd(panel, "y")


# ---- the CLI on simulated estimate files -----------------------------------------------------------------------
def make_config(folder, specs: dict, **smallest) -> "Path":
    cfg = {"alpha": 0.05, "power": 0.8, "specs": specs,
           "smallest_effect": {"bound": "within_province_sd", "doubling": {"province_code": 610000, "pre_year": 2018},
                               "log_change_outcomes": ["y_zero"], "exposure_contrast_sd": 2, **smallest}}
    path = folder / "power.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def sim_estimates(folder, seed: int, noise: float):
    """A two-way panel (31 provinces x 7 years, unit and year effects) with a true zero exposure x post effect,
    estimated by the project's engine (cont_did, CRV1 by province, t(G-1)); returns the panel file."""
    panel = simulate_panel(seed, noise=noise)
    panel["y_zero"] = panel["y_cont"] - CONT_EFFECT * panel["exposure"] * panel["post"] - X_EFFECT * panel["x1"]
    panel["exposure_z"] = (panel["exposure"] - panel.groupby("year")["exposure"].transform("mean")) / \
        panel.groupby("year")["exposure"].transform("std")
    data = folder / "panel.parquet"
    panel.to_parquet(data, index=False)
    (folder / "zero.yaml").write_text(
        f"estimator: cont_did\noutcome: y_zero\nexposure: exposure_z\ntreatment: post\n"
        f"fixed_effects: [province_code, year]\ncluster: province_code\ndata: {data}\nseed: 1\n", encoding="utf-8")
    assert estimate.main(["--spec", str(folder / "zero.yaml"), "--out", str(folder / "est" / "zero.parquet")]) == 0
    return data


@pytest.mark.parametrize("noise, equivalent", [(0.002, True), (0.5, False)])
def test_true_zero_effect_small_se_is_equivalent_large_se_is_not(tmp_path, noise, equivalent):
    # fixed bound 0.05 per SD of exposure: SE about 0.0005 (equivalence) vs about 0.1 (none)
    sim_estimates(tmp_path, seed=3, noise=noise)
    row = pd.read_parquet(tmp_path / "est" / "zero.parquet").iloc[0]
    assert row["ci_low"] < 0 < row["ci_high"]   # the true zero is covered in both draws
    assert (tost(row["estimate"], row["std_error"], 0.05, row["df_t"])[2] < 0.05) is equivalent
    assert bool(mde(row["std_error"], row["df_t"]) < 0.05) is equivalent


def test_cli_on_engine_output(tmp_path):
    data = sim_estimates(tmp_path, seed=3, noise=0.1)
    config = make_config(tmp_path, {"zero": ["{exposure}:{treatment}"]})
    assert power.main(["--config", str(config), "--estimates-dir", str(tmp_path / "est"), "--panel", str(data),
                       "--out-dir", str(tmp_path / "out"), "--figures-dir", str(tmp_path / "fig")]) == 0
    row = pd.read_csv(tmp_path / "out" / "power.csv").iloc[0]
    panel = pd.read_parquet(data)
    # the bound is half a within-province SD of the outcome per SD of exposure (SD of exposure_z = 1)
    assert row["equivalence_bound"] == pytest.approx(power.within_province_sd(panel, "y_zero") / 2, rel=1e-12)
    assert row["reference_distribution"] == "t(30)" and row["df"] == 30
    assert row["mde_80"] == pytest.approx(mde(row["std_error"], 30), rel=1e-12)
    assert row["p_tost"] == pytest.approx(tost(row["estimate"], row["std_error"], row["equivalence_bound"], 30)[2],
                                          abs=1e-15)
    assert bool(row["equivalent"]) is bool(row["p_tost"] < 0.05)
    assert row["smallest_effect_rule"] == "within_province_sd / (2 x SD of exposure)"
    # doubling of a log-change outcome: ln 2 spread over the 3 post years (2019-2021), per 2 SD of exposure
    assert row["equivalence_bound_doubling"] == pytest.approx(math.log(2) / 3 / 2, rel=1e-12)
    text = (tmp_path / "fig" / "tab09_power.md").read_text(encoding="utf-8")
    assert "zero" in text and f"{row['ci_high']:.4f}" in text


def test_cli_rerun_gives_identical_bytes(tmp_path):
    data = sim_estimates(tmp_path, seed=4, noise=0.1)
    config = make_config(tmp_path, {"zero": ["{exposure}:{treatment}"]})
    digests = []
    for out in ("a", "b"):
        args = ["--config", str(config), "--estimates-dir", str(tmp_path / "est"), "--panel", str(data),
                "--out-dir", str(tmp_path / out), "--figures-dir", str(tmp_path / out)]
        assert power.main(args) == 0
        digests.append([hashlib.sha256((tmp_path / out / f).read_bytes()).hexdigest()
                        for f in ("power.csv", "tab09_power.tex", "tab09_power.md")])
    assert digests[0] == digests[1]


def test_cli_errors_name_the_file_and_write_nothing(tmp_path, capsys):
    data = sim_estimates(tmp_path, seed=5, noise=0.1)
    common = ["--estimates-dir", str(tmp_path / "est"), "--panel", str(data), "--out-dir", str(tmp_path / "out"),
              "--figures-dir", str(tmp_path / "out")]
    # a headline spec whose estimate file is missing
    config = make_config(tmp_path, {"zero": ["{exposure}:{treatment}"], "absent": ["ATT"]})
    assert power.main(["--config", str(config), *common]) == 2
    assert "absent.parquet" in capsys.readouterr().err
    # a term the file does not hold
    config = make_config(tmp_path, {"zero": ["nonexistent"]})
    assert power.main(["--config", str(config), *common]) == 2
    err = capsys.readouterr().err
    assert "zero.parquet" in err and "nonexistent" in err
    # an unknown config key
    config = make_config(tmp_path, {"zero": ["{exposure}:{treatment}"]}, typo=1)
    assert power.main(["--config", str(config), *common]) == 2
    assert "power.yaml" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_reported_ci_must_match_the_reference_distribution(tmp_path, capsys):
    # a file claiming t(30) inference but holding a normal CI is refused: the distribution would be misread
    data = sim_estimates(tmp_path, seed=6, noise=0.1)
    est = pd.read_parquet(tmp_path / "est" / "zero.parquet")
    low, high = confidence_interval(est.loc[0, "estimate"], est.loc[0, "std_error"], None, 0.95)
    est.loc[0, ["ci_low", "ci_high"]] = [low, high]
    est.to_parquet(tmp_path / "est" / "zero.parquet", index=False)
    config = make_config(tmp_path, {"zero": ["{exposure}:{treatment}"]})
    assert power.main(["--config", str(config), "--estimates-dir", str(tmp_path / "est"), "--panel", str(data),
                       "--out-dir", str(tmp_path / "out"), "--figures-dir", str(tmp_path / "out")]) == 2
    assert "t(30)" in capsys.readouterr().err


def test_single_unit_placebo_rows(tmp_path):
    # synthetic control (no SE): placebo floor 1/(J+1); synthetic DiD (normal placebo SE): MDE and TOST, normal
    panel = small_panel().rename(columns={"y": "outcome_y"})
    panel.loc[panel["province_code"] == 1, "province_code"] = 610000
    data = tmp_path / "panel.parquet"
    panel.to_parquet(data, index=False)
    (tmp_path / "est").mkdir()
    spec = {"estimator": "synth", "outcome": "outcome_y", "treatment": "post", "unit": "province_code", "time": "year"}
    base = {"term": "ATT", "estimate": -0.01, "n_obs": 6, "method": "m", "n_donors": 29}
    tables = {"sc": {**base, "std_error": np.nan, "p_value": 0.4, "ci_low": np.nan, "ci_high": np.nan},
              "sd": {**base, "std_error": 0.02, "p_value": 0.6,
                     "ci_low": -0.01 - 1.959963984540054 * 0.02, "ci_high": -0.01 + 1.959963984540054 * 0.02}}
    for name, row in tables.items():
        pd.DataFrame([row]).to_parquet(tmp_path / "est" / f"{name}.parquet", index=False)
        (tmp_path / "est" / f"{name}.json").write_text(
            json.dumps({"spec": {**spec, "estimator": "sdid" if name == "sd" else "synth"}}), encoding="utf-8")
    config = make_config(tmp_path, {"sc": ["ATT"], "sd": ["ATT"]}, bound="doubling")
    assert power.main(["--config", str(config), "--estimates-dir", str(tmp_path / "est"), "--panel", str(data),
                       "--out-dir", str(tmp_path / "out"), "--figures-dir", str(tmp_path / "out")]) == 0
    out = pd.read_csv(tmp_path / "out" / "power.csv").set_index("spec_id")
    assert (out["min_attainable_p"] == 1 / 30).all()
    assert out.loc["sc", "reference_distribution"] == "placebo rank" and np.isnan(out.loc["sc", "mde_80"])
    assert np.isnan(out.loc["sc", "p_tost"])
    assert out.loc["sd", "reference_distribution"] == "normal"
    assert out.loc["sd", "mde_80"] == pytest.approx(2.801585 * 0.02, abs=1e-7)
    # doubling rule: province 610000's 2018 level (1.0) is the bound of the ATT
    assert (out["equivalence_bound"] == 1.0).all()
    assert out.loc["sd", "p_tost"] == pytest.approx(tost(-0.01, 0.02, 1.0)[2], abs=1e-15)


def test_placebo_row_without_p_value_says_why_not_nan():
    # a synthetic control with a perfect treated pre-period fit has no RMSPE-ratio p-value: the finding gives the
    # estimate file's reason instead of printing "p = nan"
    row = pd.Series({"outcome": "capability_index", "spec_id": "sc", "term": "ATT", "effect_scale": "level",
                     "reference_distribution": "placebo rank", "estimate": -0.0215, "units": "index points",
                     "p_value": np.nan, "n_donors": 29.0, "min_attainable_p": 1 / 30,
                     "p_value_missing_reason": "treated pre-RMSPE is 0 (perfect pre-period fit), RMSPE ratio undefined"})
    text = power.sentence(row)
    assert "nan" not in text
    assert "no placebo p-value — treated pre-RMSPE is 0" in text
    with_p = row.copy()
    with_p["p_value"] = 0.4
    assert "placebo p = 0.400" in power.sentence(with_p)


# ---- the shipped config and, when built, the real estimates --------------------------------------------------------
def test_shipped_config_names_shipped_specs():
    cfg = power.load_config()
    for spec_id in cfg["specs"]:
        assert (paths.SPECS / f"{spec_id}.yaml").exists(), spec_id
    assert set(cfg["smallest_effect"]["log_change_outcomes"]) <= {
        yaml.safe_load((paths.SPECS / f"{s}.yaml").read_text(encoding="utf-8")).get("outcome") for s in cfg["specs"]}


@pytest.mark.build("data/processed/analysis_panel.parquet", "data/processed/estimates/.up-to-date")
def test_real_estimates():
    cfg = power.load_config()
    missing = [s for s in cfg["specs"] if not (paths.ESTIMATES / f"{s}.parquet").exists()]
    assert not missing, f"estimate files missing: {missing} (run make all first)"
    frame = power.power_rows(paths.ESTIMATES, pd.read_parquet(paths.ANALYSIS_PANEL), cfg)
    assert len(frame) == sum(len(t) for t in cfg["specs"].values())
    with_se = frame[frame["reference_distribution"] != "placebo rank"]
    assert with_se["mde_80"].gt(0).all() and with_se["p_tost"].between(0, 1).all()
    cont = with_se[with_se["estimator"] == "cont_did"]
    assert (cont["reference_distribution"] == "t(30)").all()   # 31 province clusters
    bound = with_se["equivalence_bound"]
    inside = (with_se["ci90_low"] > -bound) & (with_se["ci90_high"] < bound)
    assert (with_se["equivalent"].astype(bool) == inside).all()
    synth = frame[frame["estimator"] == "synth"]
    assert (synth["min_attainable_p"] == 1 / (synth["n_donors"] + 1)).all()
