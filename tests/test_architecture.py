"""The import rules of docs/architecture.md, read from the source with ``ast`` (nothing is imported, but for the
one subprocess check at the end).  Every file under engine/ is checked, ``engine/__init__.py`` and
``engine/__main__.py`` included:

* each layer imports only the engine layers of its row, and at module level only the outside libraries of its
  row; optional libraries (ray, captum, pydicom, transformers) only inside functions;
* function-local imports only for the command line's subcommands, optional libraries, and in the dashboard
  the drawing of maps and images (torch, ``engine.explain.upsample``, ``engine.data.dataset``);
* no import cycle between modules, inside a layer or across layers;
* no private (``_name``) import from another module;
* the command line imports at module level only ``engine``, ``engine.store.read`` and itself, never streamlit;
* streamlit only in engine/dashboard; pages and app.py take the engine only through ``engine.dashboard``.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT

ENGINE = PROJECT_ROOT / "engine"
PAGES = [PROJECT_ROOT / "app.py", *sorted((PROJECT_ROOT / "pages").glob("*.py"))]
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
OPTIONAL = {"ray", "captum", "pydicom", "transformers"}  # imported only inside the functions that need them
DRAWING = {"torch", "engine.explain.upsample", "engine.data.dataset"}  # the dashboard, inside drawing functions
STREAMLIT_BOUND = {"engine.dashboard.cache", "engine.dashboard.widgets", "engine.dashboard.guard_widgets"}

# layer -> (the engine layers it may import, the outside libraries it may import at module level); the row
# order is the layer order of docs/architecture.md.  ``engine`` is engine/__init__.py (PROJECT_ROOT), which
# every layer may import.
LAYERS: dict[str, tuple[set[str], set[str]]] = {
    "engine.common": (set(), {"numpy", "pandas", "torch"}),
    "engine.data": ({"engine.common"}, {"numpy", "pandas", "PIL", "pyarrow", "tifffile", "torch", "tqdm"}),
    "engine.explain": ({"engine.common", "engine.data"}, {"numpy", "torch"}),
    "engine.models": ({"engine.common", "engine.data"},
                      {"numpy", "PIL", "huggingface_hub", "safetensors", "scipy", "timm", "torch", "torchvision",
                       "tqdm"}),
    "engine.metrics": ({"engine.common", "engine.data", "engine.explain"}, {"numpy", "pandas", "scipy", "torch"}),
    "engine.store": (set(), {"duckdb", "pandas", "pyarrow"}),
    "engine.runner": ({"engine.common", "engine.data", "engine.explain", "engine.models", "engine.metrics",
                       "engine.store"}, {"numpy", "pandas", "pydantic", "timm", "torch", "tqdm"}),
    "engine.dashboard": ({"engine.common", "engine.data", "engine.store", "engine.explain"},
                         {"numpy", "pandas", "scipy", "duckdb", "PIL", "plotly", "streamlit"}),
    "engine.cli": ({"engine.common", "engine.data", "engine.runner", "engine.store", "engine.dashboard"},
                   {"torch"}),
    "engine.__main__": ({"engine.cli"}, set()),
}
# the read layer stays light: at module level the dashboard imports none of these (the subprocess test of
# tests/test_light_read_layer.py checks the result)
NOT_AT_MODULE_LEVEL_IN_DASHBOARD = {"engine.explain", "engine.data.dataset", "engine.data.regions"}
CLI_MODULE_LEVEL = {"engine", "engine.store.read", "engine.cli"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(mod: str) -> bool:
    p = PROJECT_ROOT / Path(*mod.split("."))
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


class Import:
    """One imported module: ``mod`` (absolute), the names taken from it, and where the statement stands."""

    def __init__(self, mod: str, names: list[str], local: bool, line: int):
        self.mod, self.names, self.local, self.line = mod, names, local, line

    def targets(self) -> set[str]:
        """The modules it loads: ``from pkg import sub`` is ``pkg.sub`` when sub is a module, else ``pkg``."""
        subs = {f"{self.mod}.{n}" for n in self.names if is_module(f"{self.mod}.{n}")}
        return subs if subs and len(subs) == len(self.names) else subs | {self.mod}


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path) -> list[Import]:
    """Every import statement of ``path`` (function-local ones marked ``local``; ``if TYPE_CHECKING:`` blocks
    left out: they never run), relative imports resolved against the file's package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    out: list[Import] = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking(child):
                continue
            if isinstance(child, ast.Import):
                out.extend(Import(a.name, [], local, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[:len(base) - child.level + 1]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module
                out.append(Import(mod, [a.name for a in child.names], local, child.lineno))
            visit(child, local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))
    visit(tree, False)
    return out


def targets(path: Path, local: bool | None = None) -> set[str]:
    """The modules ``path`` imports (``local``: only function-local ones, only module-level ones, or all)."""
    return {t for i in imports(path) if local is None or i.local == local for t in i.targets()}


def under(mod: str, pkg: str) -> bool:
    return mod == pkg or mod.startswith(pkg + ".")


def layer(mod: str) -> str | None:
    return next((name for name in LAYERS if under(mod, name)), None)


def engine_files(sub: str = "") -> list[Path]:
    return sorted((ENGINE / sub).rglob("*.py"))


def rel(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT))


# -- the parser -----------------------------------------------------------------------------------------------

def test_the_parser_sees_what_the_rules_forbid():
    # a check that cannot fail proves nothing
    found = targets(ENGINE / "dashboard" / "cache.py")
    assert {"streamlit", "engine.dashboard.queries", "engine.store.schema"} <= found
    assert "engine.common.labels" in targets(ENGINE / "dashboard" / "__init__.py")
    assert "engine.store.writer" in targets(ENGINE / "store" / "__init__.py")
    assert "engine.dashboard.status" in targets(ENGINE / "cli" / "__init__.py", local=True)
    assert "torch" in targets(ENGINE / "dashboard" / "viz.py", local=True)
    assert "torch" not in targets(ENGINE / "dashboard" / "viz.py", local=False)
    assert "engine.data.dataset" not in targets(ENGINE / "dashboard" / "images.py", local=False)  # TYPE_CHECKING
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_every_engine_file_has_a_layer():
    assert not [rel(p) for p in engine_files() if layer(module_name(p)) is None and module_name(p) != "engine"]


# -- layers ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", engine_files(), ids=lambda p: str(p.relative_to(ENGINE)))
def test_each_layer_imports_only_the_engine_layers_of_its_row(path):
    here = layer(module_name(path))
    allowed = LAYERS[here][0] if here else set()  # engine/__init__.py: nothing of the engine
    bad = sorted(t for t in targets(path) if under(t, "engine") and t != "engine" and layer(t) != here
                 and not any(under(t, a) for a in allowed))
    assert not bad, f"{rel(path)} ({here or 'engine'}) imports {bad}; allowed: {sorted(allowed)}"


@pytest.mark.parametrize("path", engine_files(), ids=lambda p: str(p.relative_to(ENGINE)))
def test_each_layer_imports_at_module_level_only_the_outside_libraries_of_its_row(path):
    here = layer(module_name(path))
    allowed = LAYERS[here][1] if here else set()
    libs = {t.split(".")[0] for t in targets(path, local=False)} - STDLIB - {"engine"}
    bad = sorted(libs - allowed)
    assert not bad, f"{rel(path)} ({here or 'engine'}) imports {bad} at module level; allowed: {sorted(allowed)}"


@pytest.mark.parametrize("path", engine_files(), ids=lambda p: str(p.relative_to(ENGINE)))
def test_function_local_imports_only_where_they_buy_something(path):
    here = layer(module_name(path))
    if here == "engine.cli":  # a command imports only what it runs
        return
    allowed = OPTIONAL | (DRAWING if here == "engine.dashboard" else set())
    bad = sorted(f"{i.mod} (line {i.line})" for i in imports(path) if i.local
                 and not any(under(t, a) for t in i.targets() for a in allowed))
    assert not bad, f"{rel(path)}: function-local imports {bad}; move them to the top of the module"


@pytest.mark.parametrize("path", engine_files(), ids=lambda p: str(p.relative_to(ENGINE)))
def test_optional_libraries_only_inside_functions(path):
    bad = sorted(t for t in targets(path, local=False) if t.split(".")[0] in OPTIONAL)
    assert not bad, f"{rel(path)} imports the optional {bad} at module level"


@pytest.mark.parametrize("path", engine_files("dashboard"), ids=lambda p: p.name)
def test_the_dashboard_loads_no_torch_bound_module_at_module_level(path):
    bad = sorted(t for t in targets(path, local=False)
                 if any(under(t, m) for m in NOT_AT_MODULE_LEVEL_IN_DASHBOARD | {"torch", "timm"}))
    assert not bad, f"{rel(path)} imports {bad} at module level: the read layer must not load torch"


def test_only_the_dashboard_imports_streamlit():
    bad = [rel(p) for p in engine_files()
           if not under(module_name(p), "engine.dashboard") and any(under(m, "streamlit") for m in targets(p))]
    assert not bad, f"streamlit imported outside engine/dashboard: {bad}"


# -- the command line -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", engine_files("cli"), ids=lambda p: p.name)
def test_the_command_line_imports_at_module_level_only_what_every_command_needs(path):
    bad = sorted(t for t in targets(path, local=False) if t.split(".")[0] not in STDLIB
                 and not any(t == m or under(t, "engine.cli") for m in CLI_MODULE_LEVEL))
    assert not bad, f"{rel(path)} imports {bad} at module level; a command imports what it runs, inside it"


@pytest.mark.parametrize("path", engine_files("cli"), ids=lambda p: p.name)
def test_the_command_line_never_imports_streamlit(path):
    bad = sorted(t for t in targets(path) if under(t, "streamlit") or t in STREAMLIT_BOUND)
    assert not bad, f"{rel(path)} imports {bad}"


def test_the_command_line_does_not_import_streamlit():
    out = subprocess.run([sys.executable, "-c", "import sys, engine.cli; print('streamlit' in sys.modules)"],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


# -- cycles and private names ---------------------------------------------------------------------------------

def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (each sorted), by Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return sorted(out)


def test_no_import_cycle_between_engine_modules():
    graph = {module_name(p): {t for t in targets(p) if under(t, "engine") and is_module(t)} - {module_name(p)}
             for p in engine_files()}
    found = cycles(graph)
    assert not found, f"import cycles: {found}"


@pytest.mark.parametrize("path", [*engine_files(), *PAGES], ids=lambda p: rel(p))
def test_no_private_name_is_imported_from_another_module(path):
    bad = sorted(f"{i.mod}.{n}" for i in imports(path) for n in i.names
                 if n.startswith("_") and not n.startswith("__") and i.mod != module_name(path))
    assert not bad, f"{rel(path)} imports private names {bad}: make them public or move them"


# -- pages ----------------------------------------------------------------------------------------------------

def test_nothing_below_the_dashboard_imports_it():
    bad = [rel(p) for p in engine_files()
           if not under(module_name(p), "engine.dashboard") and not under(module_name(p), "engine.cli")
           and any(under(m, "engine.dashboard") for m in targets(p))]
    assert not bad, f"the dashboard's read layer imported from below it: {bad}"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_pages_import_the_engine_only_through_engine_dashboard(path):
    engine_imports = [i for i in imports(path) if under(i.mod, "engine")]
    assert engine_imports, f"{path.name} imports nothing from engine.dashboard"
    bad = sorted(i.mod for i in engine_imports if i.mod != "engine.dashboard")
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
