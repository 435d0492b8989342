# %% [markdown]
# # 05 — Case studies: Shaanxi and Guangdong
#
# Two provinces the literature singles out: Shaanxi (610000, 陕西; Xi'an's defence-industrial base; "nearly doubled
# within one year around 2020") and Guangdong (440000, 广东; Huawei, Shenzhen, listed May 2019). The synthetic
# control paths and donor weights are read from the estimation stage's files (`estimates/<spec>.paths.parquet`,
# `.weights.parquet`, written with the estimates), exactly as figures 8 and 9 do; nothing is refitted. Read only.

# %%
import pandas as pd
import yaml

from analysis import paths
from analysis.figures.exhibits import Exhibit, Locations, synth_inputs
from analysis.figures.synth import plot_synth
from analysis.notebooks import processed_dir

P = processed_dir()
where = Locations(processed=P, estimates=P / "estimates")
indices = pd.read_parquet(P / paths.INDICES_NAME)
DEFAULT = yaml.safe_load(paths.INDEX_CONFIG.read_text())["default_method"]

# %% [markdown]
# ## The raw index paths of the two provinces under every method

# %%
two = indices[indices["province_code"].isin([610000, 440000])]
two.pivot_table(index=["province_en", "year"], columns="method", values="capability_index").round(3)

# %% [markdown]
# ## Year-on-year ratios of the default index (the "near doubling" claim needs a ratio near 2)

# %%
default = two[two["method"] == DEFAULT].sort_values(["province_code", "year"])
default.assign(yoy=default.groupby("province_code")["capability_index"].pct_change() + 1)[
    ["province_en", "year", "capability_index", "yoy"]].round(3)

# %% [markdown]
# ## Synthetic controls
#
# With 4-5 pre-treatment years and 29 donors a province's index path is often fitted exactly by many weight
# vectors. `identified_low`/`identified_high` give the range of each gap over all of them (NaN: the gap is the same
# for every best-fit weight vector). Where that range is not a point the reported weights are the penalised
# synthetic control of Abadie and L'Hour (2021) in the limit lambda -> 0+ (`synth_method`), and with a perfect
# treated fit there is no RMSPE-ratio p-value (`p_value_statistic`). The `placebo-in-time` rows backdate the
# treatment into the pre-period: gaps as large as the ATT there mean the ATT cannot be told apart from misfit.

# %%
provinces = pd.read_csv(P / paths.PROVINCES_NAME)
names = dict(zip(provinces["province_code"], provinces["province_en"]))
columns = ["term", "estimate", "identified_low", "identified_high", "p_value", "p_value_statistic", "rmspe_pre",
           "synth_method", "fit_unique"]
for spec, label in (("synth_shaanxi_2020", "Shaanxi"), ("synth_shaanxi_2019", "Shaanxi"),
                    ("synth_guangdong_2019", "Guangdong"), ("synth_guangdong_2020", "Guangdong")):
    exhibit = Exhibit(id=spec, kind="synth", caption="", note="", options={"spec": spec, "unit_label": label})
    paths_frame, est, weights, _ = synth_inputs(exhibit, where)
    fig = plot_synth(paths_frame, label, estimates=est, weights=weights, unit_names=names)
    fig.suptitle(spec, fontsize=8)
    display(est[columns].round(4))  # noqa: F821
    display(weights.assign(province=weights["unit"].map(names))  # noqa: F821
            .loc[lambda w: w["weight_max"] > 0.005].sort_values("weight", ascending=False).round(3))

# %% [markdown]
# ## Synthetic difference-in-differences (Arkhangelsky et al. 2021), placebo standard errors
#
# The same four case-study treatments with unit *and* time weights (`configs/specs/sdid_*.yaml`).

# %%
sdid_specs = ["sdid_shaanxi_2019", "sdid_shaanxi_2020", "sdid_guangdong_2019", "sdid_guangdong_2020"]
sdid = pd.concat([pd.read_parquet(P / "estimates" / f"{s}.parquet").assign(spec=s) for s in sdid_specs],
                 ignore_index=True)
sdid[["spec", "term", "estimate", "std_error", "ci_low", "ci_high", "p_value"]].round(4)

# %% [markdown]
# ## What the case studies say, and where they go in the README
# Computed from the estimate files read above; quoted in the README's "What the data say" → *Shaanxi and
# Guangdong* (Figures 8–9).

# %%
for spec in ("synth_shaanxi_2020", "synth_shaanxi_2019", "synth_guangdong_2019", "synth_guangdong_2020"):
    est = pd.read_parquet(P / "estimates" / f"{spec}.parquet")
    att = est[est["term"] == "ATT"].iloc[0]
    placebo = est[est["term"].str.startswith("placebo-in-time")]
    per_year_p = est.loc[est["term"].str.startswith("ATT t="), "p_value"].dropna()
    identified = (f"identified range {att['identified_low']:+.3f} to {att['identified_high']:+.3f}"
                  if "identified_low" in est and pd.notna(att.get("identified_low")) else "identified (one best fit)")
    largest = placebo.loc[placebo["estimate"].abs().idxmax()] if len(placebo) else None
    print(f"{spec}: average gap {att['estimate']:+.3f} ({identified})"
          + (f"; per-year placebo p from {per_year_p.min():.2f}" if len(per_year_p) else "; no placebo p")
          + (f"; largest placebo-in-time gap {largest['estimate']:+.3f} ({largest['term']}) — "
             + ("as large as the ATT: not told apart from misfit." if abs(largest["estimate"]) >= abs(att["estimate"])
                else "smaller than the ATT.") if largest is not None else ""))
for _, r in sdid[sdid["term"] == "ATT"].iterrows():
    print(f"{r['spec']}: synthetic DiD {r['estimate']:+.3f} (SE {r['std_error']:.3f}, 95% CI {r['ci_low']:+.3f} to "
          f"{r['ci_high']:+.3f}) — " + ("excludes zero." if r["ci_low"] > 0 or r["ci_high"] < 0 else "includes zero."))
