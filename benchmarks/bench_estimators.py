"""Our estimators against their library equivalents on the real analysis panel: time (median of a few runs, same
process, same data) and the largest difference in the point estimates. Feeds the table in docs/estimators.md.

``python -m benchmarks.bench_estimators [--runs 3]`` prints a Markdown table; reads
data/processed/analysis_panel.parquet and configs/specs/ (nothing is written). Not part of the tests: the agreement
the package relies on is asserted by the tests named in docs/estimators.md (on designs with known answers); this
script only says how the two implementations compare on our panel and how long each takes. Comparable settings on
both sides: analytic standard errors (the specs' bootstrap and Honest DiD rows are switched off for the timing), the
spec's sample, window and control group. Rows whose library call fails print the error instead of a number.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

from analysis import paths
from analysis.models import registry
from analysis.models.sample import load_data
from analysis.models.spec import Spec, resolve


def timed(fn, runs: int) -> tuple[float, object]:
    """Median wall time (s) of ``runs`` calls after one warm-up call (imports, caches); the last result."""
    result = fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def plain(spec_id: str) -> Spec:
    """The resolved spec without bootstrap, randomization inference or Honest DiD rows (analytic inference, as the
    library call below)."""
    spec = resolve(paths.ROOT / "configs" / "specs" / f"{spec_id}.yaml")
    inference = {key: None if key in ("wild_bootstrap", "bootstrap", "honest", "ri") else value
                 for key, value in spec.canonical()["inference"].items()}
    return spec.replace(inference=inference)


def rows(runs: int) -> list[dict]:
    import diff_diff as dd
    import pyfixest as pf

    out = []

    def record(name, library, ours_fn, lib_fn, compare):
        try:
            t_ours, ours = timed(ours_fn, runs)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t_lib, lib = timed(lib_fn, runs)
            diff = compare(ours, lib)
            out.append({"estimator": name, "library": library, "ours_s": t_ours, "library_s": t_lib,
                        "ratio": t_lib / t_ours, "max_abs_diff": diff})
        except Exception as exc:  # a library API mismatch is reported, not fatal
            out.append({"estimator": name, "library": library, "error": f"{type(exc).__name__}: {exc}"[:160]})

    # --- TWFE / continuous DiD: pyfixest feols with CRV1 ----------------------------------------------------
    spec = plain("cont_did_capability_index")
    df, _ = load_data(spec)
    frame = df.assign(_d=df[spec.exposure] * df[spec.treatment])
    record("cont_did (TWFE, CRV1)", "pyfixest.feols",
           lambda: registry.estimate(df, spec),
           lambda: pf.feols(f"{spec.outcome} ~ _d | province_code + year", data=frame,
                            vcov={"CRV1": "province_code"}),
           lambda o, r: abs(float(o.iloc[0]["estimate"]) - float(r.coef()["_d"])))

    # --- staggered designs on first Entity-List listing cohorts ------------------------------------------------
    def staggered(spec_id):
        s = plain(spec_id)
        d, _ = load_data(s)
        return s, d

    def observed(d, s):
        """Rows with an outcome (the panel has two missing values; the libraries do not drop them)."""
        return d.dropna(subset=[s.outcome])

    def as_ours(d, s):
        """Observed rows without the units treated from the first period (always treated): our estimators drop
        them and say so (R did, fixest); diff-diff's SunAbraham keeps them."""
        d = observed(d, s)
        return d.loc[~((d[s.cohort] > 0) & (d[s.cohort] <= d["year"].min()))]

    def balanced(d, s):
        """Units observed in every period, as our att_gt and bacon use them (R did's default)."""
        d = observed(d, s)
        complete = d.groupby("province_code")["year"].transform("size") == d["year"].nunique()
        return d.loc[complete]

    def event_diffs(ours, effects, nonnegative=True):
        o = ours.set_index("term")["estimate"]
        diffs = [abs(o[f"ATT e={e}"] - r["effect"]) for e, r in effects.items()
                 if f"ATT e={e}" in o.index and (e >= 0 or not nonnegative) and np.isfinite(r["effect"])]
        return max(diffs) if diffs else float("nan")

    s, d = staggered("att_gt_first_listing")
    record("att_gt (Callaway-Sant'Anna, not-yet-treated, event study)", "diff_diff.CallawaySantAnna",
           lambda: registry.estimate(d, s),
           lambda: dd.CallawaySantAnna(control_group="not_yet_treated", estimation_method="reg").fit(
               balanced(d, s), outcome=s.outcome, unit="province_code", time="year", first_treat=s.cohort,
               aggregate="event_study"),
           lambda o, r: event_diffs(o, r.event_study_effects))
    s, d = staggered("sunab_first_listing")
    record("sunab (Sun-Abraham)", "diff_diff.SunAbraham",
           lambda: registry.estimate(d, s),
           lambda: dd.SunAbraham(cluster="province_code").fit(as_ours(d, s), outcome=s.outcome,
                                                              unit="province_code", time="year",
                                                              first_treat=s.cohort),
           lambda o, r: event_diffs(o, r.event_study_effects))
    s, d = staggered("did_imputation_first_listing")
    record("did_imputation (Borusyak-Jaravel-Spiess)", "diff_diff.ImputationDiD",
           lambda: registry.estimate(d, s),
           lambda: dd.ImputationDiD(cluster="province_code").fit(observed(d, s), outcome=s.outcome,
                                                                 unit="province_code", time="year",
                                                                 first_treat=s.cohort, aggregate="event_study"),
           lambda o, r: event_diffs(o, r.event_study_effects))
    s, d = staggered("bacon_first_listing")
    record("bacon (Goodman-Bacon decomposition)", "diff_diff.BaconDecomposition",
           lambda: registry.estimate(d, s),
           lambda: dd.BaconDecomposition().fit(balanced(d, s), outcome=s.outcome, unit="province_code",
                                               time="year", first_treat=s.cohort),
           lambda o, r: abs(float(o.set_index("term")["estimate"].get("TWFE", np.nan)) - float(r.twfe_estimate)))

    # --- Honest DiD, smoothness restriction (FLCI): diff-diff HonestDiD on the same CS event study --------------
    from analysis.models import honest_did as H
    from analysis.models.att_gt import att_gt_event_study

    s, d = staggered("att_gt_first_listing")
    s = s.replace(aggregate="dynamic", event_window=[-100, 100])  # wider than the panel: every event time
    es, vcov = att_gt_event_study(d, s)
    grid = [0.0, 0.001, 0.002, 0.005]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference_fit = dd.CallawaySantAnna(control_group="not_yet_treated", estimation_method="reg",
                                            base_period="universal").fit(
            balanced(d, s), outcome=s.outcome, unit="province_code", time="year", first_treat=s.cohort,
            aggregate="event_study")
    record("Honest DiD FLCI (smoothness, 4 values of M, average post effect)", "diff_diff.HonestDiD(smoothness)",
           lambda: H.honest_did(es, vcov, "SD", grid, target="average"),
           lambda: [dd.HonestDiD(method="smoothness", M=m).fit(reference_fit) for m in grid],
           lambda o, r: max(max(abs(a - ref.ci_lb), abs(b - ref.ci_ub))
                            for a, b, ref in zip(o["ci_low"], o["ci_high"], r)))
    record("Honest DiD relative magnitudes (ARP, 4 values of Mbar)", "diff_diff.HonestDiD(relative_magnitude)",
           lambda: H.honest_did(es, vcov, "RM", [0.0, 0.5, 1.0, 2.0], target="average"),
           lambda: [dd.HonestDiD(method="relative_magnitude", M=m).fit(reference_fit) for m in (0.0, 0.5, 1.0, 2.0)],
           lambda o, r: max(max(abs(a - ref.ci_lb), abs(b - ref.ci_ub))
                            for a, b, ref in zip(o["ci_low"], o["ci_high"], r)))

    # --- Driscoll-Kraay: linearmodels PanelOLS kernel covariance ----------------------------------------------
    from linearmodels import PanelOLS

    s = plain("cont_did_capability_index")
    s = s.replace(inference={**s.canonical()["inference"], "vcov": "driscoll_kraay"})
    panel = frame.set_index(["province_code", "year"])
    record("Driscoll-Kraay standard errors (cont_did)", "linearmodels.PanelOLS(cov_type='kernel')",
           lambda: registry.estimate(df, s),
           lambda: PanelOLS(panel[spec.outcome], panel[["_d"]], entity_effects=True, time_effects=True).fit(
               cov_type="kernel", kernel="bartlett", debiased=True),
           lambda o, r: abs(float(o.iloc[0]["std_error"]) - float(r.std_errors["_d"])))
    return out


def table(results: list[dict]) -> str:
    lines = ["| estimator | library | ours (s) | library (s) | library / ours | max abs diff (estimate or SE) |",
             "|---|---|---:|---:|---:|---:|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['estimator']} | {r['library']} | | | | error: {r['error']} |")
        else:
            lines.append(f"| {r['estimator']} | {r['library']} | {r['ours_s']:.4f} | {r['library_s']:.4f} | "
                         f"{r['ratio']:.1f}x | {r['max_abs_diff']:.2e} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(table(rows(args.runs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
