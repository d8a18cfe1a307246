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
# Not yet moved: the official-layout shims in utils and ImageProcessor's affine_transform (issue 28, part 3).
KNOWN_WRONG_WAY = {
    ("latentsync.utils.affine_transform", "latentsync.faces.alignment"),
    ("latentsync.utils.face_detector", "latentsync.faces.detector"),
    ("latentsync.utils.image_processor", "latentsync.faces.detector"),
    ("latentsync.utils.image_processor", "latentsync.faces.alignment"),
}


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_dependencies_point_down():
    graph = import_graph()
    wrong = sorted((src, dst) for src, targets in graph.items() for dst in targets
                   if any(_under(src, a) and _under(dst, b) for a, b in WRONG_WAY))
    assert set(wrong) <= KNOWN_WRONG_WAY, f"imports against the layering: {sorted(set(wrong) - KNOWN_WRONG_WAY)}"
