"""Treated-cluster counts on every estimate row, and the few-treated-clusters rule.

Cluster-robust inference is driven by the clusters that carry the treatment, not by all clusters: with one treated
province CRV1 t-tests, the analytic Callaway–Sant'Anna and Sun–Abraham standard errors reject a true null about
70% of the time at the 5% level (MacKinnon and Webb 2017, J. Applied Econometrics 32(2); Conley and Taber 2011,
REStat 93(1); our own simulation in issue 13). So every estimate row records

* ``n_treated_clusters``: the clusters containing a treated unit that enters that row's estimate — for
  cohort designs the cohorts observed at the row's event time (``e=k``, ``ATT e=k``), its cohort (``ATT g=G``),
  its calendar year's treated cohorts (``ATT t=T``), else every treated cohort; for treatment-variable designs
  the clusters with a non-zero treatment (× exposure) on a row with an observed outcome;
* ``n_treated_clusters_by_cohort``: ``"g:count;…"`` for cohort designs (empty otherwise);
* ``few_treated_clusters``: ``n_treated_clusters < FEW_TREATED_CLUSTERS`` — then the row's ``method`` says the
  analytic p-value is unreliable and the tables show the wild cluster bootstrap / randomization / placebo p-value
  instead (:mod:`analysis.models.table_cells`);
* ``p_value_floor``: for placebo (permutation-in-space) p-values, the smallest attainable value 1/(J+1) with J
  placebo units (``n_units_ranked`` = J + 1).

Always-treated cohorts (treated in or before the first period, net of anticipation) count as treated only for the
TWFE regressions; the staggered estimators (att_gt, sunab, did_imputation) drop them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import re

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # annotations only: the spec module imports the registry
    from analysis.models.spec import Spec

#: Below this many treated clusters the analytic (CRV1 / influence-function) p-value is flagged as unreliable.
FEW_TREATED_CLUSTERS = 5

#: Estimators whose ``p_value`` is not an analytic cluster-robust one (placebo-in-space for synth, placebo
#: variance for sdid) or that report none (bacon): counted, never flagged.
NOT_ANALYTIC = ("synth", "sdid", "bacon")

#: Estimators that drop always-treated cohorts (no untreated period to identify them).
DROP_ALWAYS_TREATED = ("att_gt", "sunab", "did_imputation")

_EVENT = re.compile(r"^(?:ATT )?e=(-?\d+)$")
_COHORT = re.compile(r"^ATT g=(\d+)$")
_CALENDAR = re.compile(r"^ATT t=(\d+)$")

FEW_NOTE = ("; FEW TREATED CLUSTERS ({n} < {cut}): the analytic p-value is unreliable (over-rejects with few treated "
            "clusters); read the wild-bootstrap / randomization / placebo p-value")


def _observed(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    return df.loc[pd.to_numeric(df[spec.outcome], errors="coerce").notna()]


def cohort_clusters(df: pd.DataFrame, spec: Spec) -> dict[int, set]:
    """{cohort: set of clusters of its units} over the units with an observed outcome (cohorts after the last
    period are never treated in the sample; always-treated cohorts left out for :data:`DROP_ALWAYS_TREATED`)."""
    data = _observed(df, spec)
    periods = np.sort(pd.to_numeric(data[spec.time]).unique())
    cohort = pd.to_numeric(data[spec.cohort], errors="coerce").fillna(0)
    treated = (cohort > 0) & (cohort <= periods[-1])
    if spec.estimator in DROP_ALWAYS_TREATED:
        treated &= cohort > periods[0] + int(spec.anticipation)
    cluster = spec.cluster
    out: dict[int, set] = {}
    for g, part in data.loc[treated].groupby(cohort[treated].astype(int)):
        out[int(g)] = set(part[cluster])
    return out


def _cohorts_for(term: str, cohorts: dict[int, set], periods: np.ndarray) -> list[int]:
    """The cohorts whose units enter the estimate named ``term``."""
    if match := _EVENT.match(term):
        k = int(match.group(1))
        return [g for g in cohorts if periods[0] <= g + k <= periods[-1]]
    if match := _COHORT.match(term):
        return [g for g in cohorts if g == int(match.group(1))]
    if match := _CALENDAR.match(term):
        return [g for g in cohorts if g <= int(match.group(1))]
    return list(cohorts)


def annotate(table: pd.DataFrame, df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """``table`` with the columns described in the module docstring (``method`` extended on flagged rows)."""
    table = table.copy()
    cluster = spec.cluster
    by_cohort = ""
    if spec.cohort:
        cohorts = cohort_clusters(df, spec)
        periods = np.sort(pd.to_numeric(_observed(df, spec)[spec.time]).unique())
        counts = []
        for term in table["term"]:
            members = _cohorts_for(str(term), cohorts, periods)
            counts.append(len(set().union(*(cohorts[g] for g in members))) if members else 0)
        by_cohort = ";".join(f"{g}:{len(c)}" for g, c in sorted(cohorts.items()))
    elif spec.treatment:
        data = _observed(df, spec)
        dose = pd.to_numeric(data[spec.treatment], errors="coerce")
        if spec.exposure:
            dose = dose * pd.to_numeric(data[spec.exposure], errors="coerce")
        counts = [int(data.loc[dose.fillna(0) != 0, cluster].nunique())] * len(table)
    else:
        return table
    table["n_treated_clusters"] = np.asarray(counts, dtype="int64")
    table["n_treated_clusters_by_cohort"] = by_cohort
    few = (table["n_treated_clusters"] < FEW_TREATED_CLUSTERS) & (spec.estimator not in NOT_ANALYTIC)
    table["few_treated_clusters"] = few
    table.loc[few, "method"] = [m + FEW_NOTE.format(n=n, cut=FEW_TREATED_CLUSTERS)
                                for m, n in zip(table.loc[few, "method"], table.loc[few, "n_treated_clusters"])]
    if "n_units_ranked" in table.columns and "p_value_placebo" in table.columns:
        table["p_value_floor"] = 1.0 / table["n_units_ranked"].astype(float)
    return table
