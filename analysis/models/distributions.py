"""Tail and quantile functions of the normal, Student-t, chi-squared and F distributions.

They call the same Cephes routines in :mod:`scipy.special` that :mod:`scipy.stats` calls for these distributions
(``stats.t.sf(x, df)`` is ``special.stdtr(df, -x)``, ``stats.chi2.sf(x, k)`` is ``special.chdtrc(k, x)``,
``stats.f.sf(x, m, n)`` is ``special.fdtrc(m, n, x)``, ...), so
the numbers are the same (tests/test_distributions.py checks them against scipy.stats). Why not scipy.stats itself:
importing it costs about half a second, and the pipeline starts one Python process per specification and exhibit,
so the import alone was a sixth of a cold ``make all``.
"""

from __future__ import annotations

import numpy as np
from scipy import special


def norm_cdf(x):
    """Standard normal CDF Φ(x)."""
    return special.ndtr(np.asarray(x, dtype=float))


def norm_sf(x):
    """Standard normal upper tail 1 − Φ(x), accurate in the far tail."""
    return special.ndtr(-np.asarray(x, dtype=float))


def norm_ppf(q):
    """Standard normal quantile Φ⁻¹(q)."""
    return special.ndtri(np.asarray(q, dtype=float))


def t_sf(x, df):
    """Student-t upper tail P(T_df > x)."""
    return special.stdtr(np.asarray(df, dtype=float), -np.asarray(x, dtype=float))


def t_ppf(q, df):
    """Student-t quantile: the x with P(T_df ≤ x) = q (−inf at q = 0, which ``stdtrit`` gets wrong)."""
    q = np.asarray(q, dtype=float)
    return np.where(q == 0, -np.inf, special.stdtrit(np.asarray(df, dtype=float), q))


def chi2_sf(x, k):
    """Chi-squared upper tail P(χ²_k > x); 1 for x < 0 (as scipy.stats: a Hausman statistic can be negative)."""
    x = np.asarray(x, dtype=float)
    return np.where(x < 0, 1.0, special.chdtrc(np.asarray(k, dtype=float), np.maximum(x, 0.0)))


def f_sf(x, dfn, dfd):
    """F upper tail P(F_{dfn,dfd} > x); 1 for x < 0."""
    x = np.asarray(x, dtype=float)
    return np.where(x < 0, 1.0, special.fdtrc(np.asarray(dfn, dtype=float), np.asarray(dfd, dtype=float),
                                              np.maximum(x, 0.0)))
