"""The schema layer (analysis.schema, analysis.config_models*): every config file is validated through its model by
its stage's loader, with one error style (file, dotted key, what is allowed, "did you mean"); shared types reject
what they should; spec resolution is unchanged by the layer (hand-written expected resolutions)."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis import config_models, config_models_exhibits, config_models_multiverse, paths, schema
from analysis.io import DataError
from analysis.window import study_window

CONFIGS = paths.CONFIGS


def _index_config():
    from analysis.index.config import load_config

    return load_config()


# file -> (loader(path), path to a mapping inside the file, a key of that mapping)
def _loaders():
    from analysis import analysis_panel, manifest, power
    from analysis.clean import panel
    from analysis.figures import exhibits
    from analysis.index import config as index_config
    from analysis.models import spec, table_config
    from analysis.multiverse import grid
    from analysis.shocks import config as shocks_config

    return {
        "panel.yaml": (panel.load_config, [], "keep_years"),
        "index.yaml": (index_config.load_config, ["methods", "minmax_entropy_wsum"], "normalisation"),
        "shocks.yaml": (shocks_config.load_config, ["events", "huawei_2019"], "citation"),
        "entity_locations.yaml": (shocks_config.load_locations, ["placed", 0], "basis"),
        "analysis_panel.yaml": (analysis_panel.load_config, [], "case_studies"),
        "exhibits.yaml": (exhibits.load_exhibits, ["exhibits", "fig01_trajectories_u_military"], "caption"),
        "multiverse.yaml": (lambda p: grid.load_config(p, _index_config()), ["inference"], "n_permutations"),
        "data_sources.yaml": (manifest.load_manifest, ["files", 0], "licence"),
        "tables.yaml": (table_config.load_tables, ["tables", "tab01_main_cont_did"], "header"),
        "power.yaml": (power.load_config, ["smallest_effect"], "exposure_contrast_sd"),
        "specs/att_gt_first_listing.yaml": (spec.resolve, [], "control_group"),
    }


LOADERS = _loaders()


def model_of(name: str):
    """The model of a config file (the figures', tables' and power vocabularies passed in as their loaders do)."""
    from analysis import power
    from analysis.figures.exhibits import KINDS
    from analysis.models import spec, table_config, table_labels

    if name.startswith("specs/"):
        return spec.SpecFile
    return {"exhibits.yaml": lambda: config_models_exhibits.exhibits_model(KINDS),
            "tables.yaml": lambda: config_models_exhibits.tables_model(table_config.ROW_KINDS, table_config.HEADERS,
                                                                         table_labels.LABEL_KINDS),
            "power.yaml": lambda: config_models_exhibits.power_model(power.RULES),
            "multiverse.yaml": lambda: config_models_multiverse.MultiverseFile,
            }.get(name, lambda: config_models.MODELS[name])()


CONFIG_FILES = sorted(p.name for p in CONFIGS.glob("*.yaml"))


def _write(tmp_path: Path, name: str, raw) -> Path:
    path = tmp_path / Path(name).name
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _dotted(where: list) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(where))


def test_every_config_file_has_a_model_and_a_loader_case():
    files = {p.name for p in CONFIGS.glob("*.yaml")}
    assert files == set(config_models.MODELS) | {"exhibits.yaml", "tables.yaml", "power.yaml", "multiverse.yaml"}
    assert set(LOADERS) - {"specs/att_gt_first_listing.yaml"} == files


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_shipped_config_validates(name):
    instance, _ = schema.load(model_of(name), CONFIGS / name)
    assert isinstance(instance, schema.Model)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_near_miss_key_names_file_key_and_the_intended_key(tmp_path, name):
    """A misspelt key (last letter dropped) stops the stage's own loader with the file, the dotted key, the allowed
    keys and "did you mean '<the right key>'"."""
    loader, where, key = LOADERS[name]
    raw = yaml.safe_load((CONFIGS / name).read_text(encoding="utf-8"))
    node = raw
    for part in where:
        node = node[part]
    typo = key[:-1]
    node[typo] = node.pop(key)
    path = _write(tmp_path, name, raw)
    with pytest.raises(DataError) as err:
        loader(path)
    text = str(err.value)
    dotted = ".".join(filter(None, [_dotted(where), typo])) if where else typo
    assert err.value.key == dotted, text
    assert path.name in text and f"did you mean {key!r}" in text and "allowed here:" in text


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_extra_top_level_key_rejected(name):
    raw = yaml.safe_load((CONFIGS / name).read_text(encoding="utf-8"))
    raw["zz_not_a_key"] = 1
    with pytest.raises(DataError, match=r"key 'zz_not_a_key': unknown key; allowed here: ") as err:
        schema.validate(model_of(name), raw, CONFIGS / name)
    assert str(err.value.file) == f"configs/{name}"


def test_year_range_rejects_start_after_end_and_non_integers():
    with pytest.raises(DataError, match=r"key 'span': first_year 2021 is after last_year 2015"):
        schema.validate(_Holder, {"span": {"first_year": 2021, "last_year": 2015}}, "x.yaml")
    with pytest.raises(DataError, match=r"key 'span.last_year': must be an integer, got True"):
        schema.validate(_Holder, {"span": {"first_year": 2015, "last_year": True}}, "x.yaml")
    with pytest.raises(DataError, match=r"key 'span.last_year': must be an integer, got '2021'"):
        schema.validate(_Holder, {"span": {"first_year": 2015, "last_year": "2021"}}, "x.yaml")
    with pytest.raises(DataError, match=r"key 'pair': need \[first, last\] with first <= last, got \[2021, 2015\]"):
        schema.validate(_Holder, {"span": {"first_year": 2015, "last_year": 2015}, "pair": [2021, 2015]}, "x.yaml")
    ok = schema.validate(_Holder, {"span": {"first_year": 2015, "last_year": 2017}}, "x.yaml")
    assert ok.span.years() == [2015, 2016, 2017]
    with pytest.raises(Exception):  # frozen
        ok.span.first_year = 2000


class _Holder(schema.Model):
    span: schema.YearRange
    pair: schema.YearPair = [2015, 2016]
    seed: schema.Seed = 0
    spec: schema.SpecId = "a"
    column: schema.Column = "a"


@pytest.mark.parametrize("field, value, fragment", [
    ("seed", -1, "greater than or equal to 0"),
    ("seed", 1.5, "must be an integer"),
    ("spec", "a b", "should match pattern"),
    ("column", "2x", "must be a column name"),
])
def test_shared_types_reject(field, value, fragment):
    with pytest.raises(DataError, match=fragment) as err:
        schema.validate(_Holder, {"span": {"first_year": 2015, "last_year": 2015}, field: value}, "x.yaml")
    assert err.value.key == field


@pytest.mark.parametrize("name, where", [
    ("index.yaml", ["base_period"]),
    ("shocks.yaml", ["exposure", "base_years"]),
    ("panel.yaml", ["keep_years"]),
])
def test_loaders_reject_a_reversed_year_range(tmp_path, name, where):
    loader = LOADERS[name][0]
    raw = yaml.safe_load((CONFIGS / name).read_text(encoding="utf-8"))
    node = raw
    for part in where:
        node = node[part]
    node["first_year"], node["last_year"] = node["last_year"] + 1, node["first_year"]
    with pytest.raises(DataError, match="is after last_year") as err:
        loader(_write(tmp_path, name, raw))
    assert err.value.key == _dotted(where)


def test_union_errors_report_the_member_that_fits_and_the_exhibit_kind(tmp_path):
    raw = yaml.safe_load((CONFIGS / "tables.yaml").read_text(encoding="utf-8"))
    raw["tables"]["tab07_robustness"]["columns"][1] = {"spec": "robust_trends_capability_index", "lable": "x"}
    with pytest.raises(DataError, match=r"key 'tables.tab07_robustness.columns\[1\].lable': unknown key.*"
                                        r"did you mean 'label'"):
        schema.validate(model_of("tables.yaml"), raw, CONFIGS / "tables.yaml")
    ex = yaml.safe_load((CONFIGS / "exhibits.yaml").read_text(encoding="utf-8"))
    ex["exhibits"]["fig01_trajectories_u_military"]["kind"] = "trajectory"
    with pytest.raises(DataError, match=r"key 'exhibits.fig01_trajectories_u_military.kind': must be one of "
                                        r"trajectories, .*got 'trajectory' \(did you mean 'trajectories'\?\)"):
        schema.validate(model_of("exhibits.yaml"), ex, CONFIGS / "exhibits.yaml")


def test_literal_choice_near_miss(tmp_path):
    raw = yaml.safe_load((CONFIGS / "index.yaml").read_text(encoding="utf-8"))
    raw["methods"]["minmax_entropy_wsum"]["weighting"] = "entropie"
    with pytest.raises(DataError, match=r"key 'methods.minmax_entropy_wsum.weighting': must be one of entropy, critic, "
                                        r"equal, pca, got 'entropie' \(did you mean 'entropy'\?\)"):
        LOADERS["index.yaml"][0](_write(tmp_path, "index.yaml", raw))


def test_missing_panel_column_suggests_the_closest(tmp_path):
    from analysis.models.sample import check_panel
    from analysis.models.spec import resolve

    spec = resolve(CONFIGS / "specs" / "att_gt_first_listing.yaml")
    frame = pd.DataFrame({"province_code": [1], "year": [2015], "capability_idx": [0.1],
                          "first_listing_year": [0]})
    with pytest.raises(DataError, match=r"column 'capability_index'.*did you mean 'capability_idx'"):
        check_panel(frame, spec, "panel.csv")


# --- specs: the schema layer changes no resolution ------------------------------------------------------------

def _expected_att_gt_first_listing() -> dict:
    return {
        "description": "Callaway-Sant'Anna group-time ATTs on first-listing cohorts, not-yet-treated controls, "
                       "event-time aggregation.",
        "data": None, "estimator": "att_gt", "outcome": "capability_index", "treatment": None, "exposure": None,
        "heterogeneity": None, "unit": "province_code", "time": "year", "cohort": "first_listing_year",
        "controls": [], "fixed_effects": ["province_code", "year"], "cluster": "province_code",
        "control_group": "notyettreated", "aggregate": "dynamic", "trends": None,
        "sample": {"years": list(study_window()), "drop_units": [], "keep_units": [], "drop_years": []},
        "inference": {"alpha": 0.05, "bootstrap": {"reps": 999},
                      "honest": {"M": [0, 0.001, 0.002, 0.005], "target": "average"}},
        "seed": 20240517, "event_window": [-3, 3], "reference_period": -1, "anticipation": 0,
        "base_period": "varying", "allow_unbalanced_panel": False, "synth": {}, "sdid": {}, "extends": None,
        "id": "att_gt_first_listing", "spec_files": ["configs/specs/att_gt_first_listing.yaml"],
        "data_file": "data/processed/analysis_panel.parquet",
    }


def _expected_robust_no2020() -> dict:
    return {
        "description": "Headline exposure x post-2019 on the capability index without the year 2020 (COVID-19 "
                       "disruption); post period 2019 and 2021.",
        "data": None, "estimator": "cont_did", "outcome": "capability_index", "treatment": "post_huawei_2019",
        "exposure": "exposure_foreign_tech_z", "heterogeneity": None, "unit": "province_code", "time": "year",
        "cohort": None, "controls": [], "fixed_effects": ["province_code", "year"], "cluster": "province_code",
        "control_group": "nevertreated", "aggregate": "simple", "trends": None,
        "sample": {"years": list(study_window()), "drop_units": [], "keep_units": [], "drop_years": [2020]},
        "inference": {"vcov": "CRV1", "bandwidth": None, "wild_bootstrap": {"reps": 9999, "weights": "webb"},
                      "ri": None, "honest": None},
        "seed": 20240517, "event_window": [-3, 3], "reference_period": -1, "anticipation": 0,
        "base_period": "varying", "allow_unbalanced_panel": False, "synth": {}, "sdid": {},
        "extends": "cont_did_capability_index", "id": "robust_no2020_capability_index",
        "spec_files": ["configs/specs/robust_no2020_capability_index.yaml",
                       "configs/specs/cont_did_capability_index.yaml"],
        "data_file": "data/processed/analysis_panel.parquet",
    }


@pytest.mark.parametrize("spec_id, expected", [
    ("att_gt_first_listing", _expected_att_gt_first_listing),
    ("robust_no2020_capability_index", _expected_robust_no2020),
])
def test_resolved_spec_equals_hand_written(spec_id, expected):
    from analysis.fingerprint import canonical_json
    from analysis.models.spec import resolve

    resolved = resolve(CONFIGS / "specs" / f"{spec_id}.yaml").canonical()
    assert resolved == expected()
    assert canonical_json(resolved) == canonical_json(expected())


@pytest.mark.parametrize("path", sorted((CONFIGS / "specs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_spec_resolves_to_a_fixed_point(path):
    """Every shipped spec passes the schema, and resolving is idempotent: validating a resolved spec again (as a
    spec file holding every key) gives the same spec, so defaults are filled once and from one place."""
    from analysis.models.spec import resolve, validate

    resolved = resolve(path)
    bare = {k: copy.deepcopy(v) for k, v in resolved.canonical().items() if k not in ("id", "spec_files", "data_file")}
    schema.validate(model_of("specs/x.yaml"), bare, path)
    again = validate(copy.deepcopy(bare), path)
    assert again.canonical() == bare
    assert again == resolved.model_copy(update={k: None if k == "data_file" else () if k == "spec_files" else ""
                                                for k in ("id", "spec_files", "data_file")})


def test_one_year_span_type():
    """The index's Period and the shocks' YearRange are the one schema type (positional form kept)."""
    from pydantic import ValidationError

    from analysis.index.config import Period
    from analysis.shocks.config import YearRange

    assert Period is YearRange is schema.YearRange
    assert Period(2015, 2017).years() == [2015, 2016, 2017]
    assert Period(2015, 2017) == YearRange(first_year=2015, last_year=2017)
    assert len({Period(2015, 2017), YearRange(2015, 2017)}) == 1  # hashable (frozen), as the dataclasses were
    with pytest.raises(ValidationError):
        Period(2017, 2015)


def test_defaults_live_in_the_spec_module(tmp_path):
    """The estimators' default alpha is the spec's (one constant), and a multiplier bootstrap without ``reps`` is
    resolved to the default count in the spec itself (the estimator no longer fills it)."""
    from analysis.models import honest_did, spec, spec_vocabulary, staggered_panel

    assert staggered_panel.DEFAULT_ALPHA is spec_vocabulary.DEFAULT_ALPHA is honest_did.DEFAULT_ALPHA
    assert spec_vocabulary.INFERENCE_DEFAULTS["att_gt"]["alpha"] == spec_vocabulary.DEFAULT_ALPHA
    path = tmp_path / "boot.yaml"
    path.write_text("estimator: att_gt\noutcome: y\ncohort: g\ninference: {bootstrap: {}}\n", encoding="utf-8")
    resolved = spec.resolve(path)
    assert resolved.inference.bootstrap.reps == spec_vocabulary.DEFAULT_MULTIPLIER_BOOTSTRAP_REPS
    assert resolved.seed == spec_vocabulary.DEFAULT_SEED


def test_resolved_spec_is_typed_frozen_and_complete(tmp_path):
    """resolve() returns a frozen Spec whose every default is filled in the model (nested models too), so no
    estimator needs ``.get(key, default)``; its canonical form keeps only what the resolved dict of old held (the
    spec's inference family, the honest and option keys given), so sidecar fingerprints do not move."""
    from pydantic import ValidationError

    from analysis.models import spec, spec_vocabulary

    path = tmp_path / "es.yaml"
    path.write_text("estimator: event_study\noutcome: y\ncohort: g\ninference: {honest: {M: [0, 0.5]}}\n",
                    encoding="utf-8")
    resolved = spec.resolve(path)
    assert isinstance(resolved, spec.Spec)
    assert resolved.inference.honest.target == 0 and resolved.inference.honest.Mbar is None  # filled in the model
    assert resolved.inference.alpha == spec_vocabulary.DEFAULT_ALPHA and resolved.synth.method == "auto"
    assert resolved.sample.years == tuple(study_window()) and resolved.fixed_effects == ("province_code", "year")
    canonical = resolved.canonical()
    assert canonical["inference"] == {"vcov": "CRV1", "bandwidth": None, "wild_bootstrap": None, "ri": None,
                                      "honest": {"M": [0, 0.5]}}
    assert canonical["synth"] == {} and canonical["id"] == "es"
    assert spec.Spec.model_validate(canonical) == resolved            # the canonical form round-trips
    assert spec.Spec.from_mapping(canonical).canonical() == canonical
    with pytest.raises(ValidationError):
        resolved.seed = 1                                             # frozen
    with pytest.raises(TypeError):
        resolved["seed"]                                              # attributes only, no dict interface


def test_one_estimator_registry(tmp_path):
    """The estimator names are the registry's keys; every name has its required keys and inference settings, and a
    near-miss estimator name is answered with the intended one."""
    from analysis.models import registry, spec, spec_vocabulary

    assert spec_vocabulary.ESTIMATORS == tuple(registry.ESTIMATOR_FUNCTIONS)
    assert set(spec_vocabulary.NEEDS) == set(spec_vocabulary.INFERENCE_DEFAULTS) == set(spec_vocabulary.ESTIMATORS)
    path = tmp_path / "typo.yaml"
    path.write_text("estimator: att_gtt\noutcome: y\ncohort: g\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"key 'estimator': unknown estimator 'att_gtt'.*did you mean 'att_gt'"):
        spec.resolve(path)


@pytest.mark.parametrize("name, mutate, key, fragment", [
    ("power.yaml", lambda c: c.update(alpha=1.5), "alpha", "less than 1"),
    ("power.yaml", lambda c: c["smallest_effect"].update(bound="doubled"), "smallest_effect.bound",
     "did you mean 'doubling'"),
    ("analysis_panel.yaml", lambda c: c["case_studies"]["treated_shaanxi_2020"].update(province_code=999999),
     "case_studies.treated_shaanxi_2020.province_code", "unknown province code"),
    ("analysis_panel.yaml", lambda c: c["derived"].update(log_x=["logg", "gdp"]), "derived.log_x[0]",
     "did you mean 'log'"),
    ("analysis_panel.yaml", lambda c: c["base_period_interactions"]["exposure_defence_z_x_post_2017"].update(
        times="post_huawei_2019"), "base_period_interactions.exposure_defence_z_x_post_2017", "exactly one of"),
    ("analysis_panel.yaml", lambda c: c["base_period_splits"]["defence_oriented"].update(years=[2017, 2015]),
     "base_period_splits.defence_oriented.years", "first <= last"),
])
def test_loader_value_errors_name_the_dotted_key(tmp_path, name, mutate, key, fragment):
    """Values the model checks and values only the loader can check (identity table, functions) give the same
    error style: file, dotted key, what is wrong."""
    raw = yaml.safe_load((CONFIGS / name).read_text(encoding="utf-8"))
    mutate(raw)
    with pytest.raises(DataError, match=fragment) as err:
        LOADERS[name][0](_write(tmp_path, name, raw))
    assert err.value.key == key and name in str(err.value)


def test_manifest_entry_problems_name_the_entry(tmp_path):
    from analysis.manifest import load_manifest

    raw = yaml.safe_load((CONFIGS / "data_sources.yaml").read_text(encoding="utf-8"))
    raw["files"].append(copy.deepcopy(raw["files"][0]))
    with pytest.raises(DataError, match=r"is listed twice \(first as files\[0\]\)") as err:
        load_manifest(_write(tmp_path, "data_sources.yaml", raw))
    assert err.value.key == f"files[{len(raw['files']) - 1}].path"
    raw["files"].pop()
    raw["files"][1]["sha256"] = "abc"
    with pytest.raises(DataError, match="should match pattern") as err:
        load_manifest(_write(tmp_path, "data_sources.yaml", raw))
    assert err.value.key == "files[1].sha256"


def test_study_window_errors_name_the_window_key(tmp_path):
    from analysis.window import study_window

    path = tmp_path / "panel.yaml"
    path.write_text("window: {first_year: 2021, last_year: 2015}\n", encoding="utf-8")
    with pytest.raises(DataError, match="first_year 2021 is after last_year 2015") as err:
        study_window(path)
    assert err.value.key == "window"
    path.write_text("window: {first_year: 2015, last_yeer: 2021}\n", encoding="utf-8")
    with pytest.raises(DataError, match="did you mean 'last_year'") as err:
        study_window(path)
    assert err.value.key == "window.last_yeer"


@pytest.mark.parametrize("entry, absent", [
    ("analysis.estimate", ("analysis/config_models", "analysis/figures/", "analysis/power.py",
                           "analysis/models/table", "analysis/index/")),
    ("analysis.multiverse.tasks", ("analysis/figures/", "analysis/power.py", "analysis/models/table",
                                   "analysis/config_models_exhibits.py")),
])
def test_schema_layer_pulls_no_other_stage_into_a_code_fingerprint(entry, absent):
    """The estimates' and the multiverse cells' code fingerprints follow the import graph: the schema layer must
    not bring figure, table or power code into them (editing a figure would rerun every model)."""
    from analysis.fingerprint import code_files

    files = [str(p.relative_to(paths.ROOT)) for p in code_files([entry])]
    assert "analysis/schema.py" in files or entry != "analysis.estimate"
    assert not [f for f in files if f.startswith(absent)], files


def test_a_config_model_is_in_a_code_fingerprint_only_where_its_file_is_read():
    """Each config file's model lives in a module of its stage: the models of the exhibit files (exhibits.yaml,
    tables.yaml, power.yaml) are in no estimate's and no multiverse cell's code fingerprint (editing a table's
    model must not rerun a model or invalidate the multiverse cache), the multiverse's model is in the cells'
    fingerprint (a changed rule of that file re-fits the cells), and the estimates' fingerprint holds no file model
    at all (the spec files' model is analysis.models.spec's). Found from the model the loaders use, wherever it
    is defined (the old single module put the exhibit models into the multiverse cells' fingerprint)."""
    import sys

    from analysis import estimate
    from analysis.fingerprint import code_files
    from analysis.multiverse import cache

    def defined_in(name: str) -> str:
        return paths.relative(Path(sys.modules[model_of(name).__module__].__file__))

    engine = {paths.relative(f) for f in code_files(estimate.ENGINE_ENTRIES)}
    cells = {paths.relative(f) for f in code_files(cache.CODE_ENTRIES)}
    for name in ("exhibits.yaml", "tables.yaml", "power.yaml"):
        assert defined_in(name) not in engine | cells, name
    assert defined_in("multiverse.yaml") in cells
    assert not {defined_in(name) for name in CONFIG_FILES} & engine
