"""Plugins: methods and metrics from outside the package, named by the experiment or an entry point; bad plugins
refused in one line before any work (exit 2)."""
from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import PROJECT_ROOT
from plugin_fixtures import experiment, plugin_folder, write  # noqa: F401  (the fixture plugin_dir)

from engine.explain import METHODS
from engine.metrics import METRICS
from engine.runner.experiment import ExperimentError, load_experiment
from engine.runner.plugins import ENTRY_POINT_GROUP, entry_point_modules, load_plugins

GOOD = '''
import torch
from engine.explain import register_method
from engine.metrics import register_metric


@register_method("{prefix}_ones", version=1, needs_grads=False, reference="test: a constant map")
def ones(trace, scale: float = 1.0):
    gh, gw = trace.grid
    return torch.full((trace.logits.shape[0], gh, gw), scale)


@register_metric("{prefix}_hit", version=1, kind="localisation", reference="test")
def hit(maps, regions, k: int = 1):
    import numpy as np
    return np.ones(len(maps))
'''

def test_the_experiment_names_a_plugin_and_accepts_its_names(plugin_dir, tmp_path):
    write(plugin_dir, "plug_good", GOOD.format(prefix="pg"))
    exp = load_experiment(experiment(tmp_path, ["plug_good"], "pg_ones = { scale = 2.0 }\nattention = {}",
                                     "pg_hit = { k = 3 }\npointing_game = {}"))
    assert exp.plugins == ["plug_good"] and "plug_good" in exp.plugin_modules()
    assert not METHODS["pg_ones"].builtin and METRICS["pg_hit"].kind == "localisation"
    with pytest.raises(ExperimentError, match=r"methods: method 'pg_ones': scale = 'x' is not a number"):
        load_experiment(experiment(tmp_path, ["plug_good"], 'pg_ones = { scale = "x" }'))


def test_without_the_plugin_its_names_are_unknown(plugin_dir, tmp_path):
    write(plugin_dir, "plug_good", GOOD.format(prefix="pg"))
    with pytest.raises(ExperimentError, match=r"methods: unknown method 'pg_ones'"):
        load_experiment(experiment(tmp_path, [], "pg_ones = {}"))


@pytest.mark.parametrize("module, source, says", [
    ("nowhere_to_be_found", None,
     "plugins: plugin 'nowhere_to_be_found' cannot be imported: No module named 'nowhere_to_be_found' (install "
     "it, or put its folder on PYTHONPATH)"),
    ("plug_syntax", "def broken(:\n    pass\n", "plugins: plugin 'plug_syntax' has a syntax error ("),
    ("plug_builtin", "from engine.explain import register_method\n\n"
                     "@register_method('rollout', version=1, needs_grads=False, reference='mine')\n"
                     "def rollout(trace):\n    return trace\n",
     "plugins: plugin 'plug_builtin': method 'rollout' is a built-in (engine.explain.attention_methods); a plugin "
     "cannot replace it"),
    ("plug_contract", "from engine.metrics import register_metric\n\n"
                      "@register_metric('plug_k', version=1, kind='localisation')\n"
                      "def plug_k(maps, mask):\n    return maps\n",
     "plugins: plugin 'plug_contract': metric 'plug_k' (kind 'localisation'): missing parameter 'regions'"),
    ("plug_raises", "raise RuntimeError('no GPU here')\n",
     "plugins: plugin 'plug_raises' failed while being imported: RuntimeError: no GPU here"),
    ("not a module", None, "plugins: plugin 'not a module' is not a module name"),
], ids=lambda v: v if isinstance(v, str) and " " not in v and "\n" not in v and "'" not in v else "")
def test_a_bad_plugin_is_one_line_naming_it(plugin_dir, tmp_path, module, source, says):
    if source is not None:
        (plugin_dir / f"{module}.py").write_text(source)
    with pytest.raises(ExperimentError) as err:
        load_experiment(experiment(tmp_path, [module]))
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'exp.toml'}: ") and says in msg and "\n" not in msg, msg
    if module == "plug_syntax":
        assert f"{plugin_dir / 'plug_syntax.py'}, line 1: " in msg


def test_an_entry_point_registers_a_plugin(plugin_dir, tmp_path):
    write(plugin_dir, "plug_ep", GOOD.format(prefix="ep"))
    dist = plugin_dir / "plug_ep-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plug-ep\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nmine = plug_ep\n")
    assert "plug_ep" in entry_point_modules()
    assert "ep_ones" not in METHODS
    exp = load_experiment(experiment(tmp_path, [], "ep_ones = {}", "ep_hit = {}"))  # no plugins key needed
    assert "ep_ones" in METHODS and "ep_hit" in METRICS and "plug_ep" in exp.plugin_modules()
    assert load_plugins(["plug_ep"]).count("plug_ep") == 1  # named twice, imported once


BAD_CLI = {
    "plug_syntax": ("def broken(:\n", "has a syntax error"),
    "plug_builtin": ("from engine.metrics import register_metric\n\n"
                     "@register_metric('auprc', version=1, kind='localisation')\n"
                     "def auprc(maps, regions):\n    return maps\n", "metric 'auprc' is a built-in"),
}


@pytest.mark.slow  # end-to-end: `engine run` in a subprocess
@pytest.mark.parametrize("module", sorted(BAD_CLI))
def test_engine_run_refuses_a_bad_plugin_with_exit_2_before_any_work(tmp_path, module):
    source, says = BAD_CLI[module]
    (tmp_path / f"{module}.py").write_text(source)
    path = experiment(tmp_path, [module])
    db = tmp_path / "r.duckdb"
    env = {"PYTHONPATH": f"{tmp_path}:{PROJECT_ROOT}", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "engine", "run", str(path), "--db", str(db), "--no-progress"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), out
    assert f"plugins: plugin '{module}'" in lines[0] and says in lines[0] and path.name in lines[0]
    assert not db.exists() and not (tmp_path / "work").exists(), "nothing is done for a bad plugin"
