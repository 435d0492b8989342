"""Honest DiD against R HonestDiD's own published example: Medicaid expansion and insurance coverage.

Provenance of the frozen numbers
--------------------------------
* ``BETAHAT``, ``SIGMA``: the event-study coefficients (years 2008-2015 less 2013) and their CRV1 covariance of
  the README's TWFE regression ``feols(dins ~ i(year, D, ref = 2013) | stfips + year, cluster = "stfips")`` on
  ``ehec_data`` (years < 2016, the 2015 cohort dropped, D = expansion in 2014). Computed with pyfixest 0.60.0 on the
  copy of ehec_data in tests/data/ehec.csv, exported unchanged from the moderndid 0.2.0 wheel
  (:func:`test_medicaid_inputs_recomputed` redoes it); they agree with R to 1e-14: HonestDiD's cached
  ``constructOriginalCS`` for l = (0.5, 0.5) gives centre 0.057826514819483726 and half-length
  0.017456562308707630, i.e. sd 0.008906573001546342 (ours 0.05782651481948341, 0.008906573001546217).
* ``R_SD``, ``R_RM``, ``R_RM_AVERAGE``: the full-precision results behind the README's tables, read from the
  knitr cache in github.com/asheshrambachan/HonestDiD (commit 6813f02, ``README_cache/gfm/``):
  ``unnamed-chunk-6_6a1a19c1...rdb`` (``createSensitivityResults``, Mvec 0..0.05, FLCI; printed as
  0.0259/0.0607 ... 0.0132/0.0787 ...), ``unnamed-chunk-4_d08e3937...rdb``
  (``createSensitivityResults_relativeMagnitudes``, Mbarvec 0.5..2, C-LF, e = 0; printed as 0.0241/0.0673 ...
  -0.00107/0.0883) and ``unnamed-chunk-7_40d31aed...rdb`` (the same for l_vec = c(0.5, 0.5), Mbar 0..2). The
  R objects are XDR-serialised doubles: each lazy-load entry is a 4-byte length followed by a zlib stream; the
  ``lb``/``ub`` columns are REALSXP vectors of length 6, 4 and 5.

How R computed them, and so how close we can be
-----------------------------------------------
* FLCI: R takes cv_alpha from 10^6 simulated folded normals (seed 0) and solves the inner problem with ECOS, so
  its bounds are off the exact optimum by ~2e-5 here (ours agree with diff-diff's FLCI to 1e-7).
* C-LF: R evaluates the hybrid test on ``seq(id.lb - 20 sd, id.ub + 20 sd, length.out = 1000)`` (id = the
  identified set at betahat) and reports the outermost accepted grid points; its least-favourable critical value
  is the 0.995 quantile of 1,000 draws (``set.seed(0)``, ``mvtnorm::rmvnorm``). With exactly those draws
  (R's Mersenne-Twister and inversion, replicated below) and that grid our test accepts exactly R's points
  (:func:`test_rm_reproduces_honestdid_grid_exactly`); with our own 100,000 draws and refined ends the bounds move
  by at most ~1.3 grid steps (:func:`test_rm_bounds_match_honestdid`).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

import reference_data
from analysis.models import honest_did as H
from test_models_staggered_honest import _event_study

BETAHAT = [-0.0052853545327209645, -0.011297324648151382, -0.00267599181179385, -0.001419312252110969,
           0.0003396635189714475, 0.04644685415994524, 0.06920617547902158]
SIGMA = [
    [7.488483635897525e-05, 6.039874095644233e-05, 4.444619818461027e-05, 3.385764706089074e-05,
     4.328011254743432e-05, 4.765880478777798e-05, 2.4251286997539807e-05],
    [6.03987409564423e-05, 7.266500616996829e-05, 3.7893302212879834e-05, 2.866578025148357e-05,
     4.543320628403625e-05, 4.428850119317917e-05, 2.8246550429844624e-05],
    [4.444619818461028e-05, 3.789330221287988e-05, 5.0520519401628096e-05, 2.6736794324838065e-05,
     2.7781935676739458e-05, 3.060644108905403e-05, 9.637533882667626e-06],
    [3.385764706089075e-05, 2.866578025148359e-05, 2.6736794324838045e-05, 4.003222026337694e-05,
     2.4128599757162957e-05, 2.3808682090734737e-05, 2.9238781433625785e-06],
    [4.3280112547434363e-05, 4.5433206284036304e-05, 2.7781935676739485e-05, 2.4128599757162994e-05,
     5.462662207054174e-05, 3.6825310517430244e-05, 9.722947502416898e-06],
    [4.765880478777798e-05, 4.428850119317918e-05, 3.060644108905402e-05, 2.3808682090734744e-05,
     3.682531051743021e-05, 8.375668824677342e-05, 6.321397962533598e-05],
    [2.4251286997539848e-05, 2.824655042984467e-05, 9.637533882667617e-06, 2.9238781433626153e-06,
     9.7229475024169e-06, 6.321397962533602e-05, 0.0001071235230300425],
]
EVENT_TIMES = [-6, -5, -4, -3, -2, 0, 1]  # 2008..2012, (2013 = reference), 2014, 2015

R_SD = {0.00: (0.02594147902742559, 0.06072578637633297), 0.01: (0.013197025151447349, 0.0786707425358153),
        0.02: (0.002856995951433544, 0.09071603940652409), 0.03: (-0.007142576403053387, 0.10071561176101101),
        0.04: (-0.017142576402225745, 0.11071561176018338), 0.05: (-0.027142576401398125, 0.12071561175935576)}
R_RM = {0.5: (0.024130122237794344, 0.06726330158312863), 1.0: (0.017093720963044234, 0.07196297648143499),
        1.5: (0.008586907802101723, 0.0795988279137052), 2.0: (-0.0010670258970860713, 0.08834728003302408)}
R_RM_AVERAGE = {0.0: (0.04053046714881314, 0.07512256249015431), 0.5: (0.03214178319537053, 0.07981560160559506),
                1.0: (0.01938431730559176, 0.09014856148539291), 1.5: (0.005824264875491425, 0.1035014948083135),
                2.0: (-0.008538374094930495, 0.11724861535515924)}


def _medicaid():
    return _event_study(dict(zip(EVENT_TIMES, BETAHAT))), np.array(SIGMA)


def _r_rnorm(n: int, seed: int = 0) -> np.ndarray:
    """R's ``set.seed(seed); rnorm(n)`` (Mersenne-Twister, Inversion): R's seed scrambling (50 LCG steps
    69069 s + 1, then 625 more filling the state, mti = 624), MT19937 outputs times 2^-32, and
    qnorm((floor(2^27 u1) + u2) / 2^27) (R's src/main/RNG.c and snorm.c)."""
    state = np.uint32(seed)
    key = np.empty(625, dtype=np.uint32)
    with np.errstate(over="ignore"):
        for _ in range(50):
            state = np.uint32(69069) * state + np.uint32(1)
        for j in range(625):
            state = np.uint32(69069) * state + np.uint32(1)
            key[j] = state
    bits = np.random.MT19937(0)
    bits.state = {"bit_generator": "MT19937", "state": {"key": key[1:], "pos": 624}}
    u = bits.random_raw(2 * n).astype(np.float64) * 2.3283064365386963e-10
    big = 134217728.0
    return special.ndtri((np.floor(big * u[0::2]) + u[1::2]) / big)


def test_r_rnorm_replica_matches_r():
    # R> set.seed(0); rnorm(5)
    # [1]  1.2629543 -0.3262334  1.3297993  1.2724293  0.4146414
    # (R prints 7 significant digits; the exact agreement on HonestDiD's grid below checks all of them.)
    assert _r_rnorm(5) == pytest.approx([1.2629543, -0.3262334, 1.3297993, 1.2724293, 0.4146414], abs=5e-8)


@pytest.mark.parametrize("m", sorted(R_SD))
def test_sd_flci_matches_honestdid(m):
    es, sigma = _medicaid()
    row = H.honest_did(es, sigma, "SD", [m], target=0).iloc[0]
    lb, ub = R_SD[m]
    # 5e-5: R's simulated cv_alpha (10^6 draws) and ECOS tolerance; the old one-start Nelder-Mead was 3e-3 off
    # at M = 0.01 ([0.0103, 0.0832]).
    assert row.ci_low == pytest.approx(lb, abs=5e-5)
    assert row.ci_high == pytest.approx(ub, abs=5e-5)


def test_sd_flci_agrees_with_diff_diff_and_is_optimal():
    from diff_diff.honest_did import _compute_optimal_flci  # diff-diff 3.13's R-validated FLCI solver

    es, sigma = _medicaid()
    beta = np.array(BETAHAT)
    for m in (0.01,):
        ours = H.honest_did(es, sigma, "SD", [m], target=0).iloc[0]
        lb, ub = _compute_optimal_flci(beta[:5], beta[5:], sigma, np.array([1.0, 0.0]), 5, 2, m)
        # diff-diff zooms a grid over sd with an SLSQP inner problem: its half-length can only be longer.
        assert ours.ci_high - ours.ci_low <= ub - lb + 1e-12
        assert ours.ci_low == pytest.approx(lb, abs=1e-7) and ours.ci_high == pytest.approx(ub, abs=1e-7)


def _r_grid_accepts(beta, sigma, l_post, mbar, draws):
    """HonestDiD's accepted grid points: its grid, its least-favourable critical values (same draws for every
    piece: ``.compute_least_favorable_cv`` calls ``set.seed(0)`` each time), the union over pieces."""
    n_pre = 5
    estimate, sd = l_post @ beta[n_pre:], np.sqrt(l_post @ sigma[n_pre:, n_pre:] @ l_post)
    largest_pre_step = np.max(np.abs(np.diff(np.concatenate([beta[:n_pre], [0.0]]))))
    half_id = mbar * largest_pre_step * np.abs(np.cumsum(l_post[::-1])).sum()
    grid = np.linspace(estimate - half_id - 20 * sd, estimate + half_id + 20 * sd, 1000)
    accepted = np.zeros(len(grid), dtype=bool)
    for piece in H._rm_pieces(beta, sigma, n_pre, l_post, mbar):
        cv = piece.least_favorable_cv(np.ascontiguousarray(draws.T), 0.005)
        accepted |= piece.accepts(grid, 0.05, 0.005, cv)
    return grid[accepted]


@pytest.mark.parametrize("target,table", [((1.0, 0.0), R_RM), ((0.5, 0.5), R_RM_AVERAGE)], ids=["e0", "average"])
def test_rm_reproduces_honestdid_grid_exactly(target, table):
    beta, sigma = np.array(BETAHAT), np.array(SIGMA)
    draws = _r_rnorm(1000 * 4).reshape(1000, 4)  # rmvnorm: rnorm(n * 4) filled by row, times the sym. root
    for mbar, (lb, ub) in table.items():
        accepted = _r_grid_accepts(beta, sigma, np.array(target), mbar, draws)
        assert accepted.min() == pytest.approx(lb, abs=1e-12)
        assert accepted.max() == pytest.approx(ub, abs=1e-12)


@pytest.mark.parametrize("target,table", [(0, R_RM), ("average", R_RM_AVERAGE)], ids=["e0", "average"])
def test_rm_bounds_match_honestdid(target, table):
    es, sigma = _medicaid()
    rm = H.honest_did(es, sigma, "RM", list(table), target=target)
    for row in rm.itertuples():
        lb, ub = table[row.value]
        # 5e-4 ~ 1.3 of R's grid steps (3.6e-4 to 3.9e-4 here) plus its 1,000-draw least-favourable c.v.; the old
        # plug-in set was off by 1.4e-3 (Mbar = 0.5, e = 0) to 1.2e-2 (Mbar = 2: [0.011, 0.082] excluded zero).
        assert row.ci_low == pytest.approx(lb, abs=5e-4)
        assert row.ci_high == pytest.approx(ub, abs=5e-4)
    assert rm.loc[rm["value"] == 2.0, "ci_low"].iloc[0] < 0  # the README's breakdown value: zero is in at Mbar = 2


def test_medicaid_inputs_recomputed():
    """BETAHAT and SIGMA are the README's TWFE event study (pyfixest CRV1 = fixest's default small-sample
    correction) on the ehec data (tests/data/ehec.csv, exported from the moderndid 0.2.0 wheel)."""
    import pyfixest as pf

    df = reference_data.load_ehec()
    df = df[(df["year"] < 2016) & (df["yexp2"].isna() | (df["yexp2"] != 2015))].copy()
    treated = df["yexp2"] == 2014
    years = [y for y in range(2008, 2016) if y != 2013]
    for y in years:
        df[f"y{y}"] = ((df["year"] == y) & treated).astype(float)
    fit = pf.feols("dins ~ " + " + ".join(f"y{y}" for y in years) + " | stfips + year", data=df,
                   vcov={"CRV1": "stfips"})
    assert fit.coef().to_numpy() == pytest.approx(BETAHAT, rel=1e-9, abs=1e-12)
    assert np.asarray(fit._vcov) == pytest.approx(np.array(SIGMA), rel=1e-8, abs=1e-14)
