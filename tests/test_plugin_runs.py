"""Plugins in a run: their source, version and parameters key their jobs (editing one re-runs its jobs and nothing
else); a plugin that raises, returns the wrong shape or NaN gives failure rows and never stops the run."""
from __future__ import annotations

import importlib
import json

import duckdb
import pytest
from plugin_fixtures import experiment, plugin_folder, write  # noqa: F401  (the fixture plugin_dir)

from engine.explain import METHODS
from engine.runner.experiment import load_experiment
from engine.runner.run import run_experiment

RAMP = '''
import torch
from engine.explain import register_method


@register_method("pm_ramp", version={version}, needs_grads=False, reference="test: a ramp over the token grid")
def ramp(trace, scale: float = 1.0):
    gh, gw = trace.grid
    grid = torch.arange(gh * gw, dtype=torch.float32).reshape(1, gh, gw)
    return ({grid} * scale).expand(trace.logits.shape[0], gh, gw).clone()
'''

MASS = '''
import numpy as np
from engine.metrics import register_metric


@register_metric("pk_mass", version=1, kind="localisation", reference="test: share of the map's mass in the region")
def mass(maps, regions):
    m = maps.clamp(min=0).flatten(1).double()
    inside = (m * regions.flatten(1)).sum(1) / m.sum(1)
    return np.where(regions.flatten(1).any(1).numpy(), inside.numpy(), np.nan){suffix}
'''


def _run(path, db):
    report = run_experiment(load_experiment(path), db, progress=False)
    assert report.failed_jobs == 0, report
    return report


def _scores(db, method):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT metric, region, image_id, value FROM scores WHERE method = ? ORDER BY ALL",
                           [method]).fetchall()


@pytest.mark.slow  # end-to-end: runs of an experiment with plugins
def test_editing_a_plugin_reruns_its_jobs_and_nothing_else(plugin_dir, tmp_path):
    write(plugin_dir, "plug_m", RAMP.format(version=1, grid='grid'))
    write(plugin_dir, "plug_k", MASS.format(suffix=""))
    path = experiment(tmp_path, ["plug_m", "plug_k"], "attention = {}\npm_ramp = {}", "pointing_game = {}\n"
                      "pk_mass = {}")
    db = tmp_path / "r.duckdb"
    first = _run(path, db)
    assert (first.done, first.skipped) == (6, 0)  # train, predict, 2 methods x 2 metrics
    with duckdb.connect(str(db), read_only=True) as con:
        config = json.loads(con.execute("SELECT config FROM runs").fetchone()[0])
    assert config["plugins"]["method:pm_ramp"] == {"module": "plug_m", "version": 1,  # the run records its plugins
                                                   "source": METHODS["pm_ramp"].source}
    before = _scores(db, "pm_ramp")
    assert before and all(v is not None for *_, v in before if _[0] == "pk_mass")
    again = _run(path, db)
    assert (again.done, again.skipped) == (0, 6)

    # the same version, a new source
    write(plugin_dir, "plug_m", RAMP.format(version=1, grid="grid.flip(-1)") + "# reversed\n")
    importlib.reload(importlib.import_module("plug_m"))
    edited = _run(path, db)
    assert (edited.done, edited.skipped) == (2, 4)  # pm_ramp x (pointing_game, pk_mass)
    after = _scores(db, "pm_ramp")
    assert len(after) == len(before) and after != before  # replaced, never mixed with the old scores

    write(plugin_dir, "plug_k", MASS.format(suffix="  # edited"))
    importlib.reload(importlib.import_module("plug_k"))
    assert (_run(path, db).done, _run(path, db).done) == (2, 0)  # (attention, pm_ramp) x pk_mass, then nothing

    write(plugin_dir, "plug_m", RAMP.format(version=2, grid='grid.flip(-1)') + "# reversed\n")  # a version bump alone
    importlib.reload(importlib.import_module("plug_m"))
    bumped = _run(path, db)
    assert (bumped.done, bumped.skipped) == (2, 4)
    with duckdb.connect(str(db), read_only=True) as con:
        by_version = dict(con.execute("SELECT method_version, count(*) FROM scores WHERE method = 'pm_ramp' "
                                      "GROUP BY ALL").fetchall())
    assert by_version == {1: len(after), 2: len(after)}  # a version is part of a result's identity, as for built-ins
    path.write_text(path.read_text().replace("pm_ramp = {}", "pm_ramp = { scale = 2.0 }"))
    assert _run(path, db).done == 2  # its parameters key its jobs too


BROKEN = '''
import numpy as np
import torch
from engine.explain import register_method
from engine.metrics import register_metric


def _ramp(trace):
    gh, gw = trace.grid
    return torch.arange(gh * gw, dtype=torch.float32).reshape(1, gh, gw).expand(trace.logits.shape[0], gh, gw)


@register_method("pf_raises", version=1, needs_grads=False, reference="test")
def raises(trace):
    raise RuntimeError("plugin bug")


@register_method("pf_shape", version=1, needs_grads=False, reference="test")
def shape(trace):
    return _ramp(trace).flatten(1)


@register_method("pf_nan", version=1, needs_grads=False, reference="test")
def nan(trace):
    m = _ramp(trace).clone()
    m[:, 0, 0] = float("nan")
    return m


@register_method("pf_model_list", version=1, needs_grads=False, reference="test", kind="model")
def model_list(model, images, targets):
    return [0.0] * len(images)


@register_method("pf_ok", version=1, needs_grads=False, reference="test")
def ok(trace):
    return _ramp(trace).clone()


@register_metric("pk_raises", version=1, kind="localisation")
def k_raises(maps, regions):
    raise ValueError("metric bug")


@register_metric("pk_scalar", version=1, kind="localisation")
def k_scalar(maps, regions):
    return 0.5


@register_metric("pk_nan", version=1, kind="localisation")
def k_nan(maps, regions):
    return np.full(len(maps), np.nan)


@register_metric("pk_inf", version=1, kind="localisation")
def k_inf(maps, regions):
    return np.full(len(maps), np.inf)
'''


@pytest.mark.slow  # end-to-end: a run of an experiment with plugins
def test_a_broken_plugin_gives_failure_rows_and_the_run_goes_on(plugin_dir, tmp_path):
    write(plugin_dir, "plug_broken", BROKEN)
    methods = "\n".join(f"{m} = {{}}" for m in ("attention", "pf_raises", "pf_shape", "pf_nan", "pf_model_list",
                                                  "pf_ok"))
    metrics = "\n".join(f"{k} = {{}}" for k in ("pointing_game", "pk_raises", "pk_scalar", "pk_nan", "pk_inf"))
    db = tmp_path / "r.duckdb"
    report = run_experiment(load_experiment(experiment(tmp_path, ["plug_broken"], methods, metrics)), db,
                            progress=False)
    assert report.status == "finished with failures" and report.failed_jobs == 0 and report.failed_items > 0
    with duckdb.connect(str(db), read_only=True) as con:
        fails = con.execute("SELECT method, stage, reason, count(DISTINCT item) FROM failures GROUP BY ALL").fetchall()
        scored = dict(con.execute("SELECT method || '/' || metric, count(value) FROM scores GROUP BY ALL").fetchall())
        n_images, n_regions = con.execute("SELECT count(DISTINCT image_id), count(DISTINCT region) FROM scores "
                                          "WHERE method = 'attention'").fetchone()
    reasons = {(m, stage): reason for m, stage, reason, _ in fails}
    assert reasons[("pf_raises", "explain")] == "RuntimeError: plugin bug"
    assert "method 'pf_shape' returned a torch.float32 tensor of shape (4, 64); the call contract is one real map " \
           "per image, (4, h, w)" in reasons[("pf_shape", "explain")]
    assert "method 'pf_model_list' returned list, not a tensor" in reasons[("pf_model_list", "explain")]
    assert reasons[("pf_nan", "explain")] == "map contains NaN or inf; not scored"
    # the metrics' failures are recorded against the method whose maps they scored
    ok_reasons = {r for m, s, r, _ in fails if m == "pf_ok" and s == "score"}
    assert {r.split(":")[0] for r in ok_reasons} == {"pk_raises", "pk_scalar", "pk_nan", "pk_inf"}
    shape = "pk_scalar: ValueError: returned shape (); the call contract is one value per image, (4,)"
    assert any(shape in r for r in ok_reasons)
    assert any("pk_inf: ValueError: returned inf" in r for r in ok_reasons)
    assert any("pk_nan: returned NaN where there was something to score" in r for r in ok_reasons)
    # the built-ins and the working plugin are scored in full, beside the broken ones
    assert n_images == 4 and scored["attention/pointing_game"] == scored["pf_ok/pointing_game"] > 0
    assert not any(k.startswith(("pf_raises", "pf_shape", "pf_nan", "pf_model_list")) for k in scored)
    assert not any(k.endswith(("/pk_raises", "/pk_scalar", "/pk_inf", "/pk_nan")) and v for k, v in scored.items())
