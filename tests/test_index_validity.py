"""Construct-validity measures (analysis/index/validity.py): known answers and a second implementation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from analysis.index.build import build_indices
from analysis.index.config import load_config
from analysis.index.synthetic import synthetic_panel
from analysis.index.validity import (VALIDITY_COLUMNS, VALIDITY_METRICS, scale_dependence, twoway_residuals,
                                     validity_table)


def _panel(n_prov=8, n_year=6, seed=0, drop=3):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame([(p, 2015 + t) for p in range(n_prov) for t in range(n_year)], columns=["province_code", "year"])
    df = df.drop(index=rng.choice(len(df), drop, replace=False)).reset_index(drop=True)   # unbalanced
    return df, rng


def test_twoway_residuals_equal_dummy_ols_on_an_unbalanced_panel():
    df, rng = _panel()
    df["y"] = rng.normal(size=len(df)) + df["province_code"] * 0.3 + (df["year"] - 2015) * 0.1
    expected = smf.ols("y ~ C(province_code) + C(year)", data=df).fit().resid.to_numpy()
    got = twoway_residuals(df[["y"]].to_numpy(), df["province_code"].to_numpy(), df["year"].to_numpy())[:, 0]
    np.testing.assert_allclose(got, expected, atol=1e-10)


def _indices_from(df, **metrics):
    out = df.assign(method="m", **metrics)
    for col in ("u_military", "u_civil", *VALIDITY_METRICS):
        if col not in out:
            out[col] = out[next(iter(metrics))]
    return out


def test_shares_on_known_decompositions():
    df, rng = _panel(n_prov=10, n_year=7, drop=0)
    prov = df["province_code"].to_numpy(float)
    year = (df["year"] - 2015).to_numpy(float)
    size = pd.DataFrame({"province_code": df["province_code"], "year": df["year"], "rd_exp_total": np.exp(prov + 1)})
    # pure province effect: nothing within provinces, nothing after two-way effects
    t = validity_table(_indices_from(df, capability_index=prov), size).set_index("metric")
    assert t.loc["capability_index", "within_province_share"] == pytest.approx(0, abs=1e-12)
    assert t.loc["capability_index", "twfe_residual_share"] == pytest.approx(0, abs=1e-12)
    assert t.loc["capability_index", "corr_log_rd_total"] == pytest.approx(1.0)      # log size = prov + 1
    # province effect + common year trend on a balanced panel: within share = Var(year) / (Var(prov) + Var(year))
    x = prov + year
    t = validity_table(_indices_from(df, capability_index=x), size).set_index("metric")
    assert t.loc["capability_index", "within_province_share"] == pytest.approx(np.var(year) / np.var(x))
    assert t.loc["capability_index", "twfe_residual_share"] == pytest.approx(0, abs=1e-12)
    # independent noise: the two-way residual share is (N−P−T+1)/N of the noise variance in expectation; check exactly
    e = rng.normal(size=len(df))
    t = validity_table(_indices_from(df, capability_index=e), size).set_index("metric")
    resid = smf.ols("e ~ C(province_code) + C(year)", data=df.assign(e=e)).fit().resid
    assert t.loc["capability_index", "twfe_residual_share"] == pytest.approx(np.var(resid) / np.var(e))


def test_military_civil_correlation_is_method_level():
    df, rng = _panel(drop=0)
    um, uc = rng.uniform(size=len(df)), rng.uniform(size=len(df))
    size = df.assign(rd_exp_total=np.exp(rng.normal(size=len(df))))
    t = validity_table(_indices_from(df, u_military=um, u_civil=uc, capability_index=um * uc), size)
    assert t["corr_military_civil"].nunique() == 1
    assert t["corr_military_civil"].iloc[0] == pytest.approx(np.corrcoef(um, uc)[0, 1])


def test_table_on_the_synthetic_panel_has_every_method_and_metric():
    config = load_config()
    panel = synthetic_panel()
    indices, _ = build_indices(panel, config)
    table = validity_table(indices, panel)
    assert list(table.columns) == VALIDITY_COLUMNS
    assert len(table) == len(config.methods) * len(VALIDITY_METRICS)
    shares = table[["within_province_share", "twfe_residual_share"]].to_numpy()
    assert np.all((shares >= 0) & (shares <= 1 + 1e-12))
    assert np.all(table["twfe_residual_share"] <= table["within_province_share"] + 1e-12)
    # the synthetic indicators are size × growth, so the index tracks log R&D closely across provinces
    default = table[(table.method == config.default_method) & (table.metric == "capability_index")].iloc[0]
    assert default["corr_log_rd_total"] > 0.6   # 0.78 with this seed; province-specific tilts blur it


def test_scale_dependence_is_one_for_identical_methods():
    df, rng = _panel(drop=0)
    x = rng.uniform(size=len(df))
    ix = pd.concat([df.assign(method="a", capability_index=x), df.assign(method="b", capability_index=2 * x + 1)])
    out = scale_dependence(ix, "a", "b")
    assert out["corr_levels"] == pytest.approx(1.0)
    assert out["corr_twfe_residuals"] == pytest.approx(1.0)
    assert out["spearman_last_year"] == pytest.approx(1.0)
