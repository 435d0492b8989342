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
from analysis.window import study_window

P = processed_dir()
indices = pd.read_parquet(P / paths.INDICES_NAME)
DEFAULT = yaml.safe_load(paths.INDEX_CONFIG.read_text())["default_method"]
ident = identity_table()
FIRST, LAST = study_window()  # configs/panel.yaml `window`

# %% [markdown]
# ## Membership (disputed assignments in `theater_command_alt`)

# %%
ident.groupby("theater_command").agg(provinces=("name_cn", " ".join), n=("province_code", "size"))

# %%
ident.loc[ident["theater_command_alt"].fillna("") != "", ["province_en", "name_cn", "theater_command",
                                                          "theater_command_alt"]]

# %% [markdown]
# ## Maps: the first and last year of the window and the change (Chinese names option shown in the heatmap below)

# %%
fig = plot_index_maps(indices, "capability_index", DEFAULT, FIRST, LAST, language="cn")

# %%
fig = plot_heatmap(indices, "capability_index", DEFAULT, language="cn")

# %% [markdown]
# ## Descriptive statistics by theater

# %%
default = indices[indices["method"] == DEFAULT]
descriptives_by_theater(default, ["capability_index", "u_military", "u_civil", "transfer_civ_to_mil",
                                  "transfer_mil_to_civ"], (FIRST, LAST)).round(3)

# %% [markdown]
# ## What the theater view says, and where it goes in the README
# Computed from the default index above, on the provinces observed in both end years (a province that enters
# later would move a theater's mean by itself). The README's claims check (theater claims) and Figures 4, 5 and 12
# use these numbers.

# %%
first_year, last_year = int(default["year"].min()), int(default["year"].max())
ends = default[default["year"].isin([first_year, last_year])].pivot_table(
    index=["theater_command", "province_code"], columns="year", values="capability_index").dropna()
by_theater = ends.groupby("theater_command").mean()
by_theater["change"] = by_theater[last_year] - by_theater[first_year]
n_balanced = ends.groupby("theater_command").size()
leader = by_theater[last_year].idxmax()
fastest = by_theater["change"].idxmax()
print(f"Capability index ({DEFAULT}), mean over the provinces observed in {first_year} and {last_year}: "
      + "; ".join(f"{t} {r[first_year]:.3f} → {r[last_year]:.3f} ({n_balanced[t]} provinces)"
                  for t, r in by_theater.iterrows()) + ".")
print(f"Highest in {last_year}: {leader}; largest rise: {fastest} ({by_theater.loc[fastest, 'change']:+.3f}). "
      f"{int(default['province_code'].nunique() - len(ends))} province(s) left out for lack of a {first_year} "
      "or last-year value.")
