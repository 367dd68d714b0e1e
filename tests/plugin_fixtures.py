"""Helpers of the plugin tests: a folder on sys.path for plugin modules (registries restored afterwards) and a
small experiment (a generated smear set, the random-weights demo ViT: nothing to train)."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from engine.explain import METHODS
from engine.metrics import METRICS

EXPERIMENT = '''
name = "plug"
work_dir = "work"
plugins = {plugins}

[[datasets]]
name = "smear"
generate = "blood_smear"
params = {{ n_train = 8, n_val = 4, n_test = 4 }}

[[models]]
name = "vit_demo"
init = "random"

[methods]
{methods}

[metrics]
{metrics}
'''


def experiment(folder: Path, plugins: list[str], methods: str = "attention = {}",
               metrics: str = "pointing_game = {}") -> Path:
    path = folder / "exp.toml"
    path.write_text(EXPERIMENT.format(plugins=repr(plugins).replace("'", '"'), methods=methods, metrics=metrics))
    return path


@pytest.fixture(name="plugin_dir")
def plugin_folder(tmp_path, monkeypatch):
    """A folder on sys.path for plugin modules; the registries and sys.modules are restored afterwards."""
    methods, metrics = dict(METHODS), dict(METRICS)
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    METHODS.clear()
    METHODS.update(methods)
    METRICS.clear()
    METRICS.update(metrics)
    for name, mod in list(sys.modules.items()):  # the plugin modules only (not what the test imported first)
        if str(getattr(mod, "__file__", None) or "").startswith(str(folder)):
            del sys.modules[name]


def write(folder: Path, name: str, text: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(text))


