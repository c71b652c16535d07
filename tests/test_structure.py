"""The package's shape: imports flow one way, nothing is imported lazily between its modules, functions stay short."""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "keras_pix2pix"
LONGEST_FUNCTION = 80


def _modules():
    return {path.stem: ast.parse(path.read_text(), filename=str(path)) for path in sorted(PACKAGE.glob("*.py"))}


def _package_imports(node, modules):
    """The package modules an import statement names."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    else:
        return set()
    parts = [name.split(".") for name in names if name.startswith("keras_pix2pix")]
    return {part[1] for part in parts if len(part) > 1 and part[1] in modules}


def _import_graph():
    modules = _modules()
    return {
        name: set().union(*(_package_imports(node, modules) for node in tree.body)) - {name}
        for name, tree in modules.items()
        if name not in ("__init__", "__main__")
    }


def _cycle(graph):
    """One import cycle of the graph as a list of modules, or None."""
    finished, path = set(), []

    def visit(module):
        if module in path:
            return path[path.index(module) :] + [module]
        if module in finished:
            return None
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            cycle = visit(imported)
            if cycle:
                return cycle
        path.pop()
        finished.add(module)
        return None

    return next((cycle for cycle in map(visit, sorted(graph)) if cycle), None)


def test_the_import_graph_has_no_cycle():
    graph = _import_graph()
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
    # The check sees one: models imported back by a module it imports would close a loop.
    assert "models" in graph["train"]
    planted = {**graph, "models": graph["models"] | {"train"}}
    assert _cycle(planted) is not None


def test_no_package_module_is_imported_inside_a_function():
    modules = _modules()
    lazy = []
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                for inner in ast.walk(node):
                    if _package_imports(inner, modules):
                        lazy.append(f"{name}.py:{inner.lineno}")
    assert not lazy, f"lazy imports of package modules: {lazy}"


def test_no_function_is_longer_than_80_lines():
    long = [
        f"{name}.py:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for name, tree in _modules().items()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > LONGEST_FUNCTION
    ]
    assert not long, long
