"""Reference results: one generated page (``RESULTS.md``) with every headline number, and the check of a build
against the committed references.

``python -m analysis.results write`` reads the processed outputs of the pipeline — ``claims_check.csv``,
``index_validity.csv`` (+ ``indices.parquet`` for the pooled-vs-goalposts comparison), ``estimates/*.parquet``,
``power.csv``, ``multiverse_results.parquet`` + ``multiverse_summary.json`` (+ ``multiverse_inference.json`` when
the multiverse stage writes it) and ``cleaning_log.csv`` — and writes ``data/processed/RESULTS.md``. It only
formats: every number is read from a file, none is typed here. Numbers are printed with four significant digits
(shares as percentages with one decimal), so the page is stable across machines whose floating-point results
differ in the last bits, while anything a reader would quote is there.

``python -m analysis.results hashes`` writes the SHA-256 of every deterministic output (see :func:`reference_files`)
in ``sha256sum`` format; ``python -m analysis.results verify`` compares the current outputs with the committed
references (``results/reference_sha256.txt``, ``results/RESULTS.md``) without rebuilding anything and grades the
rebuild in the spirit of the AEA replicators' report:

- ``identical``: every reference file exists and has the reference SHA-256 (exit 0);
- ``reproduced with minor differences``: ``RESULTS.md`` is identical — every headline number agrees to the printed
  precision — but some files differ in bytes (floating-point noise from another platform or library build); the
  differing files are listed (exit 1);
- ``not reproduced``: ``RESULTS.md`` differs; the differing lines are shown (exit 1);
- files missing from the build, and new outputs that have no reference, are listed (exit 1).

Exit 2 (no traceback) when a reference or input file is missing or malformed.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis import paths
from analysis.cli import guard, report
from analysis.io import DataError, write_text

REFERENCE_DIR = paths.ROOT / "results"
REFERENCE_HASHES = REFERENCE_DIR / "reference_sha256.txt"
REFERENCE_RESULTS = REFERENCE_DIR / paths.RESULTS_NAME

# Folders whose outputs are hashed, relative to the repository root. Notebooks are not: their executed copies are
# for reading and their byte-identity is not (yet) guaranteed across builds.
HASHED_DIRS = ("data/processed", "figures")
# Not outputs but build machinery or caches: the multiverse cache (one file per specification, keyed by code
# version), make stamps and the generated make rules.
EXCLUDED_PARTS = {"multiverse_cache", "__pycache__"}
EXCLUDED_NAMES = {".gitkeep", paths.RAW_VERIFIED_NAME, paths.ESTIMATES_STAMP_NAME, paths.EXHIBIT_RULES_NAME}


ESTIMATOR_GROUPS = [
    ("Continuous DiD and event studies (exposure × post)", ("cont_did", "event_study", "feols")),
    ("First Entity-List listing: staggered estimators", ("att_gt", "sunab", "did_imputation", "bacon")),
    ("Panel FE / RE / first differences, Hausman", ("panel_fe", "panel_re", "first_diff", "hausman", "panel")),
    ("Synthetic control", ("synth",)),
    ("Synthetic difference-in-differences", ("sdid",)),
]

METRIC_LABELS = {
    "capability_index": "D (capability index)",
    "comprehensive_development": "T (comprehensive development)",
    "transfer_civ_to_mil": "civil→military transfer",
    "transfer_mil_to_civ": "military→civil transfer",
    "u_military": "U_military",
    "u_civil": "U_civil",
}


# ---- formatting ---------------------------------------------------------------------------------------------------
def num(x, digits: int = 4) -> str:
    """A number with ``digits`` significant digits (scientific below 1e-4), '' for missing; never '-0'."""
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return ""
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 1e6:
        return str(int(x))
    if abs(x) < 1e-4:
        return f"{x:.{digits - 1}e}"
    text = f"{x:.{digits}g}"
    return text


def pct(x) -> str:
    """A share in [0, 1] as a percentage with one decimal."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{100 * float(x):.1f}%"


def md_table(frame: pd.DataFrame) -> str:
    """A Markdown table of already formatted cells (pipes escaped)."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|").replace("\n", " ") for v in row) + " |")
    return "\n".join(lines)


# ---- inputs ---------------------------------------------------------------------------------------------------------
def _read(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    if not path.exists():
        raise DataError(path, "not found; run the stage that produces it (make all) before writing RESULTS.md")
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    missing = [c for c in (columns or []) if c not in frame.columns]
    if missing:
        raise DataError(path, f"missing column(s) {missing}; rebuild it with the current code", column=missing[0])
    return frame


def _read_json(path: Path) -> dict:
    if not path.exists():
        raise DataError(path, "not found; run the stage that produces it (make all) before writing RESULTS.md")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON ({exc.msg})", row=exc.lineno) from None


# ---- sections -------------------------------------------------------------------------------------------------------
def section_validity(processed: Path, default_method: str, goalposts_methods: list[str]) -> str:
    validity = _read(processed / paths.INDEX_VALIDITY_NAME,
                     ["method", "metric", "within_province_share", "twfe_residual_share", "corr_military_civil",
                      "corr_military_civil_twfe", "corr_log_rd_total", "corr_log_rd_total_twfe"])
    lines = ["## What the indices measure", "",
             f"Source: `index_validity.csv`. Default construction: `{default_method}`. Variance shares: the share of "
             "the index's variance within provinces, and the share left after province and year effects.", ""]
    rows = validity[validity["metric"] == "capability_index"]
    table = pd.DataFrame({
        "method": [f"`{m}`" + (" (default)" if m == default_method else "") for m in rows["method"]],
        "within-province share": rows["within_province_share"].map(pct),
        "after province and year effects": rows["twfe_residual_share"].map(pct),
        "corr(U_military, U_civil)": rows["corr_military_civil"].map(num),
        "same, two-way residuals": rows["corr_military_civil_twfe"].map(num),
        "corr(index, log R&D)": rows["corr_log_rd_total"].map(num),
        "same, two-way residuals ": rows["corr_log_rd_total_twfe"].map(num),
    })
    lines += ["Capability index (D) under each construction:", "", md_table(table), ""]
    default = validity[validity["method"] == default_method]
    table = pd.DataFrame({
        "metric": default["metric"].map(lambda m: f"`{m}`"),
        "within-province share": default["within_province_share"].map(pct),
        "after province and year effects": default["twfe_residual_share"].map(pct),
        "corr(metric, log R&D)": default["corr_log_rd_total"].map(num),
    })
    lines += [f"Every metric under the default construction (`{default_method}`):", "", md_table(table), ""]
    indices_path = processed / paths.INDICES_NAME
    if goalposts_methods and indices_path.exists():
        from analysis.index.validity import scale_dependence

        indices = pd.read_parquet(indices_path)
        for goalposts in goalposts_methods:
            if goalposts not in set(indices["method"]):
                continue
            s = scale_dependence(indices, default_method, goalposts)
            lines.append(f"Pooled min–max (`{default_method}`) against base-period goalposts (`{goalposts}`), "
                         f"capability index over {s['n_province_years']} province-years: correlation "
                         f"{num(s['corr_levels'])} in levels, {num(s['corr_twfe_residuals'])} after province and "
                         f"year effects; rank correlation in {s['last_year']} {num(s['spearman_last_year'])}.")
        lines.append("")
    return "\n".join(lines)


def section_claims(processed: Path) -> str:
    claims = _read(processed / paths.CLAIMS_CHECK_NAME,
                   ["claim_id", "reading", "claim", "reading_text", "quote", "source", "metric", "threshold", "method",
                    "is_default", "index_window", "value", "max_attainable", "passes", "verdict"])
    lines = ["## Claims check", "",
             "Source: `claims_check.csv`. Each published claim, under each reading, on each metric and index "
             "construction: `holds`, `fails`, `unreachable` (the metric's ceiling — bound 1 ÷ start value — is below "
             "the threshold, so the claim cannot hold by construction) or `not evaluable`. Counts are numbers of "
             "constructions.", ""]
    symbol = {"yes": "holds", "no": "fails", "unreachable": "unreachable", "not evaluable": "n/e"}
    for (claim_id, reading), group in claims.groupby(["claim_id", "reading"], sort=False):
        first = group.iloc[0]
        methods = list(dict.fromkeys(group["method"]))
        metrics = list(dict.fromkeys(group["metric"]))
        n_methods = len(methods)
        lines += [f"### {first['claim']} — reading `{reading}`", "",
                  f"Reading: {first['reading_text']}; threshold {num(first['threshold'])}; index window "
                  f"{first['index_window']}.", ""]
        if isinstance(first["quote"], str) and first["quote"]:
            lines += [f"> {first['quote']}", "", f"Source: {first['source']}", ""]
        summary = []
        for metric in metrics:
            g = group[group["metric"] == metric]
            counts = g["passes"].value_counts()
            evaluable = int((g["passes"] != "not evaluable").sum())
            default = g[g["is_default"].astype(bool)]
            summary.append({
                "metric": METRIC_LABELS.get(metric, metric),
                "holds": f"{int(counts.get('yes', 0))} of {n_methods}",
                "fails": int(counts.get("no", 0)),
                "unreachable": int(counts.get("unreachable", 0)),
                "evaluable": f"{evaluable} of {n_methods}",
                "default value": num(default["value"].iloc[0]) if len(default) else "",
                "default ceiling": num(default["max_attainable"].iloc[0]) if len(default) else "",
                "verdict": g["verdict"].iloc[0],
            })
        wide = group.pivot_table(index="method", columns="metric", values="passes", aggfunc="first", sort=False)
        all_hold = int((wide[metrics] == "yes").all(axis=1).sum())
        lines += [md_table(pd.DataFrame(summary)), "",
                  f"Holds on all {len(metrics)} metrics under {all_hold} of {n_methods} constructions.", ""]
        cells = []
        for method in methods:
            row = {"construction": f"`{method}`" + (" (default)" if bool(
                group.loc[group["method"] == method, "is_default"].iloc[0]) else "")}
            for metric in metrics:
                r = group[(group["method"] == method) & (group["metric"] == metric)].iloc[0]
                cell = f"{num(r['value'])} {symbol.get(r['passes'], r['passes'])}".strip()
                if r["passes"] == "unreachable":
                    cell += f" (ceiling {num(r['max_attainable'])})"
                row[METRIC_LABELS.get(metric, metric)] = cell
            cells.append(row)
        lines += [md_table(pd.DataFrame(cells)), ""]
    return "\n".join(lines)


def _estimate_table(frame: pd.DataFrame) -> str:
    has = frame.columns.__contains__
    table = pd.DataFrame({
        "spec": frame["spec_id"].map(lambda s: f"`{s}`"),
        "term": frame["term"],
        "estimate": frame["estimate"].map(num),
        "SE": frame["std_error"].map(num),
        "95% CI": [f"{num(lo)} to {num(hi)}" if not (pd.isna(lo) and pd.isna(hi)) else ""
                   for lo, hi in zip(frame["ci_low"], frame["ci_high"])],
        "p (CRV1 / analytic)": frame["p_value"].map(num),
    })
    if has("p_value_wild") and frame["p_value_wild"].notna().any():
        table["wild p"] = frame["p_value_wild"].map(num)
    if has("p_value_placebo") and frame["p_value_placebo"].notna().any():
        table["placebo p"] = frame["p_value_placebo"].map(num)
        table["smallest attainable p"] = frame["p_value_floor"].map(num) if has("p_value_floor") else ""
    if has("identified_low") and frame["identified_low"].notna().any():
        table["identified range"] = [f"{num(lo)} to {num(hi)}" if not pd.isna(lo) else "identified"
                                     for lo, hi in zip(frame["identified_low"], frame["identified_high"])]
    if has("n_donors") and frame["n_donors"].notna().any():
        table["donors"] = frame["n_donors"].map(num)
    table["N"] = frame["n_obs"].map(num)
    if has("n_clusters") and frame["n_clusters"].notna().any():
        table["clusters"] = frame["n_clusters"].map(num)
    if has("n_clusters_level") and frame["n_clusters_level"].notna().any():
        table["provinces in group"] = frame["n_clusters_level"].map(num)
    if has("n_treated_clusters"):
        table["treated clusters"] = frame["n_treated_clusters"].map(num)
    return md_table(table)


def section_estimates(estimates_dir: Path) -> str:
    files = sorted(p for p in estimates_dir.glob("*.parquet") if p.stem.count(".") == 0)
    if not files:
        raise DataError(estimates_dir, "no estimate files; run make estimates before writing RESULTS.md")
    frames = [_read(p, ["term", "estimate", "std_error", "p_value", "ci_low", "ci_high", "n_obs", "estimator"])
              .assign(spec_id=p.stem) for p in files]
    lines = ["## Estimates", "",
             "Source: `estimates/<spec>.parquet` (one per `configs/specs/<spec>.yaml`), every row: pooled "
             "coefficients, event times (e=k: k years from the event), aggregated ATTs, Rambachan–Roth sets (`honest …` rows: the 95% CI "
             "column is the robust set), in-time placebos. p (CRV1 / analytic): cluster-robust by province with "
             "t(G−1), or the estimator's own analytic p-value; wild p: wild cluster bootstrap (restricted, Webb "
             "weights, exact with year effects); placebo p: rank of the treated RMSPE ratio among the placebos.", ""]
    used: set[str] = set()
    for title, estimators in ESTIMATOR_GROUPS:
        group = [f for f in frames if str(f["estimator"].iloc[0]) in estimators and f["spec_id"].iloc[0] not in used]
        if not group:
            continue
        used |= {f["spec_id"].iloc[0] for f in group}
        rows = pd.concat(group, ignore_index=True)
        lines += [f"### {title}", "", _estimate_table(rows), ""]
    rest = [f for f in frames if f["spec_id"].iloc[0] not in used]
    if rest:
        rows = pd.concat(rest, ignore_index=True)
        lines += ["### Other estimators", "", _estimate_table(rows), ""]
    return "\n".join(lines)


def section_power(processed: Path) -> str:
    power = _read(processed / paths.POWER_NAME, ["spec_id", "term", "estimate", "std_error", "mde_80", "ci_low",
                                                  "ci_high", "equivalence_bound", "p_tost", "equivalent",
                                                  "p_tost_doubling", "units"])
    table = pd.DataFrame({
        "spec": power["spec_id"].map(lambda s: f"`{s}`"),
        "estimate": power["estimate"].map(num),
        "SE": power["std_error"].map(num),
        "MDE (80% power)": power["mde_80"].map(num),
        "95% bounds": [f"{num(lo)} to {num(hi)}" if not pd.isna(lo) else "" for lo, hi in
                       zip(power["ci_low"], power["ci_high"])],
        "equivalence bound ±": power["equivalence_bound"].map(num),
        "within-province SD": (power["delta_within_province_sd"].map(num)
                               if "delta_within_province_sd" in power.columns else ""),
        "p_TOST": power["p_tost"].map(num),
        "equivalent": power["equivalent"].map(lambda v: "" if pd.isna(v) else ("yes" if str(v) == "True" else "no")),
        "p_tost_doubling": power["p_tost_doubling"].map(num),
        "units": power["units"],
    })
    equivalent = power[power["equivalent"].astype(str) == "True"]
    with_se = power[power["std_error"].notna()]
    lines = ["## What is ruled out", "",
             "Source: `power.csv`. 95% bounds: effects outside them are ruled out at 95%; MDE: the effect detected "
             "with 80% power at 5%; p_TOST: equivalence test against ± the bound; p_tost_doubling: the same against "
             "the study's doubling in the outcome's units.", "", md_table(table), ""]
    if len(equivalent):
        lines.append(f"Equivalence rejected (p_TOST < 0.05) for {len(equivalent)} of {len(power)} estimates; the "
                     f"largest p_TOST among them is {num(equivalent['p_tost'].max())}.")
    if len(with_se):
        lines.append(f"Largest p_tost_doubling among the {len(with_se)} estimates with a standard error: "
                     f"{num(with_se['p_tost_doubling'].max())}.")
    return "\n".join(lines + [""])


def _shares(frame: pd.DataFrame) -> dict:
    negative = frame["ci_high"] < 0
    positive = frame["ci_low"] > 0
    return {"specifications": len(frame), "CI excludes zero": pct((negative | positive).mean()),
            "negative, CI excludes zero": pct(negative.mean()), "positive, CI excludes zero": pct(positive.mean()),
            "estimate < 0": pct((frame["estimate"] < 0).mean()), "median estimate": num(frame["estimate"].median())}


def section_multiverse(processed: Path) -> str:
    summary = _read_json(processed / paths.MULTIVERSE_SUMMARY_NAME)
    results = _read(processed / paths.MULTIVERSE_RESULTS_NAME, ["estimate", "ci_low", "ci_high", "error"])
    ok = results[results["error"].fillna("") == ""]
    lines = ["## Multiverse (specification curve)", "",
             f"Source: `multiverse_results.parquet`, `multiverse_summary.json` (`{summary.get('config', '')}`). "
             f"{summary.get('n_specifications', len(results))} specifications ({summary.get('n_failed', 0)} failed); "
             f"estimates from {num(summary.get('estimate_min'))} to {num(summary.get('estimate_max'))}, median "
             f"{num(summary.get('estimate_median'))}. A 95% CI excludes zero in "
             f"{pct(summary.get('share_ci_excludes_zero'))} of the specifications.", ""]
    rows = [{"group": "all", **_shares(ok)}]
    for column, label in [("treatment_kind", "design"), ("index_indicator_set", "indicator set"),
                          ("estimator", "estimator"), ("outcome", "outcome"),
                          ("index_normalisation", "normalisation"), ("index_weighting", "weighting")]:
        if column in ok.columns:
            for value, g in ok.groupby(column, sort=True):
                rows.append({"group": f"{label}: `{value}`", **_shares(g)})
    lines += [md_table(pd.DataFrame(rows)), ""]
    inference = processed / paths.MULTIVERSE_INFERENCE_NAME
    if inference.exists():
        data = _read_json(inference)
        lines += ["Inference on the whole curve (`multiverse_inference.json`):", ""]
        for key, value in sorted(_flatten(data).items()):
            lines.append(f"- `{key}`: {num(value) if isinstance(value, (int, float)) else value}")
        lines.append("")
    else:
        lines += ["The curve's estimates are correlated and have no joint test here, so the share is not evidence "
                  "in either direction.", ""]
    return "\n".join(lines)


def _flatten(data, prefix: str = "") -> dict:
    out = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    elif isinstance(data, list) and all(not isinstance(v, (dict, list)) for v in data) and len(data) <= 10:
        out[prefix.rstrip(".")] = ", ".join(num(v) if isinstance(v, (int, float)) else str(v) for v in data)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.update(_flatten(v, f"{prefix}{i}."))
    else:
        out[prefix.rstrip(".")] = data
    return out


def section_cleaning(processed: Path) -> str:
    log = _read(processed / paths.CLEANING_LOG_NAME, ["step", "rule", "n_rows"])
    counts = (log.groupby(["step", "rule"], sort=True)
              .agg(entries=("rule", "size"), rows=("n_rows", "sum")).reset_index())
    table = pd.DataFrame({"step": counts["step"], "rule": counts["rule"].map(lambda r: f"`{r}`"),
                          "log entries": counts["entries"], "rows affected": counts["rows"].map(num)})
    return "\n".join(["## Corrections made to the raw data", "",
                      f"Source: `cleaning_log.csv` ({len(log)} entries; each names the file, the rule and the "
                      "rows).", "", md_table(table), ""])


def index_methods(config_path: Path) -> tuple[str, list[str]]:
    """The default index method and the methods that use base-period goalposts, from ``configs/index.yaml``."""
    if not config_path.exists():
        raise DataError(config_path, "not found")
    cfg = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    if "default_method" not in cfg:
        raise DataError(config_path, "no default_method", key="default_method")
    methods = cfg.get("methods") or {}
    goalposts = [name for name, m in methods.items()
                 if isinstance(m, dict) and m.get("normalisation") == "minmax_goalposts"]
    return str(cfg["default_method"]), goalposts


def results_markdown(processed: Path = paths.PROCESSED, estimates_dir: Path | None = None,
                     index_config: Path = paths.INDEX_CONFIG) -> str:
    """The text of RESULTS.md from the processed outputs in ``processed`` (pure: reads, returns a string)."""
    estimates_dir = estimates_dir or processed / "estimates"
    default_method, goalposts = index_methods(index_config)
    parts = ["# Reference results", "",
             "Generated by `python -m analysis.results write` (`make results`) from the processed outputs; do not "
             "edit. Every number is read from the file named in its section and printed with four significant "
             "digits (shares as percentages). The committed copy is `results/RESULTS.md`; `make verify-results` "
             "compares a build with it and with `results/reference_sha256.txt`.", "",
             section_validity(processed, default_method, goalposts),
             section_claims(processed),
             section_estimates(estimates_dir),
             section_power(processed),
             section_multiverse(processed),
             section_cleaning(processed)]
    return "\n".join(parts).rstrip("\n") + "\n"


# ---- reference hashes and verification ------------------------------------------------------------------------
def reference_files(root: Path = paths.ROOT) -> list[str]:
    """Every deterministic output under ``data/processed`` and ``figures`` (relative POSIX paths, sorted): tables,
    figures, processed data, estimate files and sidecars, the multiverse results and ``RESULTS.md``; not caches,
    stamps or generated make rules."""
    out = []
    for folder in HASHED_DIRS:
        base = root / folder
        if not base.exists():
            continue
        for path in base.rglob("*"):
            rel = path.relative_to(root)
            if not path.is_file() or path.name in EXCLUDED_NAMES or EXCLUDED_PARTS & set(rel.parts):
                continue
            if ".tmp" in path.name or path.name.startswith("."):
                continue  # atomic-write temporaries, hidden files
            out.append(rel.as_posix())
    return sorted(out)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hashes_text(root: Path = paths.ROOT) -> str:
    """``<sha256>  <path>`` per reference file (``sha256sum -c`` reads it)."""
    return "".join(f"{file_sha256(root / rel)}  {rel}\n" for rel in reference_files(root))


def read_hashes(path: Path) -> dict[str, str]:
    if not path.exists():
        raise DataError(path, "reference hashes not found; run make update-results after a full build")
    out = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        m = re.fullmatch(r"([0-9a-f]{64}) [ *](\S.*)", line)
        if not m:
            raise DataError(path, "expected '<sha256>  <path>'", row=i)
        out[m.group(2)] = m.group(1)
    return out


def verify(root: Path = paths.ROOT, hashes_path: Path = REFERENCE_HASHES,
           results_path: Path = REFERENCE_RESULTS) -> tuple[int, str]:
    """Compare the outputs under ``root`` with the references; returns (exit code, report text). Rebuilds nothing."""
    reference = read_hashes(hashes_path)
    if not results_path.exists():
        raise DataError(results_path, "reference RESULTS.md not found; run make update-results after a full build")
    current = set(reference_files(root))
    missing = sorted(p for p in reference if not (root / p).is_file())
    changed = sorted(p for p in reference if p not in missing and file_sha256(root / p) != reference[p])
    new = sorted(current - set(reference))
    built_results = root / "data/processed" / paths.RESULTS_NAME
    lines = [f"Compared {len(reference)} reference files ({paths.relative(hashes_path)}) with the outputs under "
             f"{', '.join(HASHED_DIRS)}; nothing was rebuilt.", ""]
    diff: list[str] = []
    if built_results.is_file():
        ref_text = results_path.read_text(encoding="utf-8").splitlines()
        new_text = built_results.read_text(encoding="utf-8").splitlines()
        diff = list(difflib.unified_diff(ref_text, new_text, "results/RESULTS.md (reference)",
                                         "data/processed/RESULTS.md (this build)", n=0, lineterm=""))
    if not missing and not changed and not new and not diff:
        lines.append(f"Grade: identical — all {len(reference)} files have the reference SHA-256, and RESULTS.md is "
                     "identical to the committed copy.")
        return 0, "\n".join(lines)
    if not built_results.is_file():
        grade = "not reproduced — data/processed/RESULTS.md was not built (run make all)"
    elif diff:
        grade = "not reproduced — headline numbers differ from results/RESULTS.md (lines below)"
    elif changed or missing:
        grade = ("reproduced with minor differences — every headline number in RESULTS.md is identical, but some "
                 "files differ in bytes")
    else:
        grade = "identical for every reference file, but the build has outputs without a reference"
    lines.append(f"Grade: {grade}.")
    identical = len(reference) - len(missing) - len(changed)
    lines.append(f"{identical} of {len(reference)} reference files identical; {len(changed)} differ; "
                 f"{len(missing)} missing; {len(new)} new outputs without a reference.")
    for title, items in [("differ", changed), ("missing", missing), ("new (no reference)", new)]:
        if items:
            lines += ["", f"Files that {title}:" if title == "differ" else f"Files {title}:"]
            lines += [f"  {p}" for p in items]
    if diff:
        lines += ["", "RESULTS.md, reference vs this build:"] + [f"  {d}" for d in diff[:200]]
        if len(diff) > 200:
            lines.append(f"  … {len(diff) - 200} more diff lines")
    lines += ["", "If the change is intended (code or data changed), refresh the references with "
                  "`make update-results` and commit results/."]
    return 1, "\n".join(lines)


@guard
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write RESULTS.md from the processed outputs")
    w.add_argument("--processed", type=Path, default=paths.PROCESSED)
    w.add_argument("--estimates-dir", type=Path, default=None)
    w.add_argument("--index-config", type=Path, default=paths.INDEX_CONFIG)
    w.add_argument("--out", type=Path, default=paths.PROCESSED / paths.RESULTS_NAME)
    h = sub.add_parser("hashes", help="write the SHA-256 of every deterministic output")
    h.add_argument("--root", type=Path, default=paths.ROOT)
    h.add_argument("--out", type=Path, default=REFERENCE_HASHES)
    v = sub.add_parser("verify", help="compare the current outputs with the committed references (rebuilds nothing)")
    v.add_argument("--root", type=Path, default=paths.ROOT)
    v.add_argument("--hashes", type=Path, default=REFERENCE_HASHES)
    v.add_argument("--results", type=Path, default=REFERENCE_RESULTS)
    args = parser.parse_args(argv)
    try:
        if args.command == "write":
            text = results_markdown(args.processed, args.estimates_dir, args.index_config)
            write_text(text, args.out)
            print(f"wrote {paths.relative(args.out)}")
        elif args.command == "hashes":
            text = hashes_text(args.root)
            write_text(text, args.out)
            print(f"wrote {paths.relative(args.out)} ({text.count(chr(10))} files)")
        else:
            code, text = verify(args.root, args.hashes, args.results)
            print(text)
            return code
    except DataError as exc:
        return report(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
