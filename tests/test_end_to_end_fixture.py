"""The whole chain on a clean checkout: the real stage CLIs (clean -> index -> shocks -> analysis panel -> estimate
one spec), run as ``python -m`` processes on a copy of data/raw with every output in a temporary folder
(``stage_tree`` in conftest.py). Nothing here reads data/processed, so it runs before ``make all``.

Known values: hand-checked yearbook and NBS cells (the same sources as tests/test_clean_panel.py), one row per
province-year of the study window, the Shaanxi 2020 case-study treatment, and the estimate file of the headline
specification agreeing with a direct call of the estimation engine on the same panel.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import paths
from analysis.models import registry
from analysis.models.sample import select_sample
from analysis.models.spec import resolve
from analysis.provinces import PROVINCE_CODES
from conftest import run_stage

SHAANXI, GUANGDONG = 610000, 440000
SPEC_ID = "cont_did_capability_index"   # the headline specification (README)


def _window() -> tuple[int, int]:
    window = yaml.safe_load(paths.PANEL_CONFIG.read_text(encoding="utf-8"))["window"]
    return window["first_year"], window["last_year"]


@pytest.fixture(scope="module")
def estimated(stage_tree, tmp_path_factory):
    """The headline spec, pointed at the temporary analysis panel, estimated by the estimation CLI."""
    folder = tmp_path_factory.mktemp("estimate")
    spec = yaml.safe_load((paths.SPECS / f"{SPEC_ID}.yaml").read_text(encoding="utf-8"))
    spec["data"] = str(stage_tree / "analysis_panel.parquet")
    spec_path = folder / f"{SPEC_ID}.yaml"
    spec_path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    out = folder / f"{SPEC_ID}.parquet"
    run_stage("analysis.estimate", "--spec", str(spec_path), "--out", str(out), "--no-progress")
    return spec_path, out


def test_every_stage_writes_its_outputs(stage_tree):
    for name in ["panel.parquet", "codebook.csv", "cleaning_log.csv", "provinces.csv", "indices.parquet",
                 "index_weights.csv", "claims_check.csv", "shocks.parquet", "shocks_codebook.csv",
                 "entity_list_unresolved.csv", "analysis_panel.parquet", "analysis_panel_codebook.csv"]:
        assert (stage_tree / name).stat().st_size > 0, name


def test_panel_known_cells(stage_tree):
    panel = pd.read_parquet(stage_tree / "panel.parquet").set_index(["province_code", "year"])
    assert sorted(panel.index.get_level_values(0).unique()) == sorted(PROVINCE_CODES)
    assert not panel.index.duplicated().any()
    # RDActivity 陕西 2019 (10k yuan); nbs_raw_grp 北京市 2021; nbs-population 广东省 2021 (10k persons)
    assert panel.loc[(SHAANXI, 2019), "rd_exp_total"] == pytest.approx(5845754.0)
    assert panel.loc[(110000, 2021), "gdp"] == pytest.approx(44350.7)
    assert panel.loc[(GUANGDONG, 2021), "population"] == pytest.approx(12684)


def test_analysis_panel_shape_and_treatments(stage_tree):
    first, last = _window()
    ap = pd.read_parquet(stage_tree / "analysis_panel.parquet")
    assert len(ap) == len(PROVINCE_CODES) * (last - first + 1)
    assert (ap["year"].min(), ap["year"].max()) == (first, last)
    assert not ap.duplicated(["province_code", "year"]).any()
    book = pd.read_csv(stage_tree / "analysis_panel_codebook.csv")
    assert list(book["column"]) == list(ap.columns)
    # The default index is a [0, 1] score (missing where an input indicator is).
    index = ap["capability_index"].dropna()
    assert len(index) > 0.9 * len(ap) and index.between(0, 1).all()
    treated = ap.set_index(["province_code", "year"])["treated_shaanxi_2020"]
    assert treated[(SHAANXI, 2020)] == 1 and treated[(SHAANXI, 2019)] == 0
    assert treated.sum() == last - 2020 + 1


def test_estimate_file_agrees_with_the_engine_on_the_same_panel(stage_tree, estimated):
    spec_path, out = estimated
    written = pd.read_parquet(out).set_index("term")
    sidecar = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert sidecar["spec"]["data"] == str(stage_tree / "analysis_panel.parquet")
    spec = resolve(spec_path)
    panel = pd.read_parquet(stage_tree / "analysis_panel.parquet")
    direct = registry.estimate(select_sample(panel, spec), spec).set_index("term")
    term = f"{spec.exposure}:{spec.treatment}"
    for column in ("estimate", "std_error", "p_value", "ci_low", "ci_high"):
        assert written.loc[term, column] == pytest.approx(direct.loc[term, column], rel=1e-12, abs=1e-15), column
    assert written.loc[term, "n_obs"] == direct.loc[term, "n_obs"]
    assert 0 < written.loc[term, "n_obs"] <= len(panel)
    assert np.isfinite(written.loc[term, ["estimate", "std_error"]].astype(float)).all()
