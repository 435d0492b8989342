# %% [markdown]
# # 01 — Data audit: what the cleaning stage corrected, and why
#
# Reads the cleaned panel, its codebook and the cleaning log written by `python -m analysis.clean`
# (`data/processed/panel.parquet`, `codebook.csv`, `cleaning_log.csv`). Writes nothing.
# Every correction the cleaning stage makes is a row of the log: the rule, the raw file, and how many rows it touched.

# %%
import pandas as pd

from analysis import paths
from analysis.notebooks import processed_dir
from analysis.provinces import PROVINCE_CODES
from analysis.window import study_window

P = processed_dir()
FIRST, LAST = study_window()  # the study window, configs/panel.yaml `window`
panel = pd.read_parquet(P / paths.PANEL_NAME)
codebook = pd.read_csv(P / paths.CODEBOOK_NAME)
log = pd.read_csv(P / paths.CLEANING_LOG_NAME)
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
# ## Coverage in the analysis window (configs/panel.yaml `window`)
# Missing values are never imputed; the codebook says how many province-years each variable lacks.

# %%
n_missing = f"n_missing_{FIRST}_{LAST}"  # the codebook names the column after the window
coverage = codebook[["variable", "label_en", "unit", "years_with_data", n_missing]]
coverage[coverage[n_missing] > 0].sort_values(n_missing, ascending=False)

# %% [markdown]
# Shaanxi (610000, 陕西) and Shanxi (140000, 山西) are different provinces; the panel keys on GB codes, never on pinyin.

# %%
panel.loc[panel["province_code"].isin([140000, 610000]) & (panel["year"] == LAST),
          ["province_code", "province_en", "name_cn", "theater_command", "rd_exp_total", "gdp"]]

# %% [markdown]
# ## What the audit says, and where it goes in the README
# Computed from the log and the codebook above. The README's "Data availability and provenance statement" describes
# the raw files these corrections apply to; the coverage numbers explain why the default indicator set uses only
# indicators observed for every province in every window year (`configs/index.yaml`, "What the indices measure").

# %%
missing_col = next(c for c in codebook.columns if c.startswith("n_missing_"))
with_gaps = codebook[codebook[missing_col] > 0]
top = by_rule.index[0]
print(f"The panel has {panel['province_code'].nunique()} provinces × {panel['year'].nunique()} years "
      f"({len(panel)} rows). The cleaning stage applied {len(by_rule)} rules to {int(by_rule['rows'].sum())} raw rows "
      f"in {log['source_file'].nunique()} files; the most frequent is '{top}' ({int(by_rule.loc[top, 'rows'])} rows).")
print(f"{len(with_gaps)} of {len(codebook)} variables miss at least one province-year in the window "
      f"({missing_col}); the most incomplete: "
      + ", ".join(f"{v} ({int(n)})" for v, n in with_gaps.sort_values(missing_col, ascending=False)
                  .set_index("variable")[missing_col].head(3).items()) + ". None is imputed.")
