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


def read_nbs_export(path: Path, encoding: str, name: str, log: CleaningLog,
                    required_years: range | None = None) -> pd.DataFrame:
    """Parse one NBS wide export into a long frame ``province_code, year, variable, value`` (+ ``source_file``,
    ``source_row``, ``source_column``: where each value came from, for later plausibility errors).

    Row numbers in errors are line numbers in the file. Empty cells are missing; national rows are dropped. Stops at
    a non-finite or negative cell (NBS levels are non-negative), a province listed twice, and a year column missing
    inside the export's range or from ``required_years`` (the study window).
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
    found = sorted(years.values())
    gaps = sorted(set(range(found[0], found[-1] + 1)) - set(found)) if found else []
    absent = sorted(set(required_years or ()) - set(found))
    if gaps or absent:
        missing = sorted(set(gaps) | set(absent))
        raise DataError(path, f"year column(s) {', '.join(f'{y}年' for y in missing)} missing (found "
                        f"{found[0] if found else '-'}–{found[-1] if found else '-'}); every year of the window must "
                        "be in the export: download it again with all years", row=header_at + 1)
    records = []
    seen: dict[int, int] = {}
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
        if code in seen:
            raise DataError(path, f"duplicate row: province {region!r} already on row {seen[code]}; keep one",
                            row=line_no, column="地区")
        seen[code] = line_no
        for j, year in years.items():
            cell = cells[j].strip()
            if cell == "":
                value = np.nan
            else:
                try:
                    value = float(cell)
                except ValueError:
                    raise DataError(path, f"non-numeric value {cell!r}", row=line_no, column=header[j]) from None
                _check_value(value, path, line_no, header[j])
            records.append((code, year, name, value, line_no, header[j]))
    df = pd.DataFrame(records, columns=["province_code", "year", "variable", "value", "source_row", "source_column"])
    df["source_file"] = str(path)
    _check_unique(df, path)
    return df


def read_integrated_panel(path: Path, columns: dict[str, str], log: CleaningLog,
                          year_offsets: dict[str, int] | None = None) -> pd.DataFrame:
    """Read selected columns of the merged NBS panel (``地区``, ``年份`` + ``columns``: source → panel name).

    ``year_offsets`` (panel name → k) moves a column by k years: the value in the row labelled t is returned as year
    t + k (the merged panel's real GDP index is filed one year late, so k = −1 there; see ``configs/panel.yaml``).
    Each move is logged (rule ``realign_year``); :func:`check_year_alignment` tests it against nominal GDP.
    """
    year_offsets = year_offsets or {}
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
        invalid = values.notna() & (~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan)) | (values < 0))
        if invalid.any():
            i = int(np.flatnonzero(invalid.to_numpy())[0])
            _check_value(float(values.iloc[i]), path, i + 2, source)
        offset = int(year_offsets.get(name, 0))
        if offset:
            log.add("clean", path, "realign_year",
                    f"{source} → {name}: the value labelled year t is year t{offset:+d}'s (merged panel filed it "
                    f"{abs(offset)} year(s) {'late' if offset < 0 else 'early'}); moved by {offset:+d} year(s)",
                    variable=name, n_rows=int(values.notna().sum()))
        frames.append(pd.DataFrame({"province_code": codes.astype(int), "year": years.astype(int) + offset,
                                    "variable": name, "value": values.astype(float),
                                    "source_row": np.arange(2, len(raw) + 2), "source_column": source,
                                    "source_file": str(path)}))
    df = pd.concat(frames, ignore_index=True)
    _check_unique(df, path)
    return df


def _check_value(value: float, path: Path, row: int, column: str) -> None:
    """A cell must be finite and non-negative (NBS levels, shares and indices are never negative)."""
    if not np.isfinite(value):
        raise DataError(path, f"non-finite value {value!r}; NBS exports hold finite numbers or empty cells",
                        row=row, column=column)
    if value < 0:
        raise DataError(path, f"negative value {value:g} in a non-negative quantity", row=row, column=column)


def _check_unique(df: pd.DataFrame, path: Path) -> None:
    dup = df.duplicated(["province_code", "year", "variable"])
    if dup.any():
        first = df[dup].iloc[0]
        row = int(first["source_row"]) if "source_row" in df and pd.notna(first["source_row"]) else None
        raise DataError(path, f"duplicate key: province {first['province_code']}, year {first['year']}, "
                        f"variable {first['variable']}; keep one row", row=row)


def check_year_alignment(long: pd.DataFrame, real_index: str, nominal: str, offset: int, path: Path,
                         log: CleaningLog, years: tuple[int, int], candidates: tuple[int, ...] = (-1, 0, 1)) -> None:
    """Check that a real growth index is filed under the right year, using nominal GDP as independent evidence.

    Real growth and nominal growth move together across provinces within a year (the deflator varies much less than
    real growth), so the correlation of ``log(index_t / 100)`` with ``Δlog nominal_t`` over province-years is highest
    at the correct alignment. ``long`` holds ``real_index`` already moved by ``offset``; the other ``candidates`` are
    measured relative to it. Stops with a :class:`DataError` naming ``path`` if another offset fits better (e.g. a
    corrected file was registered and the configured ``year_offset`` must go); otherwise logs the correlations and
    the three anchor cells (Hubei 2020 and 2021, Guangdong 2020).
    """
    wide = long[long["variable"].isin([real_index, nominal])].pivot(
        index=["province_code", "year"], columns="variable", values="value")
    growth_real = np.log(wide[real_index].unstack("year") / 100)
    level = wide[nominal].unstack("year")
    growth_nominal = np.log(level / level.shift(1, axis=1))
    first, last = years
    corr = {}
    for cand in candidates:
        # a value now filed under t came from label t − offset; candidate c files it under t − offset + c
        moved = growth_real.shift(cand - offset, axis=1)
        both = pd.concat([growth_nominal.stack(), moved.stack()], axis=1, keys=["n", "r"]).dropna()
        both = both[both.index.get_level_values("year").to_series().between(first, last).to_numpy()]
        corr[cand] = float(both["n"].corr(both["r"]))
    best = max(corr, key=corr.get)
    detail = (f"{real_index} against nominal growth of {nominal}, {first}–{last}, pooled correlation by year offset: "
              + ", ".join(f"{k:+d}: {v:.3f}" for k, v in corr.items()) + f"; configured offset {offset:+d}")
    if best != offset:
        raise DataError(path, f"{detail}: offset {best:+d} fits nominal GDP growth better; fix `year_offset` of "
                        f"{real_index} in configs/panel.yaml", column=real_index)
    anchors = []
    for code, year, label in ((420000, 2020, "Hubei"), (420000, 2021, "Hubei"), (440000, 2020, "Guangdong")):
        if (code, year) in wide.index:
            anchors.append(f"{label} {year} = {wide.loc[(code, year), real_index]:g}")
    log.add("clean", path, "check_year_alignment", f"{detail} (best); after realignment " + ", ".join(anchors),
            variable=real_index, n_rows=int(growth_real.notna().sum().sum()))
