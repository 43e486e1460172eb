"""A map of the code, read with `ast`: the package import graph, import cycles and sizes.

    python scripts/codemap.py dot      # the package import graph as DOT (docs/imports.dot)
    python scripts/codemap.py render   # writes docs/imports.dot and docs/imports.png (graphviz)
    python scripts/codemap.py stats    # JSON: files/lines per package, largest function and
                                       # class, module import cycles

`tests/test_layout.py` checks that the committed DOT is what the code says, so the picture in
ARCHITECTURE.md cannot drift from the code.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP_PACKAGES = ("gateway", "media")
DOT_PATH = ROOT / "docs" / "imports.dot"
PNG_PATH = ROOT / "docs" / "imports.png"


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the top packages."""
    found: dict[str, Path] = {}
    for top in TOP_PACKAGES:
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str | None:
    if node.level == 0:
        return node.module
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(root: Path = ROOT, *, runtime_only: bool = False) -> dict[str, set[str]]:
    """Module -> the project modules it imports. `runtime_only` leaves out imports under
    `if TYPE_CHECKING:`, which never run."""
    known = modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        skip: set[int] = set()
        if runtime_only:
            for node in ast.walk(tree):
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                    skip.update(id(child) for sub in node.body for child in ast.walk(sub))
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            candidates: list[str] = []
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, node, path.name == "__init__.py")
                if base:
                    # `from pkg import mod` imports pkg.mod; `from pkg import name` imports pkg
                    candidates = [
                        f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                        for alias in node.names
                    ]
            for candidate in candidates:
                while candidate and candidate not in known:
                    candidate = candidate.rpartition(".")[0]
                if candidate and candidate != name:
                    targets.add(candidate)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def package_of(module: str) -> str:
    """The unit drawn in the diagram: `gateway.<api>` (feature packages folded into their
    API), `gateway` for the shared machinery, `media`."""
    parts = module.split(".")
    if parts == ["gateway"]:
        return "gateway (shared)"
    if parts[0] == "gateway":
        candidate = ROOT / "gateway" / parts[1]
        if candidate.is_dir():
            return f"gateway.{parts[1]}"
        return "gateway (shared)"
    return parts[0]


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    folded: dict[str, set[str]] = defaultdict(set)
    for source, targets in graph.items():
        folded[package_of(source)]
        for target in targets:
            if package_of(target) != package_of(source):
                folded[package_of(source)].add(package_of(target))
    return dict(folded)


def dot(root: Path = ROOT) -> str:
    folded = package_graph(imports(root))
    lines = [
        "// generated by scripts/codemap.py dot: edit the code, not this file",
        "digraph imports {",
        '  rankdir=LR; node [shape=box, fontname="Helvetica"];',
    ]
    for package in sorted(folded):
        lines.append(f'  "{package}";')
    for package in sorted(folded):
        for target in sorted(folded[package]):
            lines.append(f'  "{package}" -> "{target}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def stats(root: Path = ROOT) -> dict[str, object]:
    per_package: dict[str, dict[str, int]] = defaultdict(lambda: {"files": 0, "lines": 0})
    largest_function = ("", 0)
    largest_class = ("", 0)
    for name, path in modules(root).items():
        text = path.read_text()
        package = package_of(name)
        per_package[package]["files"] += 1
        per_package[package]["lines"] += text.count("\n")
        tree = ast.parse(text)
        for function in _functions(tree):
            size = (function.end_lineno or function.lineno) - function.lineno + 1
            if size > largest_function[1]:
                largest_function = (f"{name}.{function.name}", size)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > largest_class[1]:
                    largest_class = (f"{name}.{node.name}", size)
    return {
        "packages": dict(sorted(per_package.items())),
        "largest_function": {"name": largest_function[0], "lines": largest_function[1]},
        "largest_class": {"name": largest_class[0], "lines": largest_class[1]},
        "import_cycles": cycles(imports(root)),
    }


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "stats"
    if command == "dot":
        sys.stdout.write(dot())
    elif command == "render":
        DOT_PATH.parent.mkdir(exist_ok=True)
        DOT_PATH.write_text(dot())
        subprocess.run(["dot", "-Tpng", "-o", str(PNG_PATH), str(DOT_PATH)], check=True)
        print(f"wrote {DOT_PATH.relative_to(ROOT)} and {PNG_PATH.relative_to(ROOT)}")
    elif command == "stats":
        print(json.dumps(stats(), indent=2))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
