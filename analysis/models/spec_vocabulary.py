"""The vocabulary of model specifications: estimator names, allowed values, every key's default, the inference
settings of each estimator family, the keys each estimator needs, and the error a bad spec raises.

Read by :mod:`analysis.models.spec` (loading, validation, the typed :class:`~analysis.models.spec.Spec`) and by the
estimators that import a default (``DEFAULT_ALPHA``) instead of restating it. One place for each default.
"""

from __future__ import annotations

import os
import re
from typing import Any

from analysis.io import DataError
from analysis.models.registry import ESTIMATOR_FUNCTIONS
from analysis.window import study_window

# Estimator names: the keys of the one registry (analysis.models.registry.ESTIMATOR_FUNCTIONS, name -> fit
# function); NEEDS and INFERENCE_DEFAULTS below give each name's required keys and inference settings.
ESTIMATORS: tuple[str, ...] = tuple(ESTIMATOR_FUNCTIONS)
VCOV_TYPES = ("CRV1", "hetero", "iid", "driscoll_kraay")
BOOTSTRAP_WEIGHTS = ("rademacher", "webb")
CONTROL_GROUPS = ("nevertreated", "notyettreated")
AGGREGATIONS = ("simple", "group", "calendar", "dynamic")
TRENDS = ("unit_linear",)
# Estimators whose design is built by analysis.models.regression.fit_design (the only ones that take `trends`).
TREND_ESTIMATORS = ("feols", "cont_did", "event_study")

# Default seed when a spec gives none: fixed (never from the clock) so reruns agree.
DEFAULT_SEED = 20240517
#: Default size of the tests and 1 - confidence level of the intervals (``inference.alpha``); estimators that read
#: a spec without it (hand-built specs in tests) import this constant rather than restating 0.05.
DEFAULT_ALPHA = 0.05
#: Default resampling counts where a spec names the method but not ``reps``.
DEFAULT_WILD_BOOTSTRAP_REPS = 9999
DEFAULT_RI_REPS = 999
DEFAULT_MULTIPLIER_BOOTSTRAP_REPS = 999

_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOG_COLUMN = re.compile(r"^log\(([A-Za-z_][A-Za-z0-9_]*)\)$")
_FE_TERM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\^[A-Za-z_][A-Za-z0-9_]*)*$")


class SpecError(DataError):
    """A bad spec file: names the file and the dotted key at fault."""

    def __init__(self, file: str | os.PathLike, key: str | None, message: str):
        super().__init__(file, message, key=key or None)


def _default_years() -> list[int]:
    """The study window (configs/panel.yaml ``window``, read by :func:`analysis.window.study_window`)."""
    return list(study_window())


# Every key a spec may hold, with its default in the resolved spec (None = absent / not used).
DEFAULTS: dict[str, Any] = {
    "description": "",
    "data": None,                 # path of a tidy panel (CSV or Parquet); None = data/processed/analysis_panel.parquet
    "estimator": None,            # required; one of ESTIMATORS
    "outcome": None,              # required
    "treatment": None,            # 0/1 (or continuous) regressor of interest; the post indicator for cont_did
    "exposure": None,             # cont_did: continuous exposure interacted with `treatment` (post)
    "heterogeneity": None,        # categorical column: effect estimated separately for each level (interaction)
    "unit": "province_code",
    "time": "year",
    "cohort": None,               # first-treatment period; 0 or missing = never treated
    "controls": [],               # column names or log(column)
    "fixed_effects": None,        # list of columns or a^b interactions; None = [unit, time]
    "cluster": None,              # None = unit
    "control_group": "nevertreated",
    "aggregate": "simple",
    "trends": None,               # None | unit_linear: unit-specific linear time trends (regression estimators)
    "sample": {"years": None, "drop_units": [], "keep_units": [], "drop_years": []},
    "inference": {},              # estimator-family keys, see INFERENCE_DEFAULTS
    "seed": DEFAULT_SEED,
    "event_window": [-3, 3],      # event times kept as separate dummies; outside are binned into the end points
    "reference_period": -1,       # omitted event time
    "anticipation": 0,            # staggered DiD: periods of anticipation before the cohort year
    "base_period": "varying",     # staggered DiD (att_gt): varying | universal pre-period base
    "allow_unbalanced_panel": False,  # att_gt: False = drop units not observed in every period (R did), with a warning
    "synth": {},                  # synth options (SynthOptions below)
    "sdid": {},                   # sdid options (SdidOptions below)
    "extends": None,
}
REQUIRED = ("estimator", "outcome")

# Inference keys allowed for each estimator family, with defaults. A key outside the estimator's family is an
# error (e.g. ``vcov`` for synth), so a spec never carries a setting that silently does nothing.
_REGRESSION_INFERENCE = {
    "vcov": "CRV1",
    "bandwidth": None,        # Driscoll–Kraay Bartlett bandwidth; None = floor(4 (T/100)^(2/9))
    "wild_bootstrap": None,   # {reps: int, weights: rademacher|webb}
    "ri": None,               # {reps: int}
}
_HONEST = {
    "honest": None,           # Rambachan–Roth sensitivity {M: [...], Mbar: [...], target: 0 | average}
}
_STAGGERED_INFERENCE = {
    "alpha": DEFAULT_ALPHA,   # 1 - confidence level
    "bootstrap": None,        # None = analytical; {reps: int} = multiplier bootstrap (att_gt)
}
INFERENCE_DEFAULTS: dict[str, dict[str, Any]] = {
    **{name: _REGRESSION_INFERENCE for name in ("feols", "panel_fe")},
    # event-study forms also take Honest DiD sensitivity (cont_did only with aggregate: dynamic, checked below)
    **{name: {**_REGRESSION_INFERENCE, **_HONEST} for name in ("cont_did", "event_study")},
    **{name: {} for name in ("panel_re", "first_diff", "hausman")},
    **{name: {**_STAGGERED_INFERENCE, **_HONEST} for name in ("att_gt", "sunab")},
    **{name: _STAGGERED_INFERENCE for name in ("did_imputation", "bacon")},
    "synth": {"placebo": True, "method": "placebo"},
    "sdid": {"method": "placebo", "reps": 200},
}
# Estimators that need these keys set (checked at load, so a student learns before the data are read).
NEEDS: dict[str, tuple[str, ...]] = {
    "feols": ("treatment",),
    "panel_fe": ("treatment",),
    "panel_re": ("treatment",),
    "first_diff": ("treatment",),
    "hausman": ("treatment",),
    "event_study": ("cohort",),
    "cont_did": ("treatment", "exposure"),
    "att_gt": ("cohort",),
    "sunab": ("cohort",),
    "did_imputation": ("cohort",),
    "bacon": ("cohort",),
    "synth": ("treatment",),
    "sdid": ("treatment",),
}
