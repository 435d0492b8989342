"""Content-addressed cache of multiverse cells: one small JSON file per specification.

A cell's key is ``sha256(canonical JSON of {cell definition, input fingerprints, code version})``:

* the cell definition (:meth:`analysis.multiverse.grid.Cell.hash_payload`): index construction, resolved engine
  spec, dropped years and reported term — not the display names of the choices;
* the SHA-256 of every input file (panel, shocks, analysis panel, index configuration);
* the code version (:func:`code_version`): SHA-256 over the source of the modules that compute a cell (the index
  builder, the estimation engine, the multiverse task code) and the versions of the numerical packages.

So a rerun computes only cells whose definition, data or code changed. The cache holds numbers only; the choice
names are attached from the current grid, so renaming a sample or a control set recomputes nothing. Canonical JSON
(sorted keys, no whitespace, floats by ``repr``) makes the key stable across runs, machines and Python hash seeds.
Cache files are written by the driver (never by workers: tasks stay pure), atomically.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import os
from pathlib import Path
from typing import Iterable, Mapping

from analysis import paths
from analysis.io import sha256, write_text

#: Source folders/files whose code determines a cell's numbers (relative to the repository root).
CODE_SOURCES = ("analysis/index", "analysis/models", "analysis/multiverse/grid.py", "analysis/multiverse/tasks.py",
                "analysis/io.py", "analysis/provinces.py")
#: File names under CODE_SOURCES that only format or report (tables, CLIs, claims checks, synthetic test data):
#: editing them must not invalidate computed cells.
CODE_EXCLUDED_NAMES = ("tables.py", "__main__.py", "claims.py", "sensitivity.py", "synthetic.py")
#: Packages whose versions enter the code version (numerical results may change with them).
NUMERICAL_PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "linearmodels", "pyfixest")

#: Result fields a cache file holds (numbers and the error text, if the engine failed on the cell).
RESULT_FIELDS = ("estimate", "std_error", "ci_low", "ci_high", "p_value", "n_obs", "n_clusters", "error")


def canonical_json(obj) -> str:
    """Deterministic JSON: sorted keys, compact separators, floats by repr (exact round trip)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)


def code_version(root: Path = paths.ROOT, sources: Iterable[str] = CODE_SOURCES) -> str:
    """SHA-256 over (relative path, content) of every ``.py`` file under ``sources`` (except
    :data:`CODE_EXCLUDED_NAMES`), plus the versions of :data:`NUMERICAL_PACKAGES`."""
    h = hashlib.sha256()
    files: list[Path] = []
    for source in sources:
        path = root / source
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    for path in sorted(set(files)):
        if "__pycache__" in path.parts or path.name in CODE_EXCLUDED_NAMES:
            continue
        h.update(path.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    for package in NUMERICAL_PACKAGES:
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = "absent"
        h.update(f"{package}=={version}\0".encode())
    return h.hexdigest()


def input_fingerprints(files: Mapping[str, str | os.PathLike]) -> dict[str, str]:
    """{role: sha256} for the named input files (role names, not paths, so moving the repository changes nothing)."""
    return {role: sha256(path) for role, path in sorted(files.items())}


def cell_hash(payload: Mapping, inputs: Mapping[str, str], code: str) -> str:
    """The cell's key: SHA-256 hex of the canonical JSON of its definition, input fingerprints and code version."""
    return hashlib.sha256(canonical_json({"cell": payload, "inputs": dict(inputs), "code": code}).encode()).hexdigest()


def cache_file(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / f"{key}.json"


def read_cached(cache_dir: Path | None, key: str) -> dict | None:
    """The cached result for ``key``, or None (absent, unreadable or incomplete files count as absent)."""
    if cache_dir is None:
        return None
    path = cache_file(cache_dir, key)
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(result, dict) or any(field not in result for field in RESULT_FIELDS):
        return None
    return result


def write_cached(cache_dir: Path, key: str, result: Mapping) -> None:
    """Store one cell's result atomically (floats exact; NaN written as JSON NaN, which json reads back)."""
    record = {field: result[field] for field in RESULT_FIELDS}
    for field in ("estimate", "std_error", "ci_low", "ci_high", "p_value", "n_clusters"):
        value = record[field]
        record[field] = float(value) if value is not None and not (isinstance(value, float) and math.isnan(value)) \
            else float("nan")
    write_text(canonical_json(record) + "\n", cache_file(cache_dir, key))
