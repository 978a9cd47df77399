"""The layers of docs/architecture.md and what each may import, checked by
reading every import (``ast``; imports inside functions too).

Layers, bottom up: wire (the kernel's numbers, messages, the socket),
model (the vocabulary and its rules), API (the translation and the verbs),
front ends (the command line, the configuration file), harness (tools/ and
tests/).  A layer imports its own and lower layers; front ends do not
reach past the API into the wire layer or the codec.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "ipvsadm_py"

LAYERS = {
    "wire": ["ipvsadm_py.abi", "ipvsadm_py.wire", "ipvsadm_py.wire_fast", "ipvsadm_py.nl"],
    "model": ["ipvsadm_py.model", "ipvsadm_py.rules", "ipvsadm_py.order",
              "ipvsadm_py.acl"],
    "api": ["ipvsadm_py", "ipvsadm_py.errors", "ipvsadm_py.verbs", "ipvsadm_py.codec",
            "ipvsadm_py.api", "ipvsadm_py.procfs", "ipvsadm_py.views", "ipvsadm_py.nft"],
    "front end": ["ipvsadm_py.cli", "ipvsadm_py.config", "ipvsadm_py.bench"],
    "harness": ["tools", "tests"],
}
MAY_IMPORT = {
    "wire": {"wire"},
    "model": {"model"},
    "api": {"wire", "model", "api"},
    "front end": {"model", "api", "front end"},
    "harness": {"wire", "model", "api", "front end", "harness"},
}
# Front ends speak the model: the numbers stay below them.
NOT_FROM_FRONT_ENDS = {"ipvsadm_py.codec"}
# The nftables binding (python3-nftables) is not used: nft.py runs `nft -j`.
# Third-party packages only some layers need.
ONLY_IN = {"pyroute2": {"harness"}, "yaml": {"front end", "harness"},
           "kmodpy": {"api", "harness"}, "nftables": set()}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    """The layer of a module: the longest listed name it is, or is under."""
    best, length = None, -1
    for layer, names in LAYERS.items():
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > length:
                if name == PACKAGE and module != PACKAGE:
                    continue        # the package root names itself only
                best, length = layer, len(name)
    return best


def sources() -> list[Path]:
    return sorted(p for top in (PACKAGE, "tools", "tests") for p in (ROOT / top).rglob("*.py"))


def imports(module: str, source: str, package: bool = False) -> list[tuple[int, str]]:
    """(line, module) of every import in a module's source; ``from P import
    X`` names P.X when X is a module of P."""
    here = module.split(".") if package else module.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[:len(here) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                sub = Path(ROOT, *f"{base}.{alias.name}".split("."))
                is_module = sub.with_suffix(".py").exists() or sub.is_dir()
                out.append((node.lineno, f"{base}.{alias.name}" if is_module else base))
    return out


def faults(module: str, source: str, package: bool = False) -> list[str]:
    """What a module imports that its layer may not."""
    own = layer_of(module)
    if own is None:
        return [f"{module} belongs to no layer (add it to LAYERS)"]
    out = []
    for line, target in imports(module, source, package):
        top = target.split(".")[0]
        if top in ONLY_IN and own not in ONLY_IN[top]:
            out.append(f"{line}: {target} is for the {sorted(ONLY_IN[top])} layers only")
        if top not in (PACKAGE, "tools", "tests"):
            continue
        layer = layer_of(target)
        if layer not in MAY_IMPORT[own]:
            out.append(f"{line}: the {own} layer imports {target} ({layer})")
        if own == "front end" and target in NOT_FROM_FRONT_ENDS:
            out.append(f"{line}: a front end imports {target}")
    return out


def test_every_module_has_a_layer():
    missing = [module_name(p) for p in sources() if layer_of(module_name(p)) is None]
    assert not missing


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_layers(path):
    found = faults(module_name(path), path.read_text(), path.name == "__init__.py")
    assert not found, f"{path.relative_to(ROOT)}:\n" + "\n".join(found)


@pytest.mark.parametrize("module,source,fault", [
    ("ipvsadm_py.nl", "from ipvsadm_py.cli import parse\n", "imports ipvsadm_py.cli"),
    ("ipvsadm_py.model", "from ipvsadm_py import abi\n", "imports ipvsadm_py.abi"),
    ("ipvsadm_py.cli.run", "from ipvsadm_py import codec\n", "a front end imports"),
    ("ipvsadm_py.cli.run", "def f():\n    from ipvsadm_py.wire import encode\n",
     "imports ipvsadm_py.wire"),
    ("ipvsadm_py.wire", "import pyroute2\n", "pyroute2 is for"),
    ("ipvsadm_py.api", "from tests.oracles import pyroute2_ipvs\n", "imports tests"),
    ("ipvsadm_py.acl", "from ipvsadm_py import nft\n", "imports ipvsadm_py.nft"),
    ("ipvsadm_py.nft", "from ipvsadm_py.cli import acl\n", "imports ipvsadm_py.cli.acl"),
])
def test_the_checker_sees_forbidden_imports(module, source, fault):
    assert any(fault in found for found in faults(module, source))
