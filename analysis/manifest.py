"""Verify raw data against the manifest (``configs/data_sources.yaml``) and register replacement files.

``python -m analysis.manifest verify`` stops with a message naming the file when a listed file is missing, a file
under ``data/raw/`` is not listed, a SHA-256 differs, or a CSV does not decode in its declared encoding; on success it
writes the stamp ``data/processed/.raw_verified`` (the Makefile's first target).

``python -m analysis.manifest register data/raw/<path> --origin "..."`` records a replacement file's new hash (keeping
the previous hash and the date under ``replaces``), so the cleaning stage's schema checks — not the hash — decide
whether the new file is usable. The checksum list received with the data, ``data/raw/SHA256SUMS`` (``sha256sum -c``
format), is kept in step: its line for the file is replaced (or added), and its own manifest entry re-hashed, so
``cd data/raw && sha256sum -c SHA256SUMS`` and the manifest never disagree. (Where a copy of the data has no
SHA256SUMS, nothing is written there.) These are the only writes to ``data/raw/`` by code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import re
import sys
from pathlib import Path

import yaml

from analysis import paths
from analysis.io import DataError, sha256, write_text
from analysis.cli import guard, report

#: Environment variables ``make register FILE=… ORIGIN=… LICENCE=…`` sets (values never pass through a shell).
REGISTER_ENV = {"file": "DUALUSE_REGISTER_FILE", "origin": "DUALUSE_REGISTER_ORIGIN",
                "licence": "DUALUSE_REGISTER_LICENCE"}


def load_manifest(manifest: Path = paths.DATA_SOURCES) -> list[dict]:
    """Read and validate the manifest (:class:`analysis.config_models.DataSourcesFile`: a list of file entries with a
    non-empty path, origin and licence and a SHA-256 of 64 hex digits); a path listed twice is an error too."""
    from analysis import config_models, schema

    doc = schema.read_yaml(manifest)
    schema.validate(config_models.DataSourcesFile, doc, manifest)
    seen: dict[str, int] = {}
    for i, entry in enumerate(doc["files"]):
        if entry["path"] in seen:
            raise DataError(manifest, f"{entry['path']} is listed twice (first as files[{seen[entry['path']]}])",
                            key=f"files[{i}].path")
        seen[entry["path"]] = i
    return doc["files"]


def verify(raw_dir: Path = paths.RAW, manifest: Path = paths.DATA_SOURCES) -> int:
    """Check every raw file against the manifest; return the number of files verified, or raise DataError."""
    entries = load_manifest(manifest)
    listed = {e["path"] for e in entries}
    on_disk = {p.relative_to(raw_dir).as_posix() for p in Path(raw_dir).rglob("*") if p.is_file()}
    for rel in sorted(on_disk - listed):
        raise DataError(Path(raw_dir) / rel, "file is not listed in configs/data_sources.yaml; add it with "
                        "`make register FILE=...` (and an origin and licence) or remove it")
    for entry in entries:
        path = Path(raw_dir) / entry["path"]
        if not path.exists():
            raise DataError(path, "listed in configs/data_sources.yaml but missing; copy it from ../shared/data "
                            "(see data/raw/README.md)")
        digest = sha256(path)
        if digest != entry["sha256"]:
            raise DataError(path, f"SHA-256 {digest[:12]}… differs from the manifest's {entry['sha256'][:12]}…: the file "
                            "was altered. Restore it, or register a deliberate replacement with `make register FILE=...`")
        if entry.get("encoding"):
            encoding = "utf-8-sig" if entry["encoding"] == "utf-8" else entry["encoding"]
            check_encoding(path, encoding)
    return len(entries)


def check_encoding(path: Path, encoding: str) -> None:
    """Raise DataError naming the line where ``path`` stops decoding as ``encoding``."""
    data = Path(path).read_bytes()
    try:
        data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(path, f"does not decode as {encoding} (byte {err.start}: {err.reason})", row=line) from None


def register(file: Path, origin: str | None, licence: str | None, manifest: Path = paths.DATA_SOURCES,
             raw_dir: Path = paths.RAW, today: dt.date | None = None) -> dict:
    """Record ``file``'s hash in the manifest (new entry or replacement); return the entry written.

    ``origin`` and ``licence`` are recorded verbatim (they reach here through the environment, never a shell command
    line, see the Makefile's ``register``). A replaced hash, origin or licence is kept under ``replaces``. A missing
    file, a directory or a path outside ``raw_dir`` stops with a DataError.
    """
    given = Path(file)
    file = given.resolve()
    if not file.exists():
        raise DataError(given, "no such file; give the path of a file under data/raw/")
    if not file.is_file():
        raise DataError(given, "is a directory (or not a regular file); register one file at a time")
    try:
        rel = file.relative_to(Path(raw_dir).resolve()).as_posix()
    except ValueError:
        raise DataError(given, f"is outside {paths.relative(Path(raw_dir))}/; copy it there first, then register "
                        "it") from None
    for name, value in (("origin", origin), ("licence", licence)):
        if value is not None and (not value.strip() or "\x00" in value):
            raise DataError(given, f"the {name} is empty or holds a NUL character", key=name)
    text = Path(manifest).read_text(encoding="utf-8")
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    entries = load_manifest(manifest)
    digest = sha256(file)
    stamp = (today or dt.date.today()).isoformat()
    for entry in entries:
        if entry["path"] == rel:
            old = {"sha256": entry["sha256"], "origin": entry["origin"], "licence": entry["licence"]}
            new = {"sha256": digest, "origin": origin or entry["origin"], "licence": licence or entry["licence"]}
            if new != old:
                # the previous values are kept, so a replacement never erases where the old file came from
                entry.setdefault("replaces", []).append({**old, "replaced_on": stamp})
                entry.update(new)
            break
    else:
        if not origin or not licence:
            raise DataError(file, "a new raw file needs --origin and --licence")
        entry = {"path": rel, "sha256": digest, "origin": origin, "licence": licence, "added_on": stamp}
        entries.append(entry)
        entries.sort(key=lambda e: e["path"])
    sums = None
    if rel != CHECKSUMS:
        sums = checksums_text(Path(raw_dir) / CHECKSUMS, rel, digest)
        if sums is not None:
            sums_digest = hashlib.sha256(sums.encode("utf-8")).hexdigest()
            for own in entries:
                if own["path"] == CHECKSUMS and own["sha256"] != sums_digest:
                    own.setdefault("replaces", []).append({"sha256": own["sha256"], "origin": own["origin"],
                                                           "licence": own["licence"], "replaced_on": stamp})
                    own["sha256"] = sums_digest
    body = yaml.safe_dump({"files": entries}, allow_unicode=True, sort_keys=False, width=1000)
    if sums is not None:  # first the list, then the manifest that vouches for it
        write_text(sums, Path(raw_dir) / CHECKSUMS)
    write_text(header + body, manifest)
    return entry


#: The checksum list shipped with the raw data (``<sha256>  ./<path>`` lines, C-locale path order).
CHECKSUMS = "SHA256SUMS"
_CHECKSUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](?:\./)?(.+)$")


def checksums_text(path: Path, rel: str, digest: str) -> str | None:
    """The text of the checksum list ``path`` with ``rel``'s digest set to ``digest`` (None if there is no list).

    Lines are rewritten as ``<digest>  ./<path>`` in path order, as received, so a list that already holds the
    digest comes back byte-identical. A line that is not ``sha256sum`` output is a DataError naming its row.
    """
    if not path.is_file():
        return None
    digests = {}
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = _CHECKSUM_LINE.match(line)
        if match is None:
            raise DataError(path, f"not a sha256sum line: {line[:60]!r}; restore the list as received", row=row)
        digests[match.group(2)] = match.group(1)
    digests[rel] = digest
    return "".join(f"{d}  ./{p}\n" for p, d in sorted(digests.items()))


@guard
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.manifest", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="verify data/raw against the manifest and write the stamp")
    v.add_argument("--stamp", type=Path, default=paths.RAW_VERIFIED_STAMP)
    r = sub.add_parser("register", help="record a new or replacement raw file")
    r.add_argument("file", type=Path, nargs="?", help=f"the raw file (default: ${REGISTER_ENV['file']})")
    r.add_argument("--origin", help=f"where the file came from (default: ${REGISTER_ENV['origin']})")
    r.add_argument("--licence", help=f"its licence (default: ${REGISTER_ENV['licence']})")
    args = parser.parse_args(argv)
    if args.command == "register":
        # `make register` passes the values through the environment, so no shell ever parses them
        args.file = args.file or (Path(os.environ[REGISTER_ENV["file"]]) if os.environ.get(REGISTER_ENV["file"])
                                  else None)
        args.origin = args.origin if args.origin is not None else os.environ.get(REGISTER_ENV["origin"]) or None
        args.licence = args.licence if args.licence is not None else os.environ.get(REGISTER_ENV["licence"]) or None
        if args.file is None:
            parser.error("register needs a file: make register FILE=data/raw/<path> ORIGIN='...' [LICENCE='...']")
    try:
        if args.command == "verify":
            n = verify()
            write_text(f"{n} raw files verified against configs/data_sources.yaml\n", args.stamp)
            print(f"raw data: {n} files match configs/data_sources.yaml")
        else:
            entry = register(args.file, args.origin, args.licence)
            print(f"registered {entry['path']} sha256={entry['sha256']}")
    except DataError as err:
        return report(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
