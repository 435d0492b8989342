# %% [markdown]
# # 03 — Sanction exposure
#
# The sanction shocks and exposure measures (`data/processed/shocks.parquet`, built by `python -m analysis.shocks`):
# post-event dummies, exposure of each province (raw and standardised across the 31 provinces), and the Entity
# List listings geocoded to provinces. Read only.

# %%
import matplotlib.pyplot as plt
import pandas as pd

from analysis.figures.style import THEATER_ORDER, new_figure, province_labels
from analysis.notebooks import processed_dir

P = processed_dir()
shocks = pd.read_parquet(P / "shocks.parquet")
names = province_labels("en")
print(shocks.shape, sorted(c for c in shocks.columns if c.startswith(("post_", "exposure_", "entity_list"))))

# %% [markdown]
# ## Exposure measures (standardised) by province

# %%
z_cols = [c for c in shocks.columns if c.startswith("exposure_") and c.endswith("_z")]
exposure = shocks.drop_duplicates("province_code").set_index("province_code")[z_cols]
exposure.index = exposure.index.map(names)
exposure.sort_values(z_cols[0], ascending=False).round(2)

# %%
exposure.corr().round(2)

# %% [markdown]
# ## Entity List listings over time

# %%
if "entity_list_new" in shocks.columns:
    by_year = shocks.groupby("year")[["entity_list_new"]].sum()
    fig, axes = new_figure(1, 1, height=2.2, width=4.5)
    axes[0, 0].bar(by_year.index, by_year["entity_list_new"], color="0.3")
    axes[0, 0].set_ylabel("New listings (all provinces)")
    display(by_year.T)  # noqa: F821

# %%
if "first_listing_year" in shocks.columns:
    first = shocks.drop_duplicates("province_code").set_index("province_code")["first_listing_year"]
    display(first.map(lambda y: "never (2015–2021)" if y == 0 else int(y)).value_counts())  # noqa: F821
