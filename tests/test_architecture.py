"""The import rules of docs/architecture.md, read from the source with ``ast`` (nothing is imported):
engine/store imports neither streamlit nor engine.metrics nor engine.data; nothing under engine/ but
engine/dashboard imports streamlit; pages and app.py take the engine only through engine.dashboard; no
page calls a query by name."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT

ENGINE = PROJECT_ROOT / "engine"
PAGES = [PROJECT_ROOT / "app.py", *sorted((PROJECT_ROOT / "pages").glob("*.py"))]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module, imported names) of every import statement in ``path``, function-local ones
    included; relative imports resolved against the file's package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            out.append((mod, [a.name for a in node.names]))
    return out


def targets(path: Path) -> set[str]:
    """Every module ``path`` imports (``from pkg import sub`` counts as ``pkg.sub`` when sub is a module)."""
    out = set()
    for mod, names in imports(path):
        out.add(mod)
        for n in names:
            if (PROJECT_ROOT / Path(*mod.split("."), n)).with_suffix(".py").exists() or \
                    (PROJECT_ROOT / Path(*mod.split("."), n, "__init__.py")).exists():
                out.add(f"{mod}.{n}")
    return out


def under(mod: str, pkg: str) -> bool:
    return mod == pkg or mod.startswith(pkg + ".")


# layer -> the engine layers it may import (docs/architecture.md's table)
ALLOWED = {
    "engine.data": set(),
    "engine.models": {"engine.data"},
    "engine.explain": {"engine.data", "engine.models"},
    "engine.metrics": {"engine.data", "engine.models", "engine.explain"},
    "engine.store": set(),
    "engine.runner": {"engine.data", "engine.explain", "engine.models", "engine.metrics", "engine.store"},
    "engine.dashboard": {"engine.data", "engine.explain", "engine.models", "engine.metrics", "engine.store"},
    "engine.cli": {"engine.data", "engine.runner", "engine.store", "engine.dashboard"},  # never streamlit: below
}


def engine_files(sub: str = "") -> list[Path]:
    return sorted((ENGINE / sub).rglob("*.py"))


def test_the_parser_resolves_relative_imports(tmp_path):
    # a check that cannot fail proves nothing: the parser must see what the rules forbid
    found = targets(ENGINE / "dashboard" / "cache.py")
    assert {"streamlit", "engine.dashboard.queries", "engine.store.schema"} <= found
    assert "engine.metrics.summaries" in targets(ENGINE / "dashboard" / "__init__.py")
    assert "engine.store.writer" in targets(ENGINE / "store" / "__init__.py")


@pytest.mark.parametrize("path", engine_files("store"), ids=lambda p: p.name)
def test_store_imports_neither_streamlit_nor_metrics_nor_data(path):
    bad = sorted(m for m in targets(path) if any(under(m, p) for p in (
        "streamlit", "engine.metrics", "engine.data", "engine.runner", "engine.dashboard")))
    assert not bad, f"{path.relative_to(PROJECT_ROOT)} imports {bad}"


def layer(mod: str) -> str | None:
    return next((name for name in ALLOWED if under(mod, name)), None)


@pytest.mark.parametrize("path", engine_files(), ids=lambda p: str(p.relative_to(ENGINE)))
def test_each_layer_imports_only_the_layers_below_it(path):
    here = layer(module_name(path))
    if here is None:  # engine/__init__.py, engine/__main__.py
        return
    allowed = ALLOWED[here]
    bad = sorted(t for t in targets(path) if under(t, "engine") and t != "engine" and layer(t) != here
                 and not any(under(t, a) for a in allowed))
    assert not bad, f"{path.relative_to(PROJECT_ROOT)} ({here}) imports {bad}; allowed: {sorted(allowed)}"


def test_only_the_dashboard_imports_streamlit():
    bad = [str(p.relative_to(PROJECT_ROOT)) for p in engine_files()
           if not under(module_name(p), "engine.dashboard") and any(under(m, "streamlit") for m in targets(p))]
    assert not bad, f"streamlit imported outside engine/dashboard: {bad}"


def test_nothing_below_the_dashboard_imports_it():
    bad = [str(p.relative_to(PROJECT_ROOT)) for p in engine_files()
           if not under(module_name(p), "engine.dashboard") and not under(module_name(p), "engine.cli")
           and any(under(m, "engine.dashboard") for m in targets(p))]
    assert not bad, f"the dashboard's read layer imported from below it: {bad}"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_pages_import_the_engine_only_through_engine_dashboard(path):
    engine_imports = {(m, tuple(n)) for m, n in imports(path) if under(m, "engine")}
    assert engine_imports, f"{path.name} imports nothing from engine.dashboard"
    bad = sorted(m for m, _ in engine_imports if m != "engine.dashboard")
    assert not bad, f"{path.name} imports {bad}: re-export what it needs from engine.dashboard"
    submodules = sorted(t for t in targets(path) if under(t, "engine.dashboard") and t != "engine.dashboard")
    assert not submodules, f"{path.name} imports the modules {submodules}: import the names engine.dashboard exports"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_no_query_is_called_by_name(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
             and n.func.id == "call"]
    assert not calls, f"{path.name}: call(\"name\", ...) string dispatch; use the Db method"


def test_the_names_engine_dashboard_exports_exist():
    import engine.dashboard as dash
    for name in dash.__all__:
        assert getattr(dash, name) is not None, name


def test_the_command_line_does_not_import_streamlit():
    out = subprocess.run([sys.executable, "-c", "import sys, engine.cli; print('streamlit' in sys.modules)"],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr[-2000:]
