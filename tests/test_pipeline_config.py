"""A pipeline that survives a student's change (issue 16 §2): one study window read by every stage, tables declared in
configs/tables.yaml, orphaned estimate files refused, and a codebook for every analysis-panel column.

The end-to-end builds under changed configurations (CRITIC default, window 2015–2022) are in
tests/matrix/run_matrix.sh (run by .ci/run); these are the fast unit checks of the same properties."""

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import analysis_panel, estimate, paths
from analysis.figures import exhibits
from analysis.index.config import load_config as load_index_config
from analysis.index.config import parse_config
from analysis.io import DataError
from analysis.models import table_config
from analysis.shocks.config import load_config as load_shocks_config
from analysis.window import study_window

CONFIGS = paths.CONFIGS


# --- one window ---------------------------------------------------------------------------------------------------
def test_window_is_set_in_panel_yaml_only():
    """No other config sets the study window (the old duplicates: index.yaml window, shocks.yaml years,
    analysis_panel.yaml window, a claims_window end); every stage's loaded window equals configs/panel.yaml's."""
    first, last = study_window()
    assert (first, last) == tuple(yaml.safe_load(paths.PANEL_CONFIG.read_text())["window"].values())
    assert "window" not in yaml.safe_load(paths.INDEX_CONFIG.read_text())
    assert "years" not in yaml.safe_load(paths.SHOCKS_CONFIG.read_text())
    assert "window" not in yaml.safe_load((CONFIGS / "analysis_panel.yaml").read_text())
    assert set(yaml.safe_load(paths.INDEX_CONFIG.read_text())["claims_window"]) == {"first_year"}
    index = load_index_config()
    assert (index.window.first_year, index.window.last_year) == (first, last)
    assert index.claims_window.last_year == last
    assert load_shocks_config().years.years() == list(range(first, last + 1))
    assert analysis_panel.load_config()["window"] == {"first_year": first, "last_year": last}


def test_no_spec_pins_the_window_years():
    """Specs that use the whole window leave sample.years out, so that moving the window moves them too."""
    window = list(study_window())
    for f in sorted(paths.SPECS.glob("*.yaml")):
        years = (yaml.safe_load(f.read_text()).get("sample") or {}).get("years")
        assert years != window, f"{f.name} pins sample.years to the window {window}; leave it out"


def test_moving_the_window_moves_every_stage(tmp_path):
    """A panel.yaml with window 2015–2022 gives 2015–2022 to the index (and the claims window's end), the shocks and
    the analysis panel; the index base period and the exposure base years do not move."""
    panel_cfg = tmp_path / "panel.yaml"
    panel_cfg.write_text("window: {first_year: 2015, last_year: 2022}\nkeep_years: {first_year: 2010, last_year: 2023}\n")
    window = study_window(panel_cfg)
    assert window == (2015, 2022)
    index = load_index_config(paths.INDEX_CONFIG, window)
    base = load_index_config()
    assert (index.window.first_year, index.window.last_year, index.claims_window.last_year) == (2015, 2022, 2022)
    assert index.claims_window.first_year == base.claims_window.first_year and index.base_period == base.base_period
    shocks = load_shocks_config(paths.SHOCKS_CONFIG, window)
    assert shocks.years.years()[-1] == 2022 and shocks.base_years == load_shocks_config().base_years
    assert [e.date for e in shocks.events] == [e.date for e in load_shocks_config().events]
    assert analysis_panel.load_config(window=window)["window"] == {"first_year": 2015, "last_year": 2022}


@pytest.mark.parametrize("config, key, loader", [
    ("index.yaml", "window", lambda raw, f: parse_config(raw, f)),
    ("shocks.yaml", "years", lambda raw, f: load_shocks_config(f)),
    ("analysis_panel.yaml", "window", lambda raw, f: analysis_panel.load_config(f)),
])
def test_a_second_window_setting_is_refused(tmp_path, config, key, loader):
    raw = yaml.safe_load((CONFIGS / config).read_text())
    raw[key] = {"first_year": 2015, "last_year": 2021}
    f = tmp_path / config
    f.write_text(yaml.safe_dump(raw, allow_unicode=True))
    with pytest.raises(DataError) as err:
        loader(raw, f)
    assert key in str(err.value) and "configs/panel.yaml" in str(err.value)


@pytest.mark.parametrize("text", ["window: {first_year: 2021, last_year: 2015}\n", "window: {first_year: 2015}\n",
                                  "keep_years: {first_year: 2010, last_year: 2023}\n"])
def test_bad_window_names_the_file_and_key(tmp_path, text):
    f = tmp_path / "panel.yaml"
    f.write_text(text)
    with pytest.raises(DataError) as err:
        study_window(f)
    assert "panel.yaml" in str(err.value) and "window" in str(err.value)


# --- tables from config -------------------------------------------------------------------------------------------
def _raw_tables():
    return yaml.safe_load((CONFIGS / "tables.yaml").read_text())


def test_tables_config_declares_every_table_and_tab07_has_the_2022_window():
    names = [t.name for t in table_config.TABLES]
    assert names == list(_raw_tables()["tables"]) and len(names) == len(set(names))
    tab07 = next(t for t in table_config.TABLES if t.name == "tab07_robustness")
    f = tab07.specs.index("robust_window2022_capability_index")
    assert tab07.labels[f].startswith("(f)") and tab07.labels[f - 1].startswith("(e)")
    assert tab07.labels[f + 1].startswith("(g)")
    spec = yaml.safe_load((paths.SPECS / "robust_window2022_capability_index.yaml").read_text())
    assert spec["sample"]["years"][1] == 2022 and "window_2015_2022" in spec["data"]
    table_config.check_specs(table_config.TABLES)  # every listed spec has its file


def test_a_column_is_one_line(tmp_path):
    """A student adds a column by adding one line: the table then has one more spec, with the right header."""
    raw = _raw_tables()
    raw["tables"]["tab01_main_cont_did"]["columns"].append("cont_did_growth_civil_indicators")
    (tab01, *_) = table_config.parse_tables(raw)
    assert tab01.specs[-1] == "cont_did_growth_civil_indicators" and tab01.labels == ()


@pytest.mark.parametrize("mutate, key, hint", [
    (lambda t: t["tab01_main_cont_did"].update(rows="event"), "tables.tab01_main_cont_did.rows", "'events'"),
    (lambda t: t["tab01_main_cont_did"].update(captoin="x"), "tables.tab01_main_cont_did.captoin", "'caption'"),
    (lambda t: t["tab01_main_cont_did"].pop("columns"), "tables.tab01_main_cont_did.columns", "missing"),
    (lambda t: t["tab07_robustness"]["columns"].append("cont_did_u_civil"), "tables.tab07_robustness.columns",
     "label"),
    (lambda t: t["tab01_main_cont_did"]["columns"].append({"spec": "x", "lable": "y"}),
     "tables.tab01_main_cont_did.columns[3].lable", "did you mean 'label'"),
    (lambda t: t["tab05_bacon"]["columns"].append("cont_did_u_civil"), "tables.tab05_bacon.columns", "exactly one"),
    (lambda t: t.update({"Table 9": t["tab05_bacon"]}), "tables.Table 9", "tabNN"),
])
def test_bad_tables_config_names_file_and_key(mutate, key, hint):
    raw = copy.deepcopy(_raw_tables())
    mutate(raw["tables"])
    with pytest.raises(DataError) as err:
        table_config.parse_tables(raw, CONFIGS / "tables.yaml")
    assert "configs/tables.yaml" in str(err.value) and repr(key) in str(err.value) and hint in str(err.value)


def test_table_naming_a_missing_spec_is_refused_with_the_closest_id():
    (tab07,) = [t for t in table_config.TABLES if t.name == "tab07_robustness"]
    bad = table_config.TableDef(tab07.name, tab07.caption, (*tab07.specs, "robust_window2023_capability_index"),
                                tab07.rows, tab07.header)
    with pytest.raises(DataError) as err:
        table_config.check_specs([bad])
    assert "robust_window2023_capability_index" in str(err.value)
    assert "did you mean 'robust_window2022_capability_index'" in str(err.value)


# --- orphaned estimates -------------------------------------------------------------------------------------------
def test_orphaned_estimate_files_are_listed(tmp_path):
    specs, out = tmp_path / "specs", tmp_path / "est"
    specs.mkdir()
    out.mkdir()
    (specs / "kept.yaml").write_text("estimator: feols\n")
    for name in ("kept.parquet", "kept.json", "kept.paths.parquet", "gone.parquet", "gone.json",
                 "gone.weights.parquet", ".up-to-date"):
        (out / name).write_text("")
    assert [f.name for f in estimate.orphaned_estimates(specs, out)] == ["gone.json", "gone.parquet",
                                                                         "gone.weights.parquet"]


def test_figure_of_a_deleted_spec_is_refused(tmp_path):
    (specs := tmp_path / "specs").mkdir()
    (specs / "cont_did_dynamic_capability_index.yaml").write_text("estimator: event_study\n")
    exhibit = exhibits.Exhibit("fig99_test", "event_study", "c", "n",
                               {"specs": ["cont_did_dynamic_capability_index", "cont_did_dynamic_u_military"]})
    where = exhibits.Locations(processed=tmp_path, estimates=tmp_path, specs=specs)
    with pytest.raises(DataError) as err:
        exhibits.build(exhibit, where)
    assert "cont_did_dynamic_u_military" in str(err.value) and "no spec file" in str(err.value)


# --- the analysis-panel codebook ------------------------------------------------------------------------------------
def _codebook_inputs(tree):
    """The analysis panel and the two codebooks, as the stage CLIs write them (conftest ``stage_tree``)."""
    return (pd.read_parquet(tree / "analysis_panel.parquet"), pd.read_csv(tree / paths.CODEBOOK.name),
            pd.read_csv(tree / "shocks_codebook.csv"))


def test_codebook_documents_every_analysis_panel_column(stage_tree):
    panel, book, shocks_book = _codebook_inputs(stage_tree)
    index_config = load_index_config()
    out = analysis_panel.codebook(panel, book, shocks_book, index_config, analysis_panel.load_config())
    assert list(out["column"]) == list(panel.columns)
    assert out["label"].str.len().gt(0).all() and set(out["stage"]) <= {"clean", "index", "shocks", "analysis_panel"}
    stage = out.set_index("column")["stage"]
    assert stage["rd_exp_total"] == "clean" and stage["capability_index"] == "index"
    assert stage["post_huawei_2019"] == "shocks" and stage["log_gdp_per_capita"] == "analysis_panel"
    assert index_config.default_method in out.set_index("column").loc["capability_index", "source"]


def test_codebook_refuses_an_undocumented_column(stage_tree):
    panel, book, shocks_book = _codebook_inputs(stage_tree)
    with pytest.raises(ValueError, match="mystery_column"):
        analysis_panel.codebook(panel.assign(mystery_column=1.0), book, shocks_book, load_index_config(),
                                analysis_panel.load_config())


def test_matrix_script_covers_critic_and_the_2022_window():
    """The CI configuration matrix runs (at least) CRITIC as the default and the window 2015–2022."""
    script = (paths.ROOT / "tests" / "matrix" / "run_matrix.sh").read_text()
    assert "VARIANTS=(critic window2022 window2012)" in script
    assert "default_method: minmax_critic_wsum" in script and "last_year: 2022" in script
    ci = (paths.ROOT / ".ci" / "run").read_text()
    assert "tests/matrix/run_matrix.sh critic window2022 window2012" in ci
    methods = yaml.safe_load(paths.INDEX_CONFIG.read_text())["methods"]
    assert "minmax_critic_wsum" in methods


# --- a period with no complete row (what the 2015–2022 window met) ---------------------------------------------------
def test_panel_estimators_skip_a_period_whose_rows_all_drop():
    """A regressor missing in a whole year (Entity List measures after the transcription's last year) drops that
    year's rows; first_diff and panel_re then match the fit on the panel without that year instead of failing on an
    all-zero period dummy (rank-deficient design)."""
    from analysis.models.panel import first_diff, panel_re
    from analysis.models.spec import Spec

    rng = np.random.default_rng(7)
    units, years = np.arange(12), np.arange(2015, 2023)
    df = pd.DataFrame([(u, t) for u in units for t in years], columns=["unit", "year"])
    df["x"] = rng.normal(size=len(df))
    df["y"] = 0.5 * df["x"] + rng.normal(size=len(df)) + df["unit"] * 0.1 + (df["year"] - 2015) * 0.2
    spec = Spec.from_mapping({"estimator": "first_diff", "unit": "unit", "time": "year",
                              "fixed_effects": ["unit", "year"], "outcome": "y", "treatment": "x", "controls": [],
                              "cluster": "unit"})
    gap = df.assign(x=df["x"].where(df["year"] < 2022))
    for fit in (first_diff, panel_re):
        with_gap = fit(gap, spec).set_index("term")
        without = fit(df[df["year"] < 2022].reset_index(drop=True), spec).set_index("term")
        np.testing.assert_allclose(with_gap.loc["x", ["estimate", "std_error"]].to_numpy(dtype=float),
                                   without.loc["x", ["estimate", "std_error"]].to_numpy(dtype=float), rtol=1e-10)


def test_exhibit_captions_follow_the_window():
    """Captions and notes say {first_year}/{last_year}, not typed years, so a moved window relabels them."""
    first, last = study_window()
    loaded = {e.id: e for e in exhibits.load_exhibits(CONFIGS / "exhibits.yaml")}
    assert loaded["fig03_trajectories_capability_index"].caption.endswith(f"{first}–{last}")
    assert all("{first_year}" not in e.caption + e.note and "{last_year}" not in e.caption + e.note
               for e in loaded.values())
    raw = (CONFIGS / "exhibits.yaml").read_text()
    assert "by theater command, 2015–2021" not in raw and "Province-years 2015–2021" not in raw


def test_a_window_before_a_series_first_published_year_leaves_it_missing(tmp_path):
    """Moving the window to 2012–2021: the public population export starts in 2015 (`first_published`), so the panel
    builds with population missing (never imputed) for 2012–2014 and says so in the cleaning log; without
    `first_published` the missing year columns stop the build, naming the file and the years (a truncated export)."""
    from analysis.clean.panel import build as build_panel
    from analysis.clean.panel import load_config as load_panel_config

    cfg = load_panel_config()
    assert cfg["nbs"]["population"][0]["first_published"] == 2015
    cfg["window"] = {"first_year": 2012, "last_year": 2021}
    panel, _, log = build_panel(cfg)
    by_year = panel.groupby("year")["population"].apply(lambda s: s.notna().sum())
    assert (by_year.loc[2012:2014] == 0).all() and (by_year.loc[2015:2021] == 31).all()
    assert "not_published" in set(log["rule"])
    del cfg["nbs"]["population"][0]["first_published"]
    with pytest.raises(DataError, match="2012年, 2013年, 2014年"):
        build_panel(cfg)
    raw = yaml.safe_load(paths.PANEL_CONFIG.read_text())
    raw["nbs"]["population"][0]["first_published"] = "2015"
    bad = tmp_path / "panel.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True))
    with pytest.raises(DataError, match="first_published"):
        load_panel_config(bad)
