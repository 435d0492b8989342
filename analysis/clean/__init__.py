"""Cleaning stage: raw yearbook and NBS files → the province × year panel, its codebook and a cleaning log.

``python -m analysis.clean`` (see :mod:`analysis.clean.__main__`). Readers are in :mod:`~analysis.clean.yearbook` and
:mod:`~analysis.clean.nbs`; assembly, derived variables and panel checks in :mod:`~analysis.clean.panel`.
Every correction appends a record to a :class:`CleaningLog` that is written to ``data/processed/cleaning_log.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from analysis.paths import relative

LOG_COLUMNS = ["step", "source_file", "rule", "province_code", "year", "variable", "n_rows", "detail"]


@dataclass
class CleaningLog:
    """What was corrected, where and why — one record per rule × place."""

    records: list[dict] = field(default_factory=list)

    def add(self, step: str, source_file, rule: str, detail: str, *, province_code=None, year=None,
            variable=None, n_rows: int = 1) -> None:
        self.records.append({
            "step": step, "source_file": relative(source_file) if source_file else "", "rule": rule,
            "province_code": province_code, "year": year, "variable": variable, "n_rows": int(n_rows),
            "detail": detail,
        })

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.records, columns=LOG_COLUMNS)
        df["province_code"] = df["province_code"].astype("Int64")
        df["year"] = df["year"].astype("Int64")
        return df
