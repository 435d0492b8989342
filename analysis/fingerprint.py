"""Content fingerprints that decide whether a result must be recomputed: canonical JSON and a code version.

Used by the estimation stage (one fingerprint per model spec, stored in its JSON sidecar) and by the multiverse
cache (one key per specification). A fingerprint changes when, and only when, something that determines the
numbers changes: the resolved specification, an input file's bytes, the computing code, or the version of a
numerical package. Touching a file without changing it does not; editing a module the computation does not import
(a table formatter, a figure) does not.

What "the computing code" is, is derived, never listed by hand: :func:`code_files` follows the import graph of
the package from the computation's entry modules (:data:`analysis.estimate.ENGINE_ENTRIES` for the estimates,
:data:`analysis.multiverse.cache.CODE_ENTRIES` for a multiverse cell), statically (:mod:`ast`, nothing is
imported): every ``import analysis.x``, ``from analysis.x import y``, relative import (anywhere in the file, so
imports inside functions count) and every string literal that is exactly the dotted name of a package module (the
estimator registry imports its estimator modules by name, lazily). Every reached ``analysis/**.py`` file is included by
path, with the ``__init__.py`` of each package on the way (it runs on import). So a new engine module is covered
as soon as something on the estimation path imports it, whatever its name, and a module nothing there imports is
not. (Before: folders of code minus files excluded by base name, so a new engine file named ``sensitivity.py``
was silently left out.)
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import json
import re
import sys
from pathlib import Path
from typing import Iterable, NamedTuple

from analysis import paths

#: The package whose modules the import graph follows (third-party modules enter through their versions only).
PACKAGE = "analysis"
#: Packages whose versions enter the code version (numerical results may change with them). A fixed list, not
#: derived from the imports: the libraries we call compute with these (linearmodels and pyfixest through
#: statsmodels, numpy and scipy), and mapping import names to distributions costs about half a second. diff-diff
#: computes the synthetic DiD (analysis.models.sdid): a new diff-diff version may change its estimates.
NUMERICAL_PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "linearmodels", "pyfixest", "diff-diff")
#: A string literal naming a module (``"analysis.models.synth"``): the whole string is a dotted identifier.
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def canonical_json(obj) -> str:
    """Deterministic JSON: sorted keys, compact separators, floats by repr (exact round trip)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)


def module_file(module: str, root: Path = paths.ROOT) -> Path | None:
    """The source file of a dotted module name under ``root`` (``a/b.py`` or ``a/b/__init__.py``), None if neither
    exists (a name that is not a module of the package: a function imported from it, a third-party module)."""
    base = Path(root, *module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


class ModuleImports(NamedTuple):
    """What one source file needs, statically: ``eager`` package modules it imports when it is imported (imports
    at module level, in class bodies, decorators and defaults, and string literals naming a module there);
    ``lazy`` {top-level function or class name: package modules imported inside its body}; ``names`` the
    top-level names the file refers to, as (module, name): a name defined at the top of this file or imported
    from a package module, an attribute of a package module (``registry.estimate``, ``analysis.io.sha256``);
    (None, name) where the module is not known statically: an attribute of any other object, a string that is an
    identifier (the function names the registry passes to ``getattr``)."""

    eager: frozenset[str]
    lazy: dict[str, frozenset[str]]
    names: frozenset[tuple[str | None, str]]


def module_imports(path: Path, module: str, root: Path = paths.ROOT, package: str = PACKAGE) -> ModuleImports:
    """Parse ``path`` (the module ``module``) with :mod:`ast` and resolve its imports of ``package`` modules:
    ``import a.b`` (``a`` and ``a.b``), ``from a.b import c`` (``a.b.c`` if that is a module, else ``a.b``),
    relative imports resolved against ``module``, and string literals that are exactly a module's dotted name (the
    estimator registry imports its modules by name). Only names that resolve to a file under ``root`` count."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    # the package a relative import is relative to: the module itself if it is a package, else its parent
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]

    def resolve(name: str, into: set[str]) -> None:
        if (name == package or name.startswith(package + ".")) and module_file(name, root) is not None:
            into.add(name)

    def imports_in(nodes: Iterable[ast.AST]) -> frozenset[str]:
        found: set[str] = set()
        for top in nodes:
            for node in ast.walk(top):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        parts = alias.name.split(".")
                        for depth in range(1, len(parts) + 1):  # `import a.b.c` runs a, a.b and a.b.c
                            resolve(".".join(parts[:depth]), found)
                elif isinstance(node, ast.ImportFrom):
                    if node.level:
                        anchor = here[:len(here) - (node.level - 1)]
                        base = ".".join(anchor + (node.module.split(".") if node.module else []))
                    else:
                        base = node.module or ""
                    parts = base.split(".")
                    for depth in range(1, len(parts) + 1):
                        resolve(".".join(parts[:depth]), found)
                    for alias in node.names:
                        if alias.name != "*":
                            resolve(f"{base}.{alias.name}", found)
                elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and _MODULE_NAME.match(node.value):
                    resolve(node.value, found)
        found.discard(module)
        return frozenset(found)

    eager: list[ast.AST] = []
    lazy: dict[str, list[ast.AST]] = {}
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            # decorators and default values run at import; the body runs when the function is called
            eager += statement.decorator_list + statement.args.defaults + \
                [d for d in statement.args.kw_defaults if d is not None]
            lazy.setdefault(statement.name, []).extend(statement.body)
        elif isinstance(statement, ast.ClassDef):
            eager += statement.decorator_list + statement.bases + [k.value for k in statement.keywords]
            for item in statement.body:  # the class body runs at import, its methods when called
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    eager += item.decorator_list
                    lazy.setdefault(statement.name, []).extend(item.body)
                else:
                    eager.append(item)
        else:  # anything else at module level (if/try blocks included, whatever they define) runs at import
            eager.append(statement)
    # what each top-level name of this file is: a module (import ... as / from ... import <module>), a name
    # imported from a module, or defined here
    defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                    ast.ClassDef))}
    module_alias: dict[str, str] = {}
    imported_from: dict[str, tuple[str, str]] = {}
    names: set[tuple[str | None, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                module_alias[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname \
                    else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            anchor = here[:len(here) - (node.level - 1)] if node.level else []
            base = ".".join(anchor + (node.module.split(".") if node.module else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if module_file(target, root) is not None:
                    module_alias[alias.asname or alias.name] = target
                else:
                    imported_from[alias.asname or alias.name] = (base, alias.name)
                    names.add((base, alias.name))  # imported to be used
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id in imported_from:
                names.add(imported_from[node.id])
            elif node.id in defined:
                names.add((module, node.id))
        elif isinstance(node, ast.Attribute):
            chain, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                chain.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name) and (value.id in defined or value.id in imported_from):
                continue  # an attribute of a class (or function) the Name itself refers to: the class counts
            owner = module_alias.get(value.id) if isinstance(value, ast.Name) else None
            while owner is not None and len(chain) > 1 and module_file(f"{owner}.{chain[0]}", root) is not None:
                owner = f"{owner}.{chain.pop(0)}"
            names.add((owner, chain[0]) if owner is not None else (None, node.attr))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
            names.add((None, node.value))
    return ModuleImports(imports_in(eager), {name: imports_in(body) for name, body in lazy.items()},
                         frozenset(names))


def imported_modules(path: Path, module: str, root: Path = paths.ROOT, package: str = PACKAGE) -> list[str]:
    """Every package module ``path`` may import (eagerly or inside any of its functions), sorted."""
    found = module_imports(path, module, root, package)
    return sorted(found.eager.union(*found.lazy.values()))


def code_files(entries: Iterable[str], root: Path = paths.ROOT, package: str = PACKAGE) -> list[Path]:
    """Every source file of ``package`` that running the entry modules can execute, by the import graph
    (:func:`module_imports`), followed to a fixed point: a reached module's eager imports are reached, with the
    ``__init__.py`` of every package on the way (it runs first); the imports inside a top-level function or class of a
    reached module are reached once any reached module refers to that function or class by name (a call, an
    attribute, an imported name, a string passed to ``getattr``); every function of an entry module counts as
    called (the entries are the computation's API). So a configuration module whose *other* loaders
    import the figure code does not pull the figures into the estimates' fingerprint, while a lazy import on the
    path that runs does count. (A function called only through a registration decorator or a computed name would be
    missed; the package has none, and tests check that every estimator module is covered.) Sorted by path
    relative to ``root``, so the order does not depend on the walk. An entry that is not a module file under
    ``root`` is an error (a typo would otherwise fingerprint nothing)."""
    entries = tuple(entries)
    todo = []
    for entry in entries:
        if module_file(entry, root) is None:
            raise ValueError(f"entry module {entry!r} has no source file under {root}")
        todo.append(entry)
    parsed: dict[str, ModuleImports] = {}
    referenced: set[tuple[str | None, str]] = set()
    followed: set[tuple[str, str]] = set()
    while todo:
        while todo:
            module = todo.pop()
            if module in parsed:
                continue
            parsed[module] = found = module_imports(module_file(module, root), module, root, package)
            referenced |= found.names
            if module in entries:  # an entry's functions are its API: whoever runs it may call any of them
                referenced |= {(module, name) for name in found.lazy}
            parts = module.split(".")
            todo.extend(".".join(parts[:depth]) for depth in range(1, len(parts)))  # parent packages run first
            todo.extend(found.eager)
        for module, found in list(parsed.items()):  # lazy imports of the functions and classes now referred to
            for name, modules in found.lazy.items():
                if ((module, name) in referenced or (None, name) in referenced) and (module, name) not in followed:
                    followed.add((module, name))
                    todo.extend(m for m in modules if m not in parsed)
    return sorted({module_file(m, root) for m in parsed}, key=lambda p: p.relative_to(root).as_posix())


def code_version(entries: Iterable[str], root: Path = paths.ROOT) -> str:
    """SHA-256 over (relative path, content) of every file in :func:`code_files` of ``entries``, in path order, plus
    the versions of :data:`NUMERICAL_PACKAGES`. Content, not dates: touching a file changes nothing, any edit of a
    covered file (a docstring included) changes the version."""
    h = hashlib.sha256()
    for path in code_files(entries, root):
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


def make_fragment(variables: dict[str, Iterable[str]], root: Path = paths.ROOT) -> str:
    """Make variable definitions ``NAME := file file ...`` (paths relative to ``root``, in :func:`code_files` order),
    one per entry set, under a header that says how the file was made."""
    lines = ["# Generated by python -m analysis.fingerprint --make-rules (the import graph of analysis.fingerprint);",
             "# do not edit. Each variable lists the source files its entry modules reach: the code prerequisites.", ""]
    for name, entries in variables.items():
        files = " ".join(f.relative_to(root).as_posix() for f in code_files(entries, root))
        lines.append(f"{name} := {files}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m analysis.fingerprint MODULE...``: print the files :func:`code_files` derives for the entry modules,
    relative to the repository root, one per line. ``python -m analysis.fingerprint --make-rules FILE
    NAME=MODULE[,MODULE...]...``: write those lists as Make variables (:func:`make_fragment`) to FILE, atomically
    (the Makefile includes it; its code prerequisites are these lists)."""
    args = sys.argv[1:] if argv is None else list(argv)
    usage = ("usage: python -m analysis.fingerprint MODULE... | --make-rules FILE NAME=MODULE[,MODULE...]... "
             "(e.g. analysis.estimate)")
    out = None
    if args[:1] == ["--make-rules"]:
        if len(args) < 3 or any("=" not in a for a in args[2:]):
            print(usage, file=sys.stderr)
            return 2
        out, args = args[1], args[2:]
    elif not args or args[0].startswith("-"):
        print(usage, file=sys.stderr)
        return 2
    try:
        if out is None:
            files = code_files(args)
            print("\n".join(paths.relative(f) for f in files))
            return 0
        text = make_fragment({name: value.split(",") for name, value in (a.split("=", 1) for a in args)})
    except (ValueError, SyntaxError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from analysis.io import write_text

    write_text(text, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
