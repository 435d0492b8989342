# %% [markdown]
# # 07 — One headline number traced end to end: Guangdong 2021
#
# The study's best-known number is Guangdong's 2021 transfer capability ("approached its theoretical limit",
# claim `guangdong_above_0_9_2021` in `configs/index.yaml`). This notebook rebuilds that province-year's indices by
# hand, from the raw yearbook cells to U_M, U_C, C, T, D and the directional transfers, with the formulas written out
# here (numpy, not the `analysis.index` functions), and asserts at every step that the hand value equals what the
# pipeline wrote: the raw cell = the panel (`panel.parquet`), the hand-normalised indicators and hand weights = the
# weights file (`index_weights.csv`), and the hand indices = `indices.parquet`. Province, year and method come from
# the configuration (the claim's reading and `default_method`), not from this text. Read only.

# %%
import numpy as np
import pandas as pd
import yaml
from scipy.stats import norm

from analysis import paths
from analysis.clean.yearbook import read_rda
from analysis.index.config import load_config
from analysis.notebooks import processed_dir
from analysis.provinces import identity_table

P = processed_dir()
config = load_config()
panel_config = yaml.safe_load(paths.PANEL_CONFIG.read_text())
panel = pd.read_parquet(P / paths.PANEL_NAME)
indices = pd.read_parquet(P / paths.INDICES_NAME)
weights_file = pd.read_csv(P / paths.INDEX_WEIGHTS_NAME)

reading = config.claims["guangdong_above_0_9_2021"]["readings"]["literal"]
CODE, YEAR = int(reading["province_code"]), int(reading["year"])
method = config.method(config.default_method)
ident = identity_table().set_index("province_code").loc[CODE]
TOL = 1e-12  # relative: hand and pipeline differ only by floating-point summation order


def same(hand, pipeline, what):
    """Assert that a hand-computed value equals the pipeline's (exactly for raw cells, else to 1e-12 relative)."""
    hand, pipeline = np.asarray(hand, dtype=float), np.asarray(pipeline, dtype=float)
    assert np.allclose(hand, pipeline, rtol=TOL, atol=TOL), f"{what}: hand {hand} != pipeline {pipeline}"
    return "✓"


print(f"Province {CODE} ({ident['province_en']}, {ident['name_cn']}), year {YEAR}, method {method.name} "
      f"({method.normalisation}, {method.weighting} weights, {method.aggregation}, indicator set "
      f"{method.indicator_set}); window {config.window.first_year}–{config.window.last_year}, "
      f"weights frozen on {config.base_period_for(method).first_year}–{config.base_period_for(method).last_year}.")

# %% [markdown]
# ## Step 1 — raw yearbook cells → panel
#
# Each indicator of the default method is one cell of a yearbook table (`data/raw/yearbook-sci-tech/<table>.rda`,
# variable code from `configs/panel.yaml`). The cell is read here straight from the `.rda` file (province name
# with spaces removed) and must equal the panel's value exactly.

# %%
source_of = {entry["name"]: (table, entry["code"], entry["unit"])
             for table, entries in panel_config["yearbook"].items() for entry in entries}
indicators = config.indicators_of(method)
raw_rows, raw_tables = [], {}
for ind in indicators:
    table, code, unit = source_of[ind.name]
    if table not in raw_tables:
        raw_tables[table] = read_rda(paths.YEARBOOK / f"{table}.rda", table)
    raw = raw_tables[table]
    value_col, code_col = ("num", None) if table == "HitechFirmsPub" else ("value", "variables")
    hit = raw[(raw["province"].astype(str).str.replace(r"\s+", "", regex=True) == ident["name_cn"])
              & (pd.to_numeric(raw["year"], errors="coerce") == YEAR)
              & ((raw[code_col] == code) if code_col else True)]
    assert len(hit) == 1, f"{table} {code}: {len(hit)} raw rows for {ident['name_cn']} {YEAR}"
    raw_value = float(hit[value_col].iloc[0])
    panel_value = float(panel.loc[(panel["province_code"] == CODE) & (panel["year"] == YEAR), ind.name].iloc[0])
    assert raw_value == panel_value, f"{ind.name}: raw {raw_value} != panel {panel_value}"
    raw_rows.append({"indicator": ind.name, "subsystem": ind.subsystem, "table": table, "code": code,
                     "raw unit": unit, "raw cell": raw_value, "panel": panel_value, "equal": "✓"})
with pd.option_context("display.float_format", "{:,.2f}".format):
    display(pd.DataFrame(raw_rows))  # noqa: F821

# %% [markdown]
# ## Step 2 — deflator and transformation
#
# The provincial implicit GDP deflator (2015 = 1) chains nominal GDP growth over real growth:
# P_t = P_{t-1} · (GDP_t / GDP_{t-1}) / (index_t / 100). Where a province's deflator is missing the configured
# rule (`deflation.missing`) applies. Then x = value × unit_factor ÷ P (monetary indicators), scaled as the
# indicator set says, and log(1 + x) if the set takes logs.

# %%
g = panel[panel["province_code"] == CODE].set_index("year").sort_index()
BASE = int(g.index[g["gdp_deflator"] == 1.0][0])  # the deflator's base year (= 1), not necessarily the window's first
chain = {BASE: 1.0}
for t in range(BASE + 1, YEAR + 1):
    chain[t] = chain[t - 1] * (g.loc[t, "gdp"] / g.loc[t - 1, "gdp"]) / (g.loc[t, "gdp_index_prev100"] / 100)
print(f"deflator {YEAR}: hand {chain[YEAR]:.6f}, panel {g.loc[YEAR, 'gdp_deflator']:.6f}",
      same(chain[YEAR], g.loc[YEAR, "gdp_deflator"], "deflator"))

window = panel[panel["year"].between(config.window.first_year, config.window.last_year)].sort_values(
    ["province_code", "year"]).reset_index(drop=True)
deflator = window[config.deflator_column].astype(float)
if config.deflator_missing == "year_median":
    deflator = deflator.fillna(deflator.groupby(window["year"]).transform("median"))
iset = config.indicator_sets[method.indicator_set]
x = pd.DataFrame(index=window.index)
for ind in indicators:
    v = window[ind.name].astype(float) * ind.unit_factor
    if ind.deflate:
        v = v / deflator
    if iset.scale == "per_capita":
        v = v / window["population"]
    elif iset.scale == "per_gdp":
        v = v / (window["gdp"] / deflator)
    x[ind.name] = np.log1p(v) if iset.log1p else v
row = window.index[(window["province_code"] == CODE) & (window["year"] == YEAR)][0]
print(f"{len(window)} window province-years; {ident['province_en']} {YEAR} transformed:")
x.loc[row].rename("x").to_frame().T.round(4)

# %% [markdown]
# ## Step 3 — normalisation and weights (frozen on the base period)
#
# Min–max: x' = (x − min) / (max − min) with min and max pooled over every window province-year (goalposts:
# over the base period, clipped); z-score: Φ((x − mean) / sd). Weights per subsystem from the base-period rows,
# themselves normalised on the base period: entropy w_j ∝ 1 − e_j with e_j = −Σ_i p_ij ln p_ij / ln n and
# p_ij = x'_ij / Σ_i x'_ij; CRITIC w_j ∝ σ_j Σ_k (1 − r_jk); PCA w_j ∝ Σ_(λ_k>1) λ_k v_jk²; equal 1/m.

# %%
def normalise_by_hand(values, fit):
    if method.normalisation == "zscore_probit":
        return pd.DataFrame(norm.cdf((values - fit.mean()) / fit.std(ddof=1)), index=values.index,
                            columns=values.columns)
    out = (values - fit.min()) / (fit.max() - fit.min())
    return out.clip(0, 1) if method.normalisation == "minmax_goalposts" else out


def weights_by_hand(xn):
    xn = xn.dropna()
    if method.weighting == "entropy":
        p = xn / xn.sum()
        e = -(p * np.log(p.where(p > 0, 1.0))).sum() / np.log(len(xn))
        return (1 - e) / (1 - e).sum()
    if method.weighting == "critic":
        c = xn.std(ddof=1) * (1 - xn.corr()).sum()
        return c / c.sum()
    if method.weighting == "pca":
        lam, vec = np.linalg.eigh(xn.corr().to_numpy())
        keep = lam > 1 if (lam > 1).any() else lam == lam.max()
        w = (vec[:, keep] ** 2 * lam[keep]).sum(axis=1)
        return pd.Series(w / w.sum(), index=xn.columns)
    return pd.Series(1 / xn.shape[1], index=xn.columns)


base = config.base_period_for(method)
in_base = window["year"].between(base.first_year, base.last_year)
fit_rows = in_base if method.normalisation == "minmax_goalposts" else pd.Series(True, index=window.index)
u, step3 = {}, []
for sub in ("military", "civil"):
    cols = [i.name for i in indicators if i.subsystem == sub]
    w_hand = weights_by_hand(normalise_by_hand(x.loc[in_base, cols].dropna(), x.loc[in_base, cols].dropna()))
    xn = normalise_by_hand(x[cols], x.loc[fit_rows, cols])
    w_file = weights_file[(weights_file["method"] == method.name) & (weights_file["subsystem"] == sub)].set_index(
        "indicator")["weight"]
    for c in cols:
        step3.append({"subsystem": sub, "indicator": c, "x": x.loc[row, c], "x_normalised": xn.loc[row, c],
                      "weight (hand)": w_hand[c], "weight (file)": w_file[c],
                      "equal": same(w_hand[c], w_file[c], f"weight {c}"), "w·x'": w_hand[c] * xn.loc[row, c]})
    if method.aggregation == "weighted_sum":
        u[sub] = float((xn.loc[row] * w_hand).sum())
    else:  # TOPSIS: closeness to the pooled ideal and anti-ideal of the weighted values
        v = xn * w_hand
        d_plus = np.sqrt(((v.loc[row] - v.max()) ** 2).sum())
        d_minus = np.sqrt(((v.loc[row] - v.min()) ** 2).sum())
        u[sub] = float(d_minus / (d_plus + d_minus))
pd.DataFrame(step3).round(6)

# %% [markdown]
# ## Step 4 — U_M, U_C → C, T, D and the directional transfers
#
# U_M and U_C are the weighted sums of step 3 (the last column summed per subsystem). Corrected coupling
# C = √{[1 − |U_M − U_C|] · min/max} (Wang et al. 2021), T = α U_M + β U_C, D = √(C·T); transfer civil → military
# = U_C^s U_M^(1−s), military → civil = U_M^s U_C^(1−s).

# %%
um, uc = u["military"], u["civil"]
alpha, beta = config.comprehensive_weights
s = config.source_weight
hand = {"u_military": um, "u_civil": uc}
hand["coupling_corrected"] = np.sqrt((1 - abs(um - uc)) * min(um, uc) / max(um, uc))
hand["comprehensive_development"] = alpha * um + beta * uc
hand["coordination_corrected"] = np.sqrt(hand["coupling_corrected"] * hand["comprehensive_development"])
hand["transfer_civ_to_mil"] = uc ** s * um ** (1 - s)
hand["transfer_mil_to_civ"] = um ** s * uc ** (1 - s)
hand["capability_index"] = hand[config.capability_index]
stored = indices[(indices["method"] == method.name) & (indices["province_code"] == CODE)
                 & (indices["year"] == YEAR)].iloc[0]
trace = pd.DataFrame({"hand": pd.Series(hand), "indices.parquet": stored[list(hand)].astype(float)})
trace["equal"] = [same(trace.loc[k, "hand"], trace.loc[k, "indices.parquet"], k) for k in trace.index]
trace

# %%
claims = pd.read_csv(P / paths.CLAIMS_CHECK_NAME)
verdicts = claims[(claims["claim_id"] == "guangdong_above_0_9_2021") & (claims["method"] == method.name)
                  & (claims["reading"] == "literal")].set_index("metric")
for metric, v in verdicts.iterrows():
    if metric in hand:
        same(hand[metric], v["value"], f"claims_check {metric}")
print(f"{ident['province_en']} {YEAR} under {method.name}: U_M = {um:.3f}, U_C = {uc:.3f}, "
      f"C = {hand['coupling_corrected']:.3f}, T = {hand['comprehensive_development']:.3f}, "
      f"D = {hand['coordination_corrected']:.3f}; transfer civil→military {hand['transfer_civ_to_mil']:.3f}, "
      f"military→civil {hand['transfer_mil_to_civ']:.3f}. Every step equals the pipeline's value.")
print("Against the published threshold " + f"{reading['threshold']:g}: "
      + "; ".join(f"{m} {v['value']:.3f} ({v['passes']})" for m, v in verdicts.iterrows()) + ".")
print(f"Where they go: the README's 'What the data say' → Claims check quotes the civil→military value "
      f"({hand['transfer_civ_to_mil']:.3f} under the default); data/processed/claims_check.csv/.md and Figure 11 "
      f"hold every metric under every method.")
