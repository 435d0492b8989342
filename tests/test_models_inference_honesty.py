"""Issue 13 §4: no silent NaN inference, honest Hausman, treated-cluster counts, reported drops.

Each test here fails on the code before its fix (noted in the test's docstring).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.io import DataError
from analysis.models import staggered as S
from tests.test_models_staggered import SPEC, simulate_staggered


# ------------------------------------------------------------------------- att_gt: controls, unbalanced panel


def _tibet_like(seed: int = 11) -> pd.DataFrame:
    """The simulated 31 x 7 panel with a control ``x``; one never-treated unit (like Tibet) lacks its 2015 and
    2016 outcomes, so it has no base-period row in the cells with base 2015 or 2016."""
    df = simulate_staggered(seed=seed)
    never = df.loc[df["first_year"] == 0, "province_code"].iloc[0]
    df.loc[(df["province_code"] == never) & df["year"].isin([2015, 2016]), "y"] = np.nan
    return df


def test_att_gt_with_control_and_missing_base_row_has_finite_standard_errors():
    """Old code: 0 * NaN (the missing unit's base-period control times its zero residual) made every unit's
    influence function NaN in the cells the unit is absent from, so every aggregated SE was NaN (exit 0)."""
    df = _tibet_like()
    spec = {**SPEC, "controls": ["x"], "control_group": "notyettreated", "aggregate": "dynamic"}
    out = S.att_gt(df, spec)
    assert np.isfinite(out["std_error"]).all() and np.isfinite(out["p_value"]).all()
    gte = S.group_time_effects(df, spec)
    assert np.isfinite(gte.influence).all()


def test_att_gt_cell_variance_ignores_units_outside_the_cell():
    """A unit absent from cell (g, t) must not change that cell's estimate or variance: the cell's SE on the
    full panel equals its SE when only the units observed in t and its base period are kept."""
    df = _tibet_like()
    spec = {**SPEC, "controls": ["x"], "control_group": "nevertreated"}
    gte = S.group_time_effects(df, spec)
    n = len(gte.cohort_of_unit)
    se_full, _ = S._influence_inference(gte.influence, gte.cluster_of_unit, n, 0, None)
    wide = df.pivot(index="province_code", columns="year", values="y")
    checked = 0
    for k, cell in enumerate(gte.cells.itertuples()):
        present = wide.index[wide[cell.t].notna() & wide[cell.base].notna()]
        if len(present) == wide.shape[0]:
            continue
        sub = S.group_time_effects(df.loc[df["province_code"].isin(present)], spec)
        j = int(np.flatnonzero((sub.cells["g"] == cell.g) & (sub.cells["t"] == cell.t))[0])
        se_sub, _ = S._influence_inference(sub.influence[:, [j]], sub.cluster_of_unit, len(sub.cohort_of_unit),
                                           0, None)
        assert sub.cells["att"].iloc[j] == pytest.approx(cell.att, abs=1e-12)
        assert se_sub[0] == pytest.approx(se_full[k], rel=1e-10)
        checked += 1
    assert checked >= 3  # the cells with base 2015 or 2016 (and t = 2016)


def test_non_finite_standard_error_is_a_data_error_naming_the_spec():
    with pytest.raises(DataError, match=r"configs/specs/x\.yaml.*ATT e=1.*not finite"):
        S._require_finite_se(np.array([0.1, np.nan]), ["ATT", "ATT e=1"],
                             {"spec_files": ["configs/specs/x.yaml"], "estimator": "att_gt"})
