"""Imports point downwards: a package never imports one above it, and a port's Protocol module
never imports its adapters (origin/wiring.py chooses them)."""
from __future__ import annotations

import ast
from pathlib import Path

ORIGIN = Path(__file__).resolve().parent.parent / "origin"
# each layer may import the layers listed after it, never those before it
LAYERS = ("cli", "admin", "app", "wiring", "http", "ingest", "pipeline", "lifecycle", "services", "ports", "security",
          "base")
BASE = {"config", "errors", "formats", "keys", "metrics", "logs", "tiers", "presets"}
TOP = {"gunicorn_conf": "cli"}  # wires like the command does


def layer(module: str) -> str:
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else ""
    return "base" if name in BASE or not name else TOP.get(name, name)


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("origin"):
            found |= {node.module} if node.module != "origin" else {f"origin.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("origin")}
    return found


def modules():
    for path in sorted(ORIGIN.rglob("*.py")):
        yield ".".join(path.relative_to(ORIGIN.parent).with_suffix("").parts), path


def test_no_package_imports_one_above_it():
    wrong = []
    for module, path in modules():
        mine = LAYERS.index(layer(module))
        for target in imports(path):
            if LAYERS.index(layer(target)) < mine:
                wrong.append(f"{module} imports {target}")
    assert not wrong, wrong


def test_port_modules_do_not_import_their_adapters():
    ports = {m for m, _ in modules() if m.startswith("origin.ports.")}
    wrong = []
    for module, path in modules():
        if module not in ports:
            continue
        adapters = {m for m in ports if m.startswith(module + "_")}
        wrong += [f"{module} imports {target}" for target in imports(path) & adapters]
    assert not wrong, wrong
