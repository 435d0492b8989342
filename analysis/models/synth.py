"""Synthetic control and synthetic difference-in-differences for a single treated unit.

Both estimators follow the shared estimator contract ``fit(df, spec) -> DataFrame`` (tidy estimates with columns
term, estimate, std_error, p_value, ci_low, ci_high, n_obs, method and extras). ``df`` is a long panel with one
row per ``spec["unit"]`` x ``spec["time"]``; ``spec["treatment"]`` is a 0/1 column that is 1 for exactly one unit
(the treated unit) in its post periods and 0 everywhere else. The pre periods are the times before the treated
unit's first 1; the donors are all other units.

Synthetic control, :func:`synth` (Abadie, Diamond and Hainmueller 2010, JASA 105(490), 493-505)
    Donor weights ``w >= 0, sum(w) = 1`` minimise the pre-period fit of the outcome path,
    ``sum_t v_t (Y_1t - sum_j w_j Y_jt)^2`` over all pre periods ``t`` ("outcome-path matching": every pre-period
    outcome is a predictor; no covariates and no nested optimisation of V). ``v_t = 1`` by default
    (``synth: {v: identity}``); ``v: inverse_variance`` uses ``v_t = 1 / sd_t^2`` with ``sd_t`` the
    cross-unit standard deviation of the outcome in year ``t`` (treated unit included) - the standardisation
    ``pysyncon.Synth`` applies before its ``custom_V``. The quadratic programme and everything below about the
    weights live in :mod:`analysis.models.simplex`.
    Gap ``g_t = Y_1t - synthetic_t``; ATT = mean post-period gap.

    Identification (issue 13). With few pre periods and many donors the treated unit often lies inside the
    donors' convex hull: the fit is perfect and the weights are not unique, so the gaps depend on which of the
    optimal weight vectors a solver returns. Every ATT row carries ``identified_low`` / ``identified_high``, the
    range of that gap (or of the mean gap) over *all* weight vectors with the optimal pre-period fit (linear
    programmes; NaN when the range is a point, ``fit_unique`` True). ``synth: {method: ...}`` picks the weights
    reported: ``auto`` (default) the classic ones where the gaps are identified, else the penalised synthetic
    control of Abadie and L'Hour (2021); ``classic`` always the classic solver's (its choice when not unique);
    ``penalized`` always the penalised ones. ``synth: {penalty: min}`` (default) is the limit ``lambda -> 0+``:
    the best pre-period fit is kept and, among the weights achieving it, the one minimising
    ``sum_j w_j ||x_1 - x_j||^2`` (weight on donors close to the treated unit) is chosen; it equals the classic
    weights wherever those are unique. ``penalty: <number>`` uses that fixed lambda. Columns ``synth_method``,
    ``penalty_lambda``, ``penalty_rule``, ``fit_unique`` (classic gaps identified) and ``weights_unique`` (the
    reported weights' gaps identified) record what was done.

    Inference is placebo-in-space: every donor is in turn treated as the treated unit, with the other donors (the
    real treated unit excluded) as its donor pool and the same weight rule. RMSPE ratio = sqrt(mean post g^2) /
    sqrt(mean pre g^2); the ATT p-value is the share of all units (treated included) whose ratio is at least the
    treated unit's (Abadie et al. 2010, section 3.2 and Figure 8). A pre-period RMSPE within
    ``PERFECT_FIT_TOLERANCE`` (1e-9) of the largest |pre-period outcome| is a perfect fit: RMSPE 0, ratio +inf.
    If the *treated* fit is perfect its ratio is undefined and the ATT row gets no p-value (NaN;
    ``p_value_statistic`` says why) - the rank would only count the placebos that also fit perfectly. The per-year
    p-value is the share of units whose ``|g_t|`` is at least the treated unit's. Every placebo p-value is at least
    ``p_value_floor`` = 1 / (units ranked). Standard errors and confidence intervals are undefined for this design
    and reported as NaN.

    In-time placebos (Abadie, Diamond and Hainmueller 2015, AJPS 59(2), "backdating"): for each pre year ``s``
    with at least two years before it, the treated unit is fitted on the years before ``s`` only and the row
    ``placebo-in-time t0=<s>`` reports its mean gap over ``s`` .. the last real pre year (no post-treatment data
    used), with its own identified range. Gaps of the size of the ATT there mean the ATT is not distinguishable
    from misfit.

    Donors with a missing outcome in any sample period are dropped (listed in ``donors_excluded``); nothing is
    imputed. :func:`synth_fit` also returns the donor weights (with each weight's range over the optimal set and
    the classic solver's weights) and the actual/synthetic paths of the treated unit and every placebo; the
    estimation stage writes them beside the estimates (``<spec>.weights.parquet``, ``<spec>.paths.parquet``).

Synthetic difference-in-differences, :func:`sdid` (Arkhangelsky, Athey, Hirshberg, Imbens and Wager 2021, AER
111(12), 4088-4118, Algorithm 1 and Algorithm 4)
    A transcription of the reference R package ``synthdid`` (v0.0.9): unit weights ``omega`` with intercept and
    ridge penalty ``zeta_omega = ((N1 T1)^(1/4)) * sigma`` where ``sigma`` is the standard deviation of the
    first differences of the donors' pre-period outcomes; time weights ``lambda`` with intercept and
    ``zeta_lambda = 1e-6 sigma``; both solved by Frank-Wolfe (at most 100 iterations, then sparsified - weights
    below max/4 set to zero - then at most 10,000 iterations, stopping when the objective falls by less than
    ``(1e-5 sigma)^2``). ATT = ``(Ybar_1,post - omega'Y_0,post) - (lambda'Y_1,pre - omega'Y_0 lambda)``.
    Standard error by placebo (Algorithm 4): ``reps`` draws, each a random permutation of the donors whose last
    unit plays the treated unit, weights re-estimated (warm-started from the fitted ones as in the R package,
    same zetas); ``se = sqrt((reps - 1) / reps) * sd(placebo estimates)``. p-value and 95% CI are normal
    approximations, ``2 (1 - Phi(|ATT| / se))`` and ``ATT -/+ 1.96 se``. The Frank-Wolfe iterations of all
    placebo draws run together as one batched array computation.
    Checked against the Python port of the R package (``synthdid-py``) and against the published California
    Proposition 99 numbers in tests/test_models_synth_prop99.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.io import DataError
from analysis.models.distributions import norm_ppf, norm_sf
from analysis.models.simplex import check_method, fit_weights, simplex_least_squares  # noqa: F401 (re-exported)
from analysis.paths import ANALYSIS_PANEL

#: Estimator options a spec may set, with their defaults (for the engine's spec validation).
SYNTH_OPTIONS: dict[str, object] = {"v": "identity", "method": "auto", "penalty": "min"}
SDID_OPTIONS: dict[str, object] = {}
#: Inference options each estimator reads from ``spec["inference"]``, with defaults.
SYNTH_INFERENCE_OPTIONS: dict[str, object] = {"placebo": True}
SDID_INFERENCE_OPTIONS: dict[str, object] = {"method": "placebo", "reps": 200}

_SDID_METHOD = (
    "synthetic DiD (Arkhangelsky et al. 2021; R synthdid defaults); placebo standard error "
    "(Algorithm 4, {reps} draws, seed {seed}); normal p-value and 95% CI"
)

#: Pre-period RMSPE at or below this share of the largest |pre-period outcome| counts as a perfect fit.
PERFECT_FIT_TOLERANCE = 1e-9

ESTIMATE_COLUMNS = ["term", "estimate", "std_error", "p_value", "ci_low", "ci_high", "n_obs", "method"]


# ----------------------------------------------------------------------------------------------------------------
# The panel as a matrix with one treated unit
# ----------------------------------------------------------------------------------------------------------------


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


def _source(spec: dict):
    """The file named in error messages: the spec's ``data`` file if it names one, else the analysis panel."""
    return spec.get("data") or ANALYSIS_PANEL


def single_treated_panel(df: pd.DataFrame, spec: dict) -> SingleTreatedPanel:
    """Validate ``df`` for a single-treated-unit design and reshape its outcome into a unit x time matrix.

    Raises :class:`analysis.io.DataError` (file, 1-based record, column) for missing columns, duplicate
    unit-time rows, a treatment that is not 0/1, not exactly one treated unit, a treatment that switches off,
    a missing outcome of the treated unit, fewer than two pre periods or fewer than two complete donors.
    """
    source = _source(spec)
    unit, time, outcome, treatment = spec["unit"], spec["time"], spec["outcome"], spec["treatment"]
    for column in (unit, time, outcome, treatment):
        if column not in df.columns:
            raise DataError(source, f"column {column!r} named in the spec is missing", column=column)
    if spec.get("controls"):
        raise DataError(
            source,
            "synthetic control / synthetic DiD here match on the outcome path only; remove `controls` "
            f"{list(spec['controls'])} from the spec",
            column=str(spec["controls"][0]),
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


# ----------------------------------------------------------------------------------------------------------------
# Synthetic control
# ----------------------------------------------------------------------------------------------------------------


def _v_weights(panel: SingleTreatedPanel, option: str) -> np.ndarray | None:
    if option == "identity":
        return None
    if option == "inverse_variance":
        sd = panel.Y[:, : panel.n_pre].std(axis=0, ddof=1)
        return 1.0 / np.where(sd > 0, sd, 1.0) ** 2
    raise ValueError(f"synth option v must be 'identity' or 'inverse_variance', got {option!r}")


@dataclass(frozen=True)
class SynthResult:
    """Everything a synthetic-control fit produces: tidy estimates, donor weights and the actual/synthetic paths."""

    estimates: pd.DataFrame
    weights: pd.DataFrame
    paths: pd.DataFrame


def _options(spec: dict, key: str, allowed: dict) -> dict:
    given = dict(spec.get(key) or {})
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {key} option(s) {unknown}; allowed: {sorted(allowed)}")
    return {**allowed, **given}


def _perfect(rmspe_pre: np.ndarray, Y_pre: np.ndarray) -> np.ndarray:
    """Pre-period RMSPE within rounding of zero (:data:`PERFECT_FIT_TOLERANCE` x the largest |pre outcome|)."""
    return rmspe_pre <= PERFECT_FIT_TOLERANCE * np.abs(Y_pre).max()


def _in_time_placebos(Y: np.ndarray, T0: int, times: list, v: np.ndarray | None, options: dict) -> list[dict]:
    """Backdated fits of the treated unit: for each pre year ``s`` with at least two years before it, fit on the
    years before ``s`` and report the mean gap over ``s`` .. the last real pre year (no real post data used)."""
    rows = []
    donors, treated = Y[:-1, :T0], Y[-1, :T0]
    for k in range(2, T0):
        fit = fit_weights(donors[:, :k].T, treated[:k], donors[:, k:].T, treated[k:],
                          None if v is None else v[:k], options["method"], options["penalty"], detail=True)
        gap = treated - fit.weights @ donors
        rmspe_pre = float(np.sqrt(np.mean(gap[:k] ** 2)))
        low, high = fit.gap_ranges[-1]
        rows.append({
            "term": f"placebo-in-time t0={times[k]}", "estimate": float(gap[k:].mean()),
            "p_value": np.nan, "p_value_placebo": np.nan, "placebo_rank": np.nan,
            "rmspe_pre": 0.0 if _perfect(np.array([rmspe_pre]), Y[:, :k])[0] else rmspe_pre,
            "rmspe_post": float(np.sqrt(np.mean(gap[k:] ** 2))), "rmspe_ratio": np.nan,
            "identified_low": np.nan if fit.fit_unique else float(low),
            "identified_high": np.nan if fit.fit_unique else float(high),
            "fit_unique": fit.fit_unique, "weights_unique": fit.weights_unique, "synth_method": fit.synth_method,
            "penalty_lambda": fit.penalty_lambda, "penalty_rule": fit.penalty_rule,
            "p_value_statistic": "none: in-time placebo (fake treatment year inside the pre-period)",
            "n_pre_periods": k,
        })
    return rows


def synth_fit(df: pd.DataFrame, spec: dict) -> SynthResult:
    """Fit the synthetic control for the treated unit and (unless ``inference: {placebo: false}``) every placebo.

    See the module docstring for the estimator and the inference. Returns a :class:`SynthResult`.
    """
    options = _options(spec, "synth", SYNTH_OPTIONS)
    check_method(options["method"], options["penalty"])
    inference = _options(spec, "inference", {**SYNTH_INFERENCE_OPTIONS, "method": "placebo"})
    panel = single_treated_panel(df, spec)
    v = _v_weights(panel, str(options["v"]))
    Y, T0 = panel.Y, panel.n_pre
    n_units = Y.shape[0]
    treated_row = n_units - 1
    donor_rows = np.arange(n_units - 1)

    # Row r of `synthetic` is unit r's synthetic path; donors' rows are their placebo fits (same weight rule).
    fit_rows = [treated_row] + (list(donor_rows) if inference["placebo"] else [])
    synthetic = np.full_like(Y, np.nan)
    method_used = np.full(n_units, "", dtype=object)
    treated_fit = None
    for row in fit_rows:
        pool = donor_rows[donor_rows != row]
        fit = fit_weights(Y[pool, :T0].T, Y[row, :T0], Y[pool, T0:].T, Y[row, T0:], v, options["method"],
                          options["penalty"], detail=row == treated_row, weight_ranges=row == treated_row)
        synthetic[row] = fit.weights @ Y[pool]
        method_used[row] = fit.synth_method
        if row == treated_row:
            treated_fit = fit
    gap = Y - synthetic
    rmspe_pre = np.sqrt(np.mean(gap[:, :T0] ** 2, axis=1))
    rmspe_post = np.sqrt(np.mean(gap[:, T0:] ** 2, axis=1))
    # A pre-period fit within rounding of perfect is perfect: its ratio is +inf (not rounding noise), and all
    # perfectly fitted units tie in the placebo ranking.
    perfect_fit = _perfect(rmspe_pre, Y[:, :T0])
    rmspe_pre = np.where(perfect_fit, 0.0, rmspe_pre)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(perfect_fit, np.where(rmspe_post > 0, np.inf, np.nan), rmspe_post / rmspe_pre)
    fitted = np.array(fit_rows)

    def placebo_p(statistic: np.ndarray) -> tuple[float, int, int]:
        """Share (and rank, 1 = largest) of fitted units whose statistic is >= the treated unit's."""
        if not inference["placebo"]:
            return np.nan, 0, 1
        values = statistic[fitted]
        # Ties within floating-point noise count as ties (the treated unit ranks behind them).
        at_least = values >= statistic[treated_row] * (1 - 1e-10) - 1e-300
        return float(at_least.mean()), int(at_least.sum()), len(values)

    times = panel.times
    post_times = times[T0:]
    n_obs = int(Y.size)
    method = (f"synthetic control (Abadie et al. 2010; outcome-path matching on all pre periods, V = {options['v']}; "
              f"weights: {options['method']}, penalty {options['penalty']} (Abadie and L'Hour 2021) where used); "
              "identified_low/high: range over all weights with the optimal pre-period fit (NaN = unique); "
              "p-value from placebo-in-space rank (ATT: post/pre RMSPE ratio, NaN when the treated pre-RMSPE is 0; "
              "per year: |gap|), floor 1/(units ranked); std_error and CI undefined (NaN)")
    treated_perfect = bool(perfect_fit[treated_row])
    if treated_perfect:
        p_att, rank_att, n_placebo_units = np.nan, np.nan, placebo_p(ratio)[2]
        att_statistic = "none: treated pre-RMSPE is 0 (perfect pre-period fit), RMSPE ratio undefined"
    else:
        p_att, rank_att, n_placebo_units = placebo_p(ratio)
        att_statistic = "rmspe_ratio"
    ranges = treated_fit.gap_ranges
    unique = treated_fit.fit_unique
    rows = [{
        "term": "ATT", "estimate": float(gap[treated_row, T0:].mean()), "p_value": p_att,
        "p_value_placebo": p_att, "placebo_rank": rank_att, "p_value_statistic": att_statistic,
        "identified_low": np.nan if unique else float(ranges[-1, 0]),
        "identified_high": np.nan if unique else float(ranges[-1, 1]),
    }]
    for j, t in enumerate(post_times):
        p_t, rank_t, _ = placebo_p(np.abs(gap[:, T0 + j]))
        rows.append({"term": f"ATT t={t}", "estimate": float(gap[treated_row, T0 + j]), "p_value": p_t,
                     "p_value_placebo": p_t, "placebo_rank": rank_t, "p_value_statistic": "abs_gap",
                     "identified_low": np.nan if unique else float(ranges[j, 0]),
                     "identified_high": np.nan if unique else float(ranges[j, 1])})
    estimates = pd.DataFrame(rows).assign(
        rmspe_pre=float(rmspe_pre[treated_row]), rmspe_post=float(rmspe_post[treated_row]),
        rmspe_ratio=float(ratio[treated_row]), fit_unique=unique, weights_unique=treated_fit.weights_unique,
        synth_method=treated_fit.synth_method, penalty_lambda=treated_fit.penalty_lambda,
        penalty_rule=treated_fit.penalty_rule, n_pre_periods=T0,
    )
    if not inference["placebo"]:
        estimates["p_value_statistic"] = "none: placebo inference off"
    in_time = pd.DataFrame(_in_time_placebos(Y, T0, times, v, options))
    estimates = pd.concat([estimates, in_time], ignore_index=True)
    placebo_units = fitted[fitted != treated_row]
    estimates = estimates.assign(
        std_error=np.nan, ci_low=np.nan, ci_high=np.nan, n_obs=n_obs, method=method,
        n_units_ranked=n_placebo_units,
        p_value_floor=1.0 / n_placebo_units if inference["placebo"] else np.nan,
        n_placebos_perfect_fit=int(perfect_fit[placebo_units].sum()),
        n_placebos_penalized=int((method_used[placebo_units] == "penalized").sum()),
        treated_unit=panel.treated_unit, first_treated_time=panel.first_treated_time,
        n_donors=panel.n_donors, donors_excluded=",".join(str(u) for u in panel.donors_excluded),
    )
    estimates["placebo_rank"] = estimates["placebo_rank"].astype(float)
    front = ESTIMATE_COLUMNS + ["rmspe_pre", "rmspe_post", "rmspe_ratio", "p_value_placebo", "placebo_rank",
                                "identified_low", "identified_high"]
    estimates = estimates[front + [c for c in estimates.columns if c not in front]]

    weights = pd.DataFrame({"unit": panel.units[:-1], "weight": treated_fit.weights,
                            "weight_min": treated_fit.weight_ranges[:, 0],
                            "weight_max": treated_fit.weight_ranges[:, 1],
                            "weight_classic": treated_fit.classic_weights})
    path_frames = []
    for row in fit_rows:
        path_frames.append(pd.DataFrame({
            "unit": panel.units[row], "time": times, "actual": Y[row], "synthetic": synthetic[row],
            "gap": gap[row], "post": np.arange(len(times)) >= T0,
            "role": "treated" if row == treated_row else "placebo",
            "rmspe_pre": rmspe_pre[row], "rmspe_ratio": ratio[row], "synth_method": method_used[row],
        }))
    paths = pd.concat(path_frames, ignore_index=True)
    return SynthResult(estimates=estimates.reset_index(drop=True), weights=weights, paths=paths)


def synth(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Synthetic-control estimates (ATT and per-year gaps) under the estimator contract; see the module docstring."""
    return synth_fit(df, spec).estimates


def synth_outputs(df: pd.DataFrame, spec: dict) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Estimates and the companion tables the estimation stage writes beside them (``paths``, ``weights``)."""
    result = synth_fit(df, spec)
    return result.estimates, {"paths": result.paths, "weights": result.weights}


def synth_paths(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Actual and synthetic outcome paths of the treated unit (role 'treated') and of every placebo (role 'placebo').

    Columns: unit, time, actual, synthetic, gap, post, role, rmspe_pre, rmspe_ratio, synth_method.
    """
    return synth_fit(df, spec).paths


def synth_weights(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Donor weights of the treated unit's synthetic control: unit, weight (reported; they sum to 1), weight_min and
    weight_max (range over all weights with the optimal pre-period fit), weight_classic (the classic solver's)."""
    return synth_fit(df, spec).weights


# ----------------------------------------------------------------------------------------------------------------
# Synthetic difference-in-differences
# ----------------------------------------------------------------------------------------------------------------


def _frank_wolfe_batch(Y: np.ndarray, zeta: float, x0: np.ndarray, min_decrease: float, max_iter: int,
                       intercept: bool = True) -> np.ndarray:
    """R synthdid's ``sc.weight.fw`` for a batch of problems at once.

    ``Y`` has shape (batch, rows, n + 1): for each problem the first ``n`` columns are ``A`` and the last is
    ``b``; the problem is ``min_x zeta^2 |x|^2 + |A x - b|^2 / rows`` over the simplex, by Frank-Wolfe with exact
    line search, starting at ``x0`` (batch, n). Each problem stops on its own when its objective falls by no more
    than ``min_decrease^2`` (after at least two steps) or after ``max_iter`` steps, exactly as in the R code.
    """
    Y = np.array(Y, dtype=float, copy=True)
    if intercept:
        Y -= Y.mean(axis=1, keepdims=True)
    A, b = Y[:, :, :-1], Y[:, :, -1]
    batch, rows, n = A.shape
    eta = rows * zeta**2
    gram = A.transpose(0, 2, 1) @ A
    Atb = np.einsum("brn,br->bn", A, b)
    x = np.array(x0, dtype=float, copy=True)
    previous = np.full(batch, np.inf)
    active = np.ones(batch, dtype=bool)
    problems = np.arange(batch)
    for step_number in range(1, max_iter + 1):
        if step_number % 200 == 1:
            # Recompute the running quantities exactly now and then so rounding cannot drift.
            Ax = np.einsum("brn,bn->br", A, x)
            grad = np.einsum("br,brn->bn", Ax - b, A)  # A'(Ax - b): half the gradient of the fit term
        half_grad = grad + eta * x
        i = np.argmin(half_grad, axis=1)
        dx = -x
        dx[problems, i] += 1.0
        d_err = A[problems, :, i] - Ax
        denominator = (d_err**2).sum(axis=1) + eta * (dx**2).sum(axis=1)
        numerator = -(half_grad * dx).sum(axis=1)
        # denominator 0 <=> dx == 0: already at the vertex, where R returns x unchanged; finished problems stay put.
        moving = active & (denominator > 0)
        step = np.where(moving, np.clip(numerator / np.where(moving, denominator, 1.0), 0.0, 1.0), 0.0)
        x += step[:, None] * dx
        Ax += step[:, None] * d_err
        # A' d_err = G[:, i] - A'A x = G[:, i] - (grad + A'b)
        grad += step[:, None] * (gram[problems, :, i] - grad - Atb)
        value = zeta**2 * (x**2).sum(axis=1) + ((Ax - b) ** 2).sum(axis=1) / rows
        done = active & (step_number >= 2) & (previous - value <= min_decrease**2)
        previous = np.where(active, value, previous)
        active &= ~done
        if not active.any():
            break
    return x


def _sparsify(weights: np.ndarray) -> np.ndarray:
    """R synthdid's ``sparsify_function``, row-wise: zero weights <= max/4 and renormalise."""
    w = np.where(weights <= weights.max(axis=1, keepdims=True) / 4, 0.0, weights)
    return w / w.sum(axis=1, keepdims=True)


def _sum_normalise(weights: np.ndarray) -> np.ndarray:
    total = weights.sum(axis=1, keepdims=True)
    uniform = np.full_like(weights, 1.0 / weights.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total != 0, weights / np.where(total != 0, total, 1.0), uniform)


@dataclass(frozen=True)
class SdidFit:
    """Batched synthetic-DiD fits: ``tau`` (batch,), per-post-period effects ``curve`` (batch, T1), weights."""

    tau: np.ndarray
    curve: np.ndarray
    omega: np.ndarray
    lambda_: np.ndarray


def sdid_weights_batch(Y: np.ndarray, n_pre: int, zeta_omega: float, zeta_lambda: float, min_decrease: float,
                       omega0: np.ndarray | None = None, lambda0: np.ndarray | None = None,
                       max_iter: int = 10_000, max_iter_pre_sparsify: int = 100) -> SdidFit:
    """Synthetic-DiD weights and estimates for a batch of panels with one treated unit in the last row.

    ``Y`` has shape (batch, N0 + 1, T). Follows R synthdid's ``synthdid_estimate`` (both intercepts, sparsify).
    """
    Y = np.asarray(Y, dtype=float)
    batch, n_units, n_times = Y.shape
    n0, t0 = n_units - 1, n_pre
    controls, treated = Y[:, :n0, :], Y[:, n0, :]
    # Collapsed form: donors' pre outcomes and post means; the treated row's pre outcomes and post mean.
    lambda_problem = np.concatenate([controls[:, :, :t0], controls[:, :, t0:].mean(axis=2, keepdims=True)], axis=2)
    omega_problem = np.concatenate([controls[:, :, :t0], treated[:, None, :t0]], axis=1).transpose(0, 2, 1)
    lam = np.full((batch, t0), 1.0 / t0) if lambda0 is None else np.array(lambda0, dtype=float)
    om = np.full((batch, n0), 1.0 / n0) if omega0 is None else np.array(omega0, dtype=float)
    lam = _frank_wolfe_batch(lambda_problem, zeta_lambda, lam, min_decrease, max_iter_pre_sparsify)
    lam = _frank_wolfe_batch(lambda_problem, zeta_lambda, _sparsify(lam), min_decrease, max_iter)
    om = _frank_wolfe_batch(omega_problem, zeta_omega, om, min_decrease, max_iter_pre_sparsify)
    om = _frank_wolfe_batch(omega_problem, zeta_omega, _sparsify(om), min_decrease, max_iter)
    # Effect curve (synthdid_effect_curve): post gap minus the lambda-weighted pre gap.
    gap = treated - np.einsum("bn,bnt->bt", om, controls)
    curve = gap[:, t0:] - np.einsum("bt,bt->b", lam, gap[:, :t0])[:, None]
    return SdidFit(tau=curve.mean(axis=1), curve=curve, omega=om, lambda_=lam)


def sdid_estimate(Y: np.ndarray, n_pre: int, reps: int = 200, seed: int = 0) -> dict:
    """Synthetic DiD on a matrix ``Y`` (donors first, the one treated unit last) with placebo standard errors.

    Returns dict(tau, curve, omega, lambda_, se, curve_se, placebo_taus, noise_level, zeta_omega, zeta_lambda).
    ``reps = 0`` skips the placebo (se NaN). The placebo draws use ``np.random.default_rng(seed)``.
    """
    Y = np.asarray(Y, dtype=float)
    n0 = Y.shape[0] - 1
    t1 = Y.shape[1] - n_pre
    noise_level = float(np.std(np.diff(Y[:n0, :n_pre], axis=1), ddof=1))
    zeta_omega = (1 * t1) ** 0.25 * noise_level  # eta_omega = (N1 T1)^(1/4), N1 = 1
    zeta_lambda = 1e-6 * noise_level
    min_decrease = 1e-5 * noise_level
    fit = sdid_weights_batch(Y[None], n_pre, zeta_omega, zeta_lambda, min_decrease)
    out = {"tau": float(fit.tau[0]), "curve": fit.curve[0], "omega": fit.omega[0], "lambda_": fit.lambda_[0],
           "noise_level": noise_level, "zeta_omega": zeta_omega, "zeta_lambda": zeta_lambda,
           "se": np.nan, "curve_se": np.full(t1, np.nan), "placebo_taus": np.array([])}
    if reps > 0:
        if n0 < 2:
            raise ValueError("placebo standard errors need at least 2 donors")
        rng = np.random.default_rng(seed)
        # One permutation of the donors per draw, drawn one at a time as R's sample(1:N0) and diff-diff do, so
        # that a seed gives the same placebo draws as diff_diff.SyntheticDiD(seed=...).
        permutations = np.stack([rng.permutation(n0) for _ in range(reps)])
        placebo_Y = Y[:n0][permutations]  # last donor of each permutation plays the treated unit
        omega0 = _sum_normalise(fit.omega[0][permutations[:, :-1]])
        lambda0 = np.repeat(fit.lambda_, reps, axis=0)
        placebo = sdid_weights_batch(placebo_Y, n_pre, zeta_omega, zeta_lambda, min_decrease,
                                     omega0=omega0, lambda0=lambda0)
        factor = np.sqrt((reps - 1) / reps)
        out["se"] = float(factor * np.std(placebo.tau, ddof=1))
        out["curve_se"] = factor * np.std(placebo.curve, axis=0, ddof=1)
        out["placebo_taus"] = placebo.tau
    return out


def sdid(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Synthetic-DiD estimates (ATT and per-year effects) under the estimator contract; see the module docstring.

    Reads ``spec["inference"]`` keys ``method`` ('placebo') and ``reps`` (default 200) and ``spec["seed"]``.
    """
    _options(spec, "sdid", SDID_OPTIONS)
    inference = _options(spec, "inference", SDID_INFERENCE_OPTIONS)
    if inference["method"] != "placebo":
        raise ValueError(f"sdid supports inference method 'placebo' only, got {inference['method']!r}")
    reps, seed = int(inference["reps"]), int(spec["seed"])
    panel = single_treated_panel(df, spec)
    result = sdid_estimate(panel.Y, panel.n_pre, reps=reps, seed=seed)
    z = norm_ppf(0.975)
    post_times = panel.times[panel.n_pre:]
    terms = ["ATT"] + [f"ATT t={t}" for t in post_times]
    estimate = np.concatenate([[result["tau"]], result["curve"]])
    se = np.concatenate([[result["se"]], result["curve_se"]])
    with np.errstate(invalid="ignore", divide="ignore"):
        p_value = 2 * norm_sf(np.abs(estimate / se))
    estimates = pd.DataFrame({
        "term": terms, "estimate": estimate, "std_error": se, "p_value": p_value,
        "ci_low": estimate - z * se, "ci_high": estimate + z * se, "n_obs": int(panel.Y.size),
        "method": _SDID_METHOD.format(reps=reps, seed=seed),
        "treated_unit": panel.treated_unit, "first_treated_time": panel.first_treated_time,
        "n_pre_periods": panel.n_pre, "n_donors": panel.n_donors, "reps": reps,
        "noise_level": result["noise_level"], "zeta_omega": result["zeta_omega"],
        "donors_excluded": ",".join(str(u) for u in panel.donors_excluded),
    })
    return estimates


def sdid_weights(df: pd.DataFrame, spec: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Synthetic-DiD unit weights (unit, omega) and time weights (time, lambda) of the fitted (not placebo) model."""
    panel = single_treated_panel(df, spec)
    result = sdid_estimate(panel.Y, panel.n_pre, reps=0)
    return (pd.DataFrame({"unit": panel.units[:-1], "omega": result["omega"]}),
            pd.DataFrame({"time": panel.times[: panel.n_pre], "lambda": result["lambda_"]}))
