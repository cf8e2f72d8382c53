"""The package's layout (issue 16): no import cycles between modules, no module past 450 lines.

The import graph is read from the source with ``ast``, not by importing: every ``import`` and
``from ... import`` inside ``sparse_query``, at module level and inside functions and methods
(a late import only hides a cycle, it does not remove it), relative and absolute. An edge goes
from a module to each ``sparse_query`` module it names; ``from pkg import name`` points at the
submodule ``pkg.name`` when there is one and at ``pkg`` (its ``__init__``) otherwise. A package
is not counted as depending on its own parents: Python imports those first.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sparse_query"
MAX_LINES = 450

# path relative to the repository root -> why it may be longer than MAX_LINES. An entry whose
# file is gone or back under the limit fails the test, so the list only shrinks.
LONG_MODULES: dict[str, str] = {}


def _modules(package_dir):
    """Dotted module name -> (path, is_package) for every ``.py`` file under ``package_dir``."""
    mods = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        mods[".".join(parts)] = (path, is_package)
    return mods


def import_graph(package_dir):
    """Dotted module name -> set of the package's modules it imports (anywhere in its body)."""
    mods = _modules(package_dir)
    graph = {}
    for name, (path, is_package) in mods.items():
        here = name.split(".") if is_package else name.split(".")[:-1]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.add(sub if sub in mods else source)
        parents = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        graph[name] = {t for t in targets if t in mods and t != name and t not in parents}
    return graph


def find_cycle(graph):
    """One cycle of ``graph`` as a list of nodes ``[a, b, ..., a]``, or ``None`` if acyclic."""
    state = {}  # node -> 1 while on the DFS stack, 2 when done
    stack = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_cycle_finder_finds_a_cycle_and_accepts_a_dag():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_graph_reader_sees_late_relative_and_absolute_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import f\n")
    (pkg / "a.py").write_text("def f():\n    from .sub import g\n    return g\n")
    (pkg / "sub" / "__init__.py").write_text("from .b import g\n")
    (pkg / "sub" / "b.py").write_text("import pkg.a\ndef g():\n    from .. import a\n")
    graph = import_graph(pkg)
    assert graph["pkg"] == {"pkg.a"}
    assert graph["pkg.a"] == {"pkg.sub"}
    assert graph["pkg.sub"] == {"pkg.sub.b"}
    assert graph["pkg.sub.b"] == {"pkg.a"}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub", "pkg.sub.b", "pkg.a"]


def test_no_import_cycles():
    graph = import_graph(PACKAGE)
    assert "sparse_query.solvers" in graph["sparse_query.sampler"]  # the reader sees imports
    cycle = find_cycle(graph)
    assert cycle is None, (
        "import cycle: " + " -> ".join(cycle) + "; move what both sides need into a module "
        "that neither imports, or pass it in as an argument"
    )


def _line_counts():
    return {
        path.relative_to(ROOT).as_posix(): len(path.read_text().splitlines())
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_no_module_past_the_line_limit():
    too_long = {
        path: n for path, n in _line_counts().items()
        if n > MAX_LINES and path not in LONG_MODULES
    }
    assert not too_long, (
        f"modules over {MAX_LINES} lines: {too_long}; split them by what they hold "
        "(or add an entry with its reason to LONG_MODULES in tests/test_layout.py)"
    )


@pytest.mark.parametrize("path", sorted(LONG_MODULES))
def test_each_exception_is_still_needed(path):
    counts = _line_counts()
    assert path in counts, f"{path} is gone: remove it from LONG_MODULES"
    assert counts[path] > MAX_LINES, (
        f"{path} has {counts[path]} lines, within the limit: remove it from LONG_MODULES"
    )


# -- packaging ------------------------------------------------------------------------------
def _pyproject():
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_installed_package_holds_the_library_only():
    find = _pyproject()["tool"]["setuptools"]["packages"]["find"]
    assert find["include"] == ["sparse_query", "sparse_query.*"]
    assert "scripts" not in _pyproject()["project"]
    assert not (PACKAGE / "benchmark").exists()
    # no library module imports the benchmark harness (it is not installed)
    for name, (path, _) in _modules(PACKAGE).items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] == "benchmarks" for n in names), (name, names)


def test_one_version_source_and_typed_marker():
    project = _pyproject()
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "sparse_query.__version__"
    # the version is a literal setuptools reads without importing the package (torch)
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    literal = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
               and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["__version__"]]
    import sparse_query
    assert literal == [sparse_query.__version__]
    assert (PACKAGE / "py.typed").exists()
    assert project["tool"]["setuptools"]["package-data"]["sparse_query"] == ["py.typed"]
    assert project["project"]["license"] == "BSD-3-Clause"
    assert (ROOT / "LICENSE").read_text().startswith("BSD 3-Clause License")
    assert f"## [{sparse_query.__version__}]" in (ROOT / "CHANGELOG.md").read_text()


def test_contributing_gives_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    command = 'pip install torch==2.13.0 && pip install -e ".[test]" && python -m pytest'
    assert command in readme and command in contributing
    assert "sphinx-build -W docs docs/_build/html" in contributing
    assert "python -m benchmarks.harness" in contributing
