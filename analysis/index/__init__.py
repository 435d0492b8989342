"""Dual-use (military–civil) technology transfer-capability indices (stage ``python -m analysis.index``).

Public API for later stages:

- :func:`load_config` — configs/index.yaml as a validated :class:`IndexConfig`;
- :func:`build_indices` ``(panel, config) -> (indices_long, weights)`` — every configured method;
- :func:`default_index` ``(indices, config) -> wide`` — province_code, year, u_military, u_civil,
  capability_index, coupling_corrected, coordination_corrected, transfer_civ_to_mil, transfer_mil_to_civ, … for
  the default method, to join into the analysis panel;
- :class:`Method` / :func:`method_from_dict` — one construction (normalisation × weighting × aggregation ×
  indicator set), for a multiverse (``config.with_methods({...})``).
"""

from analysis.index.build import DEFAULT_INDEX_COLUMNS, build_indices, build_method, default_index
from analysis.index.config import IndexConfig, Method, Period, load_config, method_from_dict, parse_config

__all__ = ["DEFAULT_INDEX_COLUMNS", "IndexConfig", "Method", "Period", "build_indices", "build_method",
           "default_index", "load_config", "method_from_dict", "parse_config"]
