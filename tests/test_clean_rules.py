"""Each cleaning rule on small frames, and each kind of bad input on (copies of) the real files."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pyreadr
import pytest

from analysis import paths
from analysis.clean import CleaningLog
from analysis.clean.nbs import read_integrated_panel, read_nbs_export
from analysis.clean.panel import build, load_config
from analysis.clean.yearbook import clean_yearbook_table, resolve_provinces
from analysis.io import DataError, atomic_path
from analysis.manifest import register, verify

DICT = pd.DataFrame({"units": {"v_amount": "万元", "v_fte": "人年"}})
FAKE = paths.YEARBOOK / "Fake.rda"


def long(rows):
    return pd.DataFrame(rows, columns=["province", "year", "value", "units", "variables"])


def test_spaces_typos_and_aggregates():
    log = CleaningLog()
    codes = resolve_provinces(pd.Series(["上   海", "江两", "山两", "全国", "尔部地区", "陕西"]), FAKE, "Fake", log)
    assert codes.tolist()[:3] == [310000, 360000, 140000]
    assert codes.isna().tolist() == [False, False, False, True, True, False]
    assert codes.iloc[5] == 610000
    assert {r["rule"] for r in log.records} == {"strip_spaces_in_province_name", "fix_ocr_province_typo",
                                                "drop_aggregate_row"}


def test_unknown_province_names_file_row_column():
    with pytest.raises(DataError, match=r"Fake.rda, row 2, column 'province': unknown province 'Atlantis'"):
        resolve_provinces(pd.Series(["北京", "Atlantis"]), FAKE, "Fake", CleaningLog())


def test_years_as_text_or_float_and_bad_year():
    df = long([["北京", "2015", 1.0, "万元", "v_amount"], ["天津", 2016.0, 2.0, "万元", "v_amount"]])
    out = clean_yearbook_table(df, "Fake", {"v_amount": "amount"}, DICT, FAKE, CleaningLog())
    assert out.year.tolist() == [2015, 2016]
    bad = long([["北京", "2015", 1.0, "万元", "v_amount"], ["天津", "2015.5", 2.0, "万元", "v_amount"]])
    with pytest.raises(DataError, match=r"row 2, column 'year'"):
        clean_yearbook_table(bad, "Fake", {"v_amount": "amount"}, DICT, FAKE, CleaningLog())


def test_non_numeric_cell():
    df = long([["北京", "2015", "12", "万元", "v_amount"], ["天津", "2015", "n/a", "万元", "v_amount"]])
    with pytest.raises(DataError, match=r"row 2, column 'value': non-numeric value 'n/a'"):
        clean_yearbook_table(df, "Fake", {"v_amount": "amount"}, DICT, FAKE, CleaningLog())


def test_duplicate_key_after_normalisation():
    df = long([["北京", "2015", 1.0, "万元", "v_amount"], ["北   京", "2015", 1.0, "万元", "v_amount"]])
    with pytest.raises(DataError, match="duplicate key"):
        clean_yearbook_table(df, "Fake", {"v_amount": "amount"}, DICT, FAKE, CleaningLog())


def test_missing_column_and_missing_variable():
    df = long([["北京", "2015", 1.0, "万元", "v_amount"]]).drop(columns="units")
    with pytest.raises(DataError, match="column 'units': missing column"):
        clean_yearbook_table(df, "Fake", {"v_amount": "amount"}, DICT, FAKE, CleaningLog())
    df = long([["北京", "2015", 1.0, "万元", "v_amount"]])
    with pytest.raises(DataError, match=r"expected variable\(s\) \['v_fte'\]"):
        clean_yearbook_table(df, "Fake", {"v_amount": "amount", "v_fte": "fte"}, DICT, FAKE, CleaningLog())


def test_negative_quantity_is_rejected():
    df = long([["北京", "2015", -1.0, "万元", "v_amount"]])
    with pytest.raises(DataError, match="row 1, column 'value': negative value"):
        clean_yearbook_table(df, "Fake", {"v_amount": "amount"}, DICT, FAKE, CleaningLog())


def test_unit_label_corrected_when_scale_matches_and_rejected_when_not():
    rows = [[p, y, v, "人年", "v_fte"] for p, base in [("北京", 100.0), ("天津", 50.0)]
            for y, v in [("2018", base), ("2019", base * 1.1)]]
    ok = long(rows + [["北京", "2020", 120.0, "万元", "v_fte"], ["天津", "2020", 55.0, "万元", "v_fte"]])
    log = CleaningLog()
    out = clean_yearbook_table(ok, "Fake", {"v_fte": "fte"}, DICT, FAKE, log)
    assert out.loc[out.year == 2020, "value"].tolist() == [120.0, 55.0]          # values unchanged
    assert [r["rule"] for r in log.records] == ["correct_unit_label"]
    jump = long(rows + [["北京", "2020", 1.2e6, "万元", "v_fte"], ["天津", "2020", 5.5e5, "万元", "v_fte"]])
    with pytest.raises(DataError, match="column 'units'.*scale differs"):
        clean_yearbook_table(jump, "Fake", {"v_fte": "fte"}, DICT, FAKE, CleaningLog())


NBS_TEXT = ("数据库：分省年度数据\n指标：测试(万人)\n时间：最近3年\n地区,2021年,2020年,2019年\n"
            "北京市,1,2,3\n内蒙古自治区,4,,6\n注：测试脚注\n数据来源：国家统计局\n")


def test_nbs_export_header_footer_full_names(tmp_path):
    f = tmp_path / "x.csv"
    f.write_bytes(NBS_TEXT.encode("gb18030"))
    out = read_nbs_export(f, "gb18030", "x", CleaningLog())
    assert len(out) == 6 and np.isnan(out[(out.province_code == 150000) & (out.year == 2020)].value.iloc[0])
    assert out[(out.province_code == 110000) & (out.year == 2019)].value.iloc[0] == 3


def test_nbs_wrong_encoding(tmp_path):
    f = tmp_path / "x.csv"
    f.write_bytes(NBS_TEXT.encode("gb18030"))
    with pytest.raises(DataError, match=r"x.csv, row 1: does not decode as utf-8"):
        read_nbs_export(f, "utf-8", "x", CleaningLog())


def test_nbs_unknown_province_and_non_numeric(tmp_path):
    f = tmp_path / "x.csv"
    f.write_bytes(NBS_TEXT.replace("北京市", "北平市").encode("gb18030"))
    with pytest.raises(DataError, match=r"row 5, column '地区': unknown province '北平市'"):
        read_nbs_export(f, "gb18030", "x", CleaningLog())
    f.write_bytes(NBS_TEXT.replace("4,,6", "4,x,6").encode("gb18030"))
    with pytest.raises(DataError, match=r"row 6, column '2020年': non-numeric value 'x'"):
        read_nbs_export(f, "gb18030", "x", CleaningLog())


def test_integrated_panel_missing_column(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("地区,年份,A\n北京,2015,1\n", encoding="utf-8")
    with pytest.raises(DataError, match="column 'B': missing column"):
        read_integrated_panel(f, {"B": "b"}, CleaningLog())


def test_corrupted_rda_in_full_build_names_the_file(raw_copy):
    (raw_copy / "yearbook-sci-tech" / "RDSource.rda").write_bytes(b"not an R file")
    with pytest.raises(DataError, match="RDSource.rda"):
        build(load_config(), raw_copy)


def test_unknown_province_in_real_table_names_row(raw_copy):
    f = raw_copy / "yearbook-sci-tech" / "MarketPush.rda"
    df = pyreadr.read_r(str(f))["MarketPush"]
    df.loc[5, "province"] = "火星"
    pyreadr.write_rdata(str(f), df, df_name="MarketPush")
    with pytest.raises(DataError, match=r"MarketPush.rda, row 6, column 'province': unknown province '火星'"):
        build(load_config(), raw_copy)


def test_cli_failure_writes_nothing(raw_copy, tmp_path):
    (raw_copy / "yearbook-sci-tech" / "RDSource.rda").write_bytes(b"garbage")
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "analysis.clean", "--raw-dir", str(raw_copy), "--out-dir", str(out)],
                         capture_output=True, text=True, cwd=paths.ROOT)
    assert res.returncode == 2 and "RDSource.rda" in res.stderr and "Traceback" not in res.stderr
    assert not out.exists() or not any(out.iterdir())


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "t.csv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_manifest_detects_altered_missing_unlisted(raw_copy):
    assert verify(raw_copy) == 45
    (raw_copy / "reference" / "seven_sons_of_national_defence.csv").write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match="seven_sons_of_national_defence.csv: SHA-256"):
        verify(raw_copy)
    (raw_copy / "reference" / "seven_sons_of_national_defence.csv").unlink()
    with pytest.raises(DataError, match="seven_sons_of_national_defence.csv: listed .* but missing"):
        verify(raw_copy)
    (raw_copy / "extra.csv").write_text("a\n")
    with pytest.raises(DataError, match="extra.csv: file is not listed"):
        verify(raw_copy)


def test_register_replacement_then_schema_decides(raw_copy, tmp_path):
    manifest = tmp_path / "data_sources.yaml"
    manifest.write_text(paths.DATA_SOURCES.read_text(encoding="utf-8"), encoding="utf-8")
    f = raw_copy / "yearbook-sci-tech" / "MarketPush.rda"
    df = pyreadr.read_r(str(f))["MarketPush"]
    df.loc[df.index[-1], "value"] = df.loc[df.index[-1], "value"] + 1   # an 'updated' table
    pyreadr.write_rdata(str(f), df, df_name="MarketPush")
    with pytest.raises(DataError, match="SHA-256"):
        verify(raw_copy, manifest)
    entry = register(f, "updated yearbook (test)", None, manifest=manifest, raw_dir=raw_copy)
    assert entry["replaces"][0]["sha256"] != entry["sha256"]
    assert verify(raw_copy, manifest) == 45
    assert build(load_config(), raw_copy)[0].shape[0] == 434                  # the schema accepts it
