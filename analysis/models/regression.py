"""Linear regressions with fixed effects and few-cluster-honest inference: feols, cont_did, event_study.

The regressions are fitted by :func:`analysis.models.ols.ols_fe` (fixed effects by the Frisch–Waugh–Lovell
theorem; the covariance estimators and their small-sample conventions are described there).

Wild cluster bootstrap and randomization inference p-values are added when the spec asks for them, from
:mod:`analysis.models.inference` (imported only then).

Unit-specific linear trends (``trends: unit_linear`` in a spec): regressors d_i · (t − t̄) for every unit i
(d_i the unit dummy, t̄ the mean period of the rows used), appended after the treatment and the controls, so
y_it = β·x_it + α_i + γ_t + δ_i·(t − t̄) + ε_it. With period effects one slope is collinear (Σ_i d_i (t − t̄) is
spanned by the period dummies) and is dropped like any collinear regressor. The slopes are estimated as ordinary
regressors — K counts them (fixest's ``unit[time]`` slopes, by contrast, may be discounted as nested in unit
clusters; counting them is the conservative choice: standard errors larger by √((N−K)/(N−K−S)) for S
slopes, ≈ 8 % on our headline panel) — and they stay in X for the wild cluster bootstrap, so the restricted bootstrap refits them in every draw
exactly as a dummy-variable WCR with trend regressors does. They are not reported (terms ``trend:<unit>=<id>``
are dropped from the tidy output); the ``method`` column says that trends were included and how many.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.io import DataError
from analysis.models.distributions import t_ppf, t_sf
from analysis.models.ols import OLSResult, ols_fe
from analysis.models.spec import Spec, control_column, control_name

CONFIDENCE = 0.95
# Name prefix of the unit-trend regressors (never reported in the tidy output).
TREND_PREFIX = "trend:"


def tidy_rows(terms: list[str], estimate: np.ndarray, std_error: np.ndarray, df_t: int, n_obs: int,
              method: str, **extra) -> pd.DataFrame:
    """The contract's tidy frame: term, estimate, std_error, statistic, p_value, ci_low, ci_high, n_obs, method."""
    estimate = np.asarray(estimate, dtype=float)
    std_error = np.asarray(std_error, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = estimate / std_error
    p_value = 2 * t_sf(np.abs(statistic), df_t)
    half = t_ppf(0.5 + CONFIDENCE / 2, df_t) * std_error
    frame = pd.DataFrame({
        "term": terms, "estimate": estimate, "std_error": std_error, "statistic": statistic, "p_value": p_value,
        "ci_low": estimate - half, "ci_high": estimate + half, "n_obs": int(n_obs), "method": method,
        "df_t": int(df_t),
    })
    for key, value in extra.items():
        frame[key] = value
    return frame


def result_table(fit: OLSResult, method_prefix: str, report: list[str] | None = None) -> pd.DataFrame:
    """Tidy rows for the regressors in ``report`` (default all) of an :class:`OLSResult`."""
    index = [i for i, name in enumerate(fit.names)
             if (report is None or name in report) and not name.startswith(TREND_PREFIX)]
    se = fit.std_error
    method = f"{method_prefix}; {method_string(fit)}"
    n_trends = sum(name.startswith(TREND_PREFIX) for name in fit.names)
    if n_trends:
        method += (f"; unit-specific linear trends ({n_trends} slopes estimated, "
                   f"{sum(n.startswith(TREND_PREFIX) for n in fit.dropped)} collinear with the period effects)")
    dropped = [name for name in fit.dropped if not name.startswith(TREND_PREFIX)]
    if dropped:
        method += f"; collinear with the fixed effects or earlier regressors and dropped: {', '.join(dropped)}"
    return tidy_rows([fit.names[i] for i in index], fit.coef[index], se[index], fit.df_t, fit.n_obs, method,
                     n_clusters=fit.n_clusters if fit.n_clusters is not None else np.nan,
                     dropped_collinear=";".join(dropped))


def method_string(fit: OLSResult) -> str:
    """Human-readable inference description for the ``method`` column."""
    if fit.vcov_label == "CRV1":
        return (f"CRV1 by cluster (fixest small-sample: G/(G-1)*(N-1)/(N-K), G={fit.n_clusters}, "
                f"K={fit.k_ssc}), t({fit.df_t})")
    return f"{fit.vcov_label}, t({fit.df_t})"


def linear_combination(fit: OLSResult, weights: dict[str, float]) -> tuple[float, float]:
    """(a'β, √(a'Va)) for regressor weights ``weights`` (names absent from the fit are an error)."""
    a = np.zeros(len(fit.names))
    for name, w in weights.items():
        a[fit.names.index(name)] = w
    return float(a @ fit.coef), float(np.sqrt(a @ fit.vcov @ a))


# --------------------------------------------------------------------------------------------------------------
# Building designs from a spec


def fe_codes_for(df: pd.DataFrame, fixed_effects: list[str]) -> list[np.ndarray]:
    """Integer codes (sorted levels, so deterministic) for each fixed effect; ``a^b`` interacts columns."""
    codes = []
    for fe in fixed_effects:
        parts = fe.split("^")
        key = df[parts[0]].astype(str)
        for part in parts[1:]:
            key = key + "^" + df[part].astype(str)
        codes.append(pd.factorize(key, sort=True)[0])
    return codes


def control_matrix(df: pd.DataFrame, controls: list[str]) -> tuple[np.ndarray, list[str]]:
    """Control columns (``log(x)`` applied) and their names; nonpositive values under log are NaN here and
    rejected by :func:`check_log_domain` before estimation."""
    cols, names = [], []
    for control in controls:
        column, transform = control_column(control)
        values = df[column].to_numpy(dtype=float)
        if transform == "log":
            with np.errstate(divide="ignore", invalid="ignore"):
                values = np.where(values > 0, np.log(values), np.nan)
        cols.append(values)
        names.append(control_name(control))
    return (np.column_stack(cols) if cols else np.empty((len(df), 0))), names


def unit_trend_matrix(df: pd.DataFrame, unit: str, time: str) -> tuple[np.ndarray, list[str]]:
    """Unit-specific linear trends: column i is 1[unit = i] · (t − t̄), t̄ the mean of ``time`` over ``df``'s rows
    (centring only changes the unit effects, not the other coefficients); names ``trend:<unit>=<id>``, units in
    sorted order. ``df`` must hold only the rows used (so t̄ is their mean)."""
    levels = sorted(df[unit].dropna().unique().tolist())
    t = df[time].to_numpy(dtype=float)
    centred = t - t.mean()
    cols = [np.where(df[unit].to_numpy() == level, centred, 0.0) for level in levels]
    return np.column_stack(cols), [f"{TREND_PREFIX}{unit}={level}" for level in levels]


def fit_design(df: pd.DataFrame, spec: Spec, regressors: np.ndarray, names: list[str]) -> tuple[OLSResult, pd.DataFrame]:
    """Add controls (and unit trends when ``trends: unit_linear``), drop incomplete rows, and run :func:`ols_fe`
    with the spec's FE, cluster and vcov.

    Returns the fit and the rows used (for the inference hooks).
    """
    controls, control_names = control_matrix(df, spec.controls)
    X = np.column_stack([regressors, controls]) if controls.size else regressors
    all_names = list(names) + control_names
    y = df[spec.outcome].to_numpy(dtype=float)
    fe_cols = sorted({part for fe in spec.fixed_effects for part in fe.split("^")})
    complete = np.isfinite(y) & np.isfinite(X).all(axis=1)
    trend_cols = [spec.unit] if spec.trends == "unit_linear" else []
    for column in fe_cols + [spec.cluster, spec.time] + trend_cols:
        complete &= df[column].notna().to_numpy()
    used = df.loc[complete]
    if spec.trends == "unit_linear" and len(used):
        # Built on the complete rows only, after the treatment and controls, so that the one slope that is
        # collinear with the period effects is the one dropped (ols_fe drops later collinear columns).
        trends, trend_names = unit_trend_matrix(used, spec.unit, spec.time)
        X = np.column_stack([X[complete], trends])
        y = y[complete]
        all_names += trend_names
        complete = np.ones(len(used), dtype=bool)
    if len(used) == 0:
        raise ValueError(f"spec {spec.id}: no complete rows for {spec.outcome} and its regressors")
    inference = spec.inference
    try:
        fit = _ols_fe_for_spec(y, X, complete, all_names, used, spec, inference)
    except ValueError as exc:
        if not str(exc).startswith("every regressor is collinear"):
            raise
        files = spec.spec_files or [spec.id or "spec"]
        raise DataError(files[0], f"requested term(s) {', '.join(names)} are collinear with the fixed effects "
                        f"{spec.fixed_effects} and cannot be estimated ({exc})", key="treatment") from None
    lost = [name for name in names if name in fit.dropped]
    if lost:
        key = "event_window" if any(name.startswith("e=") for name in lost) else (
            "heterogeneity" if spec.heterogeneity else "treatment")
        files = spec.spec_files or [spec.id or "spec"]
        raise DataError(files[0], f"requested term(s) {', '.join(lost)} are collinear with the fixed effects "
                        f"{spec.fixed_effects} or the other regressors and cannot be estimated (a dropped treatment "
                        "term is an error, not a missing row)", key=key)
    return fit, used


def _ols_fe_for_spec(y, X, complete, all_names, used, spec, inference) -> OLSResult:
    """:func:`ols_fe` with the spec's fixed effects, clusters, covariance and bandwidth on the complete rows."""
    return ols_fe(
        y[complete], X[complete], all_names,
        fe_codes=fe_codes_for(used, spec.fixed_effects),
        clusters=pd.factorize(used[spec.cluster], sort=True)[0],
        vcov=inference.vcov,
        time_codes=pd.factorize(used[spec.time], sort=True)[0],
        bandwidth=inference.bandwidth,
    )


def heterogeneity_levels(df: pd.DataFrame, column: str) -> list:
    """Sorted levels of a heterogeneity column."""
    return sorted(df[column].dropna().unique().tolist())


def shock_period(df: pd.DataFrame, spec: Spec) -> int:
    """First period with ``treatment == 1`` for a common-timing post indicator (same for every unit)."""
    treat, time = spec.treatment, spec.time
    by_time = df.groupby(time)[treat].agg(["min", "max"])
    if (by_time["min"] != by_time["max"]).any():
        raise ValueError(f"{treat!r} varies across units within a period; cont_did's event-study form needs a "
                         f"common post indicator")
    post = by_time.index[by_time["max"] == 1]
    if len(post) == 0:
        raise ValueError(f"{treat!r} is never 1 in the sample")
    return int(post.min())


def event_dummies(event_time: np.ndarray, window: list[int], reference: int, scale: np.ndarray | None = None
                  ) -> tuple[np.ndarray, list[str]]:
    """Event-time dummies e=k for k in the window except the reference; times beyond the window are binned
    into the end points; NaN event time (never treated) gives zeros. ``scale`` multiplies each row (exposure)."""
    binned = np.clip(event_time, window[0], window[1])
    ks = [k for k in range(window[0], window[1] + 1) if k != reference]
    cols = [np.where(np.isnan(binned), 0.0, (binned == k).astype(float)) for k in ks]
    X = np.column_stack(cols)
    if scale is not None:
        X = X * scale[:, None]
    return X, [f"e={k}" for k in ks]


def add_att_row(table: pd.DataFrame, fit: OLSResult, method: str) -> pd.DataFrame:
    """Append ``ATT``: the equally weighted mean of the post-period coefficients e=0, e=1, … present in the fit."""
    post = [name for name in fit.names if name.startswith("e=") and int(name[2:]) >= 0]
    if not post:
        return table
    est, se = linear_combination(fit, {name: 1 / len(post) for name in post})
    row = tidy_rows(["ATT"], [est], [se], fit.df_t, fit.n_obs,
                    f"{method}; ATT = mean of e>=0 coefficients ({', '.join(post)})",
                    n_clusters=fit.n_clusters if fit.n_clusters is not None else np.nan)
    return pd.concat([table, row], ignore_index=True)


def add_honest_rows(table: pd.DataFrame, fit: OLSResult, spec: Spec) -> pd.DataFrame:
    """Append Rambachan–Roth (2023) sensitivity rows when the spec sets ``inference.honest`` (event-study forms).

    The event-time coefficients ``e=k`` and their block of the covariance (the spec's ``inference.vcov``, CRV1 by
    default) go to :func:`analysis.models.honest_did.honest_did` exactly as the staggered estimators' event studies
    do; terms ``honest SD M=... average`` etc. The robust sets use normal critical values (as Rambachan and Roth),
    while this module's own intervals use t(G − 1): with 31 clusters the sets are ~4% narrower than a t-based
    version would be. Event times binned at the ends of ``event_window`` are treated as single periods, so set the
    window to cover the sample (as the shipped specs do) before reading the smoothness bounds.
    """
    honest = spec.inference.honest
    if not honest:
        return table
    from analysis.models.honest_did import honest_rows

    names = [name for name in fit.names if name.startswith("e=")]
    idx = [fit.names.index(name) for name in names]
    event_study = pd.DataFrame({"term": [f"ATT {name}" for name in names], "estimate": fit.coef[idx]})
    rows = honest_rows(event_study, fit.vcov[np.ix_(idx, idx)], honest, 1 - CONFIDENCE, fit.n_obs)
    return pd.concat([table, rows], ignore_index=True)


# --------------------------------------------------------------------------------------------------------------
# Estimators (contract: fit(df, spec) -> tidy DataFrame)


def _treatment_design(df: pd.DataFrame, spec: Spec, base: np.ndarray, base_name: str) -> tuple[np.ndarray, list[str]]:
    """The regressor of interest, or its interaction with each level of ``heterogeneity``."""
    het = spec.heterogeneity
    if het is None:
        return base[:, None], [base_name]
    cols, names = [], []
    for level in heterogeneity_levels(df, het):
        cols.append(base * (df[het] == level).to_numpy(dtype=float))
        names.append(f"{base_name}:{het}={level}")
    return np.column_stack(cols), names


def add_level_clusters(table: pd.DataFrame, used: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """With ``heterogeneity``: column ``n_clusters_level`` = the number of clusters (provinces) among the rows used
    that have the term's level, i.e. how many clusters identify that interaction (NaN for other terms). A
    coefficient identified from 5–7 clusters has unreliable CRV1 inference even when G is 31 (MacKinnon & Webb
    2017, JAE 32(2)), so tables print this count."""
    het = spec.heterogeneity
    if het is None:
        return table
    counts = used.groupby(het)[spec.cluster].nunique()
    suffix = {f":{het}={level}": int(n) for level, n in counts.items()}
    table["n_clusters_level"] = [next((float(n) for end, n in suffix.items() if term.endswith(end)), np.nan)
                                 for term in table["term"]]
    return table


def feols(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """OLS of ``outcome`` on ``treatment`` (per ``heterogeneity`` level if set) and ``controls`` with
    ``fixed_effects``; reports every non-FE regressor. Inference: ``inference.vcov`` (see module docstring)."""
    base = df[spec.treatment].to_numpy(dtype=float)
    X, names = _treatment_design(df, spec, base, spec.treatment)
    fit, used = fit_design(df, spec, X, names)
    table = add_level_clusters(result_table(fit, f"feols FE[{', '.join(spec.fixed_effects)}]"), used, spec)
    return add_resampling_pvalues(table, fit, used, spec, names, data=df)


def cont_did(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Continuous-exposure difference in differences: y_it = β · exposure_i × post_t + FE + controls + ε.

    ``aggregate: dynamic`` gives the event-study form: exposure_i × 1[t − t* = k] for event times k in
    ``event_window`` except ``reference_period`` (t* = first period of the common post indicator ``treatment``;
    times outside the window binned into the end points), reported as terms ``e=k`` plus ``ATT`` (mean of e ≥ 0).
    β is the effect per unit of exposure (per standard deviation for the ``*_z`` exposures).
    """
    exposure = df[spec.exposure].to_numpy(dtype=float)
    if spec.aggregate == "dynamic":
        t_star = shock_period(df, spec)
        event_time = (df[spec.time].to_numpy(dtype=float) - t_star)
        X, names = event_dummies(event_time, spec.event_window, spec.reference_period, scale=exposure)
        fit, used = fit_design(df, spec, X, names)
        method = (f"cont_did event study ({spec.exposure} x 1[{spec.time}-{t_star}=k]) "
                  f"FE[{', '.join(spec.fixed_effects)}]")
        table = result_table(fit, method)
        table = add_att_row(table, fit, f"{method}; {method_string(fit)}")
        table = add_resampling_pvalues(table, fit, used, spec, [n for n in fit.names if n.startswith("e=")], data=df)
        return add_honest_rows(table, fit, spec)
    base = exposure * df[spec.treatment].to_numpy(dtype=float)
    X, names = _treatment_design(df, spec, base, f"{spec.exposure}:{spec.treatment}")
    fit, used = fit_design(df, spec, X, names)
    table = result_table(fit, f"cont_did ({spec.exposure} x {spec.treatment}) FE[{', '.join(spec.fixed_effects)}]")
    table = add_level_clusters(table, used, spec)
    return add_resampling_pvalues(table, fit, used, spec, names, data=df)


def cohort_event_time(df: pd.DataFrame, spec: Spec) -> np.ndarray:
    """time − cohort for units with a positive cohort; NaN for never treated (cohort 0 or missing)."""
    cohort = df[spec.cohort].to_numpy(dtype=float)
    time = df[spec.time].to_numpy(dtype=float)
    treated = np.isfinite(cohort) & (cohort > 0)
    return np.where(treated, time - np.where(treated, cohort, 0.0), np.nan)


def event_study(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Two-way fixed-effects event study on first-treatment cohorts: y_it = Σ_k β_k 1[t − g_i = k] + FE + ε.

    Never-treated units (cohort 0/missing) have all dummies zero; ``reference_period`` (default −1) is omitted;
    event times beyond ``event_window`` are binned into its end points. Terms ``e=k`` and ``ATT`` (equally
    weighted mean of e ≥ 0). With staggered timing and heterogeneous effects these TWFE weights can be
    negative (Goodman-Bacon 2021; Sun & Abraham 2021) — compare with att_gt/sunab/did_imputation.
    """
    event_time = cohort_event_time(df, spec)
    X, names = event_dummies(event_time, spec.event_window, spec.reference_period)
    fit, used = fit_design(df, spec, X, names)
    method = f"TWFE event study (cohort {spec.cohort}) FE[{', '.join(spec.fixed_effects)}]"
    table = result_table(fit, method)
    table = add_att_row(table, fit, f"{method}; {method_string(fit)}")
    table = add_resampling_pvalues(table, fit, used, spec, [n for n in fit.names if n.startswith("e=")], data=df)
    return add_honest_rows(table, fit, spec)


# --------------------------------------------------------------------------------------------------------------
# Resampling inference hooks (other module; imported only when asked for)


def add_resampling_pvalues(table: pd.DataFrame, fit: OLSResult, used: pd.DataFrame, spec: Spec,
                           terms: list[str], data: pd.DataFrame | None = None) -> pd.DataFrame:
    """Add ``p_value_wild`` and ``p_value_ri`` when the spec's inference asks for them.

    Wild cluster bootstrap (restricted, WCR) for each of ``terms``: ``inference.wild_bootstrap_pvalue`` on the
    FE-residualised outcome and regressors (FWL) with ``n_absorbed`` = the non-nested fixed-effect parameters, so
    its t uses the same fixest factor as our CRV1, and with the fixed-effect codes, so that effects not nested in
    the clusters (year effects with province clusters; the intercept when there are no effects) are annihilated
    inside every bootstrap refit, as in the dummy-variable bootstrap (wildboottest via pyfixest).
    Randomization inference for the single treatment regressor of feols / static cont_did with two-way
    (unit, time) effects: ``inference.ri_pvalue`` permutes the treatment path (cont_did: exposure x post, i.e.
    the exposure) across units and re-estimates the TWFE coefficient. The paths are taken from ``data`` (the whole
    sample, rows with a missing outcome included; ``used`` if not given), so a unit observed in fewer years (Tibet
    before 2017) can receive, and pass on, a complete treatment path: the statistic is computed on the rows with an
    observed outcome, the permutation is over the full sample's paths.
    """
    inference = spec.inference
    wild, ri = inference.wild_bootstrap, inference.ri
    if wild is None and ri is None:
        return table
    from analysis.models import inference as module  # only when asked for: keeps plain fits' imports small

    terms = [t for t in terms if t in fit.names]
    if wild is not None:
        n_absorbed = fit.k_ssc - len(fit.names)
        # The effects that were partialled out (ols_fe: an intercept when the spec lists none).
        absorbed = fe_codes_for(used, spec.fixed_effects) or [np.zeros(len(used), dtype=np.int64)]
        pvals = {}
        for term in terms:
            result = module.wild_bootstrap_pvalue(
                fit.y_tilde, fit.x_tilde, fit.clusters, fit.names.index(term), reps=wild.reps,
                weights=wild.weights, seed=spec.seed, n_absorbed=n_absorbed, fixed_effects=absorbed)
            pvals[term] = float(result["p_value"])
        table["p_value_wild"] = table["term"].map(pvals).astype(float)
        table["method"] = table["method"].where(
            ~table["term"].isin(list(pvals)),
            table["method"] + f"; wild cluster bootstrap WCR ({wild.weights}, {wild.reps} reps, "
                              f"seed {spec.seed})")
    if ri is not None:
        single = len(terms) == 1 and not any(t.startswith("e=") for t in terms)
        if not single or sorted(spec.fixed_effects) != sorted([spec.unit, spec.time]):
            raise NotImplementedError(
                "randomization inference is wired for one treatment regressor with unit and time effects "
                f"(feols, static cont_did without heterogeneity); spec {spec.id!r} has terms {terms} and "
                f"fixed effects {spec.fixed_effects}")
        (term,) = terms
        sample = used if data is None else data
        frame = sample[[spec.unit, spec.time, spec.outcome]].copy()
        if spec.estimator == "cont_did":
            frame["ri_treatment"] = (sample[spec.exposure].to_numpy(float)
                                     * sample[spec.treatment].to_numpy(float))
        else:
            frame["ri_treatment"] = sample[spec.treatment].to_numpy(float)
        controls, control_names = control_matrix(sample, spec.controls)
        for j, name in enumerate(control_names):
            frame[f"ri_control_{name}"] = controls[:, j]
        result = module.ri_pvalue(frame, spec.unit, spec.time, spec.outcome, "ri_treatment",
                                  reps=ri.reps, seed=spec.seed, fe="twoway",
                                  controls=[f"ri_control_{n}" for n in control_names])
        table["p_value_ri"] = np.where(table["term"] == term, float(result["p_value"]), np.nan)
        table["method"] = table["method"].where(
            table["term"] != term,
            table["method"] + f"; randomization inference ({ri.reps} permutations of units, seed {spec.seed})")
    return table
