"""Listed defence-industry firms (analysis/clean/defence_firms.py): hand-checked counts on the real files, the
definitions on small frames with known answers, the traps of the raw data, the CITIC cross-check, and bad input.

Hand checks (read from the raw rows: Shenwan history rows with a 65xxxx code, the 2026 stock list's area, list and
delist dates; 601989 中国重工's province from the 2024 list; 300114's Shenwan rows under its new code 302132):

- Shaanxi (陕西) on 2019-12-31, ever coded: 000561 烽火电子, 000697 炼石, 000768 中航西飞, 600343 航天动力,
  600893 航发动力, 302132 中航成飞 (listed 2010-08-27), 300397 天和防务, 300581 晨曦航空, 300775 三角防务,
  688122 西部超导 = 10. In force on 2019-12-31: the same less 302132 and 688122 (both first coded 2021-07-30) = 8.
  2021: + 003009 中天火箭 (listed 2020-09-25) = 11 for both definitions. 2015: the first five + 302132 + 300397 = 7.
- Beijing (北京) on 2019-12-31, ever coded: 600118, 600372, 600435, 600764, 600855, 002151, 300034, 300045, 002383,
  002413, 300065, 300456, 002829, 300719, 300810 (listed 2019-12-06), 603267, 601698, 002933, and the delisted
  601989 中国重工 (province from the 2024 list) = 19. 2021: + 002985, 300965, 688272 and 832317 观典防务 (Beijing
  Stock Exchange from its opening 2021-11-15; province from its STAR listing 688287) = 23.
- Sichuan (四川) 2019, ever coded: 600391, 002023, 002190, 300101, 002651, 002935, 300696 = 7; in force on
  2019-12-31: less 002651 (first coded 2022-07-29) = 6. 2021, ever: + 002977, 688311, 688070, 688636, 301050, 301213,
  688776, 688511 = 15.
"""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import paths
from analysis.clean import CleaningLog
from analysis.clean import defence_firms as dfm
from analysis.clean.panel import load_config, manifest_encodings
from analysis.io import DataError

SHAANXI, BEIJING, SICHUAN, GUANGDONG, INNER_MONGOLIA = 610000, 110000, 510000, 440000, 150000
YEARS = range(2010, 2024)
HISTORY = paths.RAW / "defence-listed-firms" / "sw_stock_classification_history.xls"


@pytest.fixture(scope="module")
def block():
    return load_config()["defence_firms"]


@pytest.fixture(scope="module")
def real(block):
    """(counts as a province × year × variable Series, CITIC agreement table, cleaning log frame) from the raw files."""
    log = CleaningLog()
    counts, table = dfm.read_defence_firms(block, paths.RAW, YEARS, log, manifest_encodings())
    return counts.set_index(["province_code", "year", "variable"])["value"], table, log.frame()


def test_hand_checked_counts(real):
    counts = real[0]
    expected = {  # (province, year, variable): count read from the raw rows (module docstring)
        (SHAANXI, 2015, "defence_listed_firms"): 7, (SHAANXI, 2019, "defence_listed_firms"): 10,
        (SHAANXI, 2019, "defence_listed_firms_yearend_sw"): 8, (SHAANXI, 2021, "defence_listed_firms"): 11,
        (SHAANXI, 2021, "defence_listed_firms_yearend_sw"): 11,
        (BEIJING, 2019, "defence_listed_firms"): 19, (BEIJING, 2021, "defence_listed_firms"): 23,
        (SICHUAN, 2019, "defence_listed_firms"): 7, (SICHUAN, 2019, "defence_listed_firms_yearend_sw"): 6,
        (SICHUAN, 2021, "defence_listed_firms"): 15,
        (INNER_MONGOLIA, 2015, "defence_listed_firms"): 1,   # 600967 内蒙一机, area '内蒙'
    }
    assert {k: counts[k] for k in expected} == expected


def test_grid_zeros_and_invariants(real):
    counts = real[0].unstack("variable")
    assert len(counts) == 31 * len(YEARS)
    ever, yearend, total = (counts[c] for c in ("defence_listed_firms", "defence_listed_firms_yearend_sw",
                                                "listed_firms_total"))
    assert ever.notna().all() and total.notna().all()
    assert (ever.xs(2019, level="year") == 0).sum() > 0                     # provinces without a firm have a real 0
    years = counts.index.get_level_values("year")
    assert yearend[years < 2014].isna().all() and yearend[years >= 2014].notna().all()   # the sector began 2014-02-21
    assert (yearend[years >= 2014] <= ever[years >= 2014]).all()            # members on a date were ever members
    assert (ever <= total).all()


def test_static_count_ignores_reclassification_real(real):
    """Shenwan moved 22 stocks into the sector on 2021-07-30: the membership count jumps, the static one does not
    move for them. 600343 航天动力 (Shaanxi) left the sector on 2022-07-29 and still counts; 600855 航天长峰 (Beijing)
    entered only on 2024-07-30 and counts from 2010."""
    counts = real[0]
    national = counts.groupby(level=["variable", "year"]).sum()
    jump_yearend = national["defence_listed_firms_yearend_sw", 2021] - national["defence_listed_firms_yearend_sw", 2020]
    jump_ever = national["defence_listed_firms", 2021] - national["defence_listed_firms", 2020]
    assert (jump_yearend, jump_ever) == (37, 14)     # 14 = new listings of sector firms in 2021
    # Shaanxi 2022: 2021's 11 + 688281 华秦科技 (listed 2022-03-07) + 301306 西测测试 (2022-07-26) = 13 ever coded;
    # in force on 2022-12-31: less 600343, which left on 2022-07-29 = 12.
    assert counts[SHAANXI, 2022, "defence_listed_firms"] == 13
    assert counts[SHAANXI, 2022, "defence_listed_firms_yearend_sw"] == 12


def test_reclassification_dates_from_the_history(block):
    """The shared README's trap: on 2019-07-24 ten stocks entered (an eleventh, 300123, moved within the sector — the
    README's '11 first coded' counts that row too); on 2021-07-30 22 entered and 2 left."""
    history = dfm.read_shenwan_history(HISTORY)
    assert len(history) == 12790
    in_sector = history["industry_code"].str.startswith(block["sector_prefix"])
    text = dfm._reclassifications(history, in_sector)
    assert "2019-07-24: 10 entered, 0 left" in text and "2021-07-30: 22 entered, 2 left" in text
    assert history.loc[in_sector, "start"].min() == pd.Timestamp("2014-02-21")


def frames(firms: list[tuple], history: list[tuple]):
    """Small firms and history frames: firms (symbol, exchange, province, list, delist), history (code, start, code)."""
    f = pd.DataFrame(firms, columns=["symbol", "exchange", "province_code", "list_date", "delist_date"])
    f["list_date"] = pd.to_datetime(f["list_date"])
    f["delist_date"] = pd.to_datetime(f["delist_date"])
    f["first_listed"] = f["list_date"]
    f.loc[(f["exchange"] == "BJ") & (f["list_date"] < "2021-11-15"), "first_listed"] = pd.Timestamp("2021-11-15")
    f["province_code"] = pd.array(f["province_code"], dtype="Int64")
    h = pd.DataFrame(history, columns=["code", "start", "industry_code"])
    h["start"] = pd.to_datetime(h["start"])
    return f, h


COLUMNS = [{"name": "ever", "definition": "ever"}, {"name": "yearend", "definition": "yearend"},
           {"name": "all", "definition": "all"}]


def counts_of(firms, history, years):
    in_sector = history["industry_code"].str.startswith("65")
    long, unknown = dfm.count_by_province(firms, history, in_sector, years, COLUMNS)
    return long[long["province_code"] == SHAANXI].set_index(["variable", "year"])["value"], unknown


def test_static_count_never_drops_on_reclassification():
    """A: in the sector 2014-02-21 → 2019-12-31 (out from 2020-01-01); B: out until 2021-07-30, then in. Both listed
    throughout: the static count is 2 every year, the year-end count follows the codes."""
    firms, history = frames([("000001", "SZ", SHAANXI, "2010-01-05", None), ("000002", "SZ", SHAANXI, "2010-01-05", None)],
                            [("000001", "2010-01-05", "640101"), ("000001", "2014-02-21", "650101"),
                             ("000001", "2020-01-01", "640101"), ("000002", "2010-01-05", "640101"),
                             ("000002", "2021-07-30", "650501")])
    c, _ = counts_of(firms, history, range(2013, 2023))
    assert c["ever"].tolist() == [2.0] * 10
    assert c["yearend"].tolist()[1:] == [1, 1, 1, 1, 1, 1, 0, 1, 1]            # 2014–2022
    assert np.isnan(c["yearend", 2013])                                          # before the sector existed
    assert c["all"].tolist() == [2.0] * 10


def test_listing_and_delisting_dates_respected():
    """Listed on 31 Dec t iff list_date ≤ 31 Dec t < delist_date; Beijing Stock Exchange firms from 2021-11-15."""
    firms, history = frames(
        [("000001", "SZ", SHAANXI, "2015-12-31", None),          # listed on the last day: counts in 2015
         ("000002", "SZ", SHAANXI, "2016-01-01", None),          # first counted in 2016
         ("000003", "SZ", SHAANXI, "2010-01-05", "2017-12-31"),  # delisted on 31 Dec 2017: not listed at its end
         ("000004", "SZ", SHAANXI, "2010-01-05", "2018-01-02"),  # still listed on 31 Dec 2017
         ("830001", "BJ", SHAANXI, "2020-07-27", None)],         # NEEQ select tier 2020, exchange from 2021-11-15
        [(c, "2014-02-21", "650101") for c in ("000001", "000002", "000003", "000004", "830001")])
    c, _ = counts_of(firms, history, range(2015, 2022))
    assert dict(c["ever"]) == {2015: 3, 2016: 4, 2017: 3, 2018: 2, 2019: 2, 2020: 2, 2021: 3}
    assert c["all"].equals(c["ever"])


def test_unknown_province_left_out_and_counted():
    firms, history = frames([("000001", "SZ", SHAANXI, "2010-01-05", None), ("000002", "SZ", None, "2010-01-05", None)],
                            [("000001", "2014-02-21", "650101"), ("000002", "2014-02-21", "650101")])
    c, unknown = counts_of(firms, history, [2019])
    assert c["ever", 2019] == 1
    row = unknown[(unknown["variable"] == "ever") & (unknown["year"] == 2019)].iloc[0]
    assert (row["n_unknown"], row["symbols"]) == (1, "000002")


def stock_list(rows):
    return pd.DataFrame(rows, columns=["symbol", "exchange", "name", "area", "list_date", "delist_date", "status",
                                       "row"]).assign(list_date=lambda d: pd.to_datetime(d["list_date"]),
                                                      delist_date=lambda d: pd.to_datetime(d["delist_date"]))


def test_province_aliases_fill_and_successor(block, tmp_path):
    stocks = stock_list([("000001", "SZ", "a", "深圳", "19910403", None, "L", 2),
                         ("600967", "SH", "b", "内蒙", "20040518", None, "L", 3),
                         ("601989", "SH", "c", "", "20091216", "20250905", "D", 4),
                         ("832317", "BJ", "d", "", "20200727", "20220426", "D", 5),
                         ("688287", "SH", "e", "北京", "20220525", None, "L", 6),
                         ("000687", "SZ", "f", "", "19970221", "20220617", "D", 7)])
    fill = stock_list([("601989", "SH", "c", "北京", "20091216", None, "L", 2)])
    log = CleaningLog()
    firms = dfm.resolve_firms(stocks, fill, block, log, tmp_path / "new.csv", tmp_path / "old.csv")
    assert firms["province_code"].tolist()[:5] == [GUANGDONG, INNER_MONGOLIA, BEIJING, BEIJING, BEIJING]
    assert pd.isna(firms["province_code"].iloc[5])
    assert firms.loc[firms["symbol"] == "832317", "first_listed"].iloc[0] == pd.Timestamp("2021-11-15")
    assert {"fill_province_from_older_list", "province_from_later_listing", "map_area_alias",
            "listed_from_exchange_opening"} <= {r["rule"] for r in log.records}


def test_unknown_area_names_file_row_column(block, tmp_path):
    stocks = stock_list([("000001", "SZ", "a", "Atlantis", "19910403", None, "L", 2),
                         ("832317", "BJ", "d", "", "20200727", "20220426", "D", 3),
                         ("688287", "SH", "e", "北京", "20220525", None, "L", 4)])
    with pytest.raises(DataError, match=r"new.csv, row 2, column 'area': area 'Atlantis' of 000001"):
        dfm.resolve_firms(stocks, stocks.iloc[:0], block, CleaningLog(), tmp_path / "new.csv", tmp_path / "old.csv")


def test_renamed_code_300114(real, block):
    """Shenwan keeps 300114 中航电测 (coded 军工电子 from 2021-07-30); the stock list has it as 302132 中航成飞. Read
    under 302132 it counts once (161 sector stocks, not 162) and is a member on 2021-12-31 (Shaanxi 11, above)."""
    log = real[2]
    renamed = log[log["rule"] == "renamed_stock_code"]
    assert renamed["n_rows"].tolist() == [3, 1]           # three Shenwan rows, one CITIC row
    assert log.loc[log["rule"] == "sector_membership", "detail"].str.contains("161 stocks coded 65xxxx").all()
    stocks = pd.DataFrame({"symbol": ["302132"]})
    out = dfm.apply_renamed_codes(pd.DataFrame({"code": ["300114", "600000"]}), "code", block, stocks,
                                  HISTORY, CleaningLog())
    assert out["code"].tolist() == ["302132", "600000"]
    with pytest.raises(DataError, match="renamed_codes 300114"):
        dfm.apply_renamed_codes(out, "code", block, pd.DataFrame({"symbol": ["300114", "302132"]}), HISTORY,
                                CleaningLog())


def test_unknown_province_firms_logged(real):
    log = real[2]
    left = log[(log["rule"] == "province_unknown_left_out") & (log["variable"] == "province_code")]
    assert sorted(d.split(" ")[0] for d in left["detail"]) == ["000687", "002013", "600677"]
    by_year = log[(log["rule"] == "province_unknown_left_out") & (log["variable"] == "defence_listed_firms")]
    assert "2019: 3" in by_year["detail"].iloc[0] and "2023" not in by_year["detail"].iloc[0]


def test_citic_agreement_numbers(real):
    table = real[1].set_index("shenwan_definition")
    assert table.loc["shenwan_ever", ["n_listed", "n_compared", "both", "only_shenwan", "only_citic",
                                      "neither"]].tolist() == [3760, 3688, 66, 36, 2, 3584]
    assert table.loc["shenwan_on_date", ["both", "only_shenwan", "only_citic", "neither"]].tolist() == [56, 11, 12, 3609]
    assert table.loc["shenwan_ever", "jaccard"] == pytest.approx(66 / 104)
    assert table.loc["shenwan_ever", "cohen_kappa"] == pytest.approx(0.771413, abs=1e-6)
    assert table.loc["shenwan_on_date", "cohen_kappa"] == pytest.approx(0.826453, abs=1e-6)


@pytest.mark.parametrize("cells", [(66, 36, 2, 3584), (56, 11, 12, 3609), (5, 0, 0, 5), (3, 7, 11, 2), (1, 2, 3, 0)])
def test_kappa_agrees_with_statsmodels(cells):
    from statsmodels.stats.inter_rater import cohens_kappa

    both, only_a, only_b, neither = cells
    reference = cohens_kappa(np.array([[both, only_a], [only_b, neither]])).kappa
    assert dfm.cohen_kappa_2x2(*cells) == pytest.approx(reference, abs=1e-12)


def test_config_errors_name_the_key(block, tmp_path):
    for change, key in (({"colour": 1}, "defence_firms"), ({"sector_prefix": 65}, "defence_firms.sector_prefix"),
                        ({"renamed_codes": [{"old": 300114, "new": "302132", "note": ""}]},
                         "defence_firms.renamed_codes"),
                        ({"area_aliases": {"深圳": "Shenzhen"}}, "defence_firms.area_aliases")):
        with pytest.raises(DataError, match=rf"column '{key}'"):
            dfm.check_config({**block, **change}, tmp_path / "panel.yaml")
    cfg = yaml.safe_load(paths.PANEL_CONFIG.read_text(encoding="utf-8"))
    cfg["defence_firms"]["columns"][0]["definition"] = "sometimes"
    bad = tmp_path / "panel.yaml"
    bad.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    with pytest.raises(DataError, match="definition 'sometimes'"):
        load_config(bad)


def test_bad_stock_list_rows(tmp_path):
    header = "ts_code,symbol,name,area,industry,list_date,delist_date,status\n"
    cases = [("000001.SZ,000001,a,深圳,x,19910403,20200101,L\n", r"row 2, column 'delist_date'"),
             ("000001.SZ,000001,a,深圳,x,1991-04-03,,L\n", r"row 2, column 'list_date'"),
             ("000001.SZ,000002,a,深圳,x,19910403,,L\n", r"row 2, column 'ts_code'"),
             ("000001.SZ,000001,a,深圳,x,19910403,,X\n", r"row 2, column 'status'")]
    for body, message in cases:
        f = tmp_path / "list.csv"
        f.write_text(header + body, encoding="utf-8")
        with pytest.raises(DataError, match=message):
            dfm.read_stock_list(f, "utf-8")


def test_bad_citic_and_xls(tmp_path):
    f = tmp_path / "citic.csv"
    f.write_text(",SecurityID,ZXF\n0,000001.SZE,40\n1,000002.HKG,28\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"row 3, column 'SecurityID'"):
        dfm.read_citic(f, "utf-8")
    broken = tmp_path / "history.xls"
    broken.write_bytes(b"not a workbook")
    with pytest.raises(DataError, match="cannot be read as an Excel .xls workbook"):
        dfm.read_shenwan_history(broken)


def test_full_build_and_cli_outputs(raw_copy, tmp_path):
    """The clean stage writes the three columns, their codebook rows (sources filled) and the cross-check table; a
    corrupted Shenwan file stops it with the file named and nothing written."""
    import subprocess
    import sys

    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "analysis.clean", "--raw-dir", str(raw_copy), "--out-dir", str(out)],
                         capture_output=True, text=True, cwd=paths.ROOT)
    assert res.returncode == 0, res.stderr
    panel = pd.read_parquet(out / "panel.parquet")
    names = ["defence_listed_firms", "defence_listed_firms_yearend_sw", "listed_firms_total"]
    shaanxi = panel.set_index(["province_code", "year"]).loc[(SHAANXI, 2019), names].tolist()
    assert shaanxi[:2] == [10, 8] and shaanxi[2] > 10
    book = pd.read_csv(out / "codebook.csv", keep_default_na=False).set_index("variable")
    assert (book.loc[names, "source_file"] != "").all() and (book.loc[names, "source_variable"] != "").all()
    assert book.loc["defence_listed_firms_yearend_sw", "years_with_data"] == "2014–2023"
    cross = pd.read_csv(out / "defence_firms_crosscheck.csv")
    assert cross["both"].tolist() == [66, 56]
    log = pd.read_csv(out / "cleaning_log.csv")
    assert (log["rule"] == "citic_crosscheck").sum() == 2
    (raw_copy / "defence-listed-firms" / "sw_stock_classification_history.xls").write_bytes(b"garbage")
    shutil.rmtree(out)
    res = subprocess.run([sys.executable, "-m", "analysis.clean", "--raw-dir", str(raw_copy), "--out-dir", str(out)],
                         capture_output=True, text=True, cwd=paths.ROOT)
    assert res.returncode != 0 and "sw_stock_classification_history.xls" in res.stderr
    assert "Traceback" not in res.stderr and not out.exists()
