"""Callaway & Sant'Anna (2021, J. Econometrics 225(2)) group-time average treatment effects, :func:`att_gt`.

Outcome-regression estimator (unconditional 2x2 DiD of means without controls), never- or not-yet-treated comparison
units, ``simple``/``group``/``calendar``/``dynamic`` aggregation as in R ``did::aggte`` (including the influence
function of the estimated aggregation weights), analytical influence-function standard errors clustered by
``cluster`` and, on request, a seeded multiplier bootstrap (Mammen weights, IQR-based standard error). With
``inference.honest`` the Rambachan & Roth (2023) sensitivity sets of :mod:`analysis.models.honest_did` on the
universal-base event study (:func:`att_gt_event_study`) are appended. Written on numpy/pandas (the reference, R
``did``, has no Python port that gives the influence functions Honest DiD needs); checked in
``tests/test_models_staggered*.py`` against a hand computation, ``diff_diff.CallawaySantAnna`` and the published
``mpdta`` numbers. Inputs, result rows and the t(G - 1) convention: :mod:`analysis.models.staggered_panel`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

from analysis.io import DataError
from analysis.models.distributions import norm_ppf, norm_sf
from analysis.models.honest_did import honest_rows
from analysis.models.staggered_panel import (alpha_level, cluster_sums, dropped_always_columns, event_window_bounds,
                                             prepare_panel, result_frame, spec_file, t_row)

if TYPE_CHECKING:  # annotations only: the spec module imports the registry
    from analysis.models.spec import Spec

#: Standard-normal quantile difference used to turn a bootstrap interquartile range into a standard error
#: (as R ``did::mboot``): IQR / (z_0.75 - z_0.25).
IQR_TO_SD = float(norm_ppf(0.75) - norm_ppf(0.25))


def _bootstrap_reps(spec: Spec) -> int:
    """Number of multiplier-bootstrap draws requested: ``inference: {bootstrap: {reps: 999}}`` (the one form the
    spec schema accepts); 0 = analytical standard errors only."""
    boot = spec.inference.bootstrap
    return 0 if boot is None else int(boot.reps)


def _normal_row(term: str, estimate: float, se: float, alpha: float, n_obs: int, method: str, **extra) -> dict:
    """A result row with a normal-approximation two-sided p-value and CI (event-study inputs to Honest DiD,
    whose critical values are normal by design)."""
    z = norm_ppf(1 - alpha / 2)
    if se is None or not np.isfinite(se) or se <= 0:
        p, lo, hi = np.nan, np.nan, np.nan
    else:
        p = float(2 * norm_sf(abs(estimate / se)))
        lo, hi = estimate - z * se, estimate + z * se
    return {"term": term, "estimate": float(estimate), "std_error": float(se) if se is not None else np.nan,
            "p_value": p, "ci_low": lo, "ci_high": hi, "n_obs": int(n_obs), "method": method, **extra}


@dataclass
class GroupTimeEffects:
    """ATT(g,t) estimates with their influence functions.

    ``cells`` has one row per (g, t): ``g, t, e, base, att, n_treated, n_control, post``.
    ``influence`` is n_units x n_cells: unit i's influence-function value psi_i for each cell, scaled as in
    R ``did`` so that Var(att) is estimated by sum_i psi_i^2 / n^2 (zero for units outside a cell).
    ``cohort_of_unit`` is each unit's cohort (0 = never treated), aligned with the rows of ``influence``.
    ``units_dropped_unbalanced``: units not observed in every period, dropped to balance the panel (the default);
    ``units_partial``: with ``allow_unbalanced_panel: true``, the units kept that miss some period (they enter only
    the cells whose two periods they have); ``always_treated_units``: cohorts treated in the first period, dropped.
    """

    cells: pd.DataFrame
    influence: np.ndarray
    cohort_of_unit: np.ndarray
    cluster_of_unit: np.ndarray
    n_obs: int
    units_dropped_unbalanced: tuple = ()
    units_partial: tuple = ()
    always_treated_units: tuple = ()


def group_time_effects(df: pd.DataFrame, spec: Spec, base_period: str | None = None) -> GroupTimeEffects:
    """Callaway--Sant'Anna ATT(g,t) for every cohort g and period t (outcome-regression estimator).

    For cohort g and period t the comparison is a 2x2 DiD between base period b and t:

        ATT(g,t) = mean_{G=g}[Y_t - Y_b] - mean_{C}[Y_t - Y_b]              (no controls)
        ATT(g,t) = mean_{G=g}[(Y_t - Y_b) - X_b' beta_C]                    (controls X, base-period values)

    with beta_C the OLS fit of Y_t - Y_b on (1, X_b) among comparison units C. C is the never-treated units
    (``control_group: nevertreated``) or the units not yet treated by max(t, b) + anticipation
    (``notyettreated``, cohort g itself excluded). Base period: ``varying`` (R did's default) uses b = t - 1
    before treatment and b = g - 1 - anticipation after; ``universal`` uses b = g - 1 - anticipation
    throughout (needed for Honest DiD, whose pre-period coefficients must share the reference period).
    Only units observed in both t and b enter a cell. Influence function (unit i, n units in total):

        psi_i = n/N_g * D_i * (dY_i - X_i'beta - ATT) - xbar_g' * (sum_C X X' / n)^{-1} * C_i X_i e_i
    """
    panel = prepare_panel(df, spec)
    data, periods = panel.data, panel.periods
    # R did (panel = TRUE, allow_unbalanced_panel = FALSE) keeps only the units observed in every period, with a
    # warning; so do we unless the spec sets allow_unbalanced_panel: true (then such units enter the cells whose
    # two periods they have, as R's unbalanced-panel estimator).
    n_rows = data.groupby("unit")["time"].nunique()
    incomplete = tuple(sorted(n_rows.index[n_rows < len(periods)].tolist()))
    dropped_unbalanced: tuple = ()
    if incomplete and not spec.allow_unbalanced_panel:
        warnings.warn(f"{spec_file(spec)}: att_gt balances the panel (as R did): {len(incomplete)} unit(s) not "
                      f"observed in every period {periods[0]}-{periods[-1]} dropped: "
                      f"{', '.join(str(u) for u in incomplete)}; set allow_unbalanced_panel: true to keep them",
                      stacklevel=2)
        data = data.loc[~data["unit"].isin(incomplete)]
        dropped_unbalanced, incomplete = incomplete, ()
    anticipation = int(spec.anticipation)
    control_group = spec.control_group
    if control_group not in ("nevertreated", "notyettreated"):
        raise DataError(panel.source, f"control_group must be nevertreated or notyettreated, not {control_group!r}")
    base_period = base_period or spec.base_period
    if base_period not in ("varying", "universal"):
        raise DataError(panel.source, f"base_period must be varying or universal, not {base_period!r}")

    units = pd.Index(np.sort(data["unit"].unique()))
    unit_info = data.groupby("unit").agg(g=("g", "first"), cluster=("cluster", "first")).reindex(units)
    cohort_of_unit = unit_info["g"].to_numpy()
    n = len(units)
    wide_y = data.pivot(index="unit", columns="time", values="y").reindex(index=units, columns=periods)
    wide_x = {c: data.pivot(index="unit", columns="time", values=c).reindex(index=units, columns=periods)
              for c in panel.controls}
    groups = np.sort(np.unique(cohort_of_unit[cohort_of_unit > 0]))
    if len(groups) == 0:
        raise DataError(panel.source, "no treated cohort in the sample", column=spec.cohort)
    if control_group == "nevertreated" and not (cohort_of_unit == 0).any():
        raise DataError(panel.source, "control_group nevertreated but no never-treated unit", column=spec.cohort)

    rows, influence = [], []
    for g in groups:
        # Last period strictly before (anticipation-adjusted) treatment: the long-difference base.
        before = periods[periods + anticipation < g]
        if len(before) == 0:
            continue
        long_base = before[-1]
        for k, t in enumerate(periods):
            if base_period == "varying" and t + anticipation < g:
                if k == 0:
                    continue
                base = periods[k - 1]
            else:
                base = long_base
                if t == base:
                    continue
            treated = cohort_of_unit == g
            if control_group == "nevertreated":
                control = cohort_of_unit == 0
            else:
                control = (cohort_of_unit == 0) | ((cohort_of_unit > max(t, base) + anticipation)
                                                   & (cohort_of_unit != g))
            dy = (wide_y[t] - wide_y[base]).to_numpy()
            ok = np.isfinite(dy)
            x = np.ones((n, 1))
            if panel.controls:
                x = np.column_stack([x] + [wide_x[c][base].to_numpy() for c in panel.controls])
                ok &= np.isfinite(x).all(axis=1)
            d, c = treated & ok, control & ok
            # Units outside the cell (no row in t or b) contribute zero to its influence function; their
            # missing base-period controls must not turn 0 * NaN into NaN for every unit's psi.
            x = np.where(ok[:, None], x, 0.0)
            n_g, n_c = int(d.sum()), int(c.sum())
            if n_g == 0 or n_c == 0:
                continue
            xc, yc = x[c], dy[c]
            gram = xc.T @ xc / n
            beta = np.linalg.lstsq(xc, yc, rcond=None)[0]
            resid_c = np.zeros(n)
            resid_c[c] = yc - xc @ beta
            adjusted = np.where(d, dy - x @ beta, 0.0)
            att = adjusted[d].mean()
            xbar_g = x[d].mean(axis=0)
            psi = np.where(d, n / n_g * (adjusted - att), 0.0)
            psi -= (x * resid_c[:, None]) @ np.linalg.pinv(gram) @ xbar_g
            rows.append({"g": int(g), "t": int(t), "e": int(t - g), "base": int(base), "att": float(att),
                         "n_treated": n_g, "n_control": n_c, "post": bool(t >= g)})
            influence.append(psi)
    if not rows:
        raise DataError(panel.source, "no estimable group-time cell", column=spec.cohort)
    return GroupTimeEffects(cells=pd.DataFrame(rows), influence=np.column_stack(influence),
                            cohort_of_unit=cohort_of_unit, cluster_of_unit=unit_info["cluster"].to_numpy(),
                            n_obs=len(data), units_dropped_unbalanced=dropped_unbalanced, units_partial=incomplete,
                            always_treated_units=panel.always_treated_units)


def _weight_influence(keepers: np.ndarray, pg: np.ndarray, cell_groups: np.ndarray,
                      cohort_of_unit: np.ndarray) -> np.ndarray:
    """Influence function of estimated aggregation weights w_k = pg_k / sum(pg) (R ``did`` ``wif``).

    pg_k = P(G = g_k) is estimated by the share of units in cohort g_k, so the weights carry sampling error:
    if1_ik = (1{G_i=g_k} - pg_k) / S, if2_ik = [sum_j (1{G_i=g_j} - pg_j)] * pg_k / S^2, wif = if1 - if2,
    with S = sum_k pg_k over the kept cells. Returns an n_units x len(keepers) matrix.
    """
    ind = (cohort_of_unit[:, None] == cell_groups[keepers][None, :]).astype(float) - pg[keepers][None, :]
    total = pg[keepers].sum()
    return ind / total - ind.sum(axis=1, keepdims=True) * (pg[keepers] / total**2)[None, :]


def _aggregate(gte: GroupTimeEffects, keepers: np.ndarray) -> tuple[float, np.ndarray]:
    """Cohort-share-weighted average of the kept cells and its influence function."""
    cells = gte.cells
    n = len(gte.cohort_of_unit)
    groups = cells["g"].to_numpy()
    pg = np.array([(gte.cohort_of_unit == g).sum() / n for g in groups])
    weights = pg[keepers] / pg[keepers].sum()
    att = cells["att"].to_numpy()[keepers]
    estimate = float(weights @ att)
    psi = gte.influence[:, keepers] @ weights
    psi = psi + _weight_influence(keepers, pg, groups, gte.cohort_of_unit) @ att
    return estimate, psi


def _att_gt_aggregations(gte: GroupTimeEffects, aggregate: str, window: tuple[float, float]
                         ) -> list[tuple[str, float, np.ndarray]]:
    """(term, estimate, influence function) for the requested aggregation, overall term first."""
    cells = gte.cells
    e, g, t = cells["e"].to_numpy(), cells["g"].to_numpy(), cells["t"].to_numpy()
    post = cells["post"].to_numpy()
    out: list[tuple[str, float, np.ndarray]] = []
    if aggregate == "simple":
        est, psi = _aggregate(gte, np.flatnonzero(post))
        out.append(("ATT", est, psi))
    elif aggregate == "dynamic":
        lo, hi = window
        event_times = [k for k in np.unique(e) if lo <= k <= hi]
        per_e = []
        for k in event_times:
            est, psi = _aggregate(gte, np.flatnonzero(e == k))
            per_e.append((f"ATT e={int(k)}", est, psi, k))
        post_e = [(est, psi) for _, est, psi, k in per_e if k >= 0]
        if post_e:
            out.append(("ATT", float(np.mean([p[0] for p in post_e])), np.mean([p[1] for p in post_e], axis=0)))
        out.extend((term, est, psi) for term, est, psi, _ in per_e)
    elif aggregate == "group":
        per_g = []
        for gg in np.unique(g):
            keep = np.flatnonzero((g == gg) & post)
            if len(keep) == 0:
                continue
            # Within a cohort the post cells are averaged with equal weights (no estimated weights).
            est = float(cells["att"].to_numpy()[keep].mean())
            psi = gte.influence[:, keep].mean(axis=1)
            per_g.append((gg, est, psi))
        n = len(gte.cohort_of_unit)
        glist = np.array([p[0] for p in per_g])
        pg = np.array([(gte.cohort_of_unit == gg).sum() / n for gg in glist])
        atts = np.array([p[1] for p in per_g])
        weights = pg / pg.sum()
        keep = np.arange(len(glist))
        psi = np.column_stack([p[2] for p in per_g]) @ weights + _weight_influence(keep, pg, glist,
                                                                                   gte.cohort_of_unit) @ atts
        out.append(("ATT", float(weights @ atts), psi))
        out.extend((f"ATT g={int(gg)}", est, p) for gg, est, p in per_g)
    elif aggregate == "calendar":
        per_t = []
        for tt in np.unique(t[post]):
            est, psi = _aggregate(gte, np.flatnonzero(post & (t == tt)))
            per_t.append((f"ATT t={int(tt)}", est, psi))
        out.append(("ATT", float(np.mean([p[1] for p in per_t])), np.mean([p[2] for p in per_t], axis=0)))
        out.extend(per_t)
    else:
        raise ValueError(f"aggregate must be simple, group, calendar or dynamic, not {aggregate!r}")
    return out


def _influence_inference(psis: np.ndarray, clusters: np.ndarray, n_units: int, reps: int, seed: int | None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Standard errors and covariance matrix from influence functions (columns = estimates).

    Analytical: V = S'S / n^2 with S the cluster sums of psi. Bootstrap (reps > 0): Mammen multiplier
    weights v_c per cluster, draws (1/n) sum_c v_c S_c; SE = IQR / (z_.75 - z_.25) as R ``did::mboot``;
    the covariance matrix is always the analytical one.
    """
    sums = cluster_sums(psis, clusters)
    vcov = sums.T @ sums / n_units**2
    se = np.sqrt(np.diag(vcov))
    if reps > 0:
        rng = np.random.default_rng(seed)
        # Mammen (1993) two-point weights: mean 0, variance 1, third moment 1.
        k = (np.sqrt(5) + 1) / 2
        p = k / np.sqrt(5)
        draws = []
        for _ in tqdm(range(reps), desc="multiplier bootstrap", leave=False, disable=reps < 2000):
            v = np.where(rng.random(sums.shape[0]) < p, 1 - k, k)
            draws.append(v @ sums / n_units)
        draws = np.asarray(draws)
        q75, q25 = np.quantile(draws, [0.75, 0.25], axis=0)
        se = (q75 - q25) / IQR_TO_SD
    return se, vcov


def _require_finite_se(se: np.ndarray, terms: list[str], spec: Spec) -> None:
    """Stop with a :class:`DataError` naming the spec (file and key) when a standard error is not finite: an
    estimator never writes NaN inference silently."""
    bad = [term for term, s in zip(terms, se) if not np.isfinite(s)]
    if bad:
        raise DataError(spec_file(spec), f"standard error of {', '.join(bad)} is not finite (estimator "
                        f"{spec.estimator!r}); check the sample and `controls`", column="controls")


def att_gt(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Callaway--Sant'Anna (2021) aggregated ATTs (see :func:`group_time_effects` for ATT(g,t)).

    Aggregations follow R ``did::aggte``: ``simple`` = cohort-size-weighted mean of post ATT(g,t);
    ``dynamic`` = per event time e the cohort-size-weighted mean of ATT(g, g+e), overall = mean over e >= 0
    (``event_window`` plays the role of min_e/max_e); ``group`` = per cohort the mean of its post cells,
    overall = cohort-size-weighted mean; ``calendar`` = per year the cohort-size-weighted mean of post cells,
    overall = mean over years. Standard errors from influence functions (clustered by ``cluster``) including
    the estimated-weight term; with ``inference.bootstrap`` a seeded multiplier bootstrap replaces them.
    With ``inference.honest`` rows from :func:`honest_did` on the universal-base event study are appended.
    """
    gte = group_time_effects(df, spec)
    aggregate = spec.aggregate
    terms = _att_gt_aggregations(gte, aggregate, event_window_bounds(spec))
    n_units = len(gte.cohort_of_unit)
    reps = _bootstrap_reps(spec)
    se, _ = _influence_inference(np.column_stack([p for _, _, p in terms]), gte.cluster_of_unit, n_units,
                                 reps, spec.seed)
    _require_finite_se(se, [term for term, _, _ in terms], spec)
    n_clusters = len(pd.unique(gte.cluster_of_unit))
    always, always_text = dropped_always_columns(gte.always_treated_units)
    dropped = gte.units_dropped_unbalanced
    method = (f"att_gt (Callaway-Sant'Anna 2021, outcome regression, {spec.control_group}"
              f" controls, {spec.base_period} base, "
              + (f"multiplier bootstrap {reps} reps" if reps else "analytical influence-function SE")
              + f", t({n_clusters - 1}) with G={n_clusters} clusters)" + always_text
              + (f"; panel balanced (as R did): {len(dropped)} unit(s) not observed in every period dropped: "
                 f"{', '.join(str(u) for u in dropped)}" if dropped else "")
              + (f"; unbalanced panel allowed: {len(gte.units_partial)} unit(s) enter only the cells whose periods "
                 f"they have: {', '.join(str(u) for u in gte.units_partial)}" if gte.units_partial else ""))
    alpha = alpha_level(spec)
    extra = {**always, "n_units_dropped_unbalanced": len(dropped),
             "units_dropped_unbalanced": ";".join(str(u) for u in dropped),
             "n_units_partial": len(gte.units_partial), "units_partial": ";".join(str(u) for u in gte.units_partial)}
    rows = [t_row(term, est, s, alpha, gte.n_obs, method, n_clusters, **extra)
            for (term, est, _), s in zip(terms, se)]
    out = result_frame(rows)
    honest = spec.inference.honest
    if honest:
        event_study, vcov = att_gt_event_study(df, spec)
        out = pd.concat([out, honest_rows(event_study, vcov, honest, alpha, gte.n_obs)], ignore_index=True)
    return out


def att_gt_event_study(df: pd.DataFrame, spec: Spec) -> tuple[pd.DataFrame, np.ndarray]:
    """Dynamic (event-study) aggregation of ATT(g,t) with a universal base period, and its covariance.

    Returns the rows ``ATT e=k`` (k != -1; e = -1 is the reference, identically zero) and the analytical
    cluster-robust covariance matrix of those estimates in the same order -- the inputs :func:`honest_did`
    needs.
    """
    gte = group_time_effects(df, spec, base_period="universal")
    terms = [t for t in _att_gt_aggregations(gte, "dynamic", event_window_bounds(spec)) if t[0] != "ATT"]
    se, vcov = _influence_inference(np.column_stack([p for _, _, p in terms]), gte.cluster_of_unit,
                                    len(gte.cohort_of_unit), 0, None)
    _require_finite_se(se, [term for term, _, _ in terms], spec)
    rows = [_normal_row(term, est, s, alpha_level(spec), gte.n_obs, "att_gt event study (universal base)")
            for (term, est, _), s in zip(terms, se)]
    return result_frame(rows), vcov
