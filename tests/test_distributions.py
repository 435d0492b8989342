"""analysis.models.distributions agrees with scipy.stats (two implementations of the same functions)."""

import numpy as np
import pytest
from scipy import stats

from analysis.models import distributions as d

X = np.array([-np.inf, np.nan, np.inf, -40.0, -8.5, -3.0, -1.96, -0.3, 0.0, 0.3, 1.0, 1.96, 2.5758, 6.0, 40.0])
Q = np.array([-0.1, 0.0, 1.0, 1.1, np.nan, 1e-12, 0.001, 0.025, 0.05, 0.25, 0.5, 0.75, 0.95, 0.975, 0.999, 1 - 1e-12])
DF = [1, 2, 4.5, 29, 30, 214, 1e6]


def test_normal_functions_match_scipy_stats():
    np.testing.assert_allclose(d.norm_cdf(X), stats.norm.cdf(X), rtol=1e-14, atol=0, equal_nan=True)
    np.testing.assert_allclose(d.norm_sf(X), stats.norm.sf(X), rtol=1e-14, atol=0, equal_nan=True)
    np.testing.assert_allclose(d.norm_ppf(Q), stats.norm.ppf(Q), rtol=1e-14, atol=0, equal_nan=True)


@pytest.mark.parametrize("df", DF)
def test_student_t_functions_match_scipy_stats(df):
    np.testing.assert_allclose(d.t_sf(X, df), stats.t.sf(X, df), rtol=1e-12, atol=0, equal_nan=True)
    np.testing.assert_allclose(d.t_ppf(Q, df), stats.t.ppf(Q, df), rtol=1e-10, atol=0, equal_nan=True)


@pytest.mark.parametrize("k", [1, 2, 5, 30])
def test_chi2_sf_matches_scipy_stats(k):
    x = np.array([-np.inf, -2.5, -1e-9, 0.0, 0.01, 1.0, 3.84, 10.2, 35.9, 200.0, np.inf, np.nan])
    np.testing.assert_allclose(d.chi2_sf(x, k), stats.chi2.sf(x, k), rtol=1e-12, atol=0, equal_nan=True)


def test_textbook_values():
    # 97.5% quantiles: z = 1.959964, t_30 = 2.042272; chi2_1 tail at 3.841459 is 0.05
    assert d.norm_ppf(0.975) == pytest.approx(1.959963985, abs=1e-9)
    assert d.t_ppf(0.975, 30) == pytest.approx(2.042272456, abs=1e-9)
    assert d.chi2_sf(3.841458821, 1) == pytest.approx(0.05, abs=1e-9)


def test_estimation_modules_do_not_import_scipy_stats():
    """The reason this module exists: a fresh process estimating a spec stays clear of the slow scipy.stats import."""
    import subprocess
    import sys

    code = ("import sys, analysis.models.regression, analysis.models.panel, analysis.models.att_gt, "
            "analysis.models.sunab, analysis.models.did_imputation, analysis.models.bacon, analysis.models.synth, "
            "analysis.models.sdid, analysis.index.methods; print('scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
