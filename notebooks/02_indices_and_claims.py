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
indices = pd.read_parquet(P / "indices.parquet")
weights = pd.read_csv(P / "index_weights.csv")
sensitivity = pd.read_csv(P / "index_sensitivity.csv")
claims = pd.read_csv(P / "claims_check.csv")
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
# ## Claims check
# Each claim from the literature, operationalised as a rule, evaluated under every method.

# %%
claims[claims["is_default"]][["claim", "value", "threshold", "passes", "verdict", "detail"]]

# %%
fig = plot_claims_check(claims)
