# %% [markdown]
# # 04 — Difference-in-differences results
#
# Reads the tidy estimate files `data/processed/estimates/<spec>.parquet` (written by `python -m analysis.estimate`,
# one per spec in `configs/specs/`) and shows the main coefficients and event studies. Read only: the same numbers
# are in the tables (`figures/tab0*.md`) and figures (`figures/fig06*`, `fig07*`).

# %%
import numpy as np
import pandas as pd

from analysis import paths
from analysis.figures.event_study import plot_event_study
from analysis.notebooks import processed_dir

E = processed_dir() / "estimates"
files = sorted(f for f in E.glob("*.parquet") if "." not in f.stem)  # <spec>.paths.parquet etc. are companion tables
orphans = [f.name for f in files if not (paths.SPECS / f"{f.stem}.yaml").exists()]
files = [f for f in files if (paths.SPECS / f"{f.stem}.yaml").exists()]  # a deleted spec's file is not used
print(len(files), "estimate files", f"(ignored, no spec file: {orphans})" if orphans else "")
estimates = pd.concat([pd.read_parquet(f).assign(spec=f.stem) for f in files], ignore_index=True)

# %% [markdown]
# ## Overall effects (ATT or the treatment coefficient) across specifications

# %%
main_terms = estimates[estimates["term"].str.match(r"^(ATT|.*exposure.*post.*|post.*exposure.*)$")]
main_terms[["spec", "term", "estimate", "std_error", "p_value", "ci_low", "ci_high", "n_obs"]].round(4)

# %% [markdown]
# ## Event studies

# %%
dynamic = [s for s in ("cont_did_dynamic_capability_index", "event_study_first_listing",
                       "att_gt_first_listing", "sunab_first_listing") if (E / f"{s}.parquet").exists()]
for spec in dynamic:
    fig = plot_event_study({spec: pd.read_parquet(E / f"{spec}.parquet")})
    fig.suptitle(spec, fontsize=8)

# %% [markdown]
# ## Sensitivity to pre-trends (Rambachan and Roth 2023)
#
# Robust 95% sets for the average post-period effect when the pre-trend's slope may change by at most M per period
# (`inference.honest` in the spec). M = 0 extrapolates a linear pre-trend; a set that excludes zero only at M = 0
# says more about the pre-trend than about the treatment.

# %%
honest = estimates[estimates["term"].str.startswith("honest")]
honest.pivot_table(index=["spec", "term"], values=["estimate", "ci_low", "ci_high"], sort=False).round(4)

# %% [markdown]
# ## What these numbers say, and where they go in the README
# Written from the estimate files above (nothing typed): the headline continuous DiD, its event study and the
# staggered ATTs. They are quoted in the README's "What the data say" → *Sanction effects* and in `figures/tab01`–`tab05`.

# %%
def first_row(spec, term):
    """The row of ``term`` in ``spec``'s estimate file, or None when the spec was not estimated."""
    rows = estimates[(estimates["spec"] == spec) & (estimates["term"] == term)]
    return None if rows.empty else rows.iloc[0]


lines = []
static = estimates[(estimates["spec"] == "cont_did_capability_index")
                   & estimates["term"].str.contains("exposure", regex=False)]
if not static.empty:
    h = static.iloc[0]
    wild = f"wild cluster bootstrap p {h['p_value_wild']:.3f}" if pd.notna(h.get("p_value_wild")) else "no wild p"
    lines.append(f"Headline (cont_did_capability_index, {h['term']}): {h['estimate']:+.4f} index points per SD of "
                 f"exposure after the event (SE {h['std_error']:.4f}, CRV1 p {h['p_value']:.3f}, {wild}; "
                 f"{int(h['n_obs'])} province-years) — "
                 + ("distinguishable from zero at 5%." if h["p_value"] < 0.05 else "not distinguishable from zero."))
dyn = estimates[(estimates["spec"] == "cont_did_dynamic_capability_index") & estimates["term"].str.match(r"^e=-?\d+$")]
if not dyn.empty:
    event_time = dyn["term"].str[2:].astype(int)
    pre, post = dyn[event_time < 0], dyn[event_time >= 0]
    att = first_row("cont_did_dynamic_capability_index", "ATT")
    lines.append(f"Its event study: pre-event coefficients {', '.join(f'{v:+.4f}' for v in pre['estimate'])} "
                 f"({int((pre['estimate'] > 0).sum())} of {len(pre)} positive), post-event "
                 f"{', '.join(f'{v:+.4f}' for v in post['estimate'])}"
                 + (f", average {att['estimate']:+.4f} (SE {att['std_error']:.4f})" if att is not None else "")
                 + (". All pre-event coefficients share one sign: the static estimate partly reflects a trend "
                    "that began before the event." if len(pre) and abs(np.sign(pre["estimate"]).sum()) == len(pre)
                    else ". The pre-event coefficients change sign (no one-sided pre-trend)."))
staggered = [(s, first_row(s, "ATT")) for s in ("event_study_first_listing", "att_gt_first_listing",
                                                 "sunab_first_listing", "did_imputation_first_listing")]
staggered = [(s, r) for s, r in staggered if r is not None]
if staggered:
    lines.append("First Entity-List listing, overall ATT: " + "; ".join(
        f"{s} {r['estimate']:+.4f} (p {r['p_value']:.2f})" for s, r in staggered)
        + f" — {sum(r['p_value'] < 0.05 for _, r in staggered)} of {len(staggered)} significant at 5%.")
print("\n".join(lines))
