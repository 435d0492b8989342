"""Sanction shocks by province and year: post indicators, pre-shock exposure, Entity List measures.

Stage ``python -m analysis.shocks --panel data/processed/panel.parquet --config configs/shocks.yaml
--out-dir data/processed`` writes ``shocks.parquet`` (province_code x year), ``shocks_codebook.csv``,
``shocks_summary.md``, ``entity_list_geocoded.csv`` and ``entity_list_unresolved.csv``.

Modules: :mod:`~analysis.shocks.config` (validated ``configs/shocks.yaml``), :mod:`~analysis.shocks.events`
(mid-year rule, ``post_<event>``), :mod:`~analysis.shocks.exposure` (pre-shock exposure and z-scores),
:mod:`~analysis.shocks.geocode` (entity -> province by rule, from the raw gazetteer),
:mod:`~analysis.shocks.entity_list` (readers for the transcription and the official CSL CSV; counts),
:mod:`~analysis.shocks.build` (assembly, codebook, summary).
"""

from analysis.shocks.build import build_shocks, shocks_codebook, shocks_summary
from analysis.shocks.config import load_config
from analysis.shocks.events import first_treated_year, post_indicators
from analysis.shocks.exposure import compute_exposure

__all__ = ["build_shocks", "shocks_codebook", "shocks_summary", "load_config", "first_treated_year",
           "post_indicators", "compute_exposure"]
