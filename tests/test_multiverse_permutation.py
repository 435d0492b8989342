"""Specification-curve permutation inference (analysis/multiverse/permutation.py):

(a) on simulated province panels the permutation p-value of a curve is uniform under the null (within Monte Carlo
    error) and small under a true effect;
(b) the batched fits equal the per-cell engine (the multiverse's own fit_cell on the permuted panel) to 1e-10 on a
    sample of real cells and permutations, for both design families;
(c) identical results for 1 and 2 dask workers;
plus the permutation bookkeeping (induced permutations on a sample's provinces) and the config section.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest

from analysis import paths
from analysis.index.config import load_config as load_index_config
from analysis.io import DataError
from analysis.multiverse import grid, permutation, runner, tasks
from analysis.multiverse.grid import Cell, IndexChoice, InferenceSettings
from analysis.models import spec as engine_spec

from test_multiverse_grid import SMALL  # tests/ is on sys.path


# ---------------------------------------------------------------------------------------------------------------
# bookkeeping

def test_induced_permutation_is_uniform_on_kept_units_and_identity_is_identity():
    kept = np.array([True, False, True, True, True])
    values = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    assert np.array_equal(permutation.permute_values(values, np.arange(5), kept), values)
    perms = permutation.draw_permutations(5, 6000, 3)
    moved = np.stack([permutation.permute_values(values, p, kept) for p in perms])
    assert (moved[:, 1] == 20.0).all()                       # the dropped unit keeps its own value
    assert np.array_equal(np.sort(moved[:, kept], axis=1), np.tile(values[kept], (len(perms), 1)))
    # each kept unit receives each kept value with probability 1/4
    share = (moved[:, 0][:, None] == values[kept][None, :]).mean(axis=0)
    assert np.abs(share - 0.25).max() < 0.03
    assert np.array_equal(permutation.permuted_unit_values(values, perms[:50], kept), moved[:50])


def test_inference_section_validated(index_config):
    raw = copy.deepcopy(SMALL)
    assert grid.parse_config(copy.deepcopy(raw), index_config).inference is None
    raw["inference"] = {"n_permutations": 9, "seed": 4}
    assert grid.parse_config(copy.deepcopy(raw), index_config).inference == InferenceSettings(9, 4, 50)
    for bad in ({"n_permutations": 0, "seed": 1}, {"n_permutations": 5, "seed": -1}, {"n_permutations": 5},
                {"n_permutations": 5, "seed": 1, "draws": 3}):
        raw["inference"] = bad
        with pytest.raises(DataError, match="inference"):
            grid.parse_config(copy.deepcopy(raw), index_config)


def test_default_config_has_at_least_500_permutations(index_config):
    config = grid.load_config(grid.MULTIVERSE_CONFIG, index_config)
    assert config.inference is not None and config.inference.n_permutations >= 500


@pytest.fixture(scope="module")
def index_config():
    return load_index_config(paths.INDEX_CONFIG)


# ---------------------------------------------------------------------------------------------------------------
# (a) simulated null and true effect

def _simulated_frame(rng, effects, n_units: int = 31, years=range(2015, 2022)) -> pd.DataFrame:
    """A balanced province panel with one exposure, one post indicator, staggered cohorts and one control; two
    outcomes y<r>_a, y<r>_b per replication r, each with true effect ``effects[r]`` of exposure × post and of
    treatment under the cohorts (unit effects, a common trend, independent noise)."""
    units = np.arange(1, n_units + 1) * 10000
    exposure = rng.standard_normal(n_units)
    cohort = rng.choice([0, 0, 0, 2018, 2019, 2020], size=n_units)
    frame = pd.DataFrame({"province_code": np.repeat(units, len(years)), "year": np.tile(list(years), n_units)})
    unit = np.repeat(np.arange(n_units), len(years))
    year = frame["year"].to_numpy()
    frame["post_sim"] = (year >= 2019).astype(float)
    frame["exposure_sim"] = exposure[unit]
    frame["cohort_sim"] = cohort[unit]
    frame["control_sim"] = rng.normal(size=len(frame))
    treated = ((cohort[unit] > 0) & (year >= cohort[unit])).astype(float)
    columns = {}
    for r, effect in enumerate(effects):
        base = rng.normal(size=n_units)[unit] + 0.1 * (year - 2015) + effect * (exposure[unit] * frame["post_sim"]
                                                                                + treated)
        for suffix in "ab":
            columns[f"y{r}_{suffix}"] = base + rng.normal(scale=0.5, size=len(frame))
    return pd.concat([frame, pd.DataFrame(columns)], axis=1)


def _sim_cells(outcomes) -> list[Cell]:
    """Per outcome: cont_did with and without the control, on all provinces and without the first; the TWFE event
    study on the cohorts (5 specifications)."""
    index = IndexChoice("minmax_pooled", "entropy", "weighted_sum", "core")
    cells = []
    for outcome in outcomes:
        for controls in ([], ["control_sim"]):
            for drop in ([], [10000]):
                raw = {"estimator": "cont_did", "outcome": outcome, "exposure": "exposure_sim", "treatment": "post_sim",
                       "fixed_effects": ["province_code", "year"], "cluster": "province_code", "controls": controls,
                       "sample": {"years": [2015, 2021], "drop_units": drop, "keep_units": []}}
                spec = engine_spec.validate(raw, "test")
                cells.append(Cell({"outcome": outcome}, index, spec, (), "exposure_sim:post_sim"))
        raw = {"estimator": "event_study", "outcome": outcome, "cohort": "cohort_sim", "event_window": [-3, 3],
               "fixed_effects": ["province_code", "year"], "cluster": "province_code",
               "sample": {"years": [2015, 2021], "drop_units": [], "keep_units": []}}
        cells.append(Cell({"outcome": outcome}, index, engine_spec.validate(raw, "test"), (), "ATT"))
    return cells


def _replication_pvalues(effects, n_permutations, seed) -> list[dict]:
    """Permutation summaries of each replication's curve (its 10 specifications), each replication with its own
    permutations (shared permutations would make the replications' p-values dependent)."""
    rng = np.random.default_rng(seed)
    outcomes = [f"y{r}_{s}" for r in range(len(effects)) for s in "ab"]
    cells = _sim_cells(outcomes)
    groups, units = permutation.build_groups(cells, {cells[0].index.name: _simulated_frame(rng, effects)})
    identity = np.arange(len(units))[None, :]
    out = []
    for r in range(len(effects)):
        perms = permutation.draw_permutations(len(units), n_permutations, seed + 1 + r)
        est, p, obs_est, obs_p = [], [], [], []
        for group in groups:
            cols = [2 * r, 2 * r + 1]   # the replication's two outcomes (columns in order of first appearance)
            mine = [(pos, t, cols.index(c)) for pos, t, c in group.cells if c in cols]
            sub = dataclasses.replace(group, y=group.y[:, cols], cells=mine)
            null, obs = permutation.fit_block(sub, perms), permutation.fit_block(sub, identity)
            est.append(null["estimate"]), p.append(null["p_value"])
            obs_est.append(obs["estimate"][:, 0]), obs_p.append(obs["p_value"][:, 0])
        out.append(permutation.summarise(np.vstack(est), np.vstack(p), np.concatenate(obs_est),
                                         np.concatenate(obs_p)))
    return out


def test_pvalues_uniform_under_the_null_and_small_under_a_true_effect():
    n_sim, n_perm = 200, 99
    results = _replication_pvalues([0.0] * n_sim, n_perm, 20240601)
    for name in permutation.STATISTICS:
        values = np.array([r[f"p_{name}"] for r in results])
        # rejection rates at 5%, 10% and 50% within ~3 Monte Carlo SEs of the nominal level (binomial, n = 200);
        # the share significant is discrete (often 0 under the null, then p = 1), so its test is conservative
        # and only the upper side is checked
        for level in (0.05, 0.10, 0.5):
            rate = (values <= level).mean()
            tol = 3 * np.sqrt(level * (1 - level) / n_sim) + 1 / n_perm
            assert rate - level <= tol, (name, level, rate)
            if name != "share_significant":
                assert level - rate <= tol, (name, level, rate)
        if name == "share_significant":
            continue
        # Kolmogorov–Smirnov distance from U(0, 1) on the permutation grid (critical value at 1%: 1.63/sqrt(n))
        grid_points = np.arange(1, n_perm + 2) / (n_perm + 1)
        ecdf = (values[:, None] <= grid_points[None, :]).mean(axis=0)
        assert np.max(np.abs(ecdf - grid_points)) < 1.63 / np.sqrt(n_sim), name
    for result in _replication_pvalues([0.6] * 5, 199, 7):
        assert result["p_median"] <= 0.02 and result["p_stouffer_z"] <= 0.02, result
        assert result["share_significant"] > 0.5 and result["p_share_significant"] <= 0.02, result


# ---------------------------------------------------------------------------------------------------------------
# (b) batched = engine, on the real data

@pytest.fixture(scope="module")
def real(index_config, stage_tree):
    """The real data, as the stage CLIs build it into a temporary folder (conftest ``stage_tree``)."""
    config = grid.load_config(grid.MULTIVERSE_CONFIG, index_config)
    cells = grid.expand(config)
    choices = [config.index_choices[0], config.index_choices[-1]]
    cells = [c for c in cells if c.index in choices]
    window, base = tasks.prepare_inputs(pd.read_parquet(stage_tree / paths.PANEL.name),
                                        pd.read_parquet(stage_tree / paths.ANALYSIS_PANEL.name),
                                        pd.read_parquet(stage_tree / paths.SHOCKS.name), index_config, choices,
                                        columns=grid.needed_columns(cells))
    frames = {c.name: tasks.analysis_frame(window, base, index_config, c, list(config.outcomes)) for c in choices}
    return config, cells, frames


def test_batched_fits_equal_the_engine_on_permuted_panels(real):
    config, cells, frames = real
    groups, units = permutation.build_groups(cells, frames)
    assert {g.family for g in groups} == {"exposure", "cohort"}
    perms = np.vstack([np.arange(len(units))[None, :], permutation.draw_permutations(len(units), 6, 11)])
    rng = np.random.default_rng(5)
    checked = {"exposure": 0, "cohort": 0}
    for group in groups:
        fitted = permutation.fit_block(group, perms)
        assert not fitted["fallback"].any()
        for i in rng.choice(len(group.cells), size=min(2, len(group.cells)), replace=False):
            cell = cells[group.cells[i][0]]
            for d in rng.choice(len(perms), size=2, replace=False):
                engine = permutation.engine_fit(frames[cell.index.name], cell, perms[d], units)
                assert engine["error"] == ""
                for field in ("estimate", "std_error", "p_value"):
                    assert fitted[field][i, d] == pytest.approx(engine[field], abs=1e-10, rel=0), (field, cell.choices)
                checked[group.family] += 1
    assert min(checked.values()) >= 8


def test_callaway_santanna_cells_are_not_covered(real):
    _, cells, _ = real
    families = {c.choices["estimator"]: permutation.family_of(c) for c in cells}
    assert families == {"cont_did": "exposure", "twfe_event_study": "cohort", "callaway_santanna": None}


# ---------------------------------------------------------------------------------------------------------------
# (c) 1 vs 2 workers

def test_identical_for_one_and_two_workers(real):
    config, cells, frames = real
    settings = InferenceSettings(n_permutations=24, seed=8, block_size=5)
    out = {}
    for workers in (1, 2):
        with runner.dask_client(None, workers) as client:
            out[workers] = permutation.run_inference(cells, frames, settings, client)
    assert out[1].summary == out[2].summary
    assert np.array_equal(out[1].envelope, out[2].envelope, equal_nan=True)
    assert out[1].summary["n_permutations"] == 24 and "p_median" in out[1].summary
    assert out[1].summary["n_engine_fallback"] == 0
