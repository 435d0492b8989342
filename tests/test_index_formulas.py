"""Hand-computed answers for each index formula on tiny frames."""

import math

import numpy as np
import pandas as pd
import pytest

from analysis.index import methods as fm


def test_minmax_benefit_and_cost_by_hand():
    x = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [10.0, 20.0, 30.0]})
    out = fm.normalise_minmax(x, {"a": "benefit", "b": "cost"})
    assert out["a"].tolist() == [0.0, 0.5, 1.0]
    assert out["b"].tolist() == [1.0, 0.5, 0.0]


def test_minmax_fixed_goalposts_and_clipping():
    x = pd.DataFrame({"a": [0.0, 5.0, 20.0]})
    lo, hi = pd.Series({"a": 0.0}), pd.Series({"a": 10.0})
    assert fm.normalise_minmax(x, {}, lo, hi)["a"].tolist() == [0.0, 0.5, 2.0]
    assert fm.normalise_minmax(x, {}, lo, hi, clip=True)["a"].tolist() == [0.0, 0.5, 1.0]


def test_minmax_constant_indicator_is_an_error():
    with pytest.raises(ValueError, match="constant"):
        fm.normalise_minmax(pd.DataFrame({"a": [2.0, 2.0]}), {})


def test_zscore_probit_by_hand():
    x = pd.DataFrame({"a": [1.0, 2.0, 3.0]})  # mean 2, sd 1 → z = −1, 0, 1
    out = fm.normalise_zscore_probit(x, {"a": "benefit"})["a"].to_numpy()
    phi = [0.5 * (1 + math.erf(z / math.sqrt(2))) for z in (-1, 0, 1)]
    assert out == pytest.approx(phi, abs=1e-12)
    cost = fm.normalise_zscore_probit(x, {"a": "cost"})["a"].to_numpy()
    assert cost == pytest.approx(phi[::-1], abs=1e-12)


def test_entropy_weights_by_hand():
    # a: shares 1/6, 2/6, 3/6; b: all mass on one observation (entropy 0, full information).
    x = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 0.0, 1.0]})
    e_a = -sum(p * math.log(p) for p in (1 / 6, 2 / 6, 3 / 6)) / math.log(3)
    d_a, d_b = 1 - e_a, 1.0
    w = fm.entropy_weights(x)
    assert w["a"] == pytest.approx(d_a / (d_a + d_b), rel=1e-12)
    assert w["b"] == pytest.approx(d_b / (d_a + d_b), rel=1e-12)
    assert w["a"] == pytest.approx(0.073542, abs=1e-6)


def test_entropy_constant_shares_get_zero_weight():
    w = fm.entropy_weights(pd.DataFrame({"a": [1.0, 1.0, 1.0], "b": [0.0, 1.0, 3.0]}))
    assert w["a"] == pytest.approx(0.0, abs=1e-12) and w["b"] == pytest.approx(1.0)


def test_critic_weights_by_hand():
    # a and b identical (r = 1), c uncorrelated with both (r = 0); equal s.d. σ:
    # C_a = σ(0 + 0 + 1), C_b = σ, C_c = σ(1 + 1 + 0) → weights 1/4, 1/4, 1/2.
    x = pd.DataFrame({"a": [0, 1, 0, 1], "b": [0, 1, 0, 1], "c": [0, 0, 1, 1]}, dtype=float)
    assert fm.critic_weights(x).tolist() == pytest.approx([0.25, 0.25, 0.5])
    # perfectly opposed pair: each C = σ·2 → equal weights
    y = pd.DataFrame({"a": [0.0, 0.5, 1.0], "b": [1.0, 0.5, 0.0]})
    assert fm.critic_weights(y).tolist() == pytest.approx([0.5, 0.5])


def test_pca_weights_by_hand():
    # R = [[1,1,0],[1,1,0],[0,0,1]]: eigenvalues 2, 1, 0; only λ = 2 > 1 is kept, v = (1,1,0)/√2 → w = (½, ½, 0).
    x = pd.DataFrame({"a": [0, 1, 0, 1], "b": [0, 1, 0, 1], "c": [0, 0, 1, 1]}, dtype=float)
    assert fm.pca_weights(x).tolist() == pytest.approx([0.5, 0.5, 0.0], abs=1e-12)


def test_equal_weights():
    assert fm.equal_weights(["a", "b", "c", "d"]).tolist() == [0.25] * 4


def test_weighted_sum_by_hand_and_missing_stays_missing():
    x = pd.DataFrame({"a": [0.0, 1.0, 0.5, np.nan], "b": [1.0, 1.0, 0.0, 1.0]})
    u = fm.weighted_sum(x, pd.Series({"a": 0.25, "b": 0.75}))
    assert u.iloc[:3].tolist() == pytest.approx([0.75, 1.0, 0.125])
    assert np.isnan(u.iloc[3])


def test_topsis_by_hand():
    x = pd.DataFrame({"a": [0.0, 1.0, 1.0], "b": [0.0, 1.0, 0.0]})
    # v = w·x with w = (½, ½): ideal (½, ½), anti-ideal (0, 0); row 3: D+ = ½, D− = ½ → 0.5.
    u = fm.topsis(x, pd.Series({"a": 0.5, "b": 0.5}))
    assert u.tolist() == pytest.approx([0.0, 1.0, 0.5])
    # unequal weights: w = (0.8, 0.2); row 3: v = (0.8, 0), D+ = 0.2, D− = 0.8 → 0.8
    u2 = fm.topsis(x, pd.Series({"a": 0.8, "b": 0.2}))
    assert u2.iloc[2] == pytest.approx(0.8)


def test_coupling_traditional_by_hand_catches_missing_factor_two():
    # With the factor 2: C(½, ½) = 1 and C(0.2, 0.8) = 2·0.4/1 = 0.8. Without it these would be 0.5 and 0.4.
    assert fm.coupling_traditional(0.5, 0.5) == pytest.approx(1.0)
    assert fm.coupling_traditional(0.2, 0.8) == pytest.approx(0.8)
    assert fm.coupling_traditional(0.1, 0.1) == pytest.approx(1.0)
    assert fm.coupling_traditional(0.0, 0.0) == 0.0


def test_coupling_corrected_by_hand():
    # C = √{(1 − |0.2 − 0.8|)·0.2/0.8} = √(0.4·0.25) = √0.1
    assert fm.coupling_corrected(0.2, 0.8) == pytest.approx(math.sqrt(0.1))
    assert fm.coupling_corrected(0.8, 0.2) == pytest.approx(math.sqrt(0.1))
    assert fm.coupling_corrected(0.3, 0.3) == pytest.approx(1.0)
    # (0.5, 0.4): √{0.9·0.8} = √0.72
    assert fm.coupling_corrected(0.5, 0.4) == pytest.approx(math.sqrt(0.72))
    assert fm.coupling_corrected(0.0, 0.0) == 0.0
    assert fm.coupling_corrected(0.0, 0.7) == 0.0


def test_development_and_coordination_by_hand():
    t = fm.comprehensive_development(0.2, 0.8, 0.5, 0.5)
    assert t == pytest.approx(0.5)
    assert fm.comprehensive_development(0.2, 0.8, 0.25, 0.75) == pytest.approx(0.65)
    assert fm.coordination(0.8, t) == pytest.approx(math.sqrt(0.4))
    assert fm.coordination(fm.coupling_corrected(0.2, 0.8), t) == pytest.approx(math.sqrt(math.sqrt(0.1) * 0.5))


def test_directional_transfer_by_hand():
    # U_S^(2/3)·U_R^(1/3): (0.125, 1) → 0.25; (1, 0.125) → 0.5 — the source is the binding input.
    assert fm.directional_transfer(0.125, 1.0, 2 / 3) == pytest.approx(0.25)
    assert fm.directional_transfer(1.0, 0.125, 2 / 3) == pytest.approx(0.5)
    assert fm.directional_transfer(0.4, 0.4, 2 / 3) == pytest.approx(0.4)


def test_relative_development_and_share_by_hand():
    assert fm.relative_development(0.6, 0.3) == pytest.approx(2.0)
    assert np.isnan(fm.relative_development(0.6, 0.0))
    assert fm.share(3.0, 1.0) == pytest.approx(0.75)
    assert np.isnan(fm.share(0.0, 0.0))
