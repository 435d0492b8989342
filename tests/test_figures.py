"""Figures and descriptive tables: every exhibit in configs/exhibits.yaml is produced, maps are complete, the
geometry and the statistics behind the plots are right, output is byte-for-byte reproducible, bad input fails."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.image import imread

from analysis import paths
from analysis.figures import exhibits as ex
from analysis.figures.__main__ import main as figures_main
from analysis.io import DataError
from analysis.window import study_window

REAL_INPUTS = ["indices.parquet", "index_sensitivity.csv", "claims_check.csv", "panel.parquet", "codebook.csv",
               "provinces.csv"]


def _event_estimates(ks, slope, honest=False, prefix="") -> pd.DataFrame:
    """A tidy event-study file with known coefficients slope·k for k >= 0 and 0 before, CI ± 0.05."""
    est = [slope * k if k >= 0 else 0.0 for k in ks]
    df = pd.DataFrame({"term": [f"{prefix}e={k}" for k in ks], "estimate": est, "std_error": 0.025,
                       "p_value": 0.5, "ci_low": np.array(est) - 0.05, "ci_high": np.array(est) + 0.05,
                       "n_obs": 217, "method": "simulated"})
    if honest:
        rows = [{"term": f"honest SD M={m:g} e=0", "estimate": 0.0, "std_error": np.nan, "p_value": np.nan,
                 "ci_low": -0.05 - m, "ci_high": 0.05 + m, "n_obs": 217, "method": "simulated"}
                for m in (0.0, 0.01, 0.02)]
        df = pd.concat([df, pd.DataFrame(rows)], ignore_index=True)
    return df


@pytest.fixture(scope="module")
def fixture_locations(tmp_path_factory, stage_tree):
    """Index outputs of the real data stages, run into a temporary folder (conftest ``stage_tree``; data/processed is
    not read) + a fixture analysis panel and estimate files (the model stage may not have run).

    Synthetic-control estimate files and their companion tables are produced by the real estimator on the fixture
    panel, so the figure's consistency check (ATT of the stored paths = ATT in the file) is exercised for real.
    """
    from analysis.models import registry
    from analysis.models.sample import select_sample
    from analysis.models.spec import resolve

    root = tmp_path_factory.mktemp("figures_inputs")
    processed, estimates = root / "processed", root / "processed" / "estimates"
    estimates.mkdir(parents=True)
    for name in REAL_INPUTS:
        shutil.copy(stage_tree / name, processed / name)
    default = ex.index_settings(paths.INDEX_CONFIG)["default_method"]
    indices = pd.read_parquet(stage_tree / "indices.parquet")
    panel = indices[indices["method"] == default].drop(columns="method").copy()
    cases = yaml.safe_load((paths.CONFIGS / "analysis_panel.yaml").read_text())["case_studies"]
    for column, case in cases.items():
        panel[column] = ((panel["province_code"] == case["province_code"])
                         & (panel["year"] >= case["first_year"])).astype(int)
    panel.to_parquet(processed / "analysis_panel.parquet", index=False)
    for exhibit in ex.load_exhibits(paths.CONFIGS / "exhibits.yaml"):
        if exhibit.kind == "synth":
            # as the estimation stage writes them: estimates, sidecar (resolved spec), companion paths and weights
            spec = resolve(paths.SPECS / f"{exhibit.options['spec']}.yaml")
            table, companions = registry.estimate_with_companions(select_sample(panel, spec), spec)
            target = estimates / f"{spec.id}.parquet"
            table.to_parquet(target, index=False)
            target.with_suffix(".json").write_text(json.dumps({"spec": spec.canonical()}))
            for name, frame in companions.items():
                frame.to_parquet(paths.companion(target, name), index=False)
        elif exhibit.kind == "event_study":
            for i, spec_id in enumerate(exhibit.options["specs"]):
                prefix = "ATT " if i else ""
                _event_estimates([-3, -2, 0, 1, 2], 0.01 * (i + 1), honest=(i == 0),
                                 prefix=prefix).to_parquet(estimates / f"{spec_id}.parquet", index=False)
        elif exhibit.kind == "coefficients":
            # one row per heterogeneity level with known estimates, and a pooled estimate
            levels = ["Central", "Eastern", "Northern", "Southern", "Western"]
            est = np.linspace(-0.01, 0.01, len(levels))
            pd.DataFrame({"term": [f"x:post:theater_command={lv}" for lv in levels], "estimate": est,
                          "std_error": 0.005, "p_value": 0.5, "ci_low": est - 0.01, "ci_high": est + 0.01,
                          "n_obs": 217, "n_clusters_level": [7, 6, 5, 6, 7], "method": "simulated"}
                         ).to_parquet(estimates / f"{exhibit.options['spec']}.parquet", index=False)
            pd.DataFrame({"term": ["x:post"], "estimate": [-0.005], "std_error": [0.003], "p_value": [0.1],
                          "ci_low": [-0.011], "ci_high": [0.001], "n_obs": [217], "method": ["simulated"]}
                         ).to_parquet(estimates / f"{exhibit.options['pooled_spec']}.parquet", index=False)
    return ex.Locations(processed=processed, estimates=estimates)


def _cli_args(where, out_dir, *extra):
    return ["--exhibits", str(paths.CONFIGS / "exhibits.yaml"), "--out-dir", str(out_dir),
            "--processed-dir", str(where.processed), "--estimates-dir", str(where.estimates), "--no-progress",
            *extra]


@pytest.fixture(scope="module")
def built(fixture_locations, tmp_path_factory):
    out = tmp_path_factory.mktemp("figures_out")
    assert figures_main(_cli_args(fixture_locations, out)) == 0
    return out


def test_every_exhibit_is_produced_as_a_sensible_image_or_table(built):
    exhibits = ex.load_exhibits(paths.CONFIGS / "exhibits.yaml")
    assert len(exhibits) >= 11
    for exhibit in exhibits:
        if exhibit.output_type == "fig":
            pdf, png = built / f"{exhibit.id}.pdf", built / f"{exhibit.id}.png"
            assert pdf.read_bytes()[:5] == b"%PDF-" and 5_000 < pdf.stat().st_size < 2_000_000, exhibit.id
            image = imread(png)
            height, width = image.shape[:2]
            assert 700 <= width <= 2600 and 300 <= height <= 2600, (exhibit.id, width, height)
            # not blank: a real spread of pixel values, and some dark ink
            grey = image[..., :3].mean(axis=2)
            assert grey.std() > 0.05 and (grey < 0.3).mean() > 0.001, exhibit.id
        else:
            tex = (built / f"{exhibit.id}.tex").read_text()
            md = (built / f"{exhibit.id}.md").read_text()
            assert tex.count(r"\begin{tabular}") == 1 and r"\bottomrule" in tex
            assert exhibit.caption in md


def test_descriptive_table_numbers_match_the_data(built, fixture_locations):
    md = (built / "tab06_descriptives_by_theater.md").read_text()
    panel = pd.read_parquet(fixture_locations.processed / "panel.parquet")
    window = panel[panel["year"].between(*study_window())]
    western = window.loc[window["theater_command"] == "Western", "population"]
    # computed independently with numpy; documented display rule: >= 1000 with separators and no decimals,
    # >= 10 with one decimal, below that three
    x = western.to_numpy(dtype=float)
    x = x[~np.isnan(x)]

    def shown(v):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.3f}"

    expected = f"| Western | {x.size} | " + " | ".join(shown(v) for v in (x.mean(), x.std(ddof=1), x.min(), x.max()))
    assert expected in md


def test_missing_estimate_file_is_an_error_not_a_skip(fixture_locations, tmp_path, capsys):
    estimates = tmp_path / "estimates"
    shutil.copytree(fixture_locations.estimates, estimates)
    (estimates / "sunab_first_listing.parquet").unlink()
    where = ex.Locations(processed=fixture_locations.processed, estimates=estimates)
    code = figures_main(_cli_args(where, tmp_path / "out", "--only", "fig07_event_study_first_listing"))
    assert code == 2
    assert "sunab_first_listing.parquet" in capsys.readouterr().err
    assert not (tmp_path / "out" / "fig07_event_study_first_listing.pdf").exists()


def test_stale_synth_estimate_file_is_detected(fixture_locations, tmp_path):
    estimates = tmp_path / "estimates"
    shutil.copytree(fixture_locations.estimates, estimates)
    target = estimates / "synth_shaanxi_2020.parquet"
    table = pd.read_parquet(target)
    table.loc[table["term"] == "ATT", "estimate"] += 0.01
    table.to_parquet(target, index=False)
    exhibit = next(e for e in ex.load_exhibits(paths.CONFIGS / "exhibits.yaml") if e.id == "fig08_synth_shaanxi")
    with pytest.raises(DataError, match="stale"):
        ex.build(exhibit, ex.Locations(processed=fixture_locations.processed, estimates=estimates))


@pytest.mark.parametrize("edit, message", [
    ({"colour": "red"}, "unknown key"),
    ({"kind": "pie"}, r"kind': must be one of .*got 'pie'"),
    ({"variable": 3}, r"variable': must be text, got 3"),
])
def test_exhibit_list_validation_names_the_key(tmp_path, edit, message):
    raw = yaml.safe_load((paths.CONFIGS / "exhibits.yaml").read_text())
    raw["exhibits"]["fig01_trajectories_u_military"].update(edit)
    bad = tmp_path / "exhibits.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True))
    with pytest.raises(DataError, match=message) as info:
        ex.load_exhibits(bad)
    assert "fig01_trajectories_u_military" in str(info.value) and "exhibits.yaml" in str(info.value)


@pytest.mark.parametrize("edit, key", [({"method": None}, "method"), ({"years": None}, "years"),
                                       ({"language": "fr"}, "language"), ({"caption": 3}, "caption")])
def test_exhibit_rules_live_in_the_file_model(tmp_path, edit, key):
    """The exhibit list's keys, types and choices are its model's (config_models_exhibits.exhibits_model of
    KINDS), with no restatement in load_exhibits: the model alone refuses the value (an optional key written without
    a value included), and load_exhibits reports that error, naming the dotted key."""
    from analysis import schema
    from analysis.config_models_exhibits import exhibits_model

    raw = yaml.safe_load((paths.CONFIGS / "exhibits.yaml").read_text())
    raw["exhibits"]["fig01_trajectories_u_military"].update(edit)
    with pytest.raises(DataError) as by_model:
        schema.validate(exhibits_model(ex.KINDS), raw, "configs/exhibits.yaml")
    bad = tmp_path / "exhibits.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True))
    with pytest.raises(DataError) as by_loader:
        ex.load_exhibits(bad)
    assert by_model.value.key == by_loader.value.key == f"exhibits.fig01_trajectories_u_military.{key}"


@pytest.mark.parametrize("edit, words", [(lambda c: c.pop("default_method"), "required key is missing"),
                                         (lambda c: c.update(default_method=3), "must be text, got 3")])
def test_figures_read_the_index_method_through_the_index_model(tmp_path, edit, words):
    """The figures' default index method comes from configs/index.yaml validated by its model (no hand check of
    that file in the figure code): a missing or malformed default_method names the file and the key."""
    raw = yaml.safe_load(paths.INDEX_CONFIG.read_text(encoding="utf-8"))
    assert ex.index_settings(paths.INDEX_CONFIG)["default_method"] == raw["default_method"]
    edit(raw)
    bad = tmp_path / "index.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(DataError, match=words) as info:
        ex.index_settings(bad)
    assert info.value.key == "default_method" and "index.yaml" in str(info.value)


def test_duplicate_exhibit_number_rejected(tmp_path):
    raw = yaml.safe_load((paths.CONFIGS / "exhibits.yaml").read_text())
    raw["exhibits"]["fig01_other"] = dict(raw["exhibits"]["fig01_trajectories_u_military"])
    bad = tmp_path / "exhibits.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True))
    with pytest.raises(DataError, match="already used"):
        ex.load_exhibits(bad)


def test_list_inputs_names_estimate_files(capsys):
    assert figures_main(["--only", "fig06_event_study_exposure", "--list-inputs"]) == 0
    printed = capsys.readouterr().out.split()
    assert "data/processed/estimates/cont_did_dynamic_u_civil.parquet" in printed
    assert "configs/index.yaml" in printed
