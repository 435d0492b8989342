"""Readers for National Bureau of Statistics exports (``data/raw/nbs-population``, ``data/raw/nbs-province-panel``).

NBS ``分省年度数据`` exports are CSVs with three header lines (数据库/指标/时间), a table whose first column is
``地区`` (full province names such as ``内蒙古自治区``) and columns ``2024年 … 2015年``, then footnote lines
(``注：…``, ``数据来源：…``). Encodings differ by file (GB18030 or UTF-8); the manifest declares each one and a file
that does not decode stops the run.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.clean import CleaningLog
from analysis.io import DataError
from analysis.provinces import code_for_name

_YEAR_COLUMN = re.compile(r"^(\d{4})年$")
_FOOTER = ("注", "数据来源", "　")


def decode(path: Path, encoding: str) -> str:
    """Decode a text file, naming the line where decoding fails."""
    data = Path(path).read_bytes()
    codec = "utf-8-sig" if encoding.lower() in ("utf-8", "utf8") else encoding
    try:
        return data.decode(codec)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(path, f"does not decode as {encoding} ({err.reason}); is the file in another encoding?",
                        row=line) from None


def read_nbs_export(path: Path, encoding: str, name: str, log: CleaningLog) -> pd.DataFrame:
    """Parse one NBS wide export into a long frame ``province_code, year, variable, value``.

    Row numbers in errors are line numbers in the file. Empty cells are missing; national rows are dropped.
    """
    lines = decode(path, encoding).splitlines()
    header_at = next((i for i, line in enumerate(lines) if line.startswith("地区")), None)
    if header_at is None:
        raise DataError(path, "no header line starting with '地区' (region) found", column="地区")
    body = []
    for i in range(header_at + 1, len(lines)):
        if not lines[i].strip() or lines[i].startswith(_FOOTER):
            break
        body.append((i + 1, lines[i]))
    n_footer = sum(1 for line in lines[header_at + 1 + len(body):] if line.strip())
    log.add("clean", path, "skip_header_footer",
            f"{name}: skipped {header_at} header line(s) and {n_footer} footnote line(s)", n_rows=header_at + n_footer)
    header = next(csv.reader([lines[header_at]]))
    years = {}
    for j, col in enumerate(header[1:], start=1):
        m = _YEAR_COLUMN.match(col.strip())
        if not m:
            raise DataError(path, f"column header {col!r} is not a year like '2015年'", row=header_at + 1, column=col)
        years[j] = int(m.group(1))
    records = []
    for line_no, line in body:
        cells = next(csv.reader(io.StringIO(line)))
        if len(cells) != len(header):
            raise DataError(path, f"expected {len(header)} cells, found {len(cells)}", row=line_no)
        region = cells[0].strip()
        if region in ("全国",):
            continue
        code = code_for_name(region)
        if code is None:
            raise DataError(path, f"unknown province {region!r}", row=line_no, column="地区")
        for j, year in years.items():
            cell = cells[j].strip()
            if cell == "":
                value = np.nan
            else:
                try:
                    value = float(cell)
                except ValueError:
                    raise DataError(path, f"non-numeric value {cell!r}", row=line_no, column=header[j]) from None
            records.append((code, year, name, value))
    df = pd.DataFrame(records, columns=["province_code", "year", "variable", "value"])
    _check_unique(df, path)
    return df


def read_integrated_panel(path: Path, columns: dict[str, str], log: CleaningLog) -> pd.DataFrame:
    """Read selected columns of the merged NBS panel (``地区``, ``年份`` + ``columns``: source → panel name)."""
    text = decode(path, "utf-8")
    raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    for col in ["地区", "年份", *columns]:
        if col not in raw.columns:
            raise DataError(path, f"missing column {col!r}", column=col)
    codes = raw["地区"].map(code_for_name)
    if codes.isna().any():
        i = int(np.flatnonzero(codes.isna().to_numpy())[0])
        raise DataError(path, f"unknown province {raw['地区'].iloc[i]!r}", row=i + 2, column="地区")
    years = pd.to_numeric(raw["年份"], errors="coerce")
    if years.isna().any() or (years % 1 != 0).any():
        i = int(np.flatnonzero((years.isna() | (years % 1 != 0)).to_numpy())[0])
        raise DataError(path, f"year {raw['年份'].iloc[i]!r} is not an integer", row=i + 2, column="年份")
    frames = []
    for source, name in columns.items():
        text_values = raw[source].str.strip()
        values = pd.to_numeric(text_values, errors="coerce")
        bad = values.isna() & (text_values != "")
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(path, f"non-numeric value {raw[source].iloc[i]!r}", row=i + 2, column=source)
        frames.append(pd.DataFrame({"province_code": codes.astype(int), "year": years.astype(int),
                                    "variable": name, "value": values.astype(float)}))
    df = pd.concat(frames, ignore_index=True)
    _check_unique(df, path)
    return df


def _check_unique(df: pd.DataFrame, path: Path) -> None:
    dup = df.duplicated(["province_code", "year", "variable"])
    if dup.any():
        first = df[dup].iloc[0]
        raise DataError(path, f"duplicate key: province {first['province_code']}, year {first['year']}, "
                        f"variable {first['variable']}")
