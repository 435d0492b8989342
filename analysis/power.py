"""What the data can rule out: ``python -m analysis.power --estimates-dir … --out-dir … --figures-dir …``.

For each headline estimate listed in ``configs/power.yaml`` (spec × term) it writes one row of
``<out-dir>/power.csv`` and a short table ``<figures-dir>/tab09_power.{tex,md}``:

* **Minimum detectable effect** at power 1 − β with a two-sided test of size α (Bloom 1995, *Evaluation Review*
  19(5); Duflo, Glennerster & Kremer 2007, *Handbook of Development Economics* 4, ch. 61, section 3):

      mde = (q_{1−α/2} + q_{1−β}) · SE

  with q the quantiles of the estimate's reference distribution — t(df) where the estimator reports t inference
  (the regressions: CRV1 by province with t(G − 1), ``df_t`` in the estimate file), the standard normal where it
  reports normal inference (Callaway–Sant'Anna multiplier bootstrap, synthetic-DiD placebo SE). The formula ignores
  the chance of rejecting in the wrong tail (below 10⁻⁴ at these sizes) and, for t, uses central quantiles for the
  noncentral t (statsmodels' TTestPower solves the latter; tests/test_power.py bounds the difference). For the
  regressions this is the CRV1 standard error; their wild cluster bootstrap gives a p-value only (``p_value_wild``,
  copied beside), no standard error.
* **95% bounds**: the estimate file's own ``ci_low``/``ci_high``; the module checks that est ± q_{1−α/2}·SE
  reproduces them, which proves the reference distribution was read correctly.
* **Equivalence test** (TOST; Schuirmann 1987, *J. Pharmacokinet. Biopharm.* 15(6); Lakens 2017, *Soc. Psychol.
  Personal. Sci.* 8(4)) of H0: |θ| ≥ Δ against H1: |θ| < Δ:

      p_lower = P(T > (est + Δ)/SE),  p_upper = P(T < (est − Δ)/SE),  p_tost = max(p_lower, p_upper)

  Equivalence is declared when p_tost < α, which holds exactly when the (1 − 2α) CI lies inside (−Δ, Δ).
* **Smallest effect of interest Δ**, per outcome, from the rules in the config (within-province SD; the study's
  "doubling" in the outcome's units), divided by ``exposure_contrast_sd`` × SD(exposure) for exposure designs, whose
  coefficient is an effect per unit (per SD) of exposure.
* **Single-unit placebo designs** (synthetic control, synthetic DiD): ``min_attainable_p`` = 1/(J + 1) with J donors,
  the smallest p-value a placebo-in-space rank test can give. Synthetic control reports no standard error, so its
  MDE, bounds and TOST are empty; synthetic DiD's MDE and TOST use its placebo standard error (normal). For synthetic
  DiD the floor is that of a rank test on the same donors: its reported normal p-value is not bounded by it, but
  the placebo standard error rests on those J donors alone.

Only numbers read from the estimate files and the analysis panel enter; nothing is typed here.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis import paths
from analysis.io import DataError, write_csv, write_text
from analysis.models.distributions import norm_cdf, norm_ppf, norm_sf, t_ppf, t_sf
from analysis.cli import guard, report

CONFIG = paths.CONFIGS / "power.yaml"
TABLE_STEM = "tab09_power"
RULES = ("within_province_sd", "doubling")

COLUMNS = ["spec_id", "term", "outcome", "estimator", "estimate", "std_error", "df", "reference_distribution",
           "mde_80", "ci_low", "ci_high", "ci90_low", "ci90_high", "equivalence_bound", "smallest_effect_rule",
           "p_tost", "equivalent", "smallest_effect", "effect_scale", "exposure_sd", "delta_within_province_sd",
           "delta_doubling", "equivalence_bound_doubling", "p_tost_doubling", "p_value", "p_value_wild",
           "min_attainable_p", "n_donors", "units", "p_value_missing_reason"]


# ---- formulas -----------------------------------------------------------------------------------------------------

def _is_normal(df) -> bool:
    return df is None or (isinstance(df, float) and (math.isnan(df) or math.isinf(df)))


def quantile(q: float, df: float | None = None) -> float:
    """q-quantile of t(df), or of N(0, 1) when df is None, NaN or inf."""
    return float(norm_ppf(q)) if _is_normal(df) else float(t_ppf(q, df))


def upper_tail(x, df: float | None = None):
    """P(T > x) for T ~ t(df), or N(0, 1) when df is None, NaN or inf."""
    return norm_sf(x) if _is_normal(df) else t_sf(x, df)


def lower_tail(x, df: float | None = None):
    """P(T < x)."""
    return norm_cdf(x) if _is_normal(df) else t_sf(-np.asarray(x, dtype=float), df)


def mde(std_error: float, df: float | None = None, alpha: float = 0.05, power: float = 0.80) -> float:
    """Minimum detectable effect (q_{1−α/2} + q_{power}) · SE of a two-sided size-α test (Bloom 1995), in the units
    of the estimate."""
    return (quantile(1 - alpha / 2, df) + quantile(power, df)) * std_error


def confidence_interval(estimate: float, std_error: float, df: float | None = None,
                        level: float = 0.95) -> tuple[float, float]:
    """est ∓ q_{(1+level)/2} · SE."""
    half = quantile(0.5 + level / 2, df) * std_error
    return estimate - half, estimate + half


def tost(estimate: float, std_error: float, bound: float, df: float | None = None) -> tuple[float, float, float]:
    """Two one-sided tests of H0: |θ| ≥ bound (Schuirmann 1987): (p_lower, p_upper, p_tost = max of the two).

    p_lower tests H0: θ ≤ −bound (rejected when the estimate is far enough above −bound), p_upper tests
    H0: θ ≥ bound."""
    if not bound > 0:
        raise ValueError(f"equivalence bound must be positive, got {bound}")
    p_lower = float(upper_tail((estimate + bound) / std_error, df))
    p_upper = float(lower_tail((estimate - bound) / std_error, df))
    return p_lower, p_upper, max(p_lower, p_upper)


def min_attainable_p(n_donors: int) -> float:
    """Smallest p-value of a placebo-in-space rank test with J donors: the treated unit ranks first of J + 1."""
    return 1.0 / (int(n_donors) + 1)


# ---- smallest effect of interest ----------------------------------------------------------------------------------

def within_province_sd(panel: pd.DataFrame, outcome: str, unit: str = "province_code") -> float:
    """sqrt(mean_it (y_it − ȳ_i)²) over the non-missing province-years (population SD of the within deviations,
    the numerator of ``within_province_share`` in analysis/index/validity.py), in the outcome's units."""
    frame = panel[[unit, outcome]].dropna()
    within = frame[outcome] - frame.groupby(unit)[outcome].transform("mean")
    return float(np.sqrt(np.mean(within.to_numpy(float) ** 2)))


def doubling_effect(panel: pd.DataFrame, outcome: str, province_code: int, pre_year: int, log_change: bool,
                    n_post_years: int | None = None, unit: str = "province_code", time: str = "year",
                    source: Path | None = None) -> float:
    """The study's "doubling within a year" in the outcome's units: the pre-year level of the named province (a
    doubling adds it) for level outcomes; ln 2 / P for log-change outcomes averaged over P post years."""
    if log_change:
        if not n_post_years:
            raise DataError(source or paths.ANALYSIS_PANEL, f"no post-treatment years to spread a doubling of "
                            f"{outcome!r} over (the spec has no binary treatment column in the panel)")
        return math.log(2.0) / n_post_years
    hit = panel.loc[(panel[unit] == province_code) & (panel[time] == pre_year), outcome].dropna()
    if len(hit) != 1:
        raise DataError(source or paths.ANALYSIS_PANEL, f"no single value of {outcome!r} for {unit} {province_code} "
                        f"in {pre_year} (found {len(hit)}), needed for the doubling rule", column=outcome)
    if not hit.iloc[0] > 0:
        raise DataError(source or paths.ANALYSIS_PANEL, f"{outcome!r} of {unit} {province_code} in {pre_year} is "
                        f"{hit.iloc[0]}: a doubling of a non-positive level is not an effect size", column=outcome)
    return float(hit.iloc[0])


def exposure_sd(panel: pd.DataFrame, exposure: str, unit: str = "province_code", source: Path | None = None) -> float:
    """Cross-unit SD (ddof = 1, as the _z exposures are standardised) of a time-invariant exposure."""
    per_unit = panel.groupby(unit)[exposure].agg(["nunique", "first"])
    if (per_unit["nunique"] > 1).any():
        bad = per_unit.index[per_unit["nunique"] > 1][0]
        raise DataError(source or paths.ANALYSIS_PANEL, f"exposure {exposure!r} varies over time within {unit} {bad}; "
                        "an effect per SD of exposure needs a time-invariant exposure", column=exposure)
    return float(per_unit["first"].dropna().std(ddof=1))


# ---- config -------------------------------------------------------------------------------------------------------

def load_config(path: Path = CONFIG) -> dict:
    """Read and validate configs/power.yaml through :func:`analysis.config_models_exhibits.power_model` (an unknown
    key, a missing key or a bad value is a DataError naming the file and the dotted key); returns the parsed mapping."""
    from analysis import schema
    from analysis.config_models_exhibits import power_model

    try:
        cfg = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(path, f"cannot read the power config: {exc}") from None
    schema.validate(power_model(RULES), cfg, path)
    return cfg


# ---- one row per spec × term ------------------------------------------------------------------------------------

def read_estimates(estimates_dir: Path, spec_id: str) -> tuple[pd.DataFrame, dict, Path]:
    parquet = Path(estimates_dir) / f"{spec_id}.parquet"
    sidecar = parquet.with_suffix(".json")
    for path in (parquet, sidecar):
        if not path.exists():
            raise DataError(path, f"estimates for headline spec {spec_id!r} not found "
                            "(run python -m analysis.estimate)")
    return pd.read_parquet(parquet), json.loads(sidecar.read_text(encoding="utf-8")), parquet


def reference_distribution(row: pd.Series, source: Path) -> tuple[str, float]:
    """(label, df) of the estimate's inference: t(df_t) when the file reports t degrees of freedom, normal when it
    reports a standard error without them, "placebo rank" when there is no standard error (synthetic control)."""
    if not np.isfinite(row.get("std_error", np.nan)):
        if "n_donors" not in row.index:
            raise DataError(source, f"term {row['term']!r}: no standard error and no n_donors", column="std_error")
        return "placebo rank", float("nan")
    df_t = row.get("df_t", np.nan)
    if pd.notna(df_t) and np.isfinite(df_t):
        return f"t({int(df_t)})", float(df_t)
    return "normal", float("nan")


def _check_ci(row: pd.Series, df: float, alpha: float, source: Path) -> None:
    low, high = confidence_interval(row["estimate"], row["std_error"], None if np.isnan(df) else df, 1 - alpha)
    tol = 1e-6 * max(row["std_error"], 1e-12)
    if not (abs(low - row["ci_low"]) <= tol and abs(high - row["ci_high"]) <= tol):
        raise DataError(source, f"term {row['term']!r}: the reported CI [{row['ci_low']}, {row['ci_high']}] is not "
                        f"estimate ± quantile × SE under the reference distribution read from the file "
                        f"({'normal' if np.isnan(df) else f't({int(df)})'}): [{low}, {high}]", column="ci_low")


def _post_years(panel: pd.DataFrame, spec: dict) -> int | None:
    treatment = spec.get("treatment")
    if not treatment or treatment not in panel.columns:
        return None
    return int(panel.loc[panel[treatment] > 0, spec.get("time", "year")].nunique())


def power_rows(estimates_dir: Path, panel: pd.DataFrame, cfg: dict, panel_file: Path = paths.ANALYSIS_PANEL,
               config_file: Path = CONFIG) -> pd.DataFrame:
    """One row per configured spec × term (columns :data:`COLUMNS`), in config order; ``panel_file`` and
    ``config_file`` only name the inputs in error messages."""
    alpha, power = float(cfg["alpha"]), float(cfg["power"])
    rules = cfg["smallest_effect"]
    contrast = float(rules["exposure_contrast_sd"])
    rows = []
    for spec_id, term_templates in cfg["specs"].items():
        table, sidecar, source = read_estimates(estimates_dir, spec_id)
        spec = sidecar["spec"]
        outcome, unit, time = spec["outcome"], spec.get("unit", "province_code"), spec.get("time", "year")
        for column in [outcome] + ([spec["exposure"]] if spec.get("exposure") else []):
            if column not in panel.columns:
                raise DataError(panel_file, f"column {column!r} of spec {spec_id!r} not in the panel", column=column)
        log_change = outcome in rules["log_change_outcomes"]
        deltas = {
            "within_province_sd": within_province_sd(panel, outcome, unit),
            "doubling": doubling_effect(panel, outcome, rules["doubling"]["province_code"],
                                        rules["doubling"]["pre_year"], log_change, _post_years(panel, spec),
                                        unit, time, panel_file),
        }
        if spec.get("exposure"):
            sd_x = exposure_sd(panel, spec["exposure"], unit, panel_file)
            scale = 1.0 / (contrast * sd_x)
            effect_scale = f"per unit of {spec['exposure']} (full effect over {contrast:g} SD of exposure)"
        else:
            sd_x, scale, effect_scale = float("nan"), 1.0, "ATT (treated vs controls)"
        for template in term_templates:
            try:
                term = template.format(**{k: v for k, v in spec.items() if isinstance(v, (str, int, float))})
            except KeyError as exc:
                raise DataError(config_file, f"specs.{spec_id}: term {template!r} names {exc}, which the spec "
                                "lacks") from None
            hit = table[table["term"] == term]
            if len(hit) != 1:
                raise DataError(source, f"term {term!r} found {len(hit)} times (expected once); terms: "
                                f"{', '.join(map(str, table['term']))}", column="term")
            row = hit.iloc[0]
            label, df = reference_distribution(row, source)
            d = None if np.isnan(df) else df
            has_se = label != "placebo rank"
            bound = deltas[rules["bound"]] * scale
            bound_doubling = deltas["doubling"] * scale
            out = {
                "spec_id": spec_id, "term": term, "outcome": outcome, "estimator": spec["estimator"],
                "estimate": float(row["estimate"]), "std_error": float(row["std_error"]) if has_se else np.nan,
                "df": df, "reference_distribution": label,
                "equivalence_bound": bound,
                "smallest_effect_rule": f"{rules['bound']}" + (f" / ({contrast:g} x SD of exposure)"
                                                               if spec.get("exposure") else ""),
                "smallest_effect": deltas[rules["bound"]], "effect_scale": effect_scale, "exposure_sd": sd_x,
                "delta_within_province_sd": deltas["within_province_sd"], "delta_doubling": deltas["doubling"],
                "equivalence_bound_doubling": bound_doubling,
                "p_value": float(row["p_value"]) if pd.notna(row.get("p_value")) else np.nan,
                "p_value_wild": float(row["p_value_wild"]) if pd.notna(row.get("p_value_wild")) else np.nan,
                "min_attainable_p": (min_attainable_p(row["n_donors"]) if "n_donors" in row.index
                                     and pd.notna(row["n_donors"]) else np.nan),
                "n_donors": float(row["n_donors"]) if "n_donors" in row.index else np.nan,
                "units": "log points per year" if log_change else "index points",
                # why an estimate file gives no p-value (e.g. synth: a perfect treated pre-period fit leaves the
                # RMSPE ratio undefined), from its p_value_statistic column; empty where there is a p-value
                "p_value_missing_reason": (str(row["p_value_statistic"]).removeprefix("none:").strip()
                                           if pd.isna(row.get("p_value")) and isinstance(
                                               row.get("p_value_statistic"), str) else ""),
            }
            if has_se:
                _check_ci(row, df, alpha, source)
                se = float(row["std_error"])
                ci90 = confidence_interval(out["estimate"], se, d, 1 - 2 * alpha)
                p_tost = tost(out["estimate"], se, bound, d)[2]
                out.update(mde_80=mde(se, d, alpha, power), ci_low=float(row["ci_low"]), ci_high=float(row["ci_high"]),
                           ci90_low=ci90[0], ci90_high=ci90[1], p_tost=p_tost, equivalent=bool(p_tost < alpha),
                           p_tost_doubling=tost(out["estimate"], se, bound_doubling, d)[2])
            else:
                out.update(mde_80=np.nan, ci_low=np.nan, ci_high=np.nan, ci90_low=np.nan, ci90_high=np.nan,
                           p_tost=np.nan, equivalent=pd.NA, p_tost_doubling=np.nan)
            rows.append(out)
    return pd.DataFrame(rows, columns=COLUMNS)


# ---- exhibit ------------------------------------------------------------------------------------------------------

def term_label(term: str) -> str:
    """The term's label from the tables' label map (configs/tables.yaml ``labels:``), so that tab09 shows no raw
    column name; a term the map does not know (the simulated panels of the tests) keeps its name."""
    from analysis.models.table_labels import LABELS

    try:
        return LABELS.term(term)
    except DataError:
        return term


def sentence(r: pd.Series) -> str:
    """The README finding for one row: what is ruled out, in the outcome's units."""
    per = " per SD of exposure" if r["effect_scale"].startswith("per unit") else ""
    head = f"{r['outcome']} ({r['spec_id']}, {term_label(r['term'])})"
    if r["reference_distribution"] == "placebo rank":
        if pd.notna(r["p_value"]):
            placebo = f"placebo p = {r['p_value']:.3f}"
        else:
            reason = r.get("p_value_missing_reason")
            placebo = "no placebo p-value" + (f" — {reason}" if isinstance(reason, str) and reason else "")
        return (f"{head}: estimate {r['estimate']:.4f} {r['units']}, {placebo}; the smallest "
                f"attainable placebo p-value with {int(r['n_donors'])} donors is {r['min_attainable_p']:.3f}; no "
                f"standard error, so no bounds.")
    verdict = "rejected" if r["equivalent"] else "not rejected"
    p_tost = "< 0.001" if r["p_tost"] < 0.001 else f"= {r['p_tost']:.3f}"
    return (f"{head}: effects larger than {r['ci_high']:.4f} or smaller than {r['ci_low']:.4f} {r['units']}{per} are "
            f"ruled out at 95%; the design detects ±{r['mde_80']:.4f} with 80% power; effects of "
            f"±{r['equivalence_bound']:.4f} or more (smallest effect of interest: {r['smallest_effect_rule']}) "
            f"are {verdict} by the equivalence test (p_TOST {p_tost}).")


def render(frame: pd.DataFrame, cfg: dict) -> tuple[str, str]:
    """(LaTeX, Markdown) of the short table; the Markdown ends with the generated sentences."""
    from analysis.models.table_cells import fmt
    from analysis.models.tables import to_latex, to_markdown

    header = ["Spec", "Term", "Estimate", "SE", "Ref. dist.", f"MDE ({cfg['power']:.0%})",
              f"{1 - cfg['alpha']:.0%} CI", "Bound", "p TOST", "p-value (placebo floor)"]
    body = []
    for _, r in frame.iterrows():
        ci = "" if pd.isna(r["ci_low"]) else f"[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"
        floor = "" if pd.isna(r["min_attainable_p"]) else f" ({fmt(r['min_attainable_p'], 3)})"
        body.append([r["spec_id"], term_label(r["term"]), fmt(r["estimate"]), fmt(r["std_error"]),
                     r["reference_distribution"],
                     fmt(r["mde_80"]), ci, fmt(r["equivalence_bound"]), fmt(r["p_tost"], 3),
                     fmt(r["p_value"], 3) + floor])
    caption = "What the data can rule out: minimum detectable effects, 95% bounds and equivalence tests"
    notes = (f"MDE: (q(1-a/2) + q(power)) x SE, a = {cfg['alpha']}, under each estimate's reference distribution "
             "(t(G-1) for CRV1 regressions, normal for the bootstrap and placebo standard errors; Bloom 1995). "
             "Bound: the smallest effect of interest, one within-province SD of the outcome "
             f"({cfg['smallest_effect']['bound']}), divided by {cfg['smallest_effect']['exposure_contrast_sd']:g} "
             "SDs of exposure for the exposure designs (coefficients per SD of exposure). p TOST: two one-sided "
             "tests of |effect| >= bound (Schuirmann 1987); below the size, the 90% CI lies inside the bound. "
             "Synthetic control has no standard error: its p-value is the placebo-in-space rank, and the "
             "smallest attainable value 1/(J+1) is in parentheses. power.csv also holds the bound of the study's "
             "'doubling' claim in the outcome's units (equivalence_bound_doubling, p_tost_doubling).")
    latex = to_latex(caption, TABLE_STEM, header, body, notes)
    markdown = to_markdown(caption, header, body, notes)
    markdown += "\n" + "\n".join(f"- {sentence(r)}" for _, r in frame.iterrows()) + "\n"
    return latex, markdown


@guard
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--estimates-dir", type=Path, default=paths.ESTIMATES)
    parser.add_argument("--panel", type=Path, default=paths.ANALYSIS_PANEL,
                        help="analysis panel the smallest effects of interest are computed from")
    parser.add_argument("--out-dir", type=Path, default=paths.PROCESSED, help=f"folder of {paths.POWER_NAME}")
    parser.add_argument("--figures-dir", type=Path, default=paths.FIGURES, help=f"folder of {TABLE_STEM}.tex/.md")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        if not args.panel.exists():
            raise DataError(args.panel, "analysis panel not found (run python -m analysis.analysis_panel)")
        frame = power_rows(args.estimates_dir, pd.read_parquet(args.panel), cfg, args.panel, args.config)
        latex, markdown = render(frame, cfg)
    except DataError as exc:
        return report(exc)
    write_csv(frame, args.out_dir / paths.POWER_NAME)
    write_text(latex, args.figures_dir / f"{TABLE_STEM}.tex")
    write_text(markdown, args.figures_dir / f"{TABLE_STEM}.md")
    print(f"wrote {paths.relative(args.out_dir / paths.POWER_NAME)}, "
          f"{paths.relative(args.figures_dir / TABLE_STEM)}.tex/.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
