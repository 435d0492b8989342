"""CLI round trip: spec + small CSV -> estimates Parquet + JSON sidecar; reruns give identical bytes; tables are
built only from those files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from analysis import estimate, tables
from analysis.io import sha256
from analysis.models.table_cells import fmt, stars
from analysis.models.table_config import TABLES, TableDef
from models_engine_sim import simulate_panel


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    folder = tmp_path_factory.mktemp("engine")
    csv = folder / "panel.csv"
    simulate_panel(13).to_csv(csv, index=False)
    specs = {
        "main": f"description: test\nestimator: cont_did\noutcome: y_cont\nexposure: exposure\ntreatment: post\n"
                f"controls: [x1, log(gdp)]\ndata: {csv}\nseed: 3\n",
        "main_dyn": "extends: main\naggregate: dynamic\nevent_window: [-4, 2]\noutcome: y_dyn\n",
        "es": f"estimator: event_study\noutcome: y_bin\ncohort: cohort\ndata: {csv}\n",
        "fe": f"estimator: panel_fe\noutcome: y_cont\ntreatment: x1\ndata: {csv}\n",
        "re": "extends: fe\nestimator: panel_re\n",
        "fd": "extends: fe\nestimator: first_diff\n",
        "hausman": "extends: fe\nestimator: hausman\n",
    }
    for name, text in specs.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder, csv


def test_cli_writes_estimates_and_sidecar(workspace):
    folder, csv = workspace
    out = folder / "est" / "main.parquet"
    assert estimate.main(["--spec", str(folder / "main.yaml"), "--out", str(out)]) == 0
    table = pd.read_parquet(out)
    for column in ("term", "estimate", "std_error", "p_value", "ci_low", "ci_high", "n_obs", "method"):
        assert column in table.columns
    assert table["term"].tolist() == ["exposure:post", "x1", "log_gdp"]
    assert abs(table.loc[0, "estimate"] - 0.5) < 0.15
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["spec"]["outcome"] == "y_cont" and side["seed"] == 3
    assert side["inputs_sha256"][Path(csv).as_posix()] == sha256(csv)
    assert any(k.endswith("main.yaml") for k in side["inputs_sha256"])
    assert {"python", "numpy", "pandas", "pyfixest", "linearmodels", "statsmodels"} <= set(side["versions"])


def test_cli_rerun_gives_identical_bytes(workspace):
    folder, _ = workspace
    first, second = folder / "a" / "main_dyn.parquet", folder / "b" / "main_dyn.parquet"
    estimate.main(["--spec", str(folder / "main_dyn.yaml"), "--out", str(first)])
    estimate.main(["--spec", str(folder / "main_dyn.yaml"), "--out", str(second)])
    assert digest(first) == digest(second)
    assert digest(first.with_suffix(".json")) == digest(second.with_suffix(".json"))


def test_cli_bad_spec_exits_with_message(workspace, capsys):
    folder, _ = workspace
    bad = folder / "bad.yaml"
    bad.write_text("estimator: feols\noutcome: y\ntreatment: post\nclusters: province_code\n")
    assert estimate.main(["--spec", str(bad), "--out", str(folder / "bad.parquet")]) == 2
    assert "key 'clusters'" in capsys.readouterr().err
    assert not (folder / "bad.parquet").exists()


#: A tables config for the synthetic specs of ``workspace``: its own tables and its own label map (the test outcomes
#: and regressors are no business of configs/tables.yaml).
TEST_TABLES = """\
tables:
  tab01_main:
    caption: Main
    rows: all
    header: outcome
    columns: [main]
  tab02_events:
    caption: Events
    rows: events
    header: outcome
    columns: [main_dyn, es]
  tab03_panel:
    caption: Panel
    rows: all
    header: estimator
    columns: [fe, re, fd]
    extra_specs: [hausman]
labels:
  terms:
    "exposure:post": Exposure x post
    x1: Regressor one
    log_gdp: Log GDP
    ATT: Average effect
    hausman_mundlak_F: Mundlak F
    hausman_mundlak_chi2: Mundlak chi-square
    hausman_chi2: Classical chi-square
  event_time: "Event time {k}"
  outcomes: {y_cont: Continuous outcome, y_dyn: Dynamic outcome, y_bin: Binary outcome}
  estimators: {cont_did: Continuous DiD, event_study: Event study, panel_fe: Within, panel_re: Random effects,
               first_diff: First differences}
"""


def test_tables_from_estimate_files(workspace, capsys):
    """The tables CLI with its own config (--config): every cell from the estimate files, every name through that
    config's label map, event times aligned across specs in numeric order; a term the map lacks stops the run."""
    folder, _ = workspace
    est = folder / "tables_in"
    for name in ("main", "main_dyn", "es", "fe", "re", "fd", "hausman"):
        assert estimate.main(["--spec", str(folder / f"{name}.yaml"), "--out", str(est / f"{name}.parquet")]) == 0
    config = folder / "tables.yaml"
    config.write_text(TEST_TABLES, encoding="utf-8")
    out_dir = folder / "figs"
    run = ["--estimates-dir", str(est), "--out-dir", str(out_dir), "--specs-dir", str(folder), "--config", str(config)]
    assert tables.main(run) == 0
    main_md = (out_dir / "tab01_main.md").read_text()
    main = pd.read_parquet(est / "main.parquet").set_index("term")
    cell = fmt(main.loc["exposure:post", "estimate"]) + stars(main.loc["exposure:post", "p_value"])
    assert f"| Exposure x post | {cell} |" in main_md
    assert f"({fmt(main.loc['exposure:post', 'std_error'])})" in main_md
    assert "| (1) Continuous outcome |" in main_md and "| Estimator | Continuous DiD |" in main_md
    assert "| Observations | 217 |" in main_md and "exposure:post" not in main_md
    events = (out_dir / "tab02_events.md").read_text()
    rows = [line.split(" | ")[0].strip("| ") for line in events.splitlines() if line.startswith("| Event time")]
    assert rows == [f"Event time {k}" for k in (-4, -3, -2, 0, 1, 2, 3)]  # numeric order, aligned across specs
    panel_tex = (out_dir / "tab03_panel.tex").read_text()
    assert r"\begin{tabular}{lccc}" in panel_tex
    assert "Classical chi-square (df 1)" in panel_tex and "Mundlak F (df 1, 30)" in panel_tex
    assert r"hausman\_" not in panel_tex  # raw term names (hausman_chi2, ...) never shown
    # N differs (first differences lose each province's first year: 217 - 31 = 186), and the note says why, read
    # from the sidecar and the spec's CSV panel
    assert "(3) 186: first differences: each province's first year has no difference" in (
        out_dir / "tab03_panel.md").read_text()
    # rerun: identical files
    before = digest(out_dir / "tab03_panel.tex")
    tables.main(run)
    assert digest(out_dir / "tab03_panel.tex") == before
    # a term the label map lacks is an error naming it and the config to add it to; nothing is written
    capsys.readouterr()
    config.write_text(TEST_TABLES.replace("    x1: Regressor one\n", ""), encoding="utf-8")
    assert tables.main([*run[:3], str(folder / "figs2"), *run[4:]]) == 2
    err = capsys.readouterr().err
    assert str(config) in err and "no label for term 'x1'" in err and "labels.terms" in err
    assert not (folder / "figs2" / "tab03_panel.tex").exists()


def test_table_missing_estimates_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tables, "TABLES", (TableDef("t", "T", ("nope",), "all", "outcome"),))
    (tmp_path / "nope.yaml").write_text("estimator: feols\n")  # the spec exists; its estimates do not
    assert tables.main(["--estimates-dir", str(tmp_path), "--out-dir", str(tmp_path / "o"),
                        "--specs-dir", str(tmp_path)]) == 2
    assert "nope.parquet" in capsys.readouterr().err


def test_table_of_a_deleted_spec_is_refused_even_with_its_estimates(tmp_path, monkeypatch, capsys):
    """An estimate file left behind by a deleted spec is orphaned: the table refuses it, naming the spec."""
    monkeypatch.setattr(tables, "TABLES", (TableDef("t", "T", ("gone",), "long", "estimator"),))
    pd.DataFrame({"term": ["x"], "estimate": [1.0], "std_error": [0.1], "p_value": [0.5]}).to_parquet(
        tmp_path / "gone.parquet")
    (tmp_path / "gone.json").write_text('{"spec": {"estimator": "feols"}}')
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "gone_v2.yaml").write_text("estimator: feols\n")
    assert tables.main(["--estimates-dir", str(tmp_path), "--out-dir", str(tmp_path / "o"),
                        "--specs-dir", str(tmp_path / "specs")]) == 2
    err = capsys.readouterr().err
    assert "'gone'" in err and "no spec file" in err and "did you mean 'gone_v2'" in err
    assert not (tmp_path / "o").exists()


def test_shipped_table_definitions_name_shipped_specs():
    from analysis import paths

    shipped = {p.stem for p in paths.SPECS.glob("*.yaml")}
    for definition in TABLES:
        assert set(definition.specs) | set(definition.extra_specs) <= shipped, definition.name


def test_all_estimates_exactly_the_stale_specs(workspace, tmp_path, capsys):
    """--all: same bytes as one-spec runs; a rerun, or a file saved unchanged, re-estimates nothing; editing a base
    spec re-estimates it and its `extends` variants only; a deleted result or a changed panel is re-estimated; a bad
    spec stops the run before anything is written."""
    folder, csv = workspace
    specs, out = tmp_path / "specs", tmp_path / "est"
    specs.mkdir()
    for name in ("main", "main_dyn", "es", "fe", "re"):
        (specs / f"{name}.yaml").write_text((folder / f"{name}.yaml").read_text())
    assert estimate.main(["--all", str(specs), "--out-dir", str(out), "--no-progress"]) == 0
    assert sorted(p.stem for p in out.glob("*.parquet")) == ["es", "fe", "main", "main_dyn", "re"]
    single = tmp_path / "single" / "main_dyn.parquet"
    estimate.main(["--spec", str(specs / "main_dyn.yaml"), "--out", str(single)])
    assert digest(single) == digest(out / "main_dyn.parquet")
    assert digest(single.with_suffix(".json")) == digest(out / "main_dyn.json")

    def rerun():
        return estimate.run_all(specs, out, progress=False, log=lambda *_: None)

    assert rerun() == []
    (specs / "es.yaml").write_text((specs / "es.yaml").read_text())  # saved, not changed
    assert rerun() == []
    (specs / "main.yaml").write_text((specs / "main.yaml").read_text().replace("seed: 3", "seed: 4"))
    before = {p.stem: digest(p) for p in out.glob("*.parquet")}
    assert rerun() == ["main", "main_dyn"]
    after = {p.stem: digest(p) for p in out.glob("*.parquet")}
    assert {k for k in before if before[k] != after[k]} <= {"main", "main_dyn"}
    assert json.loads((out / "main.json").read_text())["seed"] == 4
    (out / "es.parquet").unlink()
    assert rerun() == ["es"]
    frame = pd.read_csv(csv)
    frame.loc[0, "y_cont"] += 1.0
    changed_panel = tmp_path / "panel.csv"
    frame.to_csv(changed_panel, index=False)
    for name in ("main", "es", "fe"):
        path = specs / f"{name}.yaml"
        path.write_text(path.read_text().replace(str(csv), str(changed_panel)))
    assert rerun() == ["es", "fe", "main", "main_dyn", "re"]

    (specs / "zz_bad.yaml").write_text("extends: main\noutcome: y_cont\nclusters: province_code\n")
    (specs / "main.yaml").write_text((specs / "main.yaml").read_text().replace("seed: 4", "seed: 5"))
    before = {p.name: digest(p) for p in out.iterdir()}
    capsys.readouterr()
    assert estimate.main(["--all", str(specs), "--out-dir", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "zz_bad.yaml" in err and "'clusters'" in err
    assert {p.name: digest(p) for p in out.iterdir()} == before


def test_engine_code_sources_exist_and_count():
    """The estimates' fingerprint covers the code the engine's entry modules import (tests/test_fingerprint.py): the
    engine and the CLI are in it, table formatting is not."""
    from analysis import fingerprint, paths

    covered = {paths.relative(f) for f in fingerprint.code_files(estimate.ENGINE_ENTRIES)}
    assert {"analysis/estimate.py", "analysis/models/registry.py", "analysis/models/spec.py"} <= covered
    assert not [f for f in covered if f.startswith(("analysis/models/table", "analysis/tables.py"))], covered


def test_all_names_the_spec_whose_panel_lacks_a_column(workspace, tmp_path, capsys):
    """A data problem found while estimating (a column the panel lacks) names the panel, the column and the spec."""
    folder, csv = workspace
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "ok.yaml").write_text((folder / "fe.yaml").read_text())
    (specs / "zz_missing.yaml").write_text((folder / "fe.yaml").read_text().replace("treatment: x1", "treatment: nope"))
    assert estimate.main(["--all", str(specs), "--out-dir", str(tmp_path / "est"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "zz_missing.yaml" in err and Path(csv).name in err
    assert (tmp_path / "est" / "ok.parquet").exists() and not (tmp_path / "est" / "zz_missing.parquet").exists()
