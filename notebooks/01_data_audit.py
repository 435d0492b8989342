# %% [markdown]
# # 01 — Data audit: what the cleaning stage corrected, and why
#
# Reads the cleaned panel, its codebook and the cleaning log written by `python -m analysis.clean`
# (`data/processed/panel.parquet`, `codebook.csv`, `cleaning_log.csv`). Writes nothing.
# Every correction the cleaning stage makes is a row of the log: the rule, the raw file, and how many rows it touched.

# %%
import pandas as pd

from analysis.notebooks import processed_dir
from analysis.provinces import PROVINCE_CODES

P = processed_dir()
panel = pd.read_parquet(P / "panel.parquet")
codebook = pd.read_csv(P / "codebook.csv")
log = pd.read_csv(P / "cleaning_log.csv")
print(f"panel: {panel.shape[0]} rows × {panel.shape[1]} columns; years {panel.year.min()}–{panel.year.max()}")

# %% [markdown]
# ## Identity: 31 provinces, one row per province × year

# %%
assert set(panel["province_code"]) == set(PROVINCE_CODES)
assert not panel.duplicated(["province_code", "year"]).any()
panel.groupby("theater_command")["province_code"].nunique().rename("provinces")

# %% [markdown]
# ## Corrections by rule
# Each rule and how many raw rows it touched (aggregate rows dropped, OCR typos in province names fixed, …).

# %%
by_rule = log.groupby("rule").agg(files=("source_file", "nunique"), rows=("n_rows", "sum")).sort_values("rows",
                                                                                                        ascending=False)
by_rule

# %%
with pd.option_context("display.max_colwidth", 120):
    display(log[["rule", "source_file", "province_code", "year", "variable", "detail"]])  # noqa: F821

# %% [markdown]
# ## Coverage in the analysis window (2015–2021)
# Missing values are never imputed; the codebook says how many province-years each variable lacks.

# %%
coverage = codebook[["variable", "label_en", "unit", "years_with_data", "n_missing_2015_2021"]]
coverage[coverage["n_missing_2015_2021"] > 0].sort_values("n_missing_2015_2021", ascending=False)

# %% [markdown]
# Shaanxi (610000, 陕西) and Shanxi (140000, 山西) are different provinces; the panel keys on GB codes, never on pinyin.

# %%
panel.loc[panel["province_code"].isin([140000, 610000]) & (panel["year"] == 2021),
          ["province_code", "province_en", "name_cn", "theater_command", "rd_exp_total", "gdp"]]
