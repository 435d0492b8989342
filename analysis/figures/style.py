"""One restrained house style for every figure: fonts, sizes, greys, highlights, source notes, deterministic saving.

Readable in greyscale: categories that matter (the highlighted provinces, the theater mean) differ by line style,
marker and weight, not by hue alone; continuous maps use ``cividis`` (lightness rises monotonically, so a greyscale
print keeps the order). Chinese province names are an option (``language="cn"``): the glyphs come from Noto Sans
CJK SC (SIL Open Font License 1.1) shipped in the PyPI package ``mplfonts`` (pinned in requirements.txt); nothing is
taken from the system's fonts, so every machine renders the same names.

Saving is deterministic: PDF metadata without creation date or producer version, PNG without the software tag, so a
rerun gives identical bytes (checked in tests/test_figures_style.py).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import matplotlib

# Figures are files, never windows (the Makefile also sets MPLBACKEND=Agg). A backend chosen explicitly through
# MPLBACKEND is kept: the notebook kernel sets matplotlib's inline backend so that figures show under their cells,
# and forcing Agg here would silently hide them.
if "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from analysis.io import atomic_path  # noqa: E402
from analysis.provinces import identity_table  # noqa: E402

#: Family name of the bundled CJK font (as matplotlib's font manager reports it).
CJK_FONT_FAMILY = "Noto Sans CJK SC"
CJK_FONT_FILE = "NotoSansCJKsc-Regular.otf"

#: Page geometry (inches): a full text width of an A4/letter article and the default height of one panel row.
TEXT_WIDTH = 6.5
PANEL_HEIGHT = 2.2
PNG_DPI = 200

#: Greys for context, ink for the things a reader should look at.
INK = "#1a1a1a"
GREY_DARK = "#4d4d4d"
GREY_MID = "#8c8c8c"
GREY_LIGHT = "#c8c8c8"
GREY_FAINT = "#e6e6e6"
SEQUENTIAL_CMAP = "cividis"
DIVERGING_CMAP = "PuOr_r"

#: Provinces the paper discusses by name, with styles that survive greyscale (line style + marker, not hue alone).
HIGHLIGHT_PROVINCES: dict[int, dict] = {
    610000: {"color": "#b2182b", "linestyle": "-", "marker": "o", "label_en": "Shaanxi"},
    440000: {"color": "#2166ac", "linestyle": "--", "marker": "s", "label_en": "Guangdong"},
}
THEATER_MEAN_STYLE = {"color": INK, "linewidth": 2.4, "linestyle": "-", "zorder": 4}
PROVINCE_LINE_STYLE = {"color": GREY_LIGHT, "linewidth": 0.8, "zorder": 1}

#: Theater commands in the order every figure uses (east to west, then north — roughly the reading order on a map).
THEATER_ORDER = ("Eastern", "Southern", "Central", "Northern", "Western")
THEATER_NAMES_CN = {"Eastern": "东部战区", "Southern": "南部战区", "Central": "中部战区", "Northern": "北部战区",
                    "Western": "西部战区"}

VARIABLE_LABELS = {
    "u_military": "State/public-research-oriented subsystem ('military'), U_mil",
    "u_civil": "Business/market-oriented subsystem ('civil'), U_civ",
    "capability_index": "Capability index (coordination degree D)",
    "coordination_corrected": "Coordination degree D (corrected coupling)",
    "coupling_corrected": "Coupling C (corrected)",
    "transfer_civ_to_mil": "Transfer capability, business → state/public research ('civil → military')",
    "transfer_mil_to_civ": "Transfer capability, state/public research → business ('military → civil')",
}

_RC = {
    "font.family": ["DejaVu Sans", CJK_FONT_FAMILY],  # DejaVu for Latin text; CJK glyphs fall back to Noto
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "axes.edgecolor": GREY_DARK,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": GREY_FAINT,
    "grid.linewidth": 0.5,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "xtick.color": GREY_DARK,
    "ytick.color": GREY_DARK,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "lines.linewidth": 1.0,
    "figure.dpi": 100,
    "savefig.dpi": PNG_DPI,
    "pdf.compression": 6,
    "svg.hashsalt": "dualuse",
    "axes.unicode_minus": False,
}


def cjk_font_path() -> Path:
    """Path of the bundled Noto Sans CJK SC file inside the installed ``mplfonts`` package (not imported: only read)."""
    spec = resources.files("mplfonts") / "fonts" / CJK_FONT_FILE
    path = Path(os.fspath(spec))
    if not path.exists():
        raise FileNotFoundError(f"{CJK_FONT_FILE} not found in the mplfonts package; reinstall requirements.txt")
    return path


def apply_style() -> None:
    """Register the CJK font with matplotlib and apply the house rcParams (idempotent)."""
    path = cjk_font_path()
    if not any(f.fname == str(path) for f in font_manager.fontManager.ttflist):
        font_manager.fontManager.addfont(str(path))
    plt.rcParams.update(_RC)


def missing_glyphs(text: str, font_path: Path | None = None) -> list[str]:
    """Characters of ``text`` (whitespace ignored) that the font file has no glyph for (cmap lookup)."""
    from fontTools.ttLib import TTFont

    cmap = TTFont(str(font_path or cjk_font_path()), lazy=True).getBestCmap()
    return sorted({ch for ch in text if not ch.isspace() and ord(ch) not in cmap})


def province_labels(language: str = "en") -> dict[int, str]:
    """Province code → display name: English (``province_en``) or Chinese short name (``name_cn``)."""
    if language not in ("en", "cn"):
        raise ValueError(f"language must be 'en' or 'cn', got {language!r}")
    ident = identity_table()
    column = "province_en" if language == "en" else "name_cn"
    return dict(zip(ident["province_code"].astype(int), ident[column]))


def theater_label(theater: str, language: str = "en") -> str:
    """'Eastern theater' or '东部战区'."""
    return THEATER_NAMES_CN[theater] if language == "cn" else f"{theater} theater"


def new_figure(n_rows: int = 1, n_cols: int = 1, height: float | None = None, width: float = TEXT_WIDTH,
               **kwargs) -> tuple[plt.Figure, object]:
    """A styled figure with a grid of axes (``plt.subplots`` with house defaults and constrained layout)."""
    apply_style()
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(width, height or PANEL_HEIGHT * n_rows),
                             layout="constrained", squeeze=False, **kwargs)
    return fig, axes


def add_source_note(fig: plt.Figure, note: str) -> None:
    """A small grey note under the figure: data source, sample and method, so the figure stands alone."""
    fig.text(0.0, -0.01, note, ha="left", va="top", fontsize=6.2, color=GREY_DARK, wrap=True,
             transform=fig.transFigure)


def save_figure(fig: plt.Figure, stem: str | os.PathLike) -> list[Path]:
    """Write ``<stem>.pdf`` and ``<stem>.png`` atomically with fixed metadata; closes the figure; returns the paths."""
    stem = Path(stem)
    written = []
    for suffix, metadata in ((".pdf", {"CreationDate": None, "ModDate": None, "Producer": "analysis.figures",
                                       "Creator": "analysis.figures"}),
                             (".png", {"Software": None})):
        target = stem.with_suffix(suffix)
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=suffix[1:], metadata=metadata, bbox_inches="tight", pad_inches=0.05)
        written.append(target)
    plt.close(fig)
    return written
