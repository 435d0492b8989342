"""The specification curve (Simonsohn, Simmons and Nelson 2020, Nature Human Behaviour 4, 1208–1214).

Top panel: every specification's estimate, sorted, with its 95% confidence interval (grey bars; specifications
whose interval excludes zero in ink), and zero and the median estimate as reference lines. Bottom panel: for each
choice that varies in the grid, one row per option, with a mark under each specification that uses it — so a
reader sees which choices move the estimate. Failed cells (engine error) are left out and counted in the note.
With the permutation inference (:mod:`analysis.multiverse.permutation`) a third panel, at the bottom, shows the
observed curve of the covered specifications (sorted) against the 2.5/50/97.5% envelope of the curves computed
under permuted treatment assignments (each permuted curve sorted, quantiles taken rank by rank), with the
permutation p-values of the median, the share significant in the dominant direction and Stouffer's Z.
The house style (analysis.figures.style) is used when present; saving is deterministic either way.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.io import atomic_path  # noqa: E402
from analysis.multiverse.grid import CHOICE_COLUMNS  # noqa: E402

CHOICE_LABELS = {
    "index_normalisation": "Normalisation", "index_weighting": "Weights", "index_aggregation": "Aggregation",
    "index_indicator_set": "Indicator set", "outcome": "Outcome", "treatment_kind": "Treatment kind",
    "exposure": "Exposure", "event": "Event date", "treatment": "Treatment", "estimator": "Estimator",
    "controls": "Controls", "sample": "Sample",
}
# Choices shown in the indicator panel: ``treatment`` is exposure × event (shown separately), ``treatment_kind``
# follows from the estimator.
_PANEL_CHOICES = [c for c in CHOICE_COLUMNS if c not in ("treatment", "treatment_kind")]


def _style():
    try:
        from analysis.figures import style
    except ImportError:  # the house style module is optional here
        return None
    return style


def plot_spec_curve(results: pd.DataFrame, stem: str | Path, note: str = "", inference=None) -> list[Path]:
    """Draw the specification curve of ``results`` (rows of multiverse_results) to ``<stem>.pdf`` and ``.png``;
    ``inference``: an :class:`analysis.multiverse.permutation.InferenceRun` adds the envelope panel."""
    ok = results.loc[(results["error"] == "") & results["estimate"].notna()].copy()
    if ok.empty:
        raise ValueError("no successfully estimated specification to plot")
    # Sort by estimate, ties by spec id (the definition's content hash, not the cache key, which changes with the
    # code), so the x position is deterministic and an engine edit that leaves the numbers alone moves nothing.
    ok = ok.sort_values(["estimate", "spec_id"], kind="mergesort").reset_index(drop=True)
    x = np.arange(len(ok))
    varying = [c for c in _PANEL_CHOICES if ok[c].nunique() > 1]
    options = [(c, v) for c in varying for v in sorted(ok[c].unique()) if v != ""]
    n_rows = max(len(options), 1)

    style = _style()
    width = style.TEXT_WIDTH if style else 6.5
    height_top, height_bottom = 2.4, 0.14 * n_rows + 0.3
    if style:
        style.apply_style()
    if inference is None:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(width, height_top + height_bottom), sharex=True,
                                          gridspec_kw={"height_ratios": [height_top, height_bottom]},
                                          layout="constrained")
    else:
        height_null = 2.0
        fig = plt.figure(figsize=(width, height_top + height_bottom + height_null), layout="constrained")
        grid_spec = fig.add_gridspec(3, 1, height_ratios=[height_top, height_bottom, height_null])
        top = fig.add_subplot(grid_spec[0])
        bottom = fig.add_subplot(grid_spec[1], sharex=top)
        null_panel = fig.add_subplot(grid_spec[2])
    ink = style.INK if style else "black"
    grey = style.GREY_LIGHT if style else "#c8c8c8"
    mid = style.GREY_MID if style else "#8c8c8c"
    significant = (ok["ci_low"] > 0) | (ok["ci_high"] < 0)
    colours = np.where(significant, ink, grey)
    lw = 0.6 if len(ok) < 400 else 0.25
    top.vlines(x, ok["ci_low"], ok["ci_high"], colors=colours, linewidth=lw, zorder=1)
    top.scatter(x, ok["estimate"], s=2 if len(ok) > 400 else 5, c=ink, zorder=2, linewidths=0)
    top.axhline(0, color=mid, linewidth=0.8, linestyle="--", zorder=0)
    median = float(ok["estimate"].median())
    top.axhline(median, color=ink, linewidth=0.6, linestyle=":", zorder=0)
    outcomes = ", ".join(sorted(ok["outcome"].unique()))
    top.set_ylabel(f"Effect on {outcomes}\n(estimate, 95% CI)")
    top.set_title(f"{len(ok):,} specifications; median estimate {median:.3g} (dotted); "
                  f"{int(significant.sum()):,} with a 95% CI excluding zero (dark)", loc="left")

    for row, (column, value) in enumerate(options):
        used = (ok[column] == value).to_numpy()
        bottom.scatter(x[used], np.full(used.sum(), row), marker="|", s=12, c=ink, linewidths=0.5)
    bottom.set_yticks(range(len(options)))
    bottom.set_yticklabels([f"{CHOICE_LABELS[c]}: {v}" for c, v in options], fontsize=5.5)
    bottom.set_ylim(len(options) - 0.5, -0.5)
    bottom.set_xlabel("Specifications, sorted by estimate")
    bottom.grid(False)
    bottom.set_xlim(-1, len(ok))

    if inference is not None:
        _envelope_panel(null_panel, inference, ink, grey, mid)

    n_failed = len(results) - len(ok)
    source = (f"Each specification reports its treatment coefficient (column term: exposure x post for continuous "
              f"exposure, per standard deviation of the exposure; the overall ATT for first-listing cohorts). Source: data/processed/multiverse_results.parquet (python -m "
              f"analysis.multiverse), built from the cleaned provincial panel, the sanction shocks and the index "
              f"choices of configs/multiverse.yaml; 95% CIs from each estimator's inference."
              + (f" {n_failed} specification(s) failed and are not shown (see the error column)." if n_failed else "")
              + (f" {note}" if note else "")
              + (f" Bottom panel: {inference.summary['n_permutations']} permutations of the provinces' treatment "
                 f"assignments (seed {inference.summary['seed']}), the same permutation for every specification of "
                 f"a draw; {inference.summary['n_specifications_covered']:,} specifications covered "
                 f"({', '.join(inference.summary['covered_estimators'])}; not "
                 f"{', '.join(inference.summary['not_covered_estimators']) or 'none'}); p-values "
                 f"(1 + #extreme)/(1 + B), data/processed/multiverse_inference.json." if inference is not None else ""))
    if style:
        style.add_source_note(fig, source)
        return style.save_figure(fig, stem)
    fig.text(0.0, -0.01, source, ha="left", va="top", fontsize=6, wrap=True)
    written = []
    stem = Path(stem)
    for suffix, metadata in ((".pdf", {"CreationDate": None, "ModDate": None}), (".png", {"Software": None})):
        target = stem.with_suffix(suffix)
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=suffix[1:], metadata=metadata, bbox_inches="tight")
        written.append(target)
    plt.close(fig)
    return written


def _envelope_panel(axis, inference, ink, grey, mid) -> None:
    """Observed sorted curve against the permutation envelope (2.5/50/97.5% of the sorted permuted curves)."""
    observed = inference.observed_sorted
    low, middle, high = inference.envelope
    n = min(len(observed), len(middle))
    x = np.arange(n)
    axis.fill_between(x, low[:n], high[:n], color=grey, linewidth=0, label="permutations, 2.5–97.5%")
    axis.plot(x, middle[:n], color=mid, linewidth=0.8, linestyle="--", label="permutations, median")
    axis.plot(x, observed[:n], color=ink, linewidth=1.0, label="observed")
    axis.axhline(0, color=mid, linewidth=0.5, linestyle=":")
    s = inference.summary["overall"]
    axis.set_title(f"Under permuted assignments: median {s['median']:.3g} (p = {s['p_median']:.3f}); share "
                   f"significant ({s['dominant_direction']}) {s['share_significant']:.1%} (p = "
                   f"{s['p_share_significant']:.3f}); Stouffer Z {s['stouffer_z']:.2f} (p = {s['p_stouffer_z']:.3f})",
                   loc="left", fontsize=7)
    axis.set_xlabel("Covered specifications, sorted by estimate")
    axis.set_ylabel("Estimate")
    axis.set_xlim(-1, n)
    axis.legend(loc="upper left", fontsize=6, frameon=False)
