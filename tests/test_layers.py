"""deepq's modules import each other in layers and never in a cycle:

    config -> envs / agents / replay -> drivers -> run -> cli

Every import of a deepq module, also one inside a function, points to its own layer or a
lower one, and the import graph has no cycle (read from the source with `ast`)."""

import ast
import graphlib
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# The lowest layer whose name prefixes a module's names it (longest prefix wins).
LAYERS = {
    0: ["deepq._version", "deepq.errors", "deepq.config", "deepq.jaxcache", "deepq.cpu",
        "deepq.atomic"],
    1: ["deepq.envs", "deepq.agents", "deepq.networks", "deepq.replay", "deepq.frame_replay",
        "deepq.prioritized", "deepq.schedules", "deepq.checkpoint", "deepq.presets",
        "deepq.report"],
    2: ["deepq.drivers", "deepq.evaluate", "deepq.qtrace"],
    3: ["deepq.rundir", "deepq.run", "deepq.render", "deepq.training", "deepq.compare",
        "deepq.policy", "deepq.tracking",
        "deepq.grid"],
    4: ["deepq.distributed", "deepq.cli", "deepq.__main__"],
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / "deepq").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _layer(module: str) -> int:
    best = max(((len(p), layer) for layer, prefixes in LAYERS.items() for p in prefixes
                if module == p or module.startswith(p + ".")), default=None)
    assert best is not None, f"{module} has no layer: add it to LAYERS"
    return best[1]


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The deepq modules `module` imports, anywhere in its source."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            for alias in node.names:  # `from deepq import checkpoint` names a module
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return {m for m in found if m in known and m != module}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(m, p, set(modules)) for m, p in modules.items()}


def test_every_module_imports_its_own_layer_or_lower():
    upward = [f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})"
              for m, deps in _graph().items() if m != "deepq" for d in sorted(deps)
              if _layer(d) > _layer(m)]
    assert upward == []


def test_no_import_cycle_among_deepq_modules():
    # A package's __init__ runs before its submodules: an import of the package itself
    # from one of them is not an edge of the cycle kind.
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in _graph().items()}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_the_layer_check_sees_imports_inside_functions(tmp_path):
    """The AST walk reads function-level imports too, and `from deepq import x` as the
    module deepq.x."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from deepq import checkpoint\n    import deepq.cli\n")
    assert _imports("deepq.m", source, {"deepq", "deepq.checkpoint", "deepq.cli"}) == \
        {"deepq.checkpoint", "deepq.cli"}


def test_deepq_modules_import_each_other_at_the_top():
    """No deepq import hides inside a function: the layering reads from each file's head."""
    hidden = []
    for module, path in _modules().items():
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in top:
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                    [a.name for a in node.names]
                if any(n == "deepq" or n.startswith("deepq.") for n in names):
                    hidden.append(f"{module}:{node.lineno}")
    assert hidden == []
