"""The call contract of each method / metric kind, checked at registration; names clashing with a built-in."""
from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

from engine.explain import METHODS, register_method
from engine.metrics import METRICS, register_metric


@pytest.fixture
def registries():
    """Whatever a test registers is gone afterwards (other tests iterate over METHODS / METRICS)."""
    methods, metrics = dict(METHODS), dict(METRICS)
    yield
    METHODS.clear()
    METHODS.update(methods)
    METRICS.clear()
    METRICS.update(metrics)


def method(kind="trace", **kw):
    return register_method("plugin_m", version=1, needs_grads=False, reference="test", kind=kind, **kw)


def metric(kind="localisation"):
    return register_metric("plugin_k", version=1, kind=kind)


def test_every_builtin_fits_its_contract_and_is_marked_builtin():
    assert METHODS and all(m.builtin and m.source is None for m in METHODS.values())
    assert METRICS and all(m.builtin and m.source is None for m in METRICS.values())


def test_a_fitting_plugin_is_registered_with_its_source_hash(registries):
    @method()
    def ok(trace, layer: int = -1, **params):
        return trace

    @register_method("plugin_m2", version=1, needs_grads=False, reference="test", kind="model", memory_bounded=True)
    def ok_model(model, images, targets, memory_budget=None, steps: int = 3):
        return images

    assert METHODS["plugin_m"].fn is ok and METHODS["plugin_m2"].fn is ok_model
    assert not METHODS["plugin_m"].builtin and len(METHODS["plugin_m"].source) == 16

    @metric("faithfulness")
    def ok_faith(maps, *, model, images, targets, return_curves=False, precision="fp32", n: int = 2):
        return maps

    assert METRICS["plugin_k"].kind == "faithfulness" and not METRICS["plugin_k"].builtin


@pytest.mark.parametrize("kind, fn_src, says", [
    ("trace", "def f(tr, layer=0): pass", "missing parameter 'trace' (found 'tr' in its place)"),
    ("trace", "def f(): pass", "missing parameter 'trace'; the contract is fn(trace, **params)"),
    ("trace", "def f(trace, layer): pass", "extra parameter 'layer' without a default"),
    ("trace", "def f(trace, *more): pass", "extra parameter '*more'"),
    ("model", "def f(model, images, layer=0): pass",
     "missing parameter 'targets' (found 'layer' in its place); the contract is fn(model, images, targets"),
    ("model", "def f(model, images, targets, extra, k=1): pass", "extra parameter 'extra' without a default"),
    ("model", "def f(images, model, targets): pass", "missing parameter 'model' (found 'images' in its place)"),
])
def test_method_signatures_that_do_not_fit_are_refused(registries, kind, fn_src, says):
    ns: dict = {}
    exec(fn_src, ns)
    with pytest.raises(ValueError, match="^method 'plugin_m' \\(kind '" + kind + "'\\): ") as err:
        method(kind)(ns["f"])
    assert says in str(err.value) and "\n" not in str(err.value)
    assert "plugin_m" not in METHODS


def test_a_memory_bounded_method_must_take_memory_budget(registries):
    with pytest.raises(ValueError, match="missing parameter 'memory_budget'"):
        @method("model", memory_bounded=True)
        def f(model, images, targets, steps: int = 3):
            return images


@pytest.mark.parametrize("kind, fn_src, says", [
    ("localisation", "def f(maps, mask): pass", "missing parameter 'regions' (found 'mask' in its place)"),
    ("localisation", "def f(maps, regions, k): pass", "extra parameter 'k' without a default"),
    ("localisation", "def f(maps, regions, /, k=1, *, j): pass", "extra parameter 'j' without a default"),
    ("faithfulness", "def f(maps, *, model, images, targets, precision='fp32'): pass",
     "missing parameter 'return_curves'"),
    ("faithfulness", "def f(maps, images, targets, return_curves=False, precision='fp32'): pass",
     "missing parameter 'model'"),
    ("faithfulness", "def f(saliency, *, model, images, targets, return_curves, precision): pass",
     "missing parameter 'maps' (found 'saliency' in its place)"),
])
def test_metric_signatures_that_do_not_fit_are_refused(registries, kind, fn_src, says):
    ns: dict = {}
    exec(fn_src, ns)
    with pytest.raises(ValueError, match="^metric 'plugin_k' \\(kind '" + kind + "'\\): ") as err:
        metric(kind)(ns["f"])
    assert says in str(err.value) and "\n" not in str(err.value)
    assert "plugin_k" not in METRICS


def test_a_builtin_name_is_refused(registries):
    with pytest.raises(ValueError, match=r"^method 'attention' is a built-in \(engine.explain.attention_methods\); "
                                         r"a plugin cannot replace it"):
        @register_method("attention", version=2, needs_grads=False, reference="mine")
        def attention(trace):
            return trace
    with pytest.raises(ValueError, match=r"^metric 'pointing_game' is a built-in \(engine.metrics.localisation\)"):
        @register_metric("pointing_game", version=2, kind="localisation")
        def pointing_game(maps, regions):
            return maps
    assert METHODS["attention"].builtin and METRICS["pointing_game"].builtin


def test_another_plugins_name_is_refused_but_a_reloaded_module_replaces_its_own(registries, tmp_path, monkeypatch):
    (tmp_path / "plug_a.py").write_text(textwrap.dedent("""
        from engine.explain import register_method

        @register_method("plugin_m", version=1, needs_grads=False, reference="a")
        def plugin_m(trace):
            return trace
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        mod = importlib.import_module("plug_a")
        first = METHODS["plugin_m"]
        importlib.reload(mod)  # the same function registers again in its place
        assert METHODS["plugin_m"].fn is mod.plugin_m and METHODS["plugin_m"] is not first
        with pytest.raises(ValueError, match=r"^method 'plugin_m' is already registered \(by plug_a\)"):
            @method()
            def other(trace):
                return trace
    finally:
        sys.modules.pop("plug_a", None)


@pytest.mark.parametrize("version", [0, -1, True, 1.5, "1"])
def test_versions_are_positive_integers(registries, version):
    with pytest.raises(ValueError, match="version = .* must be an integer >= 1"):
        register_method("plugin_m", version=version, needs_grads=False, reference="")
    with pytest.raises(ValueError, match="version = .* must be an integer >= 1"):
        register_metric("plugin_k", version=version, kind="localisation")
