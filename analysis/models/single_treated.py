"""The single-treated-unit panel that synthetic control (:mod:`analysis.models.synth`) and synthetic DiD
(:mod:`analysis.models.sdid`) estimate on.

Both estimators follow the shared estimator contract ``fit(df, spec) -> DataFrame`` (tidy estimates with columns
term, estimate, std_error, p_value, ci_low, ci_high, n_obs, method and extras). ``df`` is a long panel with one
row per ``spec.unit`` x ``spec.time``; ``spec.treatment`` is a 0/1 column that is 1 for exactly one unit
(the treated unit) in its post periods and 0 everywhere else. The pre periods are the times before the treated
unit's first 1; the donors are all other units. Donors with a missing outcome in any sample period are dropped
(listed in ``donors_excluded``); nothing is imputed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.io import DataError
from analysis.paths import ANALYSIS_PANEL

if TYPE_CHECKING:  # annotations only: the spec module imports the registry
    from analysis.models.spec import Spec


@dataclass(frozen=True)
class SingleTreatedPanel:
    """Outcome matrix with the donors first (sorted by label) and the treated unit in the last row.

    ``Y`` has shape (n_donors + 1, n_times); columns are ``times`` in increasing order; the first ``n_pre``
    columns are pre-treatment periods.
    """

    Y: np.ndarray
    units: list
    times: list
    n_pre: int
    treated_unit: object
    donors_excluded: list = field(default_factory=list)

    @property
    def n_donors(self) -> int:
        return self.Y.shape[0] - 1

    @property
    def first_treated_time(self):
        return self.times[self.n_pre]


def _source(spec: Spec):
    """The file named in error messages: the spec's ``data`` file if it names one, else the analysis panel."""
    return spec.data or ANALYSIS_PANEL


def single_treated_panel(df: pd.DataFrame, spec: Spec) -> SingleTreatedPanel:
    """Validate ``df`` for a single-treated-unit design and reshape its outcome into a unit x time matrix.

    Raises :class:`analysis.io.DataError` (file, 1-based record, column) for missing columns, duplicate
    unit-time rows, a treatment that is not 0/1, not exactly one treated unit, a treatment that switches off,
    a missing outcome of the treated unit, fewer than two pre periods or fewer than two complete donors.
    """
    source = _source(spec)
    unit, time, outcome, treatment = spec.unit, spec.time, spec.outcome, spec.treatment
    for column in (unit, time, outcome, treatment):
        if column not in df.columns:
            raise DataError(source, f"column {column!r} named in the spec is missing", column=column)
    if spec.controls:
        raise DataError(
            source,
            "synthetic control / synthetic DiD here match on the outcome path only; remove `controls` "
            f"{list(spec.controls)} from the spec",
            column=str(spec.controls[0]),
        )
    data = df.reset_index(drop=True)
    duplicated = data.duplicated([unit, time], keep="first")
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0])
        raise DataError(source, f"duplicate {unit} x {time} row ({data.at[row, unit]}, {data.at[row, time]})",
                        row=row + 1, column=unit)
    d = data[treatment]
    bad = ~d.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(source, f"treatment must be 0 or 1, found {d.iloc[row]!r}", row=row + 1, column=treatment)
    treated_units = sorted(data.loc[d == 1, unit].unique().tolist())
    if len(treated_units) != 1:
        raise DataError(source, f"exactly one unit must have {treatment} = 1, found {len(treated_units)}: "
                        f"{treated_units[:10]}", column=treatment)
    treated_unit = treated_units[0]
    own = data.loc[data[unit] == treated_unit].sort_values(time)
    path = own[treatment].to_numpy()
    first = int(np.argmax(path == 1))
    if not (path[first:] == 1).all():
        row = int(own.index[first + int(np.argmax(path[first:] == 0))])
        raise DataError(source, f"treatment of unit {treated_unit} switches back to 0 (must be absorbing)",
                        row=row + 1, column=treatment)
    times = own[time].tolist()
    n_pre = first
    if n_pre < 2:
        raise DataError(source, f"need at least 2 pre-treatment periods for unit {treated_unit}, found {n_pre}",
                        column=time)
    missing_treated = own[outcome].isna().to_numpy()
    if missing_treated.any():
        row = int(own.index[int(np.argmax(missing_treated))])
        raise DataError(source, f"outcome of the treated unit {treated_unit} is missing", row=row + 1,
                        column=outcome)

    wide = data.pivot(index=unit, columns=time, values=outcome).reindex(columns=times)
    donors = sorted(u for u in wide.index if u != treated_unit)
    complete = wide.loc[donors].notna().all(axis=1)
    excluded = [u for u in donors if not complete[u]]
    donors = [u for u in donors if complete[u]]
    if len(donors) < 2:
        raise DataError(source, f"fewer than 2 donors with a complete {outcome} path over {times[0]}-{times[-1]}",
                        column=outcome)
    order = donors + [treated_unit]
    Y = wide.loc[order].to_numpy(dtype=float)
    return SingleTreatedPanel(Y=Y, units=order, times=times, n_pre=n_pre, treated_unit=treated_unit,
                              donors_excluded=excluded)


