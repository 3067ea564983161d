"""backend/ (the package's rules, backend/__init__.py): no import circle in the project, backend
imports nothing above it, and model, render and pipeline code reach it only through
models/layers.py (or backend.kernels' templates, for a module's own jt.code kernels)."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("backend", "core", "dataset", "models", "render", "pipeline", "evaluation", "bench")


def _module_files():
    """{module name: path} of the project's code (packages and the entry points; no tests)."""
    found = {}
    for name in os.listdir(ROOT):
        if name.endswith(".py"):
            found[name[:-3]] = os.path.join(ROOT, name)
    for pkg in PACKAGES:
        for name in os.listdir(os.path.join(ROOT, pkg)):
            if name.endswith(".py"):
                mod = pkg if name == "__init__.py" else f"{pkg}.{name[:-3]}"
                found[mod] = os.path.join(ROOT, pkg, name)
    return found


def _imports(path, modules):
    """The project modules a file imports, at any depth of its code (imports inside functions too)."""
    out = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out |= {n for n in names if n in modules and n not in PACKAGES}
    return out


def _graph():
    modules = _module_files()
    return {m: _imports(p, modules) for m, p in modules.items()}


def _cycles(graph):
    """Every import circle, each as the list of modules along it (depth-first search)."""
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == "open":
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return cycles


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_no_import_circle():
    graph = _graph()
    assert "backend.runtime" in graph and "models.layers" in graph  # the scan sees the project
    assert _cycles(graph) == []


def test_backend_imports_nothing_above_it():
    for mod, deps in _graph().items():
        if mod.startswith("backend"):
            assert all(d.startswith("backend") for d in deps), (mod, deps)


def test_models_render_and_pipeline_reach_the_backend_through_the_layers():
    """models/layers.py chooses each product's implementation; elsewhere in models/, render/,
    pipeline/, evaluation/ and dataset/ only backend.kernels (jt.code templates) is imported."""
    for mod, deps in _graph().items():
        if mod.split(".")[0] in ("models", "render", "pipeline", "evaluation", "dataset") and mod != "models.layers":
            backend = {d for d in deps if d.startswith("backend")}
            assert backend <= {"backend.kernels"}, (mod, backend)
