# %% [markdown]
# # 06 — Theater commands (military regions)
#
# The 2016 theater commands group the 31 provinces into five regions (Central, Eastern, Southern, Western,
# Northern; `data/raw/reference/pla_theater_commands_2016_by_province.csv`, via `analysis.provinces`). This notebook
# shows the default index by theater: who belongs where, maps, the heatmap, and descriptive statistics.
# Read only.

# %%
import pandas as pd
import yaml

from analysis import paths
from analysis.figures.descriptives import descriptives_by_theater
from analysis.figures.heatmap import plot_heatmap
from analysis.figures.maps import plot_index_maps
from analysis.notebooks import processed_dir
from analysis.provinces import identity_table

P = processed_dir()
indices = pd.read_parquet(P / "indices.parquet")
DEFAULT = yaml.safe_load(paths.INDEX_CONFIG.read_text())["default_method"]
ident = identity_table()

# %% [markdown]
# ## Membership (disputed assignments in `theater_command_alt`)

# %%
ident.groupby("theater_command").agg(provinces=("name_cn", " ".join), n=("province_code", "size"))

# %%
ident.loc[ident["theater_command_alt"].fillna("") != "", ["province_en", "name_cn", "theater_command",
                                                          "theater_command_alt"]]

# %% [markdown]
# ## Maps: 2015, 2021 and the change (Chinese names option shown in the heatmap below)

# %%
fig = plot_index_maps(indices, "capability_index", DEFAULT, language="cn")

# %%
fig = plot_heatmap(indices, "capability_index", DEFAULT, language="cn")

# %% [markdown]
# ## Descriptive statistics by theater

# %%
default = indices[indices["method"] == DEFAULT]
descriptives_by_theater(default, ["capability_index", "u_military", "u_civil", "transfer_civ_to_mil",
                                  "transfer_mil_to_civ"], (2015, 2021)).round(3)
