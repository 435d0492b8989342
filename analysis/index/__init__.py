"""Dual-use (military–civil) technology transfer-capability indices (stage ``python -m analysis.index``).

Public API for later stages:

- :func:`load_config` — configs/index.yaml as a validated :class:`IndexConfig`;
- :func:`build_indices` ``(panel, config) -> (indices_long, weights)`` — every configured method;
- :func:`default_index` ``(indices, config) -> wide`` — province_code, year, u_military, u_civil,
  capability_index, coupling_corrected, coordination_corrected, transfer_civ_to_mil, transfer_mil_to_civ, … for
  the default method, to join into the analysis panel;
- :class:`Method` / :func:`method_from_dict` — one construction (normalisation × weighting × aggregation ×
  indicator set), for a multiverse (``config.with_methods({...})``).

What the columns measure: ``u_military`` and ``u_civil`` keep the study's labels, but with public yearbook data the
"military" subsystem is the state/public-research-oriented part of a province's S&T system (government-funded R&D,
basic research, science budgets, SCI papers) and the "civil" one the business/market-oriented part; the directional
transfers (``transfer_civ_to_mil``, ``transfer_mil_to_civ``) combine those two. Between provinces all of them mostly
measure the size of the R&D system (``data/processed/index_validity.md``, :mod:`analysis.index.validity`); only the
``core_defence`` indicator set adds a defence-specific indicator (listed defence-industry firms).
"""

from analysis.index.build import DEFAULT_INDEX_COLUMNS, build_indices, build_method, default_index
from analysis.index.config import IndexConfig, Method, Period, load_config, method_from_dict, parse_config

__all__ = ["DEFAULT_INDEX_COLUMNS", "IndexConfig", "Method", "Period", "build_indices", "build_method",
           "default_index", "load_config", "method_from_dict", "parse_config"]
