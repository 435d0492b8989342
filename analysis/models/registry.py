"""Estimator registry: from an estimator name in a resolved spec to its fit function, and the estimator contract.

Every estimator follows one contract: ``fit(df, spec) -> DataFrame`` with at least the columns
:data:`REQUIRED_COLUMNS`; :func:`estimate` runs it on a panel already read and sample-filtered by
:mod:`analysis.models.sample`. Each estimator's module is imported only when it is dispatched, so a process imports
only what it runs (pyfixest and scipy.special load slowly).
"""

from __future__ import annotations

import importlib
from typing import Callable, TYPE_CHECKING

import pandas as pd

from analysis.models.treated import annotate

if TYPE_CHECKING:  # annotations only: the spec module imports the registry
    from analysis.models.spec import Spec

REQUIRED_COLUMNS = ("term", "estimate", "std_error", "p_value", "ci_low", "ci_high", "n_obs", "method")

# estimator name -> (module, function); modules imported lazily
ESTIMATOR_FUNCTIONS: dict[str, tuple[str, str]] = {
    "feols": ("analysis.models.regression", "feols"),
    "cont_did": ("analysis.models.regression", "cont_did"),
    "event_study": ("analysis.models.regression", "event_study"),
    "panel_fe": ("analysis.models.panel", "panel_fe"),
    "panel_re": ("analysis.models.panel", "panel_re"),
    "first_diff": ("analysis.models.panel", "first_diff"),
    "hausman": ("analysis.models.panel", "hausman"),
    "att_gt": ("analysis.models.att_gt", "att_gt"),
    "sunab": ("analysis.models.sunab", "sunab"),
    "did_imputation": ("analysis.models.did_imputation", "did_imputation"),
    "bacon": ("analysis.models.bacon", "bacon"),
    "synth": ("analysis.models.synth", "synth"),
    "sdid": ("analysis.models.sdid", "sdid"),
}


#: Estimators that also return companion tables, written beside the estimates as ``<spec>.<name>.parquet``
#: (:func:`analysis.paths.companion`): estimator name -> (module, function returning (estimates, {name: table})).
COMPANION_FUNCTIONS: dict[str, tuple[str, str]] = {
    "synth": ("analysis.models.synth", "synth_outputs"),
    "sdid": ("analysis.models.sdid", "sdid_outputs"),
}


def estimator_function(name: str) -> Callable[[pd.DataFrame, Spec], pd.DataFrame]:
    """The fit function for an estimator name (imports its module now)."""
    module_name, function_name = ESTIMATOR_FUNCTIONS[name]
    return getattr(importlib.import_module(module_name), function_name)


def estimate(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Run the spec's estimator on an already-loaded, sample-filtered panel; check the contract's columns.

    Adds ``spec_id`` and ``estimator`` columns and the treated-cluster counts (:func:`analysis.models.treated.annotate`),
    and returns columns in a fixed order (required first).
    """
    return _contract(annotate(estimator_function(spec.estimator)(df, spec), df, spec), spec)


def estimate_with_companions(df: pd.DataFrame, spec: Spec) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """:func:`estimate` plus the estimator's companion tables (``{}`` for estimators without any), from one fit."""
    target = COMPANION_FUNCTIONS.get(spec.estimator)
    if target is None:
        return estimate(df, spec), {}
    table, companions = getattr(importlib.import_module(target[0]), target[1])(df, spec)
    return _contract(annotate(table, df, spec), spec), dict(companions)


def _contract(table: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Check the contract's columns, add ``spec_id`` and ``estimator``, fix the column order."""
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"estimator {spec.estimator!r} broke the contract: missing columns {missing}")
    table = table.copy()
    table["spec_id"] = spec.id
    table["estimator"] = spec.estimator
    extra = [c for c in table.columns if c not in REQUIRED_COLUMNS and c not in ("spec_id", "estimator")]
    table = table[list(REQUIRED_COLUMNS) + extra + ["spec_id", "estimator"]].reset_index(drop=True)
    if table["n_obs"].notna().all():
        table["n_obs"] = table["n_obs"].astype("int64")
    return table
