"""The hostile-input corpus (issue 18): every bad input is rejected with ``error: <file>[, row R][, column C][, key K]:
<what>``, exit code 2 and no traceback, and nothing already written is touched.

Raw-file cases run the readers on copies of the real files (each corrupted in one cell); command-line cases call
the CLIs' ``main`` in-process (the same code ``python -m`` runs) or, where the shell is the attack surface, make.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyreadr
import pytest
import yaml

from analysis import paths
from analysis.clean import CleaningLog
from analysis.clean.nbs import read_integrated_panel, read_nbs_export
from analysis.clean.panel import check_plausibility, load_config
from analysis.clean.yearbook import clean_yearbook_table, read_rda, variable_dictionary
from analysis.cli import EXIT_BAD_INPUT, error_line, guard
from analysis.io import DataError, atomic_path, remove_stale_temps

POPULATION = "nbs-population/year_end_resident_population_2015_2024.csv"
GDP = "nbs-province-panel/nbs_raw_grp_100m_yuan_2006_2024.gb18030.csv"
INTEGRATED = "nbs-province-panel/nbs_province_panel_2005_2024_integrated.csv"
WINDOW = range(2015, 2022)


def _copy(tmp_path: Path, rel: str) -> Path:
    dest = tmp_path / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(paths.RAW / rel, dest)
    return dest


def _edit_line(path: Path, encoding: str, line_no: int, edit) -> None:
    lines = path.read_bytes().decode(encoding).split("\n")
    lines[line_no - 1] = edit(lines[line_no - 1])
    path.write_bytes("\n".join(lines).encode(encoding))


def _set_cell(line: str, j: int, value: str) -> str:
    cells = line.split(",")
    cells[j] = value
    return ",".join(cells)


def _read_population(path: Path):
    return read_nbs_export(path, "utf-8", "population", CleaningLog(), WINDOW)


# ---- raw NBS exports ------------------------------------------------------------------------------------------
# line 5 is 北京市 (the header is line 4: 地区,2024年,…,2015年); cell j = 1 is 2024, j = 8 is 2017
NBS_CASES = {
    "inf": (lambda ln: _set_cell(ln, 8, "inf"), 5, "2017年", "non-finite"),
    "minus_inf": (lambda ln: _set_cell(ln, 3, "-inf"), 5, "2022年", "non-finite"),
    "nan_text": (lambda ln: _set_cell(ln, 2, "nan"), 5, "2023年", "non-finite"),
    "huge_overflow": (lambda ln: _set_cell(ln, 4, "1e999"), 5, "2021年", "non-finite"),
    "negative": (lambda ln: _set_cell(ln, 6, "-2190"), 5, "2019年", "negative value"),
    "non_numeric": (lambda ln: _set_cell(ln, 6, "2,190"), 5, None, "expected 11 cells"),
    "text_cell": (lambda ln: _set_cell(ln, 6, "n/a"), 5, "2019年", "non-numeric value 'n/a'"),
    "unknown_province": (lambda ln: _set_cell(ln, 0, "火星省"), 5, "地区", "unknown province '火星省'"),
    "short_row": (lambda ln: ",".join(ln.split(",")[:-1]), 5, None, "expected 11 cells, found 10"),
}


@pytest.mark.parametrize("case", sorted(NBS_CASES))
def test_nbs_export_bad_cell_names_file_row_column(tmp_path, case):
    edit, row, column, what = NBS_CASES[case]
    path = _copy(tmp_path, POPULATION)
    _edit_line(path, "utf-8", row, edit)
    with pytest.raises(DataError) as err:
        _read_population(path)
    assert err.value.row == row and err.value.column == column and what in str(err.value)
    assert "year_end_resident_population" in str(err.value)


def test_nbs_export_missing_year_column(tmp_path):
    # the 2019 column removed from header and every row: 2019 would become missing for all 31 provinces
    path = _copy(tmp_path, POPULATION)
    lines = path.read_text(encoding="utf-8").split("\n")
    out = [",".join(c for j, c in enumerate(ln.split(",")) if j != 6) if ln.count(",") == 10 else ln for ln in lines]
    path.write_text("\n".join(out), encoding="utf-8")
    with pytest.raises(DataError, match=r"row 4: year column\(s\) 2019年 missing"):
        _read_population(path)


def test_nbs_export_missing_window_year_at_the_edge(tmp_path):
    # an export that ends in 2018 cannot cover the 2015–2021 window
    path = _copy(tmp_path, POPULATION)
    lines = path.read_text(encoding="utf-8").split("\n")
    out = [",".join(ln.split(",")[:1] + ln.split(",")[7:]) if ln.count(",") == 10 else ln for ln in lines]
    path.write_text("\n".join(out), encoding="utf-8")
    with pytest.raises(DataError, match=r"2019年, 2020年, 2021年 missing"):
        _read_population(path)


def test_nbs_export_duplicate_row_reports_its_row(tmp_path):
    path = _copy(tmp_path, POPULATION)
    _edit_line(path, "utf-8", 6, lambda ln: "北京市,2183,2186,2184,2189,2189,2190,2192,2194,2195,2188")
    with pytest.raises(DataError) as err:
        _read_population(path)
    assert err.value.row == 6 and "already on row 5" in str(err.value)


def test_nbs_export_in_the_wrong_encoding(tmp_path):
    path = _copy(tmp_path, GDP)
    with pytest.raises(DataError, match=r"row \d+: does not decode as utf-8"):
        read_nbs_export(path, "utf-8", "gdp", CleaningLog(), WINDOW)


def test_nbs_export_without_header(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("数据库：分省年度数据\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"column '地区': no header line"):
        _read_population(path)


INTEGRATED_CASES = {
    "inf": ("inf", "non-finite"),
    "negative": ("-3", "negative value -3"),
    "text": ("abc", "non-numeric value 'abc'"),
}


@pytest.mark.parametrize("case", sorted(INTEGRATED_CASES))
def test_integrated_panel_bad_cell(tmp_path, case):
    value, what = INTEGRATED_CASES[case]
    path = _copy(tmp_path, INTEGRATED)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    raw.loc[10, "城镇化率_%"] = value
    raw.to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        read_integrated_panel(path, {"城镇化率_%": "urbanisation_pct"}, CleaningLog())
    assert err.value.row == 12 and err.value.column == "城镇化率_%" and what in str(err.value)


def test_integrated_panel_duplicate_row_reports_its_row(tmp_path):
    path = _copy(tmp_path, INTEGRATED)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    raw = pd.concat([raw, raw.iloc[[3]]], ignore_index=True)
    raw.to_csv(path, index=False)
    with pytest.raises(DataError, match="duplicate key") as err:
        read_integrated_panel(path, {"城镇化率_%": "urbanisation_pct"}, CleaningLog())
    assert err.value.row == len(raw) + 1


def test_integrated_panel_missing_column(tmp_path):
    path = _copy(tmp_path, INTEGRATED)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns=["年份"])
    raw.to_csv(path, index=False)
    with pytest.raises(DataError, match="missing column '年份'") as err:
        read_integrated_panel(path, {"城镇化率_%": "urbanisation_pct"}, CleaningLog())
    assert err.value.column == "年份"


# ---- yearbook tables and plausibility rules --------------------------------------------------------------------
def _rd_tables(raw_dir: Path) -> pd.DataFrame:
    """RDActivity (totals) + RDSource (funding sources) as the cleaning stage reads them."""
    cfg = load_config()
    book = variable_dictionary(raw_dir / "yearbook-sci-tech" / "varsList.rda")
    frames = []
    for table in ("RDActivity", "RDSource"):
        codes = {v["code"]: v["name"] for v in cfg["yearbook"][table]}
        path = raw_dir / "yearbook-sci-tech" / f"{table}.rda"
        frames.append(clean_yearbook_table(read_rda(path, table), table, codes, book, path, CleaningLog()))
    return pd.concat(frames, ignore_index=True)


def _rd_source_copy(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    for name in ("varsList.rda", "RDActivity.rda", "RDSource.rda"):
        _copy(tmp_path, f"yearbook-sci-tech/{name}")
    path = tmp_path / "yearbook-sci-tech" / "RDSource.rda"
    return path, pyreadr.read_r(str(path))["RDSource"]


def _shaanxi_2017_foreign(df: pd.DataFrame) -> int:
    hit = df[(df["province"].str.replace(r"\s", "", regex=True).str.startswith("陕西"))
             & (pd.to_numeric(df["year"]) == 2017) & (df["variables"] == "v4_zh_nbzc_gwzj")]
    assert len(hit) == 1
    return int(hit.index[0])


@pytest.mark.parametrize("value, what", [(1e30, "exceeds its total rd_exp_total"), (float("inf"), "non-finite")])
def test_absurd_yearbook_cell_named_by_file_row_column(tmp_path, value, what):
    """1e30 in Shaanxi 2017 R&D funded from abroad (no cross-check covers it) made Shaanxi the most exposed province."""
    path, df = _rd_source_copy(tmp_path)
    i = _shaanxi_2017_foreign(df)
    df.loc[i, "value"] = value
    pyreadr.write_rdata(str(path), df, df_name="RDSource")
    with pytest.raises(DataError) as err:
        check_plausibility(_rd_tables(tmp_path), load_config()["plausibility"])
    assert err.value.file.endswith("RDSource.rda") and err.value.row == i + 1 and err.value.column == "value"
    assert what in str(err.value)


def test_scale_slip_below_the_total_is_caught_by_the_ratio_bound(tmp_path):
    # ×10,000 on a small funding item stays below the total but is 10^4 off the province's other years
    path, df = _rd_source_copy(tmp_path)
    i = _shaanxi_2017_foreign(df)
    long = _rd_tables(tmp_path)
    rules = {"scale_ratio_max": load_config()["plausibility"]["scale_ratio_max"]}
    check_plausibility(long, rules)  # the real data pass
    df.loc[i, "value"] = float(df.loc[i, "value"]) * 10_000
    pyreadr.write_rdata(str(path), df, df_name="RDSource")
    with pytest.raises(DataError, match="times off the median") as err:
        check_plausibility(_rd_tables(tmp_path), rules)
    assert err.value.row == i + 1


def test_percentage_above_100_is_rejected():
    long = pd.DataFrame({"province_code": [110000], "year": [2016], "variable": ["urbanisation_pct"], "value": [186.5],
                         "source_row": [17], "source_column": ["城镇化率_%"], "source_file": [str(paths.RAW / INTEGRATED)]})
    with pytest.raises(DataError, match=r"row 17, column '城镇化率_%': urbanisation_pct is a percentage"):
        check_plausibility(long, {"percent": ["urbanisation_pct"]})


@pytest.mark.parametrize("rules, key", [
    ({"percent": ["no_such_column"]}, "plausibility.percent"),
    ({"components": [{"total": "rd_exp_total", "parts": ["rd_exp_gov"]}]}, "plausibility.components[0].abs_tolerance"),
    ({"scale_ratio_max": 0.5}, "plausibility.scale_ratio_max"),
    ({"ratio": 3}, "plausibility.ratio"),
])
def test_bad_plausibility_config_names_the_key(tmp_path, rules, key):
    cfg = yaml.safe_load(paths.PANEL_CONFIG.read_text(encoding="utf-8"))
    cfg["plausibility"] = rules
    path = tmp_path / "panel.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_config(path)
    assert err.value.key == key and "panel.yaml" in str(err.value)


# ---- the error helper, atomic writes ---------------------------------------------------------------------------
def test_guard_turns_user_errors_into_one_line_and_exit_2(tmp_path, capsys):
    @guard
    def main(kind):
        if kind == "data":
            raise DataError(tmp_path / "x.csv", "bad", row=3, column="c", key="k")
        if kind == "dir":
            return open(tmp_path).read()  # IsADirectoryError
        if kind == "readonly":
            raise PermissionError(13, "Permission denied", str(tmp_path / "out.csv"))
        raise RuntimeError("a bug")

    assert main("data") == EXIT_BAD_INPUT
    assert capsys.readouterr().err.strip().endswith("x.csv, row 3, column 'c', key 'k': bad")
    assert main("dir") == EXIT_BAD_INPUT and "a directory was given where a file belongs" in capsys.readouterr().err
    assert main("readonly") == EXIT_BAD_INPUT and "out.csv: Permission denied" in capsys.readouterr().err
    with pytest.raises(RuntimeError):  # a bug keeps its traceback
        main("bug")


def test_error_line_format():
    line = error_line(DataError("data/raw/a.csv", "what; how to fix", row=2))
    assert line == "error: data/raw/a.csv, row 2: what; how to fix"


def test_killed_atomic_write_leaves_no_temp_after_next_run(tmp_path):
    target = tmp_path / "panel.parquet"
    # a writer killed mid-write (its process is gone) left this; another target's temp file is not touched
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".panel.parquet.{dead.stdout.strip()}.abcd1234.tmp"
    stale.write_text("half")
    old_style = tmp_path / ".panel.parquet.x1y2z3w4.tmp"
    old_style.write_text("half")
    other = tmp_path / f".panel.csv.{dead.stdout.strip()}.abcd1234.tmp"
    other.write_text("half")
    live = tmp_path / f".panel.parquet.{os.getppid()}.abcd1234.tmp"
    live.write_text("being written")
    with atomic_path(target) as tmp:
        tmp.write_text("ok")
    assert target.read_text() == "ok"
    assert not stale.exists() and not old_style.exists() and other.exists() and live.exists()
    assert remove_stale_temps(tmp_path / "panel.csv") == [other]


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


# ---- register: nothing a FILE or ORIGIN holds is executed; bad paths are messages ---------------------------------
PAYLOADS = ['"; touch {flag}; "', "`touch {flag}`", "$(shell touch {flag})", "$(touch {flag}) $5 'q' \"dq\""]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_make_register_runs_no_payload(tmp_path, payload):
    """make -n expands a Makefile's text: a payload in ORIGIN or FILE must neither run nor reach a recipe."""
    flag = tmp_path / "pwned"
    text = payload.format(flag=flag)
    # -o: never remake the included exhibits.mk and code_deps.mk (make remakes makefiles even under -n; without the
    # second -o this test wrote data/processed/code_deps.mk, and spent minutes doing it on a fresh clone)
    res = subprocess.run(["make", "-n", "-o", "data/processed/exhibits.mk", "-o", "data/processed/code_deps.mk",
                          "register", f"FILE={text}",
                          f"ORIGIN={text}", f"LICENCE={text}"], capture_output=True, text=True, cwd=paths.ROOT)
    assert not flag.exists()
    assert str(flag) not in res.stdout  # the values are not in the command text (they travel in the environment)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_register_cli_records_environment_values_verbatim(monkeypatch, tmp_path, payload):
    import analysis.manifest as manifest

    seen = {}
    monkeypatch.setattr(manifest, "register", lambda f, o, lic: seen.update(file=f, origin=o, licence=lic)
                        or {"path": str(f), "sha256": "0" * 64})
    text = payload.format(flag=tmp_path / "pwned")
    monkeypatch.setenv("DUALUSE_REGISTER_FILE", "data/raw/x.csv")
    monkeypatch.setenv("DUALUSE_REGISTER_ORIGIN", text)
    monkeypatch.delenv("DUALUSE_REGISTER_LICENCE", raising=False)
    assert manifest.main(["register"]) == 0
    assert seen == {"file": Path("data/raw/x.csv"), "origin": text, "licence": None}


def _manifest_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "data_sources.yaml"
    shutil.copy(paths.DATA_SOURCES, dest)
    return dest


@pytest.mark.parametrize("make_path, what", [
    (lambda raw, tmp: raw / "nbs-population", "is a directory"),
    (lambda raw, tmp: tmp / "outside.csv", "is outside"),
    (lambda raw, tmp: raw / "nbs-population" / "missing.csv", "no such file"),
])
def test_register_bad_path_is_a_message(raw_copy, tmp_path, make_path, what):
    from analysis.manifest import register

    (tmp_path / "outside.csv").write_text("a\n")
    manifest = _manifest_copy(tmp_path)
    before = manifest.read_bytes()
    with pytest.raises(DataError, match=what):
        register(make_path(raw_copy, tmp_path), "o", "l", manifest=manifest, raw_dir=raw_copy)
    assert manifest.read_bytes() == before


def test_register_keeps_the_replaced_origin(raw_copy, tmp_path):
    from analysis.manifest import load_manifest, register

    manifest = _manifest_copy(tmp_path)
    target = raw_copy / POPULATION
    old = next(e for e in load_manifest(manifest) if e["path"] == POPULATION)
    origin = "re-downloaded \"by hand\" $5 `x` $(shell y)"
    register(target, origin, None, manifest=manifest, raw_dir=raw_copy)
    entry = next(e for e in load_manifest(manifest) if e["path"] == POPULATION)
    assert entry["origin"] == origin and entry["sha256"] == old["sha256"]
    assert entry["replaces"][-1]["origin"] == old["origin"] and entry["replaces"][-1]["sha256"] == old["sha256"]


# ---- configs and spec names that reach Make ---------------------------------------------------------------------
def _exhibits_with_spec(tmp_path: Path, spec_id: str) -> Path:
    raw = yaml.safe_load((paths.CONFIGS / "exhibits.yaml").read_text(encoding="utf-8"))
    name, settings = next((k, v) for k, v in raw["exhibits"].items() if v.get("kind") == "event_study")
    settings["specs"] = [spec_id] + settings["specs"][1:]
    path = tmp_path / "exhibits.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("spec_id", ["$(shell touch {flag})", "a b", "x;y", "../secret", "`id`", "a:b"])
def test_exhibit_spec_id_is_validated_before_any_make_rule(tmp_path, capsys, spec_id):
    from analysis.figures.__main__ import main

    flag = tmp_path / "pwned"
    exhibits = _exhibits_with_spec(tmp_path, spec_id.format(flag=flag))
    rules = tmp_path / "exhibits.mk"
    assert main(["--exhibits", str(exhibits), "--make-rules", str(rules)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "exhibits.yaml" in err and ".specs'" in err and "Traceback" not in err
    assert not rules.exists() and not flag.exists()


def test_make_rules_escape_dollar():
    from analysis.io import make_escape

    assert make_escape("figures/$(shell id)") == "figures/$$(shell id)"


def test_spec_file_name_with_a_space_is_refused(tmp_path, capsys):
    from analysis import estimate

    specs = tmp_path / "specs"
    specs.mkdir()
    shutil.copy(next(paths.SPECS.glob("cont_did_capability_index.yaml")), specs / "my spec.yaml")
    out = tmp_path / "est"
    assert estimate.main(["--all", str(specs), "--out-dir", str(out), "--no-progress"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "my spec.yaml" in err and "no spaces" in err and not out.exists()


# ---- command lines: wrong kinds of path --------------------------------------------------------------------------
def test_estimate_spec_missing_directory_and_readonly_out(tmp_path, capsys):
    from analysis import estimate

    assert estimate.main(["--spec", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o.parquet")]) == 2
    assert "nope.yaml" in capsys.readouterr().err
    assert estimate.main(["--spec", str(tmp_path), "--out", str(tmp_path / "o.parquet")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_clean_cli_with_infinite_population_exit_2_outputs_untouched(raw_copy, tmp_path):
    path = raw_copy / POPULATION
    _edit_line(path, "utf-8", 5, lambda ln: _set_cell(ln, 8, "inf"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "panel.csv").write_text("previous build\n")
    before = _digest(out)
    # the manifest would reject the altered hash before cleaning; the clean stage is run on its own here
    res = subprocess.run([sys.executable, "-m", "analysis.clean", "--raw-dir", str(raw_copy), "--out-dir", str(out)],
                         capture_output=True, text=True, cwd=paths.ROOT)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.startswith("error: ") and "year_end_resident_population_2015_2024.csv, row 5, column '2017年'" \
        in res.stderr
    assert _digest(out) == before


# ---- designs the estimator cannot identify (analysis.models.checks): an error, not an estimate of 1e-18 --------
def _synthetic_panel(n_units: int = 12, years=range(2010, 2017), seed: int = 7) -> pd.DataFrame:
    """Balanced unit x year panel, staggered 0/1 treatment with a true effect of 0.5, unit- and year-level columns."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for unit in range(1, n_units + 1):
        start = 2013 + unit % 3 if unit % 4 else 0  # cohorts 2013-2015; every 4th unit never treated
        for year in years:
            treated = float(start > 0 and year >= start)
            rows.append({"unit": unit, "year": year, "cohort": start, "d": treated,
                         "unit_level": float(unit) ** 0.5, "year_level": (year - 2010) ** 2.0,
                         "y": unit * 0.3 + (year - 2010) * 0.1 + 0.5 * treated + rng.normal(0, 0.1),
                         "const": 3.0})
    return pd.DataFrame(rows)


def _spec_on(tmp_path: Path, panel: pd.DataFrame, **keys) -> Path:
    data = tmp_path / "panel.csv"
    panel.to_csv(data, index=False)
    spec = {"estimator": "feols", "outcome": "y", "treatment": "d", "unit": "unit", "time": "year",
            "fixed_effects": ["unit", "year"], "cluster": "unit", "data": str(data),
            "sample": {"years": [2010, 2016]}, **keys}
    path = tmp_path / "specs" / "synthetic_case.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def _run_estimate(argv, capsys) -> tuple[int, str]:
    from analysis import estimate

    code = estimate.main(argv)
    err = capsys.readouterr().err
    return code, err


UNIDENTIFIED = {
    # case: (spec keys, key named, words in the message)
    "constant_outcome": ({"outcome": "const"}, "outcome", "is constant (3 in all 84 rows"),
    "outcome_absorbed_by_unit_fe": ({"outcome": "unit_level"}, "outcome", "constant within each level of 'unit'"),
    "unit_level_treatment": ({"treatment": "unit_level"}, "treatment", "constant within each level of 'unit'"),
    "year_level_treatment": ({"treatment": "year_level"}, "treatment", "constant within each level of 'year'"),
    "constant_treatment": ({"treatment": "const"}, "treatment", "is constant (3)"),
    "panel_fe_unit_level": ({"estimator": "panel_fe", "treatment": "unit_level"}, "treatment",
                            "no variation left after absorbing the fixed effects ['unit', 'year']"),
    "first_diff_unit_level": ({"estimator": "first_diff", "treatment": "unit_level", "fixed_effects": ["year"]},
                              "treatment", "'unit', so its coefficient is not identified; first differences remove"),
    "cont_did_constant_exposure": ({"estimator": "cont_did", "treatment": "d", "exposure": "const"}, "exposure",
                                   "the same (3) for every unit"),
    "cohort_never_treated": ({"estimator": "att_gt", "treatment": None, "cohort": "zero_cohort"}, "cohort",
                             "no unit of the sample has a cohort"),
}


@pytest.mark.parametrize("case", sorted(UNIDENTIFIED))
def test_unidentified_design_is_an_error_naming_spec_and_key(tmp_path, capsys, case):
    keys, key, what = UNIDENTIFIED[case]
    panel = _synthetic_panel().assign(zero_cohort=0)
    spec = _spec_on(tmp_path, panel, **keys)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.parquet").write_text("previous build")
    before = _digest(out)
    code, err = _run_estimate(["--spec", str(spec), "--out", str(out / "synthetic_case.parquet")], capsys)
    assert code == EXIT_BAD_INPUT and "Traceback" not in err
    assert err.startswith(f"error: {spec}, key '{key}': ") and what in err, err
    assert _digest(out) == before  # nothing written, the earlier file untouched


def test_identified_designs_pass_and_residual_share_is_the_within_share():
    """The checks must not refuse a design that is identified: the synthetic staggered panel (known effect 0.5)
    passes for every estimator family, and the residual share equals the two-way within share computed by hand
    (balanced panel: x - unit mean - year mean + grand mean)."""
    import numpy as np

    from analysis.models.checks import check_identified, residual_share
    from analysis.models.spec import Spec

    panel = _synthetic_panel()
    base = {"outcome": "y", "treatment": "d", "unit": "unit", "time": "year", "fixed_effects": ["unit", "year"],
            "controls": [], "exposure": None, "cohort": None, "spec_files": ["x.yaml"]}
    for estimator in ("feols", "panel_fe", "first_diff", "panel_re", "hausman"):
        check_identified(panel, Spec.from_mapping({**base, "estimator": estimator}))
    check_identified(panel, Spec.from_mapping({**base, "estimator": "cont_did", "exposure": "unit_level"}))
    check_identified(panel, Spec.from_mapping({**base, "estimator": "att_gt", "treatment": None, "cohort": "cohort"}))
    x = panel["d"].to_numpy()
    within = (x - panel.groupby("unit")["d"].transform("mean") - panel.groupby("year")["d"].transform("mean")
              + x.mean()).to_numpy()
    expected = (within @ within) / ((x - x.mean()) @ (x - x.mean()))
    assert residual_share(x, panel, ["unit", "year"]) == pytest.approx(expected, rel=1e-9)
    assert 0.05 < expected < 1  # a real within share, far above ABSORBED_SHARE
    assert np.isnan(residual_share(np.full(len(x), 2.0), panel, ["unit"]))


def test_cohort_check_follows_the_estimators_that_need_a_cohort(monkeypatch):
    """The cohort check runs for the estimators whose spec needs a cohort (analysis.models.spec_vocabulary.NEEDS, the one
    list), not for a list restated in checks.py: an estimator added to NEEDS with a cohort is checked too."""
    import importlib

    from analysis.models import checks, spec, spec_vocabulary

    assert checks._COHORT == tuple(name for name, keys in spec_vocabulary.NEEDS.items() if "cohort" in keys)
    panel = _synthetic_panel().assign(zero_cohort=0)
    design = spec.Spec.from_mapping({"outcome": "y", "treatment": None, "unit": "unit", "time": "year",
                                     "fixed_effects": ["unit", "year"], "controls": [], "exposure": None,
                                     "cohort": "zero_cohort", "spec_files": ["x.yaml"], "estimator": "att_gt"})
    design = design.model_copy(update={"estimator": "new_staggered"})  # not a registered name: no validation
    monkeypatch.setitem(spec_vocabulary.NEEDS, "new_staggered", ("cohort",))
    try:
        with pytest.raises(DataError, match="no unit of the sample has a cohort"):
            importlib.reload(checks).check_identified(panel, design)
    finally:
        monkeypatch.undo()
        importlib.reload(checks)


def test_real_spec_with_outcome_absorbed_by_year_effects_is_refused(tmp_path, capsys, stage_tree):
    """The real main specification with its outcome replaced by a year-level column (post_zte_2016: 0 in 2015, 1
    after) gave an estimate of -8.8e-18 with a standard error of 1.6e-17 before the check; now exit 2. (On the
    analysis panel of conftest's stage_tree: the real data, no pipeline output needed.)"""
    text = f"data: {stage_tree / 'analysis_panel.parquet'}\n"
    text += (paths.SPECS / "cont_did_capability_index.yaml").read_text(encoding="utf-8")
    text = text.replace("outcome: capability_index", "outcome: post_zte_2016").replace("reps: 9999", "reps: 99")
    spec = tmp_path / "cont_did_zte_outcome.yaml"
    spec.write_text(text, encoding="utf-8")
    out = tmp_path / "cont_did_zte_outcome.parquet"
    code, err = _run_estimate(["--spec", str(spec), "--out", str(out)], capsys)
    assert code == EXIT_BAD_INPUT and "key 'outcome'" in err and "constant within each level of 'year'" in err
    assert "Traceback" not in err and not out.exists() and not out.with_suffix(".json").exists()


# ---- resampling counts: a documented cap instead of a 23 GiB allocation ------------------------------------------
@pytest.mark.parametrize("key, block", [
    ("inference.wild_bootstrap.reps", {"wild_bootstrap": {"reps": 100_000_000, "weights": "webb"}}),
    ("inference.ri.reps", {"ri": {"reps": 100_000_001}}),
])
def test_reps_above_the_cap_is_refused_before_anything_runs(tmp_path, capsys, key, block):
    spec = _spec_on(tmp_path, _synthetic_panel(), inference=block)
    out = tmp_path / "est"
    code, err = _run_estimate(["--all", str(spec.parent), "--out-dir", str(out), "--no-progress"], capsys)
    assert code == EXIT_BAD_INPUT and "Traceback" not in err
    assert f"synthetic_case.yaml, key '{key}': must be an integer from 1 to 100,000" in err
    assert not out.exists()


def test_reps_cap_guards_the_allocation_sites():
    import numpy as np

    from analysis.models.inference import MAX_REPS, _draw_weights, _permutations

    rng = np.random.default_rng(0)
    assert _draw_weights("webb", 31, MAX_REPS, rng).shape == (31, MAX_REPS)  # the cap itself is allowed
    with pytest.raises(ValueError, match="from 1 to 100,000"):
        _draw_weights("webb", 31, 100_000_000, rng)  # 23 GiB before the cap
    with pytest.raises(ValueError, match="MAX_REPS"):
        _permutations(31, MAX_REPS + 1, 0)


# ---- two builds in one tree: the second refuses at once (Makefile, flock on data/processed/.lock) -----------------
def _make_tree(tmp_path: Path) -> Path:
    """A throw-away copy of the build: the Makefile, links to the package, configs, raw data and environment, and
    environment inputs older than its stamp (so no goal here can reach pip)."""
    tree = tmp_path / "tree"
    (tree / "data" / "processed").mkdir(parents=True)
    shutil.copy(paths.ROOT / "Makefile", tree / "Makefile")
    for name in ("analysis", "configs"):
        (tree / name).symlink_to(paths.ROOT / name)
    # the environment running the tests (a checkout's .venv, or another one on a fresh clone or worktree), linked
    # entry by entry, with a stamp of its own that is newer than the copied environment inputs
    venv = tree / ".venv"
    venv.mkdir()
    for entry in Path(sys.prefix).iterdir():
        if entry.name != ".installed-stamp":
            (venv / entry.name).symlink_to(entry)
    (venv / ".installed-stamp").touch()
    (tree / "data" / "raw").symlink_to(paths.RAW)
    for name in ("requirements.txt", "pyproject.toml"):
        shutil.copy(paths.ROOT / name, tree / name)
        os.utime(tree / name, (0, 0))
    return tree


def _make(tree: Path, *args: str, inside_build: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DUALUSE_BUILD_LOCK", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    if inside_build:
        env["DUALUSE_BUILD_LOCK"] = "1"
    return subprocess.run(["make", *args], cwd=tree, env=env, capture_output=True, text=True, timeout=120)


def _hold_lock(path: Path):
    import fcntl

    handle = open(path, "a+")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    handle.truncate(0)
    handle.write("4242\n")
    handle.flush()
    return handle


@pytest.mark.skipif(shutil.which("flock") is None or shutil.which("make") is None, reason="needs make and flock")
@pytest.mark.parametrize("goal", ["data/processed/.raw_verified", "all", "register"])
def test_second_build_refuses_while_the_lock_is_held(tmp_path, goal):
    tree = _make_tree(tmp_path)
    lock = _hold_lock(tree / "data" / "processed" / ".lock")
    try:
        before = _digest(tree / "data" / "processed")
        res = _make(tree, goal)
    finally:
        lock.close()
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "error: another build holds data/processed/.lock (pid 4242)" in res.stderr
    assert _digest(tree / "data" / "processed") == before  # nothing written (the lock file keeps the holder's pid)
    assert "analysis." not in res.stdout  # no stage started


@pytest.mark.skipif(shutil.which("flock") is None or shutil.which("make") is None, reason="needs make and flock")
def test_lock_is_taken_released_and_not_waited_for_by_the_build_itself(tmp_path):
    tree = _make_tree(tmp_path)
    lock = tree / "data" / "processed" / ".lock"
    res = _make(tree, "env")  # a locked goal with nothing to do: takes the lock, runs, releases it
    assert res.returncode == 0, res.stderr
    assert lock.read_text().strip().isdigit()  # the holder's pid was recorded
    handle = _hold_lock(lock)  # released: the test can take it
    try:
        # a make started by the build (recursive make, the tests under `make test`) does not wait for its parent
        inside = _make(tree, "env", inside_build=True)
        assert inside.returncode == 0 and "another build" not in inside.stderr
        # a dry run and help write nothing and take no lock
        assert _make(tree, "help").returncode == 0
        assert _make(tree, "-n", "-o", "data/processed/exhibits.mk", "data/processed/.raw_verified").returncode == 0
    finally:
        handle.close()


# ---- data/raw/SHA256SUMS is kept in step with the manifest by register ---------------------------------------------
def test_register_updates_the_received_checksum_list(raw_copy, tmp_path):
    from analysis.manifest import load_manifest, register, verify

    manifest = _manifest_copy(tmp_path)
    sums = raw_copy / "SHA256SUMS"
    before = sums.read_bytes()
    register(raw_copy / POPULATION, "unchanged file", None, manifest=manifest, raw_dir=raw_copy)
    assert sums.read_bytes() == before  # same digest: the list comes back byte-identical
    _edit_line(raw_copy / POPULATION, "utf-8", 5, lambda ln: _set_cell(ln, 8, "2191"))
    register(raw_copy / POPULATION, "re-downloaded", None, manifest=manifest, raw_dir=raw_copy)
    check = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=raw_copy, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr  # the list agrees with the files again
    own = next(e for e in load_manifest(manifest) if e["path"] == "SHA256SUMS")
    assert own["sha256"] == hashlib.sha256(sums.read_bytes()).hexdigest() and own["replaces"]
    assert verify(raw_copy, manifest) == len(load_manifest(manifest))  # and the manifest vouches for both


def test_register_refuses_a_damaged_checksum_list_and_writes_nothing(raw_copy, tmp_path):
    from analysis.manifest import register

    manifest = _manifest_copy(tmp_path)
    sums = raw_copy / "SHA256SUMS"
    sums.write_text(sums.read_text(encoding="utf-8") + "not a checksum\n", encoding="utf-8")
    before = (manifest.read_bytes(), sums.read_bytes())
    with pytest.raises(DataError, match="not a sha256sum line") as err:
        register(raw_copy / POPULATION, "o", None, manifest=manifest, raw_dir=raw_copy)
    assert err.value.row == 45 and err.value.file.endswith("SHA256SUMS")
    assert (manifest.read_bytes(), sums.read_bytes()) == before


# ---- broken YAML in every config and spec: one line naming the file, exit 2 ------------------------------------------
def _yaml_cases():
    """config -> (file to break, argv of its stage given the broken copy and an output folder)"""
    return {
        "panel.yaml": ("panel.yaml", lambda c, o: ("analysis.clean.__main__", ["--config", c, "--out-dir", o])),
        "index.yaml": ("index.yaml", lambda c, o: ("analysis.index.__main__", ["--config", c, "--out-dir", o,
                                                                               "--no-progress"])),
        "shocks.yaml": ("shocks.yaml", lambda c, o: ("analysis.shocks.__main__", ["--config", c, "--out-dir", o])),
        "analysis_panel.yaml": ("analysis_panel.yaml", lambda c, o: ("analysis.analysis_panel",
                                                                     ["--config", c, "--out", f"{o}/ap.parquet"])),
        "exhibits.yaml": ("exhibits.yaml", lambda c, o: ("analysis.figures.__main__",
                                                         ["--exhibits", c, "--make-rules", f"{o}/exhibits.mk"])),
        "tables.yaml": ("tables.yaml", lambda c, o: ("analysis.tables", ["--config", c, "--out-dir", o])),
        "power.yaml": ("power.yaml", lambda c, o: ("analysis.power", ["--config", c, "--out-dir", o,
                                                                      "--figures-dir", o])),
        "multiverse.yaml": ("multiverse.yaml", lambda c, o: ("analysis.multiverse.__main__",
                                                             ["--config", c, "--out-dir", o, "--figure-dir", o,
                                                              "--no-progress"])),
        "spec": ("specs/cont_did_capability_index.yaml",
                 lambda c, o: ("analysis.estimate", ["--spec", c, "--out", f"{o}/x.parquet"])),
    }


YAML_BREAKS = {"unclosed_bracket": "broken: [1, 2\n", "bad_indent": "a:\n  b: 1\n c: 2\n"}


@pytest.mark.parametrize("breakage", sorted(YAML_BREAKS))
@pytest.mark.parametrize("config", sorted(_yaml_cases()))
def test_broken_yaml_names_the_file_exit_2(tmp_path, capsys, config, breakage):
    import importlib

    source, command = _yaml_cases()[config]
    broken = tmp_path / Path(source).name
    broken.write_text((paths.CONFIGS / source).read_text(encoding="utf-8") + YAML_BREAKS[breakage], encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "previous.txt").write_text("an earlier build\n")
    before = _digest(out)
    module, argv = command(str(broken), str(out))
    assert importlib.import_module(module).main(argv) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith(f"error: {broken}: not valid YAML at line ") and err.count("\n") == 1, err  # one line
    assert "Traceback" not in err
    assert _digest(out) == before


def test_broken_yaml_in_a_spec_folder_stops_estimate_all_before_writing(tmp_path, capsys):
    specs = tmp_path / "specs"
    specs.mkdir()
    shutil.copy(paths.SPECS / "panel_fe_capability_index.yaml", specs / "panel_fe_capability_index.yaml")
    (specs / "z_broken.yaml").write_text("estimator: feols\noutcome: [capability_index\n", encoding="utf-8")
    out = tmp_path / "est"
    code, err = _run_estimate(["--all", str(specs), "--out-dir", str(out), "--no-progress"], capsys)
    assert code == EXIT_BAD_INPUT and "z_broken.yaml" in err and "Traceback" not in err and not out.exists()


# ---- truncated or corrupt Parquet inputs: the file named, exit 2, nothing written --------------------------------------
def _damaged(source: Path, dest: Path, how: str) -> Path:
    data = source.read_bytes()
    if how == "truncated":
        data = data[: len(data) // 3]
    elif how == "empty":
        data = b""
    else:  # a damaged page in the middle: the footer still reads, decompression fails
        data = data[:2000] + bytes(300) + data[2300:]
    dest.write_bytes(data)
    return dest


def _spec_reading(tmp_path: Path, panel: Path) -> str:
    text = (paths.SPECS / "panel_fe_capability_index.yaml").read_text(encoding="utf-8")
    spec = tmp_path / "panel_fe_damaged.yaml"
    spec.write_text(f"data: {panel}\n" + text, encoding="utf-8")
    return str(spec)


def _stage_inputs(folder) -> list[str]:
    """The analysis-panel stage's inputs in ``folder`` (copied there from conftest's stage_tree by the test), so
    only the damaged file differs from a good build and nothing is read from data/processed."""
    return ["--panel", f"{folder}/panel.parquet", "--indices", f"{folder}/indices.parquet", "--shocks",
            f"{folder}/shocks.parquet", "--panel-codebook", f"{folder}/codebook.csv", "--shocks-codebook",
            f"{folder}/shocks_codebook.csv"]


PARQUET_CASES = {
    # case: (damaged file, how, module, argv(damaged file, temp dir, out dir))
    "index_panel_truncated": ("panel.parquet", "truncated", "analysis.index.__main__",
                              lambda f, t, o: ["--panel", f, "--out-dir", o, "--no-progress"]),
    "shocks_panel_empty": ("panel.parquet", "empty", "analysis.shocks.__main__",
                           lambda f, t, o: ["--panel", f, "--out-dir", o]),
    "analysis_panel_indices_truncated": ("indices.parquet", "truncated", "analysis.analysis_panel",
                                         lambda f, t, o: [*_stage_inputs(t), "--indices", f,
                                                          "--out", f"{o}/ap.parquet"]),
    "analysis_panel_shocks_corrupt_page": ("shocks.parquet", "corrupt", "analysis.analysis_panel",
                                           lambda f, t, o: [*_stage_inputs(t), "--shocks", f,
                                                            "--out", f"{o}/ap.parquet"]),
    "estimate_panel_truncated": ("analysis_panel.parquet", "truncated", "analysis.estimate",
                                 lambda f, t, o: ["--spec", _spec_reading(t, Path(f)), "--out", f"{o}/x.parquet"]),
    "estimate_panel_corrupt_page": ("analysis_panel.parquet", "corrupt", "analysis.estimate",
                                    lambda f, t, o: ["--spec", _spec_reading(t, Path(f)), "--out", f"{o}/x.parquet"]),
    "power_panel_corrupt_page": ("analysis_panel.parquet", "corrupt", "analysis.power",
                                 lambda f, t, o: ["--panel", f, "--out-dir", o, "--figures-dir", o]),
}


@pytest.mark.parametrize("case", sorted(PARQUET_CASES))
def test_damaged_parquet_input_names_the_file_exit_2(tmp_path, capsys, case, stage_tree):
    import importlib

    name, how, module, argv = PARQUET_CASES[case]
    for good in ("panel.parquet", "indices.parquet", "shocks.parquet", "codebook.csv", "shocks_codebook.csv"):
        shutil.copy(stage_tree / good, tmp_path / good)
    damaged = _damaged(stage_tree / name, tmp_path / name, how)   # a stage output of conftest's stage_tree
    out = tmp_path / "out"
    out.mkdir()
    (out / "previous.txt").write_text("an earlier build\n")
    before = _digest(out)
    assert importlib.import_module(module).main(argv(str(damaged), tmp_path, str(out))) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith(f"error: {damaged}: not a readable Parquet file (") and "Traceback" not in err, err
    assert _digest(out) == before


@pytest.mark.build("data/processed/estimates/.up-to-date")   # copies every real estimate file
@pytest.mark.parametrize("module, argv", [
    ("analysis.tables", lambda est, o: ["--estimates-dir", est, "--out-dir", o]),
    ("analysis.results", lambda est, o: ["write", "--estimates-dir", est, "--out", f"{o}/RESULTS.md"]),
])
def test_truncated_estimate_file_names_the_file_exit_2(tmp_path, capsys, module, argv):
    import importlib

    estimates = tmp_path / "estimates"
    shutil.copytree(paths.ESTIMATES, estimates)
    damaged = _damaged(paths.ESTIMATES / "cont_did_capability_index.parquet",
                       estimates / "cont_did_capability_index.parquet", "truncated")
    out = tmp_path / "out"
    out.mkdir()
    (out / "previous.txt").write_text("an earlier build\n")
    before = _digest(out)
    assert importlib.import_module(module).main(argv(str(estimates), str(out))) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith(f"error: {damaged}: not a readable Parquet file") and "Traceback" not in err, err
    assert _digest(out) == before


def test_a_parquet_error_that_is_not_a_read_keeps_its_traceback():
    from analysis.cli import is_user_error

    assert not is_user_error(OSError("ZSTD decompression failed"))  # no Parquet reader in its traceback: a bug
    assert not is_user_error(ValueError("Could not convert"))
