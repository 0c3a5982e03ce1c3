"""The package's layout rules, read from the source's imports (function-level ones included).

- no import cycle between modules;
- dtlpy only in adapter.platform and adapter.movinet_adapter;
- layers point one way, in the order adapter/__init__.py's docstring writes;
- no command-line wording outside adapter.cli.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import adapter

PACKAGE = Path(adapter.__file__).parent
LAYERS = adapter.LAYERS
DTLPY_ALLOWED = ("adapter.platform", "adapter.movinet_adapter")
CLI_WORDING = re.compile(r"--(weights|model|set|output|quantize|calibration-videos|manifest)\b|\bexit (code )?[0-3]\b")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(path): ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """The modules a module imports anywhere in its body, resolved to modules of the package (or 'dtlpy')."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # the package uses absolute imports only; resolve a relative one anyway
                package = name.split(".")[: len(name.split(".")) - node.level]
                base = ".".join(package + ([node.module] if node.module else []))
            else:
                base = node.module
            targets = [f"{base}.{alias.name}" for alias in node.names]
            if any(target not in known for target in targets):
                targets.append(base)  # a name defined in the module itself, not a submodule
        else:
            continue
        for target in targets:
            if target.split(".")[0] == "dtlpy":
                found.add("dtlpy")
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target != "adapter":
                found.add(target)
    return found


def layer_of(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return -1  # the package's own __init__: names the layers, imports the adapter lazily
    return LAYERS.index(parts[1])


def graph() -> dict[str, set[str]]:
    trees = modules()
    known = set(trees)
    return {name: imported(name, tree, known) for name, tree in trees.items()}


def test_every_module_belongs_to_a_layer():
    unplaced = [name for name in modules() if name != "adapter" and name.split(".")[1] not in LAYERS]
    assert not unplaced, f"modules outside the layers {LAYERS}: {unplaced}"


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of two or more modules (Tarjan): each is an import cycle."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycle():
    edges = {name: {t for t in targets if t != "dtlpy"} for name, targets in graph().items()}
    cycles = import_cycles(edges)
    assert not cycles, f"import cycles: {cycles}"


def test_dtlpy_is_imported_only_by_the_platform_package_and_the_adapter():
    offenders = [name for name, targets in graph().items() if "dtlpy" in targets and not name.startswith(DTLPY_ALLOWED)]
    assert not offenders, f"dtlpy imported outside {DTLPY_ALLOWED}: {offenders}"


def test_layers_point_one_way():
    upward = []
    for name, targets in graph().items():
        if name == "adapter":
            continue
        for target in targets - {"dtlpy"}:
            if layer_of(target) > layer_of(name):
                upward.append(f"{name} -> {target}")
    assert not upward, f"imports that point up the layers {' -> '.join(LAYERS)}: {sorted(upward)}"


def test_library_code_speaks_in_its_own_terms():
    """Options like --weights and exit codes are the command line's words; library errors name keys and values."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if name.startswith("adapter.cli") or name == "adapter.__main__":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and CLI_WORDING.search(node.value):
                offenders.append(f"{name}:{node.lineno}: {node.value[:80]!r}")
    assert not offenders, "command-line wording in library code:\n" + "\n".join(offenders)


def test_the_rules_catch_what_they_forbid():
    """The checks above would fail on an upward import, a cycle and a stray dtlpy import."""
    known = {"adapter.video.reader", "adapter.cli.parser", "adapter.core.config"}
    tree = ast.parse("def f():\n    from adapter.cli.parser import main\n    import dtlpy as dl\n")
    found = imported("adapter.video.reader", tree, known)
    assert found == {"adapter.cli.parser", "dtlpy"}
    assert layer_of("adapter.cli.parser") > layer_of("adapter.video.reader")
    assert CLI_WORDING.search("pass --weights DIR") and CLI_WORDING.search("exit 2")
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []
