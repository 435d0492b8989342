# %% [markdown]
# # 02 — Indices and the claims check
#
# The dual-use transfer-capability indices (`data/processed/indices.parquet`, one row per province × year ×
# method), their weights, the sensitivity of province ranks to the index method, and the check of published claims.
# Built by `python -m analysis.index`; this notebook only reads.

# %%
import pandas as pd
import yaml

from analysis import paths
from analysis.figures.sensitivity import plot_claims_check, plot_method_ranks
from analysis.figures.trajectories import plot_trajectories
from analysis.notebooks import processed_dir

P = processed_dir()
indices = pd.read_parquet(P / paths.INDICES_NAME)
weights = pd.read_csv(P / paths.INDEX_WEIGHTS_NAME)
sensitivity = pd.read_csv(P / paths.INDEX_SENSITIVITY_NAME)
claims = pd.read_csv(P / paths.CLAIMS_CHECK_NAME)
DEFAULT = yaml.safe_load(paths.INDEX_CONFIG.read_text())["default_method"]
print("default method:", DEFAULT, "| methods:", indices["method"].nunique())

# %% [markdown]
# ## Indicator weights of the default method (frozen on the base period)

# %%
weights[weights["method"] == DEFAULT][["subsystem", "indicator", "weight", "base_first_year", "base_last_year"]]

# %% [markdown]
# ## Trajectories of the capability index by theater command

# %%
fig = plot_trajectories(indices, "capability_index", DEFAULT)

# %% [markdown]
# ## How much do ranks depend on the index method?

# %%
sensitivity[["method", "indicator_set", "spearman_pooled", "spearman_comparison_year", "n_provinces_moving"]]

# %%
fig = plot_method_ranks(indices, sensitivity, DEFAULT)

# %% [markdown]
# ## What the indices measure (construct validity)
# `index_validity.csv` (written by `python -m analysis.index`, `analysis/index/validity.py`): for each method and
# metric, the share of the variance within provinces and after province and year effects (the part a DiD uses), the
# correlation of the two subsystems and the correlation with log total R&D (province size).

# %%
validity = pd.read_csv(P / paths.INDEX_VALIDITY_NAME)
d = validity[(validity["method"] == DEFAULT)].set_index("metric")
ci = d.loc["capability_index"]
print(f"Default method {DEFAULT}: the capability index correlates {ci['corr_log_rd_total']:.2f} with log total R&D; "
      f"the two subsystems correlate {ci['corr_military_civil']:.2f}; {ci['within_province_share']:.1%} of the index's "
      f"variance is within provinces and {ci['twfe_residual_share']:.1%} is left after province and year effects.")
print("Subsystems with the most within-province variation under the default method: "
      + ", ".join(f"{m} {v:.1%}" for m, v in d["within_province_share"].sort_values(ascending=False).items()))
validity.round(3)

# %% [markdown]
# These numbers go to the README's section on what the indices measure (and to `data/processed/index_validity.md`).
# Reading: between provinces the index is mostly the size of the regional R&D system, and its "military" side is
# public and academic research; the sanction designs therefore also use each subsystem and the growth outcomes
# (`growth_*_indicators` in the analysis panel) as outcomes.

# %% [markdown]
# ## Claims check
# Each claim of the study (its published wording and source are in `configs/index.yaml`), read in one or more ways
# where the wording allows, evaluated on four metrics (D, T and the two directional transfers) under every method.
# `passes` is *unreachable* where a method cannot reach the threshold whatever the data (every metric is at most 1,
# so a ratio from a start value v is at most 1/v).

# %%
from analysis.index.claims import across_metrics_table, verdict_table

verdict_table(claims)

# %%
across_metrics_table(claims)[["claim_id", "reading", "natural_metric", "verdict_across_metrics"]]

# %%
def row(claim_id, reading, metric, method=DEFAULT):
    """The claims_check row of one claim × reading × metric under ``method``."""
    sel = claims[(claims["claim_id"] == claim_id) & (claims["reading"] == reading) & (claims["metric"] == metric)
                 & (claims["method"] == method)]
    return sel.iloc[0]


shaanxi = claims[(claims["claim_id"] == "shaanxi_nearly_doubled_in_a_year") & (claims["reading"] == "from_2020")
                 & (claims["metric"] == "capability_index")]
s_default = row("shaanxi_nearly_doubled_in_a_year", "from_2020", "capability_index")
n_unreachable = int((shaanxi["passes"] == "unreachable").sum())
guangdong = claims[(claims["claim_id"] == "guangdong_above_0_9_2021") & (claims["metric"] == "transfer_civ_to_mil")]
g_default = row("guangdong_above_0_9_2021", "literal", "transfer_civ_to_mil")
before = claims[(claims["claim_id"] == "national_below_0_2_before_2016") & (claims["metric"] == "transfer_civ_to_mil")]
passing = before.loc[before["passes"] == "yes", "method"].tolist()
print(f"Shaanxi, capability index, 2021/2020 under {DEFAULT}: {s_default['value']:.3f}; the largest ratio this "
      f"method could produce from Shaanxi's 2020 level is {s_default['max_attainable']:.3f}, against a threshold of "
      f"{s_default['threshold']:g}. {n_unreachable} of {len(shaanxi)} methods cannot reach it whatever the data.")
print(f"Guangdong 2021, civil→military transfer under {DEFAULT}: {g_default['value']:.3f} "
      f"({g_default['passes']}); {int((guangdong['passes'] == 'yes').sum())} of {len(guangdong)} methods above "
      f"{g_default['threshold']:g}.")
print(f"National civil→military transfer below {before['threshold'].iloc[0]:g} in every evaluable year before 2016 "
      f"(indices built on {before['index_window'].iloc[0]}): holds under {len(passing)} of {len(before)} methods"
      + (f" ({', '.join(passing)})" if passing else "") + ".")

# %%
fig = plot_claims_check(claims)
