"""Table notes and labels: tables that use the (incomplete) Entity List say so; every name in a table is labelled
(configs/tables.yaml ``labels:``); notes describe only what the table shows and explain different N."""

import json
import re

import pandas as pd
import pytest
import yaml

from analysis import paths
from analysis.io import DataError
from analysis.models.table_config import TABLES, TableDef
from analysis.models.table_labels import LABELS, load_labels, parse_labels
from analysis.models.table_notes import ENTITY_LIST_NOTE, table_notes, uses_entity_list
from analysis.models.tables import build_long, render
from analysis.tables import main as tables_main


def test_entity_list_caveat_detection():
    assert uses_entity_list({"outcome": "capability_index", "cohort": "first_listing_year"})
    assert uses_entity_list({"outcome": "capability_index", "treatment": "entity_list_cumulative_per_million"})
    assert uses_entity_list({"outcome": "y", "controls": ["entity_list_new"]})
    assert not uses_entity_list({"outcome": "capability_index", "treatment": "post_huawei_2019",
                                 "exposure": "exposure_foreign_tech_z", "controls": []})
    assert "lower bounds" in ENTITY_LIST_NOTE and "half" in ENTITY_LIST_NOTE


def test_first_listing_years_are_called_upper_bounds():
    """An incomplete list makes an observed first-listing year too late: an upper bound, never a lower bound."""
    assert "upper bound" in ENTITY_LIST_NOTE
    assert "first-listing years are lower bounds" not in ENTITY_LIST_NOTE
    # Every cohort definition counts as an Entity List variable (the technology-only one included).
    assert uses_entity_list({"outcome": "capability_index", "cohort": "first_listing_year_tech"})
    assert uses_entity_list({"outcome": "y", "cohort": "first_listing_year_earliest_plausible"})


def test_staggered_table_says_always_treated_are_not_identified(tmp_path, stage_tree):
    tab03 = next(t for t in TABLES if t.name == "tab03_staggered")
    for spec_id in tab03.specs:
        pd.DataFrame({"term": ["ATT"], "estimate": [0.0]}).to_parquet(tmp_path / f"{spec_id}.parquet")
        (tmp_path / f"{spec_id}.json").write_text(json.dumps({"spec": {"cohort": "first_listing_year"}}))
    notes = table_notes(tab03, tmp_path)
    assert "Always-treated" in notes and "not identified" in notes and ENTITY_LIST_NOTE in notes
    # The provinces named are those the shocks stage (run on the real raw files, conftest ``stage_tree``) makes
    # cohort 2015.
    one = pd.read_parquet(stage_tree / "shocks.parquet").drop_duplicates("province_code")
    names = {110000: "Beijing", 120000: "Tianjin", 430000: "Hunan", 440000: "Guangdong"}
    always = set(one.loc[one["first_listing_year"] == 2015, "province_code"])
    assert {names.get(c, c) for c in always} == {"Guangdong", "Tianjin", "Hunan"}
    assert all(name in notes for name in ("Guangdong", "Tianjin", "Hunan"))
    others = [t for t in TABLES if t.name != "tab03_staggered"]
    assert all("Always-treated" not in t.note for t in others)


# ---- issue 16 §3: labels everywhere, notes that match the table ----------------------------------------------------

#: a raw interaction of column names (``a_b:c``) or a standardised column (``x_z``), in Markdown or LaTeX escaping
RAW_NAME = re.compile(r"[A-Za-z0-9](?:_|\\_)[A-Za-z0-9_\\]*:[A-Za-z]|(?:_|\\_)z\b")


def _table_cells(text: str, latex: bool) -> list[str]:
    """The header and body cells of a rendered table (not its caption or notes)."""
    if latex:
        start, end = text.index(r"\begin{tabular}"), text.index(r"\end{tabular}")
        rows = [r for r in text[start:end].splitlines()[1:] if "&" in r]
        return [c.strip().removesuffix(r"\\").strip() for r in rows for c in r.split("&")]
    return [c.strip() for line in text.splitlines() if line.startswith("|") for c in line.strip("|").split("|")]


def test_raw_name_pattern_catches_what_the_old_tables_showed():
    """The check itself can fail: it flags the raw cells the tables used to print, in both formats."""
    assert RAW_NAME.search("exposure_foreign_tech_z:post_huawei_2019")
    assert RAW_NAME.search(r"exposure\_foreign\_tech\_z:post\_huawei\_2019")
    assert RAW_NAME.search("exposure_foreign_tech_z")
    assert not RAW_NAME.search("Foreign-tech exposure (SD) × post Huawei 2019")
    assert not RAW_NAME.search("36.010 [p = 9.45e-07] not valid: V_FE-V_RE not positive definite")


def _write(directory, spec_id, table: pd.DataFrame, spec: dict):
    table.assign(spec_id=spec_id).to_parquet(directory / f"{spec_id}.parquet")
    (directory / f"{spec_id}.json").write_text(json.dumps({"spec": {"id": spec_id, **spec},
                                                           "terms": table["term"].tolist()}))


def _row(term, estimate=0.01, se=0.02, p=0.6, n=217, **extra):
    return {"term": term, "estimate": estimate, "std_error": se, "p_value": p, "ci_low": estimate - 2 * se,
            "ci_high": estimate + 2 * se, "n_obs": n, "n_clusters": 31, "method": "simulated", **extra}


HEADLINE = "exposure_foreign_tech_z:post_huawei_2019"


@pytest.mark.build("data/processed/estimates/.up-to-date")
def test_every_real_table_is_labelled_in_both_formats(tmp_path):
    """Every regression table built from the real estimate files: no raw column name in any cell (.md and .tex)."""
    assert tables_main(["--out-dir", str(tmp_path)]) == 0
    for t in TABLES:
        for suffix in (".md", ".tex"):
            cells = _table_cells((tmp_path / f"{t.name}{suffix}").read_text(encoding="utf-8"), suffix == ".tex")
            raw = [c for c in cells if RAW_NAME.search(c)]
            assert not raw, (t.name, suffix, raw)
    tab01 = (tmp_path / "tab01_main_cont_did.md").read_text(encoding="utf-8")
    assert "Foreign-tech exposure (SD) × post Huawei 2019" in tab01
    assert "[p ri]" not in tab01 and "[p wild]" in tab01   # the old note described [p ri], which no cell shows


def test_unlabelled_term_stops_with_the_term_and_the_key(tmp_path, capsys):
    definition = TableDef("tab98_test", "test", ("spec_a",), "all", "outcome")
    _write(tmp_path, "spec_a", pd.DataFrame([_row("novel_regressor_z:post")]),
           {"outcome": "capability_index", "estimator": "cont_did"})
    with pytest.raises(DataError) as err:
        render(definition, tmp_path)
    assert err.value.key == "labels.terms" and "novel_regressor_z:post" in str(err.value)
    assert "tab98_test" in str(err.value)
    # through the CLI: exit 2, one line naming the file, key and term, nothing written
    config = tmp_path / "tables.yaml"
    raw = yaml.safe_load(paths.CONFIGS.joinpath("tables.yaml").read_text(encoding="utf-8"))
    raw["tables"] = {"tab98_test": {"caption": "test", "rows": "all", "header": "outcome", "columns": ["spec_a"]}}
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "spec_a.yaml").write_text("estimator: cont_did\n")
    out = tmp_path / "out"
    code = tables_main(["--config", str(config), "--estimates-dir", str(tmp_path), "--specs-dir", str(specs),
                        "--out-dir", str(out)])
    message = capsys.readouterr().err
    assert code == 2 and "labels.terms" in message and "novel_regressor_z:post" in message
    assert "Traceback" not in message and not (out / "tab98_test.md").exists()
    # an unknown outcome in a header is refused the same way, under its own key
    _write(tmp_path, "spec_a", pd.DataFrame([_row(HEADLINE)]), {"outcome": "new_outcome", "estimator": "cont_did"})
    with pytest.raises(DataError, match="new_outcome") as err:
        render(definition, tmp_path)
    assert err.value.key == "labels.outcomes"


def test_label_map_validation_names_the_key(tmp_path):
    raw = yaml.safe_load(paths.CONFIGS.joinpath("tables.yaml").read_text(encoding="utf-8"))
    assert parse_labels(raw).term(HEADLINE) == LABELS.term(HEADLINE)
    assert LABELS.term("ATT e=-2") == LABELS.term("e=-2") == "Event time -2"
    assert LABELS.term(f"{HEADLINE}:theater_command=Central").endswith("× Central theater")
    for edit, key in ((lambda r: r["labels"].pop("event_time"), "labels.event_time"),
                      (lambda r: r["labels"]["terms"].update({"x": ""}), "labels.terms.x"),
                      (lambda r: r["labels"].update({"term": {}}), "labels.term"),
                      (lambda r: r.pop("labels"), "labels")):
        broken = yaml.safe_load(yaml.safe_dump(raw, allow_unicode=True))
        edit(broken)
        with pytest.raises(DataError) as err:
            parse_labels(broken, tmp_path / "tables.yaml")
        assert err.value.key == key
    assert load_labels().terms == LABELS.terms


@pytest.mark.parametrize("edit, key", [
    (lambda r: r["tables"]["tab01_main_cont_did"].update(caption="  "), "tables.tab01_main_cont_did.caption"),
    (lambda r: r["tables"]["tab01_main_cont_did"].update(note=None), "tables.tab01_main_cont_did.note"),
    (lambda r: r["tables"]["tab01_main_cont_did"].update(terms=None), "tables.tab01_main_cont_did.terms"),
    (lambda r: r["tables"]["tab01_main_cont_did"].update(terms=[""]), "tables.tab01_main_cont_did.terms[0]"),
    (lambda r: r["tables"]["tab07_robustness"]["columns"][0].update(label=" "),
     "tables.tab07_robustness.columns[0].label"),
    (lambda r: r.pop("labels"), "labels"),
    (lambda r: r["labels"].pop("event_time"), "labels.event_time"),
    (lambda r: r["labels"]["terms"].update({"x": " "}), "labels.terms.x"),
    (lambda r: r["labels"].update(levels=None), "labels.levels"),
])
def test_tables_file_model_alone_states_each_rule(edit, key):
    """The rules table_config/table_labels once restated by hand (non-blank captions, notes and labels, lists of
    names, a required label map and event-time label) are the file's model's: validating configs/tables.yaml by the
    model alone refuses the value and names the dotted key, as the readers then do."""
    from analysis import schema
    from analysis.config_models_exhibits import tables_model
    from analysis.models import table_config
    from analysis.models.table_labels import LABEL_KINDS

    model = tables_model(table_config.ROW_KINDS, table_config.HEADERS, LABEL_KINDS)
    raw = yaml.safe_load(paths.CONFIGS.joinpath("tables.yaml").read_text(encoding="utf-8"))
    schema.validate(model, raw, "configs/tables.yaml")  # the unchanged file passes
    edit(raw)
    with pytest.raises(DataError) as by_model:
        schema.validate(model, raw, "configs/tables.yaml")
    assert by_model.value.key == key
    reader = parse_labels if key.startswith("labels") else table_config.parse_tables
    with pytest.raises(DataError) as by_reader:
        reader(raw, "configs/tables.yaml")
    assert key in (by_reader.value.key, by_reader.value.column)


def test_notes_describe_only_what_the_cells_show(tmp_path):
    """No [p ri] / [p wild] / star levels / † in the note unless a cell shows them (the old note always listed
    them all)."""
    definition = TableDef("tab98_test", "test", ("spec_a", "spec_b"), "all", "outcome")
    spec = {"outcome": "capability_index", "estimator": "cont_did"}
    _write(tmp_path, "spec_a", pd.DataFrame([_row(HEADLINE, p=0.6)]), spec)
    _write(tmp_path, "spec_b", pd.DataFrame([_row(HEADLINE, p=0.03)]), spec)
    _, markdown = render(definition, tmp_path)
    notes = markdown.strip().splitlines()[-1]
    assert "0.0100**" in markdown and "** p<0.05" in notes
    assert "*** p<0.01" not in notes and "* p<0.10" not in notes
    assert "[p ri]" not in notes and "[p wild]" not in notes and "†" not in notes
    assert "Standard errors in parentheses" in notes
    # with a wild bootstrap p-value shown, the note says what it is (weights and replications from the sidecar)
    wild = {**spec, "inference": {"wild_bootstrap": {"reps": 999, "weights": "webb"}}}
    _write(tmp_path, "spec_a", pd.DataFrame([_row(HEADLINE, p=0.6, p_value_wild=0.7)]), wild)
    _, markdown = render(definition, tmp_path)
    assert "[0.7000]" in markdown and "[p wild]: wild cluster bootstrap" in markdown and "999 replications" in markdown


def test_decomposition_table_note_does_not_describe_standard_errors(tmp_path):
    """A table without standard errors (the Bacon decomposition) neither shows empty SE columns nor describes SEs."""
    definition = TableDef("tab98_test", "test", ("spec_a",), "long", "estimator")
    rows = [{"term": t, "estimate": e, "std_error": float("nan"), "p_value": float("nan"), "n_obs": 210,
             "weight": w, "n_treated_clusters": 22, "method": "bacon"}
            for t, e, w in (("TWFE", -0.003, 1.0), ("bacon treated vs never treated", -0.007, 0.6),
                            ("bacon earlier vs later treated", 0.004, 0.4))]
    _write(tmp_path, "spec_a", pd.DataFrame(rows), {"outcome": "capability_index", "estimator": "bacon",
                                                    "cohort": "first_listing_year"})
    header, body = build_long(definition, tmp_path)
    assert header == ["", "Estimate", "Weight"]          # no empty std. error / p-value columns
    assert [row[2] for row in body] == ["1.0000", "0.6000", "0.4000"]
    notes = table_notes(definition, tmp_path, header, body)
    assert "tandard error" not in notes and "p<0" not in notes
    assert "treated clusters: 22" in notes               # a value that is the same on every row is said once


def test_different_n_across_columns_is_explained_from_the_files(tmp_path):
    """Column N differ: each difference is traced to its cause (missing outcome years, a dropped year, always-treated
    provinces), and observations the recorded causes do not account for are counted, not hidden."""
    years = range(2015, 2022)
    codes = [110000, 120000, 540000]
    panel = pd.DataFrame([{"province_code": c, "year": y, "capability_index": 0.5, "u_military": 0.5}
                          for c in codes for y in years])
    panel.loc[(panel["province_code"] == 540000) & (panel["year"] <= 2016), "capability_index"] = float("nan")
    panel_file = tmp_path / "panel.parquet"
    panel.to_parquet(panel_file)
    base = {"estimator": "cont_did", "data_file": str(panel_file), "unit": "province_code", "time": "year",
            "sample": {"years": [2015, 2021], "drop_years": [], "drop_units": [], "keep_units": []}}
    _write(tmp_path, "a", pd.DataFrame([_row(HEADLINE, n=21)]), {**base, "outcome": "u_military"})
    _write(tmp_path, "b", pd.DataFrame([_row(HEADLINE, n=19)]), {**base, "outcome": "capability_index"})
    _write(tmp_path, "c", pd.DataFrame([_row(HEADLINE, n=16)]),
           {**base, "outcome": "capability_index", "sample": {**base["sample"], "drop_years": [2020]}})
    _write(tmp_path, "d", pd.DataFrame([_row(HEADLINE, n=12, always_treated_dropped="120000")]),
           {**base, "outcome": "capability_index"})
    _write(tmp_path, "e", pd.DataFrame([_row(HEADLINE, n=18)]), {**base, "outcome": "capability_index"})
    definition = TableDef("tab98_test", "test", ("a", "b", "c", "d", "e"), "all", "outcome")
    _, markdown = render(definition, tmp_path)
    notes = markdown.strip().splitlines()[-1]
    assert "(1) 21;" in notes
    assert "(2) 19: outcome missing for Tibet 2015–2016" in notes
    assert "(3) 16: year 2020 dropped; outcome missing for Tibet 2015–2016" in notes
    assert "(4) 12: always-treated Tianjin dropped; outcome missing for Tibet 2015–2016" in notes
    assert "(5) 18: outcome missing for Tibet 2015–2016; 1 observations fewer than these reasons imply" in notes
    # same N everywhere: nothing to explain
    for spec_id in ("a", "b"):
        _write(tmp_path, spec_id, pd.DataFrame([_row(HEADLINE, n=21)]), {**base, "outcome": "u_military"})
    same = TableDef("tab98_test", "test", ("a", "b"), "all", "outcome")
    assert "Observations (N) differ" not in render(same, tmp_path)[1]
