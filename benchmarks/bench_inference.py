"""Speed of the resampling inference and synthetic-control code against reference implementations.

Run: ``python -m benchmarks.bench_inference`` (or ``python benchmarks/bench_inference.py``) from the repository
root. Prints Markdown tables and adds the run at the top of benchmarks/results_inference.md (machine, versions,
date), keeping the earlier runs below it. Not part of the tests; takes about a minute or two on a 2-core machine.
Each timing is the median of ``REPEATS`` runs on the same data: simulated (31 provinces, as in the analysis
panel) except for (a).

(a) wild cluster bootstrap (WCR, Webb weights, 9,999 draws) on the design the headline spec actually uses:
    configs/specs/cont_did_capability_index.yaml on data/processed/analysis_panel.parquet (read only; 215 rows,
    31 province clusters, province and year fixed effects, unbalanced). Ours: the engine's call
    (analysis.models.inference.wild_bootstrap_pvalue on the FE-residualised data, with the fixed effects, which
    the bootstrap refits need because the year effects are not nested in the clusters). Reference: wildboottest
    0.3.2 through pyfixest's ``Feols.wildboottest`` (the one-hot dummy-variable design: intercept, regressor, 30
    province and 6 year dummies). Same settings: 9,999 draws, Webb weights, null imposed, bootstrap "11", seed;
    for the agreement table our small-sample factor is set to wildboottest's (k = 38 columns of the one-hot
    design) so the t-statistics are the same number (the p-value does not depend on the factor);
(b) randomization inference, 1,000 permutations: vectorised vs a naive pyfixest refit loop (the loop is timed on
    100 permutations and scaled by 10);
(c) synthetic control fit + 30 placebo refits: analysis.models.synth vs pysyncon.Synth with a custom V;
(d) synthetic DiD with 200 placebo draws: analysis.models.sdid (diff_diff.SyntheticDiD plus the replay of its draws
    for the per-period standard errors) vs diff_diff.SyntheticDiD alone.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.io import write_text  # noqa: E402
from analysis.models.inference import ri_null_distribution, wild_bootstrap_pvalue  # noqa: E402
from analysis.models.sdid import sdid_estimate  # noqa: E402
from analysis.models.synth import synth_fit  # noqa: E402
from benchmarks.common import machine  # noqa: E402

REPEATS = 3
SEED = 20240501
RESULTS = Path(__file__).resolve().parent / "results_inference.md"


def median_time(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def regression_data(rng):
    G, T = 31, 7
    clusters = np.repeat(np.arange(G), T)
    x = rng.normal(size=G * T) + rng.normal(size=G)[clusters]
    z = rng.normal(size=G * T)
    y = 0.2 * x + 0.3 * z + rng.normal(size=G * T) + rng.normal(size=G)[clusters]
    return y, np.column_stack([np.ones(G * T), x, z]), clusters


def panel_data(rng, n_units=31, years=range(2008, 2022), first_post=2018):
    years = list(years)
    cohorts = rng.choice([0, 2018, 2019, 2020], n_units)
    rows = []
    factor = np.linspace(0, 2, len(years))
    loadings = rng.normal(1, 0.5, n_units)
    for i in range(n_units):
        for j, t in enumerate(years):
            rows.append({"unit": i, "year": t, "y": 10 + loadings[i] * factor[j] + rng.normal(0, 0.2),
                         "d": float(cohorts[i] > 0 and t >= cohorts[i]),
                         "treated": int(i == 0 and t >= first_post)})
    return pd.DataFrame(rows)


WILD_SPEC = Path(__file__).resolve().parent.parent / "configs" / "specs" / "cont_did_capability_index.yaml"
WILD_REPS, WILD_WEIGHTS, WILD_SEED = 9999, "webb", 1
WILD_SEEDS = range(1, 6)  # independent runs for the Monte Carlo comparison


def bench_wild(rng, details: dict | None = None) -> tuple[float, float]:
    """(ours, wildboottest) median seconds on the headline spec's two-way-FE design (module docstring, (a)).

    ``details``, if given, receives the p-values: ours and wildboottest's with the same seeds, and ours with the
    effects partialled out once (the estimator before issue 13, a different bootstrap DGP).
    """
    import pyfixest as pf

    from analysis.models.sample import load_data
    from analysis.models.regression import fe_codes_for, fit_design
    from analysis.models.spec import resolve

    regression_data(rng)  # the draws of the earlier no-FE design, so the later benchmarks' simulated data stay put
    spec = resolve(WILD_SPEC)
    df, _ = load_data(spec)
    regressor = (df[spec.exposure] * df[spec.treatment]).to_numpy(dtype=float)
    fit, used = fit_design(df, spec, regressor[:, None], ["treat"])
    fixed_effects = fe_codes_for(used, spec.fixed_effects)
    n_absorbed = fit.k_ssc - len(fit.names)  # fixest's count, as in the engine

    def ours(seed: int = WILD_SEED, absorbed: int = n_absorbed, effects=fixed_effects) -> dict:
        return wild_bootstrap_pvalue(fit.y_tilde, fit.x_tilde, fit.clusters, 0, reps=WILD_REPS,
                                     weights=WILD_WEIGHTS, seed=seed, n_absorbed=absorbed, fixed_effects=effects)

    frame = used.assign(treat=used[spec.exposure] * used[spec.treatment])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = pf.feols(f"{spec.outcome} ~ treat | {' + '.join(spec.fixed_effects)}", frame,
                         vcov={"CRV1": spec.cluster})

    def reference(seed: int = WILD_SEED) -> pd.Series:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.wildboottest(reps=WILD_REPS, param="treat", weights_type=WILD_WEIGHTS, impose_null=True,
                                      bootstrap_type="11", seed=seed)

    ours_seconds, reference_seconds = median_time(ours), median_time(reference)
    if details is not None:
        n, G = fit.n_obs, fit.n_clusters
        k_onehot = 1 + 1 + (used[spec.unit].nunique() - 1) + (used[spec.time].nunique() - 1)
        same_factor = k_onehot - 1  # n_absorbed that makes our factor (n-1)/(n-1-n_absorbed) wildboottest's
        ref = reference()
        details.update(
            n_obs=n, n_clusters=G, k_onehot=k_onehot, estimate=float(fit.coef[0]),
            t_ours=float(ours(absorbed=same_factor)["t_stat"]), t_reference=float(ref["t value"]),
            p_ours={s: ours(s)["p_value"] for s in WILD_SEEDS},
            p_reference={s: float(reference(s)["Pr(>|t|)"]) for s in WILD_SEEDS},
            p_once={s: ours(s, effects=None)["p_value"] for s in WILD_SEEDS},
            seconds_once=median_time(lambda: ours(effects=None)),
        )
    return ours_seconds, reference_seconds


def wild_agreement_table(details: dict) -> str:
    """Markdown: p-values of ours, wildboottest and the partial-out-once bootstrap, seed by seed."""
    lines = ["| seed | ours (two-way FE in every refit) | wildboottest via pyfixest (dummies) | "
             "ours, effects partialled out once (before issue 13) |", "|---:|---:|---:|---:|"]
    for s in WILD_SEEDS:
        lines.append(f"| {s} | {details['p_ours'][s]:.4f} | {details['p_reference'][s]:.4f} | "
                     f"{details['p_once'][s]:.4f} |")
    mean = {key: np.mean(list(details[key].values())) for key in ("p_ours", "p_reference", "p_once")}
    lines.append(f"| mean | {mean['p_ours']:.4f} | {mean['p_reference']:.4f} | {mean['p_once']:.4f} |")
    p = mean["p_reference"]
    return "\n".join(lines) + (
        f"\n\nEstimate {details['estimate']:.6f}; n = {details['n_obs']}, G = {details['n_clusters']}. "
        f"With wildboottest's small-sample factor (k = {details['k_onehot']}) our t is {details['t_ours']:.10f}, "
        f"wildboottest's {details['t_reference']:.10f}. Monte Carlo sd of one p-value with {WILD_REPS} draws: "
        f"{np.sqrt(p * (1 - p) / WILD_REPS):.4f}. Ours, effects partialled out once: "
        f"{details['seconds_once']:.3f} s (median).\n")


def bench_ri(rng) -> tuple[float, float]:
    import pyfixest as pf

    df = panel_data(rng, years=range(2015, 2022))
    ours = median_time(lambda: ri_null_distribution(df, "unit", "year", "y", "d", reps=1000, seed=1))
    perms = ri_null_distribution(df, "unit", "year", "y", "d", reps=100, seed=1)["permutations"]
    paths = df.pivot(index="unit", columns="year", values="d").to_numpy()

    def naive():
        for p in perms:
            frame = df.assign(dp=paths[p][df["unit"], df["year"] - 2015])
            pf.feols("y ~ dp | unit + year", frame).coef()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ours, 10 * median_time(naive, repeats=1)


def bench_synth(rng) -> tuple[float, float]:
    from pysyncon import Synth

    df = panel_data(rng)
    spec = {"outcome": "y", "unit": "unit", "time": "year", "treatment": "treated", "controls": [], "seed": 1,
            "synth": {"v": "inverse_variance"}}
    ours = median_time(lambda: synth_fit(df, spec))
    wide = df.pivot(index="year", columns="unit", values="y")
    pre = wide.loc[wide.index < 2018]

    def reference():
        for treated in wide.columns:  # the treated unit, then every donor as a placebo
            pool = [u for u in wide.columns if u not in (treated, 0)] if treated != 0 else list(wide.columns[1:])
            X0, X1 = pre[pool], pre[treated]
            Synth().fit(X0=X0, X1=X1, Z0=X0, Z1=X1, custom_V=np.ones(len(pre)))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ours, median_time(reference)


def bench_sdid(rng) -> tuple[float, float]:
    from diff_diff import SyntheticDiD

    df = panel_data(rng)
    Y = df.pivot(index="unit", columns="year", values="y")
    Y = Y.loc[list(Y.index[1:]) + [0]].to_numpy()
    ours = median_time(lambda: sdid_estimate(Y, 10, reps=200, seed=1))
    data = df.assign(treat_unit=(df["unit"] == 0).astype(int))

    def reference():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            SyntheticDiD(variance_method="placebo", n_bootstrap=200, seed=1).fit(
                data, outcome="y", treatment="treat_unit", unit="unit", time="year",
                post_periods=list(range(2018, 2022)))

    return ours, median_time(reference)


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def main() -> None:
    rng = np.random.default_rng(SEED)
    wild = {}
    wild_seconds = bench_wild(rng, wild)
    rows = [
        (f"wild cluster bootstrap (WCR, Webb), 9,999 draws, headline spec: province + year FE, "
         f"{wild['n_clusters']} clusters, {wild['n_obs']} rows", "wildboottest via pyfixest (one-hot FE)",
         *wild_seconds),
        ("randomization inference, 1,000 permutations (TWFE)", "pyfixest refit loop (100 x 10)", *bench_ri(rng)),
        ("synthetic control + 30 placebos (10 pre years)", "pysyncon Synth, custom V", *bench_synth(rng)),
        ("synthetic DiD + 200 placebo draws", "diff-diff SyntheticDiD", *bench_sdid(rng)),
    ]
    lines = ["| task | reference | ours (s) | reference (s) | speed-up |", "|---|---|---:|---:|---:|"]
    for task, reference, ours, ref in rows:
        lines.append(f"| {task} | {reference} | {ours:.3f} | {ref:.3f} | {ref / ours:.1f}x |")
    table = "\n".join(lines)
    agreement = wild_agreement_table(wild)
    print(table + "\n\n" + agreement)
    packages = ["numpy", "scipy", "pandas", "pyfixest", "wildboottest", "pysyncon", "diff-diff", "statsmodels"]
    run = [
        f"## Run {dt.date.today().isoformat()}",
        "",
        f"Machine: {machine()}.",
        "Versions: " + ", ".join(f"{p} {version(p)}" for p in packages) + ".",
        f"Median of {REPEATS} runs (the naive RI loop: one run of 100 refits x 10). The wild bootstrap row uses "
        "the headline spec on the processed panel; settings in the module docstring of benchmarks/bench_inference.py.",
        "",
        table,
        "",
        "Wild bootstrap p-values on the same design (seed by seed; the same seed gives both packages the same "
        "weights):",
        "",
        agreement,
    ]
    write_text(HEADER + "\n".join(run) + earlier_runs(), RESULTS)


HEADER = ("# Inference and synthetic-control benchmarks\n\nProduced by `python -m benchmarks.bench_inference`; "
          "the newest run first, earlier runs below it (kept as measured).\n\n")


def earlier_runs() -> str:
    """The runs already in the results file (from its first '## Run' heading on), after a blank line."""
    if not RESULTS.exists():
        return ""
    text = RESULTS.read_text(encoding="utf-8")
    start = text.find("\n## Run ")
    return "" if start < 0 else "\n" + text[start:]


if __name__ == "__main__":
    main()
