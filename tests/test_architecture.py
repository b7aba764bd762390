"""The rules of the house (docs/architecture.md), checked on the package's own imports."""

import ast
from pathlib import Path

import spikeinterface_deepsort

PACKAGE = Path(spikeinterface_deepsort.__file__).parent
NAME = "spikeinterface_deepsort"
BASE = {"errors", "params", "settings", "validation", "io", "run_folder", "output_folders", "version",
        "compiled_kernels"}
# What each layer may import from the package, besides itself and the base modules.
ALLOWED = {
    "base": set(),
    "learning": set(),
    "stages": {"learning"},
    "pipeline": {"learning", "stages"},
    "integrations": {"learning", "stages"},
    "tools": {"learning", "stages", "tools"},
    "sorter": {"pipeline", "tools"},
    "registration": {"sorter", "integrations"},
    "evaluation": {"learning", "stages", "tools"},
    "cli": {"learning", "stages", "tools", "pipeline", "sorter", "evaluation", "registration"},
}
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 400


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join([NAME, *parts])] = path
    return modules


def _imports(module: str, path: Path, modules: dict) -> set[str]:
    """Package modules that ``module`` imports, at any depth of its code (lazy imports included)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        for name in candidates:
            # the imported module itself, or the package it comes from
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module and name != NAME:
                found.add(name)
    return found


def _layer(module: str) -> str:
    first = module.split(".")[1] if "." in module else ""
    return "base" if first in BASE else first


def _graph():
    modules = _modules()
    return {module: _imports(module, path, modules) for module, path in modules.items()}


def test_no_import_cycle():
    graph, state, cycles = _graph(), {}, []

    def visit(node, stack):
        state[node] = "open"
        for child in graph[node]:
            if state.get(child) == "open":
                cycles.append(stack[stack.index(child):] + [child])
            elif child not in state:
                visit(child, stack + [child])
        state[node] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_each_layer_imports_only_what_it_may():
    breaches = []
    for module, imported in _graph().items():
        layer = _layer(module)
        if layer == "":
            continue  # the package's __init__ re-exports the public names
        for target in imported:
            target_layer = _layer(target)
            if target_layer not in {layer, "base"} | ALLOWED[layer]:
                breaches.append(f"{module} imports {target}")
    assert not breaches, "\n".join(breaches)


def test_functions_and_modules_stay_short():
    too_long = []
    for module, path in _modules().items():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{module}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{module}.{node.name}: {length} lines")
    assert not too_long, "\n".join(too_long)


def test_every_module_has_its_test_file():
    tests = Path(__file__).parent
    missing = []
    for module, path in _modules().items():
        if path.name in ("__init__.py", "__main__.py"):
            continue
        relative = path.relative_to(PACKAGE)
        if not (tests / relative.parent / f"test_{relative.name}").exists():
            missing.append(str(relative))
    assert not missing, "modules without a mirroring test file: " + ", ".join(missing)
