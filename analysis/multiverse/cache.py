"""Content-addressed cache of multiverse cells: one small JSON file per specification.

A cell's key is ``sha256(canonical JSON of {cell definition, input fingerprints, code version})``:

* the cell definition (:meth:`analysis.multiverse.grid.Cell.hash_payload`): index construction, resolved engine
  spec, dropped years and reported term — not the display names of the choices;
* the SHA-256 of every input file (panel, shocks, analysis panel, index configuration);
* the code version (:func:`code_version`): SHA-256 over the source of the modules that compute a cell (the index
  builder, the estimation engine, the multiverse task code: whatever the task and grid modules import) and the
  versions of the numerical packages.

So a rerun computes only cells whose definition, data or code changed. The cache holds numbers only; the choice
names are attached from the current grid, so renaming a sample or a control set recomputes nothing. Canonical JSON
(sorted keys, no whitespace, floats by ``repr``) makes the key stable across runs, machines and Python hash seeds.
Cache files are written by the driver (never by workers: tasks stay pure), atomically.

Integrity: each file stores, beside the result, ``sha256`` = SHA-256 of the canonical JSON of ``{key, result}``
(:func:`entry_digest`), and :func:`read_cached` recomputes it: a hand-edited number, a truncated file, or a file
copied under another cell's name fails the check, counts as absent and is recomputed (the run logs one warning line
listing such files). Failed cells (a non-empty ``error``) are never cached: a failure may be transient or fixed by
the next code change, and a rerun retries it. The digest guards against accidents, not against someone who edits a
file and recomputes its digest.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Iterable, Mapping

from analysis import fingerprint, paths
from analysis.fingerprint import canonical_json
from analysis.io import sha256, write_text

#: Entry modules of a cell's computation: the task code (index builder, estimation engine) and the grid that defines
#: the cells. The code version covers every package module they reach through the import graph
#: (:func:`analysis.fingerprint.code_files`), not a list of files.
CODE_ENTRIES = ("analysis.multiverse.tasks", "analysis.multiverse.grid")
#: Result fields a cache file holds (numbers and the error text, if the engine failed on the cell).
RESULT_FIELDS = ("estimate", "std_error", "ci_low", "ci_high", "p_value", "n_obs", "n_clusters", "error")


def code_version(root: Path = paths.ROOT, entries: Iterable[str] = CODE_ENTRIES) -> str:
    """The version of the code that computes a cell (:func:`analysis.fingerprint.code_version` of
    :data:`CODE_ENTRIES`): SHA-256 over the source of every package module they import, directly or not, and the
    numerical packages' versions."""
    return fingerprint.code_version(entries, root)


def input_fingerprints(files: Mapping[str, str | os.PathLike]) -> dict[str, str]:
    """{role: sha256} for the named input files (role names, not paths, so moving the repository changes nothing)."""
    return {role: sha256(path) for role, path in sorted(files.items())}


def cell_hash(payload: Mapping, inputs: Mapping[str, str], code: str) -> str:
    """The cell's key: SHA-256 hex of the canonical JSON of its definition, input fingerprints and code version."""
    return hashlib.sha256(canonical_json({"cell": payload, "inputs": dict(inputs), "code": code}).encode()).hexdigest()


def spec_id(payload: Mapping) -> str:
    """The content id of a specification: SHA-256 hex of the canonical JSON of its definition only (no inputs, no
    code version). The results are ordered by it, so an edit of the engine's code (which changes every cache key)
    leaves the row order of the outputs unchanged; only a change of the definitions reorders them."""
    return hashlib.sha256(canonical_json(dict(payload)).encode()).hexdigest()


def cache_file(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / f"{key}.json"


#: Field of a cache file holding its digest (:func:`entry_digest`).
DIGEST_FIELD = "sha256"


def _record(result: Mapping) -> dict:
    """The cached fields of a result, floats as floats (None and NaN as NaN, which JSON round-trips as NaN)."""
    record = {field: result[field] for field in RESULT_FIELDS}
    for field in ("estimate", "std_error", "ci_low", "ci_high", "p_value", "n_clusters"):
        value = record[field]
        record[field] = float(value) if value is not None and not (isinstance(value, float) and math.isnan(value)) \
            else float("nan")
    return record


def entry_digest(key: str, record: Mapping) -> str:
    """SHA-256 hex of the canonical JSON of ``{"key": key, "result": record}``: binds the numbers to the cell."""
    return hashlib.sha256(canonical_json({"key": key, "result": dict(record)}).encode()).hexdigest()


def read_cached(cache_dir: Path | None, key: str, problems: list[str] | None = None) -> dict | None:
    """The cached result for ``key``, or None when there is none to trust.

    Absent files count as absent silently. A file that exists but is unreadable, not a JSON object, lacks a result
    field or the digest, fails its digest (:func:`entry_digest`: a hand edit, a partial write, another cell's file)
    or holds a failure (written before failures stopped being cached) also counts as absent, and its problem
    (``<file>: <what>``) is appended to ``problems`` when a list is given, so the caller can report it."""
    if cache_dir is None:
        return None
    path = cache_file(cache_dir, key)

    def bad(what: str) -> None:
        if problems is not None:
            problems.append(f"{paths.relative(path)}: {what}")

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return bad(f"unreadable ({type(exc).__name__})")
    try:
        entry = json.loads(text)
    except ValueError:
        return bad("not valid JSON")
    if not isinstance(entry, dict) or any(field not in entry for field in RESULT_FIELDS):
        return bad(f"not a cache entry (needs the fields {list(RESULT_FIELDS)})")
    stored = entry.get(DIGEST_FIELD)
    record = {field: entry[field] for field in RESULT_FIELDS}
    if stored is None:
        return bad("no digest (written by an older version)")
    try:
        matches = stored == entry_digest(key, _record(record))
    except (TypeError, ValueError):  # a field of the wrong type (e.g. a string where a number belongs)
        matches = False
    if not matches or set(entry) != set(RESULT_FIELDS) | {DIGEST_FIELD}:
        return bad("digest does not match the contents (edited, truncated or another cell's file)")
    if record["error"]:
        return bad("holds a failed fit (failures are not cached)")
    return record


def write_cached(cache_dir: Path, key: str, result: Mapping) -> None:
    """Store one cell's successful result atomically with its digest (floats exact; NaN as JSON NaN). Raises
    ValueError for a failed result (non-empty ``error``): failures are not cached."""
    if result["error"]:
        raise ValueError(f"cell {key}: failed fits are not cached ({result['error'][:100]})")
    record = _record(result)
    write_text(canonical_json({**record, DIGEST_FIELD: entry_digest(key, record)}) + "\n", cache_file(cache_dir, key))
