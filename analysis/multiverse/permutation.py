"""Specification-curve permutation inference: is the whole curve more than chance would give with 31 provinces?

Simonsohn, Simmons & Nelson (2020, "Specification curve analysis", Nature Human Behaviour 4, 1208–1214, §"Inference")
test a curve against curves computed on data where the null holds by construction. In a province panel the null is
made by permutation (Fisher's sharp null of no effect for any province in any year): a draw is one random permutation
π of the provinces, and province i receives province π(i)'s treatment assignment — its whole exposure value
(continuous designs, every exposure column at once) or its whole first-listing cohort (staggered designs, every
cohort column at once). The SAME π is applied to every specification of a draw, so the dependence between
specifications (shared outcomes, overlapping samples, correlated exposures) is kept, and the whole curve is recomputed.
π permutes the assignments of all provinces of the panel, and each specification's sample is then taken as
the grid defines it (a sample that drops Beijing drops Beijing, whatever it received): the curve is one fixed
function T(y, a) of the outcomes and the assignment vector a, so T(y, a∘π) is its randomization distribution and
the test is exact for the sharp null under random assignment. (Permuting only within each sample's provinces
would decouple the full-sample and leave-one-out curves, which the observed curve has coupled; a simulation showed
the median's p-value then departs from uniform.) The identity gives the observed curve.

Statistics of a curve of N specifications with estimates b_s and two-sided p-values p_s (t(G−1), as the engine):

* ``median``: the median estimate; permutation p-value two-sided, (1 + #{|T_π| ≥ |T_obs|}) / (1 + B);
* ``share_significant``: max(share with p < .05 and b > 0, share with p < .05 and b < 0) — the share significant in
  the curve's dominant direction (each permuted curve in its own dominant direction, so the test is two-sided);
  p-value (1 + #{T_π ≥ T_obs}) / (1 + B);
* ``stouffer_z``: Z = Σ_s z_s / √N with z_s = sign(b_s) Φ⁻¹(1 − p_s/2) (Stouffer's aggregate of the signed
  specification z's); two-sided p-value as for the median. The z_s are correlated, so Z is not N(0, 1) under the
  null — its reference distribution is the permutation one, which is why the test is valid.

Reported over all covered specifications and by design family (``exposure``: continuous exposure × post, cont_did;
``cohort``: the TWFE event study's ATT), since the estimands differ. The (1 + ·)/(1 + B) form counts the observed
assignment among the draws (Phipson & Smyth 2010), so a p-value is never 0 and the test is exact at level α for
any B.

Coverage: cont_did (static form, CRV1, no heterogeneity or trends) and the TWFE event study (CRV1). The
Callaway–Sant'Anna cells are not covered: each refit runs the group-time estimator and its multiplier bootstrap,
~500 draws × 480 cells of it would take hours on two cores, and its aggregation is not a single least-squares
design that one matrix product can refit. Their observed estimates stay in the multiverse results and Figure 12.

Why written here and not with a library: no package permutes a panel's unit-level assignment jointly across
thousands of fixed-effect regressions. The arithmetic (:func:`batched_fit`): within a design group (same sample,
controls, fixed effects and rows used) only the treatment regressors change across draws and specifications, so
the fixed effects and controls are partialled out once (an orthonormal basis U of [FE dummies, controls]; M = I − UU'),
every permuted regressor matrix X_d is residualised in one product, Ẍ_d = X_d − U(U'X_d), and all outcomes of the
group (every index construction × outcome sharing those rows) are fitted together: c_d = (Ẍ_d'Ẍ_d)⁻¹Ẍ_d'ỹ. The
reported coefficient is w'c_d (w = 1 for cont_did; the mean of the e ≥ 0 coefficients for the event study, as
:func:`analysis.models.regression.add_att_row`); by Frisch–Waugh–Lovell its CRV1 variance is
G/(G−1)·(N−1)/(N−K)·Σ_g (Σ_{i∈g} l_i û_i)² with l = Ẍ_d (Ẍ_d'Ẍ_d)⁻¹ w and û = ỹ − Ẍ_d c_d — the engine's
:func:`analysis.models.ols.ols_fe` sandwich, same small-sample factor and K (fixest's nested count). The
tests check equality with the engine on permuted panels to 1e-10. Draws in which the engine would drop a collinear
column are refitted by the engine itself (counted in ``n_engine_fallback``).

Determinism: permutations are drawn once on the driver from ``np.random.default_rng(seed)``; dask tasks are blocks
of (design group × ``block_size`` permutations) fixed by the configuration, not by the number of workers, and are
assembled in order, so 1 or N workers, a LocalCluster or an external scheduler give identical bits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.models.sample import select_sample
from analysis.models.distributions import norm_ppf, t_sf
from analysis.models.ols import COLLINEAR_TOL, fe_dummies, nested_levels
from analysis.models.regression import control_matrix, fe_codes_for
from analysis.multiverse.grid import Cell

if TYPE_CHECKING:  # annotations only: the spec module imports the registry
    from analysis.models.spec import Spec

ALPHA = 0.05
FAMILIES = ("exposure", "cohort")
STATISTICS = ("median", "share_significant", "stouffer_z")
#: Quantiles of the permuted sorted curves drawn as the envelope in Figure 12.
ENVELOPE_QUANTILES = (0.025, 0.5, 0.975)
UNIT = "province_code"


def family_of(cell: Cell) -> str | None:
    """The design family the permutation test covers a cell in, or None (not covered; see the module docstring)."""
    spec = cell.spec
    plain = spec.inference.vcov == "CRV1" and not spec.trends \
        and spec.heterogeneity is None and spec.unit == UNIT and spec.cluster == UNIT
    if not plain:
        return None
    if spec.estimator == "cont_did" and spec.aggregate != "dynamic" and spec.exposure \
            and cell.term == f"{spec.exposure}:{spec.treatment}":
        return "exposure"
    if spec.estimator == "event_study" and spec.cohort and cell.term == "ATT":
        return "cohort"
    return None


def draw_permutations(n_units: int, n_permutations: int, seed: int) -> np.ndarray:
    """(B, n_units) int array: row b is a permutation of 0..n_units−1 (the order of the units' assignments)."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n_units) for _ in range(n_permutations)]) if n_permutations else \
        np.empty((0, n_units), dtype=np.int64)


def induced_donors(perm: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Donor index for each kept unit (in unit order): the kept units in ``perm``'s order. ``kept``: bool per unit."""
    return perm[kept[perm]]


def permute_values(values: np.ndarray, perm: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Unit-level ``values`` (one per unit in code order) after the draw: kept units receive the values of the kept
    units in ``perm``'s order; dropped units keep theirs (they are not in the sample)."""
    out = np.array(values, dtype=float, copy=True)
    out[np.flatnonzero(kept)] = np.asarray(values, dtype=float)[induced_donors(perm, kept)]
    return out


# --------------------------------------------------------------------------------------------------------------
# Design groups


@dataclass
class Group:
    """Cells sharing sample, controls, fixed effects and family: their rows, and the outcomes × treatments.

    ``y``: (n_rows, m) outcomes (one column per index construction × outcome; NaN where missing);
    ``treatments``: per treatment, (assignment column, event column or "") — unit-level values in ``assign``;
    ``cells``: (position in the grid, treatment position, outcome column position)."""

    family: str
    key: tuple
    unit_index: np.ndarray          # row -> unit position (0..U-1, units in code order)
    time: np.ndarray
    post: dict                      # event column -> (n_rows,) 0/1
    controls: np.ndarray            # (n_rows, c)
    fe_codes: list
    y: np.ndarray
    assign: dict                    # assignment column -> (U,) unit-level values
    treatments: list
    kept: np.ndarray                # (U,) bool: units in the sample
    event_window: tuple = (-3, 3)
    reference: int = -1
    cells: list = field(default_factory=list)


def unit_values(frame: pd.DataFrame, column: str, units: np.ndarray, source: str = "analysis frame") -> np.ndarray:
    """One value per unit (code order) of a column that must be constant within unit (exposure, cohort)."""
    from analysis.io import DataError

    by_unit = frame.groupby(UNIT)[column]
    varies = by_unit.nunique(dropna=False) > 1
    if varies.any():
        raise DataError(source, f"{column} varies within province {varies.index[varies.to_numpy()][0]}; the "
                                f"permutation test moves whole province-level assignments", column=column)
    first = by_unit.first()
    return first.reindex(units).to_numpy(dtype=float)


def build_groups(cells: list[Cell], frames: dict[str, pd.DataFrame]) -> tuple[list[Group], np.ndarray]:
    """Design groups of the covered cells (frames: index name -> analysis frame). Returns (groups, units)."""
    first = next(iter(frames.values()))
    units = np.sort(first[UNIT].unique())
    groups: dict[tuple, Group] = {}
    y_columns: dict[tuple, dict] = {}
    order = first[[UNIT, "year"]].to_numpy() if "year" in first.columns else None
    for name, frame in frames.items():
        if len(frame) != len(first) or (order is not None and not np.array_equal(frame[[UNIT, "year"]].to_numpy(), order)):
            raise ValueError(f"analysis frame of index choice {name} has other rows than the first one")
    positioned = first.assign(_row=np.arange(len(first)))
    for position, cell in enumerate(cells):
        family = family_of(cell)
        if family is None:
            continue
        spec = cell.spec
        assign_col = spec.exposure if family == "exposure" else spec.cohort
        event = spec.treatment if family == "exposure" else ""
        key = (family, tuple(cell.drop_years), canonical_sample(spec), tuple(spec.controls),
               tuple(spec.fixed_effects), tuple(spec.event_window), spec.reference_period)
        group = groups.get(key)
        if group is None:
            data = positioned.loc[~positioned[spec.time].isin(list(cell.drop_years))] if cell.drop_years \
                else positioned
            rows = select_sample(data, spec)
            controls, _ = control_matrix(rows, spec.controls)
            kept = np.ones(len(units), dtype=bool)   # assignments permuted over every province (docstring)
            group = Group(family, key, np.searchsorted(units, rows[UNIT].to_numpy()),
                          rows[spec.time].to_numpy(dtype=float), {}, controls,
                          fe_codes_for(rows, spec.fixed_effects), np.empty((len(rows), 0)), {}, [], kept,
                          tuple(spec.event_window), int(spec.reference_period))
            group._rows = rows  # noqa: SLF001 - kept on the driver only, dropped before shipping
            groups[key] = group
            y_columns[key] = {}
        rows = group._rows  # noqa: SLF001
        if assign_col not in group.assign:
            values = unit_values(positioned, assign_col, units)
            if family == "exposure" and not np.isfinite(values).all():
                raise ValueError(f"{assign_col} is missing for a province in sample "
                                 f"{spec.sample.model_dump(mode='json')}: the "
                                 f"permutation test needs every sampled province's exposure")
            group.assign[assign_col] = values
        if event and event not in group.post:
            group.post[event] = rows[event].to_numpy(dtype=float)
        treatment = (assign_col, event)
        if treatment not in group.treatments:
            group.treatments.append(treatment)
        y_key = (cell.index.name, spec.outcome)
        if y_key not in y_columns[key]:
            y_columns[key][y_key] = len(y_columns[key])
            # every index frame has the same rows in the same order (checked above): take the sample's rows
            values = frames[cell.index.name][spec.outcome].to_numpy(dtype=float)[rows["_row"].to_numpy()]
            group.y = np.column_stack([group.y, values])
        group.cells.append((position, group.treatments.index(treatment), y_columns[key][y_key]))
    out = []
    for group in groups.values():
        del group._rows  # noqa: SLF001
        out.append(group)
    return out, units


def canonical_sample(spec) -> tuple:
    sample = spec.sample
    return (tuple(sample.years), tuple(sample.drop_years), tuple(map(str, sample.drop_units)),
            tuple(map(str, sample.keep_units)))


# --------------------------------------------------------------------------------------------------------------
# Batched fits


def permuted_unit_values(values: np.ndarray, perms: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """(D, U): :func:`permute_values` for every permutation (row) of ``perms`` at once."""
    out = np.broadcast_to(np.asarray(values, dtype=float), (len(perms), len(values))).copy()
    donors = perms[kept[perms]].reshape(len(perms), int(kept.sum()))
    out[:, np.flatnonzero(kept)] = np.asarray(values, dtype=float)[donors]
    return out


def regressors(group: Group, treatment: tuple, perms: np.ndarray) -> np.ndarray:
    """(D, n_rows, k) treatment regressors of one treatment under each permutation of ``perms`` — the engine's
    construction (:func:`analysis.models.regression.cont_did`: exposure × post; :func:`event_study`: event-time
    dummies with the window's end points binned, the reference period omitted, never-treated rows zero)."""
    assign_col, event = treatment
    values = permuted_unit_values(group.assign[assign_col], perms, group.kept)[:, group.unit_index]   # (D, n)
    if group.family == "exposure":
        return (values * group.post[event][None, :])[:, :, None]
    treated = np.isfinite(values) & (values > 0)
    event_time = np.where(treated, group.time[None, :] - np.where(treated, values, 0.0), np.nan)
    binned = np.clip(event_time, group.event_window[0], group.event_window[1])
    ks = [k for k in range(group.event_window[0], group.event_window[1] + 1) if k != group.reference]
    return np.stack([np.where(np.isnan(binned), 0.0, (binned == k).astype(float)) for k in ks], axis=2)


def _residualise(basis: np.ndarray, X: np.ndarray) -> np.ndarray:
    """X − U(U'X) for a stack X (D, n, k), as two plain matrix products on the (n, D·k) layout."""
    D, n, k = X.shape
    flat = np.ascontiguousarray(np.swapaxes(X, 0, 1)).reshape(n, D * k)
    flat = flat - basis @ (basis.T @ flat)
    return np.ascontiguousarray(np.swapaxes(flat.reshape(n, D, k), 0, 1))


def _basis(matrix: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the column space (SVD, rank by numpy's matrix_rank tolerance)."""
    if matrix.shape[1] == 0:
        return matrix
    u, s, _ = np.linalg.svd(matrix, full_matrices=False)
    tol = s.max() * max(matrix.shape) * np.finfo(float).eps if s.size else 0.0
    return u[:, s > tol]


def cluster_layout(clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(G, T_max) row index of each cluster's rows (rows sorted by cluster) padded with 0, and the (G, T_max) mask
    of real rows: the cluster sums below become batched matrix products over a (G, T_max) grid."""
    starts = np.flatnonzero(np.r_[True, np.diff(clusters) != 0])
    sizes = np.diff(np.r_[starts, len(clusters)])
    offsets = np.arange(sizes.max())
    real = offsets[None, :] < sizes[:, None]
    return np.where(real, starts[:, None] + offsets[None, :], 0), real


def batched_fit(Xt: np.ndarray, yt: np.ndarray, weights: np.ndarray, layout: tuple[np.ndarray, np.ndarray],
                factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Estimates and CRV1 standard errors of w'c for many designs at once (see the module docstring).

    ``Xt``: (D, n, k) regressors with fixed effects and controls partialled out; ``yt``: (n, m) partialled
    outcomes; ``weights``: (k,) w; ``layout``: :func:`cluster_layout` of the rows' clusters; ``factor``: the CRV1
    small-sample factor. Returns (estimate, std_error), each (D, m).

    The cluster score of w'c is s_g = Σ_{i∈g} l_i û_i = Σ_{i∈g} l_i ỹ_i − (Σ_{i∈g} l_i Ẍ_i)'c, which needs no
    (D, n, m) residual array: the first term is one batched product over clusters, the second a small one."""
    XtT = np.swapaxes(Xt, 1, 2)                                          # (D, k, n)
    Hinv = np.linalg.inv(XtT @ Xt)
    coef = Hinv @ (XtT @ yt)                                             # (D, k, m)
    a = Hinv @ weights                                                   # (D, k)
    lev = np.einsum("dkn,dk->dn", XtT, a)                                # (D, n): row weights of w'c
    estimate = np.einsum("k,dkm->dm", weights, coef)
    index, real = layout
    lev_g = np.where(real, lev[:, index], 0.0)                           # (D, G, T)
    first = np.matmul(np.swapaxes(lev_g, 0, 1), yt[index] * real[:, :, None])   # (G, D, m)
    second = np.einsum("dgt,dgtk->dgk", lev_g, Xt[:, index, :]) @ coef  # (D, G, m)
    scores = np.swapaxes(first, 0, 1) - second
    return estimate, np.sqrt(factor * np.einsum("dgm,dgm->dm", scores, scores))


def _fit_rows(group: Group, rows: np.ndarray, ycols: list[int], perms: np.ndarray) -> dict:
    """Batched fits of every treatment × outcome column ``ycols`` of ``group`` on its rows ``rows`` (bool)."""
    n = int(rows.sum())
    units = group.unit_index[rows]
    fe = [np.unique(codes[rows], return_inverse=True)[1] for codes in group.fe_codes]
    dummies = fe_dummies(fe) if fe else np.ones((n, 1))
    rank_d = int(np.linalg.matrix_rank(dummies))
    controls = group.controls[rows]
    U_fe = _basis(dummies)
    U_all = _basis(np.column_stack([dummies, controls])) if controls.shape[1] else U_fe
    n_controls_kept = U_all.shape[1] - U_fe.shape[1]
    clusters = units
    nested = sum(nested_levels(codes, clusters) for codes in fe)
    layout = cluster_layout(clusters)
    n_clusters = layout[0].shape[0]
    yt = group.y[rows][:, ycols]
    yt = yt - U_all @ (U_all.T @ yt)
    n_t, n_d = len(group.treatments), len(perms)
    est = np.full((n_t, n_d, len(ycols)), np.nan)
    se = np.full_like(est, np.nan)
    fallback = np.zeros((n_t, n_d), dtype=bool)
    for j, treatment in enumerate(group.treatments):
        X = regressors(group, treatment, perms)[:, rows, :]                            # (D, n, k)
        k = X.shape[2]
        # the engine's collinearity rule, column by column on the FE-residualised [X, controls]
        c_fe = controls - U_fe @ (U_fe.T @ controls)
        full = np.concatenate([_residualise(U_fe, X), np.broadcast_to(c_fe, (n_d,) + controls.shape)], axis=2)
        raw = np.concatenate([X, np.broadcast_to(controls, (n_d,) + controls.shape)], axis=2)
        r_diag = np.abs(np.diagonal(np.linalg.qr(full, mode="r"), axis1=1, axis2=2)) if full.shape[2] else \
            np.zeros((n_d, 0))
        tol = COLLINEAR_TOL * np.maximum(np.linalg.norm(raw, axis=1), 1.0) * np.sqrt(n)
        dropped = r_diag <= tol[:, : r_diag.shape[1]]
        lost_treatment = dropped[:, :k].any(axis=1)       # the engine raises: the cell has no estimate
        lost_control = dropped[:, k:].any(axis=1) | (n_controls_kept != controls.shape[1])
        fallback[j] = lost_control & ~lost_treatment
        ok = ~lost_treatment & ~fallback[j]
        if not ok.any():
            continue
        Xt = _residualise(U_all, X[ok])
        weights = np.ones(1) if group.family == "exposure" else _att_weights(group)
        k_ssc = k + n_controls_kept + rank_d - nested
        factor = n_clusters / (n_clusters - 1) * (n - 1) / (n - k_ssc)
        e, s = batched_fit(Xt, yt, weights, layout, factor)
        est[j, ok], se[j, ok] = e, s
    return {"estimate": est, "std_error": se, "fallback": fallback, "df": n_clusters - 1, "n_obs": n}


def _att_weights(group: Group) -> np.ndarray:
    ks = [k for k in range(group.event_window[0], group.event_window[1] + 1) if k != group.reference]
    post = np.array([k >= 0 for k in ks], dtype=float)
    return post / post.sum()


def fit_block(group: Group, perms: np.ndarray) -> dict:
    """Estimates, standard errors and t(G−1) p-values of every cell of ``group`` under each permutation of the
    block: arrays (n_cells_of_group, n_draws), in the order of ``group.cells``; plus engine-fallback flags."""
    complete = np.isfinite(group.y) & np.isfinite(group.controls).all(axis=1)[:, None]
    masks: dict[bytes, list[int]] = {}
    for col in range(group.y.shape[1]):
        masks.setdefault(complete[:, col].tobytes(), []).append(col)
    n_cells = len(group.cells)
    out = {"estimate": np.full((n_cells, len(perms)), np.nan), "std_error": np.full((n_cells, len(perms)), np.nan),
           "p_value": np.full((n_cells, len(perms)), np.nan), "fallback": np.zeros((n_cells, len(perms)), bool)}
    cell_at = {(t, c): i for i, (_, t, c) in enumerate(group.cells)}
    for mask_bytes, ycols in masks.items():
        rows = np.frombuffer(mask_bytes, dtype=bool)
        if rows.sum() == 0:
            continue
        fitted = _fit_rows(group, rows, ycols, perms)
        for j in range(len(group.treatments)):
            for pos, col in enumerate(ycols):
                i = cell_at.get((j, col))
                if i is None:
                    continue
                est, se = fitted["estimate"][j, :, pos], fitted["std_error"][j, :, pos]
                out["estimate"][i], out["std_error"][i] = est, se
                with np.errstate(invalid="ignore", divide="ignore"):
                    out["p_value"][i] = 2 * t_sf(np.abs(est / se), fitted["df"])
                out["fallback"][i] = fitted["fallback"][j]
    return out


# --------------------------------------------------------------------------------------------------------------
# Engine path (fallback, tests, benchmark)


def permuted_frame(frame: pd.DataFrame, cell: Cell, perm: np.ndarray, units: np.ndarray) -> pd.DataFrame:
    """The analysis frame with the cell's assignment column permuted by ``perm`` over all provinces (the sample
    is then selected by the engine as for the observed data)."""
    spec = cell.spec
    kept = np.ones(len(units), dtype=bool)
    out = frame.copy()
    column = spec.exposure if family_of(cell) == "exposure" else spec.cohort
    values = permute_values(unit_values(frame, column, units), perm, kept)
    out[column] = values[np.searchsorted(units, frame[UNIT].to_numpy())]
    return out


def engine_fit(frame: pd.DataFrame, cell: Cell, perm: np.ndarray, units: np.ndarray) -> dict:
    """One cell under one permutation through the multiverse's own per-cell path (tasks.fit_cell → engine)."""
    from analysis.multiverse import tasks

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tasks.fit_cell(permuted_frame(frame, cell, perm, units),
                              {"spec": cell.spec.model_copy(update={"id": "permutation"}),
                               "drop_years": list(cell.drop_years),
                               "term": cell.term})


# --------------------------------------------------------------------------------------------------------------
# Statistics


def curve_statistics(estimate: np.ndarray, p_value: np.ndarray, alpha: float = ALPHA) -> dict[str, np.ndarray]:
    """The three statistics of each curve: columns of (N_specs, n_curves) arrays (NaN specs left out per curve)."""
    valid = np.isfinite(estimate) & np.isfinite(p_value)
    n = valid.sum(axis=0)
    est = np.where(valid, estimate, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(est, axis=0)
    sig = valid & (p_value < alpha)
    positive = (sig & (estimate > 0)).sum(axis=0) / np.maximum(n, 1)
    negative = (sig & (estimate < 0)).sum(axis=0) / np.maximum(n, 1)
    # Φ⁻¹(1 − p/2) from the upper tail, clipped so that p = 0 (|t| beyond double precision) stays finite
    z = np.where(valid, np.sign(estimate) * -norm_ppf(np.clip(np.where(valid, p_value, 1.0), 1e-300, 1.0) / 2), 0.0)
    stouffer = z.sum(axis=0) / np.sqrt(np.maximum(n, 1))
    return {"median": median, "share_significant": np.maximum(positive, negative), "stouffer_z": stouffer,
            "share_positive": positive, "share_negative": negative, "n": n}


def permutation_pvalues(observed: dict, null: dict) -> dict[str, float]:
    """p_median and p_stouffer_z two-sided (|T|), p_share_significant one-sided (larger share is stronger)."""
    B = len(null["median"])
    out = {}
    for name in STATISTICS:
        obs, draws = float(observed[name][0]), np.asarray(null[name])
        if name == "share_significant":
            extreme = draws >= obs - 1e-12
        else:
            extreme = np.abs(draws) >= abs(obs) * (1 - 1e-12)
        out[f"p_{name}"] = float((1 + int(extreme.sum())) / (1 + B))
    return out


def summarise(estimate: np.ndarray, p_value: np.ndarray, observed_estimate: np.ndarray,
              observed_p: np.ndarray) -> dict:
    """Observed statistics, their permutation distribution's quantiles and p-values for one family of specs."""
    observed = curve_statistics(observed_estimate[:, None], observed_p[:, None])
    null = curve_statistics(estimate, p_value)
    dominant = "negative" if observed["share_negative"][0] > observed["share_positive"][0] or (
        observed["share_negative"][0] == observed["share_positive"][0] and observed["median"][0] < 0) else "positive"
    result = {"n_specifications": int(observed["n"][0]), "dominant_direction": dominant,
              "median": float(observed["median"][0]), "share_significant": float(observed["share_significant"][0]),
              "share_significant_positive": float(observed["share_positive"][0]),
              "share_significant_negative": float(observed["share_negative"][0]),
              "stouffer_z": float(observed["stouffer_z"][0])}
    result.update(permutation_pvalues(observed, null))
    for name in STATISTICS:
        lo, mid, hi = np.quantile(null[name], ENVELOPE_QUANTILES)
        result[f"null_{name}_q025"], result[f"null_{name}_q50"], result[f"null_{name}_q975"] = \
            float(lo), float(mid), float(hi)
    return result


def envelope(estimate: np.ndarray) -> np.ndarray:
    """(3, N) quantiles (2.5/50/97.5 %) over draws of each rank of the sorted permuted curves (NaN specs dropped:
    each curve is sorted with NaN last, so ranks are aligned on the specifications every draw estimated)."""
    ranked = np.sort(estimate, axis=0)
    n_ok = int(np.isfinite(estimate).sum(axis=0).min()) if estimate.size else 0
    return np.quantile(ranked[:n_ok], ENVELOPE_QUANTILES, axis=1)


# --------------------------------------------------------------------------------------------------------------
# Driver


@dataclass
class InferenceRun:
    """What :func:`run_inference` returns: the JSON summary, and the arrays Figure 12's envelope panel needs."""

    summary: dict
    observed_sorted: np.ndarray
    envelope: np.ndarray


def run_inference(cells: list[Cell], frames: dict[str, pd.DataFrame], settings, client,
                  engine_results: pd.DataFrame | None = None, keys: list[str] | None = None) -> InferenceRun:
    """Permutation inference over the covered cells on ``client`` (a dask Client).

    ``settings``: :class:`analysis.multiverse.grid.InferenceSettings`. ``engine_results`` (optional): the
    multiverse results (rows keyed by ``spec_hash`` = ``keys``), against which the batched observed curve is
    checked (its largest absolute difference is recorded)."""
    groups, units = build_groups(cells, frames)
    perms = draw_permutations(len(units), settings.n_permutations, settings.seed)
    identity = np.arange(len(units))[None, :]
    group_futures = client.scatter(groups, hash=False)
    observed_f = [client.submit(fit_block, g, identity, key=f"perm-observed-{i}") for i, g in enumerate(group_futures)]
    blocks = [(start, perms[start:start + settings.block_size])
              for start in range(0, len(perms), settings.block_size)]
    futures = {(i, start): client.submit(fit_block, g, block, key=f"perm-block-{i}-{start}")
               for i, g in enumerate(group_futures) for start, block in blocks}
    observed = client.gather(observed_f)
    draws = client.gather(futures)

    positions = [pos for g in groups for pos, _, _ in g.cells]
    n_cov, B = len(positions), len(perms)
    est = np.full((n_cov, B), np.nan)
    pval = np.full((n_cov, B), np.nan)
    obs_est, obs_p = np.full(n_cov, np.nan), np.full(n_cov, np.nan)
    row = 0
    fallbacks = []
    for i, group in enumerate(groups):
        size = len(group.cells)
        obs_est[row:row + size] = observed[i]["estimate"][:, 0]
        obs_p[row:row + size] = observed[i]["p_value"][:, 0]
        if observed[i]["fallback"].any():
            fallbacks += [(row + c, -1) for c in np.flatnonzero(observed[i]["fallback"][:, 0])]
        for start, block in blocks:
            part = draws[(i, start)]
            est[row:row + size, start:start + len(block)] = part["estimate"]
            pval[row:row + size, start:start + len(block)] = part["p_value"]
            for c, d in zip(*np.nonzero(part["fallback"])):
                fallbacks.append((row + int(c), start + int(d)))
        row += size
    for r, d in fallbacks:  # draws where the engine would drop a control: the engine itself refits them
        cell = cells[positions[r]]
        fit = engine_fit(frames[cell.index.name], cell, identity[0] if d < 0 else perms[d], units)
        if d < 0:
            obs_est[r], obs_p[r] = fit["estimate"], fit["p_value"]
        else:
            est[r, d], pval[r, d] = fit["estimate"], fit["p_value"]

    family = np.array([family_of(cells[p]) for p in positions])
    summary = {"n_permutations": int(B), "seed": int(settings.seed), "block_size": int(settings.block_size),
               "alpha": ALPHA, "n_units": int(len(units)), "n_specifications_in_grid": len(cells),
               "n_specifications_covered": int(n_cov), "n_engine_fallback": len(fallbacks),
               "covered_estimators": sorted({cells[p].choices["estimator"] for p in positions}),
               "not_covered_estimators": sorted({c.choices["estimator"] for c in cells} -
                                                {cells[p].choices["estimator"] for p in positions}),
               "families": {}}
    summary["overall"] = summarise(est, pval, obs_est, obs_p)
    for name in FAMILIES:
        chosen = family == name
        if chosen.any():
            summary["families"][name] = summarise(est[chosen], pval[chosen], obs_est[chosen], obs_p[chosen])
    for name in STATISTICS:  # top-level keys: the overall curve
        summary[name] = summary["overall"][name]
        summary[f"p_{name}"] = summary["overall"][f"p_{name}"]
    if engine_results is not None and keys is not None:
        by_key = engine_results.set_index("spec_hash")["estimate"]
        reference = by_key.reindex([keys[p] for p in positions]).to_numpy(dtype=float)
        both = np.isfinite(reference) & np.isfinite(obs_est)
        summary["observed_max_abs_diff_vs_engine"] = float(np.max(np.abs(reference[both] - obs_est[both]))) \
            if both.any() else None
        summary["observed_n_missing_vs_engine"] = int((np.isfinite(reference) != np.isfinite(obs_est)).sum())
    return InferenceRun(summary, np.sort(obs_est[np.isfinite(obs_est)]), envelope(est))
