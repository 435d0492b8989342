"""Multiverse grid and spec hashes (no cluster): expansion count, validation errors, hash stability and sensitivity."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from analysis import paths
from analysis.index.config import load_config as load_index_config
from analysis.io import DataError
from analysis.multiverse import cache, grid

SMALL = {
    "chunk_size": 3,
    "workers": 2,
    "seed": 7,
    "max_failure_share": 0.0,
    "index": {"outcomes": ["capability_index"], "normalisation": ["minmax_pooled", "zscore_probit"],
              "weighting": ["entropy"], "aggregation": ["weighted_sum"], "indicator_sets": ["core"]},
    "treatments": {"exposure_post": {"exposures": ["exposure_foreign_tech_z", "exposure_defence_z"],
                                     "events": ["post_huawei_2019"]},
                   "cohort": ["first_listing_year"]},
    "estimators": {
        "cont_did": {"treatment_kind": "exposure_post", "spec": {"estimator": "cont_did"}},
        "twfe_event_study": {"treatment_kind": "cohort", "uses_controls": False, "spec": {"estimator": "event_study"}},
    },
    "controls": {"none": [], "macro": ["log(gdp_per_capita)", "urbanisation_pct"]},
    "samples": {"all": {}, "drop_guangdong": {"drop_units": [440000]}, "drop_2020": {"drop_years": [2020]}},
}


@pytest.fixture(scope="module")
def index_config():
    return load_index_config(paths.INDEX_CONFIG)


def parse(raw, index_config):
    return grid.parse_config(copy.deepcopy(raw), index_config, "configs/multiverse.yaml")


INPUTS = {"panel": "a" * 64, "shocks": "b" * 64}


def keys_of(cells, inputs=INPUTS, code="c0de"):
    return [cache.cell_hash(c.hash_payload(), inputs, code) for c in cells]


def test_small_grid_count_by_hand(index_config):
    cells = grid.expand(parse(SMALL, index_config))
    # 2 index choices x (cont_did: 2 treatments x 2 control sets + event study: 1 cohort x 1 empty set) x 3 samples
    assert len(cells) == 2 * (2 * 2 + 1 * 1) * 3 == 30
    assert grid.expected_count(parse(SMALL, index_config)) == 30
    assert len({tuple(c.choices.values()) for c in cells}) == 30  # every cell a distinct combination
    study = [c for c in cells if c.choices["estimator"] == "twfe_event_study"]
    assert {c.choices["controls"] for c in study} == {"none"} and {c.term for c in study} == {"ATT"}
    did = next(c for c in cells if c.choices["estimator"] == "cont_did")
    assert did.term == f"{did.spec.exposure}:{did.spec.treatment}"
    # the engine resolved the spec: defaults filled (fixed effects, cluster, years from configs/panel.yaml)
    assert did.spec.fixed_effects == ("province_code", "year") and did.spec.cluster == "province_code"
    assert did.spec.sample.years == (2015, 2021) and did.spec.seed == 7


def test_default_config_count_matches_closed_form(index_config):
    config = grid.load_config(grid.MULTIVERSE_CONFIG, index_config)
    raw = yaml.safe_load(grid.MULTIVERSE_CONFIG.read_text(encoding="utf-8"))
    idx, tr = raw["index"], raw["treatments"]
    n_index = len(idx["normalisation"]) * len(idx["weighting"]) * len(idx["aggregation"]) * len(idx["indicator_sets"])
    assert len(config.index_choices) == n_index
    n_exposure = len(tr["exposure_post"]["exposures"]) * len(tr["exposure_post"]["events"]) * len(raw["controls"])
    n_cohort = len(tr["cohort"]) * sum(1 for e in raw["estimators"].values() if e["treatment_kind"] == "cohort")
    # the closed form documented at the top of configs/multiverse.yaml, from the file's own lists
    expected = n_index * len(idx["outcomes"]) * (n_exposure + n_cohort) * len(raw["samples"])
    assert len(grid.expand(config)) == grid.expected_count(config) == expected


@pytest.mark.parametrize("mutate, key", [
    (lambda r: r["index"].update(weighting=["entropy", "magic"]), "index.weighting[1]"),
    (lambda r: r["index"].update(indicator_sets=["core", "nope"]), "index.indicator_sets[1]"),
    (lambda r: r["estimators"]["cont_did"].update(treatment_kind="intensity"), "estimators.cont_did.treatment_kind"),
    (lambda r: r["estimators"]["cont_did"]["spec"].update(outcome="u_civil"), "estimators.cont_did.spec"),
    (lambda r: r["estimators"]["cont_did"]["spec"].update(inference={"vcov": "bogus"}), "estimators.cont_did"),
    (lambda r: r["samples"].update(bad={"drop_unit": [1]}), "samples.bad.drop_unit"),
    (lambda r: r.update(chunk_size=0), "chunk_size"),
    (lambda r: r.update(max_failure_share=1.5), "max_failure_share"),
    (lambda r: r.update(max_failure_share=-0.1), "max_failure_share"),
    (lambda r: r.update(max_failure_share="5%"), "max_failure_share"),
    (lambda r: r.update(max_failure_share=float("nan")), "max_failure_share"),
    (lambda r: r.update(extra=1), "extra"),
])
def test_bad_config_names_file_and_key(index_config, mutate, key):
    raw = copy.deepcopy(SMALL)
    mutate(raw)
    with pytest.raises(DataError) as info:
        grid.expand(parse(raw, index_config))
    assert info.value.file == "configs/multiverse.yaml"
    assert key in (info.value.key, info.value.column)  # the schema layer names the dotted key as `key`


def test_max_failure_share_is_required_and_read(index_config):
    """The failure threshold is stated in the configuration (no default in code) and carried to the run."""
    raw = copy.deepcopy(SMALL)
    assert parse(raw, index_config).max_failure_share == 0.0
    raw["max_failure_share"] = 1  # an int share (everything may fail) is accepted, as a float
    assert parse(raw, index_config).max_failure_share == 1.0
    del raw["max_failure_share"]
    with pytest.raises(DataError, match="key 'max_failure_share': required key is missing"):
        parse(raw, index_config)
    assert grid.load_config(grid.MULTIVERSE_CONFIG, index_config).max_failure_share == 0.01


@pytest.mark.parametrize("mutate, key, words", [
    (lambda r: r.pop("max_failure_share"), "max_failure_share", "required key is missing"),
    (lambda r: r["index"].update(weighting=["entropy", "entropy"]), "index.weighting", "duplicate entries"),
    (lambda r: r["treatments"]["exposure_post"].update(events=["e", "e"]), "treatments.exposure_post.events",
     "duplicate entries"),
    (lambda r: r["treatments"].update(cohort=["c", "c"]), "treatments.cohort", "duplicate entries"),
    (lambda r: r.update(treatments={}), "treatments", "at least one kind"),
    (lambda r: r["treatments"].update(cohort=None), "treatments.cohort", "must be a list"),
])
def test_the_file_model_alone_states_each_rule(mutate, key, words):
    """The rules grid.py once restated by hand live in the file's model (config_models_multiverse.MultiverseFile):
    validating the file by the model alone, without grid.py, refuses the value and names the dotted key."""
    from analysis import schema
    from analysis.config_models_multiverse import MultiverseFile

    raw = copy.deepcopy(SMALL)
    schema.validate(MultiverseFile, raw, "configs/multiverse.yaml")  # the unchanged file passes
    mutate(raw)
    with pytest.raises(DataError, match=words) as info:
        schema.validate(MultiverseFile, raw, "configs/multiverse.yaml")
    assert info.value.key == key and info.value.file == "configs/multiverse.yaml"
    assert grid.TREATMENT_KINDS == ("exposure_post", "cohort", "intensity")  # the model's kinds, in file order


def test_hashes_stable_and_unique(index_config):
    cells = grid.expand(parse(SMALL, index_config))
    first, second = keys_of(cells), keys_of(grid.expand(parse(SMALL, index_config)))
    assert first == second
    assert len(set(first)) == len(first)
    assert all(len(k) == 64 and int(k, 16) >= 0 for k in first)


def test_hash_stable_across_processes_and_hash_seeds(index_config, tmp_path):
    config_file = tmp_path / "mv.yaml"
    config_file.write_text(yaml.safe_dump(SMALL), encoding="utf-8")
    here = keys_of(grid.expand(grid.load_config(config_file, index_config)))
    code = (
        "import sys\n"
        "from analysis import paths\n"
        "from analysis.index.config import load_config\n"
        "from analysis.multiverse import grid, cache\n"
        f"cells = grid.expand(grid.load_config({str(config_file)!r}, load_config(paths.INDEX_CONFIG)))\n"
        f"print('\\n'.join(cache.cell_hash(c.hash_payload(), {INPUTS!r}, 'c0de') for c in cells))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                         cwd=paths.ROOT)
    assert out.stdout.split() == here


def test_hash_changes_with_a_choice_an_input_or_the_code(index_config):
    base_cells = grid.expand(parse(SMALL, index_config))
    base = dict(zip([tuple(c.choices.values()) for c in base_cells], keys_of(base_cells)))

    # a choice changes: Guangdong -> Beijing in the same-named sample; only that sample's cells change
    raw = copy.deepcopy(SMALL)
    raw["samples"]["drop_guangdong"] = {"drop_units": [110000]}
    changed = grid.expand(parse(raw, index_config))
    for cell, key in zip(changed, keys_of(changed)):
        same = base[tuple(cell.choices.values())] == key
        assert same == (cell.choices["sample"] != "drop_guangdong")

    # renaming a sample changes no number, so no hash
    raw = copy.deepcopy(SMALL)
    raw["samples"] = {"everything": {}, "drop_guangdong": {"drop_units": [440000]}, "drop_2020": {"drop_years": [2020]}}
    assert sorted(keys_of(grid.expand(parse(raw, index_config)))) == sorted(base.values())

    # an index choice changes only that choice's cells
    raw = copy.deepcopy(SMALL)
    raw["index"]["normalisation"] = ["minmax_pooled", "minmax_goalposts"]
    new_keys = set(keys_of(grid.expand(parse(raw, index_config))))
    kept = {k for (c, k) in zip(base_cells, keys_of(base_cells)) if c.index.normalisation == "minmax_pooled"}
    assert new_keys & set(base.values()) == kept

    # an input file or the code changes every hash
    assert not set(keys_of(base_cells, {**INPUTS, "panel": "d" * 64})) & set(base.values())
    assert not set(keys_of(base_cells, code="other")) & set(base.values())


def test_code_version_tracks_computing_code_only(tmp_path):
    """The cell's code version covers what the task and grid modules import (by the import graph), not a formatter
    that nothing there imports; see tests/test_fingerprint.py for the graph itself."""
    for relative, text in {"analysis/__init__.py": "", "analysis/multiverse/__init__.py": "",
                           "analysis/multiverse/tasks.py": "from analysis.models import regression\n",
                           "analysis/multiverse/grid.py": "", "analysis/models/__init__.py": "",
                           "analysis/models/regression.py": "x = 1\n", "analysis/models/tables.py": "y = 1\n"}.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    v1 = cache.code_version(tmp_path)
    (tmp_path / "analysis" / "models" / "tables.py").write_text("y = 2\n")  # formatting only
    assert cache.code_version(tmp_path) == v1
    (tmp_path / "analysis" / "models" / "regression.py").write_text("x = 2\n")
    assert cache.code_version(tmp_path) != v1


def test_rows_ordered_by_the_specification_not_the_code_version(index_config, tmp_path):
    """A code edit changes every cache key (spec_hash) but not the definitions: the results come out in the same
    row order (by spec_id), so an engine edit that leaves the numbers alone leaves the output files alone."""
    from analysis.multiverse import runner

    cells = grid.expand(parse(SMALL, index_config))
    frames = []
    for code in ("code-before-an-edit", "code-after-an-edit"):
        for key in keys_of(cells, code=code):
            cache.write_cached(tmp_path, key, {"estimate": 0.1,
                                               "std_error": 0.1, "ci_low": -1.0, "ci_high": 1.0, "p_value": 0.5,
                                               "n_obs": 217, "n_clusters": 31, "error": ""})
        frame, stats = runner.run_multiverse(cells, None, None, index_config, ["capability_index"], INPUTS, code,
                                             None, tmp_path, progress=False)
        assert stats.n_computed == 0 and frame["spec_id"].is_monotonic_increasing
        assert frame["spec_id"].tolist() == sorted(cache.spec_id(c.hash_payload()) for c in cells)
        frames.append(frame)
    assert not set(frames[0]["spec_hash"]) & set(frames[1]["spec_hash"])
    pd.testing.assert_frame_equal(frames[0].drop(columns="spec_hash"), frames[1].drop(columns="spec_hash"),
                                  check_exact=True)


def test_cache_round_trip_exact(tmp_path):
    result = {"estimate": 0.1 + 0.2, "std_error": 1 / 3, "ci_low": -1e-300, "ci_high": float("nan"),
              "p_value": 0.5, "n_obs": 217, "n_clusters": 31.0, "error": ""}
    cache.write_cached(tmp_path, "k", result)
    back = cache.read_cached(tmp_path, "k")
    assert back["estimate"] == 0.1 + 0.2 and back["std_error"] == 1 / 3 and back["ci_low"] == -1e-300
    assert back["ci_high"] != back["ci_high"] and back["n_obs"] == 217
    (tmp_path / "broken.json").write_text('{"estimate": 1')
    assert cache.read_cached(tmp_path, "broken") is None and cache.read_cached(tmp_path, "absent") is None
