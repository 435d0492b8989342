"""Speed of the resampling inference and synthetic-control code against reference implementations.

Run: ``python -m benchmarks.bench_inference`` (or ``python benchmarks/bench_inference.py``) from the repository
root. Prints a Markdown table and writes benchmarks/results_inference.md (machine, versions, date). Not part of
the tests; takes about a minute or two on a 2-core machine. Each timing is the median of ``REPEATS`` runs on the
same simulated data (31 clusters / provinces, 7 years, as in the analysis panel).

(a) wild cluster bootstrap, 9,999 draws, 31 clusters: analysis.models.inference vs wildboottest 0.3.2;
(b) randomization inference, 1,000 permutations: vectorised vs a naive pyfixest refit loop (the loop is timed on
    100 permutations and scaled by 10);
(c) synthetic control fit + 30 placebo refits: analysis.models.synth vs pysyncon.Synth with a custom V;
(d) synthetic DiD with 200 placebo draws: analysis.models.synth vs diff_diff.SyntheticDiD.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
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
from analysis.models.synth import sdid_estimate, synth_fit  # noqa: E402

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


def bench_wild(rng) -> tuple[float, float]:
    import statsmodels.api as sm
    from wildboottest.wildboottest import wildboottest

    y, X, clusters = regression_data(rng)
    ours = median_time(lambda: wild_bootstrap_pvalue(y, X, clusters, 1, reps=9999, seed=1))
    model = sm.OLS(y, pd.DataFrame(X, columns=["const", "x", "z"]))

    def reference():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wildboottest(model, B=9999, cluster=clusters, param="x", seed=1, show=False)

    return ours, median_time(reference)


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
    rows = [
        ("wild cluster bootstrap, 9,999 draws, 31 clusters", "wildboottest", *bench_wild(rng)),
        ("randomization inference, 1,000 permutations (TWFE)", "pyfixest refit loop (100 x 10)", *bench_ri(rng)),
        ("synthetic control + 30 placebos (10 pre years)", "pysyncon Synth, custom V", *bench_synth(rng)),
        ("synthetic DiD + 200 placebo draws", "diff-diff SyntheticDiD", *bench_sdid(rng)),
    ]
    lines = ["| task | reference | ours (s) | reference (s) | speed-up |", "|---|---|---:|---:|---:|"]
    for task, reference, ours, ref in rows:
        lines.append(f"| {task} | {reference} | {ours:.3f} | {ref:.3f} | {ref / ours:.1f}x |")
    table = "\n".join(lines)
    print(table)
    packages = ["numpy", "scipy", "pandas", "pyfixest", "wildboottest", "pysyncon", "diff-diff", "statsmodels"]
    header = [
        "# Inference and synthetic-control benchmarks",
        "",
        f"Date: {dt.date.today().isoformat()}. Machine: {platform.machine()}, {os.cpu_count()} CPU(s), "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}.",
        "Versions: " + ", ".join(f"{p} {version(p)}" for p in packages) + ".",
        f"Median of {REPEATS} runs (the naive RI loop: one run of 100 refits x 10). "
        "Produced by `python -m benchmarks.bench_inference`.",
        "",
    ]
    write_text("\n".join(header) + table + "\n", RESULTS)


if __name__ == "__main__":
    main()
