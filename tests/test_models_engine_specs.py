"""Spec files: validation errors name the file and key, extends merges and detects cycles, the shipped specs
resolve, bad panels give DataErrors naming file/row/column, and the resampling hooks are wired correctly."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import paths
from analysis.io import DataError
from analysis.models import inference, registry
from analysis.models.sample import load_data, select_sample
from analysis.models.spec import resolve
from analysis.models.spec_vocabulary import ESTIMATORS, SpecError
from analysis.window import study_window
from models_engine_sim import base_spec, simulate_panel


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = "estimator: feols\noutcome: y_cont\ntreatment: post\n"


def test_minimal_spec_gets_defaults(tmp_path):
    spec = resolve(write(tmp_path, "m", MINIMAL))
    assert spec.id == "m"
    assert spec.fixed_effects == ("province_code", "year")
    assert spec.cluster == "province_code"
    assert spec.inference.vcov == "CRV1"
    assert spec.sample.years == tuple(study_window())  # configs/panel.yaml window
    assert isinstance(spec.seed, int)


@pytest.mark.parametrize("text, key, fragment", [
    (MINIMAL + "outcomes: y\n", "outcomes", "unknown key"),
    ("estimator: ols\noutcome: y\n", "estimator", "unknown estimator 'ols'"),
    ("estimator: feols\ntreatment: post\n", "outcome", "required"),
    ("estimator: cont_did\noutcome: y\ntreatment: post\n", "exposure", "needs 'exposure'"),
    (MINIMAL + "inference: {vcov: CRV3}\n", "inference.vcov", "CRV3"),
    (MINIMAL + "inference: {wild_bootstrap: {reps: 99, weights: mammen}}\n", "inference.wild_bootstrap.weights",
     "mammen"),
    (MINIMAL + "inference: {placebo: true}\n", "inference.placebo", "not an inference setting of estimator 'feols'"),
    (MINIMAL + "sample: {years: [2021, 2015]}\n", "sample.years", "first <= last"),
    (MINIMAL + "sample: {provinces: [1]}\n", "sample.provinces", "unknown key"),
    (MINIMAL + "controls: ['np.log(gdp)']\n", "controls[0]", "log(column)"),
    (MINIMAL + "seed: -1\n", "seed", "non-negative"),
    (MINIMAL + "event_window: [-2, 2]\nreference_period: -5\n", "reference_period", "outside"),
    (MINIMAL + "control_group: all\n", "control_group", "nevertreated"),
    (MINIMAL + "inference: {honest: {M: [0]}}\n", "inference.honest", "not an inference setting of estimator 'feols'"),
    ("estimator: bacon\noutcome: y\ncohort: g\ninference: {honest: {M: [0]}}\n", "inference.honest",
     "not an inference setting of estimator 'bacon'"),
    ("estimator: cont_did\noutcome: y\ntreatment: post\nexposure: x\ninference: {honest: {M: [0]}}\n",
     "inference.honest", "aggregate: dynamic"),
    ("estimator: event_study\noutcome: y\ncohort: g\ninference: {honest: {M: [-0.1]}}\n", "inference.honest.M",
     "non-negative"),
    ("estimator: event_study\noutcome: y\ncohort: g\ninference: {honest: {target: average}}\n", "inference.honest",
     "M (smoothness"),
    ("estimator: att_gt\noutcome: y\ncohort: g\ninference: {honest: {M: [0], target: -1}}\n",
     "inference.honest.target", "post-period"),
    ("estimator: att_gt\noutcome: y\ncohort: g\ninference: {honest: {m: [0]}}\n", "inference.honest.m", "unknown key"),
])
def test_bad_spec_names_file_and_key(tmp_path, text, key, fragment):
    path = write(tmp_path, "bad", text)
    with pytest.raises(SpecError) as err:
        resolve(path)
    assert err.value.key == key
    assert "bad.yaml" in str(err.value) and repr(key) in str(err.value)
    assert fragment in str(err.value)


def test_unknown_key_in_parent_names_parent_file(tmp_path):
    write(tmp_path, "parent", MINIMAL + "colour: red\n")
    child = write(tmp_path, "child", "extends: parent\noutcome: y_bin\n")
    with pytest.raises(SpecError) as err:
        resolve(child)
    assert "parent.yaml" in str(err.value) and err.value.key == "colour"


def test_extends_deep_merges(tmp_path):
    write(tmp_path, "base", MINIMAL + "inference: {vcov: CRV1, wild_bootstrap: {reps: 99}}\ncontrols: [x1, x2]\n")
    write(tmp_path, "mid", "extends: base\ninference: {vcov: hetero}\n")
    leaf = write(tmp_path, "leaf", "extends: mid\ncontrols: [x1]\noutcome: y_bin\n")
    spec = resolve(leaf)
    assert spec.outcome == "y_bin"
    assert spec.controls == ("x1",)                            # lists are replaced
    assert spec.inference.vcov == "hetero"                   # mappings merge ...
    assert spec.inference.wild_bootstrap.model_dump() == {"reps": 99, "weights": "webb"}  # ... keeping parent keys
    assert [Path(p).name for p in spec.spec_files] == ["leaf.yaml", "mid.yaml", "base.yaml"]


def test_extends_cycle_is_an_error(tmp_path):
    write(tmp_path, "a", MINIMAL + "extends: b\n")
    write(tmp_path, "b", "extends: c\n")
    write(tmp_path, "c", "extends: a\n")
    with pytest.raises(SpecError) as err:
        resolve(tmp_path / "a.yaml")
    assert err.value.key == "extends" and "cycle" in str(err.value) and "a -> b -> c -> a" in str(err.value)


def test_extends_missing_parent(tmp_path):
    path = write(tmp_path, "orphan", MINIMAL + "extends: nowhere\n")
    with pytest.raises(SpecError, match="parent spec 'nowhere' not found"):
        resolve(path)


def test_every_shipped_spec_resolves():
    specs = sorted(paths.SPECS.glob("*.yaml"))
    assert len(specs) >= 20
    used = set()
    for path in specs:
        spec = resolve(path)
        used.add(spec.estimator)
        own = (yaml.safe_load(path.read_text(encoding="utf-8")).get("sample") or {}).get("years")
        assert list(spec.sample.years) == (own or list(study_window()))  # the window, unless the spec sets its own
    assert {"cont_did", "event_study", "att_gt", "sunab", "did_imputation", "bacon", "synth", "sdid",
            "panel_fe", "panel_re", "first_diff", "hausman"} <= used <= set(ESTIMATORS)


# --------------------------------------------------------------------------------------------------------------
# Bad panels


def test_missing_outcome_column_names_file_and_column(tmp_path):
    df = simulate_panel().drop(columns="y_cont")
    csv = tmp_path / "panel.csv"
    df.to_csv(csv, index=False)
    spec = resolve(write(tmp_path, "s", MINIMAL + f"data: {csv}\n"))
    with pytest.raises(DataError) as err:
        load_data(spec)
    assert err.value.column == "y_cont" and "panel.csv" in str(err.value)


def test_duplicate_rows_and_nonpositive_log_name_the_row(tmp_path):
    df = simulate_panel()
    df.loc[5, "gdp"] = -1.0
    csv = tmp_path / "panel.csv"
    df.to_csv(csv, index=False)
    spec = resolve(write(tmp_path, "s", MINIMAL + f"data: {csv}\ncontrols: [log(gdp)]\n"))
    with pytest.raises(DataError) as err:
        load_data(spec)
    assert err.value.row == 6 and err.value.column == "gdp" and "log(gdp)" in str(err.value)
    df.loc[5, "gdp"] = 1.0
    df = pd.concat([df, df.iloc[[3]]])
    df.to_csv(csv, index=False)
    with pytest.raises(DataError, match="duplicate") as err:
        load_data(spec)
    assert err.value.row == len(df)


def test_non_numeric_outcome_names_row(tmp_path):
    df = simulate_panel()
    df["y_cont"] = df["y_cont"].astype(object)
    df.loc[9, "y_cont"] = "12,5"  # a decimal comma: not a number
    csv = tmp_path / "panel.csv"
    df.to_csv(csv, index=False)
    spec = resolve(write(tmp_path, "s", MINIMAL + f"data: {csv}\n"))
    with pytest.raises(DataError) as err:
        load_data(spec)
    assert err.value.row == 10 and err.value.column == "y_cont"


def test_sample_selection():
    df = simulate_panel()
    spec = base_spec(treatment="post", sample={"years": [2016, 2020], "drop_units": [610000, 440000]})
    out = select_sample(df.sample(frac=1, random_state=0), spec)
    assert out["year"].between(2016, 2020).all() and len(out) == 29 * 5
    assert not out["province_code"].isin([610000, 440000]).any()
    assert out["province_code"].is_monotonic_increasing


# --------------------------------------------------------------------------------------------------------------
# Resampling hooks: the engine passes the right objects to analysis.models.inference


def test_wild_bootstrap_wiring_passes_fwl_design(monkeypatch):
    calls = {}

    def wild_bootstrap_pvalue(y, X, clusters, coef_index, reps, weights, seed, n_absorbed, fixed_effects):
        beta = np.linalg.lstsq(X, y, rcond=None)[0][coef_index]  # FWL: same coefficient as the FE regression
        calls["wild"] = (y.shape, X.shape, len(np.unique(clusters)), coef_index, reps, weights, seed, n_absorbed,
                         beta)
        calls["fixed_effects"] = fixed_effects
        return {"p_value": 0.123}

    fake = types.ModuleType("analysis.models.inference")
    fake.wild_bootstrap_pvalue = wild_bootstrap_pvalue
    monkeypatch.setitem(sys.modules, "analysis.models.inference", fake)
    import analysis.models as models_pkg
    monkeypatch.setattr(models_pkg, "inference", fake, raising=False)

    df = simulate_panel(2)
    spec = base_spec(estimator="cont_did", exposure="exposure", treatment="post", controls=["x1"], seed=99,
                     inference={"wild_bootstrap": {"reps": 199, "weights": "rademacher"}})
    out = registry.estimate(df, spec).set_index("term")
    assert calls["wild"][:8] == ((217,), (217, 2), 31, 0, 199, "rademacher", 99, 7)  # K = 2 + 1 + 6 year effects
    assert calls["wild"][8] == pytest.approx(out.loc["exposure:post", "estimate"], rel=1e-10)
    # the absorbed effects travel along (the bootstrap needs the non-nested year effects in every refit)
    assert [len(np.unique(codes)) for codes in calls["fixed_effects"]] == [31, 7]
    assert out.loc["exposure:post", "p_value_wild"] == 0.123
    assert np.isnan(out.loc["x1", "p_value_wild"])  # controls get no bootstrap p-value
    assert "wild cluster bootstrap WCR (rademacher, 199 reps, seed 99)" in out.loc["exposure:post", "method"]


def test_resampling_with_the_inference_module():
    df = simulate_panel(8)
    df["y_null"] = np.random.default_rng(3).normal(size=len(df))
    common = dict(estimator="cont_did", exposure="exposure", treatment="post", controls=["x1"], seed=5,
                  inference={"wild_bootstrap": {"reps": 999}, "ri": {"reps": 199}})
    strong = registry.estimate(df, base_spec(**common)).set_index("term")
    assert strong.loc["exposure:post", "p_value_wild"] < 0.01
    assert strong.loc["exposure:post", "p_value_ri"] <= 0.01  # (1 + 0) / (1 + 199) = 0.005
    null = registry.estimate(df, base_spec(outcome="y_null", **common)).set_index("term")
    assert null.loc["exposure:post", "p_value_wild"] > 0.01
    # the permutation module's observed TWFE coefficient equals ours (two implementations agree)
    frame = df.assign(d=df["exposure"] * df["post"])
    direct = inference.ri_pvalue(frame, "province_code", "year", "y_null", "d", reps=199, seed=5, controls=["x1"])
    assert direct["observed"] == pytest.approx(null.loc["exposure:post", "estimate"], rel=1e-8)
    assert direct["p_value"] == pytest.approx(null.loc["exposure:post", "p_value_ri"])
    again = registry.estimate(df, base_spec(outcome="y_null", **common)).set_index("term")
    assert again.loc["exposure:post", "p_value_wild"] == null.loc["exposure:post", "p_value_wild"]  # seeded
