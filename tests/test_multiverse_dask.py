"""The multiverse on dask.distributed LocalClusters (2 workers, as CI runs it), on the real processed data:
caching (a second run computes nothing), identical results with 1 and 2 workers, agreement of one cell with a
direct call of the estimation engine on a panel built by the index stage's own path, and no leaked processes."""

from __future__ import annotations

import copy
import shutil

import dask
import numpy as np
import pandas as pd
import psutil
import pytest
import yaml

from analysis import paths
from analysis.index.build import build_indices, default_index
from analysis.index.config import load_config as load_index_config
from analysis.multiverse import __main__ as cli
from analysis.multiverse import cache, grid, runner, tasks
from distributed import get_task_stream

from test_multiverse_grid import SMALL  # tests/ is on sys.path (pytest rootdir-relative import)

# Chunks of 3 over 30 cells: 10 chunk tasks + 2 frame tasks, spread over both workers.
EXPECTED_TASKS = 2 + 2 * 5  # per index choice: 1 frame + ceil(15 / 3) chunks


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, stage_tree):
    """A scratch out-dir holding the three inputs (as the stage CLIs build them from the real raw files, conftest
    ``stage_tree``) and the small config."""
    out = tmp_path_factory.mktemp("multiverse")
    for name in (paths.PANEL.name, paths.SHOCKS.name, paths.ANALYSIS_PANEL.name):
        shutil.copy(stage_tree / name, out / name)
    (out / "mv.yaml").write_text(yaml.safe_dump(SMALL), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def prepared(workdir):
    index_config = load_index_config(paths.INDEX_CONFIG)
    config = grid.load_config(workdir / "mv.yaml", index_config)
    cells = grid.expand(config)
    window, base = tasks.prepare_inputs(pd.read_parquet(workdir / paths.PANEL.name),
                                        pd.read_parquet(workdir / paths.ANALYSIS_PANEL.name),
                                        pd.read_parquet(workdir / paths.SHOCKS.name), index_config,
                                        config.index_choices, columns=grid.needed_columns(cells))
    inputs = cache.input_fingerprints(cli.input_files(workdir, paths.INDEX_CONFIG))
    return index_config, config, cells, window, base, inputs, cache.code_version()


def _children() -> set[int]:
    """Child processes, except multiprocessing's resource tracker: one per interpreter, started with the first
    LocalCluster and kept for the session by design (not a leak)."""
    pids = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.is_running() and "resource_tracker" not in " ".join(child.cmdline()):
                pids.add(child.pid)
        except psutil.Error:  # exited meanwhile
            pass
    return pids


def test_cli_caches_second_run_computes_nothing(workdir):
    results, stats = cli.run(workdir / "mv.yaml", workdir, workdir / "figures", workers=2, progress=False)
    assert (stats.n_cells, stats.n_cached, stats.n_computed, stats.n_tasks) == (30, 0, 30, EXPECTED_TASKS)
    assert stats.n_errors == 0 and (results["error"] == "").all()
    assert results["spec_id"].is_monotonic_increasing
    assert len(list((workdir / cli.CACHE_NAME).glob("*.json"))) == 30
    assert (workdir / "figures" / "fig12_specification_curve.pdf").stat().st_size > 0
    first_bytes = (workdir / "multiverse_results.parquet").read_bytes()

    again, stats2 = cli.run(workdir / "mv.yaml", workdir, workdir / "figures", workers=2, progress=False)
    assert (stats2.n_cached, stats2.n_computed, stats2.n_tasks) == (30, 0, 0)
    assert (workdir / "multiverse_results.parquet").read_bytes() == first_bytes
    pd.testing.assert_frame_equal(results, again, check_exact=True)

    # one new sample: only its 10 cells are computed
    raw = copy.deepcopy(SMALL)
    raw["samples"]["drop_tibet"] = {"drop_units": [540000]}
    (workdir / "mv_plus.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    _, stats3 = cli.run(workdir / "mv_plus.yaml", workdir, None, workers=2, progress=False)
    assert (stats3.n_cells, stats3.n_cached, stats3.n_computed) == (40, 30, 10)


def test_one_and_two_workers_identical_and_no_leaked_processes(prepared):
    index_config, config, cells, window, base, inputs, code = prepared
    before = _children()
    frames = {}
    for workers in (1, 2):
        with runner.dask_client(None, workers) as client, get_task_stream(client) as stream:
            assert len(client.scheduler_info()["workers"]) == workers
            frames[workers], stats = runner.run_multiverse(cells, window, base, index_config, list(config.outcomes),
                                                           inputs, code, client, cache_dir=None, chunk_size=3,
                                                           progress=False)
            # the LocalCluster settings reach the worker processes (through their nannies) and the scheduler
            settings = client.run(lambda: {k: dask.config.get(k) for k in runner.LOCAL_CLUSTER_CONFIG})
            assert list(settings.values()) == [runner.LOCAL_CLUSTER_CONFIG] * workers
            assert not client.run_on_scheduler(lambda dask_scheduler: "stealing" in dask_scheduler.extensions)
        assert stats.n_computed == 30
        # every worker fitted chunks (the scheduler hands chunks to whichever worker is free)
        chunk_workers = {record["worker"] for record in stream.data if record["key"].startswith("fit_chunk-")}
        assert len(chunk_workers) == workers
    pd.testing.assert_frame_equal(frames[1], frames[2], check_exact=True)
    # the LocalCluster's worker and nanny processes are gone once the context exits
    leaked = [pid for pid in _children() - before if psutil.pid_exists(pid)
              and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert leaked == []


def test_cell_equals_direct_engine_call(prepared, workdir, tmp_path):
    """Path 1: the multiverse (index rebuilt by tasks.analysis_frame, fitted in-process by tasks.fit_cell).
    Path 2: the index stage's build_indices/default_index for that method, joined into the analysis panel in
    place of the default index, written to Parquet, and estimated by analysis.estimate.run from a spec file."""
    from analysis.estimate import run as estimate_run

    index_config, config, cells, window, base, inputs, code = prepared
    cell = next(c for c in cells if c.index.normalisation == "zscore_probit" and c.choices["controls"] == "macro"
                and c.choices["sample"] == "drop_guangdong" and c.choices["exposure"] == "exposure_defence_z")
    frame = tasks.analysis_frame(window, base, index_config, cell.index, config.outcomes)
    mine = tasks.fit_cell(frame, {"key": "k", "spec": cell.spec.model_copy(update={"id": "k"}), "drop_years": [],
                                  "term": cell.term})
    assert mine["error"] == ""

    method = cell.index.method()
    indices, _ = build_indices(pd.read_parquet(workdir / paths.PANEL.name),
                               index_config.with_methods({method.name: method}))
    wide = default_index(indices, index_config, method.name)
    panel = pd.read_parquet(workdir / paths.ANALYSIS_PANEL.name)
    panel = panel.drop(columns=[c for c in wide.columns if c not in ("province_code", "year")])
    panel = panel.merge(wide, on=["province_code", "year"], how="left", validate="one_to_one")
    panel.to_parquet(tmp_path / "panel.parquet", index=False)
    spec = {"estimator": "cont_did", "outcome": "capability_index", "exposure": "exposure_defence_z",
            "treatment": cell.spec.treatment, "controls": list(cell.spec.controls), "seed": 7,
            "sample": {"drop_units": [440000]}, "data": str(tmp_path / "panel.parquet")}
    (tmp_path / "direct.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    table = estimate_run(tmp_path / "direct.yaml", tmp_path / "direct.parquet")
    row = table.loc[table["term"] == cell.term].iloc[0]
    for field in ("estimate", "std_error", "ci_low", "ci_high", "p_value"):
        assert np.isclose(mine[field], row[field], rtol=1e-10, atol=1e-14), field
    assert mine["n_obs"] == row["n_obs"] == 30 * 7 - int(panel.loc[panel["province_code"] != 440000,
                                                                   ["capability_index", "gdp_per_capita",
                                                                    "urbanisation_pct"]].isna().any(axis=1).sum())


def test_default_index_cell_reproduces_the_analysis_panel_fit(prepared, workdir):
    """For the default index method the rebuilt frame must reproduce the analysis panel's capability index."""
    index_config, config, cells, window, base, inputs, code = prepared
    method = index_config.methods[index_config.default_method]   # whichever method configs/index.yaml makes default
    default = next(c for c in cells if (c.index.normalisation, c.index.weighting, c.index.aggregation,
                                        c.index.indicator_set) == (method.normalisation, method.weighting,
                                                                   method.aggregation, method.indicator_set))
    frame = tasks.analysis_frame(window, base, index_config, default.index, config.outcomes)
    panel = pd.read_parquet(workdir / paths.ANALYSIS_PANEL.name).sort_values(["province_code", "year"])
    panel = panel.reset_index(drop=True)
    np.testing.assert_allclose(frame["capability_index"], panel["capability_index"], rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(frame["exposure_defence_z"], panel["exposure_defence_z"])
