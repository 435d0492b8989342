# %% [markdown]
# # 03 — Sanction exposure
#
# The sanction shocks and exposure measures (`data/processed/shocks.parquet`, built by `python -m analysis.shocks`):
# post-event dummies, exposure of each province (raw and standardised across the 31 provinces), and the Entity
# List listings geocoded to provinces. Read only.

# %%
import numpy as np
import pandas as pd

from analysis import paths
from analysis.figures.style import THEATER_ORDER, new_figure, province_labels
from analysis.notebooks import processed_dir

P = processed_dir()
shocks = pd.read_parquet(P / paths.SHOCKS_NAME)
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
    display(first.map(lambda y: f"never ({shocks.year.min()}–{shocks.year.max()})" if y == 0 else int(y)).value_counts())  # noqa: F821

# %% [markdown]
# ## What the exposure data say, and where they go in the README
# Computed from the tables above; the README's "What the data say" → *Sanction effects* uses these measures as the
# treatment intensity (per SD of exposure) and the listing cohorts.

# %%
lead = z_cols[0]
ranked = exposure[lead].sort_values(ascending=False)
corr = exposure.corr().where(lambda c: ~np.eye(len(c), dtype=bool)).stack()
print(f"{len(z_cols)} standardised exposure measures over {len(exposure)} provinces. On {lead} the most exposed are "
      + ", ".join(f"{p} ({v:+.2f} SD)" for p, v in ranked.head(3).items())
      + f"; the least {ranked.index[-1]} ({ranked.iloc[-1]:+.2f} SD).")
if len(corr):
    print(f"The measures correlate between {corr.min():.2f} and {corr.max():.2f} across provinces.")
if "first_listing_year" in shocks.columns:
    print(f"{int((first > 0).sum())} provinces have a first Entity-List listing in the window, "
          f"{int((first == 0).sum())} never; cohorts: "
          + ", ".join(f"{int(y)} ({n})" for y, n in first[first > 0].value_counts().sort_index().items()) + ".")
