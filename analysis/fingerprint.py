"""Content fingerprints that decide whether a result must be recomputed: canonical JSON and a code version.

Used by the estimation stage (one fingerprint per model spec, stored in its JSON sidecar) and by the multiverse
cache (one key per specification). A fingerprint changes when, and only when, something that determines the
numbers changes: the resolved specification, an input file's bytes, the computing code, or the version of a
numerical package. Editing a docstring in a table formatter or touching a file without changing it does not.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path
from typing import Iterable

from analysis import paths

#: File names that only format or report (tables, CLIs, claims checks, synthetic test data): editing them must not
#: invalidate computed results.
CODE_EXCLUDED_NAMES = ("tables.py", "__main__.py", "claims.py", "sensitivity.py", "synthetic.py")
#: Packages whose versions enter the code version (numerical results may change with them).
NUMERICAL_PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "linearmodels", "pyfixest")


def canonical_json(obj) -> str:
    """Deterministic JSON: sorted keys, compact separators, floats by repr (exact round trip)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)


def code_version(sources: Iterable[str], root: Path = paths.ROOT,
                 excluded_names: Iterable[str] = CODE_EXCLUDED_NAMES) -> str:
    """SHA-256 over (relative path, content) of every ``.py`` file under ``sources`` (folders or files, relative to
    ``root``; files named in ``excluded_names`` skipped), plus the versions of :data:`NUMERICAL_PACKAGES`."""
    excluded = set(excluded_names)
    h = hashlib.sha256()
    files: list[Path] = []
    for source in sources:
        path = root / source
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    for path in sorted(set(files)):
        if "__pycache__" in path.parts or path.name in excluded:
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


def digest(obj) -> str:
    """SHA-256 hex of the canonical JSON of ``obj``."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()
