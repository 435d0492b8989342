# %% [markdown]
# # 04 — Difference-in-differences results
#
# Reads the tidy estimate files `data/processed/estimates/<spec>.parquet` (written by `python -m analysis.estimate`,
# one per spec in `configs/specs/`) and shows the main coefficients and event studies. Read only: the same numbers
# are in the tables (`figures/tab0*.md`) and figures (`figures/fig06*`, `fig07*`).

# %%
import pandas as pd

from analysis.figures.event_study import plot_event_study
from analysis.notebooks import processed_dir

E = processed_dir() / "estimates"
files = sorted(f for f in E.glob("*.parquet") if "." not in f.stem)  # <spec>.paths.parquet etc. are companion tables
print(len(files), "estimate files")
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
