"""Estimate the model specs: ``python -m analysis.estimate --all configs/specs --out-dir data/processed/estimates``
(every spec whose result is stale, in one process) or ``--spec configs/specs/<id>.yaml --out <dir>/<id>.parquet``
(one spec, always).

Each spec reads the panel it names (``data:``, default ``data/processed/analysis_panel.parquet``), selects the
sample, runs the estimator, and writes tidy estimates (Parquet) plus a JSON sidecar beside them (same name,
``.json``) recording the resolved spec, SHA-256 of every input (panel and spec files), the seed, package versions
and a *fingerprint*: SHA-256 of {resolved spec, input hashes, version of the estimation code}. Estimators with
companion tables (synthetic control: the synthetic paths and the donor weights) also write
``<id>.<name>.parquet`` beside the estimates (listed in the sidecar), so figures and notebooks read them instead
of refitting. ``--all`` skips a spec whose files (companions included) exist and whose sidecar carries the
fingerprint it would write now, so editing one spec (or a
base spec that others ``extends``) re-estimates exactly the specs whose definition changed, and leaves the other
files untouched (their dependants in the Makefile are not rebuilt). One process for all specs also saves the
interpreter and library start-up (about half a second per spec). Files are written atomically; a rerun gives
identical bytes (no timestamps, sorted keys, fixed order).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import sys
import time
from pathlib import Path

import pandas as pd

from analysis import fingerprint, paths
from analysis.io import SPEC_ID, DataError, sha256, write_json, write_parquet
from analysis.models import checks, registry
from analysis.models.sample import load_data
from analysis.models.spec import Spec, data_path, resolve
from analysis.cli import guard, report

#: Entry modules of the estimation code: the code that enters the fingerprint is every package module these reach
#: through the import graph (:func:`analysis.fingerprint.code_files`; the registry names its estimator modules), so
#: a new estimator module is covered when the registry imports it, and a formatter nothing here imports is not.
ENGINE_ENTRIES = ("analysis.estimate",)

VERSIONED_PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "linearmodels", "pyfixest", "pyarrow", "pyyaml",
                      "wildboottest", "pysyncon", "diff-diff")


def package_versions() -> dict[str, str]:
    """Versions of Python and the estimation packages (``not installed`` where absent)."""
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def input_hashes(spec: Spec, data_file: Path, known: dict[Path, str] | None = None) -> dict[str, str]:
    """{relative path: SHA-256} of the panel the spec reads and of its spec files (``extends`` chain).
    ``known`` caches digests across specs that read the same panel."""
    known = {} if known is None else known
    files = [Path(data_file)] + [paths.ROOT / f if not Path(f).is_absolute() else Path(f) for f in spec.spec_files]
    inputs = {}
    for file in files:
        if file not in known:
            known[file] = sha256(file)
        inputs[paths.relative(file)] = known[file]
    return inputs


def spec_fingerprint(spec: Spec, inputs: dict[str, str], code: str) -> str:
    """SHA-256 of the canonical JSON of {resolved spec, input hashes, code version}: what the estimates depend on."""
    return fingerprint.digest({"spec": spec.canonical(), "inputs": inputs, "code": code})


def sidecar(spec: Spec, estimates: pd.DataFrame, inputs: dict[str, str], code: str,
            companions: dict[str, dict] | None = None) -> dict:
    """The JSON sidecar's content (no timestamps or machine paths, so it is reproducible); ``inputs`` from
    :func:`input_hashes`, ``code`` the version of the code :data:`ENGINE_ENTRIES` reach; ``companions``
    ``{name: {"file": file name, "n_rows": rows}}`` of the estimator's companion tables (the key is written only
    if there are any)."""
    side = {
        "spec_id": spec.id,
        "spec": spec.canonical(),
        "inputs_sha256": inputs,
        "seed": spec.seed,
        "versions": package_versions(),
        "fingerprint": spec_fingerprint(spec, inputs, code),
        "n_rows": int(len(estimates)),
        "terms": estimates["term"].tolist(),
    }
    if companions:
        side["companions"] = companions
    return side


def estimate_spec(spec: Spec, out_path: Path, code: str | None = None,
                  known: dict[Path, str] | None = None) -> pd.DataFrame:
    """Estimate an already resolved spec; write ``out_path``, its companion tables (``<stem>.<name>.parquet``, see
    :func:`analysis.paths.companion`) and its ``.json`` sidecar, the sidecar last; return the estimates."""
    df, data_file = load_data(spec)
    checks.check(df, spec)  # a design the estimator cannot identify is an error, not an estimate of 1e-18
    estimates, companions = registry.estimate_with_companions(df, spec)
    code = fingerprint.code_version(ENGINE_ENTRIES) if code is None else code
    listed = {name: {"file": paths.companion(out_path, name).name, "n_rows": int(len(table))}
              for name, table in sorted(companions.items())}
    side = sidecar(spec, estimates, input_hashes(spec, data_file, known), code, listed)
    for name, table in sorted(companions.items()):
        write_parquet(table, paths.companion(out_path, name))
    write_parquet(estimates, out_path)
    write_json(side, out_path.with_suffix(".json"))
    return estimates


def run(spec_path: Path, out_path: Path) -> pd.DataFrame:
    """Resolve the spec, estimate, and write ``out_path`` and its ``.json`` sidecar; returns the estimates."""
    return estimate_spec(resolve(spec_path), out_path)


def recorded_fingerprint(out_path: Path) -> str | None:
    """The fingerprint in the sidecar of ``out_path`` (None if the estimates, the sidecar or a companion table the
    sidecar lists is missing, or the sidecar is unreadable)."""
    side = out_path.with_suffix(".json")
    if not (out_path.is_file() and side.is_file()):
        return None
    try:
        record = json.loads(side.read_text(encoding="utf-8"))
        for entry in (record.get("companions") or {}).values():
            if not (out_path.parent / entry["file"]).is_file():
                return None
        return record.get("fingerprint")
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return None


def orphaned_estimates(spec_dir: Path, out_dir: Path) -> list[Path]:
    """Estimate files in ``out_dir`` (``<id>.parquet``, ``<id>.json``, companions ``<id>.<name>.parquet``) whose spec
    ``<spec_dir>/<id>.yaml`` no longer exists, in name order. They are left on disk (never deleted: a user may want
    them) but the tables and figures refuse a spec without its file, so they are never used."""
    ids = {f.stem for f in Path(spec_dir).glob("*.yaml")}
    return sorted(f for f in Path(out_dir).glob("*") if f.is_file() and f.suffix in (".parquet", ".json")
                  and f.name.split(".")[0] not in ids)


def run_all(spec_dir: Path, out_dir: Path, progress: bool = True, log=print) -> list[str]:
    """Estimate every spec in ``spec_dir`` whose result in ``out_dir`` is missing or stale; returns their ids.

    Every spec is resolved and validated first (a bad spec stops the run before anything is written); then the
    stale ones are estimated in name order. Up to date = both files exist and the sidecar's fingerprint equals
    :func:`spec_fingerprint` of the spec as it resolves now. Estimate files of deleted specs are reported
    (:func:`orphaned_estimates`).
    """
    from tqdm import tqdm

    spec_files = sorted(Path(spec_dir).glob("*.yaml"))
    for spec_file in spec_files:
        if not SPEC_ID.match(spec_file.stem):
            raise DataError(spec_file, f"spec file name {spec_file.name!r} is not a spec id (letters, digits, _ and -; "
                            "no spaces): make cannot track it; rename the file")
    if not spec_files:
        raise DataError(spec_dir, "no spec files (*.yaml) in this folder")
    specs = [resolve(f) for f in spec_files]
    for spec in specs:  # before anything is written
        checks.check_spec(spec)
    code = fingerprint.code_version(ENGINE_ENTRIES)
    known: dict[Path, str] = {}
    stale = []
    for spec_file, spec in zip(spec_files, specs):
        data_file = data_path(spec)
        if not Path(data_file).is_file():
            raise DataError(data_file, f"panel named by {paths.relative(spec_file)} not found")
        out_path = Path(out_dir) / f"{spec_file.stem}.parquet"
        current = spec_fingerprint(spec, input_hashes(spec, data_file, known), code)
        if recorded_fingerprint(out_path) != current:
            stale.append((spec_file, spec, out_path))
    log(f"{len(stale)} of {len(specs)} specs to estimate ({len(specs) - len(stale)} up to date)")
    for spec_file, spec, out_path in tqdm(stale, desc="specs", unit="spec", disable=not progress):
        start = time.perf_counter()
        try:
            estimate_spec(spec, out_path, code, known)
        except Exception as exc:
            exc.add_note(f"while estimating {paths.relative(spec_file)}")
            raise
        log(f"  {spec_file.stem}: {time.perf_counter() - start:.2f} s")
    orphans = orphaned_estimates(spec_dir, out_dir)
    if orphans:
        log(f"warning: {len(orphans)} orphaned estimate file(s) in {paths.relative(Path(out_dir))} (no spec file in "
            f"{paths.relative(Path(spec_dir))}; tables and figures refuse them; delete them or restore the spec): "
            + ", ".join(f.name for f in orphans))
    return [spec_file.stem for spec_file, _, _ in stale]


@guard
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--spec", type=Path, help="one spec YAML (configs/specs/<id>.yaml), always estimated")
    mode.add_argument("--all", type=Path, metavar="SPEC_DIR", help="every spec in SPEC_DIR whose result is stale")
    parser.add_argument("--out", type=Path, help="with --spec: estimates Parquet; the sidecar is <out>.json")
    parser.add_argument("--out-dir", type=Path, help="with --all: folder of <id>.parquet and <id>.json")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.all is not None:
        if args.out_dir is None:
            parser.error("--all needs --out-dir")
        try:
            run_all(args.all, args.out_dir, progress=not args.no_progress)
        except DataError as exc:
            return report(exc)
        return 0
    if args.out is None or args.out.suffix != ".parquet":
        parser.error("--spec needs --out ending in .parquet")
    try:
        estimates = run(args.spec, args.out)
    except DataError as exc:
        return report(exc)
    with pd.option_context("display.width", 160, "display.max_columns", 8):
        print(estimates[["term", "estimate", "std_error", "p_value", "n_obs"]].to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
