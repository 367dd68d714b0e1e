"""Plugins: methods and metrics registered from outside the package (docs/plugins.md).

A plugin is a Python module that, when imported, registers methods with
:func:`engine.explain.register_method` and metrics with :func:`engine.metrics.register_metric` (the call
contract of each kind is in those registries' docstrings and is checked at registration).  It is named

* in the experiment: ``plugins = ["my_pkg.my_methods"]`` (importable: installed, or its folder on
  ``PYTHONPATH``), or
* by an installed distribution, in the entry-point group :data:`ENTRY_POINT_GROUP`
  (``[project.entry-points."vit_heatmap_check.plugins"] my_methods = "my_pkg.my_methods"``); the
  entry point's module is imported.

The driver imports them when it validates the experiment (so ``engine run`` knows their names); each Ray
task imports the same modules before its unit runs (:mod:`engine.runner.executors`), since a Ray worker
is a fresh process.  A module that cannot be imported, has a syntax error or registers a name already
taken (a built-in's) is a :class:`PluginError`: one line, before any work.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import re

from ..explain import METHODS
from ..metrics import METRICS

ENTRY_POINT_GROUP = "vit_heatmap_check.plugins"
MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class PluginError(ValueError):
    """A plugin that cannot be loaded; the message (one line) names the module and the reason."""


def entry_point_modules() -> list[str]:
    """The modules named by installed distributions in :data:`ENTRY_POINT_GROUP`, by entry-point name."""
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return [ep.module for ep in sorted(eps, key=lambda ep: (ep.name, ep.value))]


def plugin_modules(listed: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Every plugin module to import: the entry points' first, then ``listed``, each once, in order."""
    return list(dict.fromkeys([*entry_point_modules(), *listed]))


def import_plugins(modules: list[str] | tuple[str, ...]) -> None:
    """Import each module (a module imported already is not imported again); :class:`PluginError` for the
    first that fails."""
    for name in modules:
        if not isinstance(name, str) or not MODULE_NAME.match(name):
            raise PluginError(f"plugin {name!r} is not a module name (dotted Python identifiers, e.g. "
                              f"'my_pkg.my_methods')")
        try:
            importlib.import_module(name)
        except SyntaxError as exc:
            where = f"{exc.filename}, line {exc.lineno}" if exc.filename else "its source"
            raise PluginError(f"plugin {name!r} has a syntax error ({where}: {exc.msg})") from None
        except ModuleNotFoundError as exc:
            hint = " (install it, or put its folder on PYTHONPATH)" if exc.name and name.startswith(exc.name) \
                else ""
            raise PluginError(f"plugin {name!r} cannot be imported: {exc}{hint}") from None
        except ValueError as exc:  # the registries refuse a name or a signature
            raise PluginError(f"plugin {name!r}: {' '.join(str(exc).split())}") from None
        except Exception as exc:
            raise PluginError(f"plugin {name!r} failed while being imported: {type(exc).__name__}: "
                              f"{' '.join(str(exc).split())}") from None


def load_plugins(listed: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Import the entry points' plugins and ``listed``; returns the modules imported (what Ray tasks import)."""
    modules = plugin_modules(listed)
    import_plugins(modules)
    return modules


def registered_plugins() -> dict[str, dict]:
    """What plugins registered, for a run's record: ``{'method:name' | 'metric:name': {module, version, source}}``."""
    out = {}
    for kind, registry in (("method", METHODS), ("metric", METRICS)):
        for info in registry.values():
            if not info.builtin:
                out[f"{kind}:{info.name}"] = {"module": info.module, "version": info.version, "source": info.source}
    return dict(sorted(out.items()))
