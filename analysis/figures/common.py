"""Small helpers the figure families share: selecting one index method, checking columns, ordering provinces."""

from __future__ import annotations

import pandas as pd

from analysis.figures.style import THEATER_ORDER


def require_columns(df: pd.DataFrame, columns: list[str], what: str) -> None:
    """Raise ``ValueError`` naming the frame (``what``) and the missing columns."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}")


def one_method(indices: pd.DataFrame, method: str, years: tuple[int, int] | None = None) -> pd.DataFrame:
    """Rows of the long indices frame for one method (and optionally a year range, inclusive)."""
    require_columns(indices, ["province_code", "year", "method", "theater_command"], "indices")
    out = indices[indices["method"] == method]
    if out.empty:
        raise ValueError(f"indices: no rows for method {method!r} (have {sorted(indices['method'].unique())})")
    if years is not None:
        out = out[out["year"].between(*years)]
    return out.sort_values(["province_code", "year"], kind="mergesort").reset_index(drop=True)


def theater_province_order(frame: pd.DataFrame, variable: str) -> list[int]:
    """Province codes ordered by theater command (house order), then by the province mean of ``variable``, highest
    first, then by code (so ties and missing values still give one order)."""
    means = frame.groupby("province_code")[variable].mean()
    theaters = frame.drop_duplicates("province_code").set_index("province_code")["theater_command"]
    table = pd.DataFrame({"theater_rank": theaters.map({t: i for i, t in enumerate(THEATER_ORDER)}),
                          "mean": means.reindex(theaters.index)})
    table["neg_mean"] = -table["mean"].fillna(-1e300)
    table = table.reset_index().sort_values(["theater_rank", "neg_mean", "province_code"], kind="mergesort")
    return table["province_code"].astype(int).tolist()
