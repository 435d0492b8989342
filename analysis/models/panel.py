"""Classical panel estimators: within (FE), random effects, first differences, and the Hausman test.

* ``panel_fe``: the within estimator, computed by :func:`analysis.models.ols.ols_fe` (unit effects, plus
  period effects when ``fixed_effects`` lists the time column), with the spec's covariance (CRV1 by province by
  default, fixest small-sample convention). It equals linearmodels ``PanelOLS(entity_effects=True, …)``; the
  clustered variances differ only by the documented degrees-of-freedom factor (see regression.py), which the
  tests check.
* ``panel_re``: linearmodels ``RandomEffects`` (Swamy–Arora variance components) with a constant; period effects
  enter as dummies when ``fixed_effects`` lists the time column. Covariance clustered by ``cluster`` with
  linearmodels' ``debiased=True`` and ``group_debias=True``: G/(G−1) · N/(N−K); t(G−1) for tests.
* ``first_diff``: linearmodels ``FirstDifferenceOLS`` (no constant; differenced period dummies when requested),
  clustered the same way.
* ``hausman``: H = (b_FE − b_RE)' [V_FE − V_RE]⁻¹ (b_FE − b_RE) ~ χ²(k) under H0 (RE consistent and efficient;
  Hausman 1978; Wooldridge 2010, §10.7.3), over the k time-varying regressors common to both (period dummies
  excluded). Both covariances are the classical (homoskedastic) ones, as the test's efficiency premise requires;
  when V_FE − V_RE is not positive definite the Moore–Penrose inverse is used and the rank gives the degrees of
  freedom (reported in ``df_t``). If the model is misspecified in finite samples V_FE − V_RE can be indefinite
  and H negative (reported as computed, as Stata does). Whether V_FE − V_RE is positive definite is recorded on
  the ``hausman_chi2`` row (``vdiff_positive_definite``, ``vdiff_min_eigenvalue``, and ``vdiff_negative_part``:
  the part of H from directions with a negative eigenvalue, Σ_{λ_j<0} (u_j'd)²/λ_j); when it is not, the method
  text says the classical test is not valid. Hence also
* the regression-based (Mundlak 1978) version, robust to heteroskedasticity and within-province correlation
  (Wooldridge 2010, eq. 10.88): pooled OLS of y on x_it, the province means x̄_i (and period effects), CRV1 by
  ``cluster``; W = γ̂' V̂(γ̂)⁻¹ γ̂ for the coefficients γ on the means. The headline is F = W/k against
  F(k, G−1) (term ``hausman_mundlak_F``, ``df_num`` = k, ``df_t`` = G − 1), the one reference distribution for
  cluster-robust statistics in this package (t(G−1) for one restriction; Cameron and Miller 2015, §VII.A);
  W against χ²(k) is kept as ``hausman_mundlak_chi2`` (asymptotic in G, over-rejects with 31 clusters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.models.distributions import chi2_sf, f_sf
from analysis.models.ols import ols_fe
from analysis.models.regression import (add_resampling_pvalues, control_matrix, fe_codes_for, fit_design, result_table,
                                        tidy_rows)

if TYPE_CHECKING:  # annotations only: the spec module imports the registry
    from analysis.models.spec import Spec


def panel_fe(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Within estimator: outcome on treatment + controls with unit (and optionally period) effects."""
    if spec.unit not in spec.fixed_effects:
        raise ValueError(f"panel_fe needs the unit {spec.unit!r} among fixed_effects, got {spec.fixed_effects}")
    regressor = df[spec.treatment].to_numpy(dtype=float)[:, None]
    fit, used = fit_design(df, spec, regressor, [spec.treatment])
    table = result_table(fit, f"within estimator FE[{', '.join(spec.fixed_effects)}]")
    return add_resampling_pvalues(table, fit, used, spec, [spec.treatment], data=df)


def _linearmodels_data(df: pd.DataFrame, spec: Spec, constant: bool) -> tuple[pd.Series, pd.DataFrame, list[str], pd.Series]:
    """(dependent, exog, names of the reported regressors, cluster codes) on complete rows, MultiIndex unit×time."""
    controls, control_names = control_matrix(df, spec.controls)
    names = [spec.treatment] + control_names
    exog = pd.DataFrame(np.column_stack([df[spec.treatment].to_numpy(dtype=float), controls])
                        if controls.size else df[[spec.treatment]].to_numpy(dtype=float), columns=names)
    if spec.time in spec.fixed_effects:
        # Dummies only for periods with at least one complete row: a period whose rows all drop (a regressor not
        # observed that year, e.g. Entity List measures past the transcription's last year) would leave an all-zero
        # column and a rank-deficient design.
        observed = df[spec.outcome].notna().to_numpy() & np.isfinite(exog.to_numpy(dtype=float)).all(axis=1)
        periods = sorted(df.loc[observed, spec.time].unique())
        for period in periods[1:]:  # first period is the base
            exog[f"{spec.time}={period}"] = (df[spec.time].to_numpy() == period).astype(float)
    if constant:
        exog.insert(0, "const", 1.0)
    exog.index = pd.MultiIndex.from_arrays([df[spec.unit].to_numpy(), df[spec.time].to_numpy()],
                                           names=[spec.unit, spec.time])
    y = pd.Series(df[spec.outcome].to_numpy(dtype=float), index=exog.index, name=spec.outcome)
    complete = y.notna() & np.isfinite(exog).all(axis=1)
    cluster = pd.Series(pd.factorize(df[spec.cluster], sort=True)[0], index=exog.index, name="cluster")
    return y[complete], exog[complete], names, cluster[complete]


def _linearmodels_table(res, names: list[str], n_clusters: int, method: str) -> pd.DataFrame:
    params, se = res.params[names].to_numpy(), res.std_errors[names].to_numpy()
    return tidy_rows(names, params, se, n_clusters - 1, int(res.nobs), method, n_clusters=n_clusters)


def panel_re(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Random effects (linearmodels RandomEffects), clustered by ``cluster`` (debiased, G/(G−1)), t(G−1)."""
    from linearmodels import RandomEffects

    y, exog, names, cluster = _linearmodels_data(df, spec, constant=True)
    res = RandomEffects(y, exog).fit(cov_type="clustered", clusters=cluster.to_frame(), debiased=True,
                                     group_debias=True)
    n_clusters = int(cluster.nunique())
    method = (f"random effects (linearmodels RandomEffects, theta median {float(np.median(res.theta)):.3f}); "
              f"clustered by {spec.cluster} (linearmodels debiased, group_debias: G/(G-1)*N/(N-K), G={n_clusters}), "
              f"t({n_clusters - 1})")
    return _linearmodels_table(res, names, n_clusters, method)


def first_diff(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """First differences (linearmodels FirstDifferenceOLS), clustered by ``cluster``, t(G−1)."""
    from linearmodels import FirstDifferenceOLS

    y, exog, names, cluster = _linearmodels_data(df, spec, constant=False)
    model = FirstDifferenceOLS(y, exog)
    # FirstDifferenceOLS differences the data; clusters are given on the differenced rows by entity.
    res = model.fit(cov_type="clustered", cluster_entity=True, debiased=True)
    n_clusters = int(cluster.nunique())
    method = (f"first differences (linearmodels FirstDifferenceOLS); clustered by {spec.unit} "
              f"(linearmodels debiased: N/(N-K), no G/(G-1)), t({n_clusters - 1})")
    return _linearmodels_table(res, names, n_clusters, method)


def hausman_statistic(b_fe: np.ndarray, b_re: np.ndarray, v_fe: np.ndarray, v_re: np.ndarray) -> tuple[float, int, float]:
    """(H, degrees of freedom, p-value) of the Hausman test; see the module docstring for the formula."""
    diff = np.asarray(b_fe) - np.asarray(b_re)
    v_diff = np.asarray(v_fe) - np.asarray(v_re)
    eig = np.linalg.eigvalsh(v_diff)
    if eig.min() > 1e-12 * max(eig.max(), 1e-300):
        stat, rank = float(diff @ np.linalg.solve(v_diff, diff)), len(diff)
    else:
        stat, rank = float(diff @ np.linalg.pinv(v_diff) @ diff), int(np.linalg.matrix_rank(v_diff))
    return stat, rank, float(chi2_sf(stat, rank))


def hausman_definiteness(b_fe: np.ndarray, b_re: np.ndarray, v_fe: np.ndarray, v_re: np.ndarray
                         ) -> tuple[bool, float, float]:
    """(positive definite?, smallest eigenvalue of V_FE − V_RE, part of H from its negative-eigenvalue directions).

    With V_FE − V_RE = Σ_j λ_j u_j u_j' and d = b_FE − b_RE, H = Σ_j (u_j'd)²/λ_j; the negative part is the sum over
    λ_j < 0. Positive definite means λ_min > 1e-12 · λ_max (the rule :func:`hausman_statistic` uses to pick the
    plain inverse).
    """
    diff = np.asarray(b_fe) - np.asarray(b_re)
    eig, vectors = np.linalg.eigh(np.asarray(v_fe) - np.asarray(v_re))
    negative = eig < 0
    part = float(((vectors[:, negative].T @ diff) ** 2 / eig[negative]).sum()) if negative.any() else 0.0
    return bool(eig.min() > 1e-12 * max(eig.max(), 1e-300)), float(eig.min()), part


def hausman(df: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Hausman test FE vs RE on treatment + controls (classical covariances of both).

    Rows: ``FE:<name>`` and ``RE:<name>`` (the two estimates, classical SEs), then ``hausman_chi2`` with the
    statistic as ``estimate``, its χ² p-value and degrees of freedom in ``df_t``.
    """
    from linearmodels import PanelOLS, RandomEffects

    y, exog, names, _ = _linearmodels_data(df, spec, constant=True)
    fe_exog = exog.drop(columns="const")
    fe = PanelOLS(y, fe_exog, entity_effects=True).fit(cov_type="unadjusted")
    re = RandomEffects(y, exog).fit(cov_type="unadjusted")
    stat, rank, p_value = hausman_statistic(fe.params[names].to_numpy(), re.params[names].to_numpy(),
                                            fe.cov.loc[names, names].to_numpy(), re.cov.loc[names, names].to_numpy())
    rows = []
    for label, res in (("FE", fe), ("RE", re)):
        rows.append(tidy_rows([f"{label}:{n}" for n in names], res.params[names].to_numpy(),
                              res.std_errors[names].to_numpy(), int(res.df_resid), int(res.nobs),
                              f"{label} (linearmodels, classical covariance) for the Hausman test"))
    definite, min_eig, negative_part = hausman_definiteness(
        fe.params[names].to_numpy(), re.params[names].to_numpy(), fe.cov.loc[names, names].to_numpy(),
        re.cov.loc[names, names].to_numpy())
    classical = f"Hausman chi2({rank}) = (b_FE-b_RE)'[V_FE-V_RE]^-1(b_FE-b_RE), classical covariances"
    if not definite:
        classical += (f"; V_FE-V_RE is NOT positive definite (smallest eigenvalue {min_eig:.3g}; directions with "
                      f"negative variance contribute {negative_part:.4g} to H, Moore-Penrose inverse): the classical "
                      f"test is not valid here, read hausman_mundlak_F")
    test = tidy_rows(["hausman_chi2"], [stat], [np.nan], rank, int(fe.nobs), classical,
                     vdiff_positive_definite=definite, vdiff_min_eigenvalue=min_eig,
                     vdiff_negative_part=negative_part)
    test["p_value"] = p_value
    w_stat, k, w_p, n_obs, n_clusters = mundlak_test(df, spec, with_clusters=True)
    robust_f = tidy_rows(["hausman_mundlak_F"], [w_stat / k], [np.nan], n_clusters - 1, n_obs,
                         f"Mundlak regression-based Hausman test (cluster-robust; headline): F = W/{k} on the "
                         f"province means against F({k}, {n_clusters - 1}) = F(k, G-1), CRV1 by {spec.cluster} "
                         f"(fixest small-sample), G={n_clusters}", df_num=k, n_clusters=n_clusters)
    robust_f["p_value"] = float(f_sf(w_stat / k, k, n_clusters - 1))
    robust = tidy_rows(["hausman_mundlak_chi2"], [w_stat], [np.nan], k, n_obs,
                       f"Mundlak regression-based Hausman test, Wald chi2({k}) on province means, CRV1 by "
                       f"{spec.cluster} (fixest small-sample); asymptotic in G, see hausman_mundlak_F",
                       n_clusters=n_clusters)
    robust["p_value"] = w_p
    out = pd.concat(rows + [robust_f, robust, test], ignore_index=True)
    out["vdiff_positive_definite"] = out["vdiff_positive_definite"].astype("boolean")  # NA on the other rows
    for frame_row in ("hausman_chi2", "hausman_mundlak_chi2", "hausman_mundlak_F"):
        mask = out["term"] == frame_row
        out.loc[mask, "statistic"] = out.loc[mask, "estimate"]
        out.loc[mask, ["ci_low", "ci_high"]] = np.nan
    return out


def mundlak_test(df: pd.DataFrame, spec: Spec, with_clusters: bool = False) -> tuple:
    """(W, k, χ²(k) p-value, N) of the cluster-robust Mundlak test, plus G (clusters) ``with_clusters``; see the
    module docstring."""
    controls, control_names = control_matrix(df, spec.controls)
    X = np.column_stack([df[spec.treatment].to_numpy(dtype=float), controls]) if controls.size else \
        df[[spec.treatment]].to_numpy(dtype=float)
    y = df[spec.outcome].to_numpy(dtype=float)
    complete = np.isfinite(y) & np.isfinite(X).all(axis=1)
    used = df.loc[complete]
    X, y = X[complete], y[complete]
    means = pd.DataFrame(X).groupby(used[spec.unit].to_numpy()).transform("mean").to_numpy()
    names = [f"x{j}" for j in range(X.shape[1])] + [f"mean_x{j}" for j in range(X.shape[1])]
    fe = [spec.time] if spec.time in spec.fixed_effects else []
    fit = ols_fe(y, np.column_stack([X, means]), names, fe_codes=fe_codes_for(used, fe) if fe else None,
                 clusters=pd.factorize(used[spec.cluster], sort=True)[0], vcov="CRV1")
    idx = [i for i, name in enumerate(fit.names) if name.startswith("mean_")]
    gamma = fit.coef[idx]
    stat = float(gamma @ np.linalg.solve(fit.vcov[np.ix_(idx, idx)], gamma))
    result = (stat, len(idx), float(chi2_sf(stat, len(idx))), int(fit.n_obs))
    return result + (int(fit.n_clusters),) if with_clusters else result
