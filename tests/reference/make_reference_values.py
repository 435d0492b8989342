"""Freeze the reference implementations' numbers the tests compare our estimators with, so the comparisons run
without those packages (the ``test`` extra installs them; the live cross-checks then run as well).

Run from the repository root with the reference packages installed:

    python tests/reference/make_reference_values.py

It writes

* ``tests/data/california_prop99.csv``: the Proposition 99 panel (Abadie, Diamond and Hainmueller 2010) exactly as
  synthdid-py ships it (``synthdid.datasets.load_california_prop99``; 39 states x 1970-2000, packs per capita), with
  a ``#`` header giving its source; its SHA-256 goes into ``tests/reference_data.py`` (FILES);
* ``tests/data/reference_values.json``: each reference number with the call that produced it, and a ``_provenance``
  block (this script, the package versions, Python, the data file's SHA-256).

The numbers are outputs of the reference packages only (nothing of ``analysis`` is imported here), so a change of
our estimators can never move them. Rerun after upgrading a reference package and review the diff.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import sys
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parents[1]
DATA = TESTS / "data"
PROP99_CSV = DATA / "california_prop99.csv"
VALUES = DATA / "reference_values.json"
PACKAGES = ["synthdid-py", "diff-diff", "numpy", "pandas"]

PROP99_HEADER = """\
# California Proposition 99 panel (Abadie, Diamond and Hainmueller 2010, JASA 105(490); the california_prop99 data
# of the R package synthdid, Arkhangelsky et al. 2021, AER 111(12)): per-capita cigarette sales (packs) for 39
# states x 1970-2000 = 1,209 rows; treated = 1 for California from 1989. Exported unchanged (rows in the shipped
# order; columns State, Year, PacksPerCapita, treated; floats at full precision) from synthdid-py 0.1.0's
# synthdid.datasets.load_california_prop99() by tests/reference/make_reference_values.py. Read with
# pandas.read_csv(path, comment="#").
"""


def export_prop99():
    from synthdid.datasets import load_california_prop99

    df = load_california_prop99()
    PROP99_CSV.write_text(PROP99_HEADER + df.to_csv(index=False, lineterminator="\n"), encoding="utf-8")
    return df


def prop99_values(df) -> dict:
    import diff_diff
    from synthdid.estimate import synthdid_estimate

    data = df.assign(treat_unit=(df["State"] == "California").astype(int))
    fit = diff_diff.SyntheticDiD(variance_method="placebo", n_bootstrap=200, seed=1).fit(
        data, outcome="PacksPerCapita", treatment="treat_unit", unit="State", time="Year",
        post_periods=list(range(1989, 2001)))
    panel = df.pivot(index="State", columns="Year", values="PacksPerCapita")
    order = [s for s in panel.index if s != "California"] + ["California"]
    ref = synthdid_estimate(panel.loc[order].to_numpy(), 38, 19)
    return {
        "diff_diff_sdid_placebo": {
            "call": "diff_diff.SyntheticDiD(variance_method='placebo', n_bootstrap=200, seed=1).fit(prop99 with "
                    "treat_unit = California, outcome='PacksPerCapita', unit='State', time='Year', "
                    "post_periods=1989..2000)",
            "att": float(fit.att), "se": float(fit.se)},
        "synthdid_port_estimate": {
            "call": "synthdid.estimate.synthdid_estimate(Y, N0=38, T0=19), Y = PacksPerCapita, states in sorted "
                    "order with California last, years 1970..2000",
            "donors": order[:-1],
            "tau": float(ref), "omega": np.asarray(ref.weights.omega, dtype=float).tolist(),
            "lambda": np.asarray(ref.weights.lambda_, dtype=float).tolist()},
    }


def main() -> int:
    df = export_prop99()
    values = {
        "_provenance": {
            "script": "tests/reference/make_reference_values.py",
            "python": platform.python_version(),
            "versions": {p: importlib.metadata.version(p) for p in PACKAGES},
            "data_sha256": {PROP99_CSV.name: hashlib.sha256(PROP99_CSV.read_bytes()).hexdigest()},
        },
        "prop99": prop99_values(df),
    }
    VALUES.write_text(json.dumps(values, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {PROP99_CSV.relative_to(TESTS.parent)} and {VALUES.relative_to(TESTS.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
