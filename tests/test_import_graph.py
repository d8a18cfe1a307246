"""Our modules import each other without a cycle.

The graph is built statically with `ast`, so nothing is imported. Every `import` / `from ... import`
counts, at module level and inside functions alike (a cycle through a function-level import is still
a cycle, only a deferred one); imports under `if TYPE_CHECKING:` count too. An edge goes to the most
specific of our modules the statement names: `from latentsync.models import registry` is an edge to
`latentsync.models.registry`, `from latentsync.models.unet import X` one to `latentsync.models.unet`.
Parent packages that Python initialises on the way (`latentsync/__init__.py`) are not edges.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("latentsync", "eval", "scripts", "tools", "data_processing")
TOP_LEVEL_MODULES = ("gradio_app.py",)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_modules() -> dict[str, Path]:
    files = [path for package in PACKAGES for path in sorted((REPO_ROOT / package).rglob("*.py"))]
    files += [REPO_ROOT / name for name in TOP_LEVEL_MODULES]
    return {_module_name(path): path for path in files}


def _absolute(name: str, module: str, path: Path, level: int) -> str:
    """The absolute name of a relative import `from .name` (level dots) inside `module`."""
    if level == 0:
        return name
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _target(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is one of our modules."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph() -> dict[str, set[str]]:
    modules = our_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node.module or "", module, path, node.level)
                names = [f"{base}.{alias.name}" for alias in node.names]  # a submodule, or a name in `base`
            else:
                continue
            for name in names:
                target = _target(name, modules)
                if target is not None and target != module:
                    graph[module].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, str] = {}  # "active" while on the current path, "done" after
    for root in sorted(graph):
        if root in state:
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = "active"
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = "done"
                stack.pop()
            elif state.get(child) == "active":
                return path[path.index(child) :] + [child]
            elif child not in state:
                state[child] = "active"
                path.append(child)
                stack.append(iter(sorted(graph[child])))
    return None


def test_the_graph_sees_our_imports():
    """Guards the test itself: known edges of each kind are found."""
    graph = import_graph()
    assert "latentsync.checkpoint" in graph["latentsync.models.unet"]  # absolute, top level
    assert "latentsync.models.unet" in graph["latentsync.models.registry"]  # relative
    assert "latentsync.models.stable_syncnet" in graph["latentsync.models.registry"]  # inside a function
    assert {"tools.make_tiny_checkpoints", "data_processing.cli", "gradio_app", "eval"} <= graph.keys()


def test_find_cycle_reports_the_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


# Dependencies point down (docs/architecture.md): a module under the first prefix never imports one under the second.
WRONG_WAY = [
    ("latentsync.models", "latentsync.faces"), ("latentsync.models", "latentsync.pipelines"),
    ("latentsync.models", "latentsync.cli"), ("latentsync.utils", "latentsync.pipelines"),
    ("latentsync.utils", "latentsync.cli"), ("latentsync.utils", "latentsync.faces"),
    ("latentsync.faces", "latentsync.pipelines"), ("latentsync.faces", "latentsync.cli"),
    ("eval", "latentsync.cli"), ("data_processing", "latentsync.cli"), ("latentsync.training", "latentsync.cli"),
]
# Exceptions to WRONG_WAY (none today: the official-layout paths in utils are pure aliases, exempt below).
KNOWN_WRONG_WAY: set[tuple[str, str]] = set()


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def is_pure_alias(source: str) -> bool:
    """The module binds its (official) name to another module and does nothing else: a docstring, `import sys`,
    one `from X import Y as _impl`, and `sys.modules[__name__] = _impl`, in that order."""
    body = ast.parse(source).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    if len(body) != 3:
        return False
    imports_sys, imports_impl, binds = body
    return (
        isinstance(imports_sys, ast.Import) and [(a.name, a.asname) for a in imports_sys.names] == [("sys", None)]
        and isinstance(imports_impl, ast.ImportFrom) and imports_impl.level == 0
        and [a.asname for a in imports_impl.names] == ["_impl"]
        and ast.dump(binds) == ast.dump(ast.parse("sys.modules[__name__] = _impl").body[0])
    )


def alias_modules() -> set[str]:
    return {name for name, path in our_modules().items() if is_pure_alias(path.read_text())}


def test_pure_alias_check_accepts_only_the_alias_shape():
    alias = '"""Compatibility path."""\n\nimport sys\n\nfrom latentsync.faces import alignment as _impl\n\n' \
            "sys.modules[__name__] = _impl\n"
    assert is_pure_alias(alias)
    assert is_pure_alias(alias.replace('"""Compatibility path."""\n', ""))  # the docstring is optional
    does_more = [
        alias + "print('side effect')\n",  # anything else runs
        alias.replace("import sys\n", "import os\nimport sys\n"),  # another import
        alias.replace("alignment as _impl", "alignment as _impl, detector"),  # binds a second name
        alias.replace("alignment as _impl", "alignment"),  # not the `_impl` binding
        alias.replace("sys.modules[__name__] = _impl", "sys.modules['other'] = _impl"),  # binds another name
        alias.replace("sys.modules[__name__] = _impl", "_impl.x = 1"),  # patches the target instead
    ]
    assert not any(is_pure_alias(source) for source in does_more)
    assert {"latentsync.utils.affine_transform", "latentsync.utils.face_detector",
            "latentsync.utils.image_processor"} <= alias_modules()


def test_dependencies_point_down():
    """Every edge follows the layering, except a pure alias's one edge: the official module name bound to ours."""
    graph = import_graph()
    aliases = alias_modules()
    wrong = sorted((src, dst) for src, targets in graph.items() for dst in targets
                   if src not in aliases and any(_under(src, a) and _under(dst, b) for a, b in WRONG_WAY))
    assert set(wrong) <= KNOWN_WRONG_WAY, f"imports against the layering: {sorted(set(wrong) - KNOWN_WRONG_WAY)}"
