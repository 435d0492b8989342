"""Checks run on a resolved spec and its sample before an estimator is dispatched (issue 18 §3/§5).

An estimator given a design it cannot identify does not always fail: a constant outcome, or a treatment that the
fixed effects absorb (a province-level regressor with province effects), gives a coefficient of ~1e-19 with a
standard error of ~1e-17 that looks like a result. These checks turn such designs into a :class:`DataError` that
names the spec file and key (``outcome``, ``treatment``, ``exposure``, ``cohort``, ``inference.*.reps``) and says
what to change, before anything is estimated or written.

:func:`check_spec` (the spec alone) — resampling counts within ``1 ≤ reps ≤``
:data:`analysis.models.inference.MAX_REPS` (100,000; why that value is documented there).

:func:`check_identified` (the spec and its sample, after :func:`analysis.models.registry.load_data`):

* the outcome varies in the estimation sample (rows with the outcome and every regressor present);
* for the regression estimators (feols, cont_did, event_study, panel_fe, first_diff, hausman, panel_re), the
  regressor of interest — ``treatment``, or ``exposure × treatment`` for cont_did — and the outcome keep variation
  after the spec's fixed effects are absorbed: ``SS(M_D x) / SS(x - mean x) > ABSORBED_SHARE``, where ``M_D`` is
  the annihilator of the fixed-effect dummies (``first_diff``: the unit effect, removed by differencing;
  ``panel_re``: only the non-unit effects, since random effects identify unit-level regressors). Absorption uses
  :func:`pyfixest.estimation.demean` (alternating projections, the same routine pyfixest's ``feols`` uses);
* for the cohort-based estimators (event_study, att_gt, sunab, did_imputation, bacon), at least one unit in the
  sample has a cohort (first-treatment period) inside the sample's periods, and at least one unit is not treated
  in the first sample period (the comparison group).

Not checked here (the estimators report them): collinearity with controls or with ``trends: unit_linear``,
heterogeneity levels one by one, the treated unit of the synthetic-control estimators.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from analysis.io import DataError
from analysis.models.inference import MAX_REPS  # the documented limit, where the draws are allocated
from analysis.models.spec import Spec, control_column
from analysis.models.spec_vocabulary import NEEDS


#: Share of a regressor's variation (sum of squares about its mean) that must survive the fixed effects. Below
#: it the regressor is treated as collinear with them; 1e-10 is far above rounding (the demeaning converges to
#: 1e-12 of the data's scale, i.e. a share of ~1e-24) and far below any real within-variation.
ABSORBED_SHARE = 1e-10

#: The inference keys that hold a number of draws or permutations (dotted key in the resolved spec).
REPS_KEYS = ("inference.wild_bootstrap.reps", "inference.ri.reps", "inference.bootstrap.reps", "inference.reps")

_REGRESSION = ("feols", "cont_did", "event_study", "panel_fe", "first_diff", "hausman", "panel_re")
#: The estimators whose spec needs a cohort (analysis.models.spec_vocabulary.NEEDS, the one list).
_COHORT = tuple(name for name, keys in NEEDS.items() if "cohort" in keys)


def spec_file(spec: Spec) -> str | os.PathLike:
    """The file a spec error names: the spec's own file (first of its ``extends`` chain)."""
    files = spec.spec_files
    return files[0] if files else f"configs/specs/{spec.id or '<spec>'}.yaml"


def _lookup(spec, dotted: str):
    """The value at the dotted key of a :class:`analysis.models.spec.Spec` (None where a level is unset)."""
    value = spec
    for part in dotted.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def check_spec(spec: Spec) -> None:
    """Resampling counts (:data:`REPS_KEYS`) are integers in ``[1, MAX_REPS]``; else a DataError naming the key."""
    for key in REPS_KEYS:
        reps = _lookup(spec, key)
        if reps is None:
            continue
        if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or not 1 <= reps <= MAX_REPS:
            raise DataError(spec_file(spec), f"must be an integer from 1 to {MAX_REPS:,} (draws are held in memory; "
                            f"at {MAX_REPS:,} the Monte Carlo error of a p-value is below 0.001), got {reps!r}",
                            key=key)


def _codes(df: pd.DataFrame, term: str) -> np.ndarray:
    """Integer codes of a fixed effect ``a`` or an interaction ``a^b`` (one level per distinct combination)."""
    parts = term.split("^")
    if len(parts) == 1:
        return pd.factorize(df[parts[0]], sort=True)[0]
    return df.groupby(parts, sort=True, dropna=False).ngroup().to_numpy()


def residual_share(values: np.ndarray, df: pd.DataFrame, fixed_effects: list[str]) -> float:
    """``SS(M_D x) / SS(x - mean x)``: the share of the variation of ``values`` (n,) left after absorbing the fixed
    effects (``[]``: the intercept only) on the rows of ``df``; NaN when ``values`` is constant."""
    x = np.asarray(values, dtype=float)
    centred = x - x.mean()
    total = float(centred @ centred)
    if total <= 0 or total <= (np.abs(x).max() ** 2) * len(x) * 1e-28:
        return float("nan")
    if not fixed_effects:
        return 1.0
    from pyfixest.estimation import demean  # heavy import, only needed here

    flist = np.column_stack([_codes(df, term) for term in fixed_effects]).astype(np.uint64)
    resid, converged = demean(centred[:, None], flist, np.ones(len(x)), tol=1e-12, maxiter=100_000)
    if not converged:  # pragma: no cover - alternating projections on these panels converge in a few sweeps
        raise RuntimeError(f"demeaning on {fixed_effects} did not converge")
    return float((resid[:, 0] @ resid[:, 0]) / total)


def _absorbing(spec: Spec) -> list[str]:
    """The fixed effects the estimator absorbs before estimating the regressor of interest."""
    fixed_effects = list(spec.fixed_effects)
    if spec.estimator == "panel_re":
        return [fe for fe in fixed_effects if fe != spec.unit]
    if spec.estimator == "first_diff" and spec.unit not in fixed_effects:
        return [spec.unit, *fixed_effects]
    return fixed_effects


def _which_absorbs(values: np.ndarray, df: pd.DataFrame, fixed_effects: list[str]) -> str:
    """Name the fixed effect(s) that absorb ``values`` on their own, for the message."""
    alone = [fe for fe in fixed_effects if residual_share(values, df, [fe]) <= ABSORBED_SHARE]
    if alone:
        return f"it is constant within each level of {' and of '.join(repr(fe) for fe in alone)}"
    return f"it is a sum of the fixed effects {fixed_effects} (collinear with them jointly)"


def _estimation_rows(df: pd.DataFrame, spec: Spec, regressors: list[str]) -> pd.DataFrame:
    columns = [spec.outcome, *regressors, *[control_column(c)[0] for c in spec.controls]]
    columns += [part for fe in spec.fixed_effects for part in fe.split("^")]
    columns = [c for c in dict.fromkeys(columns) if c in df.columns]
    return df.dropna(subset=columns)


def check_identified(df: pd.DataFrame, spec: Spec) -> None:
    """Refuse a sample in which the spec's effect is not identified (module docstring); ``df`` is the selected
    sample. Raises :class:`DataError` naming the spec file and the key to change."""
    file = spec_file(spec)
    estimator = spec.estimator
    outcome = spec.outcome
    regressors = [c for c in (spec.treatment, spec.exposure) if c and estimator in _REGRESSION]
    rows = _estimation_rows(df, spec, regressors)
    if rows.empty:
        raise DataError(file, f"no row of the sample has {outcome!r} and the regressors all present; check "
                        "`sample` and the columns", key="outcome")
    y = rows[outcome].to_numpy(dtype=float)
    if np.nanmax(y) == np.nanmin(y):
        raise DataError(file, f"outcome {outcome!r} is constant ({y[0]:g} in all {len(y)} rows of the sample): "
                        "there is nothing to explain; choose another outcome or widen `sample`", key="outcome")
    if estimator in _REGRESSION and spec.treatment:
        fixed_effects = _absorbing(spec)
        what = spec.treatment
        key = "treatment"
        x = rows[spec.treatment].to_numpy(dtype=float)
        if estimator == "cont_did" and spec.exposure:
            exposure = rows[spec.exposure].to_numpy(dtype=float)
            if np.ptp(exposure) == 0:
                raise DataError(file, f"exposure {spec.exposure!r} is the same ({exposure[0]:g}) for every unit of "
                                "the sample: exposure × treatment is then collinear with the period effects; choose "
                                "an exposure that differs across units", key="exposure")
            x = exposure * x
            what = f"{spec.exposure} × {spec.treatment}"
        share = residual_share(x, rows, fixed_effects)
        if np.isnan(share):
            raise DataError(file, f"treatment {what!r} is constant ({x[0]:g}) in the sample: its effect is not "
                            "identified; choose a treatment that varies, or widen `sample`", key=key)
        if share <= ABSORBED_SHARE:
            fix = ("first differences remove whatever is constant within a unit; choose a treatment that changes "
                   "over time" if estimator == "first_diff" and residual_share(x, rows, [spec.unit]) <= ABSORBED_SHARE
                   else "drop that effect from `fixed_effects` or choose a treatment that varies within it")
            raise DataError(file, f"treatment {what!r} has no variation left after absorbing the fixed effects "
                            f"{fixed_effects} (residual share {share:.1e} of its variance): "
                            f"{_which_absorbs(x, rows, fixed_effects)}, so its coefficient is not identified; {fix}",
                            key=key)
        if residual_share(y, rows, fixed_effects) <= ABSORBED_SHARE:
            raise DataError(file, f"outcome {outcome!r} has no variation left after absorbing the fixed effects "
                            f"{fixed_effects}: {_which_absorbs(y, rows, fixed_effects)}; choose another outcome or "
                            "fewer fixed effects", key="outcome")
    if estimator in _COHORT and spec.cohort:
        _check_cohort(rows, spec, file)


def _check_cohort(rows: pd.DataFrame, spec: Spec, file) -> None:
    """At least one unit treated within the sample's periods and one comparison unit (untreated at the start)."""
    unit, time, cohort = spec.unit, spec.time, spec.cohort
    first = rows.groupby(unit, sort=True)[cohort].first()
    first_period, last_period = rows[time].min(), rows[time].max()
    start = pd.to_numeric(first, errors="coerce").fillna(0)
    treated = (start > first_period) & (start <= last_period)
    if not treated.any():
        raise DataError(file, f"no unit of the sample has a cohort ({cohort!r}, first treated period) within "
                        f"{first_period}–{last_period}: the treatment effect is not identified; check the cohort "
                        "column or widen `sample`", key="cohort")
    if (start > 0).all() and start.nunique() == 1:
        raise DataError(file, f"every unit is first treated in the same period ({start.iloc[0]:g}) and none is "
                        "never treated: there is no comparison group; add never-treated units to the sample",
                        key="cohort")


def check(df: pd.DataFrame, spec: Spec) -> None:
    """:func:`check_spec` and :func:`check_identified` (what the estimation runner calls before dispatching)."""
    check_spec(spec)
    check_identified(df, spec)


