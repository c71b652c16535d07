"""The package's shape: imports flow one way, nothing is imported lazily between its modules, functions stay short."""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "keras_pix2pix"
LONGEST_FUNCTION = 50  # lines of code in a body, its docstring not counted
MOST_PARAMETERS = 8  # of a private function: more is a bag of settings that wants a home
LONGEST_MODULE = 500  # lines: a longer module has two jobs


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


def _inside_definitions(tree):
    """Every node inside a function or a class of a module, each once (nested ones are not walked again)."""
    stack = list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield from ast.walk(node)
        else:
            stack.extend(ast.iter_child_nodes(node))


def test_no_package_module_is_imported_inside_a_function():
    modules = _modules()
    lazy = [
        f"{name}.py:{node.lineno}"
        for name, tree in modules.items()
        for node in _inside_definitions(tree)
        if _package_imports(node, modules)
    ]
    assert not lazy, f"lazy imports of package modules: {lazy}"


def _code_lines(lines, node):
    """Lines of code in a function's body: its docstring, blank lines and comment lines not counted."""
    body = node.body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
        body = body[1:]
    if not body:
        return 0
    text = lines[body[0].lineno - 1 : node.end_lineno]
    return sum(1 for line in text if line.strip() and not line.strip().startswith("#"))


def _functions():
    for path in sorted(PACKAGE.glob("*.py")):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.name, lines, node


def test_no_function_body_is_longer_than_50_lines_of_code():
    long = [
        f"{name}:{node.lineno} {node.name} ({_code_lines(lines, node)} lines)"
        for name, lines, node in _functions()
        if _code_lines(lines, node) > LONGEST_FUNCTION
    ]
    assert not long, long


def test_no_private_function_takes_more_than_8_parameters():
    def count(arguments):
        return len(arguments.posonlyargs + arguments.args + arguments.kwonlyargs) + bool(arguments.vararg) + bool(arguments.kwarg)

    many = [
        f"{name}:{node.lineno} {node.name} ({count(node.args)} parameters)"
        for name, _, node in _functions()
        if node.name.startswith("_") and not node.name.startswith("__") and count(node.args) > MOST_PARAMETERS
    ]
    assert not many, many


def test_no_module_is_longer_than_500_lines():
    long = {path.name: count for path in PACKAGE.glob("*.py") if (count := len(path.read_text().splitlines())) > LONGEST_MODULE}
    assert not long, long


def test_the_measures_see_what_they_measure():
    source = 'def _f(a, b, c, d, e, f, g, h, i):\n    """Doc.\n\n    More doc.\n    """\n    # why\n    x = 1\n\n    return x\n'
    node = ast.parse(source).body[0]
    assert _code_lines(source.splitlines(), node) == 2
    assert len(node.args.args) == 9
