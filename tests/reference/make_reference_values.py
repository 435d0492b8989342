"""Freeze the reference implementations' numbers the tests compare our estimators with, so the comparisons run
without those packages (the ``test`` extra installs them; the live cross-checks then run as well).

Run from the repository root with the reference packages installed:

    python tests/reference/make_reference_values.py

It writes

* ``tests/data/california_prop99.csv``: the Proposition 99 panel (Abadie, Diamond and Hainmueller 2010) exactly as
  synthdid-py ships it (``synthdid.datasets.load_california_prop99``; 39 states x 1970-2000, packs per capita), with
  a ``#`` header giving its source; its SHA-256 goes into ``tests/reference_data.py`` (FILES);
* ``tests/data/reference_values.json``: each reference number with the call that produced it, and a ``_provenance``
  block (this script, the package versions, Python, the data file's SHA-256).

The numbers are outputs of the reference packages only, on the data the tests generate (their seeded data
functions are imported from the test modules; no estimator of ours is called), so a change of our estimators can
never move them. Rerun after upgrading a reference package (or a test's data function) and review the diff.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import sys
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parents[1]
DATA = TESTS / "data"
PROP99_CSV = DATA / "california_prop99.csv"
VALUES = DATA / "reference_values.json"
PACKAGES = ["synthdid-py", "diff-diff", "wildboottest", "pyfixest", "pysyncon", "statsmodels", "numpy", "pandas"]
HONEST_GRID = [0.0, 0.05, 0.1, 0.3]   # M values of tests/test_models_staggered_honest.py
N_DRAWS_KEPT = 200   # bootstrap t draws kept of the 9,999 (the ratio check needs only a sample)

PROP99_HEADER = """\
# California Proposition 99 panel (Abadie, Diamond and Hainmueller 2010, JASA 105(490); the california_prop99 data
# of the R package synthdid, Arkhangelsky et al. 2021, AER 111(12)): per-capita cigarette sales (packs) for 39
# states x 1970-2000 = 1,209 rows; treated = 1 for California from 1989. Exported unchanged (rows in the shipped
# order; columns State, Year, PacksPerCapita, treated; floats at full precision) from synthdid-py 0.1.0's
# synthdid.datasets.load_california_prop99() by tests/reference/make_reference_values.py. Read with
# pandas.read_csv(path, comment="#").
"""


def export_prop99():
    from synthdid.datasets import load_california_prop99

    df = load_california_prop99()
    PROP99_CSV.write_text(PROP99_HEADER + df.to_csv(index=False, lineterminator="\n"), encoding="utf-8")
    return df


def prop99_values(df) -> dict:
    import diff_diff
    from synthdid.estimate import synthdid_estimate

    data = df.assign(treat_unit=(df["State"] == "California").astype(int))
    fit = diff_diff.SyntheticDiD(variance_method="placebo", n_bootstrap=200, seed=1).fit(
        data, outcome="PacksPerCapita", treatment="treat_unit", unit="State", time="Year",
        post_periods=list(range(1989, 2001)))
    panel = df.pivot(index="State", columns="Year", values="PacksPerCapita")
    order = [s for s in panel.index if s != "California"] + ["California"]
    ref = synthdid_estimate(panel.loc[order].to_numpy(), 38, 19)
    return {
        "diff_diff_sdid_placebo": {
            "call": "diff_diff.SyntheticDiD(variance_method='placebo', n_bootstrap=200, seed=1).fit(prop99 with "
                    "treat_unit = California, outcome='PacksPerCapita', unit='State', time='Year', "
                    "post_periods=1989..2000)",
            "att": float(fit.att), "se": float(fit.se)},
        "synthdid_port_estimate": {
            "call": "synthdid.estimate.synthdid_estimate(Y, N0=38, T0=19), Y = PacksPerCapita, states in sorted "
                    "order with California last, years 1970..2000",
            "donors": order[:-1],
            "tau": float(ref), "omega": np.asarray(ref.weights.omega, dtype=float).tolist(),
            "lambda": np.asarray(ref.weights.lambda_, dtype=float).tolist()},
    }


def wild_values() -> dict:
    """wildboottest on the one-way designs of tests/test_models_inference.py and pyfixest's wildboottest() on the
    two-way design of tests/test_models_wild_twoway.py."""
    import warnings

    import pandas as pd
    import pyfixest as pf
    import statsmodels.api as sm
    from wildboottest.wildboottest import wildboottest

    sys.path.insert(0, str(TESTS))
    from test_models_inference import clustered_data
    from test_models_wild_twoway import twoway_panel

    oneway = {}
    y, X, clusters = clustered_data(seed=12, beta=0.35)
    model = sm.OLS(y, pd.DataFrame(X, columns=["const", "x", "z"]))
    for impose_null, weights in [(True, "rademacher"), (True, "webb"), (False, "rademacher")]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = wildboottest(model, B=9999, cluster=clusters, param="x", weights_type=weights,
                               impose_null=impose_null, seed=6, show=False)
        oneway[f"{weights}-impose_null={impose_null}"] = {
            "statistic": float(ref["statistic"].iloc[0]), "p_value": float(ref["p-value"].iloc[0])}
    y, X, unit, year = twoway_panel(seed=1)
    frame = pd.DataFrame({"y": y, "d": X[:, 0], "z": X[:, 1], "unit": unit, "year": year})
    fit = pf.feols("y ~ d + z | unit + year", frame, vcov={"CRV1": "unit"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref, ref_t = fit.wildboottest(reps=9999, param="d", weights_type="webb", impose_null=True, seed=12,
                                      return_bootstrapped_t_stats=True)
    return {
        "oneway": {"call": "wildboottest.wildboottest(sm.OLS(y, [const, x, z]), B=9999, cluster=clusters, "
                           "param='x', weights_type=<key>, impose_null=<key>, seed=6) on clustered_data(seed=12, "
                           "beta=0.35) of tests/test_models_inference.py", "results": oneway},
        "twoway": {"call": "pyfixest.feols('y ~ d + z | unit + year', vcov={'CRV1': 'unit'}).wildboottest(reps=9999, "
                           "param='d', weights_type='webb', impose_null=True, seed=12) on twoway_panel(seed=1) of "
                           "tests/test_models_wild_twoway.py",
                   "coef_d": float(fit.coef()["d"]), "t_value": float(ref["t value"]),
                   "p_value": float(ref["Pr(>|t|)"]),
                   "t_star_first": np.asarray(ref_t, dtype=float).ravel()[:N_DRAWS_KEPT].tolist()},
    }


def synth_values() -> dict:
    """pysyncon's weights on the designs of tests/test_models_synth.py and tests/test_models_synth_identified.py."""
    import pandas as pd
    import pysyncon

    sys.path.insert(0, str(TESTS))
    from test_models_synth_identified import factor_panel, matrices

    rng = np.random.default_rng(5)
    pre = rng.normal(size=(24, 8)).cumsum(axis=0) + 50
    treated = pre @ np.array([0.4, 0.0, 0.3, 0.0, 0.0, 0.2, 0.1, 0.0]) + rng.normal(0, 0.3, 24)
    X0 = pd.DataFrame(pre, columns=[f"u{i}" for i in range(8)])
    X1 = pd.Series(treated, name="treated")
    custom = pysyncon.Synth()
    custom.fit(X0=X0, X1=X1, Z0=X0, Z1=X1, custom_V=np.ones(24))

    A, b, _, _ = matrices(factor_panel(n_donors=10, n_pre=6, n_post=2, noise=0.4, seed=6), 6)
    X0 = pd.DataFrame(A, columns=[f"u{i}" for i in range(10)])
    X1 = pd.Series(b, name="treated")
    penalized = pysyncon.PenalizedSynth()
    penalized.fit(X0=X0, X1=X1, lambda_=0.1)
    sd = pd.concat([X0, X1], axis=1).std(axis=1).to_numpy()
    tight, _ = penalized.w_optimize(V_mat=np.eye(6), X0=A / sd[:, None], X1=b / sd, lambda_=0.1,
                                    qp_options={"maxiter": 1000, "ftol": 1e-14})
    return {
        "synth_custom_v": {"call": "pysyncon.Synth().fit(X0, X1, Z0=X0, Z1=X1, custom_V=ones(24)) on the design of "
                                   "test_synth_agrees_with_pysyncon_custom_v", "W": np.asarray(custom.W).tolist()},
        "penalized_lambda_0.1": {"call": "pysyncon.PenalizedSynth().fit(X0, X1, lambda_=0.1) and its w_optimize("
                                         "..., qp_options={'maxiter': 1000, 'ftol': 1e-14}) on factor_panel(n_donors="
                                         "10, n_pre=6, n_post=2, noise=0.4, seed=6)",
                                 "W": np.asarray(penalized.W).tolist(), "W_tight": np.asarray(tight).tolist()},
    }


def _pairs(effects: dict, key=str) -> dict:
    """diff-diff's {key: {"effect", "se", ...}} as JSON: {str(key): [effect, se]}."""
    return {key(k): [float(v["effect"]), float(v["se"])] for k, v in sorted(effects.items())}


def diff_diff_staggered(name: str, df, control_group: str = "never_treated") -> dict:
    """One diff-diff staggered estimator on ``df`` (the simulated panel of tests/test_models_staggered.py, or mpdta
    for ``cs_mpdta``), as plain JSON numbers. The tests import this function for their live cross-checks, so the
    frozen and the live numbers come from the same call."""
    import warnings

    import diff_diff as dd

    cols = dict(outcome="y", unit="province_code", time="year", first_treat="first_year")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "cs":
            fits = {agg: dd.CallawaySantAnna(control_group=control_group, estimation_method="reg").fit(
                df, aggregate=agg, **cols) for agg in ("all", "event_study", "group")}
            return {"overall": [float(fits["all"].overall_att), float(fits["all"].overall_se)],
                    "group_time": _pairs(fits["all"].group_time_effects, key=lambda gt: f"{gt[0]},{gt[1]}"),
                    "event_study": _pairs(fits["event_study"].event_study_effects),
                    "group": _pairs(fits["group"].group_effects)}
        if name == "cs_mpdta":
            fit = dd.CallawaySantAnna(estimation_method="reg").fit(
                df, outcome="lemp", unit="countyreal", time="year", first_treat="first_treat")
            return {"overall": [float(fit.overall_att), float(fit.overall_se)]}
        if name == "sunab":
            fit = dd.SunAbraham(cluster="province_code").fit(df, **cols)
            return {"overall": [float(fit.overall_att), float(fit.overall_se)],
                    "event_study": _pairs(fit.event_study_effects)}
        if name == "bacon":
            fit = dd.BaconDecomposition().fit(df, **cols)
            return {"twfe": float(fit.twfe_estimate),
                    "weight_treated_vs_never": float(fit.total_weight_treated_vs_never),
                    "later_vs_earlier": float(fit.weighted_avg_later_vs_earlier)}
    raise KeyError(name)


def diff_diff_honest_sd(df, grid) -> dict:
    """diff-diff's Rambachan-Roth smoothness (Delta^SD) sets for the average post effect of its universal-base
    Callaway-Sant'Anna event study on ``df``, one [ci_lb, ci_ub] per M of ``grid``, and the event times it kept."""
    import warnings

    import diff_diff as dd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = dd.CallawaySantAnna(estimation_method="reg", base_period="universal").fit(
            df, outcome="y", unit="province_code", time="year", first_treat="first_year", aggregate="event_study")
        sets = {}
        for m in grid:
            ref = dd.HonestDiD(method="smoothness", M=m).fit(fit)
            sets[repr(float(m))] = [float(ref.ci_lb), float(ref.ci_ub)]
    return {"event_times": sorted(int(k) for k in fit.event_study_effects if k != -1), "sd_sets": sets}


def staggered_values() -> dict:
    sys.path.insert(0, str(TESTS))
    import reference_data
    from test_models_staggered import simulate_staggered

    sim = simulate_staggered()
    return {
        "_call": "diff_diff_staggered(<key>, simulate_staggered()) of this script (see its code); cs_mpdta on "
                 "tests/data/mpdta.csv",
        "cs_nevertreated": diff_diff_staggered("cs", sim, "never_treated"),
        "cs_notyettreated": diff_diff_staggered("cs", sim, "not_yet_treated"),
        "cs_mpdta": diff_diff_staggered("cs_mpdta", reference_data.load_mpdta()),
        "sunab": diff_diff_staggered("sunab", sim),
        "bacon": diff_diff_staggered("bacon", sim),
        "honest_sd": {"call": "diff_diff_honest_sd(simulate_staggered(seed=9, noise_sd=0.3), HONEST_GRID)",
                      **diff_diff_honest_sd(simulate_staggered(seed=9, noise_sd=0.3), HONEST_GRID)},
    }


def main() -> int:
    df = export_prop99()
    values = {
        "_provenance": {
            "script": "tests/reference/make_reference_values.py",
            "python": platform.python_version(),
            "versions": {p: importlib.metadata.version(p) for p in PACKAGES},
            "data_sha256": {PROP99_CSV.name: hashlib.sha256(PROP99_CSV.read_bytes()).hexdigest()},
        },
        "prop99": prop99_values(df),
        "wild_bootstrap": wild_values(),
        "synth": synth_values(),
        "staggered": staggered_values(),
    }
    VALUES.write_text(json.dumps(values, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {PROP99_CSV.relative_to(TESTS.parent)} and {VALUES.relative_to(TESTS.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
