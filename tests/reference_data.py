"""Published example data sets the estimators are checked against, shipped as small CSVs in ``tests/data/``.

Each file starts with ``#`` lines giving its source (paper, package, version, file) and columns. They were exported
unchanged from the moderndid 0.2.0 wheel, which was a dependency only to unpickle them (it pulls in polars, about
180 MB); the SHA-256 below pins the exported bytes, so an edited or truncated file fails loudly instead of moving a
reference number.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parent / "data"

#: file name -> (SHA-256 of the file, rows, columns), checked on every load
FILES = {
    "mpdta.csv": ("a099e5d115f5b175a9061f4c1a4cf229155453acca4c59e784a667c9d134f3ba", 2500,
                  ["year", "countyreal", "lpop", "lemp", "first.treat", "treat"]),
    "ehec.csv": ("9c753f63abd4398e62ae5363ae5965902aa49516a229ac3da0c8ac83a4f59bf8", 552,
                 ["stfips", "year", "dins", "yexp2", "W"]),
    # written by tests/reference/make_reference_values.py from synthdid-py 0.1.0
    "california_prop99.csv": ("983badace8dab53b5362dfbdcc84e31e03a3d537734ebd1e4625d466019bc17a", 1209,
                              ["State", "Year", "PacksPerCapita", "treated"]),
}


def load(name: str) -> pd.DataFrame:
    """Read ``tests/data/<name>`` after checking its SHA-256, row count and columns against :data:`FILES`."""
    sha256, rows, columns = FILES[name]
    path = DATA / name
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise AssertionError(f"{path}: SHA-256 {digest}, expected {sha256} (the reference data were changed)")
    df = pd.read_csv(path, comment="#")
    if len(df) != rows or list(df.columns) != columns:
        raise AssertionError(f"{path}: {len(df)} rows, columns {list(df.columns)}; expected {rows} rows, {columns}")
    return df


def load_mpdta() -> pd.DataFrame:
    """R ``did::mpdta`` (Callaway and Sant'Anna 2021): 500 counties x 2003-2007, log teen employment ``lemp``;
    ``first.treat`` renamed ``first_treat`` (0 = never treated)."""
    return load("mpdta.csv").rename(columns={"first.treat": "first_treat"})


def load_ehec() -> pd.DataFrame:
    """HonestDiD's ``ehec_data`` (Rambachan and Roth 2023): 46 states x 2008-2019, insured share ``dins``
    (a fraction), expansion year ``yexp2`` (NaN = never expanded)."""
    return load("ehec.csv")


def load_prop99() -> pd.DataFrame:
    """The Proposition 99 panel of R ``synthdid`` (``california_prop99``, as synthdid-py 0.1.0 ships it): 39 states
    x 1970-2000, ``PacksPerCapita`` (packs per capita), ``treated`` = California from 1989."""
    return load("california_prop99.csv")


def reference_values() -> dict:
    """``tests/data/reference_values.json``: numbers of the reference packages, frozen with their provenance (the
    script tests/reference/make_reference_values.py, package versions) so the comparisons run without them."""
    import json

    return json.loads((DATA / "reference_values.json").read_text(encoding="utf-8"))
