"""Multiverse failures and cache integrity, on the small grid of test_multiverse_grid (30 cells) with the fits
replaced by a known function of each cell, so every number is known in advance and no data are read:

* failed cells are never cached (a rerun recomputes exactly them);
* a cache file whose numbers were edited by hand (999) is detected by its digest, recomputed, and reported;
* above ``max_failure_share`` the CLI exits 2, naming how many cells failed and why, and writes nothing.

The cluster is dask's in-process one (``processes=False``), so that the replaced task functions are the ones that
run; everything else is the runner's and the CLI's own code."""

from __future__ import annotations

import contextlib
import copy
import json
import logging

import pandas as pd
import pytest
import yaml
from distributed import Client

from analysis import paths
from analysis.index.config import load_config as load_index_config
from analysis.multiverse import __main__ as cli
from analysis.multiverse import cache, grid, runner, tasks

from test_multiverse_grid import SMALL  # tests/ is on sys.path

N_CELLS = 30
N_FAILING = 10  # the drop_2020 sample: 1 of the 3 samples


def known_estimate(key: str) -> float:
    """The 'estimate' the fake fit returns for a cell: a function of its cache key only."""
    return int(key[:8], 16) / 2 ** 32


def fake_analysis_frame(window, base, index_config, index_choice, outcomes) -> pd.DataFrame:
    return pd.DataFrame({"index": [index_choice.name]})


def fake_fit_chunk(frame, cells_json) -> list[tuple[str, dict]]:
    """Cells that drop years (the drop_2020 sample) fail; the others return :func:`known_estimate`."""
    out = []
    for cell in json.loads(cells_json):
        failed = bool(cell["drop_years"])
        value = float("nan") if failed else known_estimate(cell["key"])
        out.append((cell["key"], {"estimate": value, "std_error": 0.5, "ci_low": value - 1, "ci_high": value + 1,
                                  "p_value": 0.5, "n_obs": None if failed else 217, "n_clusters": 31.0,
                                  "error": "ValueError: deliberate failure (drops 2020)" if failed else ""}))
    return out


@pytest.fixture(scope="module")
def client():
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
        yield c


@pytest.fixture
def fake_tasks(monkeypatch):
    monkeypatch.setattr(tasks, "analysis_frame", fake_analysis_frame)
    monkeypatch.setattr(tasks, "fit_chunk", fake_fit_chunk)


@pytest.fixture(scope="module")
def small():
    index_config = load_index_config(paths.INDEX_CONFIG)
    config = grid.parse_config(copy.deepcopy(SMALL), index_config)
    return index_config, config, grid.expand(config), cache.code_version()


def _run(small, client, cache_dir):
    index_config, config, cells, code = small
    inputs = {"panel": "a" * 64}
    return runner.run_multiverse(cells, pd.DataFrame(), pd.DataFrame(), index_config, list(config.outcomes), inputs,
                                 code, client, cache_dir, chunk_size=4, progress=False)


def test_failures_are_not_cached_and_are_retried(small, client, fake_tasks, tmp_path):
    results, stats = _run(small, client, tmp_path)
    assert (stats.n_cells, stats.n_computed, stats.n_errors) == (N_CELLS, N_CELLS, N_FAILING)
    ok = results.loc[results["error"] == ""]
    assert len(ok) == N_CELLS - N_FAILING
    assert ok["estimate"].tolist() == [known_estimate(k) for k in ok["spec_hash"]]
    # only the successes are on disk
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == sorted(ok["spec_hash"])
    again, stats2 = _run(small, client, tmp_path)
    assert (stats2.n_cached, stats2.n_computed, stats2.n_errors) == (N_CELLS - N_FAILING, N_FAILING, N_FAILING)
    pd.testing.assert_frame_equal(results, again, check_exact=True)


def test_hand_edited_cache_entry_is_recomputed_and_reported(small, client, fake_tasks, tmp_path, caplog):
    results, _ = _run(small, client, tmp_path)
    key = results.loc[results["error"] == "", "spec_hash"].iloc[0]
    path = cache.cache_file(tmp_path, key)
    entry = json.loads(path.read_text())
    entry["estimate"] = 999.0  # the hand edit of the issue: a plausible-looking JSON file with another number
    path.write_text(json.dumps(entry))
    with caplog.at_level(logging.WARNING, logger=runner.__name__):
        again, stats = _run(small, client, tmp_path)
    assert 999.0 not in again["estimate"].tolist()
    assert again.loc[again["spec_hash"] == key, "estimate"].item() == known_estimate(key)
    pd.testing.assert_frame_equal(results, again, check_exact=True)
    assert stats.n_computed == N_FAILING + 1
    assert f"{key}.json: digest does not match" in caplog.text and "1 file(s) failed the integrity check" in caplog.text
    assert cache.read_cached(tmp_path, key)["estimate"] == known_estimate(key)  # rewritten with a valid digest


@pytest.mark.parametrize("damage, reason", [
    (lambda e: e.update(n_obs=218), "digest does not match"),
    (lambda e: e.update(sha256="0" * 64), "digest does not match"),
    (lambda e: e.pop("sha256"), "no digest"),
    (lambda e: e.update(estimate="0.5"), "digest does not match"),
    (lambda e: e.update(extra=1), "digest does not match"),
])
def test_read_cached_verifies_every_entry(tmp_path, damage, reason):
    result = {"estimate": 0.25, "std_error": 0.1, "ci_low": 0.05, "ci_high": 0.45, "p_value": 0.01, "n_obs": 217,
              "n_clusters": 31.0, "error": ""}
    cache.write_cached(tmp_path, "k", result)
    assert cache.read_cached(tmp_path, "k") == result
    # the same file under another cell's name is not that cell's result
    cache.cache_file(tmp_path, "other").write_text(cache.cache_file(tmp_path, "k").read_text())
    problems: list[str] = []
    assert cache.read_cached(tmp_path, "other", problems) is None and "digest does not match" in problems[0]
    entry = json.loads(cache.cache_file(tmp_path, "k").read_text())
    damage(entry)
    cache.cache_file(tmp_path, "k").write_text(json.dumps(entry))
    problems = []
    assert cache.read_cached(tmp_path, "k", problems) is None
    assert len(problems) == 1 and reason in problems[0] and "k.json" in problems[0]
    assert cache.read_cached(tmp_path, "absent", problems) is None and len(problems) == 1  # absent: no problem


def test_failed_result_is_never_written(tmp_path):
    failed = {"estimate": float("nan"), "std_error": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
              "p_value": float("nan"), "n_obs": None, "n_clusters": float("nan"), "error": "ValueError: no"}
    with pytest.raises(ValueError, match="not cached"):
        cache.write_cached(tmp_path, "k", failed)
    assert not list(tmp_path.iterdir())


@pytest.fixture
def cli_inputs(tmp_path, monkeypatch, client, fake_tasks):
    """An out-dir with stand-in input files (only their hashes are read) and the CLI wired to the in-process
    cluster."""
    for name in (paths.PANEL.name, paths.SHOCKS.name, paths.ANALYSIS_PANEL.name):
        (tmp_path / name).write_bytes(name.encode())
    monkeypatch.setattr(cli, "_read", lambda path: pd.DataFrame())
    monkeypatch.setattr(tasks, "prepare_inputs", lambda *a, **k: (pd.DataFrame(), pd.DataFrame()))
    monkeypatch.setattr(runner, "dask_client", lambda address, workers: contextlib.nullcontext(client))
    return tmp_path


def _write_config(folder, share) -> str:
    raw = {**copy.deepcopy(SMALL), "max_failure_share": share}
    (folder / "mv.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    return str(folder / "mv.yaml")


def test_cli_exits_2_above_the_failure_share_and_writes_nothing(cli_inputs, capsys):
    out = cli_inputs
    args = ["--out-dir", str(out), "--figure-dir", str(out / "figures"), "--no-progress"]
    assert cli.main(["--config", _write_config(out, 0.25), *args]) == 2  # 10 of 30 = 33% > 25%
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "10 of 30 specifications failed" in err and "max_failure_share" in err
    assert "10 x ValueError: deliberate failure (drops 2020)" in err and "Traceback" not in err
    assert not (out / paths.MULTIVERSE_RESULTS_NAME).exists() and not (out / paths.MULTIVERSE_SUMMARY_NAME).exists()
    assert not (out / "figures").exists()

    assert cli.main(["--config", _write_config(out, 0.4), *args]) == 0  # 33% <= 40%: written, failures listed
    results = pd.read_parquet(out / paths.MULTIVERSE_RESULTS_NAME)
    assert (results["error"] != "").sum() == N_FAILING and len(results) == N_CELLS
    assert json.loads((out / paths.MULTIVERSE_SUMMARY_NAME).read_text())["n_failed"] == N_FAILING
