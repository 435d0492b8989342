"""The exhibit list (configs/exhibits.yaml): validation, the inputs each exhibit reads, and building one exhibit.

Each exhibit id is its output stem: ``figNN_<name>`` → ``<out-dir>/figNN_<name>.pdf`` and ``.png``;
``tabNN_<name>`` → ``.tex`` and ``.md``. ``kind`` picks the figure family; the keys a kind accepts are listed in
:data:`KINDS` (unknown keys and bad values stop the run, naming the file and the key). Every input file an exhibit
needs must exist: a missing estimate file is an error (named), never a silently skipped exhibit.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import paths
from analysis.io import SPEC_ID, DataError
from analysis.window import study_window

ID_PATTERN = re.compile(r"^(fig|tab)\d{2}_[a-z0-9_]+$")
#: kind -> (output type, {key: (type, required)}): the one list of what each kind accepts, beside the keys every
#: exhibit has (kind, caption, note, method, language); the file's model is built from it
#: (:func:`analysis.config_models_exhibits.exhibits_model`)
KINDS: dict[str, tuple[str, dict[str, tuple[type, bool]]]] = {
    "trajectories": ("fig", {"variable": (str, True), "years": (list, False)}),
    "maps": ("fig", {"variable": (str, True), "first_year": (int, False), "last_year": (int, False)}),
    "heatmap": ("fig", {"variable": (str, True), "years": (list, False)}),
    "event_study": ("fig", {"specs": (list, True), "labels": (list, False), "reference_period": (int, False),
                            "ylabel": (str, False)}),
    "synth": ("fig", {"spec": (str, True), "unit_label": (str, True), "placebo_rmspe_cutoff": (float, False)}),
    "coefficients": ("fig", {"spec": (str, True), "pooled_spec": (str, False), "ylabel": (str, False)}),
    "method_ranks": ("fig", {"variable": (str, False), "year": (int, False)}),
    "claims_check": ("fig", {}),
    "descriptives": ("tab", {"variables": (list, True), "years": (list, False), "label": (str, False)}),
}


@dataclass(frozen=True)
class Locations:
    """Where inputs live (defaults from analysis.paths; the CLI can point elsewhere, e.g. at test fixtures)."""

    processed: Path = paths.PROCESSED
    estimates: Path = paths.ESTIMATES
    specs: Path = paths.SPECS
    index_config: Path = paths.INDEX_CONFIG
    panel_config: Path = paths.PANEL_CONFIG


@dataclass
class Exhibit:
    id: str
    kind: str
    caption: str
    note: str
    options: dict = field(default_factory=dict)

    @property
    def output_type(self) -> str:
        return KINDS[self.kind][0]


def load_exhibits(path: str | Path) -> list[Exhibit]:
    """Read and validate configs/exhibits.yaml; returns the exhibits in file order.

    Keys, types, required keys per kind and allowed values are the file's model's
    (:func:`analysis.config_models_exhibits.exhibits_model` of :data:`KINDS`, one error style); here only what the model
    does not state: the id's form and its agreement with the kind's output type, numbers used once, a year span of
    two years, spec ids, one label per spec, and the study window put into captions and notes.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "exhibit list not found")
    from analysis import schema
    from analysis.config_models_exhibits import exhibits_model

    raw = schema.read_yaml(path) or {}
    cfg = schema.validate(exhibits_model(KINDS), raw, path)
    # {first_year} / {last_year} in a caption or note: the study window, so that moving it needs no text edit
    first, last = study_window()
    out, numbers = [], {}
    for exhibit_id, settings in cfg.exhibits.items():
        where, key = f"exhibit {exhibit_id!r}", f"exhibits.{exhibit_id}"
        if not ID_PATTERN.match(exhibit_id):
            raise DataError(path, f"{where}: id must look like figNN_name or tabNN_name", key=key)
        kind = settings.kind
        output_type, allowed = KINDS[kind]
        if not exhibit_id.startswith(output_type):
            raise DataError(path, f"{where}: kind {kind!r} produces a {output_type}, so the id must start with "
                            f"{output_type!r}", key=key)
        number = exhibit_id[:5]
        if number in numbers:
            raise DataError(path, f"{where}: number {number} already used by {numbers[number]!r}", key=key)
        numbers[number] = exhibit_id
        # the keys the file sets (a key left out takes the figure's default, not the model's None)
        options = {k: getattr(settings, k) for k in (*allowed, "method", "language") if k in settings.model_fields_set}
        if "years" in options and (len(options["years"]) != 2
                                   or not all(isinstance(y, int) and not isinstance(y, bool) for y in options["years"])):
            raise DataError(path, f"{where}: key 'years' must be [first_year, last_year]", key=f"{key}.years")
        for name in ("specs", "spec", "pooled_spec"):
            for spec_id in ([options[name]] if isinstance(options.get(name), str) else options.get(name) or []):
                if not isinstance(spec_id, str) or not SPEC_ID.match(spec_id):
                    raise DataError(path, f"{where}: {spec_id!r} is not a spec id (letters, digits, _ and -: the "
                                    "name of a file configs/specs/<id>.yaml)", key=f"{key}.{name}")
        if "labels" in options and len(options["labels"]) != len(options["specs"]):
            raise DataError(path, f"{where}: key 'labels' must have one label per spec", key=f"{key}.labels")
        text = {name: getattr(settings, name).replace("{first_year}", str(first)).replace("{last_year}", str(last))
                for name in ("caption", "note")}
        out.append(Exhibit(exhibit_id, kind, text["caption"], text["note"], options))
    return out


def index_settings(index_config: Path, panel_config: Path = paths.PANEL_CONFIG) -> dict:
    """``default_method`` from configs/index.yaml and ``years`` = the study window (configs/panel.yaml ``window``):
    the figures follow the index stage's choices (the file validated by its model, config_models.IndexFile)."""
    from analysis import config_models, schema

    cfg, _ = schema.load(config_models.IndexFile, index_config)
    return {"default_method": cfg.default_method, "years": list(study_window(panel_config))}


def input_files(exhibit: Exhibit, where: Locations) -> list[Path]:
    """Every file the exhibit reads (for the Makefile's prerequisites and for the missing-input check)."""
    o = exhibit.options
    files = {"trajectories": [where.processed / paths.INDICES_NAME],
             "maps": [where.processed / paths.INDICES_NAME],
             "heatmap": [where.processed / paths.INDICES_NAME],
             "event_study": [where.estimates / f"{s}.parquet" for s in o.get("specs", [])],
             "synth": synth_files(where, str(o.get("spec"))) + [where.processed / paths.PROVINCES_NAME],
             "coefficients": [where.estimates / f"{s}.parquet" for s in (o.get("spec"), o.get("pooled_spec")) if s],
             "method_ranks": [where.processed / paths.INDICES_NAME, where.processed / paths.INDEX_SENSITIVITY_NAME],
             "claims_check": [where.processed / paths.CLAIMS_CHECK_NAME],
             "descriptives": [where.processed / paths.PANEL_NAME, where.processed / paths.INDICES_NAME],
             }[exhibit.kind]
    return files + [where.index_config, where.panel_config]


def exhibit_specs(exhibit: Exhibit) -> list[str]:
    """The spec ids whose estimate files the exhibit reads (``specs``, ``spec``, ``pooled_spec``)."""
    o = exhibit.options
    return [*o.get("specs", []), *[o[k] for k in ("spec", "pooled_spec") if o.get(k)]]


def check_specs(exhibit: Exhibit, where: Locations) -> None:
    """Refuse an exhibit that names a spec whose ``<specs>/<id>.yaml`` is gone: its estimate file, if still on disk,
    is orphaned (``python -m analysis.estimate --all`` reports it) and must not be drawn as if current."""
    for spec_id in exhibit_specs(exhibit):
        if not (Path(where.specs) / f"{spec_id}.yaml").is_file():
            known = sorted(f.stem for f in Path(where.specs).glob("*.yaml"))
            close = difflib.get_close_matches(str(spec_id), known, n=1)
            raise DataError("configs/exhibits.yaml", f"exhibit {exhibit.id}: spec {spec_id!r} has no spec file "
                            f"{paths.relative(Path(where.specs) / (str(spec_id) + '.yaml'))}"
                            + (f" (did you mean {close[0]!r}?)" if close else "")
                            + "; its estimate file (if any) is orphaned and is not used", column=exhibit.id)


def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(path, "input file not found; build it first (see the Makefile)")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def source_note(exhibit: Exhibit, method: str | None) -> str:
    """The note printed under a figure: the exhibit's own note, the index method, and where it came from."""
    parts = [exhibit.note.strip()]
    if method:
        parts.append(f"Index method: {method} (configs/index.yaml).")
    parts.append(f"Exhibit {exhibit.id}, configs/exhibits.yaml; python -m analysis.figures.")
    return " ".join(parts)


def synth_files(where: Locations, spec_id: str) -> list[Path]:
    """The files a synthetic-control exhibit reads: the estimates, their sidecar (the resolved spec), and the
    companion tables the estimation stage wrote beside them (synthetic paths, donor weights)."""
    estimates = where.estimates / f"{spec_id}.parquet"
    return [estimates, estimates.with_suffix(".json"), paths.companion(estimates, "paths"),
            paths.companion(estimates, "weights")]


def synth_inputs(exhibit: Exhibit, where: Locations) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """(paths, estimates, weights, resolved spec) for a synthetic-control exhibit, read from the estimation stage's
    files.

    Nothing is refitted: the paths are the companion table written with the estimates. The treated unit's ATT in
    the paths must equal the estimate file's, else the files come from different runs and we stop.
    """
    estimates_file, sidecar_file, paths_file, weights_file = synth_files(where, exhibit.options["spec"])
    estimates = _read(estimates_file)
    if not sidecar_file.exists():
        raise DataError(sidecar_file, "sidecar of the estimates not found; rerun the spec (see the Makefile)")
    spec = json.loads(sidecar_file.read_text(encoding="utf-8"))["spec"]
    paths_frame = _read(paths_file)
    att_file = estimates.loc[estimates["term"] == "ATT", "estimate"]
    if att_file.empty:
        raise DataError(estimates_file, "no 'ATT' row", column="term")
    treated = paths_frame[(paths_frame["role"] == "treated") & paths_frame["post"].astype(bool)]
    att_paths = float(treated["gap"].mean())
    if not np.isclose(att_paths, float(att_file.iloc[0]), rtol=1e-6, atol=1e-9):
        raise DataError(estimates_file, f"ATT {float(att_file.iloc[0]):.6g} differs from the ATT {att_paths:.6g} of "
                        f"the synthetic paths in {paths_file.name}: the files are stale; rerun the spec",
                        column="estimate")
    return paths_frame, estimates, _read(weights_file), spec


def build(exhibit: Exhibit, where: Locations = Locations()):
    """Build one exhibit: a matplotlib Figure for ``fig`` ids, ``(latex, markdown)`` for ``tab`` ids."""
    from analysis.figures import (coefficients, descriptives, event_study, heatmap, maps, sensitivity, synth,
                                  trajectories)
    from analysis.figures.style import VARIABLE_LABELS, add_source_note

    check_specs(exhibit, where)
    for file in input_files(exhibit, where):
        if not file.exists():
            raise DataError(file, f"input of exhibit {exhibit.id} not found; build it first (see the Makefile)")
    settings = index_settings(where.index_config, where.panel_config)
    o = exhibit.options
    method = o.get("method", settings["default_method"])
    years = tuple(o.get("years", settings["years"]))
    language = o.get("language", "en")
    kind = exhibit.kind
    shown_method: str | None = method
    if kind in ("trajectories", "maps", "heatmap"):
        indices = _read(where.processed / paths.INDICES_NAME)
        if kind == "trajectories":
            fig = trajectories.plot_trajectories(indices, o["variable"], method, years, language)
        elif kind == "heatmap":
            fig = heatmap.plot_heatmap(indices, o["variable"], method, years, language)
        else:
            fig = maps.plot_index_maps(indices, o["variable"], method, o.get("first_year", years[0]),
                                       o.get("last_year", years[1]), language)
    elif kind == "event_study":
        labels = o.get("labels", o["specs"])
        series = {label: _read(where.estimates / f"{spec}.parquet") for label, spec in zip(labels, o["specs"])}
        fig = event_study.plot_event_study(series, o.get("reference_period", -1),
                                           ylabel=o.get("ylabel", "Effect on the index"))
        shown_method = None
    elif kind == "coefficients":
        pooled = _read(where.estimates / f"{o['pooled_spec']}.parquet") if o.get("pooled_spec") else None
        fig = coefficients.plot_coefficients(_read(where.estimates / f"{o['spec']}.parquet"), pooled,
                                             ylabel=o.get("ylabel", "Effect of one s.d. of exposure"))
        shown_method = None
    elif kind == "synth":
        paths_frame, estimates, weights, spec = synth_inputs(exhibit, where)
        provinces = _read(where.processed / paths.PROVINCES_NAME)
        fig = synth.plot_synth(paths_frame, o["unit_label"], spec["outcome"], o.get("placebo_rmspe_cutoff", 5.0),
                               estimates=estimates, weights=weights,
                               unit_names=dict(zip(provinces["province_code"], provinces["province_en"])))
    elif kind == "method_ranks":
        fig = sensitivity.plot_method_ranks(_read(where.processed / paths.INDICES_NAME),
                                            _read(where.processed / paths.INDEX_SENSITIVITY_NAME), method,
                                            o.get("variable", "capability_index"), o.get("year", years[1]), language)
    elif kind == "claims_check":
        fig = sensitivity.plot_claims_check(_read(where.processed / paths.CLAIMS_CHECK_NAME))
        shown_method = None
    else:  # descriptives
        panel = _read(where.processed / paths.PANEL_NAME)
        indices = _read(where.processed / paths.INDICES_NAME)
        index_vars = [v for v in o["variables"] if v in indices.columns and v not in panel.columns]
        wide = indices.loc[indices["method"] == method, ["province_code", "year", *index_vars]]
        frame = panel.merge(wide, on=["province_code", "year"], how="left", validate="one_to_one")
        table = descriptives.descriptives_by_theater(frame, o["variables"], years)
        note = source_note(exhibit, method if index_vars else None)
        labels = dict(VARIABLE_LABELS)
        labels.update(_codebook_labels(where.processed / paths.CODEBOOK_NAME))
        return (descriptives.to_latex(table, exhibit.caption, o.get("label", f"tab:{exhibit.id}"), note, labels),
                descriptives.to_markdown(table, exhibit.caption, note, labels))
    add_source_note(fig, source_note(exhibit, shown_method))
    return fig


def _codebook_labels(codebook: Path) -> dict[str, str]:
    """Variable → 'label (unit)' from the panel's codebook (empty if the codebook is absent)."""
    if not codebook.exists():
        return {}
    book = pd.read_csv(codebook)
    return {r.variable: f"{r.label_en} ({r.unit})" if isinstance(r.unit, str) else r.label_en
            for r in book.itertuples()}
